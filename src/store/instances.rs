//! Instances and their transitions: the one commit that writes state, history, email
//! ledger rows, effect jobs and timer changes together; reads of instances and history.

use serde_json::{Map, Value};
use sqlx::Row;

use super::*;
use crate::core::domain::{InstanceId, Timestamp};
use crate::core::instance::{EmailRow, HistoryRow};

#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub id: InstanceId,
    pub workflow: String,
    pub state: String,
    pub version: i64,
    pub data: Map<String, Value>,
    pub locale: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub final_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewEmail {
    pub message_id: String,
    pub template: String,
    pub locale: String,
    pub role: String,
    pub recipient: String,
}

/// Everything one transition changes, committed together or not at all.
#[derive(Debug, Clone)]
pub struct Commit {
    pub instance: InstanceId,
    /// None: create the instance (workflow, locale given); Some(v): expect version v.
    pub expected_version: Option<i64>,
    pub workflow: String,
    pub locale: String,
    pub state: String,
    pub data: Map<String, Value>,
    pub is_final: bool,
    pub event: String,
    pub from: Option<String>,
    pub actor: String,
    pub at: Timestamp,
    pub jobs: Vec<NewJob>,
    pub emails: Vec<NewEmail>,
    pub cancel_timers: Vec<String>,
    pub cancel_all_timers: bool,
    /// The timer job whose firing this transition is: completed in the same transaction,
    /// and the whole commit refused if the job was rescheduled or taken over meanwhile.
    pub fence: Option<JobFence>,
    /// Domain rows written with the transition (an offer with its instance, an acceptance…).
    pub records: Vec<Record>,
}

/// One transition inside a write transaction; returns its new version and whether it
/// enqueued work that is due now.
async fn commit_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    c: &Commit,
) -> Result<(i64, bool)> {
    // Lock order: the instance row first, then job rows (the fence, cancelled and replaced
    // timers). A customer's event and a timer of the same instance committing at once would
    // otherwise deadlock on PostgreSQL (timer: job row → instance; event: instance → timer row).
    let data = json_text(&c.data);
    let final_at = c.is_final.then_some(c.at.0);
    let seq = match c.expected_version {
        None => {
            sqlx::query(
                    "INSERT INTO instances (id, workflow, state, version, data, locale, created_at, updated_at, final_at)
                     VALUES ($1, $2, $3, 1, $4, $5, $6, $6, $7)",
                )
                .bind(c.instance.as_str())
                .bind(&c.workflow)
                .bind(&c.state)
                .bind(&data)
                .bind(&c.locale)
                .bind(c.at.0)
                .bind(final_at)
                .execute(&mut **tx)
                .await?;
            1
        }
        Some(v) => {
            let r = sqlx::query(
                    "UPDATE instances SET state = $1, version = version + 1, data = $2, updated_at = $3, final_at = $4
                     WHERE id = $5 AND version = $6",
                )
                .bind(&c.state)
                .bind(&data)
                .bind(c.at.0)
                .bind(final_at)
                .bind(c.instance.as_str())
                .bind(v)
                .execute(&mut **tx)
                .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(c.instance.clone()));
            }
            v + 1
        }
    };
    if let Some(f) = &c.fence
        && !complete_fenced(tx, f, c.at).await?
    {
        return Err(StoreError::Stale(f.job_id));
    }
    sqlx::query(
            "INSERT INTO history (instance_id, seq, event, from_state, to_state, at, actor) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.instance.as_str())
        .bind(seq)
        .bind(&c.event)
        .bind(c.from.as_deref())
        .bind(&c.state)
        .bind(c.at.0)
        .bind(&c.actor)
        .execute(&mut **tx)
        .await?;
    if c.cancel_all_timers {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1
                 WHERE subject = $2 AND kind = 'timer' AND state = 'scheduled'",
        )
        .bind(c.at.0)
        .bind(c.instance.as_str())
        .execute(&mut **tx)
        .await?;
    }
    for name in &c.cancel_timers {
        sqlx::query(
                "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1 WHERE key = $2 AND state = 'scheduled'",
            )
            .bind(c.at.0)
            .bind(timer_key(&c.instance, name))
            .execute(&mut **tx)
            .await?;
    }
    for e in &c.emails {
        sqlx::query(
                "INSERT INTO emails (message_id, instance_id, template, locale, role, recipient, state, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7) ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&e.message_id)
            .bind(c.instance.as_str())
            .bind(&e.template)
            .bind(&e.locale)
            .bind(&e.role)
            .bind(&e.recipient)
            .bind(c.at.0)
            .execute(&mut **tx)
            .await?;
    }
    let mut due_now = false;
    for j in &c.jobs {
        insert_job(tx, j, c.at).await?;
        due_now |= j.run_at <= c.at;
    }
    for r in &c.records {
        offers::write_record(tx, r, c.at).await?;
    }
    Ok((seq, due_now))
}

pub fn timer_key(instance: &InstanceId, name: &str) -> String {
    format!("timer:{instance}:{name}")
}

impl Store {
    /// A workflow's instances by state (the workflows page's figures).
    pub async fn instance_state_counts(&self, workflow: &str) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) FROM instances WHERE workflow = $1 GROUP BY state")
                .bind(workflow)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Commits a transition (or a creation): state, history row, jobs, ledger rows and timer
    /// changes in one transaction. A version mismatch is [`StoreError::Conflict`].
    pub async fn commit(&self, c: &Commit) -> Result<i64> {
        let seqs = self.commit_all(std::slice::from_ref(c)).await?;
        Ok(seqs.first().copied().unwrap_or(0))
    }

    /// Commits several transitions (of one or more instances, creations included) in one
    /// transaction: all or none. Returns each one's new version.
    pub async fn commit_all(&self, commits: &[Commit]) -> Result<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let mut seqs = Vec::with_capacity(commits.len());
        let mut due_now = false;
        for c in commits {
            let (seq, due) = commit_in(&mut tx, c).await?;
            seqs.push(seq);
            due_now |= due;
        }
        if due_now {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        if due_now {
            self.wake.notify_waiters();
        }
        Ok(seqs)
    }

    /// Writes domain rows that belong to no transition (a reseller's customer) in one
    /// transaction.
    pub async fn write_records(&self, records: &[Record], at: Timestamp) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for r in records {
            offers::write_record(&mut tx, r, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn instance(&self, id: &InstanceId) -> Result<InstanceRow> {
        let r = sqlx::query(
            "SELECT id, workflow, state, version, data, locale, created_at, updated_at, final_at FROM instances WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("instance {id}")))?;
        let data: String = r.try_get("data")?;
        let data: Map<String, Value> = serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("instance {id} data: {e}")))?;
        let id_s: String = r.try_get("id")?;
        Ok(InstanceRow {
            id: InstanceId::parse(&id_s).map_err(StoreError::Corrupt)?,
            workflow: r.try_get("workflow")?,
            state: r.try_get("state")?,
            version: r.try_get("version")?,
            data,
            locale: r.try_get("locale")?,
            created_at: Timestamp(r.try_get("created_at")?),
            updated_at: Timestamp(r.try_get("updated_at")?),
            final_at: r.try_get::<Option<i64>, _>("final_at")?.map(Timestamp),
        })
    }

    pub async fn history(&self, id: &InstanceId) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT seq, event, from_state, to_state, at, actor FROM history WHERE instance_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    seq: r.try_get("seq")?,
                    event: r.try_get("event")?,
                    from: r.try_get("from_state")?,
                    to: r.try_get("to_state")?,
                    at: Timestamp(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                })
            })
            .collect()
    }

    pub async fn emails_of(&self, id: &InstanceId) -> Result<Vec<EmailRow>> {
        let rows = sqlx::query(
            "SELECT message_id, template, locale, role, recipient, state, attempts, last_error, reply, created_at, sent_at
             FROM emails WHERE instance_id = $1 ORDER BY created_at, message_id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EmailRow {
                    message_id: r.try_get("message_id")?,
                    template: r.try_get("template")?,
                    locale: r.try_get("locale")?,
                    role: r.try_get("role")?,
                    recipient: r.try_get("recipient")?,
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    reply: r.try_get("reply")?,
                    created_at: Timestamp(r.try_get("created_at")?),
                    sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(Timestamp),
                })
            })
            .collect()
    }

    pub async fn timers_of(&self, id: &InstanceId) -> Result<Vec<JobRow>> {
        self.jobs_where("subject = $1 AND kind = 'timer'", id.as_str(), 1000)
            .await
    }

    pub async fn count_instances(&self, workflow: Option<&str>, final_only: bool) -> Result<i64> {
        let sql = match (workflow.is_some(), final_only) {
            (true, true) => {
                "SELECT COUNT(*) FROM instances WHERE workflow = $1 AND final_at IS NOT NULL"
            }
            (true, false) => "SELECT COUNT(*) FROM instances WHERE workflow = $1",
            (false, true) => {
                "SELECT COUNT(*) FROM instances WHERE final_at IS NOT NULL AND $1 = $1"
            }
            (false, false) => "SELECT COUNT(*) FROM instances WHERE $1 = $1",
        };
        let r = sqlx::query(sql)
            .bind(workflow.unwrap_or(""))
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get(0)?)
    }

    /// The ledger state of an email: `sent` means a retried job must not send again.
    pub async fn email_state(&self, message_id: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT state FROM emails WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Moves a scheduled timer to another time, with `audit` (who did it) in the same
    /// transaction; false if there is none scheduled (nothing written).
    pub async fn reschedule_timer(
        &self,
        instance: &InstanceId,
        name: &str,
        at: Timestamp,
        now: Timestamp,
        audit: Option<&NewAudit>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE jobs SET run_at = $1, updated_at = $2 WHERE key = $3 AND state = 'scheduled'",
        )
        .bind(at.0)
        .bind(now.0)
        .bind(timer_key(instance, name))
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            if let Some(a) = audit {
                super::users::audit_insert(a).execute(&mut *tx).await?;
            }
            // Idle workers elsewhere may be waiting for the timer's old time.
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(moved)
    }

    /// Cancels a scheduled timer, with `audit` in the same transaction; false if there is
    /// none scheduled (nothing written).
    pub async fn cancel_timer(
        &self,
        instance: &InstanceId,
        name: &str,
        now: Timestamp,
        audit: Option<&NewAudit>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1 WHERE key = $2 AND state = 'scheduled'")
            .bind(now.0)
            .bind(timer_key(instance, name))
            .execute(&mut *tx)
            .await?;
        let cancelled = r.rows_affected() == 1;
        if cancelled && let Some(a) = audit {
            super::users::audit_insert(a).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(cancelled)
    }
}
