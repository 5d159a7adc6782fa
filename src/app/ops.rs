//! What operators see of a running node: the Prometheus metrics (`GET /metrics`) and readiness
//! (`GET /readyz`). Names and labels are `core::metric_names`'.
//!
//! The recorder behind the `metrics` facade is process-wide, installed once ([`install`], from
//! `build`): the counters and the latency histogram, recorded where the outcomes are known
//! (`email::Mailer::deliver`, the job outcomes `jobs` commits, the router's layer in `web`), are
//! this process's since it started. The gauges are read from the database at each scrape
//! ([`AppState::metrics_text`]) into a recorder of that scrape's own, so they describe the
//! database whichever node is scraped, and two apps in one process (the tests) never mix theirs.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use crate::core::campaign::{CampaignState, RecipientState};
use crate::core::domain::Span;
use crate::core::job::{JobPayload, JobState};
use crate::core::metric_names as names;

/// How often the recorder's histograms are drained into their buckets between scrapes (so
/// samples do not pile up when nobody scrapes).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle. The first call (at start, from `build`) installs the
/// recorder, describes the counters and starts its upkeep thread; later calls (tests build
/// many apps in one process) return the same handle.
pub fn install() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let builder = names::HISTOGRAMS.iter().try_fold(
                PrometheusBuilder::new(),
                |b, (name, buckets)| {
                    b.set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                },
            );
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: latency buckets refused; latencies are summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => describe_counters(),
                Err(e) => tracing::warn!(
                    error = %e,
                    "metrics: another recorder is installed; /metrics shows only what is read from the database"
                ),
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics: no upkeep thread; histograms are drained at scrapes only");
            }
            handle
        })
        .clone()
}

fn describe_counters() {
    metrics::describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests by method, route template and status"
    );
    metrics::describe_histogram!(
        names::HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency in seconds by method and route template"
    );
    metrics::describe_counter!(
        names::JOB_ATTEMPTS,
        "Job attempts whose outcome was committed, by kind and outcome (done, retry, failed)"
    );
    metrics::describe_counter!(
        names::EMAILS,
        "Email deliveries by template and outcome (sent, retry, failed)"
    );
    metrics::describe_counter!(
        names::SCHEDULE_RUNS,
        "Schedule runs by schedule and outcome (ok, failed)"
    );
    metrics::describe_counter!(
        names::JOBS_ENQUEUED,
        "Jobs written to the queue by kind (after their transaction committed)"
    );
    metrics::describe_histogram!(
        names::JOB_DURATION,
        metrics::Unit::Seconds,
        "Run time of one job attempt in seconds by kind"
    );
    metrics::describe_counter!(
        names::JOB_TAKEOVERS,
        "Jobs taken over from a node whose lease ran out, by kind"
    );
    metrics::describe_histogram!(
        names::SMTP_REPLY,
        metrics::Unit::Seconds,
        "Seconds from handing a message to the transport to its reply, by outcome"
    );
    metrics::describe_counter!(
        names::CAMPAIGN_PAUSES,
        "Campaign pauses by reason (manual, failures)"
    );
    metrics::describe_counter!(
        names::SCHEDULE_MISSED,
        "Schedule ticks not fired on time (caught up or skipped), by schedule"
    );
    metrics::describe_histogram!(
        names::SCHEDULE_LATENESS,
        metrics::Unit::Seconds,
        "Seconds from a schedule's tick to its run being enqueued, by schedule"
    );
    metrics::describe_counter!(
        names::TRANSITIONS,
        "Lifecycle transitions by workflow and outcome (committed, conflict)"
    );
    metrics::describe_histogram!(
        names::DB_ACQUIRE,
        metrics::Unit::Seconds,
        "Seconds a write transaction waited for its database connection"
    );
    metrics::describe_counter!(
        names::RATE_LIMITED,
        "Requests refused by a rate limit, by limiter"
    );
    metrics::describe_counter!(
        names::CAMPAIGN_EMAILS,
        "Campaign messages whose outcome was committed, by outcome (sent, retry, failed)"
    );
    metrics::describe_counter!(
        names::BOUNCES,
        "Bounce reports by kind (hard, soft) and what they matched (campaign, email, none)"
    );
}

/// The gauges of one scrape, read from the database.
struct Gauges {
    jobs: BTreeMap<(&'static str, &'static str), i64>,
    lag_seconds: f64,
    campaigns: BTreeMap<&'static str, i64>,
    recipients: BTreeMap<&'static str, i64>,
    /// This process's pool: (in use, idle).
    connections: (u32, u32),
    nodes: i64,
}

impl AppState {
    /// `GET /metrics`: the Prometheus text exposition of this process's counters and of the
    /// gauges read from the database now (one GROUP BY over jobs, one index lookup for the
    /// lag, two small GROUP BYs for campaigns). When the database does not answer, the counters
    /// and `partnerflow_database_up 0`.
    pub async fn metrics_text(&self) -> String {
        let gauges = match self.read_gauges().await {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database did not answer; gauges left out");
                None
            }
        };
        let scrape = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&scrape, || set_gauges(gauges.as_ref()));
        let mut text = self.metrics.render();
        text.push_str(&scrape.handle().render());
        text
    }

    async fn read_gauges(&self) -> Result<Gauges, crate::store::StoreError> {
        let now = self.clock.now();
        let jobs = self.store.job_gauges(now).await?;
        let campaigns = self.store.campaign_gauges().await?;
        // Every known (state, kind) is reported, 0 when there is none; anything else adds to
        // `other`.
        let mut by_state_kind = BTreeMap::new();
        for state in JobState::ALL {
            for kind in JobPayload::KINDS {
                by_state_kind.insert((state.as_str(), kind), 0);
            }
        }
        for (state, kind, n) in &jobs.by_state_kind {
            let key = (
                JobState::parse(state).map_or(names::OTHER, JobState::as_str),
                names::bounded(kind, &JobPayload::KINDS),
            );
            *by_state_kind.entry(key).or_insert(0) += n;
        }
        let lag_ms = jobs.oldest_due.map_or(0, |t| (now.0 - t.0).max(0));
        let mut by_campaign_state: BTreeMap<&'static str, i64> =
            CampaignState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (state, n) in &campaigns.campaigns {
            *by_campaign_state.entry(state.as_str()).or_insert(0) += n;
        }
        let mut by_recipient_state: BTreeMap<&'static str, i64> = RecipientState::ALL
            .iter()
            .map(|s| (s.as_str(), 0))
            .collect();
        for (state, n) in &campaigns.recipients {
            *by_recipient_state.entry(state.as_str()).or_insert(0) += n;
        }
        let nodes = self.store.live_nodes(now.plus(Span(-60_000))).await?;
        let (size, idle) = self.store.pool_connections();
        Ok(Gauges {
            connections: (size.saturating_sub(idle), idle),
            nodes,
            jobs: by_state_kind,
            lag_seconds: lag_ms as f64 / 1000.0,
            campaigns: by_campaign_state,
            recipients: by_recipient_state,
        })
    }

    /// `GET /readyz`: Ok (the schema version) when the database answers and the newest
    /// migration applied to it is the newest this build has; else why not, in a few words.
    pub async fn readiness(&self) -> Result<i64, String> {
        let expected = self.store.expected_schema_version();
        match self.store.applied_schema_version().await {
            Ok(Some(v)) if v == expected => Ok(v),
            Ok(Some(v)) if v < expected => Err(format!(
                "migrations pending: the database is at {v}, this build needs {expected} (partnerflow migrate)"
            )),
            Ok(Some(v)) => Err(format!(
                "the database is at migration {v}, newer than this build ({expected})"
            )),
            Ok(None) => Err("no migration applied (partnerflow migrate)".into()),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the database does not answer");
                Err("the database does not answer".into())
            }
        }
    }
}

/// Sets the scrape's gauges (in the recorder of [`metrics::with_local_recorder`]).
fn set_gauges(g: Option<&Gauges>) {
    metrics::describe_gauge!(
        names::DATABASE_UP,
        "1 when the database answered this scrape's queries, else 0"
    );
    metrics::gauge!(names::DATABASE_UP).set(if g.is_some() { 1.0 } else { 0.0 });
    let Some(g) = g else { return };
    metrics::describe_gauge!(names::JOBS, "Jobs in the database by state and kind");
    for ((state, kind), n) in &g.jobs {
        metrics::gauge!(names::JOBS, "state" => *state, "kind" => *kind).set(*n as f64);
    }
    metrics::describe_gauge!(
        names::JOB_LAG,
        metrics::Unit::Seconds,
        "Age in seconds of the oldest job that is due and not yet claimed (0: none)"
    );
    metrics::gauge!(names::JOB_LAG).set(g.lag_seconds);
    metrics::describe_gauge!(names::CAMPAIGNS, "Campaigns by state");
    for (state, n) in &g.campaigns {
        metrics::gauge!(names::CAMPAIGNS, "state" => *state).set(*n as f64);
    }
    metrics::describe_gauge!(
        names::CAMPAIGN_RECIPIENTS,
        "Campaign recipients by state, over every campaign"
    );
    for (state, n) in &g.recipients {
        metrics::gauge!(names::CAMPAIGN_RECIPIENTS, "state" => *state).set(*n as f64);
    }
    metrics::describe_gauge!(
        names::DB_CONNECTIONS,
        "This process's database connections by state (busy, idle)"
    );
    metrics::gauge!(names::DB_CONNECTIONS, "state" => "busy").set(g.connections.0 as f64);
    metrics::gauge!(names::DB_CONNECTIONS, "state" => "idle").set(g.connections.1 as f64);
    metrics::describe_gauge!(
        names::NODES,
        "Worker processes that reported in the last minute and did not stop"
    );
    metrics::gauge!(names::NODES).set(g.nodes as f64);
}
