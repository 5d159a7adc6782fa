-- An acceptance counts only once someone showed control of a mailbox at the customer's
-- domain (issue: pre-empting a customer's domain). Until its confirmation link is used it is
-- `unconfirmed` and blocks nobody: many unconfirmed acceptances of one (offer, domain) may
-- exist, and at most one confirmed one. `relationship_id` is set when it is confirmed.
ALTER TABLE acceptances ADD COLUMN confirmed_at BIGINT;
-- Acceptances recorded before confirmation existed were counted: they stay confirmed.
UPDATE acceptances SET confirmed_at = accepted_at;
ALTER TABLE acceptances DROP CONSTRAINT acceptances_offer_id_domain_key;
CREATE UNIQUE INDEX acceptances_confirmed ON acceptances (offer_id, domain) WHERE confirmed_at IS NOT NULL;
CREATE INDEX acceptances_offer_domain ON acceptances (offer_id, domain);
CREATE INDEX acceptances_relationship ON acceptances (relationship_id);

-- Fixed-window counters of the public pages' rate limits (key: `client:<addr>`,
-- `recipient:<email>`, `domain:<domain>`, ...), shared by every node using this database.
CREATE TABLE rate_counters (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);
