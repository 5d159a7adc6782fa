//! What the partner portal shows of one customer and of the reseller list: read models the
//! `offers` services return (`offers::customer_detail`, `offers::resellers_page`) and the
//! portal renders.

use crate::core::instance::{EmailRow, TimerView};
use crate::core::offer::{CustomerInvitation, CustomerView, RelationshipView, ResellerView};

/// One customer (by domain): what the search finds, with each invitation's delivery, each
/// delegated-admin relationship's reminders and the associated resellers' names.
#[derive(Debug, Clone)]
pub struct CustomerDetail {
    pub customer: CustomerView,
    /// The newest invitations first, at most a page of them (`more`: how many are left out).
    pub invitations: Vec<InvitationDelivery>,
    pub more_invitations: usize,
    pub relationships: Vec<RelationshipDetail>,
    /// The associated resellers' names by MPN ID (None: the partnership row is gone).
    pub reseller_names: Vec<(String, Option<String>)>,
}

/// An invitation to the customer with its emails (the invitation and any reminder).
#[derive(Debug, Clone)]
pub struct InvitationDelivery {
    pub invitation: CustomerInvitation,
    pub emails: Vec<EmailRow>,
}

/// A delegated-admin relationship an acceptance granted: its end, the expiry reminders sent
/// and the ones still to come.
#[derive(Debug, Clone)]
pub struct RelationshipDetail {
    /// The acceptance's instance id.
    pub acceptance_id: String,
    pub relationship: RelationshipView,
    /// `admin_expiry_reminder` emails (to the partner and to the customer).
    pub reminders_sent: Vec<EmailRow>,
    /// Pending reminder and end timers.
    pub reminders_due: Vec<TimerView>,
}

/// A page of reseller partnerships by MPN ID; `next`: the cursor of the following page.
#[derive(Debug, Clone)]
pub struct ResellerPage {
    pub resellers: Vec<ResellerView>,
    pub next: Option<String>,
}
