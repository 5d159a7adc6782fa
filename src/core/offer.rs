//! What the offers services return; the pages and the API render these, the CLI prints
//! them. Pure data: the store builds them from rows (its edge parse), the services hand them
//! on, and their `ToSchema` is the API's documented response shape. The offer, invitation,
//! acceptance and reseller values are also what a transition writes (`store::Record`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::domain::{
    AdminRole, Country, DomainName, EmailAddress, InstanceId, Locale, MpnId, OfferId, OfferKind,
    ProductId, Timestamp,
};
use super::instance::{EmailRow, HistoryRow};

/// One product line of an offer or an acceptance. `licences` is None for trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OfferLine {
    /// A catalog product id.
    #[schema(value_type = String, example = "m365-e3")]
    pub id: ProductId,
    #[schema(example = "Microsoft 365 E3")]
    pub name: String,
    /// Absent for a trial.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 25)]
    pub licences: Option<u32>,
}

/// An offer as created: its Offer ID, signed link, products and terms.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Offer)]
pub struct OfferRow {
    #[schema(value_type = String, example = "PF-ABCDEFGHJKLM")]
    pub offer_id: OfferId,
    /// The offer's lifecycle instance.
    #[schema(value_type = String)]
    pub instance_id: InstanceId,
    /// `trial`, `purchase` or `delegated_admin`.
    #[schema(value_type = String, example = "purchase")]
    pub kind: OfferKind,
    #[schema(example = "loc-berlin")]
    pub location_id: String,
    /// ISO 3166-1 alpha-2.
    #[schema(value_type = String, example = "DE")]
    pub country: Country,
    pub products: Vec<OfferLine>,
    /// `full` or `limited`; null: none.
    #[schema(value_type = Option<String>, example = "limited")]
    pub delegated_admin: Option<AdminRole>,
    /// The relationship extends itself at its end (limited administration only).
    pub auto_extend: bool,
    pub key_id: String,
    /// The customer's link.
    pub link: String,
    pub message: Option<String>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

impl OfferRow {
    /// The advisor code: the last path segment of the offer's link.
    pub fn advisor_code(&self) -> &str {
        self.link.rsplit('/').next().unwrap_or_default()
    }
}

/// An offer with its lifecycle state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferView {
    #[serde(flatten)]
    pub offer: OfferRow,
    /// `created`, `open`, `expired` or `withdrawn`.
    #[schema(example = "open")]
    pub state: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub final_at: Option<Timestamp>,
    /// When the offer's partner location left the location source (None: available).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub location_removed_at: Option<Timestamp>,
}

/// Filters of an offer list; all optional.
#[derive(Debug, Clone, Default)]
pub struct OfferFilter {
    pub state: Option<String>,
    pub kind: Option<OfferKind>,
    pub location_id: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    /// Who created them (an actor label: a portal user's email, an API token's name, `cli`).
    pub created_by: Option<String>,
    /// Offers created before this one (by creation time, then id): the next page.
    pub before: Option<(Timestamp, OfferId)>,
    pub limit: i64,
}

/// A partner location, as the daily sync left it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Location {
    #[schema(example = "loc-berlin")]
    pub id: String,
    #[schema(example = "Berlin")]
    pub name: String,
    #[schema(example = "DE")]
    pub country: String,
    pub partner_id: String,
}

/// A synced partner location (only these can be chosen for offers), with when a sync first
/// listed it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationView {
    #[serde(flatten)]
    pub location: Location,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen_at: Timestamp,
}

/// An invitation: the offer's link sent to one recipient.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Invitation)]
pub struct InvitationRow {
    /// The invitation's lifecycle instance.
    #[schema(value_type = String)]
    pub instance_id: InstanceId,
    #[schema(value_type = String, example = "PF-ABCDEFGHJKLM")]
    pub offer_id: OfferId,
    #[schema(value_type = String, format = Email, example = "it@contoso.example")]
    pub recipient: EmailAddress,
    #[schema(example = "en")]
    pub locale: String,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// An invitation with its state and its emails.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationView {
    #[serde(flatten)]
    pub invitation: InvitationRow,
    pub state: String,
    pub emails: Vec<EmailRow>,
}

/// An invitation just sent (`offers::invite`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationSent {
    #[schema(value_type = String)]
    pub invitation_id: InstanceId,
    #[schema(value_type = String, example = "PF-ABCDEFGHJKLM")]
    pub offer_id: OfferId,
    #[schema(value_type = String, format = Email, example = "it@contoso.example")]
    pub recipient: EmailAddress,
    /// `de` or `en`.
    #[schema(value_type = String, example = "en")]
    pub locale: Locale,
    pub state: String,
}

/// A customer's acceptance of an offer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Acceptance)]
pub struct AcceptanceRow {
    /// The acceptance's lifecycle instance.
    #[schema(value_type = String)]
    pub instance_id: InstanceId,
    #[schema(value_type = String, example = "PF-ABCDEFGHJKLM")]
    pub offer_id: OfferId,
    #[schema(example = "Contoso AG")]
    pub organisation: String,
    #[schema(value_type = String, example = "contoso.example")]
    pub domain: DomainName,
    #[schema(value_type = String, format = Email, example = "admin@contoso.example")]
    pub admin_email: EmailAddress,
    pub products: Vec<OfferLine>,
    /// `full` or `limited`; null: none.
    #[schema(value_type = Option<String>, example = "limited")]
    pub delegated_admin: Option<AdminRole>,
    #[schema(value_type = Option<String>)]
    pub relationship_id: Option<InstanceId>,
    #[schema(value_type = String, format = DateTime)]
    pub accepted_at: Timestamp,
    /// When the admin mailbox confirmed it; None while `unconfirmed` (or expired so).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub confirmed_at: Option<Timestamp>,
}

/// The delegated-admin relationship an acceptance granted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelationshipView {
    #[schema(value_type = String)]
    pub id: InstanceId,
    /// `full` or `limited`.
    pub role: Option<String>,
    pub state: String,
    /// RFC 3339.
    pub ends_at: Option<String>,
}

/// An acceptance with its state, its relationship and its matched sign-up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AcceptanceView {
    #[serde(flatten)]
    pub acceptance: AcceptanceRow,
    pub state: String,
    pub relationship: Option<RelationshipView>,
    pub signup: Option<SignupRow>,
}

/// A reported sign-up (webhook or CLI), matched to an acceptance or not yet.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = SignupRecord)]
pub struct SignupRow {
    pub id: i64,
    pub advisor_code: String,
    pub offer_id: Option<String>,
    pub domain: String,
    #[schema(value_type = String, format = DateTime)]
    pub completed_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub source: String,
    pub acceptance_id: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub matched_at: Option<Timestamp>,
}

/// A reported sign-up, recorded (`offers::record_signup`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignupReceipt {
    /// False when this (advisor code, domain) was reported before.
    pub recorded: bool,
    /// The offer the code verifies for.
    #[schema(value_type = String, example = "PF-ABCDEFGHJKLM")]
    pub offer_id: OfferId,
}

/// Everything the partner tracks about an offer (`offers::tracking`): the offer, its
/// location, invitations, confirmed acceptances, sign-ups no acceptance matched, history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferTracking {
    #[serde(flatten)]
    pub offer: OfferView,
    /// None: the location is not synced (any more).
    pub location: Option<Location>,
    pub invitations: Vec<InvitationView>,
    /// Confirmed acceptances only.
    pub acceptances: Vec<AcceptanceView>,
    /// Acceptances still waiting for their confirmation link.
    pub unconfirmed_acceptances: i64,
    pub unmatched_signups: Vec<SignupRow>,
    /// The offer lifecycle's transitions.
    pub history: Vec<HistoryRow>,
}

/// A reseller partnership request.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Reseller)]
pub struct ResellerRow {
    #[schema(value_type = String, example = "7654321")]
    pub mpn_id: MpnId,
    #[schema(value_type = String)]
    pub instance_id: InstanceId,
    #[schema(example = "Reseller GmbH")]
    pub name: String,
    #[schema(value_type = String, format = Email, example = "partners@reseller.example")]
    pub email: EmailAddress,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A reseller partnership with its state and its customers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResellerView {
    #[serde(flatten)]
    pub reseller: ResellerRow,
    pub state: String,
    pub customers: Vec<ResellerCustomer>,
}

/// A customer associated with a reseller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResellerCustomer {
    #[schema(example = "7654321")]
    pub mpn_id: String,
    #[schema(example = "fabrikam.example")]
    pub domain: String,
    pub acceptance_id: Option<String>,
    /// Only while the partnership is active: a removed reseller is no one's support contact.
    pub support_contact: bool,
    /// The state of the reseller's partnership (`active`, `removed`, …); the association
    /// stays when a partnership ends.
    pub partnership: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A customer found by search: its acceptances (with offers), the partner's invitations to
/// it, and resellers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerView {
    #[schema(example = "contoso.example")]
    pub domain: String,
    /// `accepted` (an acceptance matches) or `invited` (only invitations match: no
    /// organisation and no admin emails).
    #[schema(value_type = String, example = "accepted")]
    pub source: &'static str,
    pub organisation: String,
    pub admin_emails: Vec<String>,
    pub acceptances: Vec<AcceptanceView>,
    /// Invitations sent to the user name or to addresses at the domain, with their state.
    pub invitations: Vec<CustomerInvitation>,
    pub resellers: Vec<ResellerCustomer>,
}

/// An invitation to a customer, with its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerInvitation {
    #[serde(flatten)]
    pub invitation: InvitationRow,
    pub state: String,
}
