//! `/r/{token}`: the customer removes the partner's delegated admin roles.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::AppState;
use crate::engine::EngineError;
use crate::offers::{self, OfferError};
use crate::web::pages::csrf::{csrf_for, personal_post};
use crate::web::pages::{locale_of, page, refused};
use crate::web::views;

pub(crate) async fn remove_roles_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let Some(rel) = offers::relationship_of_link(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, views::not_found_page(l), None);
    };
    let path = format!("/r/{token}");
    let (csrf, set) = csrf_for(&rt, &headers, &path);
    let who = format!("{} ({})", rel.customer_name, rel.domain);
    let body = views::remove_roles_page(
        l,
        &rt.company().partner,
        &who,
        rel.role,
        &path,
        &csrf,
        rel.active,
    );
    page(&rt, StatusCode::OK, body, set)
}

pub(crate) async fn remove_roles(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (l, _, ok) = personal_post(&rt, &headers, "r", &token, &body);
    if let Err(why) = ok {
        return refused(&rt, l, why);
    }
    let Some(rel) = offers::relationship_of_link(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, views::not_found_page(l), None);
    };
    if rel.active {
        match offers::remove_roles(&rt, &rel.id).await {
            Ok(()) | Err(OfferError::Engine(EngineError::Rejected(_))) => {}
            Err(e) => {
                tracing::error!(relationship = %rel.id, error = %e, "removing roles failed");
                return page(
                    &rt,
                    StatusCode::SERVICE_UNAVAILABLE,
                    views::error_page(l),
                    None,
                );
            }
        }
    }
    page(
        &rt,
        StatusCode::OK,
        views::roles_removed_page(l, &rt.company().partner),
        None,
    )
}
