//! Campaigns against a real SMTP server over TCP (aiosmtpd, tests/support/campaign_smtp.py):
//! crash safety under SIGKILL of real worker processes, a server that refuses (4xx) and one
//! that is down (automatic pause and resume), rate limits measured at the server, the bad-row
//! corpus of a recipients file, and the follow-up path (unsubscribe, bounces, reminder,
//! acceptance, expiry) through the real router. Waits are on conditions with a deadline.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::campaign_smtp::{CampaignSmtp, max_in_window};
use common::web::{Api, request, serve};
use common::{Store, TestApp, TestDb, spawn_worker, wait_for};
use partnerflow::app::AppState;
use partnerflow::campaigns::{self, NewCampaign};
use partnerflow::core::campaign::{CampaignState, RecipientState};
use partnerflow::core::domain::{Country, OfferId, OfferKind, ProductId, Span};
use partnerflow::offers::{self, LineRequest, NewOffer};
use serde_json::json;

async fn open_offer(rt: &AppState) -> OfferId {
    partnerflow::offers::tasks::location_sync(rt).await.unwrap();
    let o = offers::create(
        rt,
        NewOffer {
            kind: OfferKind::Trial,
            location_id: "loc-berlin".into(),
            country: Country::parse("DE").unwrap(),
            products: vec![LineRequest {
                product: ProductId::parse("m365-business-premium-trial").unwrap(),
                licences: None,
            }],
            delegated_admin: None,
            auto_extend: false,
            expires_at: None,
            message: None,
        },
        "test",
    )
    .await
    .unwrap();
    o.offer.offer_id
}

fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("PARTNERFLOW__EMAIL__TRANSPORT", "smtp".into()),
        ("PARTNERFLOW__EMAIL__SMTP__HOST", "127.0.0.1".into()),
        ("PARTNERFLOW__EMAIL__SMTP__PORT", port.to_string()),
        ("PARTNERFLOW__EMAIL__SMTP__SECURITY", "none".into()),
        ("PARTNERFLOW__EMAIL__SMTP__TIMEOUT", "5s".into()),
        ("PARTNERFLOW__JOBS__POLL_INTERVAL", "100ms".into()),
    ]
}

fn csv_of(addresses: &[String]) -> String {
    let mut s = String::from("email,name,locale\n");
    for (i, a) in addresses.iter().enumerate() {
        s.push_str(&format!(
            "{a},Kunde {i},{}\n",
            if i % 2 == 0 { "de" } else { "en" }
        ));
    }
    s
}

async fn import(rt: &AppState, id: &str, csv: &str) -> campaigns::ImportReport {
    let mut bad = Vec::new();
    let r = campaigns::import_csv(rt, id, csv.as_bytes(), |b| bad.push(b))
        .await
        .unwrap();
    assert!(bad.is_empty(), "unexpected bad rows: {bad:?}");
    r
}

/// A test installation on `store` with an SMTP server, `extra` settings, an open offer and
/// a campaign of `addresses` (not started).
struct Setup {
    dir: tempfile::TempDir,
    _db: TestDb,
    smtp: CampaignSmtp,
    env: Vec<(String, String)>,
    rt: Arc<AppState>,
    id: String,
}

async fn setup(
    store: Store,
    extra: &[(&str, &str)],
    new: NewCampaign,
    addresses: &[String],
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(store, dir.path()).await;
    let smtp = CampaignSmtp::start(&dir.path().join("smtp"));
    let mut all: Vec<(&str, String)> = smtp_env(smtp.port);
    all.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let all_ref: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = common::test_env(dir.path(), &db, &all_ref);
    let rt = common::local_runtime(&env).await;
    let offer = open_offer(&rt).await;
    let c = campaigns::create(&rt, &offer, new, "test").await.unwrap();
    let r = import(&rt, &c.id, &csv_of(addresses)).await;
    assert_eq!(r.added, addresses.len() as u64);
    Setup {
        dir,
        _db: db,
        smtp,
        env,
        rt,
        id: c.id,
    }
}

fn named(name: &str) -> NewCampaign {
    NewCampaign {
        name: name.into(),
        ..Default::default()
    }
}

async fn wait_completed(rt: &AppState, id: &str, secs: u64) {
    wait_for(
        "the campaign to complete",
        Duration::from_secs(secs),
        || async {
            rt.store
                .campaign(id)
                .await
                .unwrap()
                .is_some_and(|c| c.state == CampaignState::Completed)
        },
    )
    .await;
}

/// A campaign's counts as every page reads them (its tallies, kept by triggers), checked
/// against counting its ledger: the two agree once no sender is changing the ledger between
/// the two reads (waited for with a deadline).
async fn checked_counts(rt: &AppState, id: &str) -> partnerflow::core::campaign::RecipientCounts {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tallied = rt.store.recipient_counts(id).await.unwrap();
        let counted = rt.store.recount_recipients(id).await.unwrap();
        if tallied == counted {
            return tallied;
        }
        assert!(
            Instant::now() < deadline,
            "campaign {id}: the tallies disagree with the ledger\n tallies: {tallied:?}\n ledger:  {counted:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Arrivals per Message-ID.
fn per_message(arrivals: &[common::campaign_smtp::Arrival]) -> HashMap<&str, usize> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for a in arrivals {
        *seen.entry(a.message_id.as_str()).or_default() += 1;
    }
    seen
}

/// Runs the in-process sender until the returned guard is dropped.
struct Sender {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sender {
    fn start(rt: &Arc<AppState>) -> Sender {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(campaigns::run_sender(
            rt.clone(),
            rx,
            Arc::new(campaigns::SenderStats::default()),
        ));
        Sender {
            stop,
            task: Some(task),
        }
    }
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// 20,000 recipients; the worker process is SIGKILLed at five random moments and restarted.
/// At the server every recipient has arrived, and duplicates (the SMTP server accepted, the
/// ledger had not committed) are at most the in-flight bound per kill.
async fn sigkill_five_times_loses_nothing(store: Store) {
    let in_flight = 64usize;
    let n = 20_000usize;
    let addresses: Vec<String> = (0..n)
        .map(|i| format!("kunde{i}@d{}.example", i % 50))
        .collect();
    let Setup {
        dir,
        _db,
        smtp,
        env,
        rt,
        id,
    } = setup(
        store,
        &[
            ("PARTNERFLOW__CAMPAIGNS__IN_FLIGHT", "64"),
            ("PARTNERFLOW__CAMPAIGNS__BATCH", "32"),
            ("PARTNERFLOW__CAMPAIGNS__LEASE", "5s"),
            ("PARTNERFLOW__EMAIL__SMTP__POOL_SIZE", "16"),
        ],
        named("crash"),
        &addresses,
    )
    .await;
    campaigns::start(&rt, &id).await.unwrap();

    let mut kills: Vec<usize> = (0..5)
        .map(|_| rand::random_range(n / 20..n * 9 / 10))
        .collect();
    kills.sort_unstable();
    let mut worker = spawn_worker(&env, &dir.path().join("worker-0.log"));
    for (k, at) in kills.iter().enumerate() {
        wait_for(
            &format!("{at} arrivals before kill {}", k + 1),
            Duration::from_secs(120),
            || async { smtp.count() >= *at },
        )
        .await;
        worker.signal("KILL");
        assert!(
            worker.wait_exit(Duration::from_secs(10)),
            "worker did not die"
        );
        worker = spawn_worker(&env, &dir.path().join(format!("worker-{}.log", k + 1)));
    }
    wait_completed(&rt, &id, 300).await;
    drop(worker);

    let counts = checked_counts(&rt, &id).await;
    assert_eq!(counts.sent, n as i64, "{counts:?}");
    // At the server: every recipient, each with its ledger's Message-ID.
    let mut ledger: HashMap<String, String> = HashMap::new();
    let mut after = 0;
    loop {
        let page = rt.store.ledger(&id, after, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in page {
            assert_eq!(row.state, RecipientState::Sent, "{row:?}");
            ledger.insert(row.message_id, row.email);
        }
    }
    let arrivals = smtp.arrivals();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for a in &arrivals {
        let email = ledger
            .get(&a.message_id)
            .unwrap_or_else(|| panic!("unknown Message-ID {} at the server", a.message_id));
        assert_eq!(&a.rcpts, &vec![email.clone()]);
        assert!(a.list_unsubscribe, "campaign mail without List-Unsubscribe");
        *seen.entry(a.message_id.as_str()).or_default() += 1;
    }
    let missing = ledger
        .keys()
        .filter(|m| !seen.contains_key(m.as_str()))
        .count();
    assert_eq!(missing, 0, "recipients missing at the server");
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    common::report(&format!(
        "campaign crash test ({store:?}): {n} recipients, 5 SIGKILLs at {kills:?} arrivals, {} arrivals, {duplicates} duplicates (bound {} = 5 × in_flight {in_flight})",
        arrivals.len(),
        5 * in_flight
    ));
    assert!(
        duplicates <= 5 * in_flight,
        "{duplicates} duplicates exceed 5 × in-flight"
    );
}

/// The server answers 451 for a while, then is down for 30 seconds: the campaign pauses
/// itself after `max_failures` failures in a row (the reason shown), resumes by itself, and
/// in the end every recipient has arrived exactly once, none failed.
async fn refusing_then_down_server_pauses_and_resumes(store: Store) {
    let n = 3000usize;
    let addresses: Vec<String> = (0..n)
        .map(|i| format!("kunde{i}@d{}.example", i % 7))
        .collect();
    let Setup {
        dir: _dir,
        _db,
        mut smtp,
        env: _env,
        rt,
        id,
    } = setup(
        store,
        &[
            ("PARTNERFLOW__CAMPAIGNS__MAX_FAILURES", "5"),
            ("PARTNERFLOW__CAMPAIGNS__AUTO_RESUME_AFTER", "2s"),
            ("PARTNERFLOW__CAMPAIGNS__RETRY_BASE", "1s"),
            ("PARTNERFLOW__CAMPAIGNS__RETRY_MAX", "2s"),
            ("PARTNERFLOW__CAMPAIGNS__MAX_ATTEMPTS", "1000"),
            ("PARTNERFLOW__CAMPAIGNS__IN_FLIGHT", "8"),
            ("PARTNERFLOW__CAMPAIGNS__BATCH", "8"),
            ("PARTNERFLOW__CAMPAIGNS__RATE_PER_SECOND", "100"),
        ],
        named("outage"),
        &addresses,
    )
    .await;
    smtp.set_mode("tempfail");
    campaigns::start(&rt, &id).await.unwrap();
    let sender = Sender::start(&rt);
    let paused = |c: &partnerflow::core::campaign::CampaignRow| {
        c.state == CampaignState::Paused
            && c.pause_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(campaigns::AUTO_PAUSE) && r.contains("451"))
    };
    wait_for(
        "the automatic pause on 4xx",
        Duration::from_secs(30),
        || async {
            rt.store
                .campaign(&id)
                .await
                .unwrap()
                .is_some_and(|c| paused(&c))
        },
    )
    .await;
    assert_eq!(smtp.count(), 0);
    smtp.set_mode("ok");
    wait_for(
        "the automatic resume and some sends",
        Duration::from_secs(30),
        || async { smtp.count() >= 300 },
    )
    .await;
    // Down for 30 seconds.
    smtp.stop();
    let down = Instant::now();
    wait_for(
        "the automatic pause while down",
        Duration::from_secs(30),
        || async {
            rt.store.campaign(&id).await.unwrap().is_some_and(|c| {
                c.state == CampaignState::Paused
                    && c.pause_reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with(campaigns::AUTO_PAUSE))
            })
        },
    )
    .await;
    let reason = rt.store.campaign(&id).await.unwrap().unwrap().pause_reason;
    common::report(&format!("paused while the server was down: {reason:?}"));
    wait_for("30 seconds of outage", Duration::from_secs(40), || async {
        down.elapsed() >= Duration::from_secs(30)
    })
    .await;
    smtp.restart();
    wait_completed(&rt, &id, 120).await;
    sender.stop().await;
    let counts = checked_counts(&rt, &id).await;
    assert_eq!((counts.sent, counts.failed), (n as i64, 0), "{counts:?}");
    let arrivals = smtp.arrivals();
    let seen = per_message(&arrivals);
    assert_eq!(seen.len(), n, "every recipient arrived");
    assert!(
        seen.values().all(|&c| c == 1),
        "no process died: each exactly once"
    );
}

/// Per-transport messages/s and per-domain messages/min, measured at the server.
async fn rate_limits_hold_at_the_server(store: Store) {
    // 240 recipients over 60 domains (4 each: within every domain's burst) and 40 at one
    // domain, which the per-domain limit holds back.
    let mut addresses: Vec<String> = (0..240)
        .map(|i| format!("k{i}@d{}.example", i % 60))
        .collect();
    addresses.extend((0..40).map(|i| format!("k{i}@slow.example")));
    let Setup {
        dir: _dir,
        _db,
        smtp,
        env: _env,
        rt,
        id,
    } = setup(
        store,
        &[
            ("PARTNERFLOW__CAMPAIGNS__RATE_PER_SECOND", "40"),
            ("PARTNERFLOW__CAMPAIGNS__RATE_PER_DOMAIN_PER_MINUTE", "60"),
            ("PARTNERFLOW__EMAIL__SMTP__POOL_SIZE", "3"),
        ],
        named("limits"),
        &addresses,
    )
    .await;
    campaigns::start(&rt, &id).await.unwrap();
    let started = Instant::now();
    let sender = Sender::start(&rt);
    // 240 at 36/s take about 7 s; waiting behind the slow domain would take minutes.
    wait_for(
        "the other domains to be sent",
        Duration::from_secs(20),
        || async {
            smtp.arrivals()
                .iter()
                .filter(|a| !a.rcpts[0].ends_with("@slow.example"))
                .count()
                >= 240
        },
    )
    .await;
    // Let the slow domain run for a while longer.
    wait_for("16 seconds", Duration::from_secs(25), || async {
        started.elapsed() >= Duration::from_secs(16)
    })
    .await;
    sender.stop().await;
    let elapsed = started.elapsed().as_secs_f64();
    let arrivals = smtp.arrivals();
    let per_s = max_in_window(&arrivals, 1000, None);
    let slow: Vec<_> = arrivals
        .iter()
        .filter(|a| a.rcpts[0].ends_with("@slow.example"))
        .collect();
    let slow_per_min = max_in_window(&arrivals, 60_000, Some("slow.example"));
    let fast_span = {
        let fast: Vec<u64> = arrivals
            .iter()
            .filter(|a| !a.rcpts[0].ends_with("@slow.example"))
            .map(|a| a.at_ms)
            .collect();
        (fast.iter().max().unwrap() - fast.iter().min().unwrap()) as f64 / 1000.0
    };
    common::report(&format!(
        "rate limits ({store:?}): at most {per_s} in any second (limit 40), {} to slow.example in {elapsed:.1} s (limit 60/min: burst 6 + 0.9/s), 240 others over {fast_span:.1} s (first in the file: 200 slow), max connections {} (pool 3)",
        slow.len(),
        smtp.max_connections()
    ));
    // Token bucket (burst 4, 36/s): never more than 40 in a second at the sender. Arrivals
    // at the server jitter: a send held up by ~100 ms on a loaded machine lands next to the
    // following ones, so a one-second window may see a few more (43 was seen once on 2 busy
    // cores). Over five seconds the jitter is small beside the limit: 4 + 5 × 36 = 184.
    assert!(per_s <= 44, "{per_s} messages in one second");
    let per_5s = max_in_window(&arrivals, 5000, None);
    assert!(per_5s <= 186, "{per_5s} messages in five seconds");
    // 240 messages at ≤ 36/s after the burst take at least 6 s.
    assert!(
        fast_span >= 5.5,
        "the transport limit did not hold: {fast_span} s"
    );
    // Per domain: at most 6 + 0.9 × elapsed. While the transport limit is the bottleneck
    // the recipients due first go first (the others' due time is the import); after that
    // the slow domain gets its rate.
    let cap = 6.0 + 0.9 * elapsed + 1.0;
    let last_fast = arrivals
        .iter()
        .filter(|a| !a.rcpts[0].ends_with("@slow.example"))
        .map(|a| a.at_ms)
        .max()
        .unwrap();
    let slow_after = slow.iter().filter(|a| a.at_ms > last_fast).count() as f64;
    let after_s = (arrivals.iter().map(|a| a.at_ms).max().unwrap() - last_fast) as f64 / 1000.0;
    assert!(
        (slow.len() as f64) <= cap,
        "{} to slow.example, cap {cap}",
        slow.len()
    );
    assert!(
        slow_after >= 0.9 * after_s * 0.7,
        "slow.example starved: {slow_after} in the {after_s:.1} s after the others"
    );
    assert!(slow_per_min <= 60);
    assert!(
        smtp.max_connections() <= 3,
        "{} connections",
        smtp.max_connections()
    );
}

/// The buckets live in the database: a new runtime (a restart) finds them spent.
async fn rate_buckets_survive_a_restart(store: Store) {
    let addresses: Vec<String> = (0..50).map(|i| format!("k{i}@d{i}.example")).collect();
    let Setup {
        dir: _dir,
        _db,
        smtp: _smtp,
        env,
        rt,
        id,
    } = setup(
        store,
        &[],
        NewCampaign {
            name: "buckets".into(),
            max_per_minute: Some(20),
            ..Default::default()
        },
        &addresses,
    )
    .await;
    campaigns::start(&rt, &id).await.unwrap();
    let limits = partnerflow::core::rate::RateLimits {
        per_second: 0,
        per_domain_per_minute: 0,
        campaign_per_minute: 20,
    };
    let now = rt.clock.now();
    let first = rt
        .store
        .claim_recipients(&id, "a", 50, now, now.plus(Span::from_secs(60)), limits)
        .await
        .unwrap();
    // Burst of a 20/min bucket: 2.
    assert_eq!(first.recipients.len(), 2);
    let again = rt
        .store
        .claim_recipients(&id, "a", 50, now, now.plus(Span::from_secs(60)), limits)
        .await
        .unwrap();
    assert!(again.recipients.is_empty());
    let until = again.limited_until.expect("held back by the limit");
    assert!(until.0 > now.0, "{until:?}");
    rt.store.close().await;
    drop(rt);
    let rt = common::local_runtime(&env).await;
    let after = rt
        .store
        .claim_recipients(&id, "b", 50, now, now.plus(Span::from_secs(60)), limits)
        .await
        .unwrap();
    assert!(after.recipients.is_empty(), "a restart refilled the bucket");
    // When the bucket says so, one more (20/min burst 2: refills at 18/min, 1 per 3.34 s).
    let later = Span(until.0 - now.0);
    let next = rt
        .store
        .claim_recipients(
            &id,
            "b",
            50,
            now.plus(later),
            now.plus(Span::from_secs(120)),
            limits,
        )
        .await
        .unwrap();
    assert_eq!(next.recipients.len(), 1);
}

/// A recipients file with every kind of bad row: each is reported with its line and reason
/// and skipped; the good rows are added.
async fn bad_rows_are_reported_by_line(store: Store) {
    let app = common::spawn_app(store, &[]).await;
    let offer = open_offer(&app.rt).await;
    let c = campaigns::create(
        &app.rt,
        &offer,
        NewCampaign {
            name: "corpus".into(),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    // One address suppressed before the import.
    app.rt
        .store
        .suppress(
            "gesperrt@contoso.example",
            "unsubscribed",
            "test",
            app.rt.clock.now(),
        )
        .await
        .unwrap();
    let file = common::manifest("tests/support/campaigns/bad_rows.csv");
    let expected = std::fs::read_to_string(common::manifest(
        "tests/support/campaigns/bad_rows.expected",
    ))
    .unwrap();
    let mut got = Vec::new();
    let r = campaigns::import_csv(&app.rt, &c.id, std::fs::File::open(&file).unwrap(), |b| {
        got.push(format!("{}: {}", b.line, b.reason))
    })
    .await
    .unwrap();
    // Invalid rows are reported as read, duplicates when their chunk is written: compare
    // in line order.
    let line_of = |s: &str| {
        s.split(':')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    got.sort_by_key(|s| line_of(s));
    let want: Vec<&str> = expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(got, want, "bad-row report");
    // Every data line is accounted for.
    let data_lines = std::fs::read_to_string(&file).unwrap().lines().count() as u64 - 1;
    assert_eq!(r.lines, data_lines, "{r:?}");
    assert_eq!(
        r.added + r.invalid + r.duplicates + r.blank,
        data_lines,
        "{r:?}"
    );
    let counts = checked_counts(&app.rt, &c.id).await;
    assert_eq!((r.added, r.suppressed), (5, 1), "{r:?}");
    assert_eq!((counts.total, counts.pending, counts.suppressed), (5, 4, 1));
    // Extra columns reach the template data; quoted commas survive.
    let rows = app.rt.store.ledger(&c.id, 0, 100).await.unwrap();
    assert!(rows.iter().any(|r| r.email == "anna@contoso.example"));
}

/// Unsubscribe (one click, through the router), hard and soft bounces (webhook and CLI
/// function), the reminder to those who have not accepted, acceptance, and expiry with the
/// offer — on a manual clock.
async fn unsubscribe_bounces_reminder_and_expiry(store: Store) {
    let probe = tempfile::tempdir().unwrap();
    let smtp = CampaignSmtp::start(&probe.path().join("smtp"));
    let extra: Vec<(&str, String)> = smtp_env(smtp.port);
    let extra_ref: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app: TestApp = common::spawn_app(store, &extra_ref).await;
    let rt = app.rt.clone();
    let offer = open_offer(&rt).await;
    let base = serve(&app).await;
    let (_, admin_token) = offers::create_token(&rt, "t", partnerflow::core::domain::Role::Admin)
        .await
        .unwrap();
    let (_, bounce_token) =
        offers::create_token(&rt, "b", partnerflow::core::domain::Role::Bounces)
            .await
            .unwrap();
    let (_, viewer_token) = offers::create_token(&rt, "v", partnerflow::core::domain::Role::Viewer)
        .await
        .unwrap();
    let api = Api {
        base: base.clone(),
        token: Some(admin_token),
    };
    // Create by the API, recipients as JSON (one bad row).
    let r = api
        .post(
            "/api/v1/campaigns",
            json!({ "offer_id": offer.as_str(), "name": "follow-up", "reminder_after": "3d" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = api
        .post(
            &format!("/api/v1/campaigns/{id}/recipients"),
            json!({ "recipients": [
                { "email": "anna@kunde.example", "name": "Anna", "locale": "de" },
                { "email": "bert@kunde.example", "locale": "en" },
                { "email": "carl@kunde.example" },
                { "email": "dora@kunde.example", "company": "Dora GmbH" },
                { "email": "not an address" },
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["report"]["added"], 4);
    assert_eq!(r.json()["bad_rows"][0]["line"], 6);
    let r = api
        .post(&format!("/api/v1/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sender = Sender::start(&rt);
    wait_for("4 invitations sent", Duration::from_secs(30), || async {
        rt.store.recipient_counts(&id).await.unwrap().sent == 4
    })
    .await;
    let arrivals = smtp.arrivals();
    assert_eq!(arrivals.len(), 4);
    assert!(arrivals.iter().all(|a| a.list_unsubscribe));
    let ledger = rt.store.ledger(&id, 0, 10).await.unwrap();
    let row = |email: &str| ledger.iter().find(|r| r.email == email).unwrap().clone();

    // Bert unsubscribes with one click (RFC 8058: a POST without cookies).
    let url = campaigns::unsubscribe_url(&rt, &id, row("bert@kunde.example").seq);
    let path = url
        .split_once("/u/")
        .map(|(_, t)| format!("/u/{t}"))
        .unwrap();
    let r = request("GET", format!("{base}{path}"), vec![], None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("bert@kunde.example"));
    let r = request(
        "POST",
        format!("{base}{path}"),
        vec![],
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click".into(),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let forged = format!("{}x", &path[..path.len() - 1]);
    let r = request("POST", format!("{base}{forged}"), vec![], None).await;
    assert_eq!(r.status, 404);
    let sup = rt
        .store
        .suppressed_among(&["bert@kunde.example"])
        .await
        .unwrap();
    assert!(sup.contains_key("bert@kunde.example"));

    // Carl's invitation bounces hard (webhook), Anna's soft.
    let dsn = |file: &str, old_id: &str, old_rcpt: &str, r: &partnerflow::store::LedgerRow| {
        std::fs::read_to_string(common::manifest(&format!("tests/support/bounces/{file}")))
            .unwrap()
            .replace(old_id, &r.message_id)
            .replace(old_rcpt, &r.email)
    };
    let hard = dsn(
        "hard-postfix.eml",
        "<cmp_test.2@partnerflow.example>",
        "perm1@kunde.example",
        &row("carl@kunde.example"),
    );
    let r = request(
        "POST",
        format!("{base}/api/v1/bounces"),
        vec![("authorization".into(), format!("Bearer {viewer_token}"))],
        Some(("message/rfc822", hard.clone())),
    )
    .await;
    assert_eq!(r.status, 403, "a viewer may not post bounces");
    let r = request(
        "POST",
        format!("{base}/api/v1/bounces"),
        vec![("authorization".into(), format!("Bearer {bounce_token}"))],
        Some(("message/rfc822", hard)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["bounces"][0]["kind"], "hard");
    let r = request(
        "POST",
        format!("{base}/api/v1/bounces"),
        vec![("authorization".into(), format!("Bearer {bounce_token}"))],
        Some((
            "message/rfc822",
            "Subject: hello\r\n\r\nnot a bounce\r\n".into(),
        )),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let soft = dsn(
        "soft-delayed.eml",
        "<cmp_test.3@partnerflow.example>",
        "slow@kunde.example",
        &row("anna@kunde.example"),
    );
    let res = campaigns::ingest_bounce(&rt, soft.as_bytes(), "bounce")
        .await
        .unwrap();
    assert_eq!(
        res[0].matched.as_ref().map(|m| m.1),
        Some(row("anna@kunde.example").seq)
    );
    // The metrics count them (this process's counters: other tests add to them, never less).
    let text = rt.metrics_text().await;
    let counter = |line_start: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(line_start))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        counter("partnerflow_campaign_emails_total{outcome=\"sent\"}") >= 4.0,
        "{text}"
    );
    assert!(
        counter("partnerflow_bounces_total{kind=\"hard\",matched=\"campaign\"}") >= 1.0,
        "{text}"
    );
    assert!(
        counter("partnerflow_bounces_total{kind=\"soft\",matched=\"campaign\"}") >= 1.0,
        "{text}"
    );
    let counts = checked_counts(&rt, &id).await;
    // Carl's invitation was sent, then bounced: still counted as sent.
    assert_eq!(
        (
            counts.sent,
            counts.awaiting,
            counts.bounced,
            counts.soft_bounces
        ),
        (4, 3, 1, 1),
        "{counts:?}"
    );
    // The overview's funnel counts the campaign's messages from the same tallies: four sent
    // today (a trial in Berlin), one hard-bounced, so three delivered; nothing in Vienna.
    let now = rt.clock.now().0;
    let funnel = |location: Option<&str>| {
        let f = partnerflow::core::overview::FunnelFilter {
            from: partnerflow::core::domain::Timestamp(now - 86_400_000),
            to: partnerflow::core::domain::Timestamp(now + 1),
            kind: None,
            location: location.map(str::to_string),
        };
        let rt = rt.clone();
        async move {
            let all = rt.store.funnel(&f).await.unwrap();
            all.into_iter()
                .find(|(k, _)| *k == OfferKind::Trial)
                .map(|(_, x)| (x.sent, x.delivered))
        }
    };
    assert_eq!(funnel(None).await, Some((4, 3)));
    assert_eq!(funnel(Some("loc-berlin")).await, Some((4, 3)));
    assert_eq!(funnel(Some("loc-wien")).await, Some((0, 0)));

    // Dora accepts; after 3 days only Anna (soft bounce, not accepted) is reminded.
    rt.store
        .mark_recipient_accepted(offer.as_str(), "dora@kunde.example", rt.clock.now())
        .await
        .unwrap();
    app.clock.advance(Span::from_secs(3 * 86_400 + 1));
    rt.store.wake_handle().notify_waiters();
    wait_for(
        "the reminder, and the campaign completed",
        Duration::from_secs(30),
        || async {
            rt.store.recipient_counts(&id).await.unwrap().reminded == 1
                && rt
                    .store
                    .campaign(&id)
                    .await
                    .unwrap()
                    .is_some_and(|c| c.state == CampaignState::Completed)
        },
    )
    .await;
    sender.stop().await;
    let arrivals = smtp.arrivals();
    assert_eq!(arrivals.len(), 5);
    let reminder = &arrivals[4];
    assert_eq!(reminder.rcpts, vec!["anna@kunde.example".to_string()]);
    assert_eq!(
        reminder.message_id,
        partnerflow::store::reminder_message_id(&row("anna@kunde.example").message_id, 1)
    );
    let status = api.get(&format!("/api/v1/campaigns/{id}")).await.json();
    assert_eq!(status["counts"]["accepted"], 1);
    assert_eq!(status["counts"]["reminded"], 1);
    assert_eq!(status["state"], "completed");

    // The offer expires: who has not accepted is `expired`.
    app.clock.advance(Span::from_secs(90 * 86_400));
    let expired = rt.store.expire_campaigns(rt.clock.now()).await.unwrap();
    assert_eq!(expired, vec![id.clone()]);
    // Expiry is an outcome, not a delivery state: the four invitations and Anna's reminder
    // stay counted as sent.
    let counts = checked_counts(&rt, &id).await;
    assert_eq!(
        (
            counts.accepted,
            counts.expired,
            counts.bounced,
            counts.suppressed,
            counts.awaiting
        ),
        (1, 2, 1, 0, 0),
        "{counts:?}"
    );
    assert_eq!((counts.sent, counts.reminded), (4, 1), "{counts:?}");
    let status = api.get(&format!("/api/v1/campaigns/{id}")).await.json();
    assert_eq!(status["state"], "expired");
    assert_eq!(status["counts"]["sent"], 4, "{status}");
    assert_eq!(status["counts"]["reminded"], 1, "{status}");
    // The ledger report has every row with its state, the invitation's delivery and the
    // reminder's side by side.
    let mut out = Vec::new();
    let n = campaigns::report_csv(&rt, &id, &mut out).await.unwrap();
    assert_eq!(n, 4);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "line,email,state,message_id,attempts,sent_at,reply,reminded_at,reminder_reply,remind_at,error,phase,soft_bounces\n"
        ),
        "{text}"
    );
    assert!(text.contains("carl@kunde.example,bounced"), "{text}");
    // Anna: reminded, one soft bounce, then expired with the offer.
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let anna = rows
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[1] == "anna@kunde.example")
        .unwrap();
    assert_eq!(
        (&anna[2], &anna[11], &anna[12]),
        ("expired", "reminder", "1"),
        "{text}"
    );
    let (sent_at, reminded_at) = (&anna[5], &anna[7]);
    assert!(
        !sent_at.is_empty() && !reminded_at.is_empty() && sent_at < reminded_at,
        "the invitation's and the reminder's times: {text}"
    );
    assert!(
        anna[6].starts_with("250") && anna[8].starts_with("250"),
        "both replies: {text}"
    );
    let ledger = rt.store.ledger(&id, 0, 10).await.unwrap();
    let anna = ledger
        .iter()
        .find(|r| r.email == "anna@kunde.example")
        .unwrap();
    assert_eq!(
        anna.reminded_at.unwrap().0 - anna.sent_at.unwrap().0,
        3 * 86_400_000 + 1000,
        "{anna:?}"
    );
}

/// An offer expiring in 10 days, on the manual clock.
async fn offer_expiring(rt: &AppState, days: i64) -> OfferId {
    partnerflow::offers::tasks::location_sync(rt).await.unwrap();
    let o = offers::create(
        rt,
        NewOffer {
            kind: OfferKind::Trial,
            location_id: "loc-berlin".into(),
            country: Country::parse("DE").unwrap(),
            products: vec![LineRequest {
                product: ProductId::parse("m365-business-premium-trial").unwrap(),
                licences: None,
            }],
            delegated_admin: None,
            auto_extend: false,
            expires_at: Some(rt.clock.now().plus(Span::from_secs(days * 86_400))),
            message: None,
        },
        "test",
    )
    .await
    .unwrap();
    o.offer.offer_id
}

async fn state_of(rt: &AppState, id: &str) -> CampaignState {
    rt.store.campaign(id).await.unwrap().unwrap().state
}

/// Completion is an invariant: a running campaign with no recipient left to send (no
/// invitation, no due or scheduled reminder) completes. With reminders, a campaign cap (a
/// token bucket smaller than a claim), an offer that expires, and three runs of the sender on
/// the manual clock: the first sends the invitations and leaves the campaign waiting for its
/// reminders (running, "waiting until" the last); the second sends the reminders and the
/// campaign completes. A campaign whose reminders would fall due after the offer expires
/// schedules none and completes with its invitations. When the offer expires, what was sent
/// stays counted as sent.
async fn a_campaign_with_nothing_left_to_send_completes(store: Store) {
    let app = common::spawn_app(store, &[("PARTNERFLOW__JOBS__POLL_INTERVAL", "100ms")]).await;
    let rt = app.rt.clone();
    let offer = offer_expiring(&rt, 10).await;
    let addresses: Vec<String> = (0..40)
        .map(|i| format!("k{i}@d{}.example", i % 4))
        .collect();
    let capped = campaigns::create(
        &rt,
        &offer,
        NewCampaign {
            name: "capped".into(),
            max_per_minute: Some(600),
            reminder_after: Some(Span::from_secs(86_400)),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    import(&rt, &capped.id, &csv_of(&addresses)).await;
    campaigns::start(&rt, &capped.id).await.unwrap();
    let sent_at = rt.clock.now();

    // Run 1: the invitations; then the campaign waits for its reminders, a day away.
    let sender = Sender::start(&rt);
    wait_for("40 invitations sent", Duration::from_secs(30), || async {
        rt.store.recipient_counts(&capped.id).await.unwrap().sent == 40
    })
    .await;
    sender.stop().await;
    let (c, n) = campaigns::status(&rt, &capped.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Running, "{n:?}");
    assert_eq!((n.pending, n.sending, n.reminders_scheduled), (0, 0, 40));
    assert_eq!(
        campaigns::waiting_for_reminders(&c, &n),
        Some(sent_at.plus(Span::from_secs(86_400))),
        "{n:?}"
    );

    // Run 2, a day later: the reminders go out and the campaign completes.
    app.clock.advance(Span::from_secs(86_400 + 1));
    let sender = Sender::start(&rt);
    wait_for("40 reminders sent", Duration::from_secs(30), || async {
        rt.store
            .recipient_counts(&capped.id)
            .await
            .unwrap()
            .reminded
            == 40
    })
    .await;
    wait_for(
        "the campaign completed once nothing is left to send",
        Duration::from_secs(15),
        || async { state_of(&rt, &capped.id).await == CampaignState::Completed },
    )
    .await;
    let (c, n) = campaigns::status(&rt, &capped.id).await.unwrap();
    assert!(n.nothing_left(), "{n:?}");
    assert_eq!(campaigns::waiting_for_reminders(&c, &n), None);

    // The offer now expires in 9 days: reminders 10 days after the invitation would never go
    // out, so none is scheduled and the campaign completes with its invitations.
    let late = campaigns::create(
        &rt,
        &offer,
        NewCampaign {
            name: "late reminder".into(),
            reminder_after: Some(Span::from_secs(10 * 86_400)),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    import(&rt, &late.id, &csv_of(&addresses[..5])).await;
    campaigns::start(&rt, &late.id).await.unwrap();
    wait_for(
        "the campaign completed with its invitations",
        Duration::from_secs(30),
        || async { state_of(&rt, &late.id).await == CampaignState::Completed },
    )
    .await;
    let n = checked_counts(&rt, &late.id).await;
    assert_eq!((n.sent, n.reminders_scheduled), (5, 0), "{n:?}");
    sender.stop().await;

    // Run 3, after the offer expired: both campaigns expire, and their recipients count as
    // sent (and reminded) still.
    app.clock.advance(Span::from_secs(9 * 86_400));
    let sender = Sender::start(&rt);
    wait_for(
        "both campaigns expired",
        Duration::from_secs(15),
        || async {
            state_of(&rt, &capped.id).await == CampaignState::Expired
                && state_of(&rt, &late.id).await == CampaignState::Expired
        },
    )
    .await;
    sender.stop().await;
    let n = checked_counts(&rt, &capped.id).await;
    assert_eq!(
        (n.total, n.sent, n.reminded, n.expired, n.awaiting),
        (40, 40, 40, 40, 0),
        "{n:?}"
    );
    let n = checked_counts(&rt, &late.id).await;
    assert_eq!((n.sent, n.reminded, n.expired), (5, 0, 5), "{n:?}");
}

/// Two worker processes on one database send one campaign together: each recipient arrives
/// exactly once, and both sent (each has at most 2 connections; the server saw more than 2 at
/// once).
async fn two_workers_share_a_campaign(store: Store) {
    let n = 3000usize;
    let addresses: Vec<String> = (0..n)
        .map(|i| format!("k{i}@d{}.example", i % 13))
        .collect();
    let Setup {
        dir,
        _db,
        smtp,
        env,
        rt,
        id,
    } = setup(
        store,
        &[
            ("PARTNERFLOW__EMAIL__SMTP__POOL_SIZE", "2"),
            ("PARTNERFLOW__CAMPAIGNS__IN_FLIGHT", "16"),
            ("PARTNERFLOW__CAMPAIGNS__BATCH", "8"),
        ],
        named("two"),
        &addresses,
    )
    .await;
    let _a = spawn_worker(&env, &dir.path().join("a.log"));
    let _b = spawn_worker(&env, &dir.path().join("b.log"));
    campaigns::start(&rt, &id).await.unwrap();
    wait_completed(&rt, &id, 180).await;
    let arrivals = smtp.arrivals();
    let seen = per_message(&arrivals);
    assert_eq!(seen.len(), n);
    assert!(seen.values().all(|&c| c == 1), "a recipient was sent twice");
    assert!(
        smtp.max_connections() > 2,
        "only one worker sent ({} connections)",
        smtp.max_connections()
    );
}

/// The bounce webhook (POST /api/v1/bounces, the real router) acts only on messages we sent:
/// a bounce whose Message-ID is none of ours, whose message was never sent, or whose
/// recipient is not that message's recipient is answered with the reason (`unmatched`),
/// changes no ledger row and suppresses nobody, and is kept for `bounces list --unmatched`.
/// The 5,000-recipient DSN is refused (400). A lifecycle email's bounce matches the email
/// ledger by Message-ID and recipient.
async fn bounce_webhook_acts_only_on_messages_we_sent(store: Store) {
    let app = common::spawn_app(store, &[]).await;
    let rt = app.rt.clone();
    let offer = open_offer(&rt).await;
    let base = serve(&app).await;
    let (_, token) = offers::create_token(&rt, "b", partnerflow::core::domain::Role::Bounces)
        .await
        .unwrap();
    let c = campaigns::create(&rt, &offer, named("sent"), "test")
        .await
        .unwrap();
    import(
        &rt,
        &c.id,
        "email\nanna@kunde.example\nbert@kunde.example\n",
    )
    .await;
    // A draft, never sent: its Message-ID is fixed, but no message went out.
    let draft = campaigns::create(&rt, &offer, named("draft"), "test")
        .await
        .unwrap();
    import(&rt, &draft.id, "email\ndora@kunde.example\n").await;
    campaigns::start(&rt, &c.id).await.unwrap();
    let sender = Sender::start(&rt);
    wait_for("2 invitations sent", Duration::from_secs(30), || async {
        rt.store.recipient_counts(&c.id).await.unwrap().sent == 2
    })
    .await;
    sender.stop().await;
    // A lifecycle email (a trial invitation), sent.
    let inst = app.invite(1).await;
    rt.run_due().await.unwrap();
    let email = rt.store.emails_of(&inst).await.unwrap().remove(0);
    assert_eq!(email.state, "sent");
    let ledger = rt.store.ledger(&c.id, 0, 10).await.unwrap();
    let anna = ledger[0].message_id.clone();
    let dora = rt.store.ledger(&draft.id, 0, 10).await.unwrap()[0]
        .message_id
        .clone();
    let post = |body: String| {
        let (base, token) = (base.clone(), token.clone());
        async move {
            request(
                "POST",
                format!("{base}/api/v1/bounces"),
                vec![("authorization".into(), format!("Bearer {token}"))],
                Some(("message/rfc822", body)),
            )
            .await
        }
    };
    let one = |a: &str| vec![a.to_string()];
    for (mid, rcpt, why) in [
        (
            "<cmp_nothing.2@partnerflow.example>".to_string(),
            "anna@kunde.example",
            "no message we sent has this Message-ID",
        ),
        (
            anna.clone(),
            "script>alert(1)</script>@evil.example",
            "the recipient is not that message's recipient",
        ),
        (
            dora.clone(),
            "dora@kunde.example",
            "that message has not been sent",
        ),
        (
            email.message_id.clone(),
            "bert@kunde.example",
            "the recipient is not that message's recipient",
        ),
    ] {
        let r = post(common::dsn(&mid, &one(rcpt))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["unmatched"], 1, "{}", r.body);
        let b = &r.json()["bounces"][0];
        assert_eq!(b["unmatched"], why, "{mid} {rcpt}: {b}");
        assert_eq!(b["matched"], serde_json::Value::Null, "{b}");
        assert_eq!(b["suppressed"], false, "{b}");
    }
    // 5,000 made-up recipients (and Anna) under Anna's Message-ID: refused whole.
    let mut many = common::evil_addresses(5000);
    many.push("anna@kunde.example".into());
    let r = post(common::dsn(&anna, &many)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("5001 recipients"), "{}", r.body);
    // Nothing changed, nobody suppressed.
    let counts = checked_counts(&rt, &c.id).await;
    assert_eq!(
        (counts.sent, counts.bounced, counts.soft_bounces),
        (2, 0, 0),
        "{counts:?}"
    );
    assert_eq!(
        rt.store.recipient_counts(&draft.id).await.unwrap().pending,
        1
    );
    assert!(rt.store.suppressions(10).await.unwrap().is_empty());
    let unmatched = rt.store.bounces(true, 100).await.unwrap();
    assert_eq!(unmatched.len(), 4, "{unmatched:?}");
    assert!(
        unmatched
            .iter()
            .all(|b| b.matched.is_none() && !b.suppressed)
    );
    // The real ones: Anna's invitation, and the lifecycle email to its recipient.
    let r = post(common::dsn(&anna, &one("Anna@Kunde.Example"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.json()["bounces"][0];
    assert_eq!(b["matched"], json!([c.id, ledger[0].seq]), "{b}");
    assert_eq!(b["suppressed"], true, "{b}");
    let r = post(common::dsn(&email.message_id, &one(&email.recipient))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.json()["bounces"][0];
    assert_eq!(b["matched_email"], email.message_id.as_str(), "{b}");
    assert_eq!(b["suppressed"], true, "{b}");
    let counts = checked_counts(&rt, &c.id).await;
    assert_eq!((counts.sent, counts.bounced), (2, 1), "{counts:?}");
    let mut sup: Vec<String> = rt
        .store
        .suppressions(10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.0)
        .collect();
    sup.sort();
    assert_eq!(
        sup,
        vec![
            "anna@kunde.example".to_string(),
            email.recipient.to_lowercase()
        ]
    );
    assert_eq!(rt.store.bounces(false, 100).await.unwrap().len(), 6);
}

on_both_stores!(
    two_workers_share_a_campaign,
    sigkill_five_times_loses_nothing,
    refusing_then_down_server_pauses_and_resumes,
    rate_limits_hold_at_the_server,
    rate_buckets_survive_a_restart,
    bad_rows_are_reported_by_line,
    unsubscribe_bounces_reminder_and_expiry,
    bounce_webhook_acts_only_on_messages_we_sent,
    a_campaign_with_nothing_left_to_send_completes,
);
