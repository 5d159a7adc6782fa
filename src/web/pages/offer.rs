//! `/o/{code}` (the offer page and its accept form) and `/c/{token}` (the confirmation
//! link mailed to the customer's admin; confirming leads on to the sign-up page).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::core::domain::{DomainName, EmailAddress, Locale, OfferKind};
use crate::core::offer::OfferView;
use crate::offers::{self, Accepted, OfferError, Resolve};
use crate::web::pages::csrf::{csrf_for, csrf_ok};
use crate::web::pages::{form_pairs, limits_of, locale_of, page, page_error, refused};
use crate::web::views::{self, FormValues};
use crate::web::{ClientAddr, limited, spend};

pub(crate) async fn offer_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let o = match offers::resolve_code(&rt, &code).await {
        Ok(o) => o,
        Err(e) => return page_error(&rt, l, e),
    };
    offers::overview::record_open(&rt, &o.offer).await;
    let path = format!("/o/{code}");
    let (token, set) = csrf_for(&rt, &headers, &path);
    let limits = limits_of(&rt);
    let body = views::offer_page(
        l,
        &rt.company().partner,
        &o,
        &limits,
        &path,
        &token,
        &FormValues::default(),
        &[],
    );
    page(&rt, StatusCode::OK, body, set)
}

pub(crate) async fn accept_offer(
    State(rt): State<Arc<AppState>>,
    axum::Extension(client): axum::Extension<ClientAddr>,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("/o/{code}");
    let form = form_pairs(&body);
    if let Err(why) = csrf_ok(&rt, &headers, &form, &path) {
        return refused(&rt, l, why);
    }
    let o = match offers::resolve_code(&rt, &code).await {
        Ok(o) => o,
        Err(e) => return page_error(&rt, l, e),
    };
    let field = |k: &str| {
        form.iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let values = FormValues {
        organisation: field("organisation"),
        domain: field("domain"),
        admin_email: field("admin_email"),
        licences: form
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("licences.")
                    .map(|p| (p.to_string(), v.clone()))
            })
            .collect(),
        delegated_admin: field("delegated_admin") == "yes",
    };
    let limits = limits_of(&rt);
    let mut errors: Vec<(String, String)> = Vec::new();
    let organisation = crate::core::domain::parse_name(&values.organisation, 200)
        .map_err(|_| {
            errors.push((
                "organisation".into(),
                views::field_message(l, "organisation", None),
            ))
        })
        .ok();
    let domain = DomainName::parse(&values.domain)
        .map_err(|_| errors.push(("domain".into(), views::field_message(l, "domain", None))))
        .ok();
    let admin_email = EmailAddress::parse(&values.admin_email)
        .map_err(|_| {
            errors.push((
                "admin_email".into(),
                views::field_message(l, "admin_email", None),
            ))
        })
        .ok();
    let mut licences = Vec::new();
    for (p, v) in &values.licences {
        let line = o.offer.products.iter().find(|x| x.id.as_str() == p);
        match (line, v.trim().parse::<i64>()) {
            (Some(line), Ok(n)) => licences.push((line.id.clone(), n)),
            (Some(line), Err(_)) => errors.push((
                format!("licences.{p}"),
                views::field_message(l, "licences", Some(limits(line))),
            )),
            // A product that is not on the offer: refused, nothing recorded.
            (None, _) => errors.push((
                format!("licences.{p}"),
                views::field_message(l, "unknown", None),
            )),
        }
    }
    let (token, set) = csrf_for(&rt, &headers, &path);
    let again = |errors: &[(String, String)]| {
        let body = views::offer_page(
            l,
            &rt.company().partner,
            &o,
            &limits,
            &path,
            &token,
            &values,
            errors,
        );
        page(&rt, StatusCode::UNPROCESSABLE_ENTITY, body, set.clone())
    };
    let (Some(organisation), Some(domain), Some(admin_email), true) =
        (organisation, domain, admin_email, errors.is_empty())
    else {
        return again(&errors);
    };
    // Accept forms per client address: counted only for a well-formed form.
    if let Some(refused) = spend(
        &rt,
        l,
        &format!("accept-from:{}", client.0),
        3600,
        rt.settings.public.accepts_per_client_per_hour,
    )
    .await
    {
        tracing::warn!(client = client.0, offer_id = %o.offer.offer_id, "accept form: client over the hourly limit");
        return refused;
    }
    let a = offers::Acceptance {
        organisation,
        domain,
        admin_email,
        licences,
        delegated_admin: o.offer.kind == OfferKind::DelegatedAdmin || values.delegated_admin,
        locale: l,
    };
    let email = a.admin_email.clone();
    let domain = a.domain.clone();
    match offers::accept(&rt, &o, a).await {
        Ok(Accepted::Unconfirmed(_)) => page(
            &rt,
            StatusCode::OK,
            views::check_mail_page(l, &rt.company().partner, &o, email.as_str()),
            None,
        ),
        Ok(Accepted::AlreadyAccepted) => page(
            &rt,
            StatusCode::CONFLICT,
            views::already_accepted_page(l, &rt.company().partner, &o, domain.as_str()),
            None,
        ),
        Err(offers::AcceptError::Limited(which)) => {
            tracing::warn!(offer_id = %o.offer.offer_id, limit = ?which, "accept form: over the confirmation-email limit");
            limited(&rt, l, 86_400)
        }
        Err(offers::AcceptError::Offer(e)) => match e {
            OfferError::LicenceCount { field, product, .. } => {
                let line = o.offer.products.iter().find(|x| x.id.as_str() == product);
                let msg = views::field_message(l, "licences", line.map(&limits));
                again(&[(field, msg)])
            }
            OfferError::OfferClosed { .. } => page_error(&rt, l, Resolve::Closed(Box::new(o))),
            OfferError::Invalid { field, .. } if field == "admin_email" => {
                again(&[(field, views::field_message(l, "admin_email_domain", None))])
            }
            OfferError::Invalid { field, .. } if field.starts_with("licences") => {
                again(&[(field, views::field_message(l, "unknown", None))])
            }
            OfferError::LocationRemoved { since, .. } => {
                page_error(&rt, l, Resolve::LocationGone(Box::new(o), since))
            }
            e @ (OfferError::LocationNotSynced { .. }
            | OfferError::NotAvailable { .. }
            | OfferError::UnknownProduct { .. }) => {
                // The partner's data changed since the offer was made: the offer cannot be taken.
                tracing::warn!(offer_id = %o.offer.offer_id, error = %e, "acceptance refused: offer no longer valid");
                page_error(
                    &rt,
                    l,
                    Resolve::Closed(Box::new(OfferView {
                        state: "withdrawn".into(),
                        ..o
                    })),
                )
            }
            e => {
                tracing::error!(offer_id = %o.offer.offer_id, error = %e, "acceptance failed");
                page(
                    &rt,
                    StatusCode::SERVICE_UNAVAILABLE,
                    views::error_page(l),
                    None,
                )
            }
        },
    }
}

/// A 303 to the provider's sign-up page for this offer.
pub(crate) fn to_signup(rt: &AppState, o: &OfferView) -> Response {
    let to = offers::signup_redirect(rt, o);
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What a confirmation link leads to, as a page (or the 303 to the sign-up page).
pub(crate) fn confirmation_response(
    rt: &AppState,
    l: Locale,
    c: offers::Confirmation,
    path: &str,
    csrf: Option<(String, Option<String>)>,
) -> Response {
    let company = rt.company();
    let p = &*company.partner;
    match c {
        offers::Confirmation::Pending(pending) => {
            let (token, set) = csrf.unwrap_or_default();
            let limits = limits_of(rt);
            let body = views::confirm_page(l, p, &pending, &limits, path, &token);
            page(rt, StatusCode::OK, body, set)
        }
        // A standalone delegated-admin offer is for an existing customer: no sign-up.
        offers::Confirmation::Done(o) if o.offer.kind == OfferKind::DelegatedAdmin => page(
            rt,
            StatusCode::OK,
            views::admin_granted_page(l, p, o.offer.delegated_admin),
            None,
        ),
        offers::Confirmation::Done(o) => to_signup(rt, &o),
        offers::Confirmation::NotFound => {
            page(rt, StatusCode::NOT_FOUND, views::not_found_page(l), None)
        }
        offers::Confirmation::Expired(o) => page(
            rt,
            StatusCode::GONE,
            views::confirm_expired_page(l, p, &o),
            None,
        ),
        offers::Confirmation::AlreadyAccepted(o) => page(
            rt,
            StatusCode::CONFLICT,
            views::already_accepted_page(l, p, &o, ""),
            None,
        ),
        offers::Confirmation::OfferClosed(o) => page_error(rt, l, Resolve::Closed(o)),
        offers::Confirmation::LocationGone(o, since) => {
            page_error(rt, l, Resolve::LocationGone(o, since))
        }
    }
}

/// The confirmation link from the email: shows what was requested and one button. A GET
/// changes nothing (mail scanners open links).
pub(crate) async fn confirm_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("/c/{token}");
    match offers::confirmation(&rt, &token).await {
        Ok(c) => {
            let csrf = csrf_for(&rt, &headers, &path);
            confirmation_response(&rt, l, c, &path, Some(csrf))
        }
        Err(e) => {
            tracing::error!(error = %e, "confirmation page failed");
            page(
                &rt,
                StatusCode::SERVICE_UNAVAILABLE,
                views::error_page(l),
                None,
            )
        }
    }
}

/// The customer confirms: the acceptance counts from now on; on to the sign-up page.
pub(crate) async fn confirm_post(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("/c/{token}");
    if let Err(why) = csrf_ok(&rt, &headers, &form_pairs(&body), &path) {
        return refused(&rt, l, why);
    }
    match offers::confirm(&rt, &token).await {
        Ok(c) => confirmation_response(&rt, l, c, &path, None),
        Err(e) => {
            tracing::error!(error = %e, "confirming an acceptance failed");
            page(
                &rt,
                StatusCode::SERVICE_UNAVAILABLE,
                views::error_page(l),
                None,
            )
        }
    }
}
