//! The partner's business on top of the engine: offers (with Offer ID and signed link),
//! invitations, the customer's acceptance, delegated-admin relationships, resellers,
//! reported sign-ups and API tokens. Used alike by `web` and `cli`; knows neither HTTP nor
//! SQL. Input arrives parsed (domain types); every check names the field it refuses.

pub mod pages;
pub mod tasks;

use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::core::catalog::ProductKind;
use crate::core::domain::{
    AdminRole, Country, EmailAddress, InstanceId, LicenseCount, Locale, OfferId, OfferKind,
    ProductId, Span, Timestamp,
};
use crate::core::offer::{
    InvitationRow, InvitationSent, LocationView, OfferFilter, OfferLine, OfferRow, OfferTracking,
    OfferView,
};
use crate::engine::EngineError;
use crate::store::{Record, StoreError};

mod acceptance;
mod customers;
pub mod overview;
mod portal_reads;
mod request;
mod resellers;
mod signups;
mod tokens;
pub use acceptance::*;
pub use customers::*;
pub use portal_reads::*;
pub use request::*;
pub use resellers::*;
pub use signups::*;
pub use tokens::*;

#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field}: product `{product}` is not in the catalog")]
    UnknownProduct { field: String, product: String },
    #[error("{field}: product `{product}` is not available in {country}")]
    NotAvailable {
        field: String,
        product: String,
        country: Country,
    },
    #[error("{field}: product `{product}`: {message}")]
    LicenceCount {
        field: String,
        product: String,
        message: String,
    },
    #[error(
        "{field}: location `{location}` is not synced yet (a new location appears up to 24 hours after it was created; `partnerflow locations sync` fetches it now)"
    )]
    LocationNotSynced { field: String, location: String },
    #[error(
        "{field}: location `{location}` is no longer available: the location source has not listed it since {since} (a sync that lists it again makes it available)"
    )]
    LocationRemoved {
        field: String,
        location: String,
        since: Timestamp,
    },
    #[error("offer {0} not found")]
    OfferNotFound(String),
    #[error("offer {offer} is {state}")]
    OfferClosed { offer: OfferId, state: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for OfferError {
    fn from(e: StoreError) -> Self {
        OfferError::Engine(EngineError::Store(e))
    }
}

type Result<T, E = OfferError> = std::result::Result<T, E>;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> OfferError {
    OfferError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// One requested product line, as parsed at the edge.
#[derive(Debug, Clone)]
pub struct LineRequest {
    pub product: ProductId,
    pub licences: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewOffer {
    pub kind: OfferKind,
    pub location_id: String,
    pub country: Country,
    pub products: Vec<LineRequest>,
    pub delegated_admin: Option<AdminRole>,
    /// The relationship extends itself by 180 days at its end: only for `limited`.
    pub auto_extend: bool,
    pub expires_at: Option<Timestamp>,
    pub message: Option<String>,
}

/// Free text from a partner (the custom message): at most 2000 characters, no control
/// characters but line breaks and tabs.
pub fn parse_message(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.chars().count() > 2000 {
        return Err("is longer than 2000 characters".into());
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("contains control characters".into());
    }
    Ok(t.to_string())
}

pub(crate) fn link_for(rt: &AppState, prefix: &str, code: &str) -> String {
    rt.public_link(&[prefix, code])
}

fn lines_json(lines: &[OfferLine]) -> Value {
    json!(lines)
}

fn da_str(r: Option<AdminRole>) -> &'static str {
    r.map(AdminRole::as_str).unwrap_or("none")
}

/// Checks product lines against the catalog for `kind` and `country`; `field` prefixes the
/// field names in errors (`products[1].licences`).
pub fn check_lines(
    rt: &AppState,
    kind: OfferKind,
    country: Country,
    lines: &[LineRequest],
    field: &str,
) -> Result<Vec<OfferLine>> {
    match kind {
        OfferKind::Trial if lines.len() != 1 => {
            return Err(invalid(
                field,
                "a trial offer has exactly one trial product",
            ));
        }
        OfferKind::Purchase if lines.is_empty() => {
            return Err(invalid(field, "a purchase offer has at least one product"));
        }
        OfferKind::DelegatedAdmin if !lines.is_empty() => {
            return Err(invalid(
                field,
                "a delegated_admin offer has no products (it offers administration only)",
            ));
        }
        _ => {}
    }
    let mut out: Vec<OfferLine> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let p = rt
            .catalog
            .get(&l.product)
            .ok_or_else(|| OfferError::UnknownProduct {
                field: format!("{f}.id"),
                product: l.product.to_string(),
            })?;
        if !p.sold_in(country) {
            return Err(OfferError::NotAvailable {
                field: format!("{f}.id"),
                product: p.id.to_string(),
                country,
            });
        }
        if out.iter().any(|o| o.id == p.id) {
            return Err(invalid(
                format!("{f}.id"),
                format!("product `{}` is listed twice", p.id),
            ));
        }
        let licences = match (kind, p.kind, l.licences) {
            (OfferKind::Trial, ProductKind::Trial, None) => None,
            (OfferKind::Trial, ProductKind::Trial, Some(_)) => {
                return Err(invalid(
                    format!("{f}.licences"),
                    "a trial has no licence count",
                ));
            }
            (OfferKind::Trial, ProductKind::Paid, _) => {
                return Err(invalid(
                    format!("{f}.id"),
                    format!(
                        "product `{}` is a paid product; a trial offer needs a trial product",
                        p.id
                    ),
                ));
            }
            (_, ProductKind::Trial, _) => {
                return Err(invalid(
                    format!("{f}.id"),
                    format!(
                        "product `{}` is a trial product; a purchase offer needs paid products",
                        p.id
                    ),
                ));
            }
            (_, ProductKind::Paid, None) => {
                return Err(invalid(
                    format!("{f}.licences"),
                    "a licence count is required",
                ));
            }
            (_, ProductKind::Paid, Some(n)) => Some(
                LicenseCount::within(n, p.min_licences, p.max_licences)
                    .map_err(|message| OfferError::LicenceCount {
                        field: format!("{f}.licences"),
                        product: p.id.to_string(),
                        message,
                    })?
                    .get(),
            ),
        };
        out.push(OfferLine {
            id: p.id.clone(),
            name: p.name.clone(),
            licences,
        });
    }
    Ok(out)
}

fn expiry_default(rt: &AppState, kind: OfferKind) -> Span {
    let o = &rt.settings.offers;
    match kind {
        OfferKind::Trial => o.trial_expiry,
        OfferKind::Purchase => o.purchase_expiry,
        OfferKind::DelegatedAdmin => o.delegated_admin_expiry,
    }
}

/// Creates an offer: checks location, catalog and country, fixes the Offer ID and signs the
/// link; the offer row and its `offer` lifecycle (opened at once) commit together.
pub async fn create(rt: &AppState, n: NewOffer, actor: &str) -> Result<OfferView> {
    let now = rt.clock.now();
    if let Some(since) = rt.store.location_removed_at(&n.location_id).await? {
        return Err(OfferError::LocationRemoved {
            field: "location_id".into(),
            location: n.location_id.clone(),
            since,
        });
    }
    let location =
        rt.store
            .location(&n.location_id)
            .await?
            .ok_or_else(|| OfferError::LocationNotSynced {
                field: "location_id".into(),
                location: n.location_id.clone(),
            })?;
    let lines = check_lines(rt, n.kind, n.country, &n.products, "products")?;
    if n.kind == OfferKind::DelegatedAdmin && n.delegated_admin.is_none() {
        return Err(invalid(
            "delegated_admin",
            "a delegated_admin offer needs the role: full or limited",
        ));
    }
    match (n.auto_extend, n.delegated_admin) {
        (true, None) => {
            return Err(invalid(
                "auto_extend",
                "needs delegated administration (limited) on the offer",
            ));
        }
        (true, Some(AdminRole::Full)) => {
            return Err(invalid(
                "auto_extend",
                "is never allowed for full administration (it includes the global admin role); only for limited",
            ));
        }
        _ => {}
    }
    let expires_at = n
        .expires_at
        .unwrap_or_else(|| now.plus(expiry_default(rt, n.kind)));
    if expires_at <= now {
        return Err(invalid(
            "expires_at",
            format!("{expires_at} is not in the future"),
        ));
    }
    let latest = now.plus(rt.settings.offers.max_expiry);
    if expires_at > latest {
        return Err(invalid(
            "expires_at",
            format!(
                "{expires_at} is later than offers.max_expiry ({}) from now",
                rt.settings.offers.max_expiry
            ),
        ));
    }
    for _ in 0..3 {
        let offer_id = OfferId::generate();
        let code = rt.keys.advisor_code(&offer_id, &location.id);
        let link = link_for(rt, "o", &code);
        let instance = InstanceId::generate();
        let mut data = Map::new();
        data.insert("offer_id".into(), json!(offer_id));
        data.insert("kind".into(), json!(n.kind));
        data.insert("link".into(), json!(link));
        data.insert("expires_at".into(), json!(expires_at.to_rfc3339()));
        data.insert("location_id".into(), json!(location.id));
        data.insert("country".into(), json!(n.country));
        if n.kind == OfferKind::Trial {
            data.insert("product_name".into(), json!(lines[0].name));
        }
        if n.kind == OfferKind::Purchase {
            data.insert("products".into(), lines_json(&lines));
        }
        data.insert("delegated_admin".into(), json!(da_str(n.delegated_admin)));
        let (mut commits, _) =
            rt.engine
                .plan_start(&instance, "offer", &data, None, actor, &["publish"])?;
        let row = OfferRow {
            offer_id: offer_id.clone(),
            instance_id: instance,
            kind: n.kind,
            location_id: location.id.clone(),
            country: n.country,
            products: lines.clone(),
            delegated_admin: n.delegated_admin,
            auto_extend: n.auto_extend,
            key_id: rt.keys.signing_kid().to_string(),
            link,
            message: n.message.clone().filter(|m| !m.is_empty()),
            created_by: actor.to_string(),
            created_at: now,
            expires_at,
        };
        commits[0].records.push(Record::Offer(row));
        match rt.engine.commit_plan(&commits).await {
            Ok(()) => {
                tracing::info!(offer_id = %offer_id, kind = %n.kind, location = %location.id, country = %n.country, actor, "offer created");
                return get(rt, &offer_id).await;
            }
            Err(EngineError::Store(e)) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OfferError::Conflict(
        "could not find a free Offer ID in three tries".into(),
    ))
}

pub async fn get(rt: &AppState, id: &OfferId) -> Result<OfferView> {
    rt.store
        .offer(id)
        .await?
        .ok_or_else(|| OfferError::OfferNotFound(id.to_string()))
}

/// The offer's state for a customer: open, or why not. An offer past its expiry whose timer
/// has not fired yet is treated as expired.
fn open_or_closed(o: &OfferView, now: Timestamp) -> Result<()> {
    if o.state != "open" {
        return Err(OfferError::OfferClosed {
            offer: o.offer.offer_id.clone(),
            state: o.state.clone(),
        });
    }
    if now >= o.offer.expires_at {
        return Err(OfferError::OfferClosed {
            offer: o.offer.offer_id.clone(),
            state: "expired".into(),
        });
    }
    Ok(())
}

pub async fn list(rt: &AppState, f: &OfferFilter) -> Result<Vec<OfferView>> {
    Ok(rt.store.offers(f).await?)
}

/// The synced partner locations still available, by id.
pub async fn locations(rt: &AppState) -> Result<Vec<LocationView>> {
    Ok(rt
        .store
        .locations()
        .await?
        .into_iter()
        .map(|(location, first_seen_at)| LocationView {
            location,
            first_seen_at,
        })
        .collect())
}

/// Withdraws an offer; its open invitations are withdrawn with it.
pub async fn withdraw(rt: &AppState, id: &OfferId, actor: &str) -> Result<OfferView> {
    let o = get(rt, id).await?;
    rt.engine
        .fire(&o.offer.instance_id, "withdraw", actor)
        .await?;
    close_invitations(rt, id, "withdraw", actor).await?;
    get(rt, id).await
}

/// Sends `event` to every open invitation of an offer (races with their own timers are
/// fine: whoever loses is refused and the invitation is closed anyway).
pub async fn close_invitations(
    rt: &AppState,
    id: &OfferId,
    event: &str,
    actor: &str,
) -> Result<usize> {
    let mut n = 0;
    for (inv, _) in rt.store.open_invitations(id).await? {
        match rt.engine.fire(&inv, event, actor).await {
            Ok(_) => n += 1,
            Err(EngineError::Rejected(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Sends the offer's link to one recipient: an invitation lifecycle of the offer's kind,
/// with its email, committed together with the invitation row.
pub async fn invite(
    rt: &AppState,
    id: &OfferId,
    recipient: EmailAddress,
    name: Option<String>,
    locale: Option<Locale>,
    actor: &str,
) -> Result<InvitationSent> {
    let o = get(rt, id).await?;
    open_or_closed(&o, rt.clock.now())?;
    let locale = locale.unwrap_or(rt.settings.app.default_locale);
    let offer = &o.offer;
    let mut data = Map::new();
    data.insert("offer_id".into(), json!(offer.offer_id));
    data.insert("customer_email".into(), json!(recipient));
    if let Some(n) = &name {
        data.insert("customer_name".into(), json!(n));
    }
    data.insert("link".into(), json!(offer.link));
    if let Some(m) = &offer.message {
        data.insert("message".into(), json!(m));
    }
    data.insert("expires_at".into(), json!(offer.expires_at.to_rfc3339()));
    match offer.kind {
        OfferKind::Trial => {
            data.insert(
                "product_name".into(),
                json!(offer.products.first().map(|l| &l.name)),
            );
            data.insert(
                "delegated_admin".into(),
                json!(da_str(offer.delegated_admin)),
            );
        }
        OfferKind::Purchase => {
            data.insert("products".into(), lines_json(&offer.products));
            data.insert(
                "delegated_admin".into(),
                json!(da_str(offer.delegated_admin)),
            );
        }
        OfferKind::DelegatedAdmin => {
            data.insert(
                "delegated_admin".into(),
                json!(da_str(offer.delegated_admin)),
            );
        }
    }
    let inv = InstanceId::generate();
    let (mut commits, state) = rt.engine.plan_start(
        &inv,
        offer.kind.invitation_workflow(),
        &data,
        Some(locale),
        actor,
        &["send"],
    )?;
    commits[0].records.push(Record::Invitation(InvitationRow {
        instance_id: inv.clone(),
        offer_id: offer.offer_id.clone(),
        recipient: recipient.clone(),
        locale: locale.as_str().into(),
        created_by: actor.into(),
        created_at: rt.clock.now(),
    }));
    rt.engine.commit_plan(&commits).await?;
    Ok(InvitationSent {
        invitation_id: inv,
        offer_id: offer.offer_id.clone(),
        recipient,
        locale,
        state,
    })
}

/// Everything the partner tracks about an offer, by Offer ID.
pub async fn tracking(rt: &AppState, id: &OfferId) -> Result<OfferTracking> {
    let o = get(rt, id).await?;
    let invitations = rt.store.invitations_of(id).await?;
    // Only confirmed acceptances count; those still waiting for their link are a number.
    let acceptances = rt.store.acceptances_of(id).await?;
    let unconfirmed_acceptances = rt.store.unconfirmed_acceptances_of(id).await?;
    let unmatched_signups = rt.store.unmatched_signups_of(id).await?;
    let history = rt.store.history(&o.offer.instance_id).await?;
    let location = rt.store.location(&o.offer.location_id).await?;
    Ok(OfferTracking {
        offer: o,
        location,
        invitations,
        acceptances,
        unconfirmed_acceptances,
        unmatched_signups,
        history,
    })
}
