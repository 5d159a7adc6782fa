//! The batched sender: claims recipients with leases and rate-limit tokens, delivers each
//! through `email::Mailer::deliver` holding one in-flight permit, commits outcomes in batches,
//! pauses after repeated failures and resumes by itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::app::AppState;
use crate::core::campaign::{CampaignAction, CampaignState};
use crate::core::domain::{EmailAddress, Locale, OfferId, Timestamp};
use crate::core::rate::RateLimits;
use crate::email::{EmailError, Envelope};
use crate::store::{ClaimedRecipient, RecipientOutcome};

use super::*;

/// What one send produced, with the permit that is released once it is committed.
struct Done {
    recipient: ClaimedRecipient,
    outcome: RecipientOutcome,
    transient: bool,
    latency: Duration,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Figures the sender reports (for `bench campaign` and progress).
#[derive(Debug, Default)]
pub struct SenderStats {
    pub sent: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    /// Whether to keep `latencies_us` (the bench does; a long-running worker must not grow
    /// a list per message sent).
    pub record_latencies: bool,
    /// Claim to SMTP acceptance, in microseconds, of each sent message.
    pub latencies_us: std::sync::Mutex<Vec<u32>>,
}

struct CampaignCtx {
    template: String,
    reminder_template: Option<String>,
    base: Value,
    limits: RateLimits,
}

fn retry_at(rt: &AppState, attempts: i64, now: Timestamp) -> Timestamp {
    let c = &rt.settings.campaigns;
    now.plus(crate::core::retry::backoff(
        attempts,
        c.retry_base,
        c.retry_max,
        rand::random::<f64>() * 2.0 - 1.0,
    ))
}

async fn send_one(
    rt: Arc<AppState>,
    ctx: Arc<CampaignCtx>,
    r: ClaimedRecipient,
) -> (RecipientOutcome, bool) {
    let now = || rt.clock.now();
    let locale = Locale::parse(&r.locale).unwrap_or(rt.settings.app.default_locale);
    let template = match (r.phase, &ctx.reminder_template) {
        (1, Some(t)) => t.as_str(),
        (1, None) => DEFAULT_REMINDER_TEMPLATE,
        _ => ctx.template.as_str(),
    };
    let unsubscribe = unsubscribe_url(&rt, &r.campaign_id, r.seq);
    let to = match EmailAddress::parse(&r.email) {
        Ok(t) => t,
        Err(e) => return (RecipientOutcome::Failed { error: e }, false),
    };
    let env = Envelope {
        message_id: r.phase_message_id(),
        to,
        locale,
        template: template.to_string(),
    };
    let out = crate::email::Outgoing {
        envelope: &env,
        context: recipient_context(&ctx.base, &r),
        unsubscribe: Some(&unsubscribe),
    };
    match rt.mailer().deliver(out, now()).await {
        Ok(reply) => (RecipientOutcome::Sent { reply, at: now() }, false),
        Err(EmailError::Transient(e)) => {
            if r.attempts >= i64::from(rt.settings.campaigns.max_attempts) {
                (
                    RecipientOutcome::Failed {
                        error: format!("gave up after {} attempts: {e}", r.attempts),
                    },
                    true,
                )
            } else {
                (
                    RecipientOutcome::Retry {
                        at: retry_at(&rt, r.attempts, now()),
                        error: e,
                    },
                    true,
                )
            }
        }
        Err(e) => (
            RecipientOutcome::Failed {
                error: e.to_string(),
            },
            false,
        ),
    }
}

/// Runs until `stop` turns true, then finishes what is in flight and commits it.
pub async fn run_sender(
    rt: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<SenderStats>,
) {
    let cfg = rt.settings.campaigns.clone();
    let permits = Arc::new(Semaphore::new(cfg.in_flight as usize));
    let (done_tx, done_rx) = mpsc::channel::<Done>(cfg.in_flight as usize * 2);
    let flusher = tokio::spawn(flush_outcomes(rt.clone(), done_rx, stats.clone()));
    let mut contexts: HashMap<String, Arc<CampaignCtx>> = HashMap::new();
    // The campaigns this sender saw running, so that it logs when one starts or stops running
    // (started, paused, resumed or cancelled by any process, or completed).
    let mut seen_running: std::collections::HashSet<String> = Default::default();
    let mut last_requeue = Instant::now() - Duration::from_secs(60);
    let wake = rt.store.wake_handle();
    let poll = rt.settings.jobs.poll_interval.as_std();
    while !*stop.borrow() && stop.has_changed().is_ok() {
        if last_requeue.elapsed() > Duration::from_secs(1) {
            last_requeue = Instant::now();
            let now = rt.clock.now();
            // Writes only where there is something to do: idle workers leave the database
            // (and SQLite's one writer) alone.
            let active = rt.store.campaign_state_counts().await.unwrap_or_default();
            let has = |s: CampaignState| active.iter().any(|(st, n)| *st == s && *n > 0);
            if has(CampaignState::Running) {
                if let Err(e) = rt.store.requeue_expired_recipients(now).await {
                    tracing::warn!(error = %e, "requeueing expired campaign leases failed");
                }
                if permits.available_permits() < cfg.in_flight as usize
                    && let Err(e) = rt
                        .store
                        .extend_recipient_leases(&rt.node, now.plus(cfg.lease))
                        .await
                {
                    tracing::warn!(error = %e, "extending campaign leases failed");
                }
                if let Err(e) = rt.store.fold_campaign_tallies().await {
                    tracing::warn!(error = %e, "folding campaign tallies failed");
                }
                match rt.store.promote_reminders(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(n, "campaign reminders due"),
                    Err(e) => tracing::warn!(error = %e, "promoting campaign reminders failed"),
                }
            }
            if has(CampaignState::Paused)
                && cfg.auto_resume_after.0 > 0
                && let Err(e) = auto_resume(&rt, now).await
            {
                tracing::warn!(error = %e, "auto-resume check failed");
            }
            if !active.is_empty() {
                match rt.store.expire_campaigns(now).await {
                    Ok(ids) => {
                        for id in ids {
                            tracing::info!(campaign = %id, "campaign expired with its offer");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "expiring campaigns failed"),
                }
            }
        }
        let mut limited_until: Option<Timestamp> = None;
        let running = match rt.store.running_campaigns().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "listing running campaigns failed");
                sleep_or_stop(&mut stop, poll).await;
                continue;
            }
        };
        for id in &running {
            if !seen_running.contains(id) {
                tracing::info!(campaign = %id, node = %rt.node, "campaign running: sending it");
            }
        }
        for id in seen_running.iter().filter(|id| !running.contains(*id)) {
            tracing::info!(campaign = %id, node = %rt.node, "campaign no longer running: not sending it");
        }
        seen_running = running.iter().cloned().collect();
        let mut claimed_any = false;
        for id in &running {
            let ctx = match contexts.get(id) {
                Some(c) => c.clone(),
                None => match load_ctx(&rt, id).await {
                    Ok(c) => {
                        let c = Arc::new(c);
                        contexts.insert(id.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        tracing::error!(campaign = %id, error = %e, "campaign cannot be sent; pausing it");
                        let reason = format!("cannot render: {e}");
                        if transition(rt.as_ref(), id, CampaignAction::Pause, Some(&reason))
                            .await
                            .is_ok()
                        {
                            count_pause("render");
                        }
                        continue;
                    }
                },
            };
            // Take permits first: never claim more than can be in flight, and claim in batches
            // worth a round trip (wait for half a batch of room rather than claim one by one).
            let batch_size = (cfg.batch.min(cfg.in_flight)) as usize;
            let room = permits.available_permits();
            if room < batch_size.div_ceil(2) {
                break;
            }
            let Ok(held) = permits
                .clone()
                .try_acquire_many_owned(room.min(batch_size) as u32)
            else {
                break;
            };
            let want = held.num_permits();
            let now = rt.clock.now();
            let batch = match rt
                .store
                .claim_recipients(
                    id,
                    &rt.node,
                    want as i64,
                    now,
                    now.plus(cfg.lease),
                    ctx.limits,
                )
                .await
            {
                Ok(claim) => {
                    if claim.deferred > 0 {
                        // A domain's backlog moved: others may be due now.
                        claimed_any = true;
                    }
                    if let Some(u) = claim.limited_until {
                        limited_until = Some(limited_until.map_or(u, |l| l.min(u)));
                    }
                    claim.recipients
                }
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "claiming recipients failed");
                    continue;
                }
            };
            if batch.is_empty() {
                drop(held);
                // Nothing claimed: completed if nothing is left to send, now or later. A rate
                // limit does not hold this back (with nothing pending there is nothing to
                // limit); scheduled reminders do.
                match rt.store.complete_if_done(id, rt.clock.now()).await {
                    Ok(true) => tracing::info!(campaign = %id, "campaign completed"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(campaign = %id, error = %e, "completing the campaign failed")
                    }
                }
                continue;
            }
            claimed_any = true;
            // Addresses suppressed since the import (unsubscribed, hard-bounced) are not sent.
            let keys: Vec<&str> = batch.iter().map(|r| r.email_key.as_str()).collect();
            let suppressed = rt.store.suppressed_among(&keys).await.unwrap_or_default();
            let mut held = Some(held);
            for r in batch {
                // One permit per recipient; the last one takes what is left.
                let permit = match held.take() {
                    Some(mut h) if h.num_permits() > 1 => match h.split(1) {
                        Some(p) => {
                            held = Some(h);
                            p
                        }
                        None => h,
                    },
                    Some(h) => h,
                    None => break,
                };
                if let Some(reason) = suppressed.get(&r.email_key) {
                    let outcome = RecipientOutcome::Suppressed {
                        reason: reason.clone(),
                    };
                    let d = Done {
                        recipient: r,
                        outcome,
                        transient: false,
                        latency: Duration::ZERO,
                        _permit: permit,
                    };
                    let _ = done_tx.send(d).await;
                    continue;
                }
                let (rt, ctx, tx) = (rt.clone(), ctx.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let (outcome, transient) = send_one(rt, ctx, r.clone()).await;
                    let _ = tx
                        .send(Done {
                            recipient: r,
                            outcome,
                            transient,
                            latency: started.elapsed(),
                            _permit: permit,
                        })
                        .await;
                });
            }
        }
        let half = (cfg.batch.min(cfg.in_flight)).div_ceil(2);
        if permits.available_permits() < half as usize {
            // Wait for room for half a batch, not for the poll interval.
            if let Ok(p) = permits.clone().acquire_many_owned(half).await {
                drop(p);
            }
        } else if !claimed_any {
            contexts.retain(|k, _| running.contains(k));
            // Held back by a rate limit: until a token is there (re-read the clock).
            let nap = match limited_until {
                Some(u) => {
                    Duration::from_millis((u.0 - rt.clock.now().0).clamp(1, 1000) as u64).min(poll)
                }
                // Nothing running: look again each second at most as often as the job poll
                // (a campaign started in this process wakes us at once), so idle workers cost
                // the database little.
                None if running.is_empty() => poll.max(Duration::from_secs(1)),
                None => poll,
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
                _ = stop.changed() => {}
            }
        }
    }
    drop(done_tx);
    let _ = flusher.await;
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

async fn load_ctx(rt: &AppState, id: &str) -> Result<CampaignCtx> {
    let c = get(rt, id).await?;
    let offer = OfferId::parse(&c.offer_id).map_err(CampaignError::Invalid)?;
    let o = crate::offers::get(rt, &offer).await?;
    let cfg = &rt.settings.campaigns;
    let limits = RateLimits {
        per_second: cfg.rate_per_second,
        per_domain_per_minute: cfg.rate_per_domain_per_minute,
        campaign_per_minute: c
            .max_per_minute
            .map_or(0, |m| m.clamp(0, i64::from(u32::MAX)) as u32),
    };
    Ok(CampaignCtx {
        base: base_context(rt, &c, &o),
        template: c.template,
        reminder_template: c.reminder_template,
        limits,
    })
}

async fn auto_resume(rt: &AppState, now: Timestamp) -> Result<()> {
    let after = rt.settings.campaigns.auto_resume_after;
    for c in rt.store.campaigns().await? {
        if c.state == CampaignState::Paused
            && c.pause_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(AUTO_PAUSE))
            && c.updated_at.plus(after) <= now
            && let Ok(to) = c.state.apply(CampaignAction::Resume)
            && rt
                .store
                .set_campaign_state(&c.id, &[c.state], to, None, now)
                .await?
        {
            tracing::info!(campaign = %c.id, "campaign resumed after its automatic pause");
        }
    }
    Ok(())
}

/// The start of the reason of an automatic pause.
pub const AUTO_PAUSE: &str = "delivery failures:";

/// Commits outcomes in batches (when 256 are waiting or every 20 ms), then releases their
/// permits; counts consecutive transient failures per campaign and pauses at the limit.
async fn flush_outcomes(rt: Arc<AppState>, mut rx: mpsc::Receiver<Done>, stats: Arc<SenderStats>) {
    let limit = i64::from(rt.settings.campaigns.max_failures);
    let mut buf: Vec<Done> = Vec::with_capacity(512);
    loop {
        let first = match rx.recv().await {
            Some(d) => d,
            None => break,
        };
        buf.push(first);
        let deadline = tokio::time::sleep(Duration::from_millis(20));
        tokio::pin!(deadline);
        while buf.len() < 256 {
            tokio::select! {
                d = rx.recv() => match d { Some(d) => buf.push(d), None => break },
                _ = &mut deadline => break,
            }
        }
        let outcomes: Vec<(ClaimedRecipient, RecipientOutcome)> = buf
            .iter()
            .map(|d| (d.recipient.clone(), d.outcome.clone()))
            .collect();
        // Suppressed meanwhile (unsubscribed, bounced): recorded as such, whatever happened.
        let mut backoff = Duration::from_millis(50);
        loop {
            match rt
                .store
                .finish_recipients(&rt.node, &outcomes, rt.clock.now())
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, n = outcomes.len(), "committing campaign outcomes failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // Consecutive failures per campaign, in completion order.
        let mut per: HashMap<&str, (i64, bool, String)> = HashMap::new();
        for d in &buf {
            let e =
                per.entry(d.recipient.campaign_id.as_str())
                    .or_insert((0, false, String::new()));
            if d.transient {
                e.0 += 1;
                if let RecipientOutcome::Retry { error, .. } | RecipientOutcome::Failed { error } =
                    &d.outcome
                {
                    e.2 = error.clone();
                }
            } else {
                e.0 = 0;
                e.1 = true;
            }
            match d.outcome {
                RecipientOutcome::Sent { .. } => {
                    stats
                        .sent
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if stats.record_latencies
                        && let Ok(mut l) = stats.latencies_us.lock()
                    {
                        l.push(d.latency.as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                }
                RecipientOutcome::Failed { .. } => {
                    stats
                        .failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {}
            }
        }
        let mut by_outcome = [0u64; 4];
        for d in &buf {
            by_outcome[match d.outcome {
                RecipientOutcome::Sent { .. } => 0,
                RecipientOutcome::Retry { .. } => 1,
                RecipientOutcome::Failed { .. } => 2,
                RecipientOutcome::Suppressed { .. } => 3,
            }] += 1;
        }
        let outcomes = ["sent", "retry", "failed", "suppressed"];
        for (outcome, n) in outcomes.into_iter().zip(by_outcome) {
            if n > 0 {
                metrics::counter!(crate::core::metric_names::CAMPAIGN_EMAILS, "outcome" => outcome)
                    .increment(n);
            }
        }
        for (id, (failures, reset, last)) in per {
            if failures == 0 && !reset {
                continue;
            }
            let reason = format!("{AUTO_PAUSE} {limit} in a row; last: {last}");
            match rt
                .store
                .note_campaign_failures(id, failures, reset, limit, &reason, rt.clock.now())
                .await
            {
                Ok(true) => {
                    count_pause("failures");
                    tracing::warn!(campaign = %id, reason, "campaign paused")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "counting delivery failures failed")
                }
            }
        }
        buf.clear();
    }
}

// ------------------------------------------------------- unsubscribe and bounces

/// `partnerflow_campaign_pauses_total` by `reason` (one of `metric_names::PAUSE_REASONS`).
pub(super) fn count_pause(reason: &'static str) {
    use crate::core::metric_names as names;
    let reason = names::bounded(reason, &names::PAUSE_REASONS);
    metrics::counter!(names::CAMPAIGN_PAUSES, "reason" => reason).increment(1);
}
