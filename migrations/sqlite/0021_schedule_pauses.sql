-- A paused schedule (issue 15): its row here, written by an operator (`schedules pause`), read
-- in every node's tick transaction, so a pause holds on every node from its commit on. While
-- paused a schedule neither fires nor advances; once resumed, the ticks it missed are handled
-- by its catch-up policy, as after a downtime.
CREATE TABLE schedule_pauses (
    name      TEXT PRIMARY KEY,
    paused_by TEXT NOT NULL,
    paused_at INTEGER NOT NULL
);
