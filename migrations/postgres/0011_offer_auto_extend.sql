-- Auto-extension of the delegated-admin relationship, chosen by the partner per offer: only
-- for limited administration (never for full, which includes the global-admin role).
ALTER TABLE offers ADD COLUMN auto_extend BIGINT NOT NULL DEFAULT 0;
