-- The partner portal (issue 14): its users, their sign-in links and sessions, and the audit
-- log of every write made through it. Secrets are never stored: a link's and a session's key
-- is the SHA-256 (hex) of the secret the browser holds.

-- Partner users. `email` is stored lower-case (one user per address); `role` is one of the
-- API's roles admin, sales_agent, viewer; `language` de or en. A deactivated user keeps
-- the row (the audit log names it) and can no longer sign in.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    language       TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    deactivated_at BIGINT
);

-- Sign-in links: single use (used_at set by a conditional UPDATE, one winner), short-lived.
CREATE TABLE portal_signin_links (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX portal_signin_links_expires ON portal_signin_links (expires_at);

-- Sessions: idle expiry from last_seen_at, absolute expiry at expires_at; revoked_at ends one.
CREATE TABLE portal_sessions (
    hash         TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    client       TEXT NOT NULL
);
CREATE INDEX portal_sessions_user ON portal_sessions (user_id);

-- Who did what, when, from where. Read newest first, a page at a time (keyset on (at, id)).
CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    user_id TEXT,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    client  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_newest ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, at, id);
