-- A location not seen by the latest successful sync is unavailable from then on: new offers
-- for it are refused and its open offers can no longer be accepted. A later sync that lists
-- it again makes it available again.
ALTER TABLE locations ADD COLUMN removed_at INTEGER;
