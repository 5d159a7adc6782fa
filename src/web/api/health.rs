//! What operators and their monitoring read: `/healthz` (liveness and the failed-job count),
//! `/readyz` (the database answers and its schema is this build's) and `/metrics` (Prometheus,
//! behind a `metrics` token; see `app::ops`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::core::domain::Role;
use crate::web::auth;
use crate::web::error::{ApiResult, ErrorBody};

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

#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    /// The newest migration applied to the database (this build's newest).
    schema_version: i64,
}

#[derive(Serialize, ToSchema)]
pub struct NotReady {
    #[schema(example = "not_ready")]
    status: &'static str,
    /// Why, in a few words (no detail of the database's error).
    #[schema(
        example = "migrations pending: the database is at 19, this build needs 20 (partnerflow migrate)"
    )]
    reason: String,
}

/// Readiness: the database answers and the migrations applied are this build's.
///
/// For a load balancer or an orchestrator: a node answers 503 until it may take traffic.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready: the database answers, its schema is current", body = Ready),
        (status = 503, description = "Not ready, with the reason", body = NotReady),
    )
)]
pub async fn readyz(State(rt): State<Arc<AppState>>) -> Response {
    match rt.readiness().await {
        Ok(v) => Json(Ready {
            status: "ready",
            schema_version: v,
        })
        .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(NotReady {
                status: "not_ready",
                reason,
            }),
        )
            .into_response(),
    }
}

/// Prometheus metrics (text format 0.0.4): this process's counters (HTTP requests and
/// latency, job outcomes, emails, schedule runs) and gauges read from the database at the
/// scrape (jobs by state and kind, the oldest due job's age, campaigns and their recipients
/// by state).
///
/// Needs a token with role `metrics` (or `admin`); `http.metrics_bind` serves it on a private
/// address without one.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(("bearer" = ["metrics"])),
    responses(
        (status = 200, description = "The metrics in the Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
    )
)]
pub async fn scrape(State(rt): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    auth(&rt, &headers, Role::Metrics).await?;
    Ok(exposition(&rt).await)
}

/// The scrape's answer (also served without a token on `http.metrics_bind`).
pub(crate) async fn exposition(rt: &AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        rt.metrics_text().await,
    )
        .into_response()
}
