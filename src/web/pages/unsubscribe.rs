//! `/u/{token}`: a campaign recipient unsubscribes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::AppState;
use crate::web::error::ApiResult;
use crate::web::pages::{locale_of, page};
use crate::web::views;

/// `/u/{token}`: the unsubscribe page (GET, a confirm button) and the one-click POST
/// (RFC 8058: mail clients POST `List-Unsubscribe=One-Click` without cookies, so no CSRF
/// token is asked for: the signed token is the authority, and unsubscribing is harmless).
pub(crate) async fn unsubscribe_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let lang = locale_of(&rt, &headers);
    let target = crate::campaigns::unsubscribe_target(&rt, &token).await?;
    Ok(match target {
        None => page(
            &rt,
            StatusCode::NOT_FOUND,
            views::not_found_page(lang),
            None,
        ),
        Some((_, _, email)) => page(
            &rt,
            StatusCode::OK,
            views::unsubscribe_confirm(lang, &email, &format!("/u/{token}")),
            None,
        ),
    })
}

pub(crate) async fn unsubscribe_post(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let lang = locale_of(&rt, &headers);
    Ok(match crate::campaigns::unsubscribe(&rt, &token).await? {
        None => page(
            &rt,
            StatusCode::NOT_FOUND,
            views::not_found_page(lang),
            None,
        ),
        Some(email) => page(
            &rt,
            StatusCode::OK,
            views::unsubscribe_done(lang, &email),
            None,
        ),
    })
}
