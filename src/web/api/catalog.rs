//! `/api/v1/catalog` and `/api/v1/locations`: what offers can be made of.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::offers::parse_country;
use crate::app::AppState;
use crate::core::catalog::Product;
use crate::core::domain::Role;
use crate::core::offer::LocationView;
use crate::offers::OfferError;
use crate::web::api::formats::CountryText;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::{auth, query_map};

/// The query of `GET /api/v1/catalog`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CatalogQuery {
    /// Only the products sold in this usage country (ISO 3166-1 alpha-2).
    #[param(value_type = Option<CountryText>)]
    country: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogList {
    products: Vec<Product>,
}

/// Catalog products, optionally only those sold in ?country=DE.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    tag = "catalog",
    params(CatalogQuery),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The products", body = CatalogList),
        (status = 400, description = "A malformed or unknown query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 422, description = "Not an assigned country code", body = ErrorBody),
    )
)]
pub async fn catalog(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<CatalogList>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let m = query_map(&q, &["country"])?;
    let products: Vec<_> = match m.get("country").and_then(Value::as_str) {
        Some(c) => {
            let c = parse_country("country", c)?;
            rt.catalog.in_country(c)
        }
        None => rt.catalog.all().collect(),
    };
    Ok(Json(CatalogList {
        products: products.into_iter().cloned().collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct LocationList {
    locations: Vec<LocationView>,
}

/// Synced partner locations (only these can be chosen for offers).
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/locations",
    tag = "catalog",
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The locations", body = LocationList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
    )
)]
pub async fn locations(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<LocationList>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(LocationList {
        locations: crate::offers::locations(&rt).await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SyncSummary {
    /// What the sync changed, in words.
    summary: String,
}

/// Sync partner locations now.
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/locations/sync",
    tag = "catalog",
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The sync ran", body = SyncSummary),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 409, description = "The sync failed (source unreachable or invalid)", body = ErrorBody),
    )
)]
pub async fn locations_sync(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<SyncSummary>> {
    auth(&rt, &headers, Role::Admin).await?;
    let summary = crate::offers::tasks::location_sync(&rt)
        .await
        .map_err(|m| ApiError::Offer(OfferError::Conflict(format!("location sync failed: {m}"))))?;
    Ok(Json(SyncSummary { summary }))
}
