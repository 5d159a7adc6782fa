//! A campaign's states and its lifecycle, and the states of its recipients' ledger rows.
//! Pure: the store parses the stored strings into these once (an unknown one is a corrupt
//! row), services decide with [`CampaignState::apply`], and the wire values (JSON, CSV,
//! CLI output) are the `as_str` strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::domain::Timestamp;

/// Where a campaign is. `draft` → `running` ⇄ `paused`; `running` → `completed` when nothing
/// is left to send; `cancelled` by the operator; `expired` with its offer (even once
/// completed: its recipients still waiting expire).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Draft,
    Running,
    Paused,
    Completed,
    Cancelled,
    Expired,
}

/// What can happen to a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignAction {
    /// The operator starts it (a draft, or a paused one: the same as resuming).
    Start,
    /// The operator pauses it, or the sender does (repeated failures, a template that cannot
    /// render).
    Pause,
    /// The operator resumes it, or the sender does after an automatic pause.
    Resume,
    /// The operator cancels it.
    Cancel,
    /// Nothing is left to send (no recipient pending or being sent, no reminder scheduled).
    Complete,
    /// Its offer expired or is no longer open.
    Expire,
}

/// `action` is not possible from `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} campaign cannot be {}", action.past())]
pub struct NotAllowed {
    pub from: CampaignState,
    pub action: CampaignAction,
}

impl CampaignState {
    pub const ALL: [CampaignState; 6] = [
        CampaignState::Draft,
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::Completed,
        CampaignState::Cancelled,
        CampaignState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
            CampaignState::Cancelled => "cancelled",
            CampaignState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "`{}` is not a campaign state (draft, running, paused, completed, cancelled, expired)",
                    s.escape_debug()
                )
            })
    }

    /// The lifecycle: the state `action` leads to from `self`, or why not.
    pub fn apply(self, action: CampaignAction) -> Result<CampaignState, NotAllowed> {
        use CampaignAction as A;
        use CampaignState as S;
        match (self, action) {
            (S::Draft | S::Paused, A::Start) => Ok(S::Running),
            (S::Running, A::Pause) => Ok(S::Paused),
            (S::Paused, A::Resume) => Ok(S::Running),
            (S::Draft | S::Running | S::Paused, A::Cancel) => Ok(S::Cancelled),
            (S::Running, A::Complete) => Ok(S::Completed),
            (S::Draft | S::Running | S::Paused | S::Completed, A::Expire) => Ok(S::Expired),
            (from, action) => Err(NotAllowed { from, action }),
        }
    }

    /// Whether the campaign is over (its `finished_at` is set): completed, cancelled or
    /// expired. A completed one can still expire.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            CampaignState::Completed | CampaignState::Cancelled | CampaignState::Expired
        )
    }

    /// Whether nothing can happen to it any more.
    pub fn is_terminal(self) -> bool {
        CampaignAction::ALL
            .into_iter()
            .all(|a| self.apply(a).is_err())
    }

    /// Whether recipients may be added: before it is over (draft, running, paused).
    pub fn accepts_recipients(self) -> bool {
        matches!(
            self,
            CampaignState::Draft | CampaignState::Running | CampaignState::Paused
        )
    }
}

impl CampaignAction {
    pub const ALL: [CampaignAction; 6] = [
        CampaignAction::Start,
        CampaignAction::Pause,
        CampaignAction::Resume,
        CampaignAction::Cancel,
        CampaignAction::Complete,
        CampaignAction::Expire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignAction::Start => "start",
            CampaignAction::Pause => "pause",
            CampaignAction::Resume => "resume",
            CampaignAction::Cancel => "cancel",
            CampaignAction::Complete => "complete",
            CampaignAction::Expire => "expire",
        }
    }

    /// The action as an activity ("starting"), as error messages name it.
    pub fn gerund(self) -> &'static str {
        match self {
            CampaignAction::Start => "starting",
            CampaignAction::Pause => "pausing",
            CampaignAction::Resume => "resuming",
            CampaignAction::Cancel => "cancelling",
            CampaignAction::Complete => "completing",
            CampaignAction::Expire => "expiring",
        }
    }

    fn past(self) -> &'static str {
        match self {
            CampaignAction::Start => "started",
            CampaignAction::Pause => "paused",
            CampaignAction::Resume => "resumed",
            CampaignAction::Cancel => "cancelled",
            CampaignAction::Complete => "completed",
            CampaignAction::Expire => "expired",
        }
    }

    /// The states this action may be taken from (in [`CampaignState::ALL`] order).
    pub fn from_states(self) -> Vec<CampaignState> {
        CampaignState::ALL
            .into_iter()
            .filter(|s| s.apply(self).is_ok())
            .collect()
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`: column widths (`{:<10}`) apply.
        f.pad(self.as_str())
    }
}

impl fmt::Display for CampaignAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for CampaignState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// Where a campaign recipient's ledger row is. `sent` means delivered with no outcome yet
/// ("awaiting" in the counts); `accepted`, `expired` and `bounced` are outcomes that may
/// follow a delivery.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    /// To send: an invitation, a due reminder, or a retry.
    Pending,
    /// Claimed by a sender (leased).
    Sending,
    /// The last message was handed to the server.
    Sent,
    /// Gave up (a permanent error, or too many attempts).
    Failed,
    /// A hard bounce matched one of its messages.
    Bounced,
    /// Its address is on the suppression list (unsubscribed, bounced before, operator).
    Suppressed,
    /// It accepted the offer.
    Accepted,
    /// The offer expired while it was waiting.
    Expired,
}

impl RecipientState {
    pub const ALL: [RecipientState; 8] = [
        RecipientState::Pending,
        RecipientState::Sending,
        RecipientState::Sent,
        RecipientState::Failed,
        RecipientState::Bounced,
        RecipientState::Suppressed,
        RecipientState::Accepted,
        RecipientState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Sending => "sending",
            RecipientState::Sent => "sent",
            RecipientState::Failed => "failed",
            RecipientState::Bounced => "bounced",
            RecipientState::Suppressed => "suppressed",
            RecipientState::Accepted => "accepted",
            RecipientState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "`{}` is not a recipient state (pending, sending, sent, failed, bounced, suppressed, accepted, expired)",
                    s.escape_debug()
                )
            })
    }
}

impl fmt::Display for RecipientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RecipientState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// A campaign as the store keeps it (what the services return and the API and CLI show).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Campaign)]
pub struct CampaignRow {
    pub id: String,
    pub offer_id: String,
    pub name: String,
    pub template: String,
    pub state: CampaignState,
    pub pause_reason: Option<String>,
    pub consecutive_failures: i64,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// Optional overall cap, messages per minute.
    pub max_per_minute: Option<i64>,
    /// A reminder this long after the invitation to those who have not accepted.
    #[schema(value_type = Option<String>, example = "3d")]
    pub reminder_after: Option<crate::core::domain::Span>,
    pub reminder_template: Option<String>,
}

/// A campaign's recipients in two dimensions. Where each one is (`pending` … `expired`: one
/// state each, they add up to `total`), and what was delivered (`sent`, `reminded`: a
/// recipient whose invitation went out counts as sent whatever became of it later —
/// accepted, expired, bounced). Expiry and acceptance are outcomes, not delivery states.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default, ToSchema)]
pub struct RecipientCounts {
    pub total: i64,
    /// To send: an invitation, a due reminder, or a retry.
    pub pending: i64,
    pub sending: i64,
    /// Delivered (the last message handed to the server), no outcome yet.
    pub awaiting: i64,
    pub failed: i64,
    pub bounced: i64,
    pub suppressed: i64,
    pub accepted: i64,
    pub expired: i64,
    /// Delivery: invitations sent (whatever the recipient's state is now).
    pub sent: i64,
    /// Delivery: reminders sent (whatever the recipient's state is now).
    pub reminded: i64,
    /// Soft bounces counted (the recipients stay as they are).
    pub soft_bounces: i64,
    /// Reminders scheduled and not yet due or not yet taken up (the campaign waits for them).
    pub reminders_scheduled: i64,
    /// When the first and the last scheduled reminder are due.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_reminder_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_reminder_at: Option<Timestamp>,
}

impl RecipientCounts {
    /// Counts `n` recipients in `state` (and in the total).
    pub fn add(&mut self, state: RecipientState, n: i64) {
        self.total += n;
        *match state {
            RecipientState::Pending => &mut self.pending,
            RecipientState::Sending => &mut self.sending,
            RecipientState::Sent => &mut self.awaiting,
            RecipientState::Failed => &mut self.failed,
            RecipientState::Bounced => &mut self.bounced,
            RecipientState::Suppressed => &mut self.suppressed,
            RecipientState::Accepted => &mut self.accepted,
            RecipientState::Expired => &mut self.expired,
        } += n;
    }

    /// Nothing to send now or later: no recipient pending or being sent, no reminder
    /// scheduled. A running campaign in this state is completed.
    pub fn nothing_left(&self) -> bool {
        self.pending == 0 && self.sending == 0 && self.reminders_scheduled == 0
    }
}

#[cfg(test)]
mod tests {
    use super::CampaignAction as A;
    use super::CampaignState as S;
    use super::*;

    /// The whole lifecycle table: every state × every action.
    #[test]
    fn the_lifecycle_table() {
        let table: [(S, [Option<S>; 6]); 6] = [
            //            start             pause            resume           cancel                complete            expire
            (
                S::Draft,
                [
                    Some(S::Running),
                    None,
                    None,
                    Some(S::Cancelled),
                    None,
                    Some(S::Expired),
                ],
            ),
            (
                S::Running,
                [
                    None,
                    Some(S::Paused),
                    None,
                    Some(S::Cancelled),
                    Some(S::Completed),
                    Some(S::Expired),
                ],
            ),
            (
                S::Paused,
                [
                    Some(S::Running),
                    None,
                    Some(S::Running),
                    Some(S::Cancelled),
                    None,
                    Some(S::Expired),
                ],
            ),
            (
                S::Completed,
                [None, None, None, None, None, Some(S::Expired)],
            ),
            (S::Cancelled, [None; 6]),
            (S::Expired, [None; 6]),
        ];
        assert_eq!(
            A::ALL,
            [
                A::Start,
                A::Pause,
                A::Resume,
                A::Cancel,
                A::Complete,
                A::Expire
            ]
        );
        for (from, row) in table {
            for (action, want) in A::ALL.into_iter().zip(row) {
                let got = from.apply(action);
                match want {
                    Some(to) => assert_eq!(got, Ok(to), "{from} {action}"),
                    None => assert_eq!(got, Err(NotAllowed { from, action }), "{from} {action}"),
                }
            }
        }
    }

    /// The store's SQL names these states literally (expiry, completion, the states that can
    /// still change): they must agree with the table.
    #[test]
    fn the_states_the_store_names_agree_with_the_table() {
        assert_eq!(
            A::Expire.from_states(),
            [S::Draft, S::Running, S::Paused, S::Completed]
        );
        assert_eq!(A::Complete.from_states(), [S::Running]);
        assert_eq!(A::Pause.from_states(), [S::Running]);
        assert_eq!(A::Resume.from_states(), [S::Paused]);
        assert_eq!(A::Start.from_states(), [S::Draft, S::Paused]);
        assert_eq!(A::Cancel.from_states(), [S::Draft, S::Running, S::Paused]);
        let live: Vec<S> = S::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(live, [S::Draft, S::Running, S::Paused, S::Completed]);
        let finished: Vec<S> = S::ALL.into_iter().filter(|s| s.is_finished()).collect();
        assert_eq!(finished, [S::Completed, S::Cancelled, S::Expired]);
        for s in S::ALL {
            // Whatever a campaign does, it ends finished; and only a finished one is terminal.
            if s.is_terminal() {
                assert!(s.is_finished(), "{s}");
            }
            assert_eq!(s.accepts_recipients(), A::Cancel.from_states().contains(&s));
        }
    }

    #[test]
    fn wire_values_are_the_stored_strings() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Ok(s));
            assert_eq!(s.as_str().parse::<S>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
            assert_eq!(
                serde_json::from_value::<S>(serde_json::json!(s.as_str())).unwrap(),
                s
            );
        }
        let names: Vec<&str> = S::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "draft",
                "running",
                "paused",
                "completed",
                "cancelled",
                "expired"
            ]
        );
        for r in RecipientState::ALL {
            assert_eq!(RecipientState::parse(r.as_str()), Ok(r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.as_str())
            );
        }
        let names: Vec<&str> = RecipientState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "pending",
                "sending",
                "sent",
                "failed",
                "bounced",
                "suppressed",
                "accepted",
                "expired"
            ]
        );
        assert!(S::parse("Running").is_err());
        assert!(S::parse("").is_err());
        assert!(RecipientState::parse("awaiting").is_err());
        // Display pads like a string (the CLI's columns).
        assert_eq!(format!("{:<9}|", S::Draft), "draft    |");
        assert_eq!(
            NotAllowed {
                from: S::Cancelled,
                action: A::Start
            }
            .to_string(),
            "a cancelled campaign cannot be started"
        );
    }
}
