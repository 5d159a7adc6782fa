//! What operators do to jobs (the portal's jobs and nodes pages, the CLI's `jobs`): counts, a
//! filtered list a page at a time, a job's failed attempts, retry / cancel / run now of one
//! job or of every job a filter selects, a failed email sent to a corrected address, and the
//! worker processes' heartbeats. Every write carries its audit entry in its transaction.

use sqlx::Row;

use super::jobs::{JOB_COLS, job_from_row};
use super::users::audit_insert;
use super::*;
use crate::core::domain::{EmailAddress, Timestamp};
use crate::core::job::{JobAction, JobFilter, JobPayload, JobState};

/// One failed attempt of a job (or a lease that ran out), newest last.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobError {
    pub attempt: i64,
    pub at: Timestamp,
    pub node: String,
    pub error: String,
}

/// A worker process as its heartbeat left it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeRow {
    pub node: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: Timestamp,
    pub seen_at: Timestamp,
    pub last_claim: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    /// Jobs it holds a lease on now.
    pub jobs_held: i64,
}

/// What a worker writes of itself at start and every few seconds.
#[derive(Debug, Clone)]
pub struct NodeBeat<'a> {
    pub node: &'a str,
    pub host: &'a str,
    pub pid: i64,
    pub version: &'a str,
    pub started_at: Timestamp,
    pub last_claim: Option<Timestamp>,
}

/// The WHERE clause of the jobs `filter` selects in `states` (their names are constants,
/// never input), its kind bound as `$1` and its time range as `$2`, `$3`.
fn selection(states: &[JobState]) -> String {
    format!(
        "{} AND ($1 = '' OR kind = $1) AND created_at >= $2 AND created_at < $3",
        state_in(states)
    )
}

/// `state = 'a'` or `state IN ('a', 'b')` (the single form lets the planner read that state's
/// partial index).
fn state_in(states: &[JobState]) -> String {
    let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    match list.as_slice() {
        [one] => format!("state = {one}"),
        _ => format!("state IN ({})", list.join(", ")),
    }
}

/// What `action` sets on a job, its time bound as `now` (a `$n`).
fn job_set(action: JobAction, now: &str) -> String {
    match action {
        JobAction::Retry => format!(
            "state = 'scheduled', run_at = {now}, attempts = 0, updated_at = {now}, finished_at = NULL"
        ),
        JobAction::Cancel => {
            format!(
                "state = 'cancelled', finished_at = {now}, updated_at = {now}, lease_owner = NULL"
            )
        }
        JobAction::RunNow => format!("run_at = {now}, updated_at = {now}"),
    }
}

/// What `action` does to an email job's ledger row: its SET and the rows it takes (retried:
/// a failed one is queued again; cancelled: any not sent); None: nothing.
fn ledger_set(action: JobAction) -> Option<&'static str> {
    match action {
        JobAction::Retry => Some("state = 'queued' WHERE state = 'failed'"),
        JobAction::Cancel => Some("state = 'cancelled' WHERE state <> 'sent'"),
        JobAction::RunNow => None,
    }
}

fn range(f: &JobFilter) -> (i64, i64) {
    (
        f.from.map_or(i64::MIN, |t| t.0),
        f.to.map_or(i64::MAX, |t| t.0),
    )
}

impl Store {
    /// Jobs by state and kind (the portal's jobs page).
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT state, kind, COUNT(*) FROM jobs GROUP BY state, kind ORDER BY state, kind",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Jobs newest first that `f` selects, with ids below `before` (keyset: the page after
    /// the one that ended there), at most `limit`.
    pub async fn jobs_page(
        &self,
        f: &JobFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM jobs WHERE ($1 = '' OR state = $1) AND ($2 = '' OR kind = $2)
               AND created_at >= $3 AND created_at < $4 AND id < $5
             ORDER BY id DESC LIMIT $6"
        );
        let (from, to) = range(f);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&f.state)
            .bind(&f.kind)
            .bind(from)
            .bind(to)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// How many jobs `action` would apply to among those `f` selects.
    pub async fn count_for(&self, action: JobAction, f: &JobFilter) -> Result<i64> {
        let states = f.states_for(action);
        if states.is_empty() {
            return Ok(0);
        }
        let (from, to) = range(f);
        // One count per state, each `state = '…'`: the planner then reads that state's
        // partial index (a few rows) instead of the table, whose finished rows are the bulk.
        let mut n = 0;
        for state in states {
            let sql = format!("SELECT COUNT(*) FROM jobs WHERE {}", selection(&[state]));
            n += sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .bind(&f.kind)
                .bind(from)
                .bind(to)
                .fetch_one(&self.pool)
                .await?;
        }
        Ok(n)
    }

    /// Applies `action` to every job `f` selects that it applies to, their email ledger rows
    /// with them (retried: queued again; cancelled: cancelled), with one audit entry (the
    /// count in its detail), in one transaction. Returns how many jobs.
    pub async fn jobs_bulk(
        &self,
        action: JobAction,
        f: &JobFilter,
        now: Timestamp,
        audit: &NewAudit,
    ) -> Result<u64> {
        let states = f.states_for(action);
        if states.is_empty() {
            return Ok(0);
        }
        let (from, to) = range(f);
        let sel = selection(&states);
        let mut tx = self.begin_write().await?;
        // The email rows first, while their jobs are still in the selection (the payload
        // names each).
        if let Some(set) = ledger_set(action) {
            let mid = match self.backend {
                Backend::Sqlite => "json_extract(payload, '$.message_id')",
                Backend::Postgres => "CAST(payload AS JSON) ->> 'message_id'",
            };
            let sql = format!(
                "UPDATE emails SET {set} AND message_id IN
                   (SELECT {mid} FROM jobs WHERE kind = 'email' AND {sel})"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&f.kind)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!("UPDATE jobs SET {} WHERE {sel}", job_set(action, "$4"));
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&f.kind)
            .bind(from)
            .bind(to)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut audit = audit.clone();
        audit.detail = format!("{n} jobs");
        audit_insert(&audit).execute(&mut *tx).await?;
        if n > 0 && action != JobAction::Cancel {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        if n > 0 && action != JobAction::Cancel {
            self.wake.notify_waiters();
        }
        Ok(n)
    }

    /// Applies `action` to one job, with its audit entry, in one transaction: a failed job
    /// retried (its ledger row queued again), a waiting one run now, a waiting or failed one
    /// cancelled (its ledger row cancelled unless sent). `NotFound`: no such job; `NotNow`: it
    /// is in a state the action does not apply to.
    pub async fn job_act(
        &self,
        action: JobAction,
        id: i64,
        now: Timestamp,
        audit: &NewAudit,
    ) -> Result<JobRow> {
        let sql = format!(
            "UPDATE jobs SET {} WHERE id = $2 AND {} RETURNING {JOB_COLS}",
            job_set(action, "$1"),
            state_in(action.applies_to())
        );
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.0)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            drop(tx);
            let j = self.job(id).await?;
            return Err(StoreError::NotNow(format!(
                "job {id} cannot be {}: it is {}",
                action.done_word(),
                j.state
            )));
        };
        let job = job_from_row(&row)?;
        if let (Some(mid), Some(set)) = (job.payload.message_id(), ledger_set(action)) {
            let sql = format!("UPDATE emails SET {set} AND message_id = $1");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(mid)
                .execute(&mut *tx)
                .await?;
        }
        audit_insert(audit).execute(&mut *tx).await?;
        if action != JobAction::Cancel {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        if action != JobAction::Cancel {
            self.wake.notify_waiters();
        }
        Ok(job)
    }

    /// A failed (or waiting) email job sent to `to` instead: its envelope, the message's
    /// `recipient.email` and its ledger row take the new address, and it runs again now with a
    /// fresh attempt budget; with its audit entry, in one transaction. The instance's data
    /// keeps its address (later emails of the lifecycle go there).
    pub async fn readdress_email_job(
        &self,
        id: i64,
        to: &EmailAddress,
        now: Timestamp,
        audit: &NewAudit,
    ) -> Result<JobRow> {
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
        let job = job_from_row(&row)?;
        let JobPayload::Email(mut email) = job.payload.clone() else {
            return Err(StoreError::NotNow(format!(
                "job {id} cannot be readdressed: it is a {} job",
                job.kind
            )));
        };
        if !email.readdressable() {
            return Err(StoreError::NotNow(format!(
                "job {id} cannot be readdressed: it is a {} email, whose link is its recipient's own",
                email.envelope.template
            )));
        }
        if ![JobState::Failed, JobState::Scheduled].contains(&job.state) {
            return Err(StoreError::NotNow(format!(
                "job {id} cannot be readdressed: it is {}",
                job.state
            )));
        }
        // The message names its recipient too (`recipient.email`): the new address there.
        let old = email.envelope.to.as_str().to_string();
        if let Some(r) = email
            .context
            .get_mut("recipient")
            .and_then(|r| r.as_object_mut())
            && r.get("email").and_then(|e| e.as_str()) == Some(old.as_str())
        {
            r.insert(
                "email".into(),
                serde_json::Value::String(to.as_str().into()),
            );
        }
        email.envelope.to = to.clone();
        let payload = JobPayload::Email(email);
        let sql = format!(
            "UPDATE jobs SET payload = $1, state = 'scheduled', run_at = $2, attempts = 0, updated_at = $2,
                 finished_at = NULL WHERE id = $3 AND state IN ('failed', 'scheduled') RETURNING {JOB_COLS}"
        );
        // Another node may have claimed it since it was read (PostgreSQL reads it unlocked).
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(payload.to_json_text())
            .bind(now.0)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                StoreError::NotNow(format!(
                    "job {id} cannot be readdressed: it changed meanwhile"
                ))
            })?;
        if let Some(mid) = payload.message_id() {
            sqlx::query(
                "UPDATE emails SET recipient = $1, state = 'queued', last_error = NULL WHERE message_id = $2 AND state <> 'sent'",
            )
            .bind(to.as_str())
            .bind(mid)
            .execute(&mut *tx)
            .await?;
        }
        audit_insert(audit).execute(&mut *tx).await?;
        self.notify_work(&mut tx).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        job_from_row(&row)
    }

    /// A job's failed attempts and take-overs, oldest first.
    pub async fn job_errors(&self, id: i64) -> Result<Vec<JobError>> {
        let rows = sqlx::query(
            "SELECT attempt, at, node, error FROM job_errors WHERE job_id = $1 ORDER BY at, attempt LIMIT 200",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobError {
                    attempt: r.try_get(0)?,
                    at: Timestamp(r.try_get(1)?),
                    node: r.try_get(2)?,
                    error: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// A worker's heartbeat: its row written or refreshed (`seen_at` = `now`).
    pub async fn node_beat(&self, b: &NodeBeat<'_>, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (node, host, pid, version, started_at, seen_at, last_claim)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at, last_claim = excluded.last_claim, stopped_at = NULL",
        )
        .bind(b.node)
        .bind(b.host)
        .bind(b.pid)
        .bind(b.version)
        .bind(b.started_at.0)
        .bind(now.0)
        .bind(b.last_claim.map(|t| t.0))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A worker that shut down cleanly says so.
    pub async fn node_stopped(&self, node: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE nodes SET stopped_at = $1, seen_at = $1 WHERE node = $2")
            .bind(now.0)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Worker processes seen since `since`, newest start first, with the jobs each holds.
    pub async fn nodes(&self, since: Timestamp) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query(
            "SELECT n.node, n.host, n.pid, n.version, n.started_at, n.seen_at, n.last_claim, n.stopped_at,
                    (SELECT COUNT(*) FROM jobs j WHERE j.state = 'running' AND j.lease_owner = n.node)
             FROM nodes n WHERE n.seen_at >= $1 ORDER BY n.started_at DESC, n.node LIMIT 500",
        )
        .bind(since.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRow {
                    node: r.try_get(0)?,
                    host: r.try_get(1)?,
                    pid: r.try_get(2)?,
                    version: r.try_get(3)?,
                    started_at: Timestamp(r.try_get(4)?),
                    seen_at: Timestamp(r.try_get(5)?),
                    last_claim: r.try_get::<Option<i64>, _>(6)?.map(Timestamp),
                    stopped_at: r.try_get::<Option<i64>, _>(7)?.map(Timestamp),
                    jobs_held: r.try_get(8)?,
                })
            })
            .collect()
    }

    /// Worker processes running and seen since `since` (the `partnerflow_nodes` gauge).
    pub async fn live_nodes(&self, since: Timestamp) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM nodes WHERE seen_at >= $1 AND stopped_at IS NULL",
        )
        .bind(since.0)
        .fetch_one(&self.pool)
        .await?)
    }
}
