//! `/p/{token}`: a reseller accepts the partner's partnership request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::AppState;
use crate::offers;
use crate::web::pages::csrf::{csrf_for, personal_post};
use crate::web::pages::{locale_of, page, refused};
use crate::web::views;

pub(crate) async fn reseller_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let Some(r) = offers::reseller_of_link(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, views::not_found_page(l), None);
    };
    let path = format!("/p/{token}");
    let (csrf, set) = csrf_for(&rt, &headers, &path);
    let (open, stands) = offers::reseller_request_open(&r);
    let status = if stands {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let body = views::reseller_page(
        l,
        &rt.company().partner,
        &r.reseller.name,
        r.reseller.mpn_id.as_str(),
        &path,
        &csrf,
        open,
    );
    page(&rt, status, body, set)
}

pub(crate) async fn reseller_accept(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (l, path, ok) = personal_post(&rt, &headers, "p", &token, &body);
    if let Err(why) = ok {
        return refused(&rt, l, why);
    }
    let Some(r) = offers::reseller_of_link(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, views::not_found_page(l), None);
    };
    let accepted = match offers::accept_reseller_request(&rt, &r).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "reseller accept failed");
            let body = views::error_page(l);
            return page(&rt, StatusCode::SERVICE_UNAVAILABLE, body, None);
        }
    };
    if accepted {
        let body = views::reseller_done_page(l, &rt.company().partner);
        return page(&rt, StatusCode::OK, body, None);
    }
    let company = rt.company();
    let p = &*company.partner;
    let body = views::reseller_page(
        l,
        p,
        &r.reseller.name,
        r.reseller.mpn_id.as_str(),
        &path,
        "",
        false,
    );
    page(&rt, StatusCode::GONE, body, None)
}
