//! `partnerflow bench …`: commands that print figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::core::config::{Settings, TransportKind};
use crate::core::domain::Span;

/// Peak resident set size of this process in MiB (Linux: VmHWM).
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Drives N trial invitations to a final state: start + send (invitation email, reminder and
/// expiry timers), reminder fires (email), then half are accepted (two emails) and half
/// expire by their timer (one email). Everything through the real store, workers and outbox.
pub async fn lifecycle(
    settings: Settings,
    n: usize,
    dir: Option<PathBuf>,
    store: BenchStore,
    postgres: &str,
) -> Result<(), String> {
    on_store(settings, store, postgres, "lifecycle", |s| {
        lifecycle_on(s, n, dir, store)
    })
    .await
}

/// Runs a bench on `store`: for PostgreSQL on a scratch database of its own, made on
/// `postgres` first and dropped after; SQLite benches set their file themselves.
async fn on_store<F, Fut, T>(
    mut settings: Settings,
    store: BenchStore,
    postgres: &str,
    what: &str,
    bench: F,
) -> Result<T, String>
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    if store == BenchStore::Sqlite {
        return bench(settings).await;
    }
    let scratch = format!("pf_bench_{what}_{}", std::process::id());
    settings.database.url = crate::store::create_scratch_database(postgres, &scratch)
        .await
        .map_err(|e| format!("scratch database on {postgres}: {e}"))?;
    let r = bench(settings).await;
    let _ = crate::store::drop_scratch_database(postgres, &scratch).await;
    r
}

async fn lifecycle_on(
    mut settings: Settings,
    n: usize,
    dir: Option<PathBuf>,
    store: BenchStore,
) -> Result<(), String> {
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if store == BenchStore::Sqlite {
        settings.database.url = format!("sqlite://{}", dir.join("bench.db").display());
    }
    settings.email.transport = TransportKind::File;
    settings.email.outbox_dir = dir.join("outbox");
    settings.schedules.location_sync.enabled = false;
    settings.schedules.reconcile.enabled = false;
    settings.jobs.concurrency = settings.jobs.concurrency.max(32);
    settings.jobs.batch = 64;
    let wf = settings
        .workflows
        .entry("trial_invitation".into())
        .or_default();
    wf.durations.insert("reminder".into(), Span(1_000));
    wf.durations.insert("expiry".into(), Span(3_000));
    let rt = crate::app::build(settings, None, "bench")
        .await
        .map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut rx = stop_rx.clone();
    let workers = tokio::spawn(crate::jobs::run_workers(rt.clone(), async move {
        let _ = rx.wait_for(|s| *s).await;
    }));

    let started = Instant::now();
    // Producers: start + send, then accept the even ones once their reminder went out.
    let producers = 4;
    let mut handles = Vec::new();
    for p in 0..producers {
        let rt = rt.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (p..n).step_by(producers) {
                let data = json!({
                    "offer_id": format!("PF-BENCH{i:08}"),
                    "customer_email": format!("kunde{i}@bench.example"),
                    "customer_name": format!("Kunde {i} GmbH"),
                    "product_name": "Microsoft 365 Business Premium",
                    "link": format!("https://partnerflow.example/o/PF-BENCH{i:08}"),
                });
                let Some(map) = data.as_object() else {
                    continue;
                };
                let id = rt
                    .engine
                    .start("trial_invitation", map, None, "bench")
                    .await
                    .map_err(|e| e.to_string())?;
                rt.engine
                    .fire(&id, "send", "bench")
                    .await
                    .map_err(|e| e.to_string())?;
                ids.push((i, id));
            }
            Ok::<_, String>(ids)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.map_err(|e| e.to_string())??);
    }
    let created = started.elapsed();
    // Accept the even-numbered ones (their reminder may or may not have fired yet).
    let accepters: Vec<_> = all
        .chunks(all.len().div_ceil(producers).max(1))
        .map(|chunk| {
            let rt = rt.clone();
            let chunk: Vec<_> = chunk.to_vec();
            tokio::spawn(async move {
                for (i, id) in chunk {
                    if i % 2 == 0 {
                        let _ = rt.engine.fire(&id, "accept", "bench").await;
                    }
                }
            })
        })
        .collect();
    for a in accepters {
        let _ = a.await;
    }
    // Wait until every instance is final and every job is done.
    let deadline = Instant::now() + std::time::Duration::from_secs(3600);
    loop {
        let finals = rt
            .store
            .count_instances(Some("trial_invitation"), true)
            .await
            .map_err(|e| e.to_string())?;
        let pending = rt
            .store
            .count_unfinished()
            .await
            .map_err(|e| e.to_string())?;
        if finals as usize >= n && pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not finished after an hour: {finals} final, {pending} jobs pending"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let total = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = workers.await;
    let emails = std::fs::read_dir(dir.join("outbox"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
            })
            .count()
        })
        .unwrap_or(0);
    let failed = rt
        .store
        .count_jobs("failed", None)
        .await
        .map_err(|e| e.to_string())?;
    println!("bench lifecycle on {store:?}: {n} instances, {emails} emails, {failed} failed jobs");
    println!(
        "  created+sent in {:.1}s; all final in {total:.1}s (timers: reminder 1s, expiry 3s)",
        created.as_secs_f64()
    );
    println!("  instances/s: {:.0}", n as f64 / total);
    println!("  emails/s:    {:.0}", emails as f64 / total);
    println!(
        "  peak RSS:    {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// Which store a benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStore {
    Sqlite,
    Postgres,
}

/// `bench queue`: what to run.
#[derive(Debug, Clone)]
pub struct QueueBench {
    pub jobs: usize,
    pub store: BenchStore,
    /// A PostgreSQL server URL; scratch databases are made (and dropped) on it.
    pub postgres: String,
    pub insert_batch: usize,
    pub claim_batch: usize,
    pub concurrency: usize,
    /// Also run Graphile Worker (both its default and its batching options) on the same
    /// server, from this folder (`tests/support/graphile`).
    pub peer: Option<PathBuf>,
}

/// A no-op burn-down: insert N jobs in batches, then drain them with this process's workers;
/// jobs/s counted at durable completion (when the store has no unfinished job left).
pub async fn queue(mut settings: Settings, b: QueueBench) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let scratch = format!("pf_bench_queue_{}", std::process::id());
    settings.database.url = match b.store {
        BenchStore::Sqlite => format!("sqlite://{}", tmp.path().join("bench.db").display()),
        BenchStore::Postgres => crate::store::create_scratch_database(&b.postgres, &scratch)
            .await
            .map_err(|e| format!("scratch database on {}: {e}", b.postgres))?,
    };
    settings.database.max_connections = settings.database.max_connections.max(4);
    settings.email.transport = TransportKind::File;
    settings.email.outbox_dir = tmp.path().join("outbox");
    settings.schedules.location_sync.enabled = false;
    settings.schedules.reconcile.enabled = false;
    settings.jobs.concurrency = b.concurrency;
    settings.jobs.batch = b.claim_batch;
    let ours = queue_ours(settings, &b).await;
    if b.store == BenchStore::Postgres {
        let _ = crate::store::drop_scratch_database(&b.postgres, &scratch).await;
    }
    let ours = ours?;
    println!(
        "bench queue: {} no-op jobs on {:?} (insert batch {}, claim batch {}, concurrency {})",
        b.jobs, b.store, b.insert_batch, b.claim_batch, b.concurrency
    );
    println!(
        "  partnerflow:             insert {:>8.0} jobs/s   drain {:>8.0} jobs/s   ({:.2}s)",
        b.jobs as f64 / ours.0,
        b.jobs as f64 / ours.1,
        ours.1
    );
    let Some(dir) = &b.peer else {
        return Ok(());
    };
    let ours_rate = b.jobs as f64 / ours.1;
    for mode in ["default", "batched"] {
        let r = graphile(dir, &b, mode).await?;
        println!(
            "  graphile-worker {mode:<8} insert {:>8.0} jobs/s   drain {:>8.0} jobs/s   ({:.2}s)   partnerflow/graphile = {:.2}",
            b.jobs as f64 / r.0,
            b.jobs as f64 / r.1,
            r.1,
            ours_rate / (b.jobs as f64 / r.1)
        );
    }
    Ok(())
}

/// (insert seconds, drain seconds) for partnerflow's own queue.
async fn queue_ours(settings: Settings, b: &QueueBench) -> Result<(f64, f64), String> {
    let rt = crate::app::build(settings, None, "bench")
        .await
        .map_err(|e| e.to_string())?;
    let now = rt.clock.now();
    let started = Instant::now();
    let mut i = 0;
    while i < b.jobs {
        let end = (i + b.insert_batch).min(b.jobs);
        let batch: Vec<crate::store::NewJob> = (i..end)
            .map(|k| crate::store::NewJob {
                key: format!("noop:{k}"),
                subject: "bench".into(),
                payload: crate::core::job::JobPayload::Noop(Default::default()),
                run_at: now,
                max_attempts: 1,
                replace: false,
            })
            .collect();
        rt.store
            .insert_jobs(&batch, now)
            .await
            .map_err(|e| e.to_string())?;
        i = end;
    }
    let inserted = started.elapsed().as_secs_f64();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let workers = tokio::spawn(crate::jobs::run_workers(rt.clone(), async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let deadline = Instant::now() + std::time::Duration::from_secs(3600);
    loop {
        let left = rt
            .store
            .count_unfinished()
            .await
            .map_err(|e| e.to_string())?;
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{left} jobs left after an hour"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let drained = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = workers.await;
    let done = rt
        .store
        .count_jobs("done", Some("noop"))
        .await
        .map_err(|e| e.to_string())?;
    if done as usize != b.jobs {
        return Err(format!("{done} of {} jobs done", b.jobs));
    }
    rt.store.close().await;
    Ok((inserted, drained))
}

/// (insert seconds, drain seconds) for Graphile Worker on the same server, by its own
/// script (`drain.mjs`), in a scratch database of its own.
async fn graphile(dir: &std::path::Path, b: &QueueBench, mode: &str) -> Result<(f64, f64), String> {
    use tokio::process::Command;
    if !dir.join("node_modules").exists() {
        let st = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .await
            .map_err(|e| format!("npm ci in {}: {e}", dir.display()))?;
        if !st.success() {
            return Err(format!("npm ci in {} failed: {st}", dir.display()));
        }
    }
    let name = format!("pf_bench_graphile_{}", std::process::id());
    let url = crate::store::create_scratch_database(&b.postgres, &name)
        .await
        .map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg("drain.mjs")
        .args(["--url", &url, "--jobs", &b.jobs.to_string()])
        .args(["--batch", &b.insert_batch.to_string(), "--mode", mode])
        .current_dir(dir)
        .output()
        .await
        .map_err(|e| format!("node drain.mjs: {e}"));
    let _ = crate::store::drop_scratch_database(&b.postgres, &name).await;
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "graphile-worker ({mode}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = line
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("graphile-worker ({mode}) printed no result: {line}"))?;
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    match (f("insert_seconds"), f("drain_seconds")) {
        (Some(i), Some(d)) => Ok((i, d)),
        _ => Err(format!("graphile-worker ({mode}): unexpected result {v}")),
    }
}

/// `bench offers`: one purchase offer (two products, limited delegated admin), then
/// `acceptances` customers through the service the accept page uses: the link resolved and
/// the page rendered (advisor-code lookup, HMAC check, HTML), then each acceptance committed
/// (acceptance + delegated-admin relationship lifecycles, their rows, three email jobs, in one
/// transaction), `concurrency` customers at a time. Prints pages/s and acceptances/s.
pub async fn offers(
    mut settings: Settings,
    acceptances: usize,
    concurrency: usize,
    store: BenchStore,
    postgres: &str,
) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    if store == BenchStore::Sqlite {
        settings.database.url = format!("sqlite://{}", tmp.path().join("bench.db").display());
    }
    settings.app.data_dir = tmp.path().to_path_buf();
    settings.email.transport = TransportKind::File;
    settings.email.outbox_dir = tmp.path().join("outbox");
    settings.schedules.location_sync.enabled = false;
    settings.schedules.reconcile.enabled = false;
    on_store(settings, store, postgres, "offers", |s| {
        offers_on(s, acceptances, concurrency.max(1))
    })
    .await
}

async fn offers_on(settings: Settings, n: usize, concurrency: usize) -> Result<(), String> {
    use crate::offers::{self, Acceptance, Accepted, LineRequest, NewOffer};
    let rt = crate::app::build(settings, None, "bench")
        .await
        .map_err(|e| e.to_string())?;
    crate::offers::tasks::location_sync(&rt).await?;
    let p = |s: &str| crate::core::domain::ProductId::parse(s);
    let o = offers::create(
        &rt,
        NewOffer {
            kind: crate::core::domain::OfferKind::Purchase,
            location_id: "loc-berlin".into(),
            country: crate::core::domain::Country::parse("DE")?,
            products: vec![
                LineRequest {
                    product: p("m365-e3")?,
                    licences: Some(25),
                },
                LineRequest {
                    product: p("exchange-online-plan-1")?,
                    licences: Some(10),
                },
            ],
            delegated_admin: Some(crate::core::domain::AdminRole::Limited),
            auto_extend: false,
            expires_at: None,
            message: None,
        },
        "bench",
    )
    .await
    .map_err(|e| e.to_string())?;
    let code = o.offer.advisor_code().to_string();
    let limits = |_: &crate::core::offer::OfferLine| (1, 10_000);

    let pages = n.max(1000);
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..pages {
        let o = offers::resolve_code(&rt, &code)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let html = crate::web::views::offer_page(
            crate::core::domain::Locale::De,
            &rt.company().partner,
            &o,
            &limits,
            "/o/x",
            "csrf",
            &crate::web::views::FormValues::default(),
            &[],
        );
        bytes += html.len();
    }
    let page_time = started.elapsed();

    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let rt = rt.clone();
        let o = o.clone();
        handles.push(tokio::spawn(async move {
            let mut done = 0usize;
            for i in (w..n).step_by(concurrency) {
                let a = Acceptance {
                    organisation: format!("Kunde {i} GmbH"),
                    domain: crate::core::domain::DomainName::parse(&format!("kunde{i}.example"))?,
                    admin_email: crate::core::domain::EmailAddress::parse(&format!(
                        "it@kunde{i}.example"
                    ))?,
                    licences: vec![(p("m365-e3")?, 30)],
                    delegated_admin: true,
                    locale: crate::core::domain::Locale::De,
                };
                if let Accepted::Unconfirmed(id) = offers::accept(&rt, &o, a)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    // The customer opens the link from the email and confirms.
                    let token = offers::confirm_token(&rt, &id);
                    if let offers::Confirmation::Done(_) = offers::confirm(&rt, &token)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        done += 1;
                    }
                }
            }
            Ok::<_, String>(done)
        }));
    }
    let mut accepted = 0;
    for h in handles {
        accepted += h.await.map_err(|e| e.to_string())??;
    }
    let accept_time = started.elapsed();
    let jobs = rt
        .store
        .count_unfinished()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "bench offers: {:?} store, 1 purchase offer, {n} customers, {concurrency} at a time",
        rt.store.backend()
    );
    println!(
        "  offer page (code lookup + HMAC + HTML): {pages} in {:.2} s = {:.0} pages/s, {} bytes each",
        page_time.as_secs_f64(),
        pages as f64 / page_time.as_secs_f64(),
        bytes / pages.max(1)
    );
    println!(
        "  acceptances (accept: lifecycle + row + confirmation-link email; confirm: 2 lifecycles + 3 email jobs; a transaction each): {accepted} in {:.2} s = {:.0} acceptances/s; {jobs} jobs queued",
        accept_time.as_secs_f64(),
        accepted as f64 / accept_time.as_secs_f64()
    );
    if let Some(rss) = peak_rss_mib() {
        println!("  peak RSS {rss:.0} MiB");
    }
    rt.store.close().await;
    Ok(())
}

/// `bench campaign`: N generated recipients through the whole path — streamed CSV import,
/// ledger, claiming, rendering, delivery over SMTP (to `--smtp HOST:PORT` or a sink of its own
/// on loopback), batched outcomes — with no rate limit. Prints emails/s, p50/p99 from claim
/// to the server's acceptance, and peak RSS.
pub async fn campaign(
    settings: Settings,
    b: CampaignBench,
    store: BenchStore,
    postgres: &str,
) -> Result<(), String> {
    match b.peer {
        None => on_store(settings, store, postgres, "campaign", |s| {
            campaign_on(s, b, store)
        })
        .await
        .map(|_| ()),
        Some(Peer::SmtpSource) => against_smtp_source(settings, b, store, postgres).await,
    }
}

/// A peer `bench campaign` compares itself with, on the same machine in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// Postfix's `smtp-source` (C: a fixed message, no rendering, no database) to postfix's
    /// `smtp-sink`, the limit of SMTP on this machine.
    SmtpSource,
}

/// What one `bench campaign` run measured.
#[derive(Debug, Clone, Copy)]
struct CampaignFigures {
    /// Emails sent per second, delivery only.
    rate: f64,
    /// Bytes per message, when the built-in sink counted them.
    bytes_per_message: Option<f64>,
}

/// A program of postfix's, on PATH or where Debian puts it.
fn postfix_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.push("/usr/lib/postfix/sbin".into());
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether this process runs as root (smtp-sink then needs a user to switch to).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `bench campaign --peer smtp-source`: postfix's `smtp-sink` as the server; first postfix's
/// `smtp-source` with the message size of ours (learnt from a short run on the built-in sink),
/// the same session and message counts, then partnerflow's full path to the same sink; both
/// rates and their ratio. Installs nothing: says what to install when the tools are missing.
async fn against_smtp_source(
    settings: Settings,
    b: CampaignBench,
    store: BenchStore,
    postgres: &str,
) -> Result<(), String> {
    let (Some(sink), Some(source)) = (postfix_tool("smtp-sink"), postfix_tool("smtp-source"))
    else {
        return Err(
            "--peer smtp-source needs postfix's smtp-sink and smtp-source (Debian: apt-get install postfix); this command installs nothing"
                .into(),
        );
    };
    // Our message size: a short run on the built-in sink counts the bytes.
    let warm = CampaignBench {
        n: b.n.clamp(1, 2_000),
        smtp: None,
        peer: None,
        scrape_every: 0,
        ..b.clone()
    };
    eprintln!(
        "learning the message size: {} recipients on the built-in sink",
        warm.n
    );
    let figures = on_store(settings.clone(), store, postgres, "campaign_warm", |s| {
        campaign_on(s, warm, store)
    })
    .await?;
    let bytes = figures.bytes_per_message.unwrap_or(6_200.0).round() as usize;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(&sink);
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let mut sink_proc = cmd
        .args(["-m", "1024", &addr, "1024"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", sink.display()))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            let _ = sink_proc.kill();
            return Err(format!("smtp-sink did not listen on {addr}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sessions = b.pool.max(1).to_string();
    let started = Instant::now();
    let out = std::process::Command::new(&source)
        .args([
            "-d",
            "-s",
            &sessions,
            "-l",
            &bytes.to_string(),
            "-m",
            &b.n.to_string(),
            "-f",
            "bench@partner.example",
            "-t",
            "kunde@bench.example",
            &addr,
        ])
        .output()
        .map_err(|e| format!("{}: {e}", source.display()));
    let peer_secs = started.elapsed().as_secs_f64();
    let failed = match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "smtp-source failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Some(e),
    };
    if let Some(e) = failed {
        let _ = sink_proc.kill();
        let _ = sink_proc.wait();
        return Err(e);
    }
    let peer_rate = b.n as f64 / peer_secs;
    let ours = CampaignBench {
        smtp: Some(addr.clone()),
        peer: None,
        ..b.clone()
    };
    let r = on_store(settings, store, postgres, "campaign", |s| {
        campaign_on(s, ours, store)
    })
    .await;
    let _ = sink_proc.kill();
    let _ = sink_proc.wait();
    let ours = r?;
    println!(
        "peer: postfix smtp-source → smtp-sink, {} messages of {bytes} bytes, {sessions} sessions: {peer_secs:.2} s = {peer_rate:.0} messages/s",
        b.n
    );
    println!(
        "partnerflow → smtp-sink, {} recipients, {sessions} connections: {:.0} emails/s",
        b.n, ours.rate
    );
    println!("ratio: {:.2} of the raw SMTP rate", ours.rate / peer_rate);
    Ok(())
}

/// `bench campaign`'s options.
#[derive(Debug, Clone)]
pub struct CampaignBench {
    /// Recipients.
    pub n: usize,
    /// `HOST:PORT` of an SMTP server; None: a sink of its own.
    pub smtp: Option<String>,
    /// SMTP connections.
    pub pool: u32,
    /// Messages in flight.
    pub in_flight: u32,
    /// Seconds between metrics scrapes while sending; 0: none.
    pub scrape_every: u64,
    /// A peer to compare with, in the same run.
    pub peer: Option<Peer>,
}

async fn campaign_on(
    mut settings: Settings,
    b: CampaignBench,
    store: BenchStore,
) -> Result<CampaignFigures, String> {
    use std::sync::atomic::Ordering;
    let CampaignBench {
        n,
        smtp,
        pool,
        in_flight,
        scrape_every,
        peer: _,
    } = b;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    if store == BenchStore::Sqlite {
        settings.database.url = format!("sqlite://{}", tmp.path().join("bench.db").display());
    }
    settings.app.data_dir = tmp.path().to_path_buf();
    settings.schedules.location_sync.enabled = false;
    settings.schedules.reconcile.enabled = false;
    let sink = match &smtp {
        Some(hp) => {
            let (h, p) = hp.rsplit_once(':').ok_or("--smtp HOST:PORT")?;
            settings.email.smtp.host = h.to_string();
            settings.email.smtp.port = p.parse().map_err(|_| "--smtp HOST:PORT: bad port")?;
            None
        }
        None => {
            let (port, stats) = crate::email::sink::start()
                .await
                .map_err(|e| e.to_string())?;
            settings.email.smtp.host = "127.0.0.1".into();
            settings.email.smtp.port = port;
            Some(stats)
        }
    };
    settings.email.transport = TransportKind::Smtp;
    settings.email.smtp.security = crate::core::config::SmtpSecurity::None;
    settings.email.smtp.pool_size = pool.max(1);
    settings.campaigns.in_flight = in_flight.max(1);
    let rt = crate::app::build(settings, None, "bench")
        .await
        .map_err(|e| e.to_string())?;
    crate::offers::tasks::location_sync(&rt).await?;
    let o = crate::offers::create(
        &rt,
        crate::offers::NewOffer {
            kind: crate::core::domain::OfferKind::Trial,
            location_id: "loc-berlin".into(),
            country: crate::core::domain::Country::parse("DE")?,
            products: vec![crate::offers::LineRequest {
                product: crate::core::domain::ProductId::parse("m365-business-premium-trial")?,
                licences: None,
            }],
            delegated_admin: Some(crate::core::domain::AdminRole::Limited),
            auto_extend: false,
            expires_at: None,
            message: None,
        },
        "bench",
    )
    .await
    .map_err(|e| e.to_string())?;
    let c = crate::campaigns::create(
        &rt,
        &o.offer.offer_id,
        crate::campaigns::NewCampaign {
            name: "bench".into(),
            ..Default::default()
        },
        "bench",
    )
    .await
    .map_err(|e| e.to_string())?;
    // The recipients file, written and read as a stream.
    let file = tmp.path().join("recipients.csv");
    {
        use std::io::Write;
        let f = std::fs::File::create(&file).map_err(|e| e.to_string())?;
        let mut w = std::io::BufWriter::new(f);
        writeln!(w, "email,name,company,locale").map_err(|e| e.to_string())?;
        for i in 0..n {
            let l = if i % 3 == 0 { "en" } else { "de" };
            writeln!(
                w,
                "kunde{i}@bench{}.example,Kunde {i},Firma {i} GmbH,{l}",
                i % 97
            )
            .map_err(|e| e.to_string())?;
        }
    }
    let started = Instant::now();
    let f = std::fs::File::open(&file).map_err(|e| e.to_string())?;
    let report = crate::campaigns::import_csv(&rt, &c.id, std::io::BufReader::new(f), |b| {
        eprintln!("line {}: {}", b.line, b.reason)
    })
    .await
    .map_err(|e| e.to_string())?;
    let import = started.elapsed();
    crate::campaigns::start(&rt, &c.id)
        .await
        .map_err(|e| e.to_string())?;
    let stats = Arc::new(crate::campaigns::SenderStats {
        record_latencies: true,
        ..Default::default()
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let sender = tokio::spawn(crate::campaigns::run_sender(
        rt.clone(),
        stop_rx,
        stats.clone(),
    ));
    // What a Prometheus server scraping `/metrics` every `scrape_every` seconds costs: the
    // same text the handler answers with (counters, and the gauges' queries on the database).
    let scrapes = Arc::new(std::sync::Mutex::new((0u32, 0f64, 0usize)));
    let scraper = (scrape_every > 0).then(|| {
        let (rt, scrapes) = (rt.clone(), scrapes.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(scrape_every)).await;
                let t = Instant::now();
                let text = rt.metrics_text().await;
                let took = t.elapsed().as_secs_f64();
                if let Ok(mut s) = scrapes.lock() {
                    *s = (s.0 + 1, s.1 + took, text.len());
                }
            }
        })
    });
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let done = stats.sent.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed);
        if last.0.elapsed().as_secs() >= 5 {
            eprintln!(
                "  {done} / {n} sent ({:.0}/s over the last {:.0} s)",
                (done - last.1) as f64 / last.0.elapsed().as_secs_f64(),
                last.0.elapsed().as_secs_f64()
            );
            last = (Instant::now(), done);
        }
        if done >= report.added {
            break;
        }
        let c = rt.store.campaign(&c.id).await.map_err(|e| e.to_string())?;
        if c.as_ref()
            .is_some_and(|c| c.state != crate::core::campaign::CampaignState::Running)
        {
            break;
        }
    }
    let elapsed = started.elapsed();
    if let Some(s) = scraper {
        s.abort();
    }
    let _ = stop_tx.send(true);
    let _ = sender.await;
    let counts = rt
        .store
        .recipient_counts(&c.id)
        .await
        .map_err(|e| e.to_string())?;
    let mut lat = stats
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0
    };
    println!(
        "bench campaign: {n} recipients, {store:?}, SMTP {}, pool {pool}, in flight {in_flight}",
        smtp.as_deref().unwrap_or("sink on loopback")
    );
    println!(
        "  import (streamed CSV → ledger): {} rows in {:.2} s = {:.0} rows/s",
        report.rows,
        import.as_secs_f64(),
        report.rows as f64 / import.as_secs_f64()
    );
    println!(
        "  delivery: {} sent, {} failed in {:.2} s = {:.0} emails/s",
        counts.sent,
        counts.failed,
        elapsed.as_secs_f64(),
        counts.sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  claim → SMTP acceptance: p50 {:.1} ms, p99 {:.1} ms",
        pct(0.50),
        pct(0.99)
    );
    let bytes_per_message = sink.as_ref().map(|s| {
        s.bytes.load(Ordering::Relaxed) as f64 / s.messages.load(Ordering::Relaxed).max(1) as f64
    });
    if let Some(s) = sink {
        println!(
            "  sink: {} messages, {} connections, {:.0} bytes each",
            s.messages.load(Ordering::Relaxed),
            s.connections.load(Ordering::Relaxed),
            s.bytes.load(Ordering::Relaxed) as f64
                / s.messages.load(Ordering::Relaxed).max(1) as f64
        );
    }
    if scrape_every > 0 {
        let (count, total, bytes) = scrapes.lock().map(|s| *s).unwrap_or_default();
        println!(
            "  metrics scraped every {scrape_every} s: {count} scrapes, {:.1} ms each, {bytes} bytes",
            total * 1000.0 / f64::from(count.max(1))
        );
    }
    if let Some(rss) = peak_rss_mib() {
        println!("  peak RSS {rss:.0} MiB");
    }
    rt.store.close().await;
    Ok(CampaignFigures {
        rate: counts.sent as f64 / elapsed.as_secs_f64(),
        bytes_per_message,
    })
}

/// `bench portal`'s pages: one line per page (`{offer}` is a seeded Offer ID, `{domain}` a
/// seeded customer domain with a confirmed acceptance; d1230 is unconfirmed, so not a customer).
const PORTAL_PAGES: &[&str] = &[
    "/portal",
    "/portal?period=90",
    "/portal?period=7&kind=trial",
    "/portal?period=90&location=bench-loc-3",
    "/portal?period=90&kind=purchase&location=bench-loc-3",
    "/portal/users",
    "/portal/audit",
    "/portal/offers",
    "/portal/offers/{offer}",
    "/portal/customers?q={domain}",
    "/portal/campaigns",
    "/portal/campaigns/cmp_bench1",
    "/portal/campaigns/cmp_bench0",
    "/portal/customers/{domain}",
    "/portal/resellers",
    "/portal/company",
    "/portal/offers/new/purchase?country=DE",
    "/portal/jobs",
    "/portal/jobs?state=failed&kind=email",
    "/portal/nodes",
    "/portal/schedules",
    "/portal/workflows",
];

/// The bar every portal page must stay under (ms, p99).
const PORTAL_BAR_MS: f64 = 100.0;

/// A seeded Offer ID (the seed's digits 0 and 1 are Z and Y: not in the Offer ID alphabet).
fn bench_offer_id(i: i64) -> String {
    let digits = format!("{i:011}").replace('0', "Z").replace('1', "Y");
    format!("PF-B{digits}")
}

fn machine_facts() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "? GiB".into());
    let build = if cfg!(debug_assertions) {
        "debug build (figures are not release figures)"
    } else {
        "release build"
    };
    format!(
        "{cpu}, {cores} cores, {mem} RAM, {} {}, {build}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `bench portal`: a SQLite database seeded in SQL with `offers` offers and `ledger` email
/// ledger rows (and invitations, acceptances, relationships, opens, campaigns in proportion;
/// see `Store::seed_portal_bench`), an administrator signed in (a real sign-in link redeemed),
/// then every page of [`PORTAL_PAGES`] requested `requests` times through the real router,
/// in-process; prints p50/p99/max per page and a verdict against 100 ms.
pub async fn portal(
    mut settings: Settings,
    offers: i64,
    ledger: i64,
    campaign_recipients: i64,
    requests: usize,
    dir: Option<PathBuf>,
) -> Result<(), String> {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower_service::Service;

    println!(
        "command: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine: {}", machine_facts());
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let work = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            if d.join("portal.db").exists() {
                return Err(format!("{}: portal.db exists already", d.display()));
            }
            d
        }
        None => tmp.path().to_path_buf(),
    };
    settings.database.url = format!("sqlite://{}", work.join("portal.db").display());
    settings.app.data_dir = work.clone();
    settings.email.transport = TransportKind::File;
    settings.email.outbox_dir = work.join("outbox");
    settings.schedules.location_sync.enabled = false;
    settings.schedules.reconcile.enabled = false;
    // The per-client limit of the public pages would refuse a benchmark's requests (it is
    // one counter statement per request; not measured here).
    settings.public.requests_per_client_per_minute = 0;
    let rt = crate::app::build(settings, None, "bench")
        .await
        .map_err(|e| e.to_string())?;

    let started = Instant::now();
    let seeded = rt
        .store
        .seed_portal_bench(
            offers,
            ledger,
            campaign_recipients,
            rt.clock.now(),
            |step| tracing::debug!(step, "seeding"),
        )
        .await
        .map_err(|e| e.to_string())?;
    rt.store.analyze().await.map_err(|e| e.to_string())?;
    println!(
        "seeded in {:.1} s (SQLite, one transaction, INSERT … SELECT): {} offers, {} invitations, {} acceptances, {} relationships, {} email ledger rows, {} campaign recipients, {} first opens, {} timers",
        started.elapsed().as_secs_f64(),
        seeded.offers,
        seeded.invitations,
        seeded.acceptances,
        seeded.relationships,
        seeded.emails,
        seeded.campaign_recipients,
        seeded.opens,
        seeded.timers
    );
    // What every node's side task does once a day is over: the funnel's past days rolled up.
    let started = Instant::now();
    let days = rt
        .store
        .roll_up_funnel(rt.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "funnel: {days} past days rolled up in {:.1} s (as each node does an hour after a day ends)",
        started.elapsed().as_secs_f64()
    );

    // An administrator, signed in as a browser is: the emailed link redeemed for a session.
    let new = crate::portal::NewUser::parse("bench@partner.example", "Bench", "admin", "en")
        .map_err(|e| e.to_string())?;
    let (_, link) = crate::portal::create_user(&rt, &new, &crate::portal::Actor::cli())
        .await
        .map_err(|e| e.to_string())?;
    let token = link.url.rsplit('/').next().unwrap_or_default().to_string();
    let (_, secret) = crate::portal::redeem(&rt, &token, "127.0.0.1")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the sign-in link was not usable")?;
    let cookie = format!(
        "{}={secret}",
        crate::web::pages::portal::session_cookie_name(&rt)
    );

    let mut router = crate::web::router(rt.clone());
    println!(
        "{} requests per page, one at a time, through the real router in-process (no TCP):",
        requests
    );
    println!(
        "{:<58} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "page", "status", "p50 ms", "p99 ms", "max ms", "KiB"
    );
    let mut worst: f64 = 0.0;
    let mut failed = Vec::new();
    for template in PORTAL_PAGES {
        let path = template
            .replace("{offer}", &bench_offer_id(0))
            .replace("{domain}", "d1232.example");
        let mut times = Vec::with_capacity(requests);
        let mut status = 0u16;
        let mut size = 0usize;
        for _ in 0..requests.max(1) {
            let req = Request::get(path.as_str())
                .header(header::COOKIE, cookie.as_str())
                .header(header::ACCEPT_LANGUAGE, "en")
                .body(Body::empty())
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            std::future::poll_fn(|cx| {
                <axum::Router as Service<Request<Body>>>::poll_ready(&mut router, cx)
            })
            .await
            .map_err(|e| e.to_string())?;
            let resp = router.call(req).await.map_err(|e| e.to_string())?;
            status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .map_err(|e| e.to_string())?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            size = body.len();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let (p50, p99, max) = (
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(0.0),
        );
        if status == 200 {
            worst = worst.max(p99);
            if p99 > PORTAL_BAR_MS {
                failed.push(path.clone());
            }
        }
        println!(
            "{:<58} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            path,
            status,
            p50,
            p99,
            max,
            size as f64 / 1024.0
        );
    }
    if failed.is_empty() {
        println!(
            "verdict: every page that answered 200 is under {PORTAL_BAR_MS} ms at p99 (worst p99 {worst:.1} ms)"
        );
    } else {
        println!(
            "verdict: over {PORTAL_BAR_MS} ms at p99: {} (worst p99 {worst:.1} ms)",
            failed.join(", ")
        );
    }
    if cfg!(debug_assertions) {
        println!("note: a debug build (SQLite and the app unoptimised); release figures are lower");
    }
    Ok(())
}
