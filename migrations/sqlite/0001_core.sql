-- Core tables: workflow instances, their history, the job store, the email ledger,
-- schedules and partner locations. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    workflow   TEXT NOT NULL,
    state      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL,
    locale     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    final_at   INTEGER
);
CREATE INDEX instances_workflow_state ON instances (workflow, state);

-- Append-only: one row per transition, seq = the instance's version after it.
CREATE TABLE history (
    instance_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    event       TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

-- The job store. state: scheduled | running | done | failed | cancelled.
-- `key` is the job's identity, fixed before it first runs (emails: instance/seq/effect;
-- timers: instance/name; schedule runs: name/tick), so enqueueing is idempotent.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
-- Partial indexes keep claiming independent of how many finished rows there are.
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'cancelled');
CREATE INDEX jobs_failed ON jobs (updated_at) WHERE state = 'failed';
CREATE INDEX jobs_subject ON jobs (subject, kind);

-- The email ledger, written in the transaction that asked for the email.
CREATE TABLE emails (
    message_id  TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    template    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    role        TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    reply       TEXT,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER
);
CREATE INDEX emails_instance ON emails (instance_id);

CREATE TABLE schedules (
    name       TEXT PRIMARY KEY,
    last_tick  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per execution of a schedule run (at-least-once: a crash may add a second row).
CREATE TABLE schedule_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    tick        INTEGER NOT NULL,
    node        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT
);
CREATE INDEX schedule_runs_name_tick ON schedule_runs (name, tick);

CREATE TABLE locations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    country       TEXT NOT NULL,
    partner_id    TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
