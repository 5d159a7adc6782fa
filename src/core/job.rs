//! What a job does, as a closed list: [`JobPayload`], one variant per job kind. A job row
//! stores it as its `kind` column and a JSON `payload` (the variant's fields); it is parsed
//! once, when the row is read, so the runner matches on a type and never reads JSON by key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::domain::{EmailAddress, InstanceId, Locale, Timestamp};

/// Everything needed to send one email, fixed when the transition committed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub message_id: String,
    pub to: EmailAddress,
    pub locale: Locale,
    pub template: String,
}

/// A lifecycle email: its envelope and the template context, both fixed at commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailJob {
    /// The email ledger row this job delivers.
    pub message_id: String,
    pub envelope: Envelope,
    pub context: Value,
    pub workflow: String,
}

/// The emails whose address an operator may correct: the offer invitations and their
/// reminder, whose only link is the offer's shared one — sending one to another address is
/// what inviting that address does. Every other email may carry a link that is the
/// recipient's own (a portal sign-in link, a mailbox confirmation, a personal page) and is
/// never sent anywhere else.
pub const READDRESSABLE_TEMPLATES: [&str; 4] = [
    "trial_invitation",
    "purchase_offer",
    "admin_offer",
    "invitation_reminder",
];

impl EmailJob {
    /// Whether an operator may send it to a corrected address ([`READDRESSABLE_TEMPLATES`]).
    pub fn readdressable(&self) -> bool {
        READDRESSABLE_TEMPLATES.contains(&self.envelope.template.as_str())
    }
}

/// A workflow timer: at its time, `event` is sent to `instance` (fenced by the job's lease).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimerJob {
    pub instance: InstanceId,
    pub timer: String,
    pub event: String,
    pub workflow: String,
}

/// One run of a cron schedule, for `tick` (standing for the ticks after `after`, if any).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduleJob {
    pub schedule: String,
    pub tick: Timestamp,
    #[serde(default)]
    pub after: Option<Timestamp>,
}

/// Does nothing (`bench queue`: the queue's own cost); `note` is carried, not read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NoopJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A job's work. `Unreadable` is a stored row that fits no kind (written by another version,
/// or damaged): the runner fails it with `error`, it never stops a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum JobPayload {
    Email(EmailJob),
    Timer(TimerJob),
    Schedule(ScheduleJob),
    Noop(NoopJob),
    Unreadable {
        kind: String,
        raw: String,
        error: String,
    },
}

impl JobPayload {
    /// Every kind a readable payload has (`kind()` of each variant but `Unreadable`).
    pub const KINDS: [&'static str; 4] = ["email", "timer", "schedule", "noop"];

    /// The row's `kind` column.
    pub fn kind(&self) -> &str {
        match self {
            JobPayload::Email(_) => "email",
            JobPayload::Timer(_) => "timer",
            JobPayload::Schedule(_) => "schedule",
            JobPayload::Noop(_) => "noop",
            JobPayload::Unreadable { kind, .. } => kind,
        }
    }

    /// The row's `payload` column.
    pub fn to_json_text(&self) -> String {
        let v = match self {
            JobPayload::Email(j) => serde_json::to_string(j),
            JobPayload::Timer(j) => serde_json::to_string(j),
            JobPayload::Schedule(j) => serde_json::to_string(j),
            JobPayload::Noop(j) => serde_json::to_string(j),
            JobPayload::Unreadable { raw, .. } => return raw.clone(),
        };
        v.unwrap_or_else(|_| "{}".into())
    }

    /// Parses a stored row's `kind` and `payload`; never fails (see `Unreadable`).
    pub fn from_row(kind: &str, payload: &str) -> JobPayload {
        fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
            serde_json::from_str(s).map_err(|e| e.to_string())
        }
        let parsed = match kind {
            "email" => parse(payload).map(JobPayload::Email),
            "timer" => parse::<TimerJob>(payload).and_then(|t| {
                InstanceId::parse(t.instance.as_str())
                    .map(|_| JobPayload::Timer(t))
                    .map_err(|e| format!("instance: {e}"))
            }),
            "schedule" => parse(payload).map(JobPayload::Schedule),
            "noop" => parse(payload).map(JobPayload::Noop),
            other => Err(format!("unknown job kind `{other}`")),
        };
        parsed.unwrap_or_else(|error| JobPayload::Unreadable {
            kind: kind.into(),
            raw: payload.into(),
            error: format!("bad {kind} payload: {error}"),
        })
    }

    /// The timer, if this job is one.
    pub fn timer(&self) -> Option<&TimerJob> {
        match self {
            JobPayload::Timer(t) => Some(t),
            _ => None,
        }
    }

    /// The email ledger row this job delivers, if it is an email.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            JobPayload::Email(e) => Some(&e.message_id),
            _ => None,
        }
    }
}

/// As the stored JSON (what `jobs list --json` shows).
impl Serialize for JobPayload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JobPayload::Email(j) => j.serialize(s),
            JobPayload::Timer(j) => j.serialize(s),
            JobPayload::Schedule(j) => j.serialize(s),
            JobPayload::Noop(j) => j.serialize(s),
            JobPayload::Unreadable { raw, .. } => serde_json::from_str::<Value>(raw)
                .unwrap_or(Value::Null)
                .serialize(s),
        }
    }
}

/// Where a job is in its life: waiting (until `run_at`), running (held by a node's lease),
/// done, failed for good, or cancelled. Stored as its name; an unknown name is a corrupt row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Scheduled,
    Running,
    Failed,
    Done,
    Cancelled,
}

impl JobState {
    /// In the order pages show them.
    pub const ALL: [JobState; 5] = [
        JobState::Scheduled,
        JobState::Running,
        JobState::Failed,
        JobState::Done,
        JobState::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for JobState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for JobState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// What an operator does to one job or to every job a [`JobFilter`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// A failed job runs again now, with a fresh attempt budget.
    Retry,
    /// A waiting or failed job is cancelled: it never runs (again).
    Cancel,
    /// A waiting job is made due now.
    RunNow,
}

impl JobAction {
    pub const ALL: [JobAction; 3] = [JobAction::Retry, JobAction::Cancel, JobAction::RunNow];

    /// Its name in forms and in the audit log (`job.retry`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Cancel => "cancel",
            JobAction::RunNow => "run",
        }
    }

    pub fn parse(s: &str) -> Option<JobAction> {
        JobAction::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The action as a past participle, for messages ("cannot be retried").
    pub fn done_word(self) -> &'static str {
        match self {
            JobAction::Retry => "retried",
            JobAction::Cancel => "cancelled",
            JobAction::RunNow => "run now",
        }
    }

    /// The states a job must be in for the action to apply to it. A running job is never
    /// touched: its worker's outcome is fenced by its lease, and what it did (an email handed
    /// to the server) cannot be taken back.
    pub fn applies_to(self) -> &'static [JobState] {
        match self {
            JobAction::Retry => &[JobState::Failed],
            JobAction::Cancel => &[JobState::Scheduled, JobState::Failed],
            JobAction::RunNow => &[JobState::Scheduled],
        }
    }
}

/// Which jobs an operator looks at: a state and a kind ("" for any), created in
/// `[from, to)` (either end open when None).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: String,
    pub kind: String,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl JobFilter {
    /// The states of the jobs `action` applies to among those this filter selects (none when
    /// the filter's state is one the action does not apply to).
    pub fn states_for(&self, action: JobAction) -> Vec<JobState> {
        action
            .applies_to()
            .iter()
            .copied()
            .filter(|s| self.state.is_empty() || s.as_str() == self.state)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_bad_rows_are_unreadable() {
        let id = InstanceId::generate();
        let jobs = [
            JobPayload::Timer(TimerJob {
                instance: id,
                timer: "expiry".into(),
                event: "expire".into(),
                workflow: "offer".into(),
            }),
            JobPayload::Schedule(ScheduleJob {
                schedule: "reconcile".into(),
                tick: Timestamp(5),
                after: Some(Timestamp(1)),
            }),
            JobPayload::Noop(NoopJob {
                note: Some("quotes \" and '".into()),
            }),
        ];
        for j in jobs {
            assert_eq!(JobPayload::from_row(j.kind(), &j.to_json_text()), j);
            assert!(JobPayload::KINDS.contains(&j.kind()), "{}", j.kind());
        }
        // Rows written before typed payloads: the same shape.
        let old = r#"{"schedule":"reconcile","tick":5,"after":null}"#;
        assert!(matches!(
            JobPayload::from_row("schedule", old),
            JobPayload::Schedule(ScheduleJob {
                tick: Timestamp(5),
                after: None,
                ..
            })
        ));
        for (kind, raw, why) in [
            (
                "timer",
                r#"{"instance":"x","timer":"t","event":"e","workflow":"w"}"#,
                "instance",
            ),
            ("timer", "{}", "missing field"),
            ("fax", "{}", "unknown job kind `fax`"),
            ("email", "not json", "bad email payload"),
        ] {
            match JobPayload::from_row(kind, raw) {
                JobPayload::Unreadable { error, raw: r, .. } => {
                    assert!(error.contains(why), "{kind} {raw}: {error}");
                    assert_eq!(r, raw);
                }
                other => panic!("{kind} {raw} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn job_states_read_back_as_written() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(s, s.as_str());
        }
        assert_eq!(JobState::parse("Running"), None);
    }

    #[test]
    fn a_bulk_action_takes_only_the_states_it_applies_to() {
        let any = JobFilter::default();
        assert_eq!(any.states_for(JobAction::Retry), ["failed"]);
        assert_eq!(any.states_for(JobAction::Cancel), ["scheduled", "failed"]);
        assert_eq!(any.states_for(JobAction::RunNow), ["scheduled"]);
        let failed = JobFilter {
            state: "failed".into(),
            ..JobFilter::default()
        };
        assert_eq!(failed.states_for(JobAction::Cancel), ["failed"]);
        assert!(failed.states_for(JobAction::RunNow).is_empty());
        for state in ["running", "done", "cancelled", "nonsense"] {
            let f = JobFilter {
                state: state.into(),
                ..JobFilter::default()
            };
            for a in JobAction::ALL {
                assert!(f.states_for(a).is_empty(), "{a:?} on {state}");
                assert_eq!(JobAction::parse(a.as_str()), Some(a));
            }
        }
    }
}
