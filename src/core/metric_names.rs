//! The Prometheus metrics (`GET /metrics`): their names, the values their labels may take and
//! the latency buckets, in one place, so the code that records them, the scrape and the README
//! agree. Every label is bounded: a value outside its known set is recorded as `other`, and no
//! label ever carries an email address, a code, an Offer ID or an instance id.

/// Counter: HTTP requests by `method`, `route` (the route template, e.g.
/// `/api/v1/offers/{offer_id}`, or `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "partnerflow_http_requests_total";
/// Histogram: HTTP request latency in seconds by `method` and `route`.
pub const HTTP_DURATION: &str = "partnerflow_http_request_duration_seconds";
/// Counter: job attempts whose outcome was committed, by `kind` and `outcome` (`done`,
/// `retry`, `failed`).
pub const JOB_ATTEMPTS: &str = "partnerflow_job_attempts_total";
/// Counter: deliveries through `email::Mailer::deliver` by `template`, `transport` (`smtp`,
/// `file`) and `outcome` (`sent`, `retry`: a transient error, `failed`: a permanent one).
pub const EMAILS: &str = "partnerflow_emails_total";
/// Counter: schedule runs by `schedule` and `outcome` (`ok`, `failed`).
pub const SCHEDULE_RUNS: &str = "partnerflow_schedule_runs_total";

/// Gauge, read from the database at scrape time: jobs by `state` and `kind`.
pub const JOBS: &str = "partnerflow_jobs";
/// Gauge, at scrape time: the age in seconds of the oldest job that is due and not yet claimed
/// (0 when none is due): how far the workers are behind.
pub const JOB_LAG: &str = "partnerflow_job_lag_seconds";
/// Gauge, at scrape time: campaigns by `state` (a `paused` one waits for a person).
pub const CAMPAIGNS: &str = "partnerflow_campaigns";
/// Gauge, at scrape time: campaign recipients by `state`, over every campaign (from the
/// trigger-kept tallies, never the ledger).
pub const CAMPAIGN_RECIPIENTS: &str = "partnerflow_campaign_recipients";
/// Gauge, at scrape time: 1 when the database answered the scrape's queries, else 0 (the
/// gauges read from it are then left out).
pub const DATABASE_UP: &str = "partnerflow_database_up";

/// Counter: jobs written to the queue by `kind`, counted after their transaction committed
/// (a transition's emails and timers, schedule runs).
pub const JOBS_ENQUEUED: &str = "partnerflow_jobs_enqueued_total";
/// Histogram: how long one attempt of a job of `kind` ran, in seconds.
pub const JOB_DURATION: &str = "partnerflow_job_duration_seconds";
/// Counter: jobs of `kind` this process took over from a node whose lease ran out.
pub const JOB_TAKEOVERS: &str = "partnerflow_job_takeovers_total";
/// Histogram: from handing a message to the transport to its answer (the SMTP server's reply
/// to the end of DATA), in seconds, by `transport` and `outcome` (`sent`, `retry`, `failed`).
pub const SMTP_REPLY: &str = "partnerflow_smtp_reply_seconds";
/// Counter: campaign pauses by `reason` (`manual`: a person; `failures`: too many delivery
/// failures in a row; `render`: its template cannot be rendered).
pub const CAMPAIGN_PAUSES: &str = "partnerflow_campaign_pauses_total";
/// Counter: ticks a schedule did not fire on time, by `schedule` (caught up in one run, or
/// skipped, as its policy says).
pub const SCHEDULE_MISSED: &str = "partnerflow_schedule_missed_ticks_total";
/// Histogram: how late a schedule's tick fired (from the tick to the run being enqueued), in
/// seconds, by `schedule`.
pub const SCHEDULE_LATENESS: &str = "partnerflow_schedule_lateness_seconds";
/// Counter: lifecycle transitions by `workflow` and `outcome` (`committed`; `conflict`: the
/// instance changed meanwhile, nothing written).
pub const TRANSITIONS: &str = "partnerflow_transitions_total";
/// Gauge, at scrape time: this process's database connections by `state` (`busy`: in a transaction or query, `idle`).
pub const DB_CONNECTIONS: &str = "partnerflow_db_connections";
/// Histogram: how long a write transaction waited for its connection (and, on SQLite, the
/// write lock), in seconds.
pub const DB_ACQUIRE: &str = "partnerflow_db_acquire_seconds";
/// Counter: requests refused by a rate limit, by `limiter` (`client`: the public pages per
/// client; `confirm_to`, `confirm_domain`: confirmation emails per address and domain;
/// `signin_client`, `signin_address`: portal sign-in links).
pub const RATE_LIMITED: &str = "partnerflow_rate_limited_total";
/// Gauge, at scrape time: worker processes that reported in the last minute and did not stop.
pub const NODES: &str = "partnerflow_nodes";
/// Counter: campaign recipients whose outcome the sender committed, by `outcome` (`sent`,
/// `retry`, `failed`; `suppressed`: not sent, the address unsubscribed or bounced hard
/// meanwhile): the campaigns' send rate.
pub const CAMPAIGN_EMAILS: &str = "partnerflow_campaign_emails_total";
/// Counter: bounce reports received, by `kind` (`hard`, `soft`) and `matched` (`campaign`,
/// `email`: a lifecycle email, `none`: matched nothing we sent, not acted on).
pub const BOUNCES: &str = "partnerflow_bounces_total";

/// Every metric name, for the README and the tests.
pub const ALL: [&str; 24] = [
    HTTP_REQUESTS,
    HTTP_DURATION,
    JOB_ATTEMPTS,
    EMAILS,
    SCHEDULE_RUNS,
    JOBS,
    JOB_LAG,
    CAMPAIGNS,
    CAMPAIGN_RECIPIENTS,
    DATABASE_UP,
    JOBS_ENQUEUED,
    JOB_DURATION,
    JOB_TAKEOVERS,
    SMTP_REPLY,
    CAMPAIGN_PAUSES,
    SCHEDULE_MISSED,
    SCHEDULE_LATENESS,
    TRANSITIONS,
    DB_CONNECTIONS,
    DB_ACQUIRE,
    RATE_LIMITED,
    NODES,
    CAMPAIGN_EMAILS,
    BOUNCES,
];

/// The rate limiters by the prefix of their key (`prefix:…`) and their label.
pub const LIMITERS: [(&str, &str); 5] = [
    ("client", "client"),
    ("confirm-to", "confirm_to"),
    ("confirm-domain", "confirm_domain"),
    ("portal-client", "signin_client"),
    ("portal-address", "signin_address"),
];

/// The label of the limiter whose key is `key` (never any of the key's value).
pub fn limiter(key: &str) -> &'static str {
    let prefix = key.split(':').next().unwrap_or_default();
    LIMITERS
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, l)| *l)
        .unwrap_or(OTHER)
}

/// Campaign pause reasons as labelled.
pub const PAUSE_REASONS: [&str; 3] = ["manual", "failures", "render"];

/// Upper bounds (seconds) of the job run time and SMTP reply histograms' buckets.
pub const WORK_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// Upper bounds (seconds) of the schedule lateness and database acquire histograms' buckets.
pub const WAIT_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0];

/// Every histogram with its buckets.
pub const HISTOGRAMS: [(&str, &[f64]); 5] = [
    (HTTP_DURATION, &HTTP_BUCKETS),
    (JOB_DURATION, &WORK_BUCKETS),
    (SMTP_REPLY, &WORK_BUCKETS),
    (SCHEDULE_LATENESS, &WAIT_BUCKETS),
    (DB_ACQUIRE, &WAIT_BUCKETS),
];

/// What a label value outside its known set is recorded as.
pub const OTHER: &str = "other";

/// The HTTP methods counted by name (any other is `other`).
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Upper bounds (seconds) of the request latency histogram's buckets.
pub const HTTP_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// `value` if it is one of `known`, else [`OTHER`]: a label never takes a value from outside
/// a known, small set.
pub fn bounded(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prometheus_names_of_ours() {
        for n in ALL {
            assert!(n.starts_with("partnerflow_"), "{n}");
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
        }
        let mut sorted = ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len(), "a name twice");
    }

    #[test]
    fn labels_outside_their_set_are_other() {
        assert_eq!(bounded("email", &["email", "timer"]), "email");
        assert_eq!(bounded("kunde@contoso.example", &["email", "timer"]), OTHER);
        assert_eq!(bounded("", &["email"]), OTHER);
        assert!(HTTP_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(WORK_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(WAIT_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_limiter_is_named_by_its_key_prefix_only() {
        assert_eq!(limiter("client:203.0.113.9"), "client");
        assert_eq!(limiter("confirm-to:kunde@contoso.example"), "confirm_to");
        assert_eq!(limiter("portal-address:a@b.example"), "signin_address");
        assert_eq!(limiter("kunde@contoso.example"), OTHER);
        assert_eq!(limiter(""), OTHER);
    }
}
