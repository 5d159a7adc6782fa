//! Campaigns and their per-recipient ledger: bulk import, claiming with leases, batched
//! outcomes (one statement per batch, rows as one JSON parameter), suppressions, counts.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Result, Store, StoreError, json_text};
use crate::core::campaign::{CampaignRow, CampaignState, RecipientCounts, RecipientState};
use crate::core::domain::Timestamp;
use crate::core::rate::{self, Level, RateLimits, Stored};

/// Campaigns as `GET /metrics` reports them (see [`Store::campaign_gauges`]).
#[derive(Debug, Clone, Default)]
pub struct CampaignGauges {
    /// Campaigns per state.
    pub campaigns: Vec<(CampaignState, i64)>,
    /// Recipients per state, over every campaign.
    pub recipients: Vec<(RecipientState, i64)>,
}

/// A recipient to write (import).
#[derive(Debug, Clone, Serialize)]
pub struct NewRecipient {
    pub seq: i64,
    pub email: String,
    pub email_key: String,
    pub domain: String,
    pub name: Option<String>,
    pub company: Option<String>,
    pub locale: String,
    pub extra: Option<Value>,
    pub message_id: String,
}

/// A claimed recipient, leased to this worker.
#[derive(Debug, Clone)]
pub struct ClaimedRecipient {
    pub campaign_id: String,
    pub seq: i64,
    pub email: String,
    pub email_key: String,
    pub name: Option<String>,
    pub company: Option<String>,
    pub locale: String,
    pub extra: Option<Value>,
    pub message_id: String,
    pub attempts: i64,
    /// 0: the invitation; 1: the reminder.
    pub phase: i64,
}

impl ClaimedRecipient {
    /// The Message-ID of this phase's message: the invitation's, or for the reminder the same
    /// with `.r` before the `@` (both fixed when the row was written).
    pub fn phase_message_id(&self) -> String {
        reminder_message_id(&self.message_id, self.phase)
    }
}

/// The Message-ID of phase `phase` of a recipient whose invitation has `message_id`.
pub fn reminder_message_id(message_id: &str, phase: i64) -> String {
    match (phase, message_id.rsplit_once('@')) {
        (1, Some((local, domain))) => format!("{local}.r@{domain}"),
        _ => message_id.to_string(),
    }
}

/// What a claim got: recipients, and when rate limits allow more (if they held some back).
#[derive(Debug, Default)]
pub struct Claim {
    pub recipients: Vec<ClaimedRecipient>,
    pub limited_until: Option<Timestamp>,
    /// Domains whose backlog was moved to later (their limit ran out): claim again at once.
    pub deferred: usize,
}

/// What became of one send attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientOutcome {
    Sent {
        reply: String,
        at: Timestamp,
    },
    /// Try again at `at` (a transient failure).
    Retry {
        at: Timestamp,
        error: String,
    },
    Failed {
        error: String,
    },
    Suppressed {
        reason: String,
    },
}

/// One ledger row as `campaign report` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerRow {
    pub seq: i64,
    pub email: String,
    pub state: RecipientState,
    pub message_id: String,
    pub attempts: i64,
    pub reply: Option<String>,
    pub error: Option<String>,
    /// The invitation's delivery.
    pub sent_at: Option<Timestamp>,
    /// The reminder's delivery (`reply` its server's reply).
    pub reminded_at: Option<Timestamp>,
    pub reminder_reply: Option<String>,
    /// When the reminder is due, while it is scheduled.
    pub remind_at: Option<Timestamp>,
    pub phase: i64,
    pub soft_bounces: i64,
}

/// The message we sent that a bounce is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BounceTarget {
    /// A campaign recipient's invitation or reminder.
    Campaign {
        campaign_id: String,
        seq: i64,
        email_key: String,
    },
    /// A lifecycle email (the email ledger).
    Email {
        message_id: String,
        email_key: String,
    },
}

/// One received bounce as kept (`bounces list`).
#[derive(Debug, Clone, Serialize)]
pub struct BounceRow {
    pub received_at: Timestamp,
    pub source: String,
    /// `hard` or `soft`.
    pub kind: String,
    pub status: String,
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    pub diagnostic: Option<String>,
    /// What it matched (`campaign <id> line <n>`, `email <message id>`); None: unmatched,
    /// nothing was changed.
    pub matched: Option<String>,
    /// Why it matched nothing.
    pub reason: Option<String>,
    pub suppressed: bool,
}

/// A stored campaign state (parsed once, here).
fn campaign_state(s: String) -> Result<CampaignState> {
    CampaignState::parse(&s).map_err(|e| StoreError::Corrupt(format!("campaign state: {e}")))
}

/// A stored recipient state (parsed once, here).
fn recipient_state(s: String) -> Result<RecipientState> {
    RecipientState::parse(&s).map_err(|e| StoreError::Corrupt(format!("recipient state: {e}")))
}

impl RecipientOutcome {
    /// The state a recipient's row takes with this outcome.
    pub fn state(&self) -> RecipientState {
        match self {
            RecipientOutcome::Sent { .. } => RecipientState::Sent,
            RecipientOutcome::Retry { .. } => RecipientState::Pending,
            RecipientOutcome::Failed { .. } => RecipientState::Failed,
            RecipientOutcome::Suppressed { .. } => RecipientState::Suppressed,
        }
    }
}

/// The columns an outcome writes besides the state: reply, error, sent at, due at.
fn outcome_columns(o: &RecipientOutcome) -> (Option<&str>, Option<&str>, Option<i64>, Option<i64>) {
    match o {
        RecipientOutcome::Sent { reply, at } => (Some(reply.as_str()), None, Some(at.0), None),
        RecipientOutcome::Retry { at, error } => (None, Some(error.as_str()), None, Some(at.0)),
        RecipientOutcome::Failed { error } => (None, Some(error.as_str()), None, None),
        RecipientOutcome::Suppressed { reason } => (None, Some(reason.as_str()), None, None),
    }
}

pub(super) const CAMPAIGN_COLS: &str = "id, offer_id, name, template, state, pause_reason, consecutive_failures, created_by, created_at, updated_at, finished_at, max_per_minute, reminder_after, reminder_template";

pub(super) fn campaign_row(r: &AnyRow) -> Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.try_get("id")?,
        offer_id: r.try_get("offer_id")?,
        name: r.try_get("name")?,
        template: r.try_get("template")?,
        state: campaign_state(r.try_get("state")?)?,
        pause_reason: r.try_get("pause_reason")?,
        consecutive_failures: r.try_get("consecutive_failures")?,
        created_by: r.try_get("created_by")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
        finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(Timestamp),
        max_per_minute: r.try_get("max_per_minute")?,
        reminder_after: r
            .try_get::<Option<i64>, _>("reminder_after")?
            .map(crate::core::domain::Span),
        reminder_template: r.try_get("reminder_template")?,
    })
}

/// When a domain's rate limit runs out, its recipients among this many due ones (the head of
/// the queue) move to later at once: bounded work per claim, with no index on the domain
/// (which cost 9 % of the unlimited send rate). Any further back move when they reach the head.
const DEFER_WINDOW: i64 = 5000;

/// Outcomes per statement (SQLite).
const FINISH_CHUNK: usize = 64;

/// The SQLite outcome statement: $1 now, $2 owner, $3 campaign, then 7 values per row.
fn sqlite_finish_sql() -> String {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..FINISH_CHUNK)
            .map(|i| {
                let b = 4 + i * 7;
                format!("(${b}, ${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6)
            })
            .collect();
        format!(
            "WITH v (vseq, vattempts, vstate, vreply, verror, vsent, vdue) AS (VALUES {})
             UPDATE campaign_recipients SET state = vstate, error = verror,
                    reply = CASE WHEN phase = 0 THEN COALESCE(vreply, reply) ELSE reply END,
                    sent_at = CASE WHEN phase = 0 THEN COALESCE(vsent, sent_at) ELSE sent_at END,
                    reminder_reply = CASE WHEN phase = 1 THEN COALESCE(vreply, reminder_reply) ELSE reminder_reply END,
                    reminded_at = CASE WHEN phase = 1 THEN COALESCE(vsent, reminded_at) ELSE reminded_at END,
                    due_at = COALESCE(vdue, due_at), lease_owner = NULL, lease_until = NULL, updated_at = $1,
                    remind_at = {REMIND_AT}
             FROM v WHERE campaign_id = $3 AND seq = vseq AND attempts = vattempts AND state = 'sending' AND lease_owner = $2",
            rows.join(", "),
            REMIND_AT = remind_at_sql("phase", "vstate", "vsent", "$3"),
        )
    })
    .clone()
}

/// The `remind_at` a recipient's outcome leaves (columns named for the statement): when its
/// invitation (`phase` 0) was sent, the campaign's delay later, if that is before the offer
/// expires; otherwise none (a reminder for an expired offer would never go out, and would
/// only keep the campaign running).
fn remind_at_sql(phase: &str, state: &str, sent: &str, campaign: &str) -> String {
    format!(
        "CASE WHEN {state} = 'sent' AND {phase} = 0
                AND {sent} + (SELECT reminder_after FROM campaigns WHERE id = {campaign})
                    < (SELECT o.expires_at FROM campaigns rc JOIN offers o ON o.offer_id = rc.offer_id WHERE rc.id = {campaign})
              THEN {sent} + (SELECT reminder_after FROM campaigns WHERE id = {campaign}) ELSE NULL END"
    )
}

/// The PostgreSQL outcome statement: $1 now, $2 owner, $3 the rows as JSON, $4 campaign.
fn postgres_finish_sql() -> String {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH v AS (SELECT * FROM json_to_recordset($3::text::json) AS r (seq BIGINT, attempts BIGINT, state TEXT, reply TEXT, error TEXT, sent_at BIGINT, due_at BIGINT))
                 UPDATE campaign_recipients c SET state = v.state, error = v.error,
                        reply = CASE WHEN c.phase = 0 THEN COALESCE(v.reply, c.reply) ELSE c.reply END,
                        sent_at = CASE WHEN c.phase = 0 THEN COALESCE(v.sent_at, c.sent_at) ELSE c.sent_at END,
                        reminder_reply = CASE WHEN c.phase = 1 THEN COALESCE(v.reply, c.reminder_reply) ELSE c.reminder_reply END,
                        reminded_at = CASE WHEN c.phase = 1 THEN COALESCE(v.sent_at, c.reminded_at) ELSE c.reminded_at END,
                        due_at = COALESCE(v.due_at, c.due_at), lease_owner = NULL, lease_until = NULL, updated_at = $1,
                        remind_at = {REMIND_AT}
                 FROM v WHERE c.campaign_id = $4 AND c.seq = ANY(ARRAY(SELECT seq FROM v)) AND c.seq = v.seq AND c.attempts = v.attempts
                   AND c.state = 'sending' AND c.lease_owner = $2",
            REMIND_AT = remind_at_sql("c.phase", "v.state", "v.sent_at", "$4"),
        )
    })
    .clone()
}

/// Rows per statement when importing.
const IMPORT_CHUNK: usize = 1000;

/// The columns [`ledger_row`] reads.
const LEDGER_COLS: &str = "seq, email, state, message_id, attempts, reply, error, sent_at, reminded_at, reminder_reply, remind_at, phase, soft_bounces";

/// A recipient's ledger row (selected with [`LEDGER_COLS`]).
fn ledger_row(r: &AnyRow) -> Result<LedgerRow> {
    Ok(LedgerRow {
        seq: r.try_get("seq")?,
        email: r.try_get("email")?,
        state: recipient_state(r.try_get("state")?)?,
        message_id: r.try_get("message_id")?,
        attempts: r.try_get("attempts")?,
        reply: r.try_get("reply")?,
        error: r.try_get("error")?,
        sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(Timestamp),
        reminded_at: r.try_get::<Option<i64>, _>("reminded_at")?.map(Timestamp),
        reminder_reply: r.try_get("reminder_reply")?,
        remind_at: r.try_get::<Option<i64>, _>("remind_at")?.map(Timestamp),
        phase: r.try_get("phase")?,
        soft_bounces: r.try_get("soft_bounces")?,
    })
}

/// Adds one row of (state, recipients, soft bounces, sent, reminded, reminders scheduled) to
/// `c`: the tallies' and the recount's rows have these first six columns.
fn add_counts_row(c: &mut RecipientCounts, r: &sqlx::any::AnyRow) -> Result<()> {
    let state = recipient_state(r.try_get(0)?)?;
    c.add(state, r.try_get(1)?);
    c.soft_bounces += r.try_get::<i64, _>(2)?;
    c.sent += r.try_get::<i64, _>(3)?;
    c.reminded += r.try_get::<i64, _>(4)?;
    c.reminders_scheduled += r.try_get::<i64, _>(5)?;
    Ok(())
}

impl Store {
    pub async fn insert_campaign(&self, c: &CampaignRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO campaigns (id, offer_id, name, template, state, created_by, created_at, updated_at, max_per_minute, reminder_after, reminder_template)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10)",
        )
        .bind(&c.id)
        .bind(&c.offer_id)
        .bind(&c.name)
        .bind(&c.template)
        .bind(c.state.as_str())
        .bind(&c.created_by)
        .bind(c.created_at.0)
        .bind(c.max_per_minute)
        .bind(c.reminder_after.map(|d| d.0))
        .bind(&c.reminder_template)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn campaign(&self, id: &str) -> Result<Option<CampaignRow>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| campaign_row(&r))
        .transpose()
    }

    pub async fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns ORDER BY created_at DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_row).collect()
    }

    /// Running campaigns' ids (the sender's round robin).
    pub async fn running_campaigns(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT id FROM campaigns WHERE state = 'running' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Moves a campaign from one of `from` to `to` (compare-and-set; the lifecycle is
    /// `core::campaign`'s); false if it was in none of them. A finished state stamps
    /// `finished_at`.
    pub async fn set_campaign_state(
        &self,
        id: &str,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let from_json = json_text(&from);
        let sql = match self.backend {
            Backend::Sqlite => {
                "UPDATE campaigns SET state = $1, pause_reason = $2, updated_at = $3, consecutive_failures = 0,
                    finished_at = CASE WHEN $6 = 1 THEN $3 ELSE finished_at END
                 WHERE id = $4 AND state IN (SELECT value FROM json_each($5))"
            }
            Backend::Postgres => {
                "UPDATE campaigns SET state = $1, pause_reason = $2, updated_at = $3, consecutive_failures = 0,
                    finished_at = CASE WHEN $6 = 1 THEN $3 ELSE finished_at END
                 WHERE id = $4 AND state IN (SELECT json_array_elements_text($5::text::json))"
            }
        };
        let r = sqlx::query(sql)
            .bind(to.as_str())
            .bind(reason)
            .bind(now.0)
            .bind(id)
            .bind(from_json)
            .bind(i64::from(to.is_finished()))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Adds `n` to a running campaign's consecutive delivery failures (or resets them with
    /// `n = 0`); when they reach `limit`, pauses it with `reason`. Returns true if it paused.
    pub async fn note_campaign_failures(
        &self,
        id: &str,
        failures: i64,
        successes: bool,
        limit: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if successes {
            sqlx::query("UPDATE campaigns SET consecutive_failures = $1 WHERE id = $2")
                .bind(failures)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE campaigns SET consecutive_failures = consecutive_failures + $1 WHERE id = $2")
                .bind(failures)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let r = sqlx::query(
            "UPDATE campaigns SET state = 'paused', pause_reason = $1, updated_at = $2
             WHERE id = $3 AND state = 'running' AND consecutive_failures >= $4",
        )
        .bind(reason)
        .bind(now.0)
        .bind(id)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Writes recipients; returns the `seq`s that were new (the others are duplicates of an
    /// address already in the campaign).
    pub async fn insert_recipients(
        &self,
        campaign: &str,
        rows: &[NewRecipient],
        now: Timestamp,
    ) -> Result<Vec<i64>> {
        let mut inserted = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(IMPORT_CHUNK) {
            let sql = match self.backend {
                Backend::Sqlite => {
                    "INSERT INTO campaign_recipients (campaign_id, seq, email, email_key, domain, name, company, locale, extra, state, message_id, due_at, updated_at)
                     SELECT $1, json_extract(value, '$.seq'), json_extract(value, '$.email'), json_extract(value, '$.email_key'), json_extract(value, '$.domain'),
                            json_extract(value, '$.name'), json_extract(value, '$.company'), json_extract(value, '$.locale'),
                            json_extract(value, '$.extra'), 'pending', json_extract(value, '$.message_id'), $2, $2
                     FROM json_each($3) WHERE true
                     ON CONFLICT DO NOTHING RETURNING seq"
                }
                Backend::Postgres => {
                    "INSERT INTO campaign_recipients (campaign_id, seq, email, email_key, domain, name, company, locale, extra, state, message_id, due_at, updated_at)
                     SELECT $1, seq, email, email_key, domain, name, company, locale, extra::text, 'pending', message_id, $2, $2
                     FROM json_to_recordset($3::text::json) AS r (seq BIGINT, email TEXT, email_key TEXT, domain TEXT, name TEXT, company TEXT, locale TEXT, extra JSON, message_id TEXT)
                     ON CONFLICT DO NOTHING RETURNING seq"
                }
            };
            let mut tx = self.begin_write().await?;
            let seqs = sqlx::query_scalar::<_, i64>(sql)
                .bind(campaign)
                .bind(now.0)
                .bind(json_text(&chunk))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            inserted.extend(seqs);
        }
        Ok(inserted)
    }

    /// Marks a campaign's pending recipients whose address is suppressed; returns how many.
    pub async fn suppress_pending(&self, campaign: &str, now: Timestamp) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE campaign_recipients SET state = 'suppressed', error = (SELECT reason FROM suppressions s WHERE s.email_key = campaign_recipients.email_key), updated_at = $2
             WHERE campaign_id = $1 AND state = 'pending' AND email_key IN (SELECT email_key FROM suppressions)",
        )
        .bind(campaign)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Of `keys`, those suppressed.
    pub async fn suppressed_among(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, String>> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT email_key, reason FROM suppressions WHERE email_key IN (SELECT value FROM json_each($1))"
            }
            Backend::Postgres => {
                "SELECT email_key, reason FROM suppressions WHERE email_key = ANY(ARRAY(SELECT json_array_elements_text($1::text::json)))"
            }
        };
        let rows = sqlx::query(sql)
            .bind(json_text(&keys))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect()
    }

    /// Adds an address to the suppression list (idempotent: the first reason stays).
    pub async fn suppress(
        &self,
        email_key: &str,
        reason: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO suppressions (email_key, reason, source, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (email_key) DO NOTHING",
        )
        .bind(email_key)
        .bind(reason)
        .bind(source)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Returns leased recipients whose lease ran out (their worker died) to `pending`.
    pub async fn requeue_expired_recipients(&self, now: Timestamp) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE campaign_recipients SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = $1
             WHERE state = 'sending' AND lease_until < $1",
        )
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Claims up to `n` due recipients of a running campaign for `owner` until `until`,
    /// within the rate limits: the token buckets (rows of `rate_buckets`) are read, spent and
    /// written in the claim's transaction, so they hold across workers and restarts. A due
    /// recipient whose domain has no token left is deferred (its `due_at` moves to when the
    /// domain's bucket refills) so that it does not hold up other domains.
    pub async fn claim_recipients(
        &self,
        campaign: &str,
        owner: &str,
        n: i64,
        now: Timestamp,
        until: Timestamp,
        limits: RateLimits,
    ) -> Result<Claim> {
        let mut tx = self.begin_write().await?;
        // The shared buckets (transport, campaign) first: how many this claim may take.
        let mut shared: Vec<Level> = Vec::new();
        let mut allow = n;
        let mut limited_until: Option<i64> = None;
        let shapes = limits.shared_buckets(campaign);
        if !shapes.is_empty() {
            let keys: Vec<&str> = shapes.iter().map(|b| b.0.as_str()).collect();
            let stored = self.load_buckets(&mut tx, &keys).await?;
            shared = rate::levels(shapes, &stored, now.0);
            (allow, limited_until) = rate::allowance(&shared, n, now.0);
            if allow == 0 {
                tx.commit().await?;
                return Ok(Claim {
                    recipients: Vec::new(),
                    limited_until: limited_until.map(Timestamp),
                    deferred: 0,
                });
            }
        }
        let (candidates_sql, claim_sql) = match self.backend {
            Backend::Sqlite => (
                "SELECT seq, domain FROM campaign_recipients WHERE campaign_id = $1 AND state = 'pending' AND due_at <= $2
                   AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND state = 'running')
                 ORDER BY due_at LIMIT $3",
                "UPDATE campaign_recipients SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                 WHERE campaign_id = $4 AND state = 'pending' AND seq IN (SELECT value FROM json_each($5))
                 RETURNING campaign_id, seq, email, email_key, name, company, locale, extra, message_id, attempts, phase",
            ),
            Backend::Postgres => (
                "SELECT seq, domain FROM campaign_recipients WHERE campaign_id = $1 AND state = 'pending' AND due_at <= $2
                   AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND state = 'running')
                 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED",
                "UPDATE campaign_recipients SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                 WHERE campaign_id = $4 AND state = 'pending' AND seq = ANY(ARRAY(SELECT json_array_elements_text($5::text::json)::BIGINT))
                 RETURNING campaign_id, seq, email, email_key, name, company, locale, extra, message_id, attempts, phase",
            ),
        };
        let mut deferred = 0;
        let domain_bucket = limits.domain_bucket();
        let rows = if domain_bucket.is_none() && shared.is_empty() {
            // No limits: one statement.
            let sql = match self.backend {
                Backend::Sqlite => {
                    "UPDATE campaign_recipients SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                     WHERE rowid IN (SELECT rowid FROM campaign_recipients WHERE campaign_id = $4 AND state = 'pending' AND due_at <= $3
                                     AND EXISTS (SELECT 1 FROM campaigns WHERE id = $4 AND state = 'running')
                                     ORDER BY due_at LIMIT $5)
                     RETURNING campaign_id, seq, email, email_key, name, company, locale, extra, message_id, attempts, phase"
                }
                Backend::Postgres => {
                    "WITH c AS (SELECT campaign_id, seq FROM campaign_recipients WHERE campaign_id = $4 AND state = 'pending' AND due_at <= $3
                                AND EXISTS (SELECT 1 FROM campaigns WHERE id = $4 AND state = 'running')
                                ORDER BY due_at LIMIT $5 FOR UPDATE SKIP LOCKED)
                     UPDATE campaign_recipients r SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = r.attempts + 1, updated_at = $3
                     FROM c WHERE r.campaign_id = c.campaign_id AND r.seq = c.seq
                     RETURNING r.campaign_id, r.seq, r.email, r.email_key, r.name, r.company, r.locale, r.extra, r.message_id, r.attempts, r.phase"
                }
            };
            sqlx::query(sql)
                .bind(owner)
                .bind(until.0)
                .bind(now.0)
                .bind(campaign)
                .bind(n)
                .fetch_all(&mut *tx)
                .await?
        } else {
            // Candidates (more than allowed when domains are limited, so that one busy domain
            // does not starve the others), then the domain buckets decide.
            let cands = sqlx::query(candidates_sql)
                .bind(campaign)
                .bind(now.0)
                .bind(limits.lookahead(allow))
                .fetch_all(&mut *tx)
                .await?;
            let cands: Vec<(i64, String)> = cands
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
            let pick = match domain_bucket {
                Some(db) => {
                    let keys = rate::domain_keys(cands.iter().map(|c| c.1.as_str()));
                    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let stored = self.load_buckets(&mut tx, &key_refs).await?;
                    rate::pick_by_domain(db, &cands, &stored, allow, now.0)
                }
                None => rate::DomainPick {
                    take: cands.iter().map(|c| c.0).collect(),
                    ..Default::default()
                },
            };
            let take = pick.take;
            let defer = pick.deferred;
            rate::spend(&mut shared, take.len());
            let stamp: Vec<(&str, f64)> = shared
                .iter()
                .chain(&pick.levels)
                .map(|l| (l.key.as_str(), l.tokens))
                .collect();
            self.store_buckets(&mut tx, &stamp, now).await?;
            let claimed = if take.is_empty() {
                Vec::new()
            } else {
                sqlx::query(claim_sql)
                    .bind(owner)
                    .bind(until.0)
                    .bind(now.0)
                    .bind(campaign)
                    .bind(json_text(&take))
                    .fetch_all(&mut *tx)
                    .await?
            };
            // After the claim: what it took is `sending` and stays out of this.
            let defer_sql = match self.backend {
                Backend::Sqlite => {
                    "UPDATE campaign_recipients SET due_at = $4 + CAST((w.k - 1) * $5 AS INTEGER)
                     FROM (SELECT seq AS wseq, ROW_NUMBER() OVER (ORDER BY due_at, seq) AS k
                           FROM (SELECT seq, due_at, domain FROM campaign_recipients
                                 WHERE campaign_id = $1 AND state = 'pending' AND due_at <= $3 ORDER BY due_at LIMIT $6) h
                           WHERE domain = $2) w
                     WHERE campaign_id = $1 AND seq = w.wseq"
                }
                Backend::Postgres => {
                    "UPDATE campaign_recipients c SET due_at = $4 + CAST((w.k - 1) * $5 AS BIGINT)
                     FROM (SELECT seq AS wseq, ROW_NUMBER() OVER (ORDER BY due_at, seq) AS k
                           FROM (SELECT seq, due_at, domain FROM campaign_recipients
                                 WHERE campaign_id = $1 AND state = 'pending' AND due_at <= $3 ORDER BY due_at LIMIT $6) h
                           WHERE domain = $2) w
                     WHERE c.campaign_id = $1 AND c.seq = w.wseq"
                }
            };
            deferred = defer.len();
            for d in &defer {
                sqlx::query(defer_sql)
                    .bind(campaign)
                    .bind(&d.domain)
                    .bind(now.0)
                    .bind(d.first)
                    .bind(d.every_ms)
                    .bind(DEFER_WINDOW)
                    .execute(&mut *tx)
                    .await?;
            }
            claimed
        };
        tx.commit().await?;
        let recipients = rows
            .iter()
            .map(|r| {
                let extra: Option<String> = r.try_get("extra")?;
                Ok(ClaimedRecipient {
                    campaign_id: r.try_get("campaign_id")?,
                    seq: r.try_get("seq")?,
                    email: r.try_get("email")?,
                    email_key: r.try_get("email_key")?,
                    name: r.try_get("name")?,
                    company: r.try_get("company")?,
                    locale: r.try_get("locale")?,
                    extra: extra
                        .map(|e| serde_json::from_str(&e))
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("recipient extra: {e}")))?,
                    message_id: r.try_get("message_id")?,
                    attempts: r.try_get("attempts")?,
                    phase: r.try_get("phase")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Claim {
            recipients,
            limited_until: limited_until.map(Timestamp),
            deferred,
        })
    }

    async fn load_buckets(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, Stored>> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        if self.backend == Backend::Postgres {
            // Rows first (`at` = -1: never used), so that the row locks below serialize
            // workers even on a bucket's first use.
            sqlx::query(
                "INSERT INTO rate_buckets (key, tokens, at) SELECT json_array_elements_text($1::text::json), 0, -1 ON CONFLICT (key) DO NOTHING",
            )
            .bind(json_text(&keys))
            .execute(&mut **tx)
            .await?;
        }
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT key, tokens, at FROM rate_buckets WHERE key IN (SELECT value FROM json_each($1))"
            }
            // Row locks: workers sharing the database spend one bucket in turn.
            Backend::Postgres => {
                "SELECT key, tokens, at FROM rate_buckets WHERE key = ANY(ARRAY(SELECT json_array_elements_text($1::text::json))) ORDER BY key FOR UPDATE"
            }
        };
        let rows = sqlx::query(sql)
            .bind(json_text(&keys))
            .fetch_all(&mut **tx)
            .await?;
        let mut out = std::collections::HashMap::new();
        for r in &rows {
            let at: i64 = r.try_get(2)?;
            if at >= 0 {
                let tokens = r.try_get::<f64, _>(1)?;
                out.insert(r.try_get::<String, _>(0)?, Stored { tokens, at });
            }
        }
        Ok(out)
    }

    async fn store_buckets(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        buckets: &[(&str, f64)],
        now: Timestamp,
    ) -> Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let rows: Vec<Value> = buckets
            .iter()
            .map(|(k, t)| json!({ "key": k, "tokens": t }))
            .collect();
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO rate_buckets (key, tokens, at) SELECT json_extract(value, '$.key'), json_extract(value, '$.tokens'), $2 FROM json_each($1) WHERE true
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at"
            }
            Backend::Postgres => {
                "INSERT INTO rate_buckets (key, tokens, at) SELECT key, tokens, $2 FROM json_to_recordset($1::text::json) AS r (key TEXT, tokens DOUBLE PRECISION)
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at"
            }
        };
        sqlx::query(sql)
            .bind(json_text(&rows))
            .bind(now.0)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Extends the lease of recipients still being sent.
    pub async fn extend_recipient_leases(&self, owner: &str, until: Timestamp) -> Result<u64> {
        let r = sqlx::query("UPDATE campaign_recipients SET lease_until = $1 WHERE state = 'sending' AND lease_owner = $2")
            .bind(until.0)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Applies outcomes in one statement per campaign; only where this worker still holds the
    /// recipient (same owner, same attempt). Returns how many applied.
    pub async fn finish_recipients(
        &self,
        owner: &str,
        outcomes: &[(ClaimedRecipient, RecipientOutcome)],
        now: Timestamp,
    ) -> Result<u64> {
        if self.backend == Backend::Sqlite {
            let mut applied = 0;
            let mut tx = self.begin_write().await?;
            // SQLite: rows as bound values, FINISH_CHUNK at a time (padded, so that one
            // prepared statement serves every chunk); JSON here cost more than the sends.
            let sql = sqlite_finish_sql();
            let mut per: std::collections::BTreeMap<
                &str,
                Vec<&(ClaimedRecipient, RecipientOutcome)>,
            > = Default::default();
            for x in outcomes {
                per.entry(x.0.campaign_id.as_str()).or_default().push(x);
            }
            for (campaign, rows) in per {
                for chunk in rows.chunks(FINISH_CHUNK) {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(now.0)
                        .bind(owner)
                        .bind(campaign);
                    for i in 0..FINISH_CHUNK {
                        let (seq, attempts, state, reply, error, sent, due) = match chunk.get(i) {
                            None => (-1, 0, "", None, None, None, None),
                            Some((r, o)) => {
                                let (reply, error, sent, due) = outcome_columns(o);
                                (
                                    r.seq,
                                    r.attempts,
                                    o.state().as_str(),
                                    reply,
                                    error,
                                    sent,
                                    due,
                                )
                            }
                        };
                        q = q
                            .bind(seq)
                            .bind(attempts)
                            .bind(state)
                            .bind(reply)
                            .bind(error)
                            .bind(sent)
                            .bind(due);
                    }
                    applied += q.execute(&mut *tx).await?.rows_affected();
                }
            }
            tx.commit().await?;
            return Ok(applied);
        }
        let mut by_campaign: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
        for (r, o) in outcomes {
            let state = o.state().as_str();
            let (reply, error, sent_at, due_at) = outcome_columns(o);
            by_campaign.entry(&r.campaign_id).or_default().push(json!({
                "seq": r.seq, "attempts": r.attempts, "state": state, "reply": reply, "error": error, "sent_at": sent_at, "due_at": due_at,
            }));
        }
        // PostgreSQL (SQLite returned above).
        let sql = postgres_finish_sql();
        let mut applied = 0;
        let mut tx = self.begin_write().await?;
        for (campaign, rows) in by_campaign {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(now.0)
                .bind(owner)
                .bind(json_text(&rows))
                .bind(campaign)
                .execute(&mut *tx)
                .await?;
            applied += r.rows_affected();
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// What `GET /metrics` reports of campaigns: campaigns by state (the index on their
    /// state), and recipients by state over every campaign, from the tallies (a few rows per
    /// campaign and day; never the ledger).
    pub async fn campaign_gauges(&self) -> Result<CampaignGauges> {
        let campaigns: Vec<(CampaignState, i64)> =
            sqlx::query("SELECT state, COUNT(*) FROM campaigns GROUP BY state")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((campaign_state(r.try_get(0)?)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>>>()?;
        let recipients: Vec<(RecipientState, i64)> = sqlx::query(
            "SELECT state, CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM campaign_tallies GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((recipient_state(r.try_get(0)?)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>>>()?;
        Ok(CampaignGauges {
            campaigns,
            recipients,
        })
    }

    /// Recipient counts: by state, and by delivery (see [`RecipientCounts`]). Read from the
    /// campaign's tallies (kept by triggers where recipients change, migration 0020), not by
    /// counting its ledger; the reminders' first and last due times from their index.
    pub async fn recipient_counts(&self, campaign: &str) -> Result<RecipientCounts> {
        let rows = sqlx::query(
            "SELECT state, CAST(SUM(n) AS BIGINT), CAST(SUM(soft_bounces) AS BIGINT),
                    CAST(SUM(CASE WHEN sent_day >= 0 THEN n ELSE 0 END) AS BIGINT),
                    CAST(SUM(reminded) AS BIGINT), CAST(SUM(reminders) AS BIGINT)
             FROM campaign_tallies WHERE campaign_id = $1 GROUP BY state",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        let mut c = RecipientCounts::default();
        for r in &rows {
            add_counts_row(&mut c, r)?;
        }
        if c.reminders_scheduled > 0 {
            // Two sub-queries: each is one step at an end of the partial reminder index.
            let r = sqlx::query(
                "SELECT (SELECT MIN(remind_at) FROM campaign_recipients WHERE campaign_id = $1 AND remind_at IS NOT NULL),
                        (SELECT MAX(remind_at) FROM campaign_recipients WHERE campaign_id = $2 AND remind_at IS NOT NULL)",
            )
            .bind(campaign)
            .bind(campaign)
            .fetch_one(&self.pool)
            .await?;
            c.next_reminder_at = r.try_get::<Option<i64>, _>(0)?.map(Timestamp);
            c.last_reminder_at = r.try_get::<Option<i64>, _>(1)?.map(Timestamp);
        }
        Ok(c)
    }

    /// Recipient counts by counting the ledger itself: what the tallies must always agree
    /// with (`campaign status --recount`, and the tests).
    pub async fn recount_recipients(&self, campaign: &str) -> Result<RecipientCounts> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*), CAST(COALESCE(SUM(soft_bounces), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN reminded_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN remind_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT),
                    MIN(remind_at), MAX(remind_at)
             FROM campaign_recipients WHERE campaign_id = $1 GROUP BY state",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        let mut c = RecipientCounts::default();
        for r in &rows {
            add_counts_row(&mut c, r)?;
            if let Some(t) = r.try_get::<Option<i64>, _>(6)? {
                c.next_reminder_at = Some(
                    c.next_reminder_at
                        .map_or(Timestamp(t), |x| x.min(Timestamp(t))),
                );
            }
            if let Some(t) = r.try_get::<Option<i64>, _>(7)? {
                c.last_reminder_at = Some(
                    c.last_reminder_at
                        .map_or(Timestamp(t), |x| x.max(Timestamp(t))),
                );
            }
        }
        Ok(c)
    }

    /// PostgreSQL: folds the tallies of running campaigns into one row per key (its triggers
    /// append a row per statement; see migration 0020). One statement: the rows it deletes
    /// are exactly the rows it sums, so a concurrent fold or sender loses nothing. SQLite
    /// keeps one row per key already: nothing to do.
    pub async fn fold_campaign_tallies(&self) -> Result<u64> {
        if self.backend != Backend::Postgres {
            return Ok(0);
        }
        let r = sqlx::query(
            "WITH d AS (DELETE FROM campaign_tallies
                         WHERE campaign_id IN (SELECT id FROM campaigns WHERE state = 'running')
                     RETURNING campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
             INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
             SELECT campaign_id, state, sent_day, SUM(n), SUM(soft_bounces), SUM(reminded), SUM(reminders)
               FROM d GROUP BY campaign_id, state, sent_day",
        )
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// The ledger, in `seq` order, a page at a time (`after` = last seq seen).
    pub async fn ledger(&self, campaign: &str, after: i64, limit: i64) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLS} FROM campaign_recipients WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        )),
        )
        .bind(campaign)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_row).collect()
    }

    /// A recipient of the offer's campaigns accepted it: their rows become `accepted` (a
    /// pending one is not sent any more). Returns how many rows changed.
    pub async fn mark_recipient_accepted(
        &self,
        offer: &str,
        email_key: &str,
        now: Timestamp,
    ) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE campaign_recipients SET state = 'accepted', remind_at = NULL, updated_at = $3
             WHERE campaign_id IN (SELECT id FROM campaigns WHERE offer_id = $1) AND email_key = $2 AND state IN ('pending', 'sent')",
        )
        .bind(offer)
        .bind(email_key)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Completes a running campaign that has nothing left to send, now or later: no recipient
    /// pending (an invitation, a due reminder, a retry) or being sent, and no reminder
    /// scheduled. One statement, so that recipients added or reminders scheduled meanwhile
    /// keep it running. Returns whether it completed.
    pub async fn complete_if_done(&self, campaign: &str, now: Timestamp) -> Result<bool> {
        // A read first: a campaign waiting days for its reminders costs no write (SQLite's one
        // writer) each time a sender looks at it.
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM campaign_recipients WHERE campaign_id = $1
               AND (state IN ('pending', 'sending') OR remind_at IS NOT NULL) LIMIT 1) t",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await?;
        if left > 0 {
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE campaigns SET state = 'completed', pause_reason = NULL, updated_at = $2, finished_at = $2
             WHERE id = $1 AND state = 'running'
               AND NOT EXISTS (SELECT 1 FROM campaign_recipients WHERE campaign_id = $1
                               AND (state IN ('pending', 'sending') OR remind_at IS NOT NULL))",
        )
        .bind(campaign)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Recipients whose reminder is due become `pending` again in phase 1 (the reminder), for
    /// running campaigns. Returns how many.
    pub async fn promote_reminders(&self, now: Timestamp) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE campaign_recipients SET state = 'pending', phase = 1, attempts = 0, due_at = remind_at, remind_at = NULL, updated_at = $1
             WHERE remind_at IS NOT NULL AND remind_at <= $1 AND state = 'sent' AND phase = 0
               AND campaign_id IN (SELECT id FROM campaigns WHERE state = 'running')",
        )
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Campaigns (running or paused) whose offer is no longer open or has expired: their
    /// recipients still waiting (`pending`, or `sent` and not accepted) become `expired`, and
    /// the campaign `expired`. Returns the campaigns expired. (The states listed in the SQL
    /// are `CampaignAction::Expire`'s in `core::campaign`; a test there pins them.)
    pub async fn expire_campaigns(&self, now: Timestamp) -> Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT c.id FROM campaigns c JOIN offers o ON o.offer_id = c.offer_id JOIN instances i ON i.id = o.instance_id
             WHERE c.state IN ('running', 'paused', 'draft', 'completed') AND (o.expires_at <= $1 OR i.state <> 'open')",
        )
        .bind(now.0)
        .fetch_all(&self.pool)
        .await?;
        let mut done = Vec::new();
        for id in ids {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE campaign_recipients SET state = 'expired', remind_at = NULL, updated_at = $2
                 WHERE campaign_id = $1 AND state IN ('pending', 'sent')",
            )
            .bind(&id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            let r = sqlx::query(
                "UPDATE campaigns SET state = 'expired', pause_reason = NULL, updated_at = $2, finished_at = COALESCE(finished_at, $2)
                 WHERE id = $1 AND state IN ('running', 'paused', 'draft', 'completed')",
            )
            .bind(&id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if r.rows_affected() == 1 {
                done.push(id);
            }
        }
        Ok(done)
    }

    /// One recipient (for unsubscribe links): its address and the campaign's offer.
    pub async fn recipient_email(
        &self,
        campaign: &str,
        seq: i64,
    ) -> Result<Option<(String, String)>> {
        let r = sqlx::query(
            "SELECT email, email_key FROM campaign_recipients WHERE campaign_id = $1 AND seq = $2",
        )
        .bind(campaign)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Finds the message we sent that a bounce is about: the campaign invitation or reminder,
    /// or the lifecycle email, whose Message-ID is `message_id` (with angle brackets), that was
    /// handed to the transport (at least one attempt), and whose recipient is `recipient`
    /// (compared case-insensitively). Err(reason) when there is none: nothing may be changed.
    pub async fn match_bounce(
        &self,
        message_id: &str,
        recipient: &str,
    ) -> Result<std::result::Result<BounceTarget, String>> {
        let recipient = recipient.trim().to_lowercase();
        // A reminder's Message-ID is the invitation's with `.r` before the `@`.
        let (base, reminder) = match message_id.rsplit_once('@') {
            Some((local, domain)) if local.ends_with(".r") => {
                (format!("{}@{domain}", &local[..local.len() - 2]), true)
            }
            _ => (message_id.to_string(), false),
        };
        let rows = sqlx::query(
            "SELECT campaign_id, seq, email_key, phase, attempts, sent_at FROM campaign_recipients WHERE message_id = $1",
        )
        .bind(&base)
        .fetch_all(&self.pool)
        .await?;
        let mut reason = None;
        for r in &rows {
            let phase: i64 = r.try_get("phase")?;
            let attempts: i64 = r.try_get("attempts")?;
            let sent_at: Option<i64> = r.try_get("sent_at")?;
            let sent = if reminder {
                phase == 1 && attempts > 0
            } else {
                sent_at.is_some() || attempts > 0 || phase == 1
            };
            if !sent {
                reason = Some("that message has not been sent".to_string());
                continue;
            }
            let email_key: String = r.try_get("email_key")?;
            if email_key != recipient {
                reason = Some("the recipient is not that message's recipient".to_string());
                continue;
            }
            return Ok(Ok(BounceTarget::Campaign {
                campaign_id: r.try_get("campaign_id")?,
                seq: r.try_get("seq")?,
                email_key,
            }));
        }
        if let Some(reason) = reason {
            return Ok(Err(reason));
        }
        let row =
            sqlx::query("SELECT recipient, attempts, sent_at FROM emails WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(r) = row else {
            return Ok(Err("no message we sent has this Message-ID".into()));
        };
        let attempts: i64 = r.try_get("attempts")?;
        let sent_at: Option<i64> = r.try_get("sent_at")?;
        if sent_at.is_none() && attempts == 0 {
            return Ok(Err("that message has not been sent".into()));
        }
        let to: String = r.try_get("recipient")?;
        if to.to_lowercase() != recipient {
            return Ok(Err("the recipient is not that message's recipient".into()));
        }
        Ok(Ok(BounceTarget::Email {
            message_id: message_id.to_string(),
            email_key: recipient,
        }))
    }

    /// Records a matched bounce on its campaign recipient: a hard one makes it `bounced`
    /// (unless it accepted), a soft one is counted.
    pub async fn record_campaign_bounce(
        &self,
        campaign: &str,
        seq: i64,
        hard: bool,
        detail: &str,
        now: Timestamp,
    ) -> Result<()> {
        let sql = if hard {
            "UPDATE campaign_recipients SET state = CASE WHEN state IN ('accepted') THEN state ELSE 'bounced' END,
                    error = $3, remind_at = NULL, updated_at = $4
             WHERE campaign_id = $1 AND seq = $2"
        } else {
            "UPDATE campaign_recipients SET soft_bounces = soft_bounces + 1, error = $3, updated_at = $4
             WHERE campaign_id = $1 AND seq = $2"
        };
        sqlx::query(sql)
            .bind(campaign)
            .bind(seq)
            .bind(detail)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps one received bounce (matched or not) for `bounces list`.
    pub async fn insert_bounce(&self, b: &BounceRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO bounces (received_at, source, kind, status, message_id, recipient, diagnostic, matched, reason, suppressed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(b.received_at.0)
        .bind(&b.source)
        .bind(&b.kind)
        .bind(&b.status)
        .bind(&b.message_id)
        .bind(&b.recipient)
        .bind(&b.diagnostic)
        .bind(&b.matched)
        .bind(&b.reason)
        .bind(i64::from(b.suppressed))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Received bounces, newest first (at most `limit`); only the unmatched ones with
    /// `unmatched_only`.
    pub async fn bounces(&self, unmatched_only: bool, limit: i64) -> Result<Vec<BounceRow>> {
        let sql = if unmatched_only {
            "SELECT received_at, source, kind, status, message_id, recipient, diagnostic, matched, reason, suppressed
             FROM bounces WHERE matched IS NULL ORDER BY received_at DESC, id DESC LIMIT $1"
        } else {
            "SELECT received_at, source, kind, status, message_id, recipient, diagnostic, matched, reason, suppressed
             FROM bounces ORDER BY received_at DESC, id DESC LIMIT $1"
        };
        let rows = sqlx::query(sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(BounceRow {
                    received_at: Timestamp(r.try_get("received_at")?),
                    source: r.try_get("source")?,
                    kind: r.try_get("kind")?,
                    status: r.try_get("status")?,
                    message_id: r.try_get("message_id")?,
                    recipient: r.try_get("recipient")?,
                    diagnostic: r.try_get("diagnostic")?,
                    matched: r.try_get("matched")?,
                    reason: r.try_get("reason")?,
                    suppressed: r.try_get::<i64, _>("suppressed")? != 0,
                })
            })
            .collect()
    }

    /// How many received bounces matched nothing we sent.
    pub async fn unmatched_bounce_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM bounces WHERE matched IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Suppressions, newest first (at most `limit`).
    pub async fn suppressions(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, String, Timestamp)>> {
        let rows = sqlx::query("SELECT email_key, reason, source, created_at FROM suppressions ORDER BY created_at DESC, email_key LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    Timestamp(r.try_get(3)?),
                ))
            })
            .collect()
    }

    /// Every pending row of a suppressed address (in any campaign) becomes `suppressed`.
    pub async fn suppress_pending_address(&self, email_key: &str, now: Timestamp) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE campaign_recipients SET state = 'suppressed', error = (SELECT reason FROM suppressions WHERE email_key = $1), remind_at = NULL, updated_at = $2
             WHERE email_key = $1 AND state = 'pending'",
        )
        .bind(email_key)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        // Sent, reminder still due: no reminder.
        sqlx::query("UPDATE campaign_recipients SET remind_at = NULL, updated_at = $2 WHERE email_key = $1 AND remind_at IS NOT NULL")
            .bind(email_key)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// How many campaigns are in each state that can still change (draft, running, paused,
    /// completed: not `is_terminal` in `core::campaign`); states with none are left out.
    pub async fn campaign_state_counts(&self) -> Result<Vec<(CampaignState, i64)>> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) FROM campaigns WHERE state IN ('draft', 'running', 'paused', 'completed') GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((campaign_state(r.try_get(0)?)?, r.try_get(1)?)))
            .collect()
    }
}

/// A campaign's recipient who unsubscribed (the suppression list's entry for the address).
#[derive(Debug, Clone, Serialize)]
pub struct UnsubscribedRow {
    pub seq: i64,
    pub email: String,
    pub at: Timestamp,
}

// The portal's campaign pages: a page of campaigns, their progress, the recent sending rate,
// who bounced and who unsubscribed.
impl Store {
    /// Campaigns newest first (`created_at` then `id`, both descending), at most `limit`,
    /// after the keyset `before` (the last row's created_at and id).
    pub async fn campaigns_page(
        &self,
        before: Option<(Timestamp, &str)>,
        limit: i64,
    ) -> Result<Vec<CampaignRow>> {
        let rows = match before {
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CAMPAIGN_COLS} FROM campaigns ORDER BY created_at DESC, id DESC LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
            Some((at, id)) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {CAMPAIGN_COLS} FROM campaigns
                     WHERE created_at < $1 OR (created_at = $2 AND id < $3)
                     ORDER BY created_at DESC, id DESC LIMIT $4"
                )))
                .bind(at.0)
                .bind(at.0)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(campaign_row).collect()
    }

    /// Per campaign of `ids`: (id, recipients, recipients still to send — pending or sending),
    /// from the campaigns' tallies.
    pub async fn campaigns_progress(&self, ids: &[String]) -> Result<Vec<(String, i64, i64)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT campaign_id, CAST(SUM(n) AS BIGINT),
                    CAST(SUM(CASE WHEN state IN ('pending', 'sending') THEN n ELSE 0 END) AS BIGINT)
             FROM campaign_tallies WHERE campaign_id IN ({}) GROUP BY campaign_id",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Messages (invitations and reminders) a campaign handed to the server since `since`
    /// (through the partial indexes on sent_at and reminded_at: only recent rows are read).
    pub async fn deliveries_since(&self, campaign: &str, since: Timestamp) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT CAST((SELECT COUNT(*) FROM campaign_recipients
                          WHERE campaign_id = $1 AND sent_at IS NOT NULL AND sent_at >= $2)
                       + (SELECT COUNT(*) FROM campaign_recipients
                          WHERE campaign_id = $3 AND reminded_at IS NOT NULL AND reminded_at >= $4) AS BIGINT)",
        )
        .bind(campaign)
        .bind(since.0)
        .bind(campaign)
        .bind(since.0)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A campaign's hard-bounced recipients in line order, at most `limit` (the partial index
    /// on bounced rows).
    pub async fn bounced_recipients(&self, campaign: &str, limit: i64) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLS} FROM campaign_recipients WHERE campaign_id = $1 AND state = 'bounced' ORDER BY seq LIMIT $2"
        )),
        )
        .bind(campaign)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_row).collect()
    }

    /// A campaign's recipients whose address unsubscribed (from any campaign): how many, and
    /// the latest `limit`. Read from the suppression list first (it is short), then each
    /// address's row in this campaign by its unique key.
    pub async fn unsubscribed_recipients(
        &self,
        campaign: &str,
        limit: i64,
    ) -> Result<(i64, Vec<UnsubscribedRow>)> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM suppressions s CROSS JOIN campaign_recipients r
             WHERE s.source = 'unsubscribe' AND r.campaign_id = $1 AND r.email_key = s.email_key",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT r.seq, r.email, s.created_at FROM suppressions s CROSS JOIN campaign_recipients r
             WHERE s.source = 'unsubscribe' AND r.campaign_id = $1 AND r.email_key = s.email_key
             ORDER BY s.created_at DESC, r.seq LIMIT $2",
        )
        .bind(campaign)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let list = rows
            .iter()
            .map(|r| {
                Ok(UnsubscribedRow {
                    seq: r.try_get(0)?,
                    email: r.try_get(1)?,
                    at: Timestamp(r.try_get(2)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((n, list))
    }
}
