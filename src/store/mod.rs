//! The only module that knows SQL. One API over SQLite and PostgreSQL (sqlx `Any`), the
//! backend chosen by the URL scheme. Every multi-row change is one transaction.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::Notify;

use crate::core::config::DatabaseSettings;
use crate::core::domain::{InstanceId, Timestamp};

mod campaigns;
mod offers;
pub use campaigns::*;
pub use offers::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("instance {0} was changed by someone else; reload and try again")]
    Conflict(InstanceId),
    #[error("{0} not found")]
    NotFound(String),
    #[error("job {0} is no longer held by this worker (rescheduled, cancelled or taken over)")]
    Stale(i64),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Errors worth retrying: connection trouble, locks, serialisation failures.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(d) => {
                    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                    let msg = d.message().to_ascii_lowercase();
                    // SQLite BUSY/LOCKED; PostgreSQL serialization, deadlock, admin shutdown,
                    // cannot connect now, too many connections, statement timeout.
                    matches!(
                        code.as_str(),
                        "5" | "6"
                            | "517"
                            | "261"
                            | "40001"
                            | "40P01"
                            | "57P01"
                            | "57P03"
                            | "53300"
                            | "57014"
                    ) || msg.contains("database is locked")
                        || msg.contains("busy")
                }
                _ => false,
            },
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Wakes this process's workers when due work was enqueued (here, or — on PostgreSQL,
    /// through LISTEN/NOTIFY — by any node).
    wake: Arc<Notify>,
    /// Kept for the LISTEN connection; never printed.
    url: Arc<str>,
}

/// The PostgreSQL channel on which a commit that enqueued due work notifies idle workers.
const WORK_CHANNEL: &str = "partnerflow_work";

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub id: InstanceId,
    pub workflow: String,
    pub state: String,
    pub version: i64,
    pub data: Map<String, Value>,
    pub locale: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub final_at: Option<Timestamp>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub seq: i64,
    pub event: String,
    pub from: Option<String>,
    pub to: String,
    pub at: Timestamp,
    pub actor: String,
}

/// A job to insert with a transition. `replace` (timers): an existing row with the same key
/// is reset to scheduled at the new time; otherwise an existing key is left alone.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub key: String,
    pub kind: String,
    pub subject: String,
    pub payload: Value,
    pub run_at: Timestamp,
    pub max_attempts: u32,
    pub replace: bool,
}

#[derive(Debug, Clone)]
pub struct NewEmail {
    pub message_id: String,
    pub template: String,
    pub locale: String,
    pub role: String,
    pub recipient: String,
}

/// Everything one transition changes, committed together or not at all.
#[derive(Debug, Clone)]
pub struct Commit {
    pub instance: InstanceId,
    /// None: create the instance (workflow, locale given); Some(v): expect version v.
    pub expected_version: Option<i64>,
    pub workflow: String,
    pub locale: String,
    pub state: String,
    pub data: Map<String, Value>,
    pub is_final: bool,
    pub event: String,
    pub from: Option<String>,
    pub actor: String,
    pub at: Timestamp,
    pub jobs: Vec<NewJob>,
    pub emails: Vec<NewEmail>,
    pub cancel_timers: Vec<String>,
    pub cancel_all_timers: bool,
    /// The timer job whose firing this transition is: completed in the same transaction,
    /// and the whole commit refused if the job was rescheduled or taken over meanwhile.
    pub fence: Option<JobFence>,
    /// Domain rows written with the transition (an offer with its instance, an acceptance…).
    pub records: Vec<Record>,
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
    pub payload: Value,
    pub state: String,
    pub run_at: Timestamp,
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EmailRow {
    pub message_id: String,
    pub template: String,
    pub locale: String,
    pub role: String,
    pub recipient: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub reply: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// One execution of a schedule: the run for `tick`, standing for every tick after `after`
/// (the schedule's previous tick; ticks between were caught up by this run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleRun {
    pub name: String,
    pub tick: Timestamp,
    pub after: Option<Timestamp>,
    pub node: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub outcome: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Location {
    pub id: String,
    pub name: String,
    pub country: String,
    pub partner_id: String,
}

/// The condition under which a worker's outcome still applies: it holds the job, same attempt.
macro_rules! fence {
    () => {
        "id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3"
    };
}

/// Rows per statement in batched writes (passed as one JSON parameter).
const FINISH_CHUNK: usize = 1000;
/// Up to this many ledger rows are updated one statement each (see `finish`).
const LEDGER_ROW_BY_ROW: usize = 8;
const INSERT_CHUNK: usize = 1000;

const JOB_COLS: &str = "id, key, kind, subject, payload, state, run_at, attempts, max_attempts, lease_owner, last_error, updated_at";

fn job_from_row(r: &AnyRow) -> Result<JobRow> {
    let payload: String = r.try_get("payload")?;
    Ok(JobRow {
        id: r.try_get("id")?,
        key: r.try_get("key")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
        state: r.try_get("state")?,
        run_at: Timestamp(r.try_get("run_at")?),
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        lease_owner: r.try_get("lease_owner")?,
        last_error: r.try_get("last_error")?,
        updated_at: Timestamp(r.try_get("updated_at")?),
    })
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Store {
    /// Connects (creating a SQLite file and its folder if missing) and applies migrations.
    pub async fn connect(db: &DatabaseSettings) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let url = db.url.clone();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let connect_url = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if path != ":memory:" {
                    // 0600 before SQLite opens it: its -wal and -shm get the same mode.
                    crate::core::files::private_sqlite(
                        std::path::Path::new(path),
                        !url.contains('?'),
                    )
                    .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
                }
                if url.contains('?') {
                    url.clone()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.clone(),
        };
        let opts = AnyConnectOptions::from_str(&connect_url)?;
        let busy_ms = db.busy_timeout.0;
        let stmt_ms = db.statement_timeout.0;
        let pool = AnyPoolOptions::new()
            .max_connections(db.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA busy_timeout = {busy_ms}"
                            )))
                            .await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                        }
                        Backend::Postgres => {
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "SET statement_timeout = {stmt_ms}"
                            )))
                            .await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let store = Store {
            pool,
            backend,
            wake: Arc::new(Notify::new()),
            url: Arc::from(url.as_str()),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            // Take the write lock up front: a deferred transaction that upgrades later can
            // fail with SQLITE_BUSY without waiting.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    /// Inside a transaction that enqueued due work: on PostgreSQL, tells every node's idle
    /// workers at commit (NOTIFY is transactional; a rollback sends nothing).
    async fn notify_work(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
        if self.backend == Backend::Postgres {
            tx.execute(sqlx::AssertSqlSafe(format!("NOTIFY {WORK_CHANNEL}")))
                .await?;
        }
        Ok(())
    }

    /// Runs for as long as the process: on PostgreSQL, LISTENs for work enqueued by any node
    /// and wakes this process's idle workers. A lost connection is re-made (with backoff);
    /// after each reconnect the workers are woken once, since notifications sent meanwhile
    /// are gone. On SQLite (one machine) there is nothing to listen to: returns at once.
    pub async fn listen_for_work(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let mut delay = Duration::from_millis(100);
        loop {
            let listener = async {
                let mut l = sqlx::postgres::PgListener::connect(&self.url).await?;
                l.listen(WORK_CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "LISTEN connection failed; workers poll meanwhile");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            delay = Duration::from_millis(100);
            self.wake.notify_waiters();
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => self.wake.notify_waiters(),
                    // The connection was lost and is being re-made: work may have come
                    // meanwhile.
                    Ok(None) => self.wake.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- instances

    /// Commits a transition (or a creation): state, history row, jobs, ledger rows and timer
    /// changes in one transaction. A version mismatch is [`StoreError::Conflict`].
    pub async fn commit(&self, c: &Commit) -> Result<i64> {
        let seqs = self.commit_all(std::slice::from_ref(c)).await?;
        Ok(seqs.first().copied().unwrap_or(0))
    }

    /// Commits several transitions (of one or more instances, creations included) in one
    /// transaction: all or none. Returns each one's new version.
    pub async fn commit_all(&self, commits: &[Commit]) -> Result<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let mut seqs = Vec::with_capacity(commits.len());
        let mut due_now = false;
        for c in commits {
            let (seq, due) = commit_in(&mut tx, c).await?;
            seqs.push(seq);
            due_now |= due;
        }
        if due_now {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        if due_now {
            self.wake.notify_waiters();
        }
        Ok(seqs)
    }

    /// Writes domain rows that belong to no transition (a reseller's customer) in one
    /// transaction.
    pub async fn write_records(&self, records: &[Record], at: Timestamp) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for r in records {
            offers::write_record(&mut tx, r, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn instance(&self, id: &InstanceId) -> Result<InstanceRow> {
        let r = sqlx::query(
            "SELECT id, workflow, state, version, data, locale, created_at, updated_at, final_at FROM instances WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("instance {id}")))?;
        let data: String = r.try_get("data")?;
        let data: Map<String, Value> = serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("instance {id} data: {e}")))?;
        let id_s: String = r.try_get("id")?;
        Ok(InstanceRow {
            id: InstanceId::parse(&id_s).map_err(StoreError::Corrupt)?,
            workflow: r.try_get("workflow")?,
            state: r.try_get("state")?,
            version: r.try_get("version")?,
            data,
            locale: r.try_get("locale")?,
            created_at: Timestamp(r.try_get("created_at")?),
            updated_at: Timestamp(r.try_get("updated_at")?),
            final_at: r.try_get::<Option<i64>, _>("final_at")?.map(Timestamp),
        })
    }

    pub async fn history(&self, id: &InstanceId) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT seq, event, from_state, to_state, at, actor FROM history WHERE instance_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    seq: r.try_get("seq")?,
                    event: r.try_get("event")?,
                    from: r.try_get("from_state")?,
                    to: r.try_get("to_state")?,
                    at: Timestamp(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                })
            })
            .collect()
    }

    pub async fn emails_of(&self, id: &InstanceId) -> Result<Vec<EmailRow>> {
        let rows = sqlx::query(
            "SELECT message_id, template, locale, role, recipient, state, attempts, last_error, reply, created_at, sent_at
             FROM emails WHERE instance_id = $1 ORDER BY created_at, message_id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EmailRow {
                    message_id: r.try_get("message_id")?,
                    template: r.try_get("template")?,
                    locale: r.try_get("locale")?,
                    role: r.try_get("role")?,
                    recipient: r.try_get("recipient")?,
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    reply: r.try_get("reply")?,
                    created_at: Timestamp(r.try_get("created_at")?),
                    sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(Timestamp),
                })
            })
            .collect()
    }

    pub async fn timers_of(&self, id: &InstanceId) -> Result<Vec<JobRow>> {
        self.jobs_where("subject = $1 AND kind = 'timer'", id.as_str(), 1000)
            .await
    }

    pub async fn count_instances(&self, workflow: Option<&str>, final_only: bool) -> Result<i64> {
        let sql = match (workflow.is_some(), final_only) {
            (true, true) => {
                "SELECT COUNT(*) FROM instances WHERE workflow = $1 AND final_at IS NOT NULL"
            }
            (true, false) => "SELECT COUNT(*) FROM instances WHERE workflow = $1",
            (false, true) => {
                "SELECT COUNT(*) FROM instances WHERE final_at IS NOT NULL AND $1 = $1"
            }
            (false, false) => "SELECT COUNT(*) FROM instances WHERE $1 = $1",
        };
        let r = sqlx::query(sql)
            .bind(workflow.unwrap_or(""))
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get(0)?)
    }

    // ---------------------------------------------------------------- jobs

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
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
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
                 UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
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
        tx.commit().await?;
        rows.iter().map(job_from_row).collect()
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
    /// with one statement per chunk, and their ledger rows with another.
    pub async fn finish(
        &self,
        owner: &str,
        outcomes: &[(JobRow, Outcome)],
        now: Timestamp,
    ) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
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
                if let Some(mid) = job.payload.get("message_id").and_then(Value::as_str) {
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
            if let Some(mid) = job.payload.get("message_id").and_then(Value::as_str) {
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
        Ok(())
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
                        "key": j.key, "kind": j.kind, "subject": j.subject,
                        "payload": json_text(&j.payload), "run_at": j.run_at.0,
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

    /// The ledger state of an email: `sent` means a retried job must not send again.
    pub async fn email_state(&self, message_id: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT state FROM emails WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    async fn jobs_where(&self, cond: &str, arg: &str, limit: i64) -> Result<Vec<JobRow>> {
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

    /// Puts a failed job back to work now, with a fresh attempt budget.
    pub async fn retry_job(&self, id: i64, now: Timestamp) -> Result<JobRow> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE jobs SET state = 'scheduled', run_at = $1, attempts = 0, updated_at = $1, finished_at = NULL
             WHERE id = $2 AND state = 'failed' RETURNING {JOB_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.0)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            drop(tx);
            let j = self.job(id).await?;
            return Err(StoreError::NotFound(format!(
                "failed job {id} (it is {})",
                j.state
            )));
        };
        let job = job_from_row(&row)?;
        if let Some(mid) = job.payload.get("message_id").and_then(Value::as_str) {
            sqlx::query(
                "UPDATE emails SET state = 'queued' WHERE message_id = $1 AND state = 'failed'",
            )
            .bind(mid)
            .execute(&mut *tx)
            .await?;
        }
        self.notify_work(&mut tx).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(job)
    }

    /// Moves a scheduled timer to another time; false if there is none scheduled.
    pub async fn reschedule_timer(
        &self,
        instance: &InstanceId,
        name: &str,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET run_at = $1, updated_at = $2 WHERE key = $3 AND state = 'scheduled'",
        )
        .bind(at.0)
        .bind(now.0)
        .bind(timer_key(instance, name))
        .execute(&self.pool)
        .await?;
        if self.backend == Backend::Postgres {
            // Idle workers elsewhere may be waiting for the timer's old time.
            self.pool
                .execute(sqlx::AssertSqlSafe(format!("NOTIFY {WORK_CHANNEL}")))
                .await?;
        }
        self.wake.notify_waiters();
        Ok(r.rows_affected() == 1)
    }

    /// Cancels a scheduled timer; false if there is none scheduled.
    pub async fn cancel_timer(
        &self,
        instance: &InstanceId,
        name: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1 WHERE key = $2 AND state = 'scheduled'")
            .bind(now.0)
            .bind(timer_key(instance, name))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
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

    // ---------------------------------------------------------------- schedules

    pub async fn schedule_last_tick(&self, name: &str) -> Result<Option<Timestamp>> {
        let r = sqlx::query("SELECT last_tick FROM schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match r {
            Some(r) => Some(Timestamp(r.try_get(0)?)),
            None => None,
        })
    }

    /// Advances a schedule from `expected` (None: never ticked) to `tick`, and enqueues `run`
    /// with it, in one transaction. `Lost` when another process advanced it first: the tick
    /// is theirs. While the previous run of the schedule is unfinished nothing changes
    /// (`SkippedBusy`): runs never overlap, and the ticks that came due meanwhile are caught
    /// up per policy once it has finished.
    pub async fn advance_schedule(
        &self,
        name: &str,
        expected: Option<Timestamp>,
        tick: Timestamp,
        run: Option<NewJob>,
        now: Timestamp,
    ) -> Result<AdvanceOutcome> {
        let mut tx = self.begin_write().await?;
        if let Some(job) = &run {
            let busy: i64 = sqlx::query(
                "SELECT COUNT(*) FROM jobs WHERE subject = $1 AND kind = 'schedule' AND state IN ('scheduled', 'running')",
            )
            .bind(&job.subject)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if busy > 0 {
                return Ok(AdvanceOutcome::SkippedBusy);
            }
        }
        let won = match expected {
            None => {
                sqlx::query("INSERT INTO schedules (name, last_tick, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(tick.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            }
            Some(prev) => {
                sqlx::query("UPDATE schedules SET last_tick = $1, updated_at = $2 WHERE name = $3 AND last_tick = $4")
                    .bind(tick.0)
                    .bind(now.0)
                    .bind(name)
                    .bind(prev.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            }
        };
        if !won {
            return Ok(AdvanceOutcome::Lost);
        }
        let outcome = match &run {
            None => AdvanceOutcome::Advanced,
            Some(job) => {
                insert_job(&mut tx, job, now).await?;
                self.notify_work(&mut tx).await?;
                AdvanceOutcome::Fired
            }
        };
        tx.commit().await?;
        if outcome == AdvanceOutcome::Fired {
            self.wake.notify_waiters();
        }
        Ok(outcome)
    }

    /// Records a finished schedule run and completes its job in one transaction, fenced by
    /// the job's lease: a run is recorded once even when its job ran twice (a node died
    /// after recording, say). False (nothing recorded) when the job was taken over.
    pub async fn record_schedule_run(&self, run: &ScheduleRun, fence: &JobFence) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !complete_fenced(&mut tx, fence, run.finished).await? {
            return Ok(false);
        }
        sqlx::query("INSERT INTO schedule_runs (name, tick, after_tick, node, started_at, finished_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&run.name)
            .bind(run.tick.0)
            .bind(run.after.map(|t| t.0))
            .bind(&run.node)
            .bind(run.started.0)
            .bind(run.finished.0)
            .bind(&run.outcome)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every recorded run of a schedule, oldest tick first.
    pub async fn schedule_runs(&self, name: &str) -> Result<Vec<ScheduleRun>> {
        let rows = sqlx::query(
            "SELECT name, tick, after_tick, node, started_at, finished_at, outcome FROM schedule_runs WHERE name = $1 ORDER BY tick, id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRun {
                    name: r.try_get(0)?,
                    tick: Timestamp(r.try_get(1)?),
                    after: r.try_get::<Option<i64>, _>(2)?.map(Timestamp),
                    node: r.try_get(3)?,
                    started: Timestamp(r.try_get(4)?),
                    finished: Timestamp(r.try_get::<Option<i64>, _>(5)?.unwrap_or_default()),
                    outcome: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    // ---------------------------------------------------------------- locations

    /// Upserts what a sync saw. Returns (new, updated).
    pub async fn upsert_locations(&self, locs: &[Location], now: Timestamp) -> Result<(u64, u64)> {
        let mut tx = self.begin_write().await?;
        let (mut new, mut updated) = (0, 0);
        for l in locs {
            let existed = sqlx::query("SELECT 1 FROM locations WHERE id = $1")
                .bind(&l.id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            // Seen again: available again (a later removal is told again).
            sqlx::query(
                "INSERT INTO locations (id, name, country, partner_id, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, country = excluded.country, partner_id = excluded.partner_id, last_seen_at = excluded.last_seen_at, removed_at = NULL",
            )
            .bind(&l.id)
            .bind(&l.name)
            .bind(&l.country)
            .bind(&l.partner_id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            if existed { updated += 1 } else { new += 1 }
        }
        tx.commit().await?;
        Ok((new, updated))
    }

    /// Locations still available (listed by the latest sync), with when each was first seen.
    pub async fn locations(&self) -> Result<Vec<(Location, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT id, name, country, partner_id, first_seen_at FROM locations WHERE removed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    Location {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        country: r.try_get(2)?,
                        partner_id: r.try_get(3)?,
                    },
                    Timestamp(r.try_get(4)?),
                ))
            })
            .collect()
    }
}

impl Store {
    /// Locations that a sync at `at` did not list and that are not marked removed yet.
    pub async fn unlisted_locations(&self, at: Timestamp) -> Result<Vec<Location>> {
        let rows = sqlx::query(
            "SELECT id, name, country, partner_id FROM locations WHERE last_seen_at < $1 AND removed_at IS NULL ORDER BY id",
        )
        .bind(at.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Location {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    country: r.try_get(2)?,
                    partner_id: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// When a location was marked removed (None: available, or never synced).
    pub async fn location_removed_at(&self, id: &str) -> Result<Option<Timestamp>> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT removed_at FROM locations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten().map(Timestamp))
    }
}

/// One transition inside a write transaction; returns its new version and whether it
/// enqueued work that is due now.
async fn commit_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    c: &Commit,
) -> Result<(i64, bool)> {
    // Lock order: the instance row first, then job rows (the fence, cancelled and replaced
    // timers). A customer's event and a timer of the same instance committing at once would
    // otherwise deadlock on PostgreSQL (timer: job row → instance; event: instance → timer row).
    let data = json_text(&c.data);
    let final_at = c.is_final.then_some(c.at.0);
    let seq = match c.expected_version {
        None => {
            sqlx::query(
                    "INSERT INTO instances (id, workflow, state, version, data, locale, created_at, updated_at, final_at)
                     VALUES ($1, $2, $3, 1, $4, $5, $6, $6, $7)",
                )
                .bind(c.instance.as_str())
                .bind(&c.workflow)
                .bind(&c.state)
                .bind(&data)
                .bind(&c.locale)
                .bind(c.at.0)
                .bind(final_at)
                .execute(&mut **tx)
                .await?;
            1
        }
        Some(v) => {
            let r = sqlx::query(
                    "UPDATE instances SET state = $1, version = version + 1, data = $2, updated_at = $3, final_at = $4
                     WHERE id = $5 AND version = $6",
                )
                .bind(&c.state)
                .bind(&data)
                .bind(c.at.0)
                .bind(final_at)
                .bind(c.instance.as_str())
                .bind(v)
                .execute(&mut **tx)
                .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(c.instance.clone()));
            }
            v + 1
        }
    };
    if let Some(f) = &c.fence
        && !complete_fenced(tx, f, c.at).await?
    {
        return Err(StoreError::Stale(f.job_id));
    }
    sqlx::query(
            "INSERT INTO history (instance_id, seq, event, from_state, to_state, at, actor) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.instance.as_str())
        .bind(seq)
        .bind(&c.event)
        .bind(c.from.as_deref())
        .bind(&c.state)
        .bind(c.at.0)
        .bind(&c.actor)
        .execute(&mut **tx)
        .await?;
    if c.cancel_all_timers {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1
                 WHERE subject = $2 AND kind = 'timer' AND state = 'scheduled'",
        )
        .bind(c.at.0)
        .bind(c.instance.as_str())
        .execute(&mut **tx)
        .await?;
    }
    for name in &c.cancel_timers {
        sqlx::query(
                "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1 WHERE key = $2 AND state = 'scheduled'",
            )
            .bind(c.at.0)
            .bind(timer_key(&c.instance, name))
            .execute(&mut **tx)
            .await?;
    }
    for e in &c.emails {
        sqlx::query(
                "INSERT INTO emails (message_id, instance_id, template, locale, role, recipient, state, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7) ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&e.message_id)
            .bind(c.instance.as_str())
            .bind(&e.template)
            .bind(&e.locale)
            .bind(&e.role)
            .bind(&e.recipient)
            .bind(c.at.0)
            .execute(&mut **tx)
            .await?;
    }
    let mut due_now = false;
    for j in &c.jobs {
        insert_job(tx, j, c.at).await?;
        due_now |= j.run_at <= c.at;
    }
    for r in &c.records {
        offers::write_record(tx, r, c.at).await?;
    }
    Ok((seq, due_now))
}

/// Creates (anew: an existing one is dropped) database `name` on the PostgreSQL server of
/// `server_url`, for benchmarks; returns its URL. `name` must be a plain identifier.
pub async fn create_scratch_database(server_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::NotFound(format!(
            "a plain database name (got `{name}`)"
        )));
    }
    let mut url = url::Url::parse(server_url)
        .map_err(|e| StoreError::Db(sqlx::Error::Configuration(Box::new(e))))?;
    let mut admin = sqlx::PgConnection::connect(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    url.set_path(name);
    Ok(url.to_string())
}

/// Drops a database made by [`create_scratch_database`].
pub async fn drop_scratch_database(server_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    Ok(())
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceOutcome {
    Lost,
    Advanced,
    Fired,
    SkippedBusy,
}

pub fn timer_key(instance: &InstanceId, name: &str) -> String {
    format!("timer:{instance}:{name}")
}

/// Completes the job of `fence` inside `tx` if its worker still holds it (same owner, same
/// attempt); false if it was rescheduled, cancelled or taken over meanwhile.
async fn complete_fenced(
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

async fn insert_job(
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
        .bind(&j.kind)
        .bind(&j.subject)
        .bind(json_text(&j.payload))
        .bind(j.run_at.0)
        .bind(j.max_attempts as i64)
        .bind(now.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
