//! Scale-out with real processes: several `partnerflow worker` nodes and a web-only
//! `partnerflow serve --no-workers` on one database, a real SMTP server, and nodes killed
//! with SIGKILL while they hold work. Waits are on conditions with a deadline.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::smtp::SmtpServer;
use common::{Proc, Store, TestDb, spawn_partnerflow, spawn_worker, wait_for};

const TOKEN: &str = "cluster-test-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `n` trial invitations (each sends one email) through the web node's API, from
/// eight client threads.
fn start_through_api(base: &str, n: usize) -> Vec<String> {
    let threads = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let base = base.to_string();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut ids = Vec::new();
                for i in (t..n).step_by(threads) {
                    let body = serde_json::json!({
                        "workflow": "trial_invitation",
                        "data": common::trial_data(i),
                        "event": "send",
                    });
                    // A 503 (the database locked beyond its busy timeout on a loaded
                    // machine) says Retry-After: a client tries again; anything else fails.
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                    let text = loop {
                        let mut resp = agent
                            .post(&format!("{base}/api/v1/instances"))
                            .header("Authorization", &format!("Bearer {TOKEN}"))
                            .header("Content-Type", "application/json")
                            .send(body.to_string())
                            .unwrap();
                        let status = resp.status().as_u16();
                        let retry = resp.headers().get("retry-after").is_some();
                        let text = resp.body_mut().read_to_string().unwrap();
                        if status == 503 && retry && std::time::Instant::now() < deadline {
                            eprintln!("request {i}: 503, retrying: {text}");
                            std::thread::sleep(std::time::Duration::from_secs(1));
                            continue;
                        }
                        assert_eq!(status, 201, "{text}");
                        break text;
                    };
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    ids.push(v["id"].as_str().unwrap().to_string());
                }
                ids
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn cluster_env(
    dir: &std::path::Path,
    db: &TestDb,
    smtp_port: u16,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let port = smtp_port.to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("PARTNERFLOW__EMAIL__TRANSPORT", "smtp"),
        ("PARTNERFLOW__EMAIL__SMTP__HOST", "127.0.0.1"),
        ("PARTNERFLOW__EMAIL__SMTP__PORT", &port),
        ("PARTNERFLOW__EMAIL__SMTP__SECURITY", "none"),
        ("PARTNERFLOW__HTTP__ADMIN_TOKEN", TOKEN),
        ("PARTNERFLOW__JOBS__LEASE", "5s"),
        ("PARTNERFLOW__JOBS__CONCURRENCY", "32"),
        ("PARTNERFLOW__JOBS__BATCH", "32"),
    ];
    all.extend_from_slice(extra);
    common::test_env(dir, db, &all)
}

/// Three workers and a web-only node; invitations come in through the API while the
/// workers send; one worker is SIGKILLed mid-way. Every email arrives at the SMTP server;
/// the only duplicates are the killed worker's in-flight sends (at most its concurrency).
async fn three_workers_and_a_web_node_deliver_every_email_through_a_kill(store: Store) {
    // SQLite serialises writers of the one file: a smaller run shows the same on one machine.
    // `PARTNERFLOW_TEST_CLUSTER_INVITATIONS` runs more (the README's figures are of 20,000 on
    // PostgreSQL); the default keeps CI's suite within its time.
    let n = std::env::var("PARTNERFLOW_TEST_CLUSTER_INVITATIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(match store {
            Store::Postgres => 10_000,
            Store::Sqlite => 3_000,
        });
    let concurrency = 32;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(store, dir.path()).await;
    let smtp = SmtpServer::start(&dir.path().join("received"));
    let http_port = free_port().to_string();
    let bind = format!("127.0.0.1:{http_port}");
    let env = cluster_env(
        dir.path(),
        &db,
        smtp.port,
        &[("PARTNERFLOW__HTTP__BIND", bind.as_str())],
    );
    let rt = common::local_runtime(&env).await; // migrates; used to observe the store
    let web = spawn_partnerflow(
        &["serve", "--no-workers"],
        &env,
        &dir.path().join("web.log"),
    );
    let base = format!("http://{bind}");
    wait_for("the web node to answer", Duration::from_secs(30), || {
        let url = format!("{base}/healthz");
        async move {
            tokio::task::spawn_blocking(move || ureq::get(&url).call().is_ok())
                .await
                .unwrap_or(false)
        }
    })
    .await;
    let mut workers: Vec<Proc> = (0..3)
        .map(|i| spawn_worker(&env, &dir.path().join(format!("worker{i}.log"))))
        .collect();

    let started = Instant::now();
    let creator = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || start_through_api(&base, n))
    };
    // Mid-way: kill a worker while it holds claimed work. It is frozen (SIGSTOP) first, so
    // that what it holds can be read; if it holds nothing, it is let go and tried again.
    let victim_pid = workers[0].0.id();
    let tag = format!("-{victim_pid}-");
    wait_for(
        "a third of the emails sent",
        Duration::from_secs(300),
        || async { smtp.count() >= n / 3 },
    )
    .await;
    let mut orphaned: Vec<i64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while orphaned.is_empty() {
        assert!(Instant::now() < deadline, "the worker never held work");
        workers[0].signal("STOP");
        let running = rt.store.list_jobs(Some("running"), 100_000).await.unwrap();
        orphaned = running
            .iter()
            .filter(|j| j.lease_owner.as_deref().is_some_and(|o| o.contains(&tag)))
            .map(|j| j.id)
            .collect();
        if orphaned.is_empty() {
            workers[0].signal("CONT");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    workers[0].signal("KILL");
    assert!(workers[0].wait_exit(Duration::from_secs(5)));
    let killed_at = Instant::now();

    // The killed worker's jobs are taken over once their lease (5 s) runs out.
    wait_for(
        "the killed worker's jobs taken over",
        Duration::from_secs(60),
        || async {
            let mut all_done = true;
            for id in &orphaned {
                let j = rt.store.job(*id).await.unwrap();
                all_done &= j.state == "done";
            }
            all_done
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    let ids = creator.await.unwrap();
    assert_eq!(ids.len(), n);
    let created = started.elapsed();
    wait_for("every email sent", Duration::from_secs(600), || async {
        rt.store.count_jobs("done", Some("email")).await.unwrap() == n as i64
    })
    .await;
    let elapsed = started.elapsed();
    for w in workers.iter_mut().skip(1) {
        w.signal("TERM");
    }
    for w in workers.iter_mut().skip(1) {
        assert!(w.wait_exit(Duration::from_secs(30)), "graceful shutdown");
    }
    drop(web);

    // At the SMTP server: every ledger Message-ID arrived; duplicates only from the kill.
    let (seen, arrived) = smtp.message_id_counts();
    assert_eq!(seen.len(), n, "distinct messages at the server");
    for mid in seen.keys() {
        assert_eq!(
            rt.store.email_state(mid).await.unwrap().as_deref(),
            Some("sent"),
            "{mid} is in the ledger as sent"
        );
    }
    let duplicates = arrived - n;
    assert!(
        duplicates <= concurrency,
        "{duplicates} duplicates; the in-flight bound is the killed worker's concurrency {concurrency}"
    );
    assert_eq!(rt.store.count_jobs("failed", None).await.unwrap(), 0);
    common::report(&format!(
        "cluster ({store:?}): {n} started through the API in {:.1}s; all emails sent in {:.1}s ({:.0}/s) \
         by 3 workers; killed worker held {} jobs, taken over {:.1}s after the kill; {duplicates} duplicates",
        created.as_secs_f64(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        orphaned.len(),
        takeover.as_secs_f64()
    ));
}

/// A one-second schedule on three workers; every ten seconds the node that ran the latest
/// tick is SIGKILLed and a new one started. Every tick is accounted for exactly once —
/// fired, or caught up by the next run (`catch_up = "once"`) — and none fired twice.
async fn one_second_schedule_survives_killing_its_firing_node(store: Store) {
    let secs: u64 = std::env::var("PARTNERFLOW_TEST_SCHEDULE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(store, dir.path()).await;
    let env = common::test_env(
        dir.path(),
        &db,
        &[
            ("PARTNERFLOW__JOBS__LEASE", "5s"),
            ("PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED", "true"),
            ("PARTNERFLOW__SCHEDULES__RECONCILE__CRON", "* * * * * *"),
            ("PARTNERFLOW__SCHEDULES__RECONCILE__CATCH_UP", "once"),
        ],
    );
    let rt = common::local_runtime(&env).await;
    let mut spawned = 0;
    let spawn = |spawned: &mut usize| {
        *spawned += 1;
        spawn_worker(&env, &dir.path().join(format!("node{spawned}.log")))
    };
    let mut nodes: Vec<Proc> = (0..3).map(|_| spawn(&mut spawned)).collect();
    let start = Instant::now();
    let mut kills = 0;
    let mut killed_nodes = BTreeSet::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let next_kill = start + Duration::from_secs(10 * (kills + 1));
        while Instant::now() < next_kill && start.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if start.elapsed() >= Duration::from_secs(secs) {
            break;
        }
        let runs = rt.store.schedule_runs("reconcile").await.unwrap();
        let Some(last) = runs.last() else { continue };
        let Some(i) = nodes
            .iter()
            .position(|p| last.node.contains(&format!("-{}-", p.0.id())))
        else {
            continue;
        };
        nodes[i].signal("KILL");
        assert!(nodes[i].wait_exit(Duration::from_secs(5)));
        killed_nodes.insert(last.node.clone());
        kills += 1;
        nodes[i] = spawn(&mut spawned);
    }
    // Let the last kill's orphaned run be taken over (lease 5 s) and caught up.
    let settle_until = rt.clock.now().0 + 7_000;
    wait_for(
        "a run after the last kill",
        Duration::from_secs(30),
        || async {
            rt.store
                .schedule_runs("reconcile")
                .await
                .unwrap()
                .last()
                .is_some_and(|r| r.tick.0 >= settle_until)
        },
    )
    .await;
    for n in nodes.iter_mut() {
        n.signal("TERM");
    }
    for n in nodes.iter_mut() {
        assert!(n.wait_exit(Duration::from_secs(30)));
    }
    let runs = rt.store.schedule_runs("reconcile").await.unwrap();
    let (fired, caught_up) = common::assert_ticks_accounted(&runs, 1000);
    let first = runs[0].after.unwrap().0;
    let last = runs[runs.len() - 1].tick.0;
    let ticks = (last - first) / 1000;
    assert!(
        kills >= secs / 10 - 1,
        "{kills} kills in {secs}s: the firing node was not found"
    );
    assert!(ticks as u64 >= secs, "{ticks} ticks in {secs}s");
    let nodes_that_ran: BTreeSet<_> = runs.iter().map(|r| r.node.clone()).collect();
    assert!(nodes_that_ran.len() >= 3, "runs on {nodes_that_ran:?}");
    common::report(&format!(
        "schedule ({store:?}): {ticks} ticks over {secs}s, {fired} runs, {caught_up} caught up, \
         {kills} firing nodes killed, none twice"
    ));
}

on_both_stores!(
    three_workers_and_a_web_node_deliver_every_email_through_a_kill,
    one_second_schedule_survives_killing_its_firing_node,
);
