//! Operations you can see: `GET /metrics` (Prometheus) behind a `metrics` token or on
//! `http.metrics_bind`, and `GET /readyz`, through the real router over TCP.
//!
//! The metrics recorder is process-wide and the tests of this binary run in parallel. So the
//! counters are compared as deltas around work done while holding [`WORK`] (every test here
//! that runs jobs or sends mail holds it), and only ever asserted to have grown otherwise; the
//! gauges are read from each app's own database at its scrape, so they are compared as they
//! are. Waits are on conditions, never sleeps.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use common::web::{Api, request};
use common::{Store, TestApp};
use partnerflow::core::domain::{Country, OfferKind, ProductId, Role, Span};
use partnerflow::core::job::JobPayload;

/// Held by every test that runs jobs or delivers mail: the counters' deltas are then this
/// test's alone.
static WORK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One sample of an exposition: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of a Prometheus text exposition (comments and blank lines skipped; label
/// values may hold `{`, `}` and `,`, as route templates do).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("not a sample: {line}"),
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(mut r) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, after) = r.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => {
                            if let Some((_, c)) = chars.next() {
                                value.push(match c {
                                    'n' => '\n',
                                    c => c,
                                });
                            }
                        }
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value: {line}"),
                    }
                };
                labels.insert(key.trim_start_matches(',').to_string(), value);
                r = after[end + 1..].trim_start_matches(',');
            }
        }
        let value: f64 = rest
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        out.push((name.to_string(), labels, value));
    }
    out
}

/// The sum of the samples named `name` whose labels include `labels` (0 when none).
fn value(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

/// How much the samples named `name` with `labels` grew from `before` to `after`.
fn grown(before: &[Sample], after: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

/// Whether any sample is named `name` with labels including `labels`.
fn has(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> bool {
    s.iter().any(|(n, l, _)| {
        n == name
            && labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
    })
}

/// A GET that must be answered within 20 s: a listener that never accepts fails the test
/// instead of hanging it. (status, body)
async fn get_within(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into();
        let mut r = agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("{url}: no answer: {e}"));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (r.status().as_u16(), body)
    })
    .await
    .unwrap()
}

async fn token(app: &TestApp, role: Role) -> String {
    partnerflow::offers::create_token(&app.rt, &format!("test {role}"), role)
        .await
        .unwrap()
        .1
}

/// An app served on a free port, and the API as a holder of a `metrics` token.
async fn served(store: Store, extra: &[(&str, &str)]) -> (TestApp, Api) {
    let app = common::spawn_app(store, extra).await;
    let base = common::web::serve(&app).await;
    let t = token(&app, Role::Metrics).await;
    let api = Api {
        base,
        token: Some(t),
    };
    (app, api)
}

async fn scrape(api: &Api) -> Vec<Sample> {
    let r = api.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    samples(&r.body)
}

async fn pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.rt.settings.database.url)
        .await
        .unwrap()
}

/// (key, count) rows of a `SELECT key, COUNT(*) … GROUP BY key`.
async fn counts(pool: &sqlx::AnyPool, sql: &str) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// A job kind as the metrics label it: a known kind, else `other`.
fn kind_label(kind: &str) -> &str {
    if JobPayload::KINDS.contains(&kind) {
        kind
    } else {
        "other"
    }
}

// ------------------------------------------------------------------------------ (a) the token

/// `/metrics` is never open: no token or a wrong one 401, a token of another role 403, and
/// neither says anything of the metrics; a `metrics` (or admin) token gets them, and may do
/// nothing else. Requests are counted by route template, never by the path.
async fn metrics_need_a_metrics_token(store: Store) {
    const ADMIN: &str = "test-admin-token-0123456789";
    let (app, metrics) = served(store, &[("PARTNERFLOW__HTTP__ADMIN_TOKEN", ADMIN)]).await;
    let anon = Api {
        base: metrics.base.clone(),
        token: None,
    };
    let viewer = anon.with(&token(&app, Role::Viewer).await);
    let bounces = anon.with(&token(&app, Role::Bounces).await);
    let made_up = anon.with("pf_made_up");
    for (who, api, status) in [
        ("no token", &anon, 401),
        ("a made-up token", &made_up, 401),
        ("a viewer", &viewer, 403),
        ("a bounces token", &bounces, 403),
    ] {
        let r = api.get("/metrics").await;
        assert_eq!(r.status, status, "{who}: {}", r.body);
        assert!(!r.body.contains("partnerflow_"), "{who}: {}", r.body);
        assert!(!r.body.contains("# TYPE"), "{who}: {}", r.body);
    }
    let r = metrics.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    let s = samples(&r.body);
    assert_eq!(value(&s, "partnerflow_database_up", &[]), 1.0);
    assert!(
        r.body.contains("# TYPE partnerflow_jobs gauge"),
        "{}",
        r.body
    );
    assert_eq!(anon.with(ADMIN).get("/metrics").await.status, 200);
    // The metrics role reads metrics, nothing else.
    let r = metrics.get("/api/v1/offers").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "{}",
        r.body
    );

    // Paths that hold a code or go nowhere are counted by their route template.
    let base = &metrics.base;
    let r = request("GET", format!("{base}/o/PF-SECRETCODE9"), vec![], None).await;
    assert_eq!(r.status, 404);
    let r = request("GET", format!("{base}/no/such/secret-path"), vec![], None).await;
    assert_eq!(r.status, 404);
    let r = metrics.get("/metrics").await;
    assert!(!r.body.contains("SECRETCODE"), "a path in a label");
    assert!(!r.body.contains("secret-path"), "a path in a label");
    let s = samples(&r.body);
    let requests = "partnerflow_http_requests_total";
    for labels in [
        [("route", "/o/{code}"), ("status", "404"), ("method", "GET")],
        [("route", "unmatched"), ("status", "404"), ("method", "GET")],
        [("route", "/metrics"), ("status", "200"), ("method", "GET")],
        [("route", "/metrics"), ("status", "401"), ("method", "GET")],
        [("route", "/metrics"), ("status", "403"), ("method", "GET")],
    ] {
        assert!(
            value(&s, requests, &labels) >= 1.0,
            "{labels:?} not counted"
        );
    }
    // The latency histogram has buckets, up to +Inf, per route.
    let buckets = "partnerflow_http_request_duration_seconds_bucket";
    assert!(has(&s, buckets, &[("route", "/metrics"), ("le", "+Inf")]));
    assert!(has(&s, buckets, &[("route", "/metrics"), ("le", "0.005")]));
    // Every label value comes from a bounded set: no address, code or instance id.
    for (name, labels, _) in &s {
        for v in labels.values() {
            assert!(!v.contains('@'), "{name} {labels:?}");
            assert!(
                !v.starts_with("PF-") && !v.starts_with("in_"),
                "{name} {labels:?}"
            );
        }
    }
}

// --------------------------------------------------------------- (b) the scrape and the database

/// After real work (trial invitations sent by running the due jobs, a job that cannot be read
/// failing, a campaign paused) the scrape says what the database says: jobs by state and kind,
/// the oldest due job's age, campaigns and recipients by state; and the counters grew by
/// exactly the jobs completed and failed and the emails sent.
async fn scrape_agrees_with_the_database(store: Store) {
    let _work = WORK.lock().await;
    let (app, api) = served(store, &[]).await;
    let db = pool(&app).await;
    let before = scrape(&api).await;
    let history_before = counts(&db, "SELECT CAST('all' AS TEXT), COUNT(*) FROM history").await;

    for n in 1..=3 {
        app.invite(n).await;
    }
    // Transitions and the jobs they enqueued, against the history and the job table.
    let mid = scrape(&api).await;
    let history = counts(&db, "SELECT CAST('all' AS TEXT), COUNT(*) FROM history").await;
    assert_eq!(
        grown(
            &before,
            &mid,
            "partnerflow_transitions_total",
            &[("outcome", "committed")]
        ),
        (history["all"] - history_before["all"]) as f64,
        "one transition a history row"
    );
    let enqueued = counts(&db, "SELECT kind, COUNT(*) FROM jobs GROUP BY kind").await;
    assert_eq!(enqueued.get("email"), Some(&3), "{enqueued:?}");
    for (kind, n) in &enqueued {
        assert_eq!(
            grown(
                &before,
                &mid,
                "partnerflow_jobs_enqueued_total",
                &[("kind", kind.as_str())]
            ),
            *n as f64,
            "{kind} jobs enqueued"
        );
    }
    // A job no version can read: it fails, counted under `other`, its subject never shown.
    let now = app.rt.clock.now().0;
    sqlx::query(
        "INSERT INTO jobs (key, kind, subject, payload, state, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES ('test:fax', 'fax', 'kunde@contoso.example', '{}', 'scheduled', $1, 0, 3, $1, $1)",
    )
    .bind(now)
    .execute(&db)
    .await
    .unwrap();
    app.clock.advance(Span(90_000));

    // Due, not run: the lag is the oldest due job's age (the clock is the test's).
    let s = scrape(&api).await;
    assert_eq!(value(&s, "partnerflow_job_lag_seconds", &[]), 90.0);
    let scheduled = counts(
        &db,
        "SELECT kind, COUNT(*) FROM jobs WHERE state = 'scheduled' GROUP BY kind",
    )
    .await;
    assert_eq!(scheduled.get("email"), Some(&3), "{scheduled:?}");
    assert_eq!(
        value(
            &s,
            "partnerflow_jobs",
            &[("state", "scheduled"), ("kind", "email")]
        ),
        3.0
    );

    let ran = app.rt.run_due().await.unwrap();
    assert_eq!(ran, 4, "three emails and the unreadable job");
    assert_eq!(app.outbox().len(), 3);
    let after = scrape(&api).await;
    assert_eq!(value(&after, "partnerflow_job_lag_seconds", &[]), 0.0);

    // Jobs by state and kind: every row of the GROUP BY, and nothing else.
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT state, kind, COUNT(*) FROM jobs GROUP BY state, kind")
            .fetch_all(&db)
            .await
            .unwrap();
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (state, kind, n) in &rows {
        *want
            .entry((state.clone(), kind_label(kind).to_string()))
            .or_default() += *n as f64;
    }
    let got: BTreeMap<(String, String), f64> = after
        .iter()
        .filter(|(n, _, v)| n == "partnerflow_jobs" && *v != 0.0)
        .map(|(_, l, v)| ((l["state"].clone(), l["kind"].clone()), *v))
        .collect();
    assert_eq!(got, want, "the scrape's jobs against the database's");
    assert_eq!(
        value(
            &after,
            "partnerflow_jobs",
            &[("state", "failed"), ("kind", "other")]
        ),
        1.0
    );
    // A known (state, kind) without jobs is reported as 0, not left out.
    assert!(has(
        &after,
        "partnerflow_jobs",
        &[("state", "running"), ("kind", "noop")]
    ));

    // Counters: grown by exactly what this test committed.
    let done = counts(
        &db,
        "SELECT kind, COUNT(*) FROM jobs WHERE state = 'done' GROUP BY kind",
    )
    .await;
    assert_eq!(done.get("email"), Some(&3), "{done:?}");
    for (kind, n) in &done {
        assert_eq!(
            grown(
                &before,
                &after,
                "partnerflow_job_attempts_total",
                &[("kind", kind_label(kind)), ("outcome", "done")]
            ),
            *n as f64,
            "jobs of kind {kind} done"
        );
    }
    assert_eq!(
        grown(
            &before,
            &after,
            "partnerflow_job_attempts_total",
            &[("outcome", "done")]
        ),
        done.values().sum::<i64>() as f64
    );
    assert_eq!(
        grown(
            &before,
            &after,
            "partnerflow_job_attempts_total",
            &[("kind", "other"), ("outcome", "failed")]
        ),
        1.0
    );
    let sent = counts(
        &db,
        "SELECT template, COUNT(*) FROM emails WHERE state = 'sent' GROUP BY template",
    )
    .await;
    assert_eq!(sent.values().sum::<i64>(), 3, "{sent:?}");
    for (template, n) in &sent {
        assert_eq!(
            grown(
                &before,
                &after,
                "partnerflow_emails_total",
                &[("template", template), ("outcome", "sent")]
            ),
            *n as f64,
            "emails of {template} sent"
        );
    }
    assert_eq!(
        grown(
            &before,
            &after,
            "partnerflow_emails_total",
            &[("outcome", "sent")]
        ),
        3.0
    );
    assert_eq!(
        grown(
            &before,
            &after,
            "partnerflow_emails_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
    // Run times and SMTP replies: one sample an attempt, one a message.
    assert_eq!(
        grown(
            &before,
            &after,
            "partnerflow_job_duration_seconds_count",
            &[("kind", "email")]
        ),
        3.0
    );
    assert_eq!(
        grown(
            &before,
            &after,
            "partnerflow_smtp_reply_seconds_count",
            &[("outcome", "sent")]
        ),
        3.0
    );
    assert!(has(
        &after,
        "partnerflow_db_connections",
        &[("state", "busy")]
    ));
    assert!(has(
        &after,
        "partnerflow_db_connections",
        &[("state", "idle")]
    ));
    assert_eq!(
        value(&after, "partnerflow_nodes", &[]),
        0.0,
        "no worker ran"
    );

    // A node dies holding a job: once its lease runs out, this one takes it over, counted,
    // with a line in the job's error history.
    let rt = &app.rt;
    let t = rt.clock.now();
    rt.store
        .insert_jobs(
            &[partnerflow::store::NewJob {
                key: "test:orphan".into(),
                subject: "test".into(),
                payload: JobPayload::Noop(Default::default()),
                run_at: t,
                max_attempts: 3,
                replace: false,
            }],
            t,
        )
        .await
        .unwrap();
    let held = rt
        .store
        .claim("worker-gone-1-x", t, t.plus(Span(30_000)), 10)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    app.clock.advance(Span(31_000));
    let before_takeover = scrape(&api).await;
    assert_eq!(rt.run_due().await.unwrap(), 1);
    let s = scrape(&api).await;
    assert_eq!(
        grown(
            &before_takeover,
            &s,
            "partnerflow_job_takeovers_total",
            &[("kind", "noop")]
        ),
        1.0
    );
    let errors = rt.store.job_errors(held[0].id).await.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].node, "worker-gone-1-x");
    assert!(errors[0].error.contains("ran out"), "{errors:?}");
    assert_eq!(rt.store.job(held[0].id).await.unwrap().state, "done");

    let text = api.get("/metrics").await.body;
    assert!(!text.contains("fax"), "an unknown kind in a label");
    assert!(!text.contains("contoso"), "an address in a label");

    // Campaigns: one paused with four recipients pending, against the ledger itself.
    let before_pause = scrape(&api).await;
    let c = paused_campaign(&app, 4).await;
    let s = scrape(&api).await;
    assert_eq!(
        grown(
            &before_pause,
            &s,
            "partnerflow_campaign_pauses_total",
            &[("reason", "manual")]
        ),
        1.0
    );
    let campaigns = counts(&db, "SELECT state, COUNT(*) FROM campaigns GROUP BY state").await;
    assert_eq!(campaigns.get("paused"), Some(&1), "{campaigns:?}");
    for (state, n) in &campaigns {
        assert_eq!(
            value(&s, "partnerflow_campaigns", &[("state", state)]),
            *n as f64,
            "campaigns {state}"
        );
    }
    let recipients = counts(
        &db,
        "SELECT state, COUNT(*) FROM campaign_recipients GROUP BY state",
    )
    .await;
    assert_eq!(recipients.get("pending"), Some(&4), "{recipients:?} of {c}");
    for (state, n) in &recipients {
        assert_eq!(
            value(&s, "partnerflow_campaign_recipients", &[("state", state)]),
            *n as f64,
            "recipients {state}"
        );
    }
    assert_eq!(
        value(&s, "partnerflow_campaign_recipients", &[]),
        recipients.values().sum::<i64>() as f64
    );
}

/// A trial offer's campaign of `n` recipients, started and paused (nothing sent): its id.
async fn paused_campaign(app: &TestApp, n: usize) -> String {
    use partnerflow::campaigns::{self, NewCampaign};
    use partnerflow::offers::{self, LineRequest, NewOffer};
    let rt = &app.rt;
    offers::tasks::location_sync(rt).await.unwrap();
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
    let c = campaigns::create(
        rt,
        &o.offer.offer_id,
        NewCampaign {
            name: "metrics".into(),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    let mut csv = String::from("email,name,locale\n");
    for i in 0..n {
        csv.push_str(&format!("it{i}@fabrikam.example,Kunde {i},de\n"));
    }
    let mut bad = Vec::new();
    let r = campaigns::import_csv(rt, &c.id, csv.as_bytes(), |b| bad.push(b))
        .await
        .unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(r.added, n as u64);
    campaigns::start(rt, &c.id).await.unwrap();
    campaigns::pause(rt, &c.id).await.unwrap();
    c.id
}

// ------------------------------------------------------------------------------ (c) readiness

/// `/readyz` is 200 with the schema version when the database answers and its migrations are
/// this build's; with the newest migration's record gone, 503 and why. `/healthz` is
/// liveness and stays 200.
async fn readyz_answers_when_the_schema_is_current(store: Store) {
    let (app, api) = served(store, &[]).await;
    let dir = match store {
        Store::Sqlite => "migrations/sqlite",
        Store::Postgres => "migrations/postgres",
    };
    let newest: i64 = std::fs::read_dir(common::manifest(dir))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next().and_then(|v| v.parse().ok())
        })
        .max()
        .unwrap();
    let anon = Api {
        base: api.base.clone(),
        token: None,
    };
    let r = anon.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(r.json()["schema_version"], newest);

    let db = pool(&app).await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(newest)
        .execute(&db)
        .await
        .unwrap();
    let r = anon.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["status"], "not_ready");
    let reason = r.json()["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.starts_with("migrations pending"), "{reason}");
    assert_eq!(anon.get("/healthz").await.status, 200);
}

// ------------------------------------------------------------------------- (d) http.metrics_bind

/// With `http.metrics_bind` set, `/metrics` is served there without a token (with `/readyz`
/// and `/healthz`, nothing else), and the public address still asks for the token. Empty
/// (the default), nothing is bound.
async fn metrics_bind_serves_without_a_token(store: Store) {
    let plain = common::spawn_app(store, &[]).await;
    assert!(
        partnerflow::server::bind_metrics(&plain.rt.settings)
            .await
            .unwrap()
            .is_none(),
        "not served separately by default"
    );
    drop(plain);

    let app = common::spawn_app(store, &[("PARTNERFLOW__HTTP__METRICS_BIND", "127.0.0.1:0")]).await;
    let metrics = partnerflow::server::bind_metrics(&app.rt.settings)
        .await
        .unwrap()
        .expect("http.metrics_bind is set");
    let private = format!("http://{}", metrics.local_addr().unwrap());
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_base = format!("http://{}", public.local_addr().unwrap());
    tokio::spawn(partnerflow::server::serve(
        app.rt.clone(),
        public,
        partnerflow::server::ServeOptions {
            workers: false,
            metrics: Some(metrics),
        },
        std::future::pending(),
    ));

    let (status, body) = get_within(format!("{private}/metrics")).await;
    assert_eq!(status, 200, "{body}");
    let s = samples(&body);
    assert_eq!(value(&s, "partnerflow_database_up", &[]), 1.0);
    assert!(has(
        &s,
        "partnerflow_jobs",
        &[("state", "scheduled"), ("kind", "email")]
    ));
    for (path, status) in [
        ("/readyz", 200),
        ("/healthz", 200),
        ("/api/v1/offers", 404),
        ("/api/v1/openapi.json", 404),
        ("/o/PF-NOPE", 404),
    ] {
        let (got, body) = get_within(format!("{private}{path}")).await;
        assert_eq!(got, status, "{path} on metrics_bind: {body}");
    }
    let r = request("GET", format!("{public_base}/metrics"), vec![], None).await;
    assert_eq!(r.status, 401, "the public address still asks: {}", r.body);
    assert!(!r.body.contains("partnerflow_"));
}

on_both_stores!(
    metrics_need_a_metrics_token,
    scrape_agrees_with_the_database,
    readyz_answers_when_the_schema_is_current,
    metrics_bind_serves_without_a_token,
);

// ------------------------------------------------------------------- (e) the Grafana dashboard

/// Every string under a key `expr` in `v`, with the title of the panel (the nearest object
/// with a `title`) it is in: (title, expr).
fn exprs<'a>(v: &'a serde_json::Value, title: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        serde_json::Value::Object(m) => {
            let title = m.get("title").and_then(|t| t.as_str()).unwrap_or(title);
            for (key, v) in m {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push((title, e.as_str())),
                    _ => exprs(v, title, out),
                }
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                exprs(v, title, out);
            }
        }
        _ => {}
    }
}

/// The tokens of `expr` matching `partnerflow_[a-z_]+`.
fn metric_tokens(expr: &str) -> Vec<&str> {
    const PREFIX: &str = "partnerflow_";
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find(PREFIX) {
        let after = &rest[i + PREFIX.len()..];
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 {
            out.push(&rest[i..i + PREFIX.len() + len]);
        }
        rest = &after[len..];
    }
    out
}

/// The metric a token names: a histogram's series (`_bucket`, `_sum`, `_count`) name the
/// histogram.
fn metric_of(token: &str) -> &str {
    use partnerflow::core::metric_names::ALL;
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| token.strip_suffix(*suffix))
        .find(|name| ALL.contains(name))
        .unwrap_or(token)
}

/// `config/grafana/partnerflow.json` queries only metrics that `/metrics` exposes, and shows
/// every one of them: the dashboard and `metric_names::ALL` stay in step.
#[test]
fn the_grafana_dashboard_uses_only_our_metrics() {
    use partnerflow::core::metric_names::ALL;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/partnerflow.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dashboard = serde_json::from_str::<serde_json::Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut found = Vec::new();
    exprs(&dashboard, "(no panel)", &mut found);
    assert!(
        found.len() >= 20,
        "only {} exprs in {}",
        found.len(),
        path.display()
    );
    let mut used = std::collections::BTreeSet::new();
    for (panel, expr) in &found {
        let tokens = metric_tokens(expr);
        assert!(
            !tokens.is_empty(),
            "panel {panel:?}: `{expr}` names none of our metrics"
        );
        for token in tokens {
            let name = metric_of(token);
            assert!(
                ALL.contains(&name),
                "panel {panel:?}: `{expr}` uses {name}, which is not in metric_names::ALL"
            );
            used.insert(name);
        }
    }
    let unused: Vec<&str> = ALL.into_iter().filter(|n| !used.contains(n)).collect();
    assert!(
        unused.is_empty(),
        "in metric_names::ALL but in no expr of {}: {unused:?}",
        path.display()
    );
}
