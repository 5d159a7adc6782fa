//! PostgreSQL restarted under running workers: they reconnect by themselves (store pool,
//! LISTEN connection, acknowledger) and nothing is lost. A test binary of its own, so that
//! no other test's database connections are cut (cargo runs test binaries one at a time).
//!
//! The restart command is `PARTNERFLOW_TEST_POSTGRES_RESTART` (a shell command); by default
//! the local Debian cluster's `pg_ctlcluster … restart`. Without PostgreSQL, or without a way
//! to restart it, the test reports itself as skipped — a failure under
//! `PARTNERFLOW_TEST_REQUIRE_POSTGRES=1`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::smtp::SmtpServer;
use common::{Proc, Store, TestDb, spawn_worker, wait_for};

fn restart_command() -> Option<String> {
    if let Ok(c) = std::env::var("PARTNERFLOW_TEST_POSTGRES_RESTART") {
        return Some(c);
    }
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()?;
    Some(format!(
        "pg_ctlcluster --skip-systemctl-redirect {version} main restart"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_postgres_restart_and_lose_nothing() {
    if common::postgres_skipped().await {
        return;
    }
    let Some(restart) = restart_command() else {
        assert!(
            std::env::var("PARTNERFLOW_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "PostgreSQL is required, but there is no way to restart it here \
             (set PARTNERFLOW_TEST_POSTGRES_RESTART)"
        );
        common::report(
            "SKIPPED: no command to restart PostgreSQL (PARTNERFLOW_TEST_POSTGRES_RESTART)",
        );
        return;
    };
    let (before, after) = (2_000, 500);
    let concurrency = 16;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Store::Postgres, dir.path()).await;
    let smtp = SmtpServer::start(&dir.path().join("received"));
    let port = smtp.port.to_string();
    let env = common::test_env(
        dir.path(),
        &db,
        &[
            ("PARTNERFLOW__EMAIL__TRANSPORT", "smtp"),
            ("PARTNERFLOW__EMAIL__SMTP__HOST", "127.0.0.1"),
            ("PARTNERFLOW__EMAIL__SMTP__PORT", &port),
            ("PARTNERFLOW__EMAIL__SMTP__SECURITY", "none"),
            ("PARTNERFLOW__JOBS__LEASE", "5s"),
            ("PARTNERFLOW__JOBS__CONCURRENCY", "16"),
            ("PARTNERFLOW__JOBS__BATCH", "16"),
            // Idle workers poll only every 30 s: work started after the restart is sent
            // promptly only if their LISTEN connection came back.
            ("PARTNERFLOW__JOBS__POLL_INTERVAL", "30s"),
        ],
    );
    let rt = common::local_runtime(&env).await;
    for i in 0..before {
        common::start_and_send(&rt, i).await;
    }
    // A backlog first, so that the restart hits workers busy with it.
    let mut workers: Vec<Proc> = (0..2)
        .map(|i| spawn_worker(&env, &dir.path().join(format!("worker{i}.log"))))
        .collect();
    wait_for(
        "a quarter of the emails sent",
        Duration::from_secs(120),
        || async { smtp.count() >= before / 4 },
    )
    .await;
    let before_restart = smtp.count();
    let t = Instant::now();
    let st = Command::new("sh").arg("-c").arg(&restart).status().unwrap();
    assert!(st.success(), "`{restart}` failed: {st}");
    let restart_took = t.elapsed();
    let at_restart = smtp.count();
    assert!(
        before_restart < before,
        "the restart came after all emails were sent"
    );
    common::report(&format!(
        "pg restart took {:.1}s; emails at the server: {before_restart} of {before} before it, {at_restart} after",
        restart_took.as_secs_f64()
    ));

    // The backlog drains. (A claim whose reply the restart cut off is taken over when
    // its lease runs out, at the next poll: up to 5 s + 30 s.)
    wait_for("the backlog sent", Duration::from_secs(90), || async {
        rt.store.count_jobs("done", Some("email")).await.unwrap() == before as i64
    })
    .await;

    // New work after the restart, through this process's pool (it reconnects too), while
    // the workers are idle: only a NOTIFY can wake them before their next poll.
    let t = Instant::now();
    let mut i = before;
    while i < before + after {
        common::start_and_send(&rt, i).await;
        i += 1;
    }
    let total = before + after;
    wait_for(
        "the new work sent well before the next poll (LISTEN reconnected)",
        Duration::from_secs(15),
        || async { rt.store.count_jobs("done", Some("email")).await.unwrap() == total as i64 },
    )
    .await;
    let new_work = t.elapsed();
    for w in workers.iter_mut() {
        assert!(w.0.try_wait().unwrap().is_none(), "a worker exited");
        w.signal("TERM");
    }
    for w in workers.iter_mut() {
        assert!(w.wait_exit(Duration::from_secs(30)));
    }
    let (seen, arrived) = smtp.message_id_counts();
    assert_eq!(seen.len(), total, "every email arrived");
    let duplicates = arrived - total;
    assert!(
        duplicates <= 2 * concurrency,
        "{duplicates} duplicates; in flight at most {}",
        2 * concurrency
    );
    assert_eq!(rt.store.count_jobs("failed", None).await.unwrap(), 0);
    common::report(&format!(
        "pg restart: {after} more started after it and sent within {:.1}s; all {total} arrived, \
         {duplicates} duplicates, workers kept running",
        new_work.as_secs_f64()
    ));
}
