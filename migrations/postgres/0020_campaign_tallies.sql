-- Counters kept where recipients change, so that no page counts a campaign's ledger (a
-- million rows took 300–800 ms to count; issue 14's bar is 100 ms).
-- Per campaign, recipient state and day the message was handed to the transport
-- (sent_day = sent_at / 86,400,000, a UTC day; -1 while not sent): how many recipients, their
-- soft bounces, how many were reminded and how many have a reminder scheduled. A campaign's
-- counts by state are the sums over its rows; the overview's funnel reads its days.
-- PostgreSQL: statement triggers append one row per statement and key (no row is updated in
-- place, so senders on many nodes never wait for each other's counter rows); the sender folds
-- a running campaign's rows into one per key (`Store::fold_campaign_tallies`). Readers use
-- SUM … GROUP BY, as on SQLite (which keeps one row per key).
CREATE TABLE campaign_tallies (
    campaign_id  TEXT NOT NULL,
    state        TEXT NOT NULL,
    sent_day     BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    soft_bounces BIGINT NOT NULL,
    reminded     BIGINT NOT NULL,
    reminders    BIGINT NOT NULL
);
CREATE INDEX campaign_tallies_campaign ON campaign_tallies (campaign_id, state, sent_day);
CREATE INDEX campaign_tallies_day ON campaign_tallies (sent_day, campaign_id, state);

INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
SELECT campaign_id, state, COALESCE(sent_at / 86400000, -1), COUNT(*), SUM(soft_bounces),
       COUNT(reminded_at), COUNT(remind_at)
  FROM campaign_recipients GROUP BY 1, 2, 3;

CREATE FUNCTION campaign_tallies_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
        SELECT campaign_id, state, COALESCE(sent_at / 86400000, -1), COUNT(*), SUM(soft_bounces),
               COUNT(reminded_at), COUNT(remind_at)
          FROM new_rows GROUP BY 1, 2, 3;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
        SELECT campaign_id, state, sent_day, SUM(n), SUM(soft_bounces), SUM(reminded), SUM(reminders)
          FROM (SELECT campaign_id, state, COALESCE(sent_at / 86400000, -1) AS sent_day, 1 AS n,
                       soft_bounces, CASE WHEN reminded_at IS NULL THEN 0 ELSE 1 END AS reminded,
                       CASE WHEN remind_at IS NULL THEN 0 ELSE 1 END AS reminders
                  FROM new_rows
                UNION ALL
                SELECT campaign_id, state, COALESCE(sent_at / 86400000, -1), -1,
                       -soft_bounces, CASE WHEN reminded_at IS NULL THEN 0 ELSE -1 END,
                       CASE WHEN remind_at IS NULL THEN 0 ELSE -1 END
                  FROM old_rows) d
         GROUP BY campaign_id, state, sent_day
        HAVING SUM(n) <> 0 OR SUM(soft_bounces) <> 0 OR SUM(reminded) <> 0 OR SUM(reminders) <> 0;
    ELSE
        INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
        SELECT campaign_id, state, COALESCE(sent_at / 86400000, -1), -COUNT(*), -SUM(soft_bounces),
               -COUNT(reminded_at), -COUNT(remind_at)
          FROM old_rows GROUP BY 1, 2, 3;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER campaign_tallies_insert AFTER INSERT ON campaign_recipients
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION campaign_tallies_count();
CREATE TRIGGER campaign_tallies_update AFTER UPDATE ON campaign_recipients
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION campaign_tallies_count();
CREATE TRIGGER campaign_tallies_delete AFTER DELETE ON campaign_recipients
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION campaign_tallies_count();

-- The overview's funnel for days that are over, per UTC day, offer kind and location: rolled
-- up once (`Store::roll_up_funnel`, an hour after the day ended; every node may try, the
-- first wins), so a 90-day funnel sums a few thousand rows instead of reading a quarter's
-- ledger. `funnel_rollup.upto`: the first day not rolled up yet. Campaign messages are not
-- here: they are counted live in campaign_tallies.
CREATE TABLE funnel_days (
    day         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    location_id TEXT NOT NULL,
    sent        BIGINT NOT NULL,
    bounced     BIGINT NOT NULL,
    opened      BIGINT NOT NULL,
    accepted    BIGINT NOT NULL,
    completed   BIGINT NOT NULL,
    PRIMARY KEY (day, kind, location_id)
);
CREATE TABLE funnel_rollup (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto BIGINT
);
INSERT INTO funnel_rollup (id, upto) VALUES (1, NULL);
