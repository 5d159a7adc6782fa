//! The API's errors: every error maps to a status and a stable code here, in one place
//! ([`ApiError::into_response`]); the body is [`ErrorBody`], the `Error` schema of the
//! OpenAPI document.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::domain::Role;
use crate::engine::EngineError;
use crate::offers::OfferError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing, unknown or revoked bearer token")]
    Unauthorized,
    #[error("{}", forbidden_message(*.0))]
    Forbidden(Role),
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("no route {0}")]
    RouteNotFound(String),
    #[error(transparent)]
    Offer(#[from] OfferError),
}

impl From<crate::campaigns::CampaignError> for ApiError {
    fn from(e: crate::campaigns::CampaignError) -> Self {
        use crate::campaigns::CampaignError as C;
        match e {
            C::NotFound(id) => ApiError::Offer(OfferError::NotFound(format!("campaign {id}"))),
            e @ C::WrongState { .. } => ApiError::Offer(OfferError::Conflict(e.to_string())),
            C::Invalid(m) => match m.split_once(": ") {
                Some((field, message)) if !field.contains(' ') => {
                    ApiError::Offer(OfferError::Invalid {
                        field: field.to_string(),
                        message: message.to_string(),
                    })
                }
                _ => ApiError::Offer(OfferError::Invalid {
                    field: "body".into(),
                    message: m,
                }),
            },
            C::Offer(o) => ApiError::Offer(o),
            C::Store(s) => s.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Offer(OfferError::Engine(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Offer(OfferError::Engine(EngineError::Store(e)))
    }
}

/// Every error code the API answers with, its status, and what it means (also in the
/// OpenAPI document).
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "unauthorized",
        401,
        "no bearer token, or an unknown or revoked one",
    ),
    ("forbidden", 403, "the token's role does not allow this"),
    (
        "invalid_request",
        400,
        "the body or query is malformed (field names the place)",
    ),
    (
        "invalid_field",
        422,
        "a field's value is not acceptable (field names it)",
    ),
    ("unknown_product", 422, "a product id is not in the catalog"),
    (
        "product_not_available",
        422,
        "a product is not sold in the usage country",
    ),
    (
        "licence_count_out_of_range",
        422,
        "a licence count is outside the product's limits",
    ),
    (
        "location_not_synced",
        422,
        "the partner location has not been synced (yet)",
    ),
    ("offer_not_found", 404, "no offer with this Offer ID"),
    ("offer_closed", 409, "the offer is expired or withdrawn"),
    ("not_found", 404, "no such resource"),
    ("route_not_found", 404, "no such route"),
    (
        "conflict",
        409,
        "the resource is in a state that does not allow this",
    ),
    (
        "event_rejected",
        409,
        "the lifecycle does not allow this event now",
    ),
    ("unknown_workflow", 404, "no such workflow"),
    (
        "invalid_data",
        422,
        "instance data does not fit the workflow",
    ),
    (
        "store_unavailable",
        503,
        "the database is unavailable; retry",
    ),
];

/// Every error answer's body (`Error` in the OpenAPI document).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of the codes listed in the document's description (`ERROR_CODES`).
    pub code: &'static str,
    pub message: String,
    /// The field or query parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    fn code(&self) -> (StatusCode, &'static str, Option<String>) {
        use OfferError as O;
        let s = |c: u16| StatusCode::from_u16(c).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self {
            ApiError::Unauthorized => (s(401), "unauthorized", None),
            ApiError::Forbidden(_) => (s(403), "forbidden", None),
            ApiError::BadRequest { field, .. } => (s(400), "invalid_request", Some(field.clone())),
            ApiError::RouteNotFound(_) => (s(404), "route_not_found", None),
            ApiError::Offer(e) => match e {
                O::Invalid { field, .. } => (s(422), "invalid_field", Some(field.clone())),
                O::UnknownProduct { field, .. } => (s(422), "unknown_product", Some(field.clone())),
                O::NotAvailable { field, .. } => {
                    (s(422), "product_not_available", Some(field.clone()))
                }
                O::LicenceCount { field, .. } => {
                    (s(422), "licence_count_out_of_range", Some(field.clone()))
                }
                O::LocationNotSynced { field, .. } | O::LocationRemoved { field, .. } => {
                    (s(422), "location_not_synced", Some(field.clone()))
                }
                O::OfferNotFound(_) => (s(404), "offer_not_found", None),
                O::OfferClosed { .. } => (s(409), "offer_closed", None),
                O::NotFound(_) => (s(404), "not_found", None),
                O::Conflict(_) => (s(409), "conflict", None),
                O::Engine(EngineError::UnknownWorkflow(_)) => (s(404), "unknown_workflow", None),
                O::Engine(EngineError::InvalidData(_)) => (s(422), "invalid_data", None),
                O::Engine(EngineError::Rejected(_)) => (s(409), "event_rejected", None),
                O::Engine(EngineError::Store(StoreError::NotFound(_))) => {
                    (s(404), "not_found", None)
                }
                O::Engine(EngineError::Store(StoreError::Conflict(_) | StoreError::NotNow(_))) => {
                    (s(409), "conflict", None)
                }
                O::Engine(EngineError::Store(_)) => (s(503), "store_unavailable", None),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                field,
            },
        };
        let mut r = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Transient (a locked or restarting database): the client may try again shortly.
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"partnerflow\""),
            );
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn forbidden_message(needed: Role) -> String {
    if needed == Role::Admin {
        "this needs the role `admin`".into()
    } else {
        format!("this needs the role `{needed}` (or admin)")
    }
}

/// A malformed body or query (`invalid_request`, 400) naming its place.
pub fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        field: field.into(),
        message: message.into(),
    }
}
