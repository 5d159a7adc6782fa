//! The portal overview's read models: counts by lifecycle state, the next relationship
//! expiries, running campaigns with their progress, and the funnel of a period (sent →
//! delivered → link opened → accepted → completed) per offer kind. Pure data.

use crate::core::domain::{OfferKind, Timestamp};

/// What the funnel counts: events in `[from, to)`, of offers of one kind and/or location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelFilter {
    /// The period: the UTC days from `from` up to `to` (the store counts every day the range
    /// touches; the portal gives midnights).
    pub from: Timestamp,
    pub to: Timestamp,
    pub kind: Option<OfferKind>,
    pub location: Option<String>,
}

/// One funnel: each stage counts the events of the period (not a cohort).
/// `sent`: invitation messages handed to the transport (lifecycle invitations and campaign
/// messages); `delivered`: sent less the hard bounces received; `opened`: offers whose link was
/// first opened (a link is not personal: one per offer); `accepted`: acceptances confirmed;
/// `completed`: acceptances completed (sign-up done, or a delegated-admin offer confirmed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Funnel {
    pub sent: i64,
    pub delivered: i64,
    pub opened: i64,
    pub accepted: i64,
    pub completed: i64,
}

impl Funnel {
    pub fn add(&mut self, o: &Funnel) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.opened += o.opened;
        self.accepted += o.accepted;
        self.completed += o.completed;
    }

    /// The stages in order, with their keys.
    pub fn stages(&self) -> [(&'static str, i64); 5] {
        [
            ("sent", self.sent),
            ("delivered", self.delivered),
            ("opened", self.opened),
            ("accepted", self.accepted),
            ("completed", self.completed),
        ]
    }
}

/// How many lifecycles of a workflow are in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub workflow: String,
    pub state: String,
    pub n: i64,
}

/// A delegated-admin relationship's coming end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipExpiry {
    pub instance_id: String,
    pub ends_at: Timestamp,
    pub customer: String,
    pub role: String,
}

/// A running campaign and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignProgress {
    pub id: String,
    pub name: String,
    pub offer_id: String,
    pub total: i64,
    /// Recipients no longer pending (sent or being sent, failed, bounced, suppressed, …).
    pub done: i64,
}

/// Everything the overview shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// Offers, invitations (trial, purchase, admin offer), acceptances and relationships by
    /// state (all time).
    pub states: Vec<StateCount>,
    pub expiries: Vec<RelationshipExpiry>,
    pub campaigns: Vec<CampaignProgress>,
    /// The period's funnel per offer kind (every kind present, zeros included).
    pub funnel: Vec<(OfferKind, Funnel)>,
}

impl Overview {
    /// The count of `workflow` in `state`.
    pub fn count(&self, workflow: &str, state: &str) -> i64 {
        self.states
            .iter()
            .filter(|s| s.workflow == workflow && s.state == state)
            .map(|s| s.n)
            .sum()
    }

    /// The funnel over every kind shown.
    pub fn total(&self) -> Funnel {
        let mut f = Funnel::default();
        for (_, k) in &self.funnel {
            f.add(k);
        }
        f
    }
}
