-- An acceptance counts only once someone showed control of a mailbox at the customer's
-- domain (issue: pre-empting a customer's domain). Until its confirmation link is used it is
-- `unconfirmed` and blocks nobody: many unconfirmed acceptances of one (offer, domain) may
-- exist, and at most one confirmed one. `relationship_id` is set when it is confirmed.
CREATE TABLE acceptances_new (
    instance_id     TEXT PRIMARY KEY,
    offer_id        TEXT NOT NULL,
    organisation    TEXT NOT NULL,
    domain          TEXT NOT NULL,
    admin_email     TEXT NOT NULL,
    products        TEXT NOT NULL,
    delegated_admin TEXT,
    relationship_id TEXT,
    accepted_at     INTEGER NOT NULL,
    confirmed_at    INTEGER
);
-- Acceptances recorded before confirmation existed were counted: they stay confirmed.
INSERT INTO acceptances_new (instance_id, offer_id, organisation, domain, admin_email, products, delegated_admin, relationship_id, accepted_at, confirmed_at)
    SELECT instance_id, offer_id, organisation, domain, admin_email, products, delegated_admin, relationship_id, accepted_at, accepted_at FROM acceptances;
DROP TABLE acceptances;
ALTER TABLE acceptances_new RENAME TO acceptances;
CREATE UNIQUE INDEX acceptances_confirmed ON acceptances (offer_id, domain) WHERE confirmed_at IS NOT NULL;
CREATE INDEX acceptances_offer_domain ON acceptances (offer_id, domain);
CREATE INDEX acceptances_domain ON acceptances (domain);
CREATE INDEX acceptances_admin_email ON acceptances (lower(admin_email));
CREATE INDEX acceptances_relationship ON acceptances (relationship_id);

-- Fixed-window counters of the public pages' rate limits (key: `client:<addr>`,
-- `recipient:<email>`, `domain:<domain>`, ...), shared by every node using this database.
CREATE TABLE rate_counters (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);
