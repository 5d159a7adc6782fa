-- (PostgreSQL only: autovacuum settings for the job table. SQLite needs none; kept so both
-- stores have the same migration numbers.)
SELECT 1;
