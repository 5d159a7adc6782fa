//! `partnerflow bench …`: commands that print figures.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::config::{Settings, TransportKind};
use crate::domain::Span;

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
    mut settings: Settings,
    n: usize,
    dir: Option<PathBuf>,
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
    settings.database.url = format!("sqlite://{}", dir.join("bench.db").display());
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
            .count_jobs("scheduled", None)
            .await
            .map_err(|e| e.to_string())?
            + rt.store
                .count_jobs("running", None)
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
    println!("bench lifecycle: {n} instances, {emails} emails, {failed} failed jobs");
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
