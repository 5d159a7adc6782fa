//! The partner's business on top of the engine: offers (with Offer ID and signed link),
//! invitations, the customer's acceptance, delegated-admin relationships, resellers,
//! reported sign-ups and API tokens. Used alike by `web` and `cli`; knows neither HTTP nor
//! SQL. Input arrives parsed (domain types); every check names the field it refuses.

pub mod tasks;

use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::core::catalog::ProductKind;
use crate::core::domain::{
    AdminRole, Country, DomainName, EmailAddress, InstanceId, LicenseCount, Locale, MpnId, OfferId,
    OfferKind, ProductId, Role, Span, Timestamp, random_base32,
};
use crate::core::links::{KeyRing, Purpose, constant_time_eq, sha256_hex};
use crate::engine::EngineError;
use crate::store::{
    AcceptanceRow, CustomerQuery, CustomerView, InvitationRow, NewSignup, OfferFilter, OfferLine,
    OfferRow, OfferView, Record, ResellerRow, ResellerView, StoreError, TokenRow,
};

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
    let mut u = rt.settings.app.public_base_url.clone();
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty().push(prefix).push(code);
    }
    u.to_string()
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

#[derive(Debug, Clone, serde::Serialize)]
pub struct InvitationSent {
    pub invitation_id: InstanceId,
    pub offer_id: OfferId,
    pub recipient: EmailAddress,
    pub locale: Locale,
    pub state: String,
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
pub async fn tracking(rt: &AppState, id: &OfferId) -> Result<Value> {
    let o = get(rt, id).await?;
    let invitations = rt.store.invitations_of(id).await?;
    // Only confirmed acceptances count; those still waiting for their link are a number.
    let acceptances = rt.store.acceptances_of(id).await?;
    let unconfirmed = rt.store.unconfirmed_acceptances_of(id).await?;
    let unmatched = rt.store.unmatched_signups_of(id).await?;
    let history = rt.store.history(&o.offer.instance_id).await?;
    let location = rt.store.location(&o.offer.location_id).await?;
    let mut v = json!(o);
    v["location"] = json!(location);
    v["invitations"] = json!(invitations);
    v["acceptances"] = json!(acceptances);
    v["unconfirmed_acceptances"] = json!(unconfirmed);
    v["unmatched_signups"] = json!(unmatched);
    v["history"] = json!(history);
    Ok(v)
}

// ---------------------------------------------------------------- the customer's side

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
            .store
            .rate_hit(
                &format!("confirm-to:{recipient}"),
                day,
                limits.confirmations_per_address_per_day,
                now,
            )
            .await?
    {
        return Err(AcceptError::Limited(Limited::Recipient));
    }
    if limits.confirmations_per_domain_per_day > 0
        && !rt
            .store
            .rate_hit(
                &format!("confirm-domain:{}", a.domain),
                day,
                limits.confirmations_per_domain_per_day,
                now,
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
    pub acceptance: crate::store::AcceptanceView,
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

/// The customer removes the partner's admin roles: the relationship ends, the acceptance
/// (the partner relationship) stays, both sides are told.
pub async fn remove_roles(rt: &AppState, rel: &InstanceId) -> Result<()> {
    rt.engine.fire(rel, "remove_roles", "customer").await?;
    Ok(())
}

// ---------------------------------------------------------------- customers

pub async fn search_customers(rt: &AppState, q: &str) -> Result<Vec<CustomerView>> {
    let q = q.trim();
    if q.is_empty() {
        return Err(invalid(
            "q",
            "give an exact user name (person@contoso.com) or domain (contoso.com)",
        ));
    }
    if q.contains(['*', '%', '?']) {
        return Err(invalid(
            "q",
            "wildcards are not supported: give the exact user name or domain",
        ));
    }
    if q.contains('@') {
        let e = EmailAddress::parse(q).map_err(|m| invalid("q", m))?;
        Ok(rt.store.search_customers(CustomerQuery::User(&e)).await?)
    } else {
        let d = DomainName::parse(q).map_err(|m| invalid("q", m))?;
        Ok(rt.store.search_customers(CustomerQuery::Domain(&d)).await?)
    }
}

// ---------------------------------------------------------------- resellers

/// An indirect provider's partnership request to a reseller, mailed with a link personal to
/// this request. A reseller whose earlier partnership ended may be asked again.
pub async fn request_reseller(
    rt: &AppState,
    mpn: MpnId,
    name: String,
    email: EmailAddress,
    actor: &str,
) -> Result<ResellerView> {
    if let Some(r) = rt.store.reseller(&mpn).await?
        && !rt
            .engine
            .definition("reseller_partnership")?
            .is_final(&r.state)
    {
        return Err(OfferError::Conflict(format!(
            "reseller {mpn} already has a partnership ({})",
            r.state
        )));
    }
    let id = InstanceId::generate();
    let token = rt.keys.sign(Purpose::Reseller, id.as_str(), &[]);
    let link = link_for(rt, "p", &token);
    let mut d = Map::new();
    d.insert("reseller_email".into(), json!(email));
    d.insert("reseller_name".into(), json!(name));
    d.insert("mpn_id".into(), json!(mpn));
    d.insert("link".into(), json!(link));
    let (mut c, _) =
        rt.engine
            .plan_start(&id, "reseller_partnership", &d, None, actor, &["send"])?;
    c[0].records.push(Record::Reseller(ResellerRow {
        mpn_id: mpn.clone(),
        instance_id: id,
        name,
        email,
        created_at: rt.clock.now(),
    }));
    rt.engine.commit_plan(&c).await?;
    reseller(rt, &mpn).await
}

pub async fn reseller(rt: &AppState, mpn: &MpnId) -> Result<ResellerView> {
    rt.store
        .reseller(mpn)
        .await?
        .ok_or_else(|| OfferError::NotFound(format!("reseller {mpn}")))
}

/// Whom a reseller is associated with: a customer (by domain) or an accepted offer.
#[derive(Debug, Clone)]
pub enum ResellerTarget {
    Customer(DomainName),
    Acceptance(InstanceId),
}

pub async fn associate_reseller(
    rt: &AppState,
    mpn: &MpnId,
    target: ResellerTarget,
    support_contact: bool,
) -> Result<ResellerView> {
    let r = reseller(rt, mpn).await?;
    if r.state != "active" {
        return Err(OfferError::Conflict(format!(
            "reseller {mpn}'s partnership is {}: it must be accepted (active) first",
            r.state
        )));
    }
    let (domain, acceptance_id) = match target {
        ResellerTarget::Customer(d) => {
            let found = rt.store.search_customers(CustomerQuery::Domain(&d)).await?;
            // A customer who accepted an offer, not only one who was invited.
            if found.iter().all(|c| c.acceptances.is_empty()) {
                return Err(OfferError::NotFound(format!("customer {d}")));
            }
            (d, None)
        }
        ResellerTarget::Acceptance(id) => {
            let a = rt
                .store
                .acceptance(&id)
                .await?
                .ok_or_else(|| OfferError::NotFound(format!("acceptance {id}")))?;
            (a.acceptance.domain, Some(id))
        }
    };
    rt.store
        .write_records(
            &[Record::ResellerCustomer {
                mpn_id: mpn.clone(),
                domain,
                acceptance_id,
                support_contact,
            }],
            rt.clock.now(),
        )
        .await?;
    reseller(rt, mpn).await
}

/// Ends a reseller partnership; its customers and their associations stay.
pub async fn remove_reseller(rt: &AppState, mpn: &MpnId, actor: &str) -> Result<ResellerView> {
    let r = reseller(rt, mpn).await?;
    let event = if r.state == "active" {
        "remove"
    } else {
        "withdraw"
    };
    rt.engine
        .fire(&r.reseller.instance_id, event, actor)
        .await?;
    reseller(rt, mpn).await
}

// ---------------------------------------------------------------- sign-ups

#[derive(Debug, Clone, serde::Serialize)]
pub struct SignupReceipt {
    /// False when this (advisor code, domain) was reported before.
    pub recorded: bool,
    /// The offer the code verifies for.
    pub offer_id: OfferId,
}

/// Records a completed sign-up reported by the sign-up system (webhook or import). Its
/// advisor code must verify (an offer of ours, its MAC over the offer's location): a code
/// that does not is refused (`Invalid` on `advisor_code`) and nothing is recorded.
pub async fn record_signup(
    rt: &AppState,
    advisor_code: &str,
    domain: DomainName,
    completed_at: Timestamp,
    source: &str,
) -> Result<SignupReceipt> {
    let code = advisor_code.trim();
    if code.is_empty() || code.len() > 200 || code.chars().any(char::is_control) {
        return Err(invalid(
            "advisor_code",
            "is empty, too long or has control characters",
        ));
    }
    let offer_id = match resolve_code(rt, code).await {
        Ok(o) => o.offer.offer_id,
        Err(Resolve::Closed(o) | Resolve::LocationGone(o, _)) => o.offer.offer_id,
        Err(Resolve::NotFound(_)) => {
            return Err(invalid(
                "advisor_code",
                "does not verify: it is not a code of one of our offers",
            ));
        }
        Err(Resolve::Unavailable(e)) => return Err(e.into()),
    };
    let recorded = rt
        .store
        .insert_signup(
            &NewSignup {
                advisor_code: code.into(),
                offer_id: Some(offer_id.clone()),
                domain,
                completed_at,
                source: source.into(),
            },
            rt.clock.now(),
        )
        .await?;
    Ok(SignupReceipt { recorded, offer_id })
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Reconciled {
    pub completed: usize,
    pub abandoned: usize,
    pub unmatched: usize,
}

/// Matches reported sign-ups to confirmed acceptances (`submitted` → `completed`; a pending
/// delegated-admin request — only ever the one the confirmed customer granted — is approved,
/// since the tenant now exists). A sign-up dated before the acceptance matches nothing.
/// Marks acceptances
/// without a sign-up within `offers.signup_window` as `abandoned` (their pending requests
/// are cancelled). Idempotent: run it any number of times.
pub async fn reconcile_signups(rt: &AppState) -> Result<Reconciled> {
    let mut out = Reconciled::default();
    for s in rt.store.unmatched_signups(10_000).await? {
        let Some(offer) = s.offer_id.as_deref().and_then(|o| OfferId::parse(o).ok()) else {
            out.unmatched += 1;
            continue;
        };
        let Ok(domain) = DomainName::parse(&s.domain) else {
            out.unmatched += 1;
            continue;
        };
        // Only a confirmed acceptance (someone showed control of a mailbox at the domain)
        // is ever completed; unconfirmed ones are invisible here.
        let Some(a) = rt.store.acceptance_by_domain(&offer, &domain).await? else {
            out.unmatched += 1;
            continue;
        };
        // A sign-up completed before the acceptance was made is not its sign-up.
        if a.state != "submitted" || s.completed_at < a.acceptance.accepted_at {
            out.unmatched += 1;
            continue;
        }
        let mut c = rt
            .engine
            .plan_fire(&a.acceptance.instance_id, "complete", "reconcile")
            .await?;
        c.records.push(Record::SignupMatched {
            signup_id: s.id,
            acceptance: a.acceptance.instance_id.clone(),
        });
        let mut commits = vec![c];
        if let Some(rel) = &a.relationship
            && rel.state == "approval_pending"
        {
            commits.push(rt.engine.plan_fire(&rel.id, "approve", "reconcile").await?);
        }
        match rt.engine.commit_plan(&commits).await {
            Ok(()) => out.completed += 1,
            // Another node reconciled it meanwhile; the next run sees the outcome.
            Err(EngineError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let before = rt
        .clock
        .now()
        .plus(Span(-rt.settings.offers.signup_window.0));
    for id in rt.store.stale_acceptances(before, 10_000).await? {
        let Some(a) = rt.store.acceptance(&id).await? else {
            continue;
        };
        let mut commits = vec![rt.engine.plan_fire(&id, "abandon", "reconcile").await?];
        if let Some(rel) = &a.relationship
            && rel.state == "approval_pending"
        {
            commits.push(
                rt.engine
                    .plan_fire(&rel.id, "terminate", "reconcile")
                    .await?,
            );
        }
        match rt.engine.commit_plan(&commits).await {
            Ok(()) => out.abandoned += 1,
            Err(EngineError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- API tokens

/// Creates an API token; the secret is returned once and only its SHA-256 is stored.
/// Format: `pf_<id>_<secret>`.
pub async fn create_token(rt: &AppState, name: &str, role: Role) -> Result<(TokenRow, String)> {
    let name = crate::core::domain::parse_name(name, 100).map_err(|m| invalid("name", m))?;
    let id = format!("t{}", random_base32(10).to_ascii_lowercase());
    let secret = random_base32(32).to_ascii_lowercase();
    let row = TokenRow {
        id: id.clone(),
        name,
        role: role.as_str().into(),
        secret_hash: sha256_hex(&secret),
        created_at: rt.clock.now(),
        revoked_at: None,
    };
    rt.store.insert_token(&row).await?;
    Ok((row, format!("pf_{id}_{secret}")))
}

/// The role of a presented token, or None (unknown, revoked, wrong secret).
pub async fn authenticate(rt: &AppState, token: &str) -> Result<Option<(String, Role)>> {
    let Some(rest) = token.strip_prefix("pf_") else {
        return Ok(None);
    };
    let Some((id, secret)) = rest.split_once('_') else {
        return Ok(None);
    };
    if id.len() > 32 || !id.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let Some(t) = rt.store.token(id).await? else {
        return Ok(None);
    };
    if t.revoked_at.is_some() || !constant_time_eq(&t.secret_hash, &sha256_hex(secret)) {
        return Ok(None);
    }
    let role = Role::parse(&t.role).map_err(|e| StoreError::Corrupt(format!("token role: {e}")))?;
    Ok(Some((format!("token:{}", t.id), role)))
}
