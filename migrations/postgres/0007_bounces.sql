-- Every bounce (one per failed recipient of a delivery status notification) as received, and
-- what it matched. Only a bounce that matches a message we sent (its Message-ID, and that
-- message's recipient) changes a ledger row or suppresses an address; the others are kept
-- here, unmatched (`matched` NULL, `reason` says why), for `bounces list --unmatched`.
CREATE TABLE bounces (
    id          BIGSERIAL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    message_id  TEXT,
    recipient   TEXT,
    diagnostic  TEXT,
    -- What it matched: `campaign <id> line <seq>` or `email <message id>`; NULL: unmatched.
    matched     TEXT,
    -- Why it did not match (NULL when it did).
    reason      TEXT,
    suppressed  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bounces_received ON bounces (received_at);
CREATE INDEX bounces_unmatched ON bounces (received_at) WHERE matched IS NULL;
