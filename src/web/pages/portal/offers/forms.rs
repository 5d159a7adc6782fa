//! The three offer forms (`/portal/offers/new/{trial,purchase,delegated-admin}`): step 1 a GET
//! form choosing the usage country, step 2 the form for that country with its catalog's
//! products, synced locations only, licence limits shown (and checked by `offers::create`,
//! like every other rule), expiry, message, recipients. The result page shows the Offer ID
//! and the link and sends it to recipients (`/portal/offers/{id}/invite`, also used by the
//! offer's page).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::AppState;
use crate::core::domain::{
    AdminRole, Country, Locale, OfferId, OfferKind, ProductId, Role, Timestamp,
};
use crate::offers::{self, LineRequest, NewOffer, OfferError, pages};
use crate::portal::audit;
use crate::web::pages::{form_pairs, page};

use super::texts::xt;
use super::{Errors, nav_with, not_found, query_pairs};
use crate::web::pages::portal::view::offers::{
    InviteForm, NewView, OfferForm, ProductChoice, created_page, new_page, slug,
};
use crate::web::pages::portal::{SignedIn, field, see_other, unavailable};

fn kind_of(slug: &str) -> Option<OfferKind> {
    match slug {
        "trial" => Some(OfferKind::Trial),
        "purchase" => Some(OfferKind::Purchase),
        "delegated-admin" => Some(OfferKind::DelegatedAdmin),
        _ => None,
    }
}

fn day(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d").to_string()
}

/// Renders the form: step 1 without a country, else step 2 for it.
async fn form_page(
    rt: &AppState,
    s: &SignedIn,
    kind: OfferKind,
    country: Result<Option<Country>, String>,
    form: &OfferForm,
    status: StatusCode,
) -> Response {
    let path = format!("/portal/offers/new/{}", slug(kind));
    let (nav, csrf, set) = nav_with(rt, s, "offers", &path);
    let countries: Vec<String> = pages::countries(rt, kind)
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let o = &rt.settings.offers;
    let default = match kind {
        OfferKind::Trial => o.trial_expiry,
        OfferKind::Purchase => o.purchase_expiry,
        OfferKind::DelegatedAdmin => o.delegated_admin_expiry,
    };
    let now = rt.clock.now();
    let mut v = NewView {
        kind,
        country: None,
        countries,
        country_error: None,
        locations: vec![],
        products: vec![],
        form,
        default_expiry: day(now.plus(default)),
        latest_expiry: day(now.plus(o.max_expiry)),
    };
    match country {
        Err(m) => v.country_error = Some(m),
        Ok(None) => {}
        Ok(Some(c)) => {
            let locations = match offers::locations(rt).await {
                Ok(l) => l,
                Err(e) => return unavailable(rt, s.locale, &e),
            };
            v.locations = locations
                .into_iter()
                .map(|l| (l.location.id, l.location.name))
                .collect();
            v.products = pages::products_for(rt, kind, c)
                .into_iter()
                .map(|p| {
                    let id = p.id.to_string();
                    ProductChoice {
                        value: form.licences_of(&id).to_string(),
                        error: form
                            .errors
                            .get(&format!("licences-{id}"))
                            .map(str::to_string),
                        id,
                        name: p.name.clone(),
                        min: p.min_licences,
                        max: p.max_licences,
                    }
                })
                .collect();
            v.country = Some(c.as_str().to_string());
        }
    }
    page(rt, status, new_page(s.locale, &nav, v, &csrf), set)
}

/// A usage country the form offers for `kind`, or the message why not.
fn country_for(rt: &AppState, l: Locale, kind: OfferKind, typed: &str) -> Result<Country, String> {
    let c = Country::parse(typed).map_err(|m| format!("{}: {m}", xt(l).country))?;
    if pages::countries(rt, kind).contains(&c) {
        Ok(c)
    } else {
        Err(format!("{}: {}", c.as_str(), xt(l).no_products))
    }
}

/// Step 1 (no `country` in the query) or step 2 of a form.
pub(super) async fn new_form(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(kind): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::SalesAgent) {
        return r;
    }
    let Some(kind) = kind_of(&kind) else {
        return not_found(&rt, &s, "");
    };
    let pairs = query_pairs(&q);
    let typed = field(&pairs, "country").trim();
    let form = OfferForm {
        language: s.locale.as_str().into(),
        ..Default::default()
    };
    if typed.is_empty() {
        return form_page(&rt, &s, kind, Ok(None), &form, StatusCode::OK).await;
    }
    match country_for(&rt, s.locale, kind, typed) {
        Ok(c) => form_page(&rt, &s, kind, Ok(Some(c)), &form, StatusCode::OK).await,
        Err(m) => form_page(&rt, &s, kind, Err(m), &form, StatusCode::BAD_REQUEST).await,
    }
}

/// The form field an error of `offers::create` belongs to (`lines`: the product of each
/// submitted line, in order).
fn form_field(kind: OfferKind, lines: &[ProductId], f: &str) -> String {
    if let Some(rest) = f.strip_prefix("products[") {
        let i: Option<usize> = rest.split(']').next().and_then(|n| n.parse().ok());
        return match (kind, i.and_then(|i| lines.get(i))) {
            (OfferKind::Purchase, Some(p)) => format!("licences-{p}"),
            (OfferKind::Purchase, None) => "products".into(),
            _ => "product".into(),
        };
    }
    match f {
        "products" if kind == OfferKind::Purchase => "products".into(),
        "products" => "product".into(),
        "location_id" => "location".into(),
        "expires_at" => "expires".into(),
        other => other.into(),
    }
}

/// An `offers::create` refusal as (form field, message in the user's language where it
/// matters), or None when it is no refusal (then the store is unavailable).
fn refusal(
    rt: &AppState,
    l: Locale,
    kind: OfferKind,
    lines: &[ProductId],
    e: &OfferError,
) -> Option<(String, String)> {
    let x = xt(l);
    Some(match e {
        OfferError::Invalid { field, message } => (form_field(kind, lines, field), message.clone()),
        OfferError::UnknownProduct { field, .. } | OfferError::NotAvailable { field, .. } => {
            (form_field(kind, lines, field), x.e_product.into())
        }
        OfferError::LicenceCount { field, product, .. } => {
            let limits = ProductId::parse(product)
                .ok()
                .and_then(|p| rt.catalog.get(&p))
                .map(|p| format!("{}–{}", p.min_licences, p.max_licences))
                .unwrap_or_default();
            (
                form_field(kind, lines, field),
                format!("{} {} {limits}", x.licences, x.e_licences),
            )
        }
        OfferError::LocationNotSynced { .. } => ("location".into(), x.e_not_synced.into()),
        OfferError::LocationRemoved { .. } => ("location".into(), x.e_removed.into()),
        _ => return None,
    })
}

/// Creates an offer from the form; on success its result page (303), else the form again
/// with each error next to its field (400).
pub(super) async fn create(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(kind): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.require(&rt, Role::SalesAgent) {
        return r;
    }
    let Some(kind) = kind_of(&kind) else {
        return not_found(&rt, &s, "");
    };
    let f = form_pairs(&body);
    if let Some(r) = s.csrf(&rt, &f, &format!("/portal/offers/new/{}", slug(kind))) {
        return r;
    }
    let x = xt(s.locale);
    let country = match country_for(&rt, s.locale, kind, field(&f, "country")) {
        Ok(c) => c,
        Err(m) => {
            let form = OfferForm::default();
            return form_page(&rt, &s, kind, Err(m), &form, StatusCode::BAD_REQUEST).await;
        }
    };
    let catalog = pages::products_for(&rt, kind, country);
    let mut form = OfferForm {
        location: field(&f, "location").trim().into(),
        product: field(&f, "product").trim().into(),
        licences: catalog
            .iter()
            .map(|p| {
                let id = p.id.to_string();
                let v = field(&f, &format!("licences-{id}")).trim().to_string();
                (id, v)
            })
            .collect(),
        delegated_admin: field(&f, "delegated_admin").trim().into(),
        auto_extend: !field(&f, "auto_extend").is_empty(),
        expires: field(&f, "expires").trim().into(),
        message: field(&f, "message").into(),
        recipients: field(&f, "recipients").into(),
        language: field(&f, "language").into(),
        errors: Errors::default(),
    };
    let mut errors = Errors::default();
    // The same parsers as the API (`web::api::offers::parse_new_offer`).
    let location_id = match offers::parse_location_id(&form.location) {
        Ok(l) => l,
        Err(m) => {
            errors.add(
                "location",
                if form.location.is_empty() {
                    x.choose.to_string()
                } else {
                    m
                },
            );
            String::new()
        }
    };
    let mut lines: Vec<LineRequest> = Vec::new();
    match kind {
        OfferKind::Trial => {
            if form.product.is_empty() {
                errors.add("product", x.choose);
            } else {
                match ProductId::parse(&form.product) {
                    Ok(p) => lines.push(LineRequest {
                        product: p,
                        licences: None,
                    }),
                    Err(m) => errors.add("product", m),
                }
            }
        }
        OfferKind::Purchase => {
            for (id, v) in &form.licences {
                if v.is_empty() {
                    continue;
                }
                let (Ok(product), Ok(n)) = (ProductId::parse(id), v.parse::<i64>()) else {
                    errors.add(format!("licences-{id}"), format!("{v}: {}", x.e_number));
                    continue;
                };
                lines.push(LineRequest {
                    product,
                    licences: Some(n),
                });
            }
            if lines.is_empty() && errors.is_empty() {
                errors.add("products", x.e_one_product);
            }
        }
        OfferKind::DelegatedAdmin => {}
    }
    let delegated_admin = match form.delegated_admin.as_str() {
        "" | "none" => None,
        r => match AdminRole::parse(r) {
            Ok(r) => Some(r),
            Err(m) => {
                errors.add("delegated_admin", m);
                None
            }
        },
    };
    let expires_at = match form.expires.as_str() {
        "" => None,
        t => match offers::parse_time_or_date(t) {
            Ok(t) => Some(t),
            Err(m) => {
                errors.add("expires", m);
                None
            }
        },
    };
    let message = match offers::parse_message(&form.message) {
        Ok(m) => Some(m).filter(|m| !m.is_empty()),
        Err(m) => {
            errors.add("message", m);
            None
        }
    };
    let recipients = match pages::parse_recipients(&form.recipients) {
        Ok(r) => r,
        Err(m) => {
            errors.add("recipients", m);
            vec![]
        }
    };
    let language = Locale::parse(&form.language);
    if !errors.is_empty() {
        form.errors = errors;
        return form_page(
            &rt,
            &s,
            kind,
            Ok(Some(country)),
            &form,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let order: Vec<ProductId> = lines.iter().map(|l| l.product.clone()).collect();
    let new = NewOffer {
        kind,
        location_id,
        country,
        products: lines,
        delegated_admin,
        auto_extend: form.auto_extend,
        expires_at,
        message,
    };
    let actor = s.actor();
    let created = match offers::create(&rt, new, &actor.label).await {
        Ok(o) => o,
        Err(e) => {
            return match refusal(&rt, s.locale, kind, &order, &e) {
                Some((f, m)) => {
                    form.errors.add(f, m);
                    form_page(
                        &rt,
                        &s,
                        kind,
                        Ok(Some(country)),
                        &form,
                        StatusCode::BAD_REQUEST,
                    )
                    .await
                }
                None => unavailable(&rt, s.locale, &e),
            };
        }
    };
    let id = created.offer.offer_id.clone();
    let detail = format!(
        "{} at {} for {}",
        kind.as_str(),
        created.offer.location_id,
        country.as_str()
    );
    if let Err(e) = audit::record(&rt, &actor, "offer.create", id.as_str(), &detail).await {
        return unavailable(&rt, s.locale, &e);
    }
    let mut invited = 0;
    if !recipients.is_empty() {
        let (sent, err) = pages::invite_all(&rt, &id, &recipients, language, &actor.label).await;
        invited = sent.len();
        if let Err(e) = audit_invites(&rt, &actor, &id, invited).await {
            return unavailable(&rt, s.locale, &e);
        }
        if let Some(e) = err {
            tracing::warn!(error = %e, offer_id = %id, "portal: inviting after create stopped");
        }
    }
    see_other(
        &format!("/portal/offers/{id}/created?invited={invited}"),
        None,
    )
}

async fn audit_invites(
    rt: &AppState,
    actor: &crate::portal::Actor,
    id: &OfferId,
    n: usize,
) -> Result<(), crate::portal::PortalError> {
    if n == 0 {
        return Ok(());
    }
    let detail = format!("{n} recipient{}", if n == 1 { "" } else { "s" });
    audit::record(rt, actor, "offer.invite", id.as_str(), &detail).await
}

pub(super) fn invited_of(pairs: &[(String, String)]) -> Option<usize> {
    field(pairs, "invited").parse().ok()
}

async fn created_response(
    rt: &AppState,
    s: &SignedIn,
    id: &OfferId,
    invite: &InviteForm,
    status: StatusCode,
) -> Response {
    let o = match offers::get(rt, id).await {
        Ok(o) => o,
        Err(OfferError::OfferNotFound(_)) => return not_found(rt, s, id.as_str()),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let (nav, csrf, set) = nav_with(rt, s, "offers", &format!("/portal/offers/{id}/invite"));
    page(
        rt,
        status,
        created_page(s.locale, &nav, &o, invite, &csrf),
        set,
    )
}

/// The result page: the Offer ID, the link to copy, and the form sending it to recipients.
pub(super) async fn created(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::SalesAgent) {
        return r;
    }
    let Ok(id) = OfferId::parse(&id) else {
        return not_found(&rt, &s, &id);
    };
    let form = InviteForm {
        language: s.locale.as_str().into(),
        invited: invited_of(&query_pairs(&q)),
        ..Default::default()
    };
    created_response(&rt, &s, &id, &form, StatusCode::OK).await
}

/// Sends the offer's link to the recipients typed (one per line); back to the page the form
/// was on (`back`: `created` or the offer's page) with how many were sent (303), or that page
/// with the error next to the recipients (400; 409 when the offer is closed).
pub(super) async fn invite(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let f = match s.form(
        &rt,
        Role::SalesAgent,
        &body,
        &format!("/portal/offers/{id}/invite"),
    ) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(id) = OfferId::parse(&id) else {
        return not_found(&rt, &s, &id);
    };
    let back_created = field(&f, "back") == "created";
    let mut form = InviteForm {
        recipients: field(&f, "recipients").into(),
        language: field(&f, "language").into(),
        ..Default::default()
    };
    let x = xt(s.locale);
    let again = |form: InviteForm, status: StatusCode| {
        let (rt, s, id) = (&rt, &s, &id);
        async move {
            if back_created {
                created_response(rt, s, id, &form, status).await
            } else {
                super::view::offer_response(rt, s, id, &form, status).await
            }
        }
    };
    let recipients = match pages::parse_recipients(&form.recipients) {
        Ok(r) if r.is_empty() => {
            form.errors.add("recipients", x.e_recipients);
            return again(form, StatusCode::BAD_REQUEST).await;
        }
        Ok(r) => r,
        Err(m) => {
            form.errors.add("recipients", m);
            return again(form, StatusCode::BAD_REQUEST).await;
        }
    };
    let actor = s.actor();
    let (sent, err) = pages::invite_all(
        &rt,
        &id,
        &recipients,
        Locale::parse(&form.language),
        &actor.label,
    )
    .await;
    if let Err(e) = audit_invites(&rt, &actor, &id, sent.len()).await {
        return unavailable(&rt, s.locale, &e);
    }
    match err {
        None => {}
        Some(OfferError::OfferNotFound(_)) => return not_found(&rt, &s, id.as_str()),
        Some(OfferError::OfferClosed { state, .. }) => {
            form.errors.add(
                "recipients",
                format!(
                    "{} ({})",
                    x.closed,
                    super::texts::state_name(s.locale, &state)
                ),
            );
            form.invited = Some(sent.len());
            return again(form, StatusCode::CONFLICT).await;
        }
        Some(e) => return unavailable(&rt, s.locale, &e),
    }
    let to = if back_created {
        format!("/portal/offers/{id}/created?invited={}", sent.len())
    } else {
        format!("/portal/offers/{id}?invited={}", sent.len())
    };
    see_other(&to, None)
}
