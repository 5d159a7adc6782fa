//! What operators see of the job store and the schedules: the CLI's `jobs` and `schedules`
//! commands and the health check call these (never the store directly).

use serde::Serialize;

use crate::app::AppState;
use crate::core::config::CatchUp;
use crate::core::domain::Timestamp;
use crate::store::{JobRow, StoreError};

/// Jobs, newest first, in one state or all (`limit` rows at most).
pub async fn list(
    rt: &AppState,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    rt.store.list_jobs(state, limit).await
}

/// A failed (or waiting) job runs again now, with its attempts reset.
pub async fn retry(rt: &AppState, id: i64) -> Result<JobRow, StoreError> {
    rt.store.retry_job(id, rt.clock.now()).await
}

/// How many jobs have failed for good (the health check reports it).
pub async fn failed_count(rt: &AppState) -> Result<i64, StoreError> {
    rt.store.count_jobs("failed", None).await
}

/// A cron schedule: its expression, when it last ticked, when it ticks next.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatus {
    pub name: &'static str,
    pub cron: String,
    pub catch_up: CatchUp,
    /// None: it never ticked (its first tick is recorded as the baseline, nothing fires).
    pub last_tick: Option<Timestamp>,
    pub next: Vec<Timestamp>,
}

/// Every schedule, with its `next` coming ticks.
pub async fn schedules(rt: &AppState, next: usize) -> Result<Vec<ScheduleStatus>, StoreError> {
    let now = rt.clock.now().to_datetime();
    let mut out = Vec::with_capacity(rt.schedules.len());
    for def in &rt.schedules {
        out.push(ScheduleStatus {
            name: def.name,
            cron: def.expr.clone(),
            catch_up: def.catch_up,
            last_tick: rt.store.schedule_last_tick(def.name).await?,
            next: def
                .cron
                .after(&now)
                .take(next)
                .map(Timestamp::from_datetime)
                .collect(),
        });
    }
    Ok(out)
}
