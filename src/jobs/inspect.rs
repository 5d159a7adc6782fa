//! What operators see of the job store and the schedules: the CLI's `jobs` and `schedules`
//! commands and the health check call these (never the store directly).

use serde::Serialize;

use crate::app::AppState;
use crate::core::config::CatchUp;
use crate::core::domain::{EmailAddress, Span, Timestamp};
use crate::core::job::{JobAction, JobFilter, JobPayload};
use crate::portal::Actor;
use crate::store::{JobError, JobRow, NodeRow, StoreError};

/// Jobs, newest first, in one state or all (`limit` rows at most).
pub async fn list(
    rt: &AppState,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    rt.store.list_jobs(state, limit).await
}

/// A failed job runs again now, with its attempts reset; audited as `job.retry` (by `by`).
pub async fn retry(rt: &AppState, id: i64, by: &Actor) -> Result<JobRow, StoreError> {
    act(rt, JobAction::Retry, id, by).await
}

/// `action` on one job (retry a failed one, cancel a waiting or failed one, run a waiting one
/// now), audited as `job.retry`, `job.cancel` or `job.run` with the job's id.
pub async fn act(
    rt: &AppState,
    action: JobAction,
    id: i64,
    by: &Actor,
) -> Result<JobRow, StoreError> {
    let audit = crate::portal::audit::entry(
        rt,
        by,
        &format!("job.{}", action.as_str()),
        &id.to_string(),
        "",
    );
    rt.store.job_act(action, id, rt.clock.now(), &audit).await
}

/// `action` on every job the filter selects that it applies to; one audit entry
/// (`job.bulk_retry`, `job.bulk_cancel`, `job.bulk_run`: the filter as its target, how many in
/// its detail). Returns how many.
pub async fn act_on_all(
    rt: &AppState,
    action: JobAction,
    f: &JobFilter,
    by: &Actor,
) -> Result<u64, StoreError> {
    let audit = crate::portal::audit::entry(
        rt,
        by,
        &format!("job.bulk_{}", action.as_str()),
        &describe(f),
        "",
    );
    rt.store.jobs_bulk(action, f, rt.clock.now(), &audit).await
}

/// How many jobs `action` would apply to among those the filter selects (what the
/// confirmation says).
pub async fn count_for(rt: &AppState, action: JobAction, f: &JobFilter) -> Result<i64, StoreError> {
    rt.store.count_for(action, f).await
}

/// A filter in a few words, for the audit log: `state=failed kind=email from=… to=…`, or `*`.
pub fn describe(f: &JobFilter) -> String {
    let mut parts = Vec::new();
    if !f.state.is_empty() {
        parts.push(format!("state={}", f.state));
    }
    if !f.kind.is_empty() {
        parts.push(format!("kind={}", f.kind));
    }
    if let Some(t) = f.from {
        parts.push(format!("from={t}"));
    }
    if let Some(t) = f.to {
        parts.push(format!("to={t}"));
    }
    if parts.is_empty() {
        "*".into()
    } else {
        parts.join(" ")
    }
}

/// A failed (or waiting) email job sent to a corrected address, now; audited as
/// `job.readdress` (the new address is not written to the log, only that it changed).
pub async fn readdress(
    rt: &AppState,
    id: i64,
    to: &EmailAddress,
    by: &Actor,
) -> Result<JobRow, StoreError> {
    let audit = crate::portal::audit::entry(rt, by, "job.readdress", &id.to_string(), "");
    rt.store
        .readdress_email_job(id, to, rt.clock.now(), &audit)
        .await
}

/// A job's failed attempts and take-overs, oldest first.
pub async fn errors(rt: &AppState, id: i64) -> Result<Vec<JobError>, StoreError> {
    rt.store.job_errors(id).await
}

/// The worker processes seen in the last `within` (stopped ones too), with the jobs each
/// holds.
pub async fn nodes(rt: &AppState, within: Span) -> Result<Vec<NodeRow>, StoreError> {
    rt.store.nodes(rt.clock.now().plus(Span(-within.0))).await
}

/// Jobs by state and kind: (state, kind, count).
pub async fn job_counts(rt: &AppState) -> Result<Vec<(String, String, i64)>, StoreError> {
    rt.store.job_counts().await
}

/// A page of jobs, newest first, that the filter selects, below `before`.
pub async fn jobs_page(
    rt: &AppState,
    f: &JobFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    rt.store.jobs_page(f, before, limit).await
}

/// One job.
pub async fn job(rt: &AppState, id: i64) -> Result<JobRow, StoreError> {
    rt.store.job(id).await
}

/// A job's payload as an operator may see it: JSON with every email address masked
/// (`k***@contoso.example`) and the value of every key that may hold a secret (link, token,
/// secret, key, password, signature, context's `link_ref`) replaced by `***`.
pub fn masked_payload(p: &JobPayload) -> String {
    let v: serde_json::Value = serde_json::from_str(&p.to_json_text())
        .unwrap_or_else(|_| serde_json::Value::String(p.to_json_text()));
    masked_json(v)
}

/// Any JSON (an instance's data) masked as [`masked_payload`] masks a payload.
pub fn masked_json(v: serde_json::Value) -> String {
    serde_json::to_string_pretty(&mask(v, false)).unwrap_or_default()
}

fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "link",
        "token",
        "secret",
        "key",
        "password",
        "signature",
        "url",
    ]
    .iter()
    .any(|w| k.contains(w))
}

fn mask(v: serde_json::Value, secret: bool) -> serde_json::Value {
    use serde_json::Value as V;
    match v {
        V::Object(m) => V::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let s = secret || secret_key(&k);
                    (k, mask(v, s))
                })
                .collect(),
        ),
        V::Array(a) => V::Array(a.into_iter().map(|v| mask(v, secret)).collect()),
        V::String(_) if secret => V::String("***".into()),
        V::String(s) => V::String(mask_addresses(&s)),
        other => other,
    }
}

/// Every `local@domain` in `s` as its first character, `***` and the domain.
fn mask_addresses(s: &str) -> String {
    s.split_inclusive(|c: char| c.is_whitespace() || "<>,;\"'()".contains(c))
        .map(|w| {
            let (word, tail) = match w.char_indices().last() {
                Some((i, c)) if c.is_whitespace() || "<>,;\"'()".contains(c) => w.split_at(i),
                _ => (w, ""),
            };
            match word.split_once('@') {
                Some((local, domain)) if !local.is_empty() && domain.contains('.') => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}***@{domain}{tail}")
                }
                _ => w.to_string(),
            }
        })
        .collect()
}

/// How many jobs have failed for good (the health check reports it).
pub async fn failed_count(rt: &AppState) -> Result<i64, StoreError> {
    rt.store.count_jobs("failed", None).await
}

/// A cron schedule: its expression, when it last ticked, when it ticks next, whether an
/// operator paused it.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatus {
    pub name: &'static str,
    pub cron: String,
    pub catch_up: CatchUp,
    /// Paused: by whom (an actor's label) and since when; it neither fires nor advances.
    pub paused: Option<SchedulePause>,
    /// None: it never ticked (its first tick is recorded as the baseline, nothing fires).
    pub last_tick: Option<Timestamp>,
    pub next: Vec<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchedulePause {
    pub by: String,
    pub since: Timestamp,
}

/// Every schedule, with its `next` coming ticks.
pub async fn schedules(rt: &AppState, next: usize) -> Result<Vec<ScheduleStatus>, StoreError> {
    let now = rt.clock.now().to_datetime();
    let pauses = rt.store.schedule_pauses().await?;
    let mut out = Vec::with_capacity(rt.schedules.len());
    for def in &rt.schedules {
        out.push(ScheduleStatus {
            name: def.name,
            cron: def.expr.clone(),
            catch_up: def.catch_up,
            paused: pauses
                .iter()
                .find(|(n, _, _)| n == def.name)
                .map(|(_, by, since)| SchedulePause {
                    by: by.clone(),
                    since: *since,
                }),
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

/// Why a schedule could not be paused or resumed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("no enabled schedule `{0}` (enabled: {1})")]
    Unknown(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn known(rt: &AppState, name: &str) -> Result<&'static str, ScheduleError> {
    rt.schedules
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.name)
        .ok_or_else(|| {
            let names: Vec<&str> = rt.schedules.iter().map(|d| d.name).collect();
            ScheduleError::Unknown(name.to_string(), names.join(", "))
        })
}

/// Pauses a schedule on every node (its row is read in each tick's transaction), audited as
/// `schedule.pause`. False: it was paused already.
pub async fn pause(rt: &AppState, name: &str, by: &Actor) -> Result<bool, ScheduleError> {
    let name = known(rt, name)?;
    let audit = crate::portal::audit::entry(rt, by, "schedule.pause", name, "");
    Ok(rt.store.pause_schedule(name, &audit).await?)
}

/// Resumes a paused schedule (`schedule.resume`); the ticks it missed meanwhile are handled
/// by its catch-up policy, as after a downtime. False: it was not paused.
pub async fn resume(rt: &AppState, name: &str, by: &Actor) -> Result<bool, ScheduleError> {
    let name = known(rt, name)?;
    let audit = crate::portal::audit::entry(rt, by, "schedule.resume", name, "");
    Ok(rt.store.resume_schedule(name, &audit).await?)
}

/// Runs a schedule now on whichever worker claims it first (its ticks untouched), audited as
/// `schedule.run`. False while its previous run is unfinished (runs never overlap).
pub async fn run_now(rt: &AppState, name: &str, by: &Actor) -> Result<bool, ScheduleError> {
    let name = known(rt, name)?;
    let now = rt.clock.now();
    let job = crate::store::NewJob {
        key: format!("schedule:{name}:now:{}", now.0),
        subject: format!("schedule:{name}"),
        payload: crate::core::job::JobPayload::Schedule(crate::core::job::ScheduleJob {
            schedule: name.to_string(),
            tick: now,
            after: None,
        }),
        run_at: now,
        max_attempts: rt.cfg().max_attempts,
        replace: false,
    };
    let audit = crate::portal::audit::entry(rt, by, "schedule.run", name, "");
    Ok(rt.store.enqueue_schedule_run(&job, &audit, now).await?)
}

/// A schedule's latest `limit` runs, newest first.
pub async fn recent_runs(
    rt: &AppState,
    name: &str,
    limit: usize,
) -> Result<Vec<crate::store::ScheduleRun>, StoreError> {
    let mut runs = rt.store.schedule_runs(name).await?;
    runs.reverse();
    runs.truncate(limit);
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_shows_no_address_or_secret() {
        let raw = r#"{"message_id":"<m1@partnerflow.example>","envelope":{"to":"kunde@contoso.example","from":"Partner <noreply@partner.example>"},"context":{"link":"https://x.example/o/PF-1?sig=abc","link_ref":"k1.s3cr3t","customer_name":"Contoso","note":"write to a.b@c.example, please"},"workflow":"trial_invitation"}"#;
        let p = JobPayload::from_row("email", raw);
        let m = masked_payload(&p);
        for gone in ["kunde@", "noreply@", "sig=abc", "s3cr3t", "a.b@"] {
            assert!(!m.contains(gone), "{gone} in {m}");
        }
        for kept in [
            "k***@contoso.example",
            "Partner <n***@partner.example>",
            "a***@c.example, please",
            "\"link\": \"***\"",
            "Contoso",
            "trial_invitation",
        ] {
            assert!(m.contains(kept), "{kept} not in {m}");
        }
    }
}
