//! `/portal/customers`: the customer search (viewers and up; an exact user name or domain, as
//! `GET /api/v1/customers` takes it) and a customer's page by domain
//! (`/portal/customers/{domain}`): acceptances, delegated-admin relationships with their end
//! and reminders, resellers and support contact, invitations with their delivery. Read only.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::app::AppState;
use crate::core::domain::{DomainName, Role};
use crate::offers::{self, OfferError};
use crate::web::pages::page;

use super::view::customers as view;
use super::{SignedIn, field, query_pairs, unavailable};
use view::ResultLine;

const SEARCH: &str = "/portal/customers";
/// Longer than any user name (254) or domain (253): refused before it is parsed.
const MAX_QUERY: usize = 300;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(SEARCH, get(search))
        .route("/portal/customers/{domain}", get(customer))
}

/// The search: an empty query shows the form; a malformed one its error next to the field
/// (400); otherwise the customers found.
async fn search(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let q = field(&pairs, "q").trim();
    let x = view::ctexts(s.locale);
    let (nav, set) = s.nav(&rt, "customers");
    let show = |status, error: Option<&str>, results: Option<&[ResultLine]>| {
        page(
            &rt,
            status,
            view::search_page(s.locale, &nav, q, error, results),
            set.clone(),
        )
    };
    if q.is_empty() {
        return show(StatusCode::OK, None, None);
    }
    if q.chars().count() > MAX_QUERY {
        return show(StatusCode::BAD_REQUEST, Some(x.too_long.0), None);
    }
    match offers::search_customers(&rt, q).await {
        Ok(found) => {
            let lines: Vec<ResultLine> = found.iter().map(ResultLine::new).collect();
            show(StatusCode::OK, None, Some(&lines))
        }
        Err(OfferError::Invalid { .. }) => {
            let m = if q.contains(['*', '%', '?']) {
                x.wildcards.0
            } else {
                x.bad_query.0
            };
            show(StatusCode::BAD_REQUEST, Some(m), None)
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// The 404 page of a section (a malformed or unknown key), with a link back to `back`.
pub(super) fn not_found(
    rt: &AppState,
    s: &SignedIn,
    section: &'static str,
    back: &str,
    back_text: &str,
) -> Response {
    let (nav, set) = s.nav(rt, section);
    page(
        rt,
        StatusCode::NOT_FOUND,
        view::not_found_page(s.locale, &nav, back, back_text),
        set,
    )
}

fn no_customer(rt: &AppState, s: &SignedIn) -> Response {
    not_found(rt, s, "customers", SEARCH, view::ctexts(s.locale).back.0)
}

/// A customer's page by domain; 404 for a malformed domain or one no one accepted or was
/// invited at.
async fn customer(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(domain): Path<String>,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let Ok(d) = DomainName::parse(&domain) else {
        return no_customer(&rt, &s);
    };
    match offers::customer_detail(&rt, &d).await {
        Ok(Some(detail)) => {
            let (nav, set) = s.nav(&rt, "customers");
            page(
                &rt,
                StatusCode::OK,
                view::customer_page(s.locale, &nav, &detail),
                set,
            )
        }
        Ok(None) => no_customer(&rt, &s),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}
