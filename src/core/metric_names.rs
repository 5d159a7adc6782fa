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
/// Counter: deliveries through `email::Mailer::deliver` by `template` and `outcome` (`sent`,
/// `retry`: a transient error, `failed`: a permanent one).
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

/// Every metric name, for the README and the tests.
pub const ALL: [&str; 10] = [
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
];

/// What a label value outside its known set is recorded as.
pub const OTHER: &str = "other";

/// The states a job row may be in.
pub const JOB_STATES: [&str; 5] = ["scheduled", "running", "done", "failed", "cancelled"];

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
    }
}
