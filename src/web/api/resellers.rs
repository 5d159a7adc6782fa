//! `/api/v1/resellers`: partnership requests, their state and their customers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::core::domain::{DomainName, EmailAddress, InstanceId, MpnId, Role};
use crate::core::offer::ResellerView;
use crate::offers::{self, ResellerTarget};
use crate::web::api::formats::{DomainText, EmailText, InstanceIdText, MpnIdText, NameText};
use crate::web::error::{ApiResult, ErrorBody, bad};
use crate::web::{auth, parse_json};

/// A partnership request to send (`NewReseller`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewReseller)]
pub struct ResellerBody {
    /// The reseller's MPN ID (digits).
    #[schema(value_type = MpnIdText)]
    mpn_id: String,
    #[schema(value_type = NameText, example = "Reseller GmbH")]
    name: String,
    /// Where the request is sent.
    #[schema(value_type = EmailText, example = "partners@reseller.example")]
    email: String,
}

/// Send a partnership request to a reseller.
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/resellers",
    tag = "resellers",
    request_body = ResellerBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "The partnership, request sent", body = ResellerView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 409, description = "A partnership with this reseller is active or requested", body = ErrorBody),
    )
)]
pub async fn create_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    let b: ResellerBody = parse_json(&body)?;
    let mpn = MpnId::parse(&b.mpn_id).map_err(|m| bad("mpn_id", m))?;
    let name = crate::core::domain::parse_name(&b.name, 200).map_err(|m| bad("name", m))?;
    let email = EmailAddress::parse(&b.email).map_err(|m| bad("email", m))?;
    let r = offers::request_reseller(&rt, mpn, name, email, &actor).await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct ResellerList {
    resellers: Vec<ResellerView>,
}

/// List reseller partnerships.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/resellers",
    tag = "resellers",
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The partnerships", body = ResellerList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
    )
)]
pub async fn list_resellers(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<ResellerList>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(ResellerList {
        resellers: offers::resellers(&rt).await?,
    }))
}

fn parse_mpn(s: &str) -> ApiResult<MpnId> {
    MpnId::parse(s).map_err(|m| bad("mpn_id", m))
}

/// A reseller partnership and its customers.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/resellers/{mpn_id}",
    tag = "resellers",
    params(("mpn_id" = MpnIdText, Path, description = "The reseller's MPN ID")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The partnership", body = ResellerView),
        (status = 400, description = "Not an MPN ID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No partnership with this reseller", body = ErrorBody),
    )
)]
pub async fn show_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(mpn): Path<String>,
) -> ApiResult<Json<ResellerView>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(offers::reseller(&rt, &parse_mpn(&mpn)?).await?))
}

/// End a reseller partnership (its customers stay).
///
/// Needs a token with role `admin`.
#[utoipa::path(
    delete,
    path = "/api/v1/resellers/{mpn_id}",
    tag = "resellers",
    params(("mpn_id" = MpnIdText, Path, description = "The reseller's MPN ID")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The partnership, ended", body = ResellerView),
        (status = 400, description = "Not an MPN ID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No partnership with this reseller", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow this now", body = ErrorBody),
    )
)]
pub async fn remove_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(mpn): Path<String>,
) -> ApiResult<Json<ResellerView>> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    Ok(Json(
        offers::remove_reseller(&rt, &parse_mpn(&mpn)?, &actor).await?,
    ))
}

/// The customer to associate: exactly one of `domain` and `acceptance_id`
/// (`NewResellerCustomer`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociateBody {
    /// A customer's domain.
    domain: Option<String>,
    /// An acceptance's instance id (instead of `domain`).
    acceptance_id: Option<String>,
    /// The reseller is the customer's support contact.
    #[serde(default)]
    support_contact: bool,
}

/// `NewResellerCustomer` in the document: exactly one of `domain` and `acceptance_id`, as
/// `oneOf` (so a body the document allows names one customer).
impl utoipa::PartialSchema for AssociateBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
        };
        let one = |key: &str, value: utoipa::openapi::RefOr<Schema>, what: &str| {
            ObjectBuilder::new()
                .property(key, value)
                .required(key)
                .property(
                    "support_contact",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::Type(Type::Boolean))
                        .description(Some("The reseller is the customer's support contact")),
                )
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(what))
        };
        Schema::OneOf(
            OneOfBuilder::new()
                .item(one(
                    "domain",
                    utoipa::openapi::Ref::from_schema_name(DomainText::name()).into(),
                    "A customer by its domain",
                ))
                .item(one(
                    "acceptance_id",
                    utoipa::openapi::Ref::from_schema_name(InstanceIdText::name()).into(),
                    "A customer by one of its acceptances (the acceptance's instance id)",
                ))
                .description(Some(
                    "The customer to associate: exactly one of `domain` and `acceptance_id`",
                ))
                .build(),
        )
        .into()
    }
}

impl ToSchema for AssociateBody {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("NewResellerCustomer")
    }
}

/// Associate the reseller with a customer (domain) or an acceptance; optionally as support
/// contact.
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/resellers/{mpn_id}/customers",
    tag = "resellers",
    params(("mpn_id" = MpnIdText, Path, description = "The reseller's MPN ID")),
    request_body = AssociateBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The partnership and its customers", body = ResellerView),
        (status = 400, description = "Malformed body, or not exactly one of domain and acceptance_id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No partnership with this reseller, or no such acceptance", body = ErrorBody),
        (status = 409, description = "The partnership is not active", body = ErrorBody),
    )
)]
pub async fn associate_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(mpn): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ResellerView>> {
    auth(&rt, &headers, Role::Admin).await?;
    let mpn = parse_mpn(&mpn)?;
    let b: AssociateBody = parse_json(&body)?;
    let target = match (b.domain.as_deref(), b.acceptance_id.as_deref()) {
        (Some(d), None) => {
            ResellerTarget::Customer(DomainName::parse(d).map_err(|m| bad("domain", m))?)
        }
        (None, Some(a)) => {
            ResellerTarget::Acceptance(InstanceId::parse(a).map_err(|m| bad("acceptance_id", m))?)
        }
        _ => return Err(bad("body", "give exactly one of domain and acceptance_id")),
    };
    Ok(Json(
        offers::associate_reseller(&rt, &mpn, target, b.support_contact).await?,
    ))
}
