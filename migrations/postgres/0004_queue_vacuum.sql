-- The job table is a queue: every job's row is rewritten when it is claimed and when it
-- finishes, leaving dead index entries that claims must step over until VACUUM removes them.
-- Vacuum it after 2 % of its rows changed (the default, 20 %, lets a big table bloat).
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
