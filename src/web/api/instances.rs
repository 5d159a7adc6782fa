//! `/api/v1/instances`: workflow instances, low level (start, show, send an event).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::LocaleName;
use crate::app::AppState;
use crate::core::domain::{InstanceId, Locale, Role};
use crate::core::instance::{InstanceDetail, Transitioned};
use crate::web::api::formats::{InstanceIdText, WorkflowWordText};
use crate::web::error::{ApiResult, ErrorBody, bad};
use crate::web::{auth, parse_json};

/// A workflow instance to start (`NewInstance`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewInstance, example = json!({
    "workflow": "trial_invitation",
    "data": {
        "offer_id": "PF-TEST000001",
        "customer_email": "it@contoso.example",
        "customer_name": "Contoso AG",
        "product_name": "Microsoft 365 Business Premium",
        "link": "https://partnerflow.example/o/PF-TEST000001"
    },
    "locale": "en",
    "event": "send"
}))]
pub struct StartBody {
    /// A workflow's name (`workflows/*.toml`).
    #[schema(value_type = WorkflowWordText)]
    workflow: String,
    /// The instance's data; must fit the workflow.
    #[serde(default)]
    #[schema(value_type = Object)]
    data: Map<String, Value>,
    #[schema(value_type = Option<LocaleName>, example = "en")]
    locale: Option<String>,
    /// An event to send right after creation, e.g. "send".
    #[schema(value_type = Option<WorkflowWordText>, example = "send")]
    event: Option<String>,
}

/// Start a workflow instance (low level).
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/instances",
    tag = "instances",
    request_body = StartBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "The instance", body = InstanceDetail),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow the event", body = ErrorBody),
        (status = 422, description = "The data does not fit the workflow", body = ErrorBody),
    )
)]
pub async fn start_instance(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    let b: StartBody = parse_json(&body)?;
    let locale = match b.locale.as_deref() {
        None => None,
        Some(l) => {
            Some(Locale::parse(l).ok_or_else(|| bad("locale", format!("`{l}` is not de or en")))?)
        }
    };
    let id = rt
        .engine
        .start(&b.workflow, &b.data, locale, &actor)
        .await?;
    if let Some(ev) = &b.event {
        rt.engine.fire(&id, ev, &actor).await?;
    }
    let body = rt.engine.detail(&id).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn parse_id(id: &str) -> ApiResult<InstanceId> {
    InstanceId::parse(id).map_err(|m| bad("id", m))
}

/// A workflow instance with history, emails and timers (low level).
///
/// Needs a token with role `admin`.
#[utoipa::path(
    get,
    path = "/api/v1/instances/{id}",
    tag = "instances",
    params(("id" = InstanceIdText, Path, description = "The instance id")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The instance", body = InstanceDetail),
        (status = 400, description = "Not an instance id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
pub async fn show_instance(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceDetail>> {
    auth(&rt, &headers, Role::Admin).await?;
    let id = parse_id(&id)?;
    Ok(Json(rt.engine.detail(&id).await?))
}

/// An event to send (`Event`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Event)]
pub struct EventBody {
    /// An event the instance's workflow knows, e.g. `send`.
    #[schema(value_type = WorkflowWordText, example = "send")]
    event: String,
}

/// Send an event to a workflow instance (low level).
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/instances/{id}/events",
    tag = "instances",
    params(("id" = InstanceIdText, Path, description = "The instance id")),
    request_body = EventBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The transition it made", body = Transitioned),
        (status = 400, description = "Malformed body or instance id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow this event now", body = ErrorBody),
    )
)]
pub async fn send_event(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Transitioned>> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    let id = parse_id(&id)?;
    let b: EventBody = parse_json(&body)?;
    let t = rt.engine.fire(&id, &b.event, &actor).await?;
    Ok(Json(t))
}
