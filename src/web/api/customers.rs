//! `/api/v1/customers`: find customers, accepted or invited.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::core::domain::Role;
use crate::core::offer::CustomerView;
use crate::offers;
use crate::web::api::formats::CustomerQueryText;
use crate::web::error::{ApiResult, ErrorBody};
use crate::web::{auth, query_map};

/// The query of `GET /api/v1/customers`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CustomerSearch {
    /// An exact user name (`person@contoso.com`) or an exact domain (`contoso.com`); no
    /// wildcards.
    #[param(value_type = CustomerQueryText)]
    q: String,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerList {
    customers: Vec<CustomerView>,
}

/// Find customers, accepted or invited (`source`), by exact user name
/// (?q=person@contoso.com) or exact domain (?q=contoso.com); no wildcards.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/customers",
    tag = "customers",
    params(CustomerSearch),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The customers found", body = CustomerList),
        (status = 400, description = "A malformed or unknown query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 422, description = "`q` is neither a user name nor a domain", body = ErrorBody),
    )
)]
pub async fn customers(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<CustomerList>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let m = query_map(&q, &["q"])?;
    let q = m.get("q").and_then(Value::as_str).unwrap_or("");
    Ok(Json(CustomerList {
        customers: offers::search_customers(&rt, q).await?,
    }))
}
