//! partnerflow: a partner's invitations, offers and their lifecycles, run by themselves.
//!
//! Codemap, bottom layer first (each imports only modules above it in this list; the layers,
//! the rules between them and where a new job kind, page, API route or workflow goes are in
//! `ARCHITECTURE.md`):
//! - `core`      — the foundation, importing nothing of ours: `domain` (types parsed once:
//!   `Timestamp`, `Span`, `EmailAddress`, `Locale`, `InstanceId`, `OfferId`, `DomainName`, `Role`…),
//!   `config` (layered settings: default.toml < --config FILE < PARTNERFLOW__* env), `catalog`,
//!   `links` (HMAC key ring: advisor codes, page links, CSRF), `workflow` (TOML → `Definition`,
//!   the pure `step(definition, state, data, event, now) -> Decision`), `diagram` (a workflow's
//!   picture laid out), `schedule` (cron ticks,
//!   pure), `bounces` (RFC 3464, pure), `job` (`JobPayload`, one variant per job kind), `retry`,
//!   `campaign` (`CampaignState`, `RecipientState`, the lifecycle `CampaignState::apply(action)`,
//!   pure), `rate` (token buckets, what a claim may take, fixed windows; pure), `metric_names`
//!   (the Prometheus metrics' names, bounded label sets, latency buckets), `clock` (the only
//!   source of "now"), `files` (0600/0700); the read models the services return and `web` and
//!   `cli` render: `offer` (`OfferView`, `OfferTracking`, `InvitationView`, `AcceptanceView`,
//!   `ResellerView`, `CustomerView`, `Location`, `OfferFilter`…) and `instance`
//!   (`InstanceDetail`, `Transitioned`, `HistoryRow`, `EmailRow`), deriving the API's `ToSchema`;
//!   `portal` (`UserRow`, `SessionRow`, `AuditRow`, `AuditFilter`), `overview` (the portal
//!   overview's counts and funnel), `customer` (a customer's page, reseller pages).
//! - `store`     — the only SQL, over SQLite or PostgreSQL (sqlx `Any`): pool, migrations and
//!   LISTEN/NOTIFY in `mod.rs`; a file per aggregate: instances (the one transition commit),
//!   jobs (leased claims, fenced outcomes), schedules, locations, offers, campaigns (rows with
//!   their states parsed at the edge; the rate buckets' rows read and written in the claim's
//!   transaction, their arithmetic `core::rate`'s), users (portal users, sign-in links,
//!   sessions, audit log), company (the partner's identity row and `CompanyCell`, every
//!   node's copy of it, re-read every 30 s), the portal's reads (`reports`: the overview's
//!   aggregate counts and the funnel's daily roll-up; `offer_pages`, `reseller_pages`),
//!   scratch and `portal_bench` (bench
//!   databases). Reads build the `core` read models
//!   from rows; `Record` and the `*Row` inputs are its writes.
//! - `email`     — the only handlebars and lettre: templates, MIME, transports, and
//!   `Mailer::deliver`, the one path every email leaves by; `sink` (bench SMTP sink).
//! - `engine`    — drives instances: load → `step` → one `store::Commit` per transition;
//!   `detail` (an instance with history, emails, timers).
//! - `app`       — `AppState` (what every request, job and command needs) and `build()`, the one
//!   builder for production and tests; `ops`: the Prometheus recorder (process-wide, installed
//!   once), the scrape (`/metrics`: counters plus gauges read from the database) and readiness.
//! - `offers`    — offers, invitations, acceptances (confirmed by mail), delegated admin,
//!   resellers, sign-ups, API tokens; `tasks`: location sync, reconcile; what the portal's
//!   pages read (`pages`, `portal_reads`, `overview`). Typed services shared by `web` and
//!   `cli` (they return `core` values, never JSON).
//! - `campaigns` — one offer to many recipients: streamed CSV import, per-recipient ledger, the
//!   batched sender (leases, in-flight permits, token-bucket rate limits in the claim
//!   transaction), auto-pause/resume, reminders, unsubscribe, bounces. State changes go
//!   through `core::campaign`'s lifecycle, then a compare-and-set in the store; `portal`
//!   (the pages' reads and the streamed upload).
//! - `portal`    — the partner portal's foundation: users (roles admin, sales_agent, viewer;
//!   invite, deactivate), passwordless sign-in by single-use emailed links, server-side
//!   sessions (idle and absolute expiry, revocable), the audit log; `company` (the partner's
//!   identity and logo as administrators edit them). Shared by `web` and `cli`.
//! - `jobs`      — the only apalis: the claiming backend, `AppState::execute` (one arm per
//!   `JobPayload`), `run_due`, schedule ticks, pruning, `run_workers` (with each worker's
//!   heartbeat in `nodes`); `inspect` (jobs, nodes and schedules as operators see them: retry,
//!   cancel, run now one job or a filter's jobs, readdress a failed email, failed attempts;
//!   pausing and resuming a schedule; a job's payload masked).
//! - `web`       — the only axum: router and guards (the request metrics by route template, the
//!   `http.metrics_bind` router), `error` (the one error → status mapping),
//!   `openapi` (utoipa, from the handlers' types), `api/` per resource (`formats`: the string
//!   formats the handlers parse, as schemas), `pages/` per customer
//!   flow (CSRF, 303 to the sign-up URL), `pages/portal/` (the partner portal: `mod.rs` the
//!   session extractor, role checks and shared form pieces, then a file or folder per section:
//!   overview, customers, offers, campaigns, resellers, company, jobs (and nodes), workflows, instances, schedules; `view.rs` the shared texts,
//!   `templates/portal/layout.html` the layout), `views` + `templates/` (askama, escaped),
//!   `serve` (hyper with a header-read timeout).
//! - `server`    — `serve()`: the web router plus workers (and the metrics listener) until
//!   shutdown; the CLI and tests call it.
//! - `cli`       — clap: a file per command group (`offers`, `campaigns`, `users`), `output`,
//!   `bench`.
//!   Calls the services, never the web layer (only `bench` renders `web::views` to time pages).
//!   `web` and `cli` reach the store only through services (`bench` excepted).
//!
//! Invariants:
//! - A transition's new state, history row, email ledger rows, effect jobs and timer changes
//!   commit in one transaction, guarded by the instance version (one winner per race).
//! - A timer job completes inside the transaction of the transition it fires (fenced by its
//!   lease), so a timer fires at most once and a rescheduled timer never fires stale.
//! - Every job's key (and every email's Message-ID) is fixed before its first attempt; effects
//!   are idempotent under at-least-once execution.
//! - Job outcomes apply only while the worker still holds the job (same owner, same attempt).
//!   A job has a lease owner exactly while it is `running`: every write that leaves `running`
//!   clears it (the PostgreSQL outcome statement relies on this).
//! - A schedule tick is advanced by compare-and-set, and its run is recorded in the transaction
//!   that completes the run's job (fenced): no tick fires or is recorded twice, on any number of
//!   nodes; runs never overlap. The same transaction reads the schedule's pause: a paused
//!   schedule neither fires nor advances on any node.
//! - Nodes share nothing but the database: any node may die at any time; its jobs are taken
//!   over when their lease runs out.
//! - Workflows and templates are checked together at start: a template that cannot render with
//!   what its workflow supplies is a start-up error, never a send-time one.
//! - Nothing outside `clock` reads the system time.
//! - A write transaction that touches an instance locks its row before any job row (the
//!   fence, cancelled or replaced timers), so an event and a timer of one instance never
//!   deadlock; every email, lifecycle or campaign, leaves through `email::Mailer::deliver`.
//! - An offer's row and its `offer` lifecycle commit together; so do an acceptance's row and
//!   its lifecycle, and (on confirmation) its confirmed mark, its `submitted` state and the
//!   delegated-admin relationship its customer granted. An acceptance counts (notices,
//!   tracking, search, reconcile, relationship) only once confirmed through the single-use link
//!   mailed to an address at its domain; at most one confirmed acceptance per (offer, customer
//!   domain), any number unconfirmed.
//! - The public pages' rate limits are counters in the database (`rate_counters`), spent in one
//!   statement, so they hold across nodes; a request over a limit records and sends nothing.
//! - A sign-in link is spent by one conditional UPDATE (unused and unexpired), so of two
//!   redemptions one wins; only SHA-256 hashes of link and session secrets are stored; a
//!   sign-in email carries a reference, and the link's secret is derived from it with the link
//!   key only in the message sent. Writes to users, sessions and the company commit with their
//!   audit entry; the other portal writes (offers, campaigns, resellers) are audited right
//!   after their service commits (a failing audit insert answers 503 after the write).
//! - A location the latest sync does not list is marked removed in the transaction that starts
//!   its `location_notice`: the partner is told once per removal.
//! - A customer link is trusted only after its MAC verifies over data the server looks up itself
//!   (the offer's location); the sign-up redirect is built from configuration and the stored
//!   link only, never from the request.
//! - A bounce changes a ledger row or suppresses an address only if it matches a message we
//!   sent: its Message-ID (a campaign message's or a lifecycle email's, handed to the
//!   transport) and that message's recipient. Others are kept, unmatched, and change nothing.
//! - A running campaign completes exactly when no recipient is left to send: none pending or
//!   being sent, no reminder scheduled (one statement decides; rate limits play no part). No
//!   reminder is scheduled past its offer's expiry. Delivery counts (sent, reminded) keep every
//!   recipient a message went out to, whatever its outcome (accepted, expired, bounced).
//! - A campaign's tallies (`campaign_tallies`: recipients per state and day sent, soft
//!   bounces, reminders) change only by database triggers on `campaign_recipients`, in the
//!   statement that changes the recipients, so they always sum to the ledger (`campaign
//!   status --recount` checks); every page and `campaign status` read them, never count the
//!   ledger. The funnel's `funnel_days` hold only days over for an hour (final: events are
//!   stamped when they happen); `funnel_rollup.upto` moves by compare-and-set, one roller wins.
//! - A campaign recipient's Message-ID is fixed when its row is written; its sender holds one
//!   in-flight permit from claim until the outcome committed, so a crash re-sends at most
//!   `campaigns.in_flight` messages per worker and never one whose row says `sent`.

pub mod app;
pub mod campaigns;
pub mod cli;
pub mod core;
pub mod email;
pub mod engine;
pub mod jobs;
pub mod offers;
pub mod portal;
pub mod server;
pub mod store;
pub mod web;
