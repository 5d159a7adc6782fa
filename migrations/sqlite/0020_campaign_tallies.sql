-- Counters kept where recipients change, so that no page counts a campaign's ledger (a
-- million rows took 300–800 ms to count on SQLite; issue 14's bar is 100 ms).
-- One row per campaign, recipient state and day the message was handed to the transport
-- (sent_day = sent_at / 86,400,000, a UTC day; -1 while not sent): how many recipients, their
-- soft bounces, how many were reminded and how many have a reminder scheduled. A campaign's
-- counts by state are the sums over its days; the overview's funnel reads its days.
-- SQLite has one writer: row triggers keep one row per key. (PostgreSQL appends one row per
-- statement and key, folded by the sender; the same SUM … GROUP BY reads both.)
CREATE TABLE campaign_tallies (
    campaign_id  TEXT NOT NULL,
    state        TEXT NOT NULL,
    sent_day     INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    soft_bounces INTEGER NOT NULL,
    reminded     INTEGER NOT NULL,
    reminders    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, state, sent_day)
) WITHOUT ROWID;
CREATE INDEX campaign_tallies_day ON campaign_tallies (sent_day, campaign_id, state);

INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
SELECT campaign_id, state, COALESCE(sent_at / 86400000, -1), COUNT(*), SUM(soft_bounces),
       COUNT(reminded_at), COUNT(remind_at)
  FROM campaign_recipients GROUP BY 1, 2, 3;

CREATE TRIGGER campaign_tallies_insert AFTER INSERT ON campaign_recipients BEGIN
    INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
    VALUES (NEW.campaign_id, NEW.state, COALESCE(NEW.sent_at / 86400000, -1), 1, NEW.soft_bounces,
            NEW.reminded_at IS NOT NULL, NEW.remind_at IS NOT NULL)
    ON CONFLICT (campaign_id, state, sent_day) DO UPDATE SET
        n = n + 1, soft_bounces = soft_bounces + excluded.soft_bounces,
        reminded = reminded + excluded.reminded, reminders = reminders + excluded.reminders;
END;

-- Only when a counted column changed (a lease or due time changes nothing counted).
CREATE TRIGGER campaign_tallies_update AFTER UPDATE OF campaign_id, state, sent_at, soft_bounces, reminded_at, remind_at ON campaign_recipients
WHEN OLD.campaign_id IS NOT NEW.campaign_id OR OLD.state IS NOT NEW.state
  OR COALESCE(OLD.sent_at / 86400000, -1) <> COALESCE(NEW.sent_at / 86400000, -1)
  OR OLD.soft_bounces <> NEW.soft_bounces
  OR (OLD.reminded_at IS NULL) <> (NEW.reminded_at IS NULL)
  OR (OLD.remind_at IS NULL) <> (NEW.remind_at IS NULL)
BEGIN
    UPDATE campaign_tallies SET
        n = n - 1, soft_bounces = soft_bounces - OLD.soft_bounces,
        reminded = reminded - (OLD.reminded_at IS NOT NULL), reminders = reminders - (OLD.remind_at IS NOT NULL)
     WHERE campaign_id = OLD.campaign_id AND state = OLD.state AND sent_day = COALESCE(OLD.sent_at / 86400000, -1);
    INSERT INTO campaign_tallies (campaign_id, state, sent_day, n, soft_bounces, reminded, reminders)
    VALUES (NEW.campaign_id, NEW.state, COALESCE(NEW.sent_at / 86400000, -1), 1, NEW.soft_bounces,
            NEW.reminded_at IS NOT NULL, NEW.remind_at IS NOT NULL)
    ON CONFLICT (campaign_id, state, sent_day) DO UPDATE SET
        n = n + 1, soft_bounces = soft_bounces + excluded.soft_bounces,
        reminded = reminded + excluded.reminded, reminders = reminders + excluded.reminders;
END;

CREATE TRIGGER campaign_tallies_delete AFTER DELETE ON campaign_recipients BEGIN
    UPDATE campaign_tallies SET
        n = n - 1, soft_bounces = soft_bounces - OLD.soft_bounces,
        reminded = reminded - (OLD.reminded_at IS NOT NULL), reminders = reminders - (OLD.remind_at IS NOT NULL)
     WHERE campaign_id = OLD.campaign_id AND state = OLD.state AND sent_day = COALESCE(OLD.sent_at / 86400000, -1);
END;

-- The overview's funnel for days that are over, per UTC day, offer kind and location: rolled
-- up once (`Store::roll_up_funnel`, an hour after the day ended, every node may try; the
-- first wins), so a 90-day funnel sums a few thousand rows instead of reading a quarter's
-- ledger. `funnel_rollup.upto`: the first day not rolled up yet. Campaign messages are not
-- here: they are counted live in campaign_tallies.
CREATE TABLE funnel_days (
    day         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    location_id TEXT NOT NULL,
    sent        INTEGER NOT NULL,
    bounced     INTEGER NOT NULL,
    opened      INTEGER NOT NULL,
    accepted    INTEGER NOT NULL,
    completed   INTEGER NOT NULL,
    PRIMARY KEY (day, kind, location_id)
) WITHOUT ROWID;
CREATE TABLE funnel_rollup (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER
);
INSERT INTO funnel_rollup (id, upto) VALUES (1, NULL);
