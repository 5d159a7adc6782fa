//! `/p/{token}`: a reseller accepts the partner's partnership request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::AppState;
use crate::core::links::Purpose;
use crate::engine::EngineError;
use crate::offers;
use crate::web::pages::csrf::{csrf_for, personal_post};
use crate::web::pages::{locale_of, page, refused};
use crate::web::views;

pub(crate) async fn reseller_of(
    rt: &AppState,
    token: &str,
) -> Option<crate::core::offer::ResellerView> {
    let id = offers::resolve_page_token(rt, Purpose::Reseller, token)?;
    let r = rt.store.reseller_by_instance(&id).await.ok()??;
    // A later request for the same reseller replaces the row: an old link leads nowhere.
    (r.reseller.instance_id == id).then_some(r)
}

pub(crate) async fn reseller_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let Some(r) = reseller_of(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, views::not_found_page(l), None);
    };
    let path = format!("/p/{token}");
    let (csrf, set) = csrf_for(&rt, &headers, &path);
    let open = r.state == "request_sent";
    let status = if open || r.state == "active" {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let body = views::reseller_page(
        l,
        &rt.settings.partner,
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
    let Some(r) = reseller_of(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, views::not_found_page(l), None);
    };
    let accepted = match r.state.as_str() {
        "active" => true,
        "request_sent" => match rt
            .engine
            .fire(&r.reseller.instance_id, "accept", "reseller")
            .await
        {
            Ok(_) => true,
            Err(EngineError::Rejected(_)) => false,
            Err(e) => {
                tracing::error!(error = %e, "reseller accept failed");
                let body = views::error_page(l);
                return page(&rt, StatusCode::SERVICE_UNAVAILABLE, body, None);
            }
        },
        _ => false,
    };
    if accepted {
        let body = views::reseller_done_page(l, &rt.settings.partner);
        return page(&rt, StatusCode::OK, body, None);
    }
    let p = &rt.settings.partner;
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
