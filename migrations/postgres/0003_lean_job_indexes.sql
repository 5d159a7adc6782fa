-- Finishing a job rewrites its row, and every index that covers the row gets a new entry.
-- Only timers and schedule runs are looked up by subject, so only they are indexed by it:
-- email and bulk jobs (the many) no longer pay for it.
DROP INDEX jobs_subject;
CREATE INDEX jobs_timer_subject ON jobs (subject) WHERE kind = 'timer';
CREATE INDEX jobs_schedule_subject ON jobs (subject) WHERE kind = 'schedule';
