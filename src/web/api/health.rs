//! `/healthz`: liveness and the failed-job count.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
    /// This node's name.
    node: String,
    failed_jobs: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Unavailable {
    #[schema(example = "unavailable")]
    status: &'static str,
    error: String,
}

/// Liveness and failed-job count.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "Up; the database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Unavailable),
    )
)]
pub async fn healthz(State(rt): State<Arc<AppState>>) -> Response {
    match crate::jobs::inspect::failed_count(&rt).await {
        Ok(failed) => Json(Health {
            status: "ok",
            node: rt.node.clone(),
            failed_jobs: failed,
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Unavailable {
                status: "unavailable",
                error: e.to_string(),
            }),
        )
            .into_response(),
    }
}
