//! Cron schedules: the last tick, advanced by compare-and-set, and the record of each run.

use sqlx::Row;

use super::users::audit_insert;
use super::*;
use crate::core::domain::Timestamp;

/// One execution of a schedule: the run for `tick`, standing for every tick after `after`
/// (the schedule's previous tick; ticks between were caught up by this run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleRun {
    pub name: String,
    pub tick: Timestamp,
    pub after: Option<Timestamp>,
    pub node: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub outcome: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceOutcome {
    Lost,
    /// Paused by an operator: nothing changed.
    Paused,
    Advanced,
    Fired,
    SkippedBusy,
}

/// Whether a schedule's run (`subject` = `schedule:<name>`) is waiting or running.
async fn run_unfinished(tx: &mut sqlx::Transaction<'_, sqlx::Any>, subject: &str) -> Result<bool> {
    let busy: i64 = sqlx::query(
        "SELECT COUNT(*) FROM jobs WHERE subject = $1 AND kind = 'schedule' AND state IN ('scheduled', 'running')",
    )
    .bind(subject)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    Ok(busy > 0)
}

impl Store {
    pub async fn schedule_last_tick(&self, name: &str) -> Result<Option<Timestamp>> {
        let r = sqlx::query("SELECT last_tick FROM schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match r {
            Some(r) => Some(Timestamp(r.try_get(0)?)),
            None => None,
        })
    }

    /// Advances a schedule from `expected` (None: never ticked) to `tick`, and enqueues `run`
    /// with it, in one transaction. `Lost` when another process advanced it first: the tick
    /// is theirs. While the previous run of the schedule is unfinished nothing changes
    /// (`SkippedBusy`): runs never overlap, and the ticks that came due meanwhile are caught
    /// up per policy once it has finished.
    pub async fn advance_schedule(
        &self,
        name: &str,
        expected: Option<Timestamp>,
        tick: Timestamp,
        run: Option<NewJob>,
        now: Timestamp,
    ) -> Result<AdvanceOutcome> {
        let mut tx = self.begin_write().await?;
        let paused: i64 = sqlx::query("SELECT COUNT(*) FROM schedule_pauses WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if paused > 0 {
            return Ok(AdvanceOutcome::Paused);
        }
        if let Some(job) = &run
            && run_unfinished(&mut tx, &job.subject).await?
        {
            return Ok(AdvanceOutcome::SkippedBusy);
        }
        let won = match expected {
            None => {
                sqlx::query("INSERT INTO schedules (name, last_tick, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(tick.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            }
            Some(prev) => {
                sqlx::query("UPDATE schedules SET last_tick = $1, updated_at = $2 WHERE name = $3 AND last_tick = $4")
                    .bind(tick.0)
                    .bind(now.0)
                    .bind(name)
                    .bind(prev.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            }
        };
        if !won {
            return Ok(AdvanceOutcome::Lost);
        }
        let outcome = match &run {
            None => AdvanceOutcome::Advanced,
            Some(job) => {
                insert_job(&mut tx, job, now).await?;
                self.notify_work(&mut tx).await?;
                AdvanceOutcome::Fired
            }
        };
        tx.commit().await?;
        if outcome == AdvanceOutcome::Fired {
            self.wake.notify_waiters();
        }
        Ok(outcome)
    }

    /// Enqueues an operator's run of a schedule now (its ticks untouched), with its audit
    /// entry, in one transaction; false (nothing written) while its previous run is
    /// unfinished: runs never overlap.
    pub async fn enqueue_schedule_run(
        &self,
        job: &NewJob,
        audit: &NewAudit,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if run_unfinished(&mut tx, &job.subject).await? {
            return Ok(false);
        }
        insert_job(&mut tx, job, now).await?;
        audit_insert(audit).execute(&mut *tx).await?;
        self.notify_work(&mut tx).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(true)
    }

    /// Pauses a schedule, with its audit entry, in one transaction. False: it was paused
    /// already (nothing written).
    pub async fn pause_schedule(&self, name: &str, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "INSERT INTO schedule_pauses (name, paused_by, paused_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&audit.actor)
        .bind(audit.at.0)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Resumes a paused schedule, with its audit entry, in one transaction. False: it was not
    /// paused (nothing written).
    pub async fn resume_schedule(&self, name: &str, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("DELETE FROM schedule_pauses WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The paused schedules: (name, paused by, since).
    pub async fn schedule_pauses(&self) -> Result<Vec<(String, String, Timestamp)>> {
        let rows =
            sqlx::query("SELECT name, paused_by, paused_at FROM schedule_pauses ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, Timestamp(r.try_get(2)?))))
            .collect()
    }

    /// Records a finished schedule run and completes its job in one transaction, fenced by
    /// the job's lease: a run is recorded once even when its job ran twice (a node died
    /// after recording, say). False (nothing recorded) when the job was taken over.
    pub async fn record_schedule_run(&self, run: &ScheduleRun, fence: &JobFence) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !complete_fenced(&mut tx, fence, run.finished).await? {
            return Ok(false);
        }
        sqlx::query("INSERT INTO schedule_runs (name, tick, after_tick, node, started_at, finished_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&run.name)
            .bind(run.tick.0)
            .bind(run.after.map(|t| t.0))
            .bind(&run.node)
            .bind(run.started.0)
            .bind(run.finished.0)
            .bind(&run.outcome)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every recorded run of a schedule, oldest tick first.
    pub async fn schedule_runs(&self, name: &str) -> Result<Vec<ScheduleRun>> {
        let rows = sqlx::query(
            "SELECT name, tick, after_tick, node, started_at, finished_at, outcome FROM schedule_runs WHERE name = $1 ORDER BY tick, id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRun {
                    name: r.try_get(0)?,
                    tick: Timestamp(r.try_get(1)?),
                    after: r.try_get::<Option<i64>, _>(2)?.map(Timestamp),
                    node: r.try_get(3)?,
                    started: Timestamp(r.try_get(4)?),
                    finished: Timestamp(r.try_get::<Option<i64>, _>(5)?.unwrap_or_default()),
                    outcome: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
                })
            })
            .collect()
    }
}
