//! The customer's side: resolving an offer link, accepting (rate-limited, unconfirmed until
//! the customer shows control of a mailbox at the claimed domain), confirming, removing roles.

use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::core::domain::{
    AdminRole, DomainName, EmailAddress, InstanceId, Locale, OfferId, OfferKind, ProductId, Span,
    Timestamp,
};
use crate::core::links::{KeyRing, Purpose};
use crate::core::offer::{AcceptanceRow, AcceptanceView, OfferRow, OfferView};
use crate::engine::EngineError;
use crate::store::{Record, StoreError};

use super::*;

/// Why a customer's link leads nowhere. All but `Closed` show the same 404 page.
#[derive(Debug)]
pub enum Resolve {
    NotFound(String),
    /// The store could not be asked: try again later (never shown as "not found").
    Unavailable(StoreError),
    Closed(Box<OfferView>),
    /// The offer's partner location is no longer listed by the location source (since then):
    /// the offer can no longer be accepted.
    LocationGone(Box<OfferView>, Timestamp),
}

/// Resolves an advisor code to its offer: the code must name an offer we have and carry a
/// valid MAC over that offer and its location, under a key we hold.
pub async fn resolve_code(rt: &AppState, code: &str) -> Result<OfferView, Resolve> {
    let p = KeyRing::split(code).map_err(|e| Resolve::NotFound(e.to_string()))?;
    let id = OfferId::parse(p.subject).map_err(Resolve::NotFound)?;
    let o = match rt.store.offer(&id).await {
        Ok(Some(o)) => o,
        Ok(None) => return Err(Resolve::NotFound(format!("no offer {id}"))),
        Err(e) => return Err(Resolve::Unavailable(e)),
    };
    rt.keys
        .verify(Purpose::AdvisorCode, &p, &[&o.offer.location_id])
        .map_err(|e| Resolve::NotFound(e.to_string()))?;
    if open_or_closed(&o, rt.clock.now()).is_err() {
        return Err(Resolve::Closed(Box::new(o)));
    }
    if let Some(since) = o.location_removed_at {
        return Err(Resolve::LocationGone(Box::new(o), since));
    }
    Ok(o)
}

/// The accept form, parsed: field errors are collected for the page.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub organisation: String,
    pub domain: DomainName,
    pub admin_email: EmailAddress,
    /// Licence counts per product (purchase offers), as the customer set them.
    pub licences: Vec<(ProductId, i64)>,
    pub delegated_admin: bool,
    /// The language of the customer's page: their emails are sent in it.
    pub locale: Locale,
}

/// What became of a submitted accept form.
#[derive(Debug)]
pub enum Accepted {
    /// Recorded as `unconfirmed`: the confirmation link was mailed to the admin address.
    /// Nothing counts until it is used.
    Unconfirmed(InstanceId),
    /// This offer was already accepted (and confirmed) for this domain: nothing recorded.
    AlreadyAccepted,
}

/// Over a limit of the public pages: nothing was recorded or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Too many confirmation emails to this address today.
    Recipient,
    /// Too many confirmation emails for this domain today.
    Domain,
}

/// The sign-up URL the customer is sent to: the configured one plus the advisor code, and
/// nothing from the customer's request.
pub fn signup_redirect(rt: &AppState, o: &OfferView) -> String {
    let mut u = rt.settings.offers.signup_url.clone();
    u.query_pairs_mut()
        .append_pair("advisor_code", o.offer.advisor_code());
    u.to_string()
}

/// True when `email` is at `domain` or one of its subdomains.
pub fn email_at_domain(email: &EmailAddress, domain: &DomainName) -> bool {
    domain.covers(email.domain())
}

/// Records a customer's acceptance as `unconfirmed` and mails the single-use confirmation
/// link to the admin address, which must be at the claimed domain. Location and catalog are
/// checked again (they may have changed since the offer was made). Unconfirmed acceptances
/// block nobody; an offer already accepted and confirmed for the domain records nothing.
/// Confirmation emails are rate-limited per address and per domain (kept in the database).
pub async fn accept(rt: &AppState, o: &OfferView, a: Acceptance) -> Result<Accepted, AcceptError> {
    let offer = &o.offer;
    if !email_at_domain(&a.admin_email, &a.domain) {
        return Err(invalid(
            "admin_email",
            format!(
                "must be an address at {} (or a subdomain of it): the confirmation link is sent there",
                a.domain
            ),
        )
        .into());
    }
    if rt
        .store
        .acceptance_by_domain(&offer.offer_id, &a.domain)
        .await?
        .is_some()
    {
        return Ok(Accepted::AlreadyAccepted);
    }
    offer_location(rt, offer).await?;
    // The customer's licence counts: only for the offer's own products, within limits.
    for (p, _) in &a.licences {
        if !offer.products.iter().any(|l| &l.id == p) {
            return Err(invalid(format!("licences.{p}"), "is not a product of this offer").into());
        }
    }
    let requested: Vec<LineRequest> = offer
        .products
        .iter()
        .map(|l| LineRequest {
            product: l.id.clone(),
            licences: match offer.kind {
                OfferKind::Purchase => Some(
                    a.licences
                        .iter()
                        .find(|(p, _)| p == &l.id)
                        .map(|(_, n)| *n)
                        .unwrap_or(i64::from(l.licences.unwrap_or(1))),
                ),
                _ => None,
            },
        })
        .collect();
    let lines = check_lines(rt, offer.kind, offer.country, &requested, "licences").map_err(
        |e| match e {
            // Name the form field the customer edits.
            OfferError::LicenceCount {
                product, message, ..
            } => OfferError::LicenceCount {
                field: format!("licences.{product}"),
                product,
                message,
            },
            other => other,
        },
    )?;
    // Only now, with a request that would be recorded: the mail limits.
    let now = rt.clock.now();
    let limits = &rt.settings.public;
    let day = Span(86_400_000);
    let recipient = a.admin_email.as_str().to_lowercase();
    if limits.confirmations_per_address_per_day > 0
        && !rt
            .rate_hit(
                &format!("confirm-to:{recipient}"),
                day,
                limits.confirmations_per_address_per_day,
            )
            .await?
    {
        return Err(AcceptError::Limited(Limited::Recipient));
    }
    if limits.confirmations_per_domain_per_day > 0
        && !rt
            .rate_hit(
                &format!("confirm-domain:{}", a.domain),
                day,
                limits.confirmations_per_domain_per_day,
            )
            .await?
    {
        return Err(AcceptError::Limited(Limited::Domain));
    }
    let granted = if a.delegated_admin {
        offer.delegated_admin
    } else {
        None
    };
    let acc_id = InstanceId::generate();
    let confirm_token = confirm_token(rt, &acc_id);
    let confirm_by = now.plus(confirm_window(rt));
    let mut d = Map::new();
    d.insert("offer_id".into(), json!(offer.offer_id));
    d.insert("kind".into(), json!(offer.kind));
    d.insert("customer_email".into(), json!(a.admin_email));
    d.insert("customer_name".into(), json!(a.organisation));
    d.insert("domain".into(), json!(a.domain));
    match offer.kind {
        OfferKind::Trial => {
            d.insert("product_name".into(), json!(lines.first().map(|l| &l.name)));
        }
        OfferKind::Purchase => {
            d.insert("products".into(), lines_json(&lines));
        }
        OfferKind::DelegatedAdmin => {}
    }
    d.insert("delegated_admin".into(), json!(da_str(granted)));
    d.insert("link".into(), json!(offer.link));
    d.insert(
        "confirm_link".into(),
        json!(link_for(rt, "c", &confirm_token)),
    );
    d.insert("confirm_by".into(), json!(confirm_by.to_rfc3339()));
    if granted.is_some() {
        // The relationship is created when (if) the acceptance is confirmed; its id and the
        // link to remove its roles are fixed now, so the confirmation email can carry it.
        let rel = InstanceId::generate();
        let token = rt.keys.sign(Purpose::RemoveRoles, rel.as_str(), &[]);
        d.insert("relationship_id".into(), json!(rel));
        d.insert("remove_roles_link".into(), json!(link_for(rt, "r", &token)));
    }
    let (mut c, _) = rt.engine.plan_start(
        &acc_id,
        "acceptance",
        &d,
        Some(a.locale),
        "customer",
        &["submit"],
    )?;
    c[0].records.push(Record::Acceptance(AcceptanceRow {
        instance_id: acc_id.clone(),
        offer_id: offer.offer_id.clone(),
        organisation: a.organisation.clone(),
        domain: a.domain.clone(),
        admin_email: a.admin_email.clone(),
        products: lines,
        delegated_admin: granted,
        relationship_id: None,
        accepted_at: now,
        confirmed_at: None,
    }));
    rt.engine.commit_plan(&c).await?;
    tracing::info!(offer_id = %offer.offer_id, acceptance = %acc_id, domain = %a.domain, delegated_admin = da_str(granted), "acceptance recorded, waiting for confirmation");
    Ok(Accepted::Unconfirmed(acc_id))
}

/// The token of an acceptance's confirmation link (`/c/{token}`), as mailed.
pub fn confirm_token(rt: &AppState, acceptance: &InstanceId) -> String {
    rt.keys
        .sign(Purpose::ConfirmAcceptance, acceptance.as_str(), &[])
}

/// The offer's location must still be synced (the partner's data may have changed since the
/// offer was made).
async fn offer_location(rt: &AppState, offer: &OfferRow) -> Result<()> {
    rt.store
        .location(&offer.location_id)
        .await?
        .ok_or_else(|| OfferError::LocationNotSynced {
            field: "offer.location_id".into(),
            location: offer.location_id.clone(),
        })?;
    Ok(())
}

/// How long a confirmation link is valid: the acceptance workflow's `confirm` duration.
fn confirm_window(rt: &AppState) -> Span {
    rt.engine
        .definition("acceptance")
        .ok()
        .and_then(|d| d.durations.get("confirm").copied())
        .unwrap_or(Span(48 * 3_600_000))
}

/// Why an accept form was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    Offer(#[from] OfferError),
    #[error("over the limit of confirmation emails ({0:?})")]
    Limited(Limited),
}

impl From<StoreError> for AcceptError {
    fn from(e: StoreError) -> Self {
        AcceptError::Offer(e.into())
    }
}

impl From<EngineError> for AcceptError {
    fn from(e: EngineError) -> Self {
        AcceptError::Offer(e.into())
    }
}

/// An acceptance waiting for its confirmation link, as the confirm page shows it.
#[derive(Debug, Clone)]
pub struct PendingConfirmation {
    pub acceptance: AcceptanceView,
    pub offer: OfferView,
    pub confirm_by: Timestamp,
}

/// What a confirmation link leads to.
#[derive(Debug)]
pub enum Confirmation {
    /// Waiting to be confirmed (the page shows what was requested and a button).
    Pending(Box<PendingConfirmation>),
    /// Confirmed before (this link was used): nothing to do but go on to the sign-up.
    Done(Box<OfferView>),
    /// The link is unknown, forged or not an acceptance's.
    NotFound,
    /// The link ran out (or the acceptance expired) before it was used.
    Expired(Box<OfferView>),
    /// Another acceptance of this offer was confirmed for the domain first.
    AlreadyAccepted(Box<OfferView>),
    /// The offer was withdrawn or expired meanwhile.
    OfferClosed(Box<OfferView>),
    /// The offer's partner location is no longer available.
    LocationGone(Box<OfferView>, Timestamp),
}

/// Looks up what a confirmation link refers to, without changing anything.
pub async fn confirmation(rt: &AppState, token: &str) -> Result<Confirmation> {
    let Some(id) = resolve_page_token(rt, Purpose::ConfirmAcceptance, token) else {
        return Ok(Confirmation::NotFound);
    };
    let Some(acc) = rt.store.acceptance(&id).await? else {
        return Ok(Confirmation::NotFound);
    };
    let Some(o) = rt.store.offer(&acc.acceptance.offer_id).await? else {
        return Ok(Confirmation::NotFound);
    };
    let now = rt.clock.now();
    let confirm_by = acc.acceptance.accepted_at.plus(confirm_window(rt));
    if acc.acceptance.confirmed_at.is_some() {
        return Ok(Confirmation::Done(Box::new(o)));
    }
    if acc.state != "unconfirmed" || now > confirm_by {
        return Ok(Confirmation::Expired(Box::new(o)));
    }
    if rt
        .store
        .acceptance_by_domain(&o.offer.offer_id, &acc.acceptance.domain)
        .await?
        .is_some()
    {
        return Ok(Confirmation::AlreadyAccepted(Box::new(o)));
    }
    if open_or_closed(&o, now).is_err() {
        return Ok(Confirmation::OfferClosed(Box::new(o)));
    }
    if let Some(since) = o.location_removed_at {
        return Ok(Confirmation::LocationGone(Box::new(o), since));
    }
    Ok(Confirmation::Pending(Box::new(PendingConfirmation {
        acceptance: acc,
        offer: o,
        confirm_by,
    })))
}

/// Confirms an acceptance from its link: in one transaction the acceptance becomes
/// `submitted` (confirmation to the customer, notice to the partner) and the delegated-admin
/// relationship the customer granted is requested (approved at once for a standalone offer).
/// Single use: a second call finds it `Done`. Returns what the link leads to now.
pub async fn confirm(rt: &AppState, token: &str) -> Result<Confirmation> {
    let p = match confirmation(rt, token).await? {
        Confirmation::Pending(p) => p,
        other => return Ok(other),
    };
    let acc = &p.acceptance;
    let id = &acc.acceptance.instance_id;
    let offer = &p.offer.offer;
    // Location and catalog again: the partner's data may have changed since the form.
    offer_location(rt, offer).await?;
    let confirm = rt.engine.plan_fire(id, "confirm", "customer").await?;
    // The acceptance's data (relationship id, remove-roles link) and locale, as planned.
    let (data, locale) = (confirm.data.clone(), Locale::parse(&confirm.locale));
    let mut commits = vec![confirm];
    let mut relationship_id = None;
    if let (Some(role), Some(rel)) = (
        acc.acceptance.delegated_admin,
        data.get("relationship_id")
            .and_then(Value::as_str)
            .and_then(|r| InstanceId::parse(r).ok()),
    ) {
        let mut d = Map::new();
        d.insert("customer_email".into(), json!(acc.acceptance.admin_email));
        d.insert("customer_name".into(), json!(acc.acceptance.organisation));
        d.insert("role".into(), json!(role));
        // As the partner offered it and the customer saw it on the page: limited only.
        d.insert(
            "auto_extend".into(),
            json!(offer.auto_extend && role == AdminRole::Limited),
        );
        d.insert(
            "link".into(),
            data.get("remove_roles_link").cloned().unwrap_or_default(),
        );
        d.insert("offer_id".into(), json!(offer.offer_id));
        d.insert("domain".into(), json!(acc.acceptance.domain));
        // A standalone admin offer goes to an existing tenant: confirming approves it. With a
        // trial or purchase the tenant exists once the sign-up completes (reconcile approves).
        let standalone = offer.kind == OfferKind::DelegatedAdmin;
        d.insert("standalone".into(), json!(standalone));
        let events: &[&str] = if standalone {
            &["request", "approve"]
        } else {
            &["request"]
        };
        let (c, _) =
            rt.engine
                .plan_start(&rel, "delegated_admin", &d, locale, "customer", events)?;
        commits.extend(c);
        relationship_id = Some(rel);
    }
    commits[0].records.push(Record::AcceptanceConfirmed {
        acceptance: id.clone(),
        relationship_id,
    });
    match rt.engine.commit_plan(&commits).await {
        Ok(()) => {}
        // Another acceptance of the domain was confirmed at the same moment, or this link
        // was used twice at once: look again.
        Err(EngineError::Store(e))
            if e.is_unique_violation() || matches!(e, StoreError::Conflict(_)) =>
        {
            return confirmation(rt, token).await;
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(offer_id = %offer.offer_id, acceptance = %id, domain = %acc.acceptance.domain, "acceptance confirmed");
    let now = rt.clock.now();
    // A campaign recipient who accepted is `accepted` in the campaign's ledger.
    if let Err(e) = rt
        .store
        .mark_recipient_accepted(
            offer.offer_id.as_str(),
            &acc.acceptance.admin_email.as_str().to_lowercase(),
            now,
        )
        .await
    {
        tracing::warn!(offer_id = %offer.offer_id, error = %e, "marking the campaign recipient accepted failed");
    }
    // The offer's invitations to addresses at the customer's domain: accepted (silently).
    if let Ok(open) = rt
        .store
        .open_invitations_at_domain(&offer.offer_id, &acc.acceptance.domain)
        .await
    {
        for inv in open {
            let _ = rt.engine.fire(&inv, "accept", "customer").await;
        }
    }
    Ok(Confirmation::Done(Box::new(p.offer.clone())))
}

/// A personal page link (remove roles, reseller request) resolved to its instance.
pub fn resolve_page_token(rt: &AppState, purpose: Purpose, token: &str) -> Option<InstanceId> {
    let p = KeyRing::split(token).ok()?;
    rt.keys.verify(purpose, &p, &[]).ok()?;
    InstanceId::parse(p.subject).ok()
}

/// A delegated-admin relationship as its customer's remove-roles page shows it.
#[derive(Debug, Clone)]
pub struct RelationshipOfLink {
    pub id: InstanceId,
    pub customer_name: String,
    pub domain: String,
    pub role: Option<AdminRole>,
    /// The roles are (or are about to be) held: removing them means something.
    pub active: bool,
}

/// The relationship a remove-roles link (`/r/{token}`) stands for; None for a link that does
/// not verify or is not a delegated-admin relationship's (one answer for all).
pub async fn relationship_of_link(rt: &AppState, token: &str) -> Option<RelationshipOfLink> {
    let id = resolve_page_token(rt, Purpose::RemoveRoles, token)?;
    let i = rt
        .store
        .instance(&id)
        .await
        .ok()
        .filter(|i| i.workflow == "delegated_admin")?;
    let text = |k: &str| {
        i.data
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Some(RelationshipOfLink {
        id: i.id.clone(),
        customer_name: text("customer_name"),
        domain: text("domain"),
        role: AdminRole::parse(&text("role")).ok(),
        active: matches!(
            i.state.as_str(),
            "approval_pending" | "active" | "expiring" | "termination_requested"
        ),
    })
}

/// The customer removes the partner's admin roles: the relationship ends, the acceptance
/// (the partner relationship) stays, both sides are told.
pub async fn remove_roles(rt: &AppState, rel: &InstanceId) -> Result<()> {
    rt.engine.fire(rel, "remove_roles", "customer").await?;
    Ok(())
}
