//! partnerflow: a partner's invitations, offers and their lifecycles, run by themselves.
//!
//! Codemap (one line per module):
//! - `domain`   — types parsed once at the edge: `Timestamp`, `Span`, `EmailAddress`, `Locale`, `InstanceId`,
//!   `OfferId`, `OfferKind`, `AdminRole`, `Country`, `ProductId`, `LicenseCount`, `DomainName`, `MpnId`, `Role`.
//! - `config`   — layered settings (built-in default.toml < --config FILE < PARTNERFLOW__* env); `Secret`.
//! - `catalog`  — `config/catalog.toml` (products, trial/paid, licence limits, countries), checked at start.
//! - `links`    — HMAC-SHA256 key ring with key ids: advisor codes, personal page links, CSRF tokens.
//! - `workflow` — compiles `workflows/*.toml` into `Definition`s (errors carry file:line) and the
//!   pure `step(definition, state, data, event, now) -> Decision`. No I/O, no clock.
//! - `email`    — the only module that knows handlebars and lettre: templates, MIME building, transports.
//! - `store`    — the only module that knows SQL: instances, history, jobs, email ledger, schedules,
//!   locations, over SQLite or PostgreSQL (sqlx `Any`, backend chosen by the URL scheme; claims
//!   with `FOR UPDATE SKIP LOCKED`, LISTEN/NOTIFY to wake idle workers on every node).
//! - `engine`   — drives instances: load → `step` → one `store::Commit` per transition.
//! - `jobs`     — the only module that knows apalis: `AppState::execute` for each job kind, the
//!   custom backend that claims leased jobs, the batched acknowledger, schedule ticks, pruning.
//! - `schedule` — cron tick arithmetic (pure): baseline, due, missed ticks and the catch-up policy.
//! - `tasks`    — the scheduled tasks `location_sync` and `reconcile` (jobs, and sign-ups via `offers`).
//! - `offers`   — the partner's business over the engine: offers, invitations, acceptances, delegated
//!   admin, resellers, sign-ups, API tokens. Knows neither HTTP nor SQL; shared by `http` and `cli`.
//! - `pages`    — the customer's pages as HTML strings (de/en), every outside value escaped. Pure.
//! - `clock`    — `Clock` (system or manual): the only source of "now".
//! - `files`    — private files and folders (0600/0700, umask 077): database, outbox, keys.
//! - `app`      — one builder for production and tests: settings → templates → workflows → store → runtime.
//! - `http`     — the only module that knows HTTP (axum): partner API (bearer tokens, roles, OpenAPI
//!   from one route table), customer pages (CSRF, 303 to the sign-up URL); errors → status + code in one place;
//!   security headers and one 404 answer; `http::serve` (hyper, with a header-read timeout).
//! - `campaigns` — one offer to many recipients: streamed CSV import, per-recipient ledger, the
//!   batched sender (leases, at most `in_flight` unconfirmed sends, rate limits as token buckets
//!   spent in the claim transaction), auto-pause/resume, reminders, unsubscribe, bounces.
//! - `bounces`  — delivery status notifications (RFC 3464) → hard/soft bounces. Pure.
//! - `smtp_sink` — a minimal counting SMTP server: the local sink of `bench campaign`.
//! - `cli`      — clap commands (`cli_offers` mirrors the partner API, `cli_campaigns` campaigns,
//!   bounces, suppressions); `bench` — commands that print figures.
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
//!   nodes; runs never overlap.
//! - Nodes share nothing but the database: any node may die at any time; its jobs are taken
//!   over when their lease runs out.
//! - Workflows and templates are checked together at start: a template that cannot render with
//!   what its workflow supplies is a start-up error, never a send-time one.
//! - Nothing outside `clock` reads the system time.
//! - An offer's row and its `offer` lifecycle commit together; so do an acceptance's row and
//!   its lifecycle, and (on confirmation) its confirmed mark, its `submitted` state and the
//!   delegated-admin relationship its customer granted. An acceptance counts (notices,
//!   tracking, search, reconcile, relationship) only once confirmed through the single-use link
//!   mailed to an address at its domain; at most one confirmed acceptance per (offer, customer
//!   domain), any number unconfirmed.
//! - The public pages' rate limits are counters in the database (`rate_counters`), spent in one
//!   statement, so they hold across nodes; a request over a limit records and sends nothing.
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
//! - A campaign recipient's Message-ID is fixed when its row is written; its sender holds one
//!   in-flight permit from claim until the outcome committed, so a crash re-sends at most
//!   `campaigns.in_flight` messages per worker and never one whose row says `sent`.

pub mod app;
pub mod campaigns;
pub mod cli;
pub mod core;
pub mod email;
pub mod engine;
pub mod http;
pub mod jobs;
pub mod offers;
pub mod pages;
pub mod server;
pub mod store;
