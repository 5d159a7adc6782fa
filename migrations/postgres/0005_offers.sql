-- Offers and what hangs off them: invitations (one per recipient), acceptances (one per
-- customer domain), reported sign-ups, API tokens, resellers and their customers.
-- The lifecycle state of each lives in `instances` (instance_id); these rows hold what is
-- searched and shown. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE offers (
    offer_id        TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    location_id     TEXT NOT NULL,
    country         TEXT NOT NULL,
    products        TEXT NOT NULL,
    delegated_admin TEXT,
    key_id          TEXT NOT NULL,
    link            TEXT NOT NULL,
    message         TEXT,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX offers_created ON offers (created_at);

CREATE TABLE invitations (
    instance_id TEXT PRIMARY KEY,
    offer_id    TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    locale      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX invitations_offer ON invitations (offer_id, lower(recipient));

-- One acceptance per offer and customer domain: the same customer accepting twice is one.
CREATE TABLE acceptances (
    instance_id     TEXT PRIMARY KEY,
    offer_id        TEXT NOT NULL,
    organisation    TEXT NOT NULL,
    domain          TEXT NOT NULL,
    admin_email     TEXT NOT NULL,
    products        TEXT NOT NULL,
    delegated_admin TEXT,
    relationship_id TEXT,
    accepted_at     BIGINT NOT NULL,
    UNIQUE (offer_id, domain)
);
CREATE INDEX acceptances_domain ON acceptances (domain);
CREATE INDEX acceptances_admin_email ON acceptances (lower(admin_email));

-- Completed sign-ups reported by the sign-up system; matched by the reconcile schedule.
CREATE TABLE signups (
    id            BIGSERIAL PRIMARY KEY,
    advisor_code  TEXT NOT NULL,
    offer_id      TEXT,
    domain        TEXT NOT NULL,
    completed_at  BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    source        TEXT NOT NULL,
    acceptance_id TEXT,
    matched_at    BIGINT,
    UNIQUE (advisor_code, domain)
);
CREATE INDEX signups_unmatched ON signups (received_at) WHERE acceptance_id IS NULL;
CREATE INDEX signups_offer ON signups (offer_id);
CREATE INDEX signups_acceptance ON signups (acceptance_id);

-- Partner API tokens: only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

-- Reseller partnerships (the lifecycle is the reseller_partnership instance) and the
-- customers associated with a reseller; removing a partnership keeps these rows.
CREATE TABLE resellers (
    mpn_id      TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE reseller_customers (
    mpn_id          TEXT NOT NULL,
    domain          TEXT NOT NULL,
    acceptance_id   TEXT,
    support_contact BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (mpn_id, domain)
);
CREATE INDEX reseller_customers_domain ON reseller_customers (domain);
