-- What operators see of jobs and workers (issue 15).
--
-- Each failed attempt of a job (a transient error that will be retried, a permanent failure, a
-- lease that ran out and was taken over), written with the attempt's outcome: the job's page
-- lists them. Kept as long as finished jobs (the pruner).
CREATE TABLE job_errors (
    job_id  INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    node    TEXT NOT NULL,
    error   TEXT NOT NULL
);
CREATE INDEX job_errors_job ON job_errors (job_id, at);
CREATE INDEX job_errors_at ON job_errors (at);

-- The node whose lease ran out when another node claimed the job (set by the claim, from the
-- old lease owner; NULL for a job claimed while waiting).
ALTER TABLE jobs ADD COLUMN taken_over_from TEXT;

-- Worker processes: each writes its row when it starts and refreshes it every few seconds
-- while it runs (`seen_at`, `last_claim`: when it last claimed a job); `stopped_at` when it shut
-- down cleanly. Rows not seen for as long as finished jobs are kept are pruned.
CREATE TABLE nodes (
    node       TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    version    TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    last_claim INTEGER,
    stopped_at INTEGER
);
