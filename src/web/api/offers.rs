//! `/api/v1/offers`: create, list, track, withdraw, invite. The value parsers both edges use
//! are in `offers::request`; what is here is the HTTP shape (JSON body, query string).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{DelegatedAdminName, LocaleName, OfferKindName};
use crate::app::AppState;
use crate::core::domain::{
    AdminRole, Country, EmailAddress, Locale, OfferKind, ProductId, Role, Timestamp,
};
use crate::core::offer::{InvitationSent, OfferFilter, OfferTracking, OfferView};
use crate::offers::{self, LineRequest, NewOffer, OfferError};
use crate::web::api::OfferStateName;
use crate::web::api::formats::{
    CountryText, DateOrTimeText, EmailText, LocationIdText, NameText, OfferCursorText, OfferIdText,
    ProductIdText,
};
use crate::web::error::{ApiError, ApiResult, ErrorBody, bad};
use crate::web::{auth, parse_json, parse_offer_id, query_map};

/// A new offer (`NewOffer`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewOffer, example = json!({
    "kind": "purchase",
    "location_id": "loc-berlin",
    "country": "DE",
    "products": [{ "id": "m365-e3", "licences": 25 }],
    "delegated_admin": "limited",
    "message": "Hello team"
}))]
pub struct OfferBody {
    #[schema(value_type = OfferKindName, example = "purchase")]
    kind: String,
    /// A synced partner location (`GET /api/v1/locations`).
    #[schema(value_type = LocationIdText)]
    location_id: String,
    /// The usage country, an assigned ISO 3166-1 alpha-2 code.
    #[schema(value_type = CountryText)]
    country: String,
    #[serde(default)]
    products: Vec<LineBody>,
    #[schema(value_type = Option<DelegatedAdminName>, example = "limited")]
    delegated_admin: Option<String>,
    #[serde(default)]
    #[schema(example = false)]
    auto_extend: bool,
    /// RFC 3339; default: the offer kind's validity from now.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Shown to the customer (plain text).
    #[schema(example = "Hello team", max_length = 2000)]
    message: Option<String>,
}

/// One product line of a new offer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewOfferLine)]
pub struct LineBody {
    /// A catalog product id (`GET /api/v1/catalog`).
    #[schema(value_type = ProductIdText)]
    id: String,
    /// Within the product's limits; default: its minimum.
    #[schema(example = 25)]
    licences: Option<i64>,
}

/// A usage country: not two letters is a bad request; two letters that are no assigned ISO
/// 3166-1 alpha-2 code are `invalid_field` naming `field`.
pub fn parse_country(field: &str, s: &str) -> ApiResult<Country> {
    Country::parse(s).map_err(|m| {
        if Country::parse_stored(s).is_ok() {
            ApiError::Offer(OfferError::Invalid {
                field: field.into(),
                message: m,
            })
        } else {
            bad(field, m)
        }
    })
}

/// Parses an offer request body.
pub fn parse_new_offer(body: &[u8]) -> ApiResult<NewOffer> {
    let b: OfferBody = parse_json(body)?;
    let kind = OfferKind::parse(&b.kind).map_err(|m| bad("kind", m))?;
    let country = parse_country("country", &b.country)?;
    let mut products = Vec::new();
    for (i, l) in b.products.iter().enumerate() {
        products.push(LineRequest {
            product: ProductId::parse(&l.id).map_err(|m| bad(&format!("products[{i}].id"), m))?,
            licences: l.licences,
        });
    }
    let delegated_admin = match b.delegated_admin.as_deref() {
        None | Some("none") => None,
        Some(r) => Some(AdminRole::parse(r).map_err(|m| bad("delegated_admin", m))?),
    };
    let expires_at = b
        .expires_at
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()
        .map_err(|m| bad("expires_at", m))?;
    let message = b
        .message
        .as_deref()
        .map(offers::parse_message)
        .transpose()
        .map_err(|m| bad("message", m))?;
    let location_id =
        offers::parse_location_id(&b.location_id).map_err(|m| bad("location_id", m))?;
    Ok(NewOffer {
        kind,
        location_id,
        country,
        products,
        delegated_admin,
        auto_extend: b.auto_extend,
        expires_at,
        message,
    })
}

/// Create an offer (trial, purchase or delegated_admin); answers with its tracking view
/// (Offer ID, link, …) and its Location.
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/offers",
    tag = "offers",
    request_body = OfferBody,
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 201, description = "The offer, as `GET /api/v1/offers/{offer_id}` shows it", body = OfferTracking),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 422, description = "A field's value is not acceptable (product, licences, location, country)", body = ErrorBody),
    )
)]
pub async fn create_offer(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let actor = auth(&rt, &headers, Role::SalesAgent).await?;
    let n = parse_new_offer(&body)?;
    let o = offers::create(&rt, n, &actor).await?;
    let v = offers::tracking(&rt, &o.offer.offer_id).await?;
    let mut r = (StatusCode::CREATED, Json(v)).into_response();
    if let Ok(h) = HeaderValue::from_str(&format!("/api/v1/offers/{}", o.offer.offer_id)) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    Ok(r)
}

/// The query of `GET /api/v1/offers` (parsed by [`parse_filter`]; other parameters are
/// refused).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OfferQuery {
    /// `created`, `open`, `expired` or `withdrawn`.
    #[param(value_type = Option<OfferStateName>)]
    state: Option<String>,
    /// `trial`, `purchase` or `delegated_admin`.
    #[param(value_type = Option<OfferKindName>)]
    kind: Option<String>,
    /// A location id.
    #[param(value_type = Option<LocationIdText>)]
    location: Option<String>,
    /// A date (`2026-11-22`, midnight UTC) or an RFC 3339 date-time.
    #[param(value_type = Option<DateOrTimeText>)]
    created_from: Option<String>,
    /// A date (`2026-11-22`, midnight UTC) or an RFC 3339 date-time.
    #[param(value_type = Option<DateOrTimeText>)]
    created_to: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 50)]
    limit: Option<i64>,
    /// The `next` value of the previous page.
    #[param(value_type = Option<OfferCursorText>)]
    before: Option<String>,
}

/// Parses list filters from the query.
pub fn parse_filter(m: &Map<String, Value>) -> ApiResult<OfferFilter> {
    offers::parse_filter(|k| m.get(k).and_then(Value::as_str)).map_err(|e| bad(&e.field, e.message))
}

/// One page of offers.
#[derive(Serialize, ToSchema)]
pub struct OffersPage<'a> {
    #[schema(value_type = Vec<OfferView>)]
    offers: &'a [OfferView],
    /// `before` for the next page; null on the last one.
    next: Option<String>,
}

pub fn offers_page(list: &[OfferView], limit: i64) -> OffersPage<'_> {
    OffersPage {
        offers: list,
        next: offers::next_page(list, limit),
    }
}

/// List offers; filter by state, kind, location, created_from, created_to; page with limit
/// and before.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/offers",
    tag = "offers",
    params(OfferQuery),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "One page of offers, newest first", body = OffersPage),
        (status = 400, description = "A malformed or unknown query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
    )
)]
pub async fn list_offers(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let m = query_map(
        &q,
        &[
            "state",
            "kind",
            "location",
            "created_from",
            "created_to",
            "limit",
            "before",
        ],
    )?;
    let f = parse_filter(&m)?;
    let list = offers::list(&rt, &f).await?;
    Ok(Json(
        serde_json::to_value(offers_page(&list, f.limit)).unwrap_or(Value::Null),
    ))
}

/// Track an offer: state, products, link, invitations, acceptances, relationships, sign-ups,
/// history.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/offers/{offer_id}",
    tag = "offers",
    params(("offer_id" = OfferIdText, Path, description = "The Offer ID")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The offer's tracking view", body = OfferTracking),
        (status = 400, description = "Not an Offer ID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No offer with this Offer ID", body = ErrorBody),
    )
)]
pub async fn show_offer(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferTracking>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(offers::tracking(&rt, &parse_offer_id(&id)?).await?))
}

/// Withdraw an offer (and its open invitations).
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/offers/{offer_id}/withdraw",
    tag = "offers",
    params(("offer_id" = OfferIdText, Path, description = "The Offer ID")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The offer's tracking view", body = OfferTracking),
        (status = 400, description = "Not an Offer ID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No offer with this Offer ID", body = ErrorBody),
        (status = 409, description = "The offer is closed already", body = ErrorBody),
    )
)]
pub async fn withdraw_offer(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferTracking>> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    let id = parse_offer_id(&id)?;
    offers::withdraw(&rt, &id, &actor).await?;
    Ok(Json(offers::tracking(&rt, &id).await?))
}

/// An invitation to send (`NewInvitation`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewInvitation)]
pub struct InviteBody {
    #[schema(value_type = EmailText)]
    recipient: String,
    /// The email's language; default: the partner's.
    #[schema(value_type = Option<LocaleName>, example = "en")]
    locale: Option<String>,
    /// The recipient's name, for the greeting.
    #[schema(value_type = Option<NameText>, example = "Dana Doe")]
    name: Option<String>,
}

/// Send the offer's link to a recipient.
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/offers/{offer_id}/invitations",
    tag = "offers",
    params(("offer_id" = OfferIdText, Path, description = "The Offer ID")),
    request_body = InviteBody,
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 201, description = "The invitation (its lifecycle instance and state)", body = InvitationSent),
        (status = 400, description = "Malformed body or Offer ID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No offer with this Offer ID", body = ErrorBody),
        (status = 409, description = "The offer is expired or withdrawn", body = ErrorBody),
        (status = 422, description = "A field's value is not acceptable", body = ErrorBody),
    )
)]
pub async fn invite(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let actor = auth(&rt, &headers, Role::SalesAgent).await?;
    let id = parse_offer_id(&id)?;
    let b: InviteBody = parse_json(&body)?;
    let to = EmailAddress::parse(&b.recipient).map_err(|m| bad("recipient", m))?;
    let locale = b
        .locale
        .as_deref()
        .map(|l| Locale::parse(l).ok_or_else(|| bad("locale", format!("`{l}` is not de or en"))))
        .transpose()?;
    let name = b
        .name
        .as_deref()
        .map(|n| crate::core::domain::parse_name(n, 200).map_err(|m| bad("name", m)))
        .transpose()?;
    let sent = offers::invite(&rt, &id, to, name, locale, &actor).await?;
    Ok((StatusCode::CREATED, Json(sent)).into_response())
}
