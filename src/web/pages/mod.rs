//! The customer's pages, per flow: [`offer`] (offer page, accept, confirm), [`relationship`]
//! (remove admin roles), [`reseller`] (a reseller's partnership request), [`unsubscribe`];
//! the CSRF and cookie helpers in [`csrf`]. The HTML comes from `crate::web::views` (pure
//! builders); here: status codes, headers, the content security policy and what a failed
//! link shows.

pub mod csrf;
pub mod offer;
pub mod portal;
pub mod relationship;
pub mod reseller;
pub mod unsubscribe;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::core::domain::Locale;
use crate::core::offer::OfferLine;
use crate::offers::Resolve;
use crate::web::views;

pub(crate) fn accept_language(h: &HeaderMap) -> Option<&str> {
    h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

pub(crate) fn locale_of(rt: &AppState, h: &HeaderMap) -> Locale {
    views::negotiate(accept_language(h), rt.settings.app.default_locale)
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// A page with the content security policy: no scripts at all, forms only to us (and the
/// sign-up page the accept form redirects to).
pub(crate) fn page(
    rt: &AppState,
    status: StatusCode,
    body: String,
    set_cookie: Option<String>,
) -> Response {
    let mut r = html(status, body);
    let signup = rt.settings.offers.signup_url.origin().ascii_serialization();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self' {signup}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// The 403 page of a refused form.
pub(crate) fn refused(rt: &AppState, l: Locale, why: views::FormRefusal) -> Response {
    page(
        rt,
        StatusCode::FORBIDDEN,
        views::forbidden_page(l, why),
        None,
    )
}

pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .into_owned()
        .take(200)
        .collect()
}

pub(crate) fn limits_of(rt: &AppState) -> impl Fn(&OfferLine) -> (u32, u32) + '_ {
    move |l: &OfferLine| {
        rt.catalog
            .get(&l.id)
            .map(|p| (p.min_licences, p.max_licences))
            .unwrap_or((1, 1))
    }
}

/// What a customer page shows when the link or the store fails.
pub(crate) fn page_error(rt: &AppState, l: Locale, e: Resolve) -> Response {
    match e {
        Resolve::NotFound(why) => {
            tracing::info!(why, "customer link refused");
            page(rt, StatusCode::NOT_FOUND, views::not_found_page(l), None)
        }
        Resolve::Unavailable(e) => {
            tracing::error!(error = %e, "customer page: store unavailable");
            page(
                rt,
                StatusCode::SERVICE_UNAVAILABLE,
                views::error_page(l),
                None,
            )
        }
        Resolve::Closed(o) => {
            let state = if o.state == "open" {
                "expired".to_string()
            } else {
                o.state.clone()
            };
            page(
                rt,
                StatusCode::GONE,
                views::closed_page(l, &rt.company().partner, &o, &state),
                None,
            )
        }
        Resolve::LocationGone(o, _) => page(
            rt,
            StatusCode::GONE,
            views::location_gone_page(l, &rt.company().partner, &o),
            None,
        ),
    }
}
