//! The only module that knows SQL. One API over SQLite and PostgreSQL (sqlx `Any`), the
//! backend chosen by the URL scheme. Every multi-row change is one transaction.
//!
//! SQL dialects, one way: a statement both databases accept is written once (a cast is
//! `CAST(x AS T)`, which both read); where they differ, the two statements stand side by side
//! in `match self.backend { Backend::Sqlite => …, Backend::Postgres => … }` in the function
//! that runs them. No statement is rewritten by string replacement.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::Notify;

use crate::core::config::DatabaseSettings;
use crate::core::domain::InstanceId;

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
    /// The row is there, in a state the change does not apply to (a job that is no longer
    /// failed, an email whose link is its recipient's own): nothing was written.
    #[error("{0}")]
    NotNow(String),
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

/// The condition under which a worker's outcome still applies: it holds the job, same attempt.
macro_rules! fence {
    () => {
        "id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3"
    };
}

mod campaigns;
mod company;
mod instances;
mod job_ops;
mod jobs;
mod locations;
mod offer_pages;
mod offers;
mod portal_bench;
mod reports;
mod reseller_pages;
mod schedules;
mod scratch;
mod users;
pub use campaigns::*;
pub use company::*;
pub use instances::*;
pub use job_ops::*;
pub use jobs::*;
pub use offers::*;
pub use schedules::*;
pub use scratch::*;
pub use users::*;

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

    /// The newest migration this build has (what [`Store::migrate`] applies).
    pub fn expected_schema_version(&self) -> i64 {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// Readiness: the database answers (`SELECT 1`); then the newest migration applied to it
    /// (None: none, or no migration table).
    pub async fn applied_schema_version(&self) -> Result<Option<i64>> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        let applied: std::result::Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await;
        // No migration table (a database never migrated): nothing applied.
        let no_table = |e: &sqlx::Error| matches!(e, sqlx::Error::Database(d) if d.message().contains("_sqlx_migrations"));
        match applied {
            Ok(v) => Ok(v),
            Err(e) if no_table(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A write transaction; how long it waited for its connection (and, on SQLite, the write
    /// lock) is `partnerflow_db_acquire_seconds`.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let asked = std::time::Instant::now();
        let tx = match self.backend {
            // Take the write lock up front: a deferred transaction that upgrades later can
            // fail with SQLITE_BUSY without waiting.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        metrics::histogram!(crate::core::metric_names::DB_ACQUIRE)
            .record(asked.elapsed().as_secs_f64());
        Ok(tx)
    }

    /// This process's pool now: (connections open, of them idle).
    pub fn pool_connections(&self) -> (u32, u32) {
        (self.pool.size(), self.pool.num_idle() as u32)
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

    // ---------------------------------------------------------------- jobs

    // ---------------------------------------------------------------- schedules

    // ---------------------------------------------------------------- locations
}
