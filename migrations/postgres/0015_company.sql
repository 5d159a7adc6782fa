-- The partner's identity (issue 14, the portal's company page): one row, written by the
-- portal's administrators. Until the first edit there is no row and the configuration's
-- `[partner]` values stand (the configuration is only the first value). `logo_version`
-- changes with every logo upload or removal (nodes reload the logo when it does).
CREATE TABLE company (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    name         TEXT NOT NULL,
    legal_name   TEXT NOT NULL,
    email        TEXT NOT NULL,
    phone        TEXT NOT NULL,
    website      TEXT NOT NULL,
    logo_type    TEXT,
    logo         BYTEA,
    logo_version BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT NOT NULL
);
