-- Campaigns: one offer sent to a list of recipients, with a per-recipient ledger, and the
-- addresses that must not be mailed (unsubscribed, hard-bounced).

CREATE TABLE campaigns (
    id                   TEXT PRIMARY KEY,
    offer_id             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    template             TEXT NOT NULL,
    state                TEXT NOT NULL,
    pause_reason         TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_by           TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    finished_at          INTEGER,
    -- Optional overall cap for this campaign, messages per minute.
    max_per_minute       INTEGER,
    -- Follow-up: a reminder this many ms after the invitation to those who have not accepted.
    reminder_after       INTEGER,
    reminder_template    TEXT
);
CREATE INDEX campaigns_state ON campaigns (state);

-- One row per recipient; `seq` is the recipient's line in the recipients file (or its place in
-- an API list). The Message-ID is fixed when the row is written. state: pending | sending |
-- sent | failed | bounced | suppressed | accepted | expired.
CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    domain      TEXT NOT NULL,
    name        TEXT,
    company     TEXT,
    locale      TEXT NOT NULL,
    extra       TEXT,
    state       TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    reply       TEXT,
    error       TEXT,
    sent_at     INTEGER,
    -- 0: the invitation; 1: the reminder (pending/sending/sent again, own Message-ID).
    phase       INTEGER NOT NULL DEFAULT 0,
    -- When the reminder is due (set when the invitation is sent, if the campaign has one).
    remind_at   INTEGER,
    soft_bounces INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, seq),
    UNIQUE (campaign_id, email_key)
);
CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, due_at) WHERE state = 'pending';
CREATE INDEX campaign_recipients_leased ON campaign_recipients (lease_until) WHERE state = 'sending';
CREATE INDEX campaign_recipients_message ON campaign_recipients (message_id);
CREATE INDEX campaign_recipients_email ON campaign_recipients (email_key);
CREATE INDEX campaign_recipients_remind ON campaign_recipients (campaign_id, remind_at) WHERE remind_at IS NOT NULL;

CREATE TABLE suppressions (
    email_key  TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Token buckets of the rate limits (key: `transport`, `domain:<domain>`, `campaign:<id>`), kept
-- here so that limits hold across restarts and across workers sharing the database.
CREATE TABLE rate_buckets (
    key    TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at     INTEGER NOT NULL
);
