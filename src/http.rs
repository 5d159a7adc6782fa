//! The only module that knows HTTP. Errors map to status codes in one place
//! ([`ApiError::into_response`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::domain::{InstanceId, Locale};
use crate::engine::EngineError;
use crate::jobs::Runtime;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Engine(EngineError::UnknownWorkflow(_)) => {
                (StatusCode::NOT_FOUND, "unknown_workflow")
            }
            ApiError::Engine(EngineError::InvalidData(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_data")
            }
            ApiError::Engine(EngineError::Rejected(_)) => (StatusCode::CONFLICT, "event_rejected"),
            ApiError::Engine(EngineError::Store(StoreError::NotFound(_))) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::Engine(EngineError::Store(StoreError::Conflict(_))) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::Engine(EngineError::Store(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (
            status,
            Json(json!({ "error": { "code": code, "message": self.to_string() } })),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Engine(EngineError::Store(e))
    }
}

pub fn router(rt: Arc<Runtime>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/instances", post(start_instance))
        .route("/api/v1/instances/{id}", get(show_instance))
        .route("/api/v1/instances/{id}/events", post(send_event))
        .with_state(rt)
}

fn authorize(rt: &Runtime, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = rt.settings.http.admin_token.expose();
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if !expected.is_empty() && constant_time_eq(g.as_bytes(), expected.as_bytes()) => {
            Ok(())
        }
        _ => Err(ApiError::Unauthorized),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz(State(rt): State<Arc<Runtime>>) -> Response {
    match rt.store.count_jobs("failed", None).await {
        Ok(failed) => {
            Json(json!({ "status": "ok", "node": rt.node, "failed_jobs": failed })).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow: String,
    #[serde(default)]
    data: Map<String, Value>,
    locale: Option<String>,
    /// An event to send right after creation, e.g. "send".
    event: Option<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| ApiError::BadRequest {
        field: if e.path().to_string() == "." {
            "body".into()
        } else {
            e.path().to_string()
        },
        message: e.into_inner().to_string(),
    })
}

async fn start_instance(
    State(rt): State<Arc<Runtime>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&rt, &headers)?;
    let b: StartBody = parse_json(&body)?;
    let locale = match b.locale.as_deref() {
        None => None,
        Some(l) => Some(Locale::parse(l).ok_or_else(|| ApiError::BadRequest {
            field: "locale".into(),
            message: format!("`{l}` is not de or en"),
        })?),
    };
    let id = rt.engine.start(&b.workflow, &b.data, locale, "api").await?;
    if let Some(ev) = &b.event {
        rt.engine.fire(&id, ev, "api").await?;
    }
    let body = instance_json(&rt, &id).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn instance_json(rt: &Runtime, id: &InstanceId) -> Result<Value, StoreError> {
    let inst = rt.store.instance(id).await?;
    let history = rt.store.history(id).await?;
    let emails = rt.store.emails_of(id).await?;
    let timers = rt.store.timers_of(id).await?;
    Ok(json!({
        "id": inst.id,
        "workflow": inst.workflow,
        "state": inst.state,
        "version": inst.version,
        "locale": inst.locale,
        "data": inst.data,
        "created_at": inst.created_at,
        "updated_at": inst.updated_at,
        "final_at": inst.final_at,
        "history": history,
        "emails": emails,
        "timers": timers.iter().map(|t| json!({
            "name": t.payload.get("timer"), "event": t.payload.get("event"), "state": t.state, "run_at": t.run_at,
        })).collect::<Vec<_>>(),
    }))
}

fn parse_id(id: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse(id).map_err(|message| ApiError::BadRequest {
        field: "id".into(),
        message,
    })
}

async fn show_instance(
    State(rt): State<Arc<Runtime>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&rt, &headers)?;
    let id = parse_id(&id)?;
    Ok(Json(instance_json(&rt, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    event: String,
}

async fn send_event(
    State(rt): State<Arc<Runtime>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&rt, &headers)?;
    let id = parse_id(&id)?;
    let b: EventBody = parse_json(&body)?;
    let t = rt.engine.fire(&id, &b.event, "api").await?;
    Ok(Json(json!(t)))
}
