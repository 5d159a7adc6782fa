-- The portal's campaigns page lists campaigns newest first, a page at a time (keyset on
-- created_at, id).
CREATE INDEX campaigns_created ON campaigns (created_at, id);
