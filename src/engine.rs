//! Drives instances: loads state, calls the pure [`workflow::step`], and turns the decision
//! into one [`store::Commit`] (state + history + email ledger + jobs + timers).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::core::clock::Clock;
use crate::core::config::Settings;
use crate::core::domain::{EmailAddress, InstanceId, Locale, Timestamp};
use crate::core::instance::{InstanceDetail, TimerView, Transitioned};
use crate::core::job::{EmailJob, Envelope, JobPayload, TimerJob};
use crate::core::workflow::{self, Definition, Effect, PARTNER_ROLE, StepError};
use crate::store::{self, Commit, JobFence, NewEmail, NewJob, Store, StoreError, timer_key};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    #[error("invalid data: {0}")]
    InvalidData(String),
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Engine {
    pub defs: BTreeMap<String, Definition>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The partner's identity as this node knows it (`store::company`).
    pub company: Arc<store::CompanyCell>,
    message_id_domain: String,
    default_locale: Locale,
    max_attempts: u32,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workflows", &self.defs.keys())
            .finish()
    }
}

impl Engine {
    pub fn new(
        defs: BTreeMap<String, Definition>,
        store: Store,
        clock: Arc<dyn Clock>,
        settings: &Settings,
    ) -> Engine {
        Engine {
            defs,
            store,
            clock,
            company: Arc::new(store::CompanyCell::new(
                &settings.partner,
                &settings.app.public_base_url,
            )),
            message_id_domain: settings.email.message_id_domain.clone(),
            default_locale: settings.app.default_locale,
            max_attempts: settings.jobs.max_attempts,
        }
    }

    pub fn definition(&self, name: &str) -> Result<&Definition, EngineError> {
        self.defs
            .get(name)
            .ok_or_else(|| EngineError::UnknownWorkflow(name.into()))
    }

    /// A workflow's instances by state (every state of its definition, zeros included, in
    /// the definition's order).
    pub async fn state_counts(&self, workflow: &str) -> Result<Vec<(String, i64)>, EngineError> {
        let d = self.definition(workflow)?;
        let counted = self.store.instance_state_counts(workflow).await?;
        Ok(d.states
            .iter()
            .map(|s| {
                let n = counted.iter().find(|(c, _)| c == s).map_or(0, |c| c.1);
                (s.clone(), n)
            })
            .collect())
    }

    /// Creates an instance in its workflow's initial state.
    pub async fn start(
        &self,
        workflow: &str,
        data: &Map<String, Value>,
        locale: Option<Locale>,
        actor: &str,
    ) -> Result<InstanceId, EngineError> {
        let id = InstanceId::generate();
        let (commits, _) = self.plan_start(&id, workflow, data, locale, actor, &[])?;
        self.commit_counted(&commits).await?;
        tracing::info!(instance = %id, workflow, offer_id = offer_id(&commits[0].data), state = %commits[0].state, "instance started");
        Ok(id)
    }

    /// Plans the creation of instance `id` and its first `events`, as commits for one
    /// transaction (see [`Store::commit_all`]); nothing is written yet. Returns the commits and
    /// the state the instance will be in.
    pub fn plan_start(
        &self,
        id: &InstanceId,
        workflow: &str,
        data: &Map<String, Value>,
        locale: Option<Locale>,
        actor: &str,
        events: &[&str],
    ) -> Result<(Vec<Commit>, String), EngineError> {
        let def = self.definition(workflow)?;
        let data = def.validate_data(data).map_err(EngineError::InvalidData)?;
        let now = self.clock.now();
        let locale = locale.unwrap_or(self.default_locale).as_str().to_string();
        let create = Commit {
            instance: id.clone(),
            expected_version: None,
            workflow: workflow.into(),
            locale: locale.clone(),
            state: def.initial.clone(),
            data: data.clone(),
            is_final: false,
            event: "start".into(),
            from: None,
            actor: actor.into(),
            at: now,
            jobs: vec![],
            emails: vec![],
            cancel_timers: vec![],
            cancel_all_timers: false,
            fence: None,
            records: vec![],
        };
        let mut commits = vec![create];
        let mut row = store::InstanceRow {
            id: id.clone(),
            workflow: workflow.into(),
            state: def.initial.clone(),
            version: 1,
            data,
            locale,
            created_at: now,
            updated_at: now,
            final_at: None,
        };
        for event in events {
            let decision = workflow::step(def, &row.state, &row.data, event, now)
                .map_err(|e| EngineError::Rejected(refusal(&row, &e)))?;
            let next = self.commit_for(def, &row, decision, event, actor, now);
            row.state = next.state.clone();
            row.data = next.data.clone();
            row.version += 1;
            commits.push(next);
        }
        Ok((commits, row.state))
    }

    /// Plans `event` on an existing instance as a commit (not written yet), for a caller
    /// that commits it together with others. A version race shows up as
    /// [`StoreError::Conflict`] at commit time.
    pub async fn plan_fire(
        &self,
        id: &InstanceId,
        event: &str,
        actor: &str,
    ) -> Result<Commit, EngineError> {
        let inst = self.store.instance(id).await?;
        let def = self.definition(&inst.workflow)?;
        let now = self.clock.now();
        let decision = workflow::step(def, &inst.state, &inst.data, event, now)
            .map_err(|e| EngineError::Rejected(refusal(&inst, &e)))?;
        Ok(self.commit_for(def, &inst, decision, event, actor, now))
    }

    /// Moves an instance's scheduled timer to `at` (with who did it, in the same
    /// transaction); false if it has no such timer scheduled.
    pub async fn reschedule_timer(
        &self,
        id: &InstanceId,
        timer: &str,
        at: Timestamp,
        audit: Option<&store::NewAudit>,
    ) -> Result<bool, EngineError> {
        Ok(self
            .store
            .reschedule_timer(id, timer, at, self.clock.now(), audit)
            .await?)
    }

    /// Cancels an instance's scheduled timer (with who did it, in the same transaction);
    /// false if it has no such timer scheduled.
    pub async fn cancel_timer(
        &self,
        id: &InstanceId,
        timer: &str,
        audit: Option<&store::NewAudit>,
    ) -> Result<bool, EngineError> {
        Ok(self
            .store
            .cancel_timer(id, timer, self.clock.now(), audit)
            .await?)
    }

    /// An instance with its history, email ledger and timers (the API's and the CLI's
    /// `instances show`).
    pub async fn detail(&self, id: &InstanceId) -> Result<InstanceDetail, EngineError> {
        let inst = self.store.instance(id).await?;
        let history = self.store.history(id).await?;
        let emails = self.store.emails_of(id).await?;
        let timers = self.store.timers_of(id).await?;
        Ok(InstanceDetail {
            id: inst.id,
            workflow: inst.workflow,
            state: inst.state,
            version: inst.version,
            locale: inst.locale,
            data: inst.data,
            created_at: inst.created_at,
            updated_at: inst.updated_at,
            final_at: inst.final_at,
            history,
            emails,
            timers: timers
                .into_iter()
                .map(|t| TimerView {
                    name: t.payload.timer().map(|x| x.timer.clone()),
                    event: t.payload.timer().map(|x| x.event.clone()),
                    state: t.state.to_string(),
                    run_at: t.run_at,
                })
                .collect(),
        })
    }

    /// Writes planned commits in one transaction.
    pub async fn commit_plan(&self, commits: &[Commit]) -> Result<(), EngineError> {
        self.commit_counted(commits).await?;
        for c in commits {
            tracing::info!(instance = %c.instance, workflow = %c.workflow, offer_id = offer_id(&c.data),
                event = %c.event, to = %c.state, actor = %c.actor, "transition");
        }
        Ok(())
    }

    /// Sends `event` to an instance. Two events racing on one instance have one winner: the
    /// loser re-reads and is refused with the reason ("offer PF-… expired at …").
    pub async fn fire(
        &self,
        id: &InstanceId,
        event: &str,
        actor: &str,
    ) -> Result<Transitioned, EngineError> {
        self.fire_with(id, event, actor, None, None).await
    }

    /// Like [`fire`](Self::fire), for a person's action: its audit entry is written in the
    /// transition's transaction (both or neither).
    pub async fn fire_audited(
        &self,
        id: &InstanceId,
        event: &str,
        audit: &store::NewAudit,
    ) -> Result<Transitioned, EngineError> {
        self.fire_with(id, event, &audit.actor, None, Some(audit))
            .await
    }

    /// Like [`fire`](Self::fire), for a timer: the timer job is completed in the same
    /// transaction, so a timer fires its event at most once even if its worker dies after the
    /// commit, and a timer rescheduled meanwhile does not fire its stale event
    /// ([`StoreError::Stale`]).
    pub async fn fire_fenced(
        &self,
        id: &InstanceId,
        event: &str,
        actor: &str,
        fence: Option<JobFence>,
    ) -> Result<Transitioned, EngineError> {
        self.fire_with(id, event, actor, fence, None).await
    }

    async fn fire_with(
        &self,
        id: &InstanceId,
        event: &str,
        actor: &str,
        fence: Option<JobFence>,
        audit: Option<&store::NewAudit>,
    ) -> Result<Transitioned, EngineError> {
        for _ in 0..8 {
            let inst = self.store.instance(id).await?;
            let def = self.definition(&inst.workflow)?;
            let now = self.clock.now();
            let decision = match workflow::step(def, &inst.state, &inst.data, event, now) {
                Ok(d) => d,
                Err(e) => return Err(EngineError::Rejected(refusal(&inst, &e))),
            };
            let mut commit = self.commit_for(def, &inst, decision, event, actor, now);
            commit.fence = fence.clone();
            if let Some(a) = audit {
                commit.records.push(store::Record::Audit(a.clone()));
            }
            let committed = self.store.commit(&commit).await;
            self.count(std::slice::from_ref(&commit), &committed);
            match committed {
                Ok(v) => {
                    tracing::info!(instance = %id, workflow = %inst.workflow, offer_id = offer_id(&commit.data),
                        event, from = %inst.state, to = %commit.state, actor, "transition");
                    return Ok(Transitioned {
                        instance: id.clone(),
                        from: inst.state,
                        to: commit.state,
                        version: v,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Conflict(id.clone())))
    }

    /// [`Store::commit_all`], counted.
    async fn commit_counted(&self, commits: &[Commit]) -> Result<(), StoreError> {
        let r = self.store.commit_all(commits).await;
        self.count(commits, &r);
        r.map(|_| ())
    }

    /// `partnerflow_transitions_total` (committed, or a version conflict) and, when
    /// committed, `partnerflow_jobs_enqueued_total` for the jobs the transitions wrote.
    fn count<T>(&self, commits: &[Commit], r: &Result<T, StoreError>) {
        use crate::core::metric_names as names;
        let outcome = match r {
            Ok(_) => "committed",
            Err(StoreError::Conflict(_)) => "conflict",
            Err(_) => return,
        };
        for c in commits {
            let workflow = if self.defs.contains_key(&c.workflow) {
                c.workflow.clone()
            } else {
                names::OTHER.to_string()
            };
            metrics::counter!(names::TRANSITIONS, "workflow" => workflow, "outcome" => outcome)
                .increment(1);
            if r.is_ok() {
                for j in &c.jobs {
                    let kind = names::bounded(j.payload.kind(), &JobPayload::KINDS);
                    metrics::counter!(names::JOBS_ENQUEUED, "kind" => kind).increment(1);
                }
            }
        }
    }

    fn commit_for(
        &self,
        def: &Definition,
        inst: &store::InstanceRow,
        d: workflow::Decision,
        event: &str,
        actor: &str,
        now: Timestamp,
    ) -> Commit {
        // The history sequence this transition will get: fixes Message-IDs and job keys.
        let version = inst.version + 1;
        let locale = Locale::parse(&inst.locale).unwrap_or(self.default_locale);
        let mut jobs = Vec::new();
        let mut emails = Vec::new();
        let mut cancel_timers = Vec::new();
        let mut cancel_all = false;
        for (idx, effect) in d.effects.iter().enumerate() {
            match effect {
                Effect::SendEmail { template, role } => {
                    let Some(to) = self.recipient(def, &d.data, role) else {
                        tracing::warn!(instance = %inst.id, template, role, "no address for role; email not sent");
                        continue;
                    };
                    let message_id =
                        format!("<{}.{version}.{idx}@{}>", inst.id, self.message_id_domain);
                    let context = json!({
                        "partner": *self.company.get().partner,
                        "recipient": { "email": to, "role": role },
                        "instance": { "id": inst.id, "workflow": def.name, "state": d.to, "event": event },
                        "data": d.data,
                        "locale": locale.as_str(),
                    });
                    let envelope = Envelope {
                        message_id: message_id.clone(),
                        to: to.clone(),
                        locale,
                        template: template.clone(),
                    };
                    emails.push(NewEmail {
                        message_id: message_id.clone(),
                        template: template.clone(),
                        locale: locale.as_str().into(),
                        role: role.clone(),
                        recipient: to.as_str().into(),
                    });
                    jobs.push(NewJob {
                        key: format!("email:{}:{version}:{idx}", inst.id),
                        subject: inst.id.as_str().into(),
                        payload: JobPayload::Email(EmailJob {
                            message_id,
                            envelope,
                            context,
                            workflow: def.name.clone(),
                        }),
                        run_at: now,
                        max_attempts: self.max_attempts,
                        replace: false,
                    });
                }
                Effect::ScheduleTimer { name, at, event } => jobs.push(NewJob {
                    key: timer_key(&inst.id, name),
                    subject: inst.id.as_str().into(),
                    payload: JobPayload::Timer(TimerJob {
                        instance: inst.id.clone(),
                        timer: name.clone(),
                        event: event.clone(),
                        workflow: def.name.clone(),
                    }),
                    run_at: *at,
                    max_attempts: self.max_attempts,
                    replace: true,
                }),
                Effect::CancelTimer { name } => cancel_timers.push(name.clone()),
                Effect::CancelAllTimers => cancel_all = true,
            }
        }
        Commit {
            instance: inst.id.clone(),
            expected_version: Some(inst.version),
            workflow: inst.workflow.clone(),
            locale: inst.locale.clone(),
            is_final: def.is_final(&d.to),
            state: d.to,
            data: d.data,
            event: event.into(),
            from: Some(d.from),
            actor: actor.into(),
            at: now,
            jobs,
            emails,
            cancel_timers,
            cancel_all_timers: cancel_all,
            fence: None,
            records: vec![],
        }
    }

    fn recipient(
        &self,
        def: &Definition,
        data: &Map<String, Value>,
        role: &str,
    ) -> Option<EmailAddress> {
        if role == PARTNER_ROLE {
            return Some(self.company.get().partner.email.clone());
        }
        let field = def.roles.get(role)?;
        EmailAddress::parse(data.get(field)?.as_str()?).ok()
    }
}

fn offer_id(data: &Map<String, Value>) -> &str {
    data.get("offer_id").and_then(Value::as_str).unwrap_or("-")
}

/// The refusal a loser of a race (or a late event) gets, in the domain's words.
fn refusal(inst: &store::InstanceRow, e: &StepError) -> String {
    let what = match inst.data.get("offer_id").and_then(Value::as_str) {
        Some(o) => format!("offer {o}"),
        None => format!("instance {}", inst.id),
    };
    match (e, inst.final_at) {
        (StepError::Final { state, event }, Some(at)) => {
            format!("{what} {state} at {at}: `{event}` is no longer possible")
        }
        (StepError::NotAllowed { state, event }, _) => {
            format!("{what} is `{state}`: `{event}` is not possible now")
        }
        (e, _) => format!("{what}: {e}"),
    }
}
