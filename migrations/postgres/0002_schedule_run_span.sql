-- A schedule run stands for every tick after `after_tick` up to `tick`: the ticks between were
-- caught up by it (catch_up = "once") rather than fired one by one.
ALTER TABLE schedule_runs ADD COLUMN after_tick BIGINT;
