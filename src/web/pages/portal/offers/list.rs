//! `/portal/offers`: the offers, newest first, filtered (state, kind, location, created from
//! and before, created by) by a GET form, a keyset page at a time (`offers::list`'s cursor);
//! and the Offer ID lookup box (`/portal/offers/lookup`, a GET form to the offer's page).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::AppState;
use crate::core::domain::{OfferId, Role};
use crate::offers;
use crate::web::pages::page;

use super::{Errors, not_found, query_pairs};
use crate::web::pages::portal::view::offers::{ListForm, Row, list_page};
use crate::web::pages::portal::{SignedIn, field, see_other, unavailable};

/// Offers on one page.
pub(crate) const PAGE: i64 = 50;

pub(super) async fn list(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let pairs = query_pairs(&q);
    let get = |k: &str| field(&pairs, k).trim().to_string();
    let mut form = ListForm {
        state: get("state"),
        kind: get("kind"),
        location: get("location"),
        from: get("from"),
        to: get("to"),
        created_by: get("created_by"),
        errors: Errors::default(),
    };
    let before = get("before");
    // The API's parser, under the form's names.
    let parsed = offers::parse_filter(|k| {
        let v = match k {
            "state" => &form.state,
            "kind" => &form.kind,
            "location" => &form.location,
            "created_from" => &form.from,
            "created_to" => &form.to,
            "before" => &before,
            _ => return None,
        };
        Some(v.as_str())
    });
    let mut status = StatusCode::OK;
    let mut filter = match parsed {
        Ok(f) => Some(f),
        Err(e) => {
            let f = match e.field.as_str() {
                "created_from" => "from",
                "created_to" => "to",
                "offer_id" => "before",
                other => other,
            };
            form.errors.add(f, e.message);
            status = StatusCode::BAD_REQUEST;
            None
        }
    };
    if let Some(f) = filter.as_mut() {
        f.limit = PAGE;
        f.created_by = Some(form.created_by.clone()).filter(|c| !c.is_empty());
    }
    let offers = match &filter {
        Some(f) => match offers::list(&rt, f).await {
            Ok(o) => o,
            Err(e) => return unavailable(&rt, s.locale, &e),
        },
        None => vec![],
    };
    let locations: Vec<(String, String)> = match offers::locations(&rt).await {
        Ok(l) => l
            .into_iter()
            .map(|l| (l.location.id, l.location.name))
            .collect(),
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let next = offers::next_page(&offers, PAGE).map(|c| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &form.state)
            .append_pair("kind", &form.kind)
            .append_pair("location", &form.location)
            .append_pair("from", &form.from)
            .append_pair("to", &form.to)
            .append_pair("created_by", &form.created_by)
            .append_pair("before", &c)
            .finish()
    });
    let rows: Vec<Row> = offers.iter().map(|o| Row::new(s.locale, o)).collect();
    let (nav, set) = s.nav(&rt, "offers");
    page(
        &rt,
        status,
        list_page(
            s.locale,
            &nav,
            &form,
            &rows,
            next.as_deref(),
            !before.is_empty(),
            &locations,
        ),
        set,
    )
}

/// The lookup box: an Offer ID goes to its page (303); anything else is the 404 page.
pub(super) async fn lookup(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let pairs = query_pairs(&q);
    let typed = field(&pairs, "offer_id");
    match OfferId::parse(typed) {
        Ok(id) => see_other(&format!("/portal/offers/{id}"), None),
        Err(_) => not_found(&rt, &s, typed),
    }
}
