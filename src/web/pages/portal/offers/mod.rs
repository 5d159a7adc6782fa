//! `/portal/offers`: the portal's offers section. The three offer forms (usage country first,
//! then that country's catalog; `forms`), the offers list with its filters, keyset pages and
//! the Offer ID lookup (`list`), and the offer's page — tracking by Offer ID, its CSV, inviting
//! more recipients and withdrawing (`view`). The forms parse what the API parses and call the
//! same services (`offers::create`, `offers::invite`, `offers::withdraw`); every write is
//! audited (`offer.create`, `offer.invite`, `offer.withdraw`).

mod forms;
mod list;
pub(super) mod texts;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::app::AppState;
use crate::core::domain::Timestamp;
use crate::web::pages::page;

use super::view::Nav;
use super::view::offers::{Errors, not_found_html};
use super::{EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/portal/offers", get(list::list))
        .route("/portal/offers/lookup", get(list::lookup))
        .route(
            "/portal/offers/new/{kind}",
            get(forms::new_form).post(forms::create),
        )
        .route("/portal/offers/{offer_id}", get(view::show))
        .route("/portal/offers/{offer_id}/created", get(forms::created))
        .route(
            "/portal/offers/{offer_id}/invite",
            axum::routing::post(forms::invite),
        )
        .route(
            "/portal/offers/{offer_id}/withdraw",
            get(view::withdraw_page).post(view::withdraw),
        )
}

/// The pairs of a query string (at most 30).
fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .take(30)
                .collect()
        })
        .unwrap_or_default()
}

/// A time as the pages show it (UTC, to the minute).
pub(super) fn time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M").to_string()
}

/// A time for `<time datetime>`.
pub(super) fn iso(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// The navigation and the CSRF token of the page's one form (posting to `path`), with one
/// nonce for all.
fn nav_with(
    rt: &AppState,
    s: &SignedIn,
    current: &'static str,
    path: &str,
) -> (Nav, String, Option<String>) {
    let ([out, everywhere, token], set) = csrf_tokens(rt, &s.headers, [SIGN_OUT, EVERYWHERE, path]);
    (
        Nav::new(s.locale, &s.session.user, current, out, everywhere),
        token,
        set,
    )
}

/// The section's 404 page (no such offer, not an Offer ID, no such form), with the lookup box.
fn not_found(rt: &AppState, s: &SignedIn, typed: &str) -> Response {
    let (nav, set) = s.nav(rt, "offers");
    page(
        rt,
        StatusCode::NOT_FOUND,
        not_found_html(s.locale, &nav, typed),
        set,
    )
}
