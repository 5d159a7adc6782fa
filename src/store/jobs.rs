//! The job table: claims with leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL), fenced
//! outcomes in batches, bulk enqueue, retries, pruning, repair.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::*;
use crate::core::domain::Timestamp;
use crate::core::job::{JobPayload, JobState};

/// A job to insert with a transition. `replace` (timers): an existing row with the same key
/// is reset to scheduled at the new time; otherwise an existing key is left alone.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub key: String,
    pub subject: String,
    pub payload: JobPayload,
    pub run_at: Timestamp,
    pub max_attempts: u32,
    pub replace: bool,
}

#[derive(Debug, Clone)]
pub struct JobFence {
    pub job_id: i64,
    pub owner: String,
    pub attempts: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRow {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub subject: String,
    pub payload: JobPayload,
    pub state: JobState,
    pub run_at: Timestamp,
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The node whose lease had run out when this attempt's claim took the job over.
    pub taken_over_from: Option<String>,
}

/// Rows per statement in batched writes (passed as one JSON parameter).
const FINISH_CHUNK: usize = 1000;

/// Up to this many ledger rows are updated one statement each (see `finish`).
const LEDGER_ROW_BY_ROW: usize = 8;

const INSERT_CHUNK: usize = 1000;

pub(super) const JOB_COLS: &str = "id, key, kind, subject, payload, state, run_at, attempts, max_attempts, lease_owner, last_error, created_at, updated_at, taken_over_from";

pub(super) fn job_from_row(r: &AnyRow) -> Result<JobRow> {
    let payload: String = r.try_get("payload")?;
    let kind: String = r.try_get("kind")?;
    let id: i64 = r.try_get("id")?;
    let state: String = r.try_get("state")?;
    let state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("job {id}: unknown state `{state}`")))?;
    Ok(JobRow {
        payload: JobPayload::from_row(&kind, &payload),
        id,
        key: r.try_get("key")?,
        kind,
        subject: r.try_get("subject")?,
        state,
        run_at: Timestamp(r.try_get("run_at")?),
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        lease_owner: r.try_get("lease_owner")?,
        last_error: r.try_get("last_error")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
        taken_over_from: r.try_get("taken_over_from")?,
    })
}

/// The job table as `GET /metrics` reports it (see [`Store::job_gauges`]).
#[derive(Debug, Clone, Default)]
pub struct JobGauges {
    /// (state, kind, jobs), as stored.
    pub by_state_kind: Vec<(String, String, i64)>,
    /// When the oldest job that is due and not yet claimed was due; None: none is due.
    pub oldest_due: Option<Timestamp>,
}

/// What became of one attempt of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// An email accepted by the transport, with the server's reply.
    Sent {
        reply: String,
    },
    Retry {
        at: Timestamp,
        error: String,
    },
    Failed {
        error: String,
    },
}

/// Completes the job of `fence` inside `tx` if its worker still holds it (same owner, same
/// attempt); false if it was rescheduled, cancelled or taken over meanwhile.
pub(super) async fn complete_fenced(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    fence: &JobFence,
    at: Timestamp,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'done', finished_at = $1, updated_at = $1, lease_owner = NULL
         WHERE id = $2 AND state = 'running' AND lease_owner = $3 AND attempts = $4",
    )
    .bind(at.0)
    .bind(fence.job_id)
    .bind(&fence.owner)
    .bind(fence.attempts)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One line of a job's error history (`job_errors`), in the transaction of its outcome.
async fn record_error(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    job_id: i64,
    attempt: i64,
    at: Timestamp,
    node: &str,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO job_errors (job_id, attempt, at, node, error) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(job_id)
    .bind(attempt)
    .bind(at.0)
    .bind(node)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn insert_job(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    j: &NewJob,
    now: Timestamp,
) -> Result<()> {
    let sql = if j.replace {
        "INSERT INTO jobs (key, kind, subject, payload, state, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'scheduled', $5, 0, $6, $7, $7)
         ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, state = 'scheduled', run_at = excluded.run_at,
            attempts = 0, lease_owner = NULL, lease_until = NULL, last_error = NULL, finished_at = NULL, updated_at = excluded.updated_at"
    } else {
        "INSERT INTO jobs (key, kind, subject, payload, state, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'scheduled', $5, 0, $6, $7, $7) ON CONFLICT (key) DO NOTHING"
    };
    sqlx::query(sql)
        .bind(&j.key)
        .bind(j.payload.kind())
        .bind(&j.subject)
        .bind(j.payload.to_json_text())
        .bind(j.run_at.0)
        .bind(j.max_attempts as i64)
        .bind(now.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` due jobs for `owner` with a lease until `lease_until`; jobs whose
    /// lease ran out (their worker died) are taken over. Each claim counts as an attempt.
    pub async fn claim(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<JobRow>> {
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3,
                    taken_over_from = CASE WHEN state = 'running' THEN lease_owner END
                 WHERE id IN (
                    SELECT id FROM (SELECT id FROM jobs WHERE state = 'scheduled' AND run_at <= $3 ORDER BY run_at LIMIT $4)
                    UNION ALL
                    SELECT id FROM (SELECT id FROM jobs WHERE state = 'running' AND lease_until <= $3 LIMIT $4))
                 RETURNING {JOB_COLS}"
            ),
            // Row locks, not a table lock: concurrent claimers skip each other's rows.
            Backend::Postgres => format!(
                "WITH due AS (SELECT id FROM jobs WHERE state = 'scheduled' AND run_at <= $3 ORDER BY run_at LIMIT $4 FOR UPDATE SKIP LOCKED),
                      expired AS (SELECT id FROM jobs WHERE state = 'running' AND lease_until <= $3 LIMIT $4 FOR UPDATE SKIP LOCKED)
                 UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3,
                    taken_over_from = CASE WHEN state = 'running' THEN lease_owner END
                 WHERE id IN (SELECT id FROM due UNION ALL SELECT id FROM expired)
                 RETURNING {JOB_COLS}"
            ),
        };
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(lease_until.0)
            .bind(now.0)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        // A take-over is rare (a node died or stalled): a line in the job's error history.
        for j in jobs.iter().filter(|j| j.taken_over_from.is_some()) {
            let from = j.taken_over_from.as_deref().unwrap_or_default();
            record_error(
                &mut tx,
                j.id,
                j.attempts - 1,
                now,
                from,
                &format!("the lease of {from} ran out; taken over by {owner}"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// Jobs not yet finished (scheduled or running), counted through the partial indexes.
    pub async fn count_unfinished(&self) -> Result<i64> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'scheduled') + (SELECT COUNT(*) FROM jobs WHERE state = 'running')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get(0)?)
    }

    /// What `GET /metrics` reports of the job table: jobs by (state, kind) (one GROUP BY over
    /// the table, which the pruner keeps to `jobs.prune_after` of finished jobs) and when the
    /// oldest job that is due at `now` and not yet claimed was due (the partial index of
    /// scheduled jobs).
    pub async fn job_gauges(&self, now: Timestamp) -> Result<JobGauges> {
        let by_state_kind = self.job_counts().await?;
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_at) FROM jobs WHERE state = 'scheduled' AND run_at <= $1",
        )
        .bind(now.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(JobGauges {
            by_state_kind,
            oldest_due: oldest.map(Timestamp),
        })
    }

    /// Extends the lease of a running job this owner still holds.
    pub async fn extend_lease(&self, job: &JobRow, owner: &str, until: Timestamp) -> Result<bool> {
        let r = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND state = 'running' AND lease_owner = $3 AND attempts = $4")
            .bind(until.0)
            .bind(job.id)
            .bind(owner)
            .bind(job.attempts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the outcomes of finished attempts in one transaction. An outcome only applies
    /// while the owner still holds the job (same owner, same attempt): a job that was
    /// rescheduled or taken over meanwhile is left alone. Successes (the bulk) are written
    /// with one statement per chunk, and their ledger rows with another. Returns, for each
    /// outcome in order, whether it applied (was committed).
    pub async fn finish(
        &self,
        owner: &str,
        outcomes: &[(JobRow, Outcome)],
        now: Timestamp,
    ) -> Result<Vec<bool>> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        // (id, attempt) of every outcome that applied.
        let mut committed: std::collections::HashSet<(i64, i64)> = std::collections::HashSet::new();
        let mut tx = self.begin_write().await?;
        let (done, other): (Vec<_>, Vec<_>) = outcomes
            .iter()
            .partition(|(_, o)| matches!(o, Outcome::Done | Outcome::Sent { .. }));
        for chunk in done.chunks(FINISH_CHUNK) {
            // One constant statement per chunk (prepared once per connection), the rows
            // passed as one JSON parameter. On PostgreSQL the `= ANY(ARRAY(…))` makes the
            // (generic) plan look rows up by primary key: without it, it estimates 100 rows
            // and hash-joins against a scan of the table. (`state = 'running'` is left out
            // there, or the planner scans the partial index of running jobs, dead entries
            // and all: a lease owner is set exactly while a job is running — every write
            // that leaves `running` clears it.)
            let pairs: Vec<Value> = chunk
                .iter()
                .map(|(j, _)| serde_json::json!({ "id": j.id, "attempts": j.attempts }))
                .collect();
            let sql = match self.backend {
                Backend::Sqlite => {
                    "WITH v (vid, vattempts) AS (SELECT json_extract(value, '$.id'), json_extract(value, '$.attempts') FROM json_each($3))
                     UPDATE jobs SET state = 'done', finished_at = $1, updated_at = $1, lease_owner = NULL, last_error = NULL
                     FROM v WHERE id = vid AND attempts = vattempts AND state = 'running' AND lease_owner = $2 RETURNING id"
                }
                Backend::Postgres => {
                    "WITH v AS (SELECT * FROM json_to_recordset($3::text::json) AS r (id BIGINT, attempts BIGINT))
                     UPDATE jobs SET state = 'done', finished_at = $1, updated_at = $1, lease_owner = NULL, last_error = NULL
                     FROM v WHERE jobs.id = ANY(ARRAY(SELECT id FROM v)) AND jobs.id = v.id AND jobs.attempts = v.attempts
                       AND jobs.lease_owner = $2
                     RETURNING jobs.id"
                }
            };
            let applied: std::collections::HashSet<i64> = sqlx::query_scalar::<_, i64>(sql)
                .bind(now.0)
                .bind(owner)
                .bind(json_text(&pairs))
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            // (Message-ID, attempts, the server's reply) of each email whose outcome applied.
            let mut ledger: Vec<(&str, i64, Option<&str>)> = Vec::new();
            for (job, outcome) in chunk {
                if !applied.contains(&job.id) {
                    continue;
                }
                committed.insert((job.id, job.attempts));
                if let Some(mid) = job.payload.message_id() {
                    let reply = match outcome {
                        Outcome::Sent { reply } => Some(reply.as_str()),
                        _ => None,
                    };
                    ledger.push((mid, job.attempts, reply));
                }
            }
            if !ledger.is_empty() && ledger.len() <= LEDGER_ROW_BY_ROW {
                // A few rows: one primary-key update each beats any plan for a batch.
                for &(mid, attempts, reply) in &ledger {
                    sqlx::query(
                        "UPDATE emails SET state = 'sent', attempts = $2, last_error = NULL, reply = COALESCE($3, reply), sent_at = $1
                         WHERE message_id = $4 AND state <> 'sent'",
                    )
                    .bind(now.0)
                    .bind(attempts)
                    .bind(reply)
                    .bind(mid)
                    .execute(&mut *tx)
                    .await?;
                }
            } else if !ledger.is_empty() {
                let sql = match self.backend {
                    Backend::Sqlite => {
                        "WITH v (mid, attempts, reply) AS (SELECT json_extract(value, '$.mid'), json_extract(value, '$.attempts'), json_extract(value, '$.reply') FROM json_each($2))
                         UPDATE emails SET state = 'sent', attempts = v.attempts, last_error = NULL, reply = COALESCE(v.reply, emails.reply), sent_at = $1
                         FROM v WHERE emails.message_id = v.mid AND emails.state <> 'sent'"
                    }
                    Backend::Postgres => {
                        "WITH v AS (SELECT * FROM json_to_recordset($2::text::json) AS r (mid TEXT, attempts BIGINT, reply TEXT))
                         UPDATE emails SET state = 'sent', attempts = v.attempts, last_error = NULL, reply = COALESCE(v.reply, emails.reply), sent_at = $1
                         FROM v WHERE emails.message_id = ANY(ARRAY(SELECT mid FROM v)) AND emails.message_id = v.mid AND emails.state <> 'sent'"
                    }
                };
                let rows: Vec<Value> = ledger
                    .iter()
                    .map(|(mid, attempts, reply)| {
                        serde_json::json!({ "mid": mid, "attempts": attempts, "reply": reply })
                    })
                    .collect();
                sqlx::query(sql)
                    .bind(now.0)
                    .bind(json_text(&rows))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for (job, outcome) in other {
            let q = match outcome {
                Outcome::Retry { at, error } => sqlx::query(concat!(
                    "UPDATE jobs SET state = 'scheduled', run_at = $4, updated_at = $5, lease_owner = NULL, last_error = $6 WHERE ",
                    fence!()
                ))
                .bind(job.id)
                .bind(owner)
                .bind(job.attempts)
                .bind(at.0)
                .bind(now.0)
                .bind(error.as_str()),
                Outcome::Failed { error } => sqlx::query(concat!(
                    "UPDATE jobs SET state = 'failed', finished_at = $4, updated_at = $4, lease_owner = NULL, last_error = $5 WHERE ",
                    fence!()
                ))
                .bind(job.id)
                .bind(owner)
                .bind(job.attempts)
                .bind(now.0)
                .bind(error.as_str()),
                Outcome::Done | Outcome::Sent { .. } => continue,
            };
            let applied = q.execute(&mut *tx).await?.rows_affected() == 1;
            if !applied {
                continue;
            }
            committed.insert((job.id, job.attempts));
            if let Outcome::Retry { error, .. } | Outcome::Failed { error } = outcome {
                record_error(&mut tx, job.id, job.attempts, now, owner, error).await?;
            }
            if let Some(mid) = job.payload.message_id() {
                let (state, error) = match outcome {
                    Outcome::Failed { error } => ("failed", error),
                    Outcome::Retry { error, .. } => ("queued", error),
                    Outcome::Done | Outcome::Sent { .. } => continue,
                };
                sqlx::query(
                    "UPDATE emails SET state = $1, attempts = $2, last_error = $3 WHERE message_id = $4 AND state <> 'sent'",
                )
                .bind(state)
                .bind(job.attempts)
                .bind(error.as_str())
                .bind(mid)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(outcomes
            .iter()
            .map(|(j, _)| committed.contains(&(j.id, j.attempts)))
            .collect())
    }

    /// Enqueues many jobs (idempotent by key, like [`NewJob`] with `replace = false`) in one
    /// transaction, a multi-row statement per chunk. Returns how many were new.
    pub async fn insert_jobs(&self, jobs: &[NewJob], now: Timestamp) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut inserted = 0;
        let mut due = false;
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO jobs (key, kind, subject, payload, state, run_at, attempts, max_attempts, created_at, updated_at)
                 SELECT json_extract(value, '$.key'), json_extract(value, '$.kind'), json_extract(value, '$.subject'),
                        json_extract(value, '$.payload'), 'scheduled', json_extract(value, '$.run_at'), 0,
                        json_extract(value, '$.max_attempts'), $1, $1
                 FROM json_each($2) WHERE true
                 ON CONFLICT (key) DO NOTHING"
            }
            Backend::Postgres => {
                "INSERT INTO jobs (key, kind, subject, payload, state, run_at, attempts, max_attempts, created_at, updated_at)
                 SELECT key, kind, subject, payload, 'scheduled', run_at, 0, max_attempts, $1, $1
                 FROM json_to_recordset($2::text::json) AS r (key TEXT, kind TEXT, subject TEXT, payload TEXT, run_at BIGINT, max_attempts BIGINT)
                 ON CONFLICT (key) DO NOTHING"
            }
        };
        for chunk in jobs.chunks(INSERT_CHUNK) {
            let rows: Vec<Value> = chunk
                .iter()
                .map(|j| {
                    due |= j.run_at <= now;
                    serde_json::json!({
                        "key": j.key, "kind": j.payload.kind(), "subject": j.subject,
                        "payload": j.payload.to_json_text(), "run_at": j.run_at.0,
                        "max_attempts": j.max_attempts,
                    })
                })
                .collect();
            inserted += sqlx::query(sql)
                .bind(now.0)
                .bind(json_text(&rows))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if due {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        if due {
            self.wake.notify_waiters();
        }
        Ok(inserted)
    }

    pub(super) async fn jobs_where(
        &self,
        cond: &str,
        arg: &str,
        limit: i64,
    ) -> Result<Vec<JobRow>> {
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE {cond} ORDER BY id LIMIT {limit}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(arg)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    pub async fn list_jobs(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobRow>> {
        match state {
            Some(s) => self.jobs_where("state = $1", s, limit).await,
            None => self.jobs_where("$1 = $1", "", limit).await,
        }
    }

    pub async fn job(&self, id: i64) -> Result<JobRow> {
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1");
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
        job_from_row(&r)
    }

    pub async fn count_jobs(&self, state: &str, kind: Option<&str>) -> Result<i64> {
        let r = match kind {
            Some(k) => sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = $1 AND kind = $2")
                .bind(state)
                .bind(k),
            None => sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = $1 AND $2 = $2")
                .bind(state)
                .bind(""),
        }
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get(0)?)
    }

    /// Deletes finished (done, cancelled) jobs that finished before `before`, and the records
    /// of schedule runs that did. Returns how many jobs were deleted.
    pub async fn prune(&self, before: Timestamp) -> Result<u64> {
        let mut total = 0;
        loop {
            let r = sqlx::query(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'cancelled') AND finished_at < $1 LIMIT 5000)",
            )
            .bind(before.0)
            .execute(&self.pool)
            .await?;
            total += r.rows_affected();
            if r.rows_affected() < 5000 {
                break;
            }
        }
        // Bounces that matched nothing we sent are kept as long as finished jobs (anyone with
        // a bounces token can add them; matched ones stay as the ledger's record).
        sqlx::query("DELETE FROM bounces WHERE matched IS NULL AND received_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        // Rate-limit counters of windows long past (the longest window is a day).
        sqlx::query("DELETE FROM rate_counters WHERE window_start < $1")
            .bind(before.0 - 2 * 86_400_000)
            .execute(&self.pool)
            .await?;
        self.prune_portal(before).await?;
        // Error histories and worker heartbeats: kept as long as finished jobs.
        sqlx::query("DELETE FROM job_errors WHERE at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE seen_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        // The record of schedule runs grows by one row a tick: kept as long as finished jobs.
        sqlx::query("DELETE FROM schedule_runs WHERE finished_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(total)
    }

    /// PostgreSQL: vacuums the job table, whose rows are rewritten by every claim and every
    /// outcome (dead index entries slow claims until removed). Autovacuum does the same when
    /// it is on (the migrations tune it for this table); this covers servers where it is off.
    /// Run after each prune. SQLite: nothing to do.
    pub async fn vacuum_jobs(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            self.pool.execute("VACUUM (ANALYZE) jobs").await?;
        }
        Ok(())
    }

    /// Reconcile: running jobs leased more than `stuck_after` ago whose lease is far past are
    /// made due again; overdue scheduled jobs are reported. Returns (re-enqueued, overdue).
    pub async fn repair(
        &self,
        now: Timestamp,
        stuck_before: Timestamp,
    ) -> Result<(Vec<JobRow>, i64)> {
        let sql = format!(
            "UPDATE jobs SET state = 'scheduled', run_at = $1, lease_owner = NULL, updated_at = $1
             WHERE state = 'running' AND lease_until < $2 RETURNING {JOB_COLS}"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.0)
            .bind(stuck_before.0)
            .fetch_all(&mut *tx)
            .await?;
        if !rows.is_empty() {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        let r = sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = 'scheduled' AND run_at < $1")
            .bind(stuck_before.0)
            .fetch_one(&self.pool)
            .await?;
        let repaired = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        if !repaired.is_empty() {
            self.wake.notify_waiters();
        }
        Ok((repaired, r.try_get(0)?))
    }
}
