//! The only module that knows apalis. Jobs live in partnerflow's own tables (see `store`);
//! apalis runs them: a custom backend whose fetcher claims leased batches from the store,
//! tower layers for concurrency and panics, and a Monitor for graceful shutdown. Outcomes
//! are written back by one acknowledger per process, many jobs per transaction.

pub mod inspect;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::app::AppState;
use crate::core::config::JobSettings;
use crate::core::domain::{Span, Timestamp};
use crate::core::job::{EmailJob, JobPayload, ScheduleJob, TimerJob};
use crate::core::metric_names;
use crate::core::retry::backoff;
use crate::core::schedule::{self, Plan, ScheduleDef};
use crate::email::{self, EmailError};
use crate::engine::EngineError;
use crate::store::{AdvanceOutcome, JobRow, NewJob, Outcome, StoreError};

impl AppState {
    fn cfg(&self) -> &JobSettings {
        &self.settings.jobs
    }

    fn retry_or_fail(&self, job: &JobRow, error: String) -> Outcome {
        if job.attempts >= job.max_attempts {
            return Outcome::Failed {
                error: format!("gave up after {} attempts: {error}", job.attempts),
            };
        }
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        let wait = backoff(
            job.attempts,
            self.cfg().backoff_base,
            self.cfg().backoff_max,
            jitter,
        );
        Outcome::Retry {
            at: self.clock.now().plus(wait),
            error,
        }
    }

    /// Runs one attempt of a job and says what became of it. Never panics on bad input:
    /// a job it cannot understand fails permanently with the reason.
    pub async fn execute(&self, job: &JobRow) -> Outcome {
        use tracing::Instrument;
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind, subject = %job.subject, attempt = job.attempts, node = %self.node);
        let began = std::time::Instant::now();
        let outcome = async {
            match &job.payload {
                JobPayload::Email(e) => self.send_email(job, e).await,
                JobPayload::Timer(t) => self.fire_timer(job, t).await,
                JobPayload::Schedule(r) => self.run_schedule(job, r).await,
                // `partnerflow bench queue`: the queue's own cost, nothing else.
                JobPayload::Noop(_) => Outcome::Done,
                JobPayload::Unreadable { error, .. } => Outcome::Failed {
                    error: error.clone(),
                },
            }
        }
        .instrument(span)
        .await;
        let kind = metric_names::bounded(&job.kind, &JobPayload::KINDS);
        metrics::histogram!(metric_names::JOB_DURATION, "kind" => kind)
            .record(began.elapsed().as_secs_f64());
        outcome
    }

    /// Notes a claimed batch: when this node last claimed work (its heartbeat reports it) and
    /// the jobs it took over from a node whose lease ran out.
    fn claimed(&self, jobs: &[JobRow]) {
        self.last_claim
            .store(self.clock.now().0, std::sync::atomic::Ordering::Relaxed);
        for j in jobs.iter().filter(|j| j.taken_over_from.is_some()) {
            let kind = metric_names::bounded(&j.kind, &JobPayload::KINDS);
            metrics::counter!(metric_names::JOB_TAKEOVERS, "kind" => kind).increment(1);
            tracing::warn!(job = j.id, kind = %j.kind, from = j.taken_over_from.as_deref().unwrap_or_default(), "job taken over: the lease of its node ran out");
        }
    }

    /// This worker's heartbeat (`nodes`): written at start and every few seconds.
    async fn beat(&self) {
        let last = self.last_claim.load(std::sync::atomic::Ordering::Relaxed);
        let beat = crate::store::NodeBeat {
            node: &self.node,
            host: &self.host,
            pid: std::process::id() as i64,
            version: env!("CARGO_PKG_VERSION"),
            started_at: self.started,
            last_claim: (last > 0).then_some(Timestamp(last)),
        };
        if let Err(e) = self.store.node_beat(&beat, self.clock.now()).await {
            tracing::warn!(error = %e, "writing this node's heartbeat failed");
        }
    }

    async fn send_email(&self, job: &JobRow, e: &EmailJob) -> Outcome {
        let env = &e.envelope;
        let mut context = e.context.clone();
        // Emails queued before `partner.provider_name` existed: today's setting fills it in.
        if let Some(p) = context.get_mut("partner").and_then(Value::as_object_mut) {
            p.entry("provider_name")
                .or_insert_with(|| Value::String(self.settings.partner.provider_name.clone()));
            // The identity as it is now (the portal's company page may have changed it since).
            crate::portal::company::overlay(p, &self.company().partner);
        }
        // A portal sign-in email names its link by reference; the URL (a secret) exists only
        // in the message being sent.
        if let Some(d) = context.get_mut("data").and_then(Value::as_object_mut)
            && let Some(r) = d.get(crate::portal::LINK_REF).and_then(Value::as_str)
        {
            match crate::portal::signin_url_of(self, r) {
                Some(url) => {
                    d.insert("link".into(), Value::String(url));
                }
                None => {
                    return Outcome::Failed {
                        error: "the sign-in link's key is not in links.keys".into(),
                    };
                }
            }
        }
        match self.store.email_state(&env.message_id).await {
            Ok(Some(s)) if s == "sent" => {
                tracing::info!(message_id = %env.message_id, "already sent; not sending again");
                return Outcome::Done;
            }
            Ok(_) => {}
            Err(e) => return self.retry_or_fail(job, e.to_string()),
        }
        let out = email::Outgoing {
            envelope: env,
            context,
            unsubscribe: None,
        };
        match self.mailer().deliver(out, self.clock.now()).await {
            Ok(reply) => {
                tracing::info!(message_id = %env.message_id, to = %env.to, template = %env.template, instance = %job.subject, "email sent");
                Outcome::Sent { reply }
            }
            Err(EmailError::Transient(e)) => {
                tracing::warn!(message_id = %env.message_id, to = %env.to, error = %e, "email failed; will retry");
                self.retry_or_fail(job, e)
            }
            Err(e) => {
                tracing::warn!(message_id = %env.message_id, to = %env.to, error = %e, "email failed permanently");
                Outcome::Failed {
                    error: match e {
                        EmailError::Permanent(m) => m,
                        other => other.to_string(),
                    },
                }
            }
        }
    }

    async fn fire_timer(&self, job: &JobRow, t: &TimerJob) -> Outcome {
        let (id, event, timer) = (&t.instance, t.event.as_str(), t.timer.as_str());
        let fence = crate::store::JobFence {
            job_id: job.id,
            owner: self.node.clone(),
            attempts: job.attempts,
        };
        match self
            .engine
            .fire_fenced(id, event, &format!("timer:{timer}"), Some(fence))
            .await
        {
            Ok(t) => {
                tracing::info!(instance = %id, timer, event, to = %t.to, "timer fired");
                // Completed in the transition's transaction (fenced): `finish` will find it
                // done already, so it is counted here.
                count_attempt(&job.kind, "done");
                Outcome::Done
            }
            Err(EngineError::Store(StoreError::Stale(_))) => {
                tracing::info!(instance = %id, timer, event, "timer was rescheduled or taken over; not firing");
                Outcome::Done
            }
            Err(EngineError::Rejected(why)) => {
                tracing::info!(instance = %id, timer, event, reason = %why, "timer no longer applies");
                Outcome::Done
            }
            Err(e) => self.retry_or_fail(job, e.to_string()),
        }
    }

    async fn run_schedule(&self, job: &JobRow, r: &ScheduleJob) -> Outcome {
        let (name, tick) = (r.schedule.clone(), r.tick);
        let started = self.clock.now();
        let result = match name.as_str() {
            "location_sync" => crate::offers::tasks::location_sync(self).await,
            "reconcile" => crate::offers::tasks::reconcile(self).await,
            "test_tick" => Ok("ran".to_string()),
            other => Err(format!("unknown schedule `{other}`")),
        };
        let summary = match result {
            Ok(summary) => summary,
            Err(e) => {
                tracing::warn!(schedule = %name, tick = %tick, error = %e, "schedule run failed");
                self.count_schedule_run(&name, "failed");
                return self.retry_or_fail(job, e);
            }
        };
        let run = crate::store::ScheduleRun {
            name: name.clone(),
            tick,
            after: r.after,
            node: self.node.clone(),
            started,
            finished: self.clock.now(),
            outcome: summary.clone(),
        };
        let fence = crate::store::JobFence {
            job_id: job.id,
            owner: self.node.clone(),
            attempts: job.attempts,
        };
        match self.store.record_schedule_run(&run, &fence).await {
            Ok(true) => {
                tracing::info!(schedule = %name, tick = %tick, %summary, "schedule ran");
                // Completed with its run record (fenced): counted here, not by `finish`.
                self.count_schedule_run(&name, "ok");
                count_attempt(&job.kind, "done");
                Outcome::Done
            }
            Ok(false) => {
                tracing::info!(schedule = %name, tick = %tick, "schedule run was taken over by another node; not recorded here");
                Outcome::Done
            }
            Err(e) => self.retry_or_fail(job, e.to_string()),
        }
    }

    /// Claims every due job and runs it here, until none is due. For tests with a manual
    /// clock, `partnerflow bench`, and one-shot operation. Returns how many attempts ran.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        loop {
            let now = self.clock.now();
            let jobs = self
                .store
                .claim(
                    &self.node,
                    now,
                    now.plus(self.cfg().lease),
                    self.cfg().batch,
                )
                .await?;
            if jobs.is_empty() {
                return Ok(n);
            }
            self.claimed(&jobs);
            let outcomes = futures::future::join_all(jobs.into_iter().map(|j| async move {
                let o = self.execute(&j).await;
                (j, o)
            }))
            .await;
            n += outcomes.len();
            let committed = self
                .store
                .finish(&self.node, &outcomes, self.clock.now())
                .await?;
            count_outcomes(&outcomes, &committed);
        }
    }

    /// `partnerflow_schedule_runs_total`: a configured schedule by name, any other as `other`.
    fn count_schedule_run(&self, name: &str, outcome: &'static str) {
        let schedule = self
            .schedules
            .iter()
            .map(|d| d.name)
            .find(|n| *n == name)
            .unwrap_or(metric_names::OTHER);
        metrics::counter!(metric_names::SCHEDULE_RUNS, "schedule" => schedule, "outcome" => outcome)
            .increment(1);
    }

    /// One pass over the schedules: fires what is due. Returns when to look again.
    pub async fn tick_schedules(&self) -> Timestamp {
        let now = self.clock.now();
        let mut next = now.plus(Span(1000));
        for def in &self.schedules {
            match self.tick_one(def, now).await {
                Ok(Some(t)) => next = next.min(t),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(schedule = def.name, error = %e, "schedule check failed; will retry")
                }
            }
        }
        next.max(now.plus(Span(20)))
    }

    async fn tick_one(
        &self,
        def: &ScheduleDef,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let last = self.store.schedule_last_tick(def.name).await?;
        match schedule::plan(def, last, now) {
            Plan::Wait(t) => Ok(Some(t)),
            Plan::Baseline(t) => {
                self.store
                    .advance_schedule(def.name, None, t, None, now)
                    .await?;
                Ok(None)
            }
            Plan::Advance { tick, fire, missed } => {
                let run = fire.then(|| NewJob {
                    key: format!("schedule:{}:{}", def.name, tick.0),
                    subject: format!("schedule:{}", def.name),
                    payload: JobPayload::Schedule(ScheduleJob {
                        schedule: def.name.to_string(),
                        tick,
                        after: last,
                    }),
                    run_at: now,
                    max_attempts: self.cfg().max_attempts,
                    replace: false,
                });
                let out = self
                    .store
                    .advance_schedule(def.name, last, tick, run, now)
                    .await?;
                if matches!(out, AdvanceOutcome::Fired | AdvanceOutcome::Advanced) {
                    metrics::counter!(metric_names::SCHEDULE_MISSED, "schedule" => def.name)
                        .increment(missed);
                }
                match out {
                    AdvanceOutcome::Fired => {
                        metrics::histogram!(metric_names::SCHEDULE_LATENESS, "schedule" => def.name)
                            .record((now.0 - tick.0).max(0) as f64 / 1000.0);
                        metrics::counter!(metric_names::JOBS_ENQUEUED, "kind" => "schedule")
                            .increment(1);
                        tracing::info!(schedule = def.name, tick = %tick, missed, node = %self.node, "schedule tick fired")
                    }
                    AdvanceOutcome::Paused => {
                        tracing::debug!(schedule = def.name, tick = %tick, "tick waits: the schedule is paused")
                    }
                    AdvanceOutcome::SkippedBusy => {
                        tracing::debug!(schedule = def.name, tick = %tick, "tick waits: the previous run is unfinished")
                    }
                    AdvanceOutcome::Advanced if missed > 0 => {
                        tracing::info!(schedule = def.name, tick = %tick, missed, "missed ticks skipped (catch_up = skip)")
                    }
                    _ => {}
                }
                Ok(None)
            }
        }
    }
}

/// `partnerflow_job_attempts_total`: one attempt of a job of `kind` whose outcome committed.
fn count_attempt(kind: &str, outcome: &'static str) {
    let kind = metric_names::bounded(kind, &JobPayload::KINDS);
    metrics::counter!(metric_names::JOB_ATTEMPTS, "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// Counts the outcomes `finish` committed (`committed[i]` for `outcomes[i]`); one whose job
/// was taken over, or completed in its own transaction, is not counted here.
fn count_outcomes(outcomes: &[(JobRow, Outcome)], committed: &[bool]) {
    for ((job, outcome), _) in outcomes.iter().zip(committed).filter(|(_, c)| **c) {
        let outcome = match outcome {
            Outcome::Done | Outcome::Sent { .. } => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed { .. } => "failed",
        };
        count_attempt(&job.kind, outcome);
    }
}

type Ack = (JobRow, Outcome, oneshot::Sender<()>);

/// Writes outcomes back in batches: whatever finished while the last batch committed goes
/// into the next transaction. A DB error is retried with backoff, never fatal.
async fn acknowledger(rt: Arc<AppState>, mut rx: mpsc::Receiver<Ack>) {
    let mut buf: Vec<Ack> = Vec::new();
    while let Some(first) = rx.recv().await {
        buf.push(first);
        while buf.len() < 512 {
            match rx.try_recv() {
                Ok(a) => buf.push(a),
                Err(_) => break,
            }
        }
        let outcomes: Vec<(JobRow, Outcome)> =
            buf.iter().map(|(j, o, _)| (j.clone(), o.clone())).collect();
        let mut delay = Duration::from_millis(50);
        loop {
            match rt.store.finish(&rt.node, &outcomes, rt.clock.now()).await {
                Ok(committed) => {
                    count_outcomes(&outcomes, &committed);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = outcomes.len(), "recording job outcomes failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for (_, _, done) in buf.drain(..) {
            let _ = done.send(());
        }
    }
}

#[derive(Clone)]
struct WorkerCtx {
    rt: Arc<AppState>,
    acks: mpsc::Sender<Ack>,
}

async fn handle(job: JobRow, ctx: Data<WorkerCtx>) -> Result<(), BoxDynError> {
    let rt = &ctx.rt;
    let cfg = rt.cfg();
    // Keep the lease while the job runs longer than a third of it.
    let keeper = {
        let rt = ctx.rt.clone();
        let job = job.clone();
        tokio::spawn(async move {
            let period = rt.cfg().lease.as_std() / 3;
            loop {
                tokio::time::sleep(period).await;
                let until = rt.clock.now().plus(rt.cfg().lease);
                match rt.store.extend_lease(&job, &rt.node, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job = job.id, error = %e, "lease extension failed"),
                }
            }
        })
    };
    let outcome = match tokio::time::timeout(cfg.job_timeout.as_std(), rt.execute(&job)).await {
        Ok(o) => o,
        Err(_) => rt.retry_or_fail(&job, format!("timed out after {}", cfg.job_timeout)),
    };
    keeper.abort();
    let (tx, rx) = oneshot::channel();
    if ctx.acks.send((job, outcome, tx)).await.is_ok() {
        let _ = rx.await;
    }
    Ok(())
}

/// A stream of claimed jobs that never ends and never errors: when nothing is due it waits
/// for a wake-up (local enqueue) or the poll interval; a DB error is logged and retried.
fn claim_stream(
    rt: Arc<AppState>,
    limit: usize,
) -> futures::stream::BoxStream<'static, Result<Option<Task<JobRow>>, BoxDynError>> {
    let wake = rt.store.wake_handle();
    futures::stream::unfold((rt, VecDeque::<JobRow>::new(), Duration::from_millis(50)), move |(rt, mut buf, mut err_delay)| {
        let wake = wake.clone();
        async move {
            loop {
                if let Some(job) = buf.pop_front() {
                    return Some((Ok(Some(Task::new(job))), (rt, buf, err_delay)));
                }
                let now = rt.clock.now();
                let notified = wake.notified();
                match rt.store.claim(&rt.node, now, now.plus(rt.cfg().lease), limit).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        rt.claimed(&jobs);
                        err_delay = Duration::from_millis(50);
                        buf.extend(jobs);
                        continue;
                    }
                    Ok(_) => {
                        // Work enqueued by any node wakes this at once (a local Notify, and on
                        // PostgreSQL LISTEN/NOTIFY); jobs that merely come due (timers,
                        // backoffs) are picked up within the poll interval.
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep(rt.cfg().poll_interval.as_std()) => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?err_delay, "claiming jobs failed; the worker keeps going");
                        tokio::time::sleep(err_delay).await;
                        err_delay = (err_delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    })
    .boxed()
}

/// Runs the apalis worker, the schedule ticker and the pruner until `shutdown` resolves;
/// in-flight jobs finish before it returns.
pub async fn run_workers(
    rt: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), BoxDynError> {
    let (ack_tx, ack_rx) = mpsc::channel::<Ack>(4096);
    let acker = tokio::spawn(acknowledger(rt.clone(), ack_rx));
    let side = tokio::spawn(side_tasks(rt.clone()));
    let listener = {
        let store = rt.store.clone();
        tokio::spawn(async move { store.listen_for_work().await })
    };
    let concurrency = rt.cfg().concurrency;
    let limit = rt.cfg().batch.min(concurrency);
    let ctx = WorkerCtx {
        rt: rt.clone(),
        acks: ack_tx,
    };
    let name = rt.node.clone();
    let monitor = Monitor::new()
        .shutdown_timeout(rt.cfg().job_timeout.as_std())
        .register(move |_| {
            let stream_rt = ctx.rt.clone();
            let backend = BackendBuilder::new()
                .database(stream_rt)
                .fetcher(move |rt: &mut Arc<AppState>, _: &(), _: &WorkerContext| {
                    claim_stream(rt.clone(), limit)
                })
                .sink(|_: &mut Arc<AppState>, _: &()| {
                    futures::sink::drain().sink_map_err(|e| -> BoxDynError { match e {} })
                })
                .build()
                .map_err(|e| e.to_string());
            let backend = match backend {
                Ok(b) => b,
                Err(e) => unreachable_backend(e),
            };
            WorkerBuilder::new(name.clone())
                .backend(backend)
                .concurrency(concurrency)
                .catch_panic()
                .data(ctx.clone())
                .build(handle)
        });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sender = tokio::spawn(crate::campaigns::run_sender(
        rt.clone(),
        stop_rx,
        Arc::new(crate::campaigns::SenderStats::default()),
    ));
    tracing::info!(node = %rt.node, concurrency, "workers started");
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            Ok(())
        })
        .await;
    // The campaign sender finishes what is in flight and commits it.
    let _ = tokio::time::timeout(rt.cfg().job_timeout.as_std(), sender).await;
    side.abort();
    listener.abort();
    acker.abort();
    if let Err(e) = rt.store.node_stopped(&rt.node, rt.clock.now()).await {
        tracing::warn!(error = %e, "recording this node's stop failed");
    }
    result.map_err(|e| -> BoxDynError { Box::new(e) })
}

#[allow(clippy::panic)]
fn unreachable_backend(e: String) -> ! {
    // The builder only fails when a part is missing; all are given above. Start-up only.
    panic!("building the job backend: {e}")
}

/// How often a worker writes its heartbeat (the nodes page calls one silent for 30 s gone).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Schedule ticks, pruning and the overview funnel's roll-up of days that are over, beside the
/// worker.
async fn side_tasks(rt: Arc<AppState>) {
    let mut next_prune = rt.clock.now();
    let mut next_rollup = rt.clock.now();
    let mut next_beat = std::time::Instant::now();
    loop {
        if std::time::Instant::now() >= next_beat {
            rt.beat().await;
            next_beat = std::time::Instant::now() + HEARTBEAT;
        }
        if rt.clock.now() >= next_rollup {
            match rt.store.roll_up_funnel(rt.clock.now()).await {
                Ok(0) => {}
                Ok(days) => tracing::info!(days, "overview funnel: days rolled up"),
                Err(e) => tracing::warn!(error = %e, "rolling up the overview funnel failed"),
            }
            next_rollup = rt.clock.now().plus(Span(600_000));
        }
        let next_tick = rt.tick_schedules().await;
        let now = rt.clock.now();
        if now >= next_prune {
            match rt
                .store
                .prune(now.plus(Span(-rt.cfg().prune_after.0)))
                .await
            {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned finished jobs"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
            if let Err(e) = rt.store.vacuum_jobs().await {
                tracing::warn!(error = %e, "vacuuming the job table failed");
            }
            next_prune = now.plus(rt.cfg().prune_interval);
        }
        let wait = (next_tick.0 - rt.clock.now().0).clamp(20, 1000);
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}
