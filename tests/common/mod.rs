//! Test helpers: one app builder for every test (like production's), on a fresh database of
//! either store. `on_both_stores!(a, b, …)` runs each listed `async fn a(store: Store)` once on
//! SQLite and once on PostgreSQL (a backend matrix: `sqlite::a`, `postgres::a`).
//!
//! PostgreSQL: each test gets its own database on the server at `PARTNERFLOW_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`). When that server cannot be reached
//! the PostgreSQL half reports itself as skipped, with the reason, on stderr — unless
//! `PARTNERFLOW_TEST_REQUIRE_POSTGRES=1` (set by `.ci/run`), which makes a skip a failure.
#![allow(dead_code)]

pub mod campaign_smtp;
pub mod smtp;
pub mod web;
pub mod webdriver;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use partnerflow::app::AppState;
use partnerflow::core::clock::ManualClock;
use partnerflow::core::config::Settings;
use partnerflow::core::domain::{InstanceId, Locale, Timestamp};
use serde_json::{Value, json};

pub struct TestApp {
    pub rt: Arc<AppState>,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
}

pub fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub store: Store,
    pub url: String,
}

const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn pg_admin_url() -> String {
    std::env::var("PARTNERFLOW_TEST_POSTGRES").unwrap_or_else(|_| PG_DEFAULT.to_string())
}

fn pg_required() -> bool {
    std::env::var("PARTNERFLOW_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

async fn pg_admin() -> Result<sqlx::PgConnection, String> {
    use sqlx::Connection;
    let url = pg_admin_url();
    let connect = sqlx::PgConnection::connect(&url);
    match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to {url}: {e}")),
        Err(_) => Err(format!("cannot connect to {url}: timed out")),
    }
}

/// True when the PostgreSQL half must be skipped (the reason is printed past the test
/// harness's capture, once per test binary). Panics instead when PostgreSQL is required.
pub async fn postgres_skipped() -> bool {
    use std::io::Write;
    static REPORTED: std::sync::Once = std::sync::Once::new();
    let Err(reason) = pg_admin().await.map(drop) else {
        return false;
    };
    assert!(
        !pg_required(),
        "PostgreSQL is required (PARTNERFLOW_TEST_REQUIRE_POSTGRES=1) but {reason}"
    );
    REPORTED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the PostgreSQL half of this test binary: {reason} \
             (set PARTNERFLOW_TEST_POSTGRES to a server's URL)"
        );
    });
    true
}

impl TestDb {
    pub async fn new(store: Store, dir: &Path) -> TestDb {
        match store {
            Store::Sqlite => TestDb {
                store,
                url: format!("sqlite://{}", dir.join("pf.db").display()),
            },
            Store::Postgres => {
                static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let mut admin = pg_admin().await.unwrap();
                drop_leftover_databases(&mut admin).await;
                let name = format!(
                    "pf_test_{}_{}",
                    std::process::id(),
                    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                let url = partnerflow::store::create_scratch_database(&pg_admin_url(), &name)
                    .await
                    .unwrap();
                TestDb { store, url }
            }
        }
    }
}

/// Databases left by test processes that have exited (each name carries its creator's pid).
async fn drop_leftover_databases(admin: &mut sqlx::PgConnection) {
    use sqlx::{Executor, Row};
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let rows = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'pf_test_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
        for r in rows {
            let name: String = r.get(0);
            let pid = name.split('_').nth(2).unwrap_or("");
            if !Path::new("/proc").join(pid).exists() {
                let _ = admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            }
        }
    })
    .await;
}

/// Runs each named `async fn name(store: Store)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Store::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::common::postgres_skipped().await {
                        return;
                    }
                    super::$name($crate::common::Store::Postgres).await
                }
            )*
        }
    };
}

/// Environment for a test installation in `dir` on `db`, plus `extra` overrides.
pub fn test_env(dir: &Path, db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PARTNERFLOW__DATABASE__URL".into(), db.url.clone()),
        (
            "PARTNERFLOW__EMAIL__OUTBOX_DIR".into(),
            dir.join("outbox").display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__DATA_DIR".into(),
            dir.display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__WORKFLOWS_DIR".into(),
            manifest("workflows").display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__TEMPLATES_DIR".into(),
            manifest("email-templates").display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__CATALOG".into(),
            manifest("config/catalog.toml").display().to_string(),
        ),
        (
            "PARTNERFLOW__SCHEDULES__LOCATION_SYNC__ENABLED".into(),
            "false".into(),
        ),
        (
            "PARTNERFLOW__SCHEDULES__LOCATION_SYNC__SOURCE".into(),
            manifest("config/locations.json").display().to_string(),
        ),
        (
            "PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED".into(),
            "false".into(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

pub const START: &str = "2026-11-01T09:00:00Z";

pub async fn spawn_app(store: Store, extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(store, dir.path()).await;
    let settings = Settings::load(None, &test_env(dir.path(), &db, extra)).unwrap();
    let clock = ManualClock::new(Timestamp::parse_rfc3339(START).unwrap());
    let rt = partnerflow::app::build(settings, Some(Arc::new(clock.clone())), "test")
        .await
        .unwrap();
    TestApp { rt, clock, dir }
}

pub fn trial_data(n: usize) -> serde_json::Map<String, Value> {
    json!({
        "offer_id": format!("PF-TEST{n:06}"),
        "customer_email": format!("kunde{n}@contoso.example"),
        "customer_name": format!("Contoso {n} AG"),
        "product_name": "Microsoft 365 Business Premium",
        "link": format!("https://partnerflow.example/o/PF-TEST{n:06}"),
    })
    .as_object()
    .cloned()
    .unwrap()
}

/// A runtime on `env` without workers, to start instances and observe the store.
pub async fn local_runtime(env: &[(String, String)]) -> Arc<AppState> {
    let settings = Settings::load(None, env).unwrap();
    partnerflow::app::build(settings, None, "test")
        .await
        .unwrap()
}

/// Starts trial invitation `n` on `rt` and sends it (one email job due now).
pub async fn start_and_send(rt: &AppState, n: usize) -> InstanceId {
    let id = rt
        .engine
        .start("trial_invitation", &trial_data(n), None, "test")
        .await
        .unwrap();
    rt.engine.fire(&id, "send", "test").await.unwrap();
    id
}

impl TestApp {
    /// A second node: its own state and pool on the same database and clock.
    pub async fn second_node(&self) -> Arc<AppState> {
        partnerflow::app::build(
            self.rt.settings.clone(),
            Some(Arc::new(self.clock.clone())),
            "test-2",
        )
        .await
        .unwrap()
    }
    pub async fn invite(&self, n: usize) -> InstanceId {
        let id = self
            .rt
            .engine
            .start("trial_invitation", &trial_data(n), Some(Locale::De), "test")
            .await
            .unwrap();
        self.rt.engine.fire(&id, "send", "test").await.unwrap();
        id
    }
    pub async fn state(&self, id: &InstanceId) -> String {
        self.rt.store.instance(id).await.unwrap().state
    }
    pub fn outbox(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("outbox"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Checks that recorded schedule runs account for every tick exactly once: each run stands
/// for the ticks after its `after` up to its own tick, and consecutive runs join up — no
/// tick twice, no tick lost. Returns (runs, ticks caught up rather than fired on their own).
pub fn assert_ticks_accounted(
    runs: &[partnerflow::store::ScheduleRun],
    step_ms: i64,
) -> (usize, i64) {
    assert!(!runs.is_empty(), "no runs");
    let mut caught_up = 0;
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.tick.0 % step_ms, 0, "tick not on the schedule: {r:?}");
        let after = r
            .after
            .unwrap_or_else(|| panic!("run without its span: {r:?}"));
        assert!(after < r.tick, "{r:?}");
        caught_up += (r.tick.0 - after.0) / step_ms - 1;
        if i > 0 {
            let prev = &runs[i - 1];
            assert!(
                after == prev.tick,
                "runs do not join up (a tick {}): {prev:?} then {r:?}",
                if after < prev.tick { "twice" } else { "lost" }
            );
        }
    }
    (runs.len(), caught_up)
}

/// A child `partnerflow` process; killed (and reaped) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.0.id().to_string())
            .status();
    }
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// `partnerflow worker` with `env`, its log (info) written to `log`.
pub fn spawn_worker(env: &[(String, String)], log: &std::path::Path) -> Proc {
    spawn_partnerflow(&["worker"], env, log)
}

/// `partnerflow ARGS…` with `env`, its log (info) written to `log`.
pub fn spawn_partnerflow(args: &[&str], env: &[(String, String)], log: &std::path::Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(args)
        .envs(env.iter().cloned())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap();
    Proc(child)
}

/// Waits until `cond` holds, checking every 50 ms; panics after `within`.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints a test's measured figures past the harness's output capture.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A delivery status notification (RFC 3464) about the message `message_id` that failed
/// (5.1.1) for each of `recipients`, with the returned message's headers.
pub fn dsn(message_id: &str, recipients: &[String]) -> String {
    let mut s = String::from(
        "From: MAILER-DAEMON@mx.evil.example\r\n\
         To: bounces@partnerflow.example\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         Delivery failed.\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.evil.example\r\n",
    );
    for r in recipients {
        s.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        ));
    }
    s.push_str(&format!(
        "\r\n--b1\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: einladung@partnerflow.example\r\n\
         Message-ID: {message_id}\r\n\
         Subject: Einladung\r\n\
         \r\n\
         --b1--\r\n"
    ));
    s
}

/// `n` made-up addresses of the kind the security test used (`script>…@evil.example`).
pub fn evil_addresses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("script>alert({i})</script>{i}@evil.example"))
        .collect()
}
