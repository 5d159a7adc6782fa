-- Campaigns: one offer sent to a list of recipients, with a per-recipient ledger, and the
-- addresses that must not be mailed (unsubscribed, hard-bounced).

CREATE TABLE campaigns (
    id                   TEXT PRIMARY KEY,
    offer_id             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    template             TEXT NOT NULL,
    state                TEXT NOT NULL,
    pause_reason         TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    created_by           TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    finished_at          BIGINT,
    -- Optional overall cap for this campaign, messages per minute.
    max_per_minute       BIGINT,
    -- Follow-up: a reminder this many ms after the invitation to those who have not accepted.
    reminder_after       BIGINT,
    reminder_template    TEXT
);
CREATE INDEX campaigns_state ON campaigns (state);

-- One row per recipient; `seq` is the recipient's line in the recipients file (or its place in
-- an API list). The Message-ID is fixed when the row is written. state: pending | sending |
-- sent | failed | bounced | suppressed | accepted | expired.
CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    domain      TEXT NOT NULL,
    name        TEXT,
    company     TEXT,
    locale      TEXT NOT NULL,
    extra       TEXT,
    state       TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    due_at      BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    reply       TEXT,
    error       TEXT,
    sent_at     BIGINT,
    -- 0: the invitation; 1: the reminder (pending/sending/sent again, own Message-ID).
    phase       BIGINT NOT NULL DEFAULT 0,
    -- When the reminder is due (set when the invitation is sent, if the campaign has one).
    remind_at   BIGINT,
    soft_bounces BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL,
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
    created_at BIGINT NOT NULL
);

-- Token buckets of the rate limits (key: `transport`, `domain:<domain>`, `campaign:<id>`), kept
-- here so that limits hold across restarts and across workers sharing the database.
CREATE TABLE rate_buckets (
    key    TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at     BIGINT NOT NULL
);
