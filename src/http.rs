//! The only module that knows HTTP (axum): the partner API under `/api/v1` (JSON, bearer
//! tokens with roles, OpenAPI document) and the customer's pages (`/o/…` offer and accept,
//! `/r/…` remove admin roles, `/p/…` reseller request). Every error maps to a status and a
//! stable code in one place ([`ApiError::into_response`]; pages: [`page_error`]).

mod serve;
pub use serve::serve;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::core::domain::{
    AdminRole, Country, DomainName, EmailAddress, InstanceId, Locale, MpnId, OfferId, OfferKind,
    ProductId, Role, Timestamp,
};
use crate::core::links::{Purpose, constant_time_eq};
use crate::engine::EngineError;
use crate::offers::{self, Accepted, LineRequest, NewOffer, OfferError, ResellerTarget, Resolve};
use crate::pages::{self, FormValues};
use crate::store::{OfferFilter, OfferLine, OfferView, StoreError};

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
                O::Engine(EngineError::Store(StoreError::Conflict(_))) => {
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
        let mut err = json!({ "code": code, "message": self.to_string() });
        if let Some(f) = field {
            err["field"] = json!(f);
        }
        let mut r = (status, Json(json!({ "error": err }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"partnerflow\""),
            );
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn forbidden_message(needed: Role) -> String {
    if needed == Role::Admin {
        "this needs the role `admin`".into()
    } else {
        format!("this needs the role `{needed}` (or admin)")
    }
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        field: field.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------- routes

/// One route of the partner API: the router and the OpenAPI document are both made from
/// this table's paths (a test checks every entry answers through the real router).
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    /// None: public.
    pub role: Option<Role>,
    pub summary: &'static str,
}

pub const API: &[Op] = &[
    Op {
        method: "get",
        path: "/healthz",
        role: None,
        summary: "Liveness and failed-job count",
    },
    Op {
        method: "get",
        path: "/api/v1/openapi.json",
        role: None,
        summary: "This document",
    },
    Op {
        method: "get",
        path: "/api/v1/catalog",
        role: Some(Role::Viewer),
        summary: "Catalog products, optionally only those sold in ?country=DE",
    },
    Op {
        method: "get",
        path: "/api/v1/locations",
        role: Some(Role::Viewer),
        summary: "Synced partner locations (only these can be chosen for offers)",
    },
    Op {
        method: "post",
        path: "/api/v1/locations/sync",
        role: Some(Role::Admin),
        summary: "Sync partner locations now",
    },
    Op {
        method: "post",
        path: "/api/v1/offers",
        role: Some(Role::SalesAgent),
        summary: "Create an offer (trial, purchase or delegated_admin); answers with its Offer ID and link",
    },
    Op {
        method: "get",
        path: "/api/v1/offers",
        role: Some(Role::Viewer),
        summary: "List offers; filter by state, kind, location, created_from, created_to; page with limit and before",
    },
    Op {
        method: "get",
        path: "/api/v1/offers/{offer_id}",
        role: Some(Role::Viewer),
        summary: "Track an offer: state, products, link, invitations, acceptances, relationships, sign-ups, history",
    },
    Op {
        method: "post",
        path: "/api/v1/offers/{offer_id}/withdraw",
        role: Some(Role::Admin),
        summary: "Withdraw an offer (and its open invitations)",
    },
    Op {
        method: "post",
        path: "/api/v1/offers/{offer_id}/invitations",
        role: Some(Role::SalesAgent),
        summary: "Send the offer's link to a recipient",
    },
    Op {
        method: "get",
        path: "/api/v1/customers",
        role: Some(Role::Viewer),
        summary: "Find customers, accepted or invited (`source`), by exact user name (?q=person@contoso.com) or exact domain (?q=contoso.com); no wildcards",
    },
    Op {
        method: "post",
        path: "/api/v1/resellers",
        role: Some(Role::Admin),
        summary: "Send a partnership request to a reseller",
    },
    Op {
        method: "get",
        path: "/api/v1/resellers",
        role: Some(Role::Viewer),
        summary: "List reseller partnerships",
    },
    Op {
        method: "get",
        path: "/api/v1/resellers/{mpn_id}",
        role: Some(Role::Viewer),
        summary: "A reseller partnership and its customers",
    },
    Op {
        method: "delete",
        path: "/api/v1/resellers/{mpn_id}",
        role: Some(Role::Admin),
        summary: "End a reseller partnership (its customers stay)",
    },
    Op {
        method: "post",
        path: "/api/v1/resellers/{mpn_id}/customers",
        role: Some(Role::Admin),
        summary: "Associate the reseller with a customer (domain) or an acceptance; optionally as support contact",
    },
    Op {
        method: "post",
        path: "/api/v1/signups",
        role: Some(Role::Signups),
        summary: "Webhook of the sign-up system: a completed sign-up (advisor code, customer domain, time); an advisor code that does not verify is refused (422, field advisor_code) and nothing is recorded",
    },
    Op {
        method: "post",
        path: "/api/v1/campaigns",
        role: Some(Role::SalesAgent),
        summary: "Create a campaign (draft) for an open offer: name, optional template, max_per_minute, reminder_after (e.g. \"3d\"), reminder_template",
    },
    Op {
        method: "get",
        path: "/api/v1/campaigns",
        role: Some(Role::Viewer),
        summary: "List campaigns",
    },
    Op {
        method: "get",
        path: "/api/v1/campaigns/{id}",
        role: Some(Role::Viewer),
        summary: "A campaign: state, pause reason, recipient counts (as `campaign status`: delivery — sent, reminded — and where each recipient is — pending … awaiting, accepted, expired), and waiting_for_reminders_until when only scheduled reminders are left",
    },
    Op {
        method: "post",
        path: "/api/v1/campaigns/{id}/recipients",
        role: Some(Role::SalesAgent),
        summary: "Add recipients: a CSV body (text/csv, header row, `email` required) or JSON {\"recipients\": [{\"email\", \"name\", \"company\", \"locale\", …}]}; answers with counts and each bad row (line, reason)",
    },
    Op {
        method: "post",
        path: "/api/v1/campaigns/{id}/start",
        role: Some(Role::SalesAgent),
        summary: "Start sending a draft campaign",
    },
    Op {
        method: "post",
        path: "/api/v1/campaigns/{id}/pause",
        role: Some(Role::SalesAgent),
        summary: "Pause a running campaign",
    },
    Op {
        method: "post",
        path: "/api/v1/campaigns/{id}/resume",
        role: Some(Role::SalesAgent),
        summary: "Resume a paused campaign where it stopped",
    },
    Op {
        method: "post",
        path: "/api/v1/campaigns/{id}/cancel",
        role: Some(Role::Admin),
        summary: "Cancel a campaign for good",
    },
    Op {
        method: "post",
        path: "/api/v1/bounces",
        role: Some(Role::Bounces),
        summary: "Webhook of the mail system: one bounce message (message/rfc822 body, a delivery status notification, at most 20 recipients). Only a bounce matching a message we sent (Message-ID and that message's recipient) is acted on (hard: `bounced` and suppressed; soft: counted); the others come back with `unmatched` (the reason) and change nothing",
    },
    Op {
        method: "post",
        path: "/api/v1/instances",
        role: Some(Role::Admin),
        summary: "Start a workflow instance (low level)",
    },
    Op {
        method: "get",
        path: "/api/v1/instances/{id}",
        role: Some(Role::Admin),
        summary: "A workflow instance with history, emails and timers (low level)",
    },
    Op {
        method: "post",
        path: "/api/v1/instances/{id}/events",
        role: Some(Role::Admin),
        summary: "Send an event to a workflow instance (low level)",
    },
];

pub fn router(rt: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/catalog", get(catalog))
        .route("/api/v1/locations", get(locations))
        .route("/api/v1/locations/sync", post(locations_sync))
        .route("/api/v1/offers", post(create_offer).get(list_offers))
        .route("/api/v1/offers/{offer_id}", get(show_offer))
        .route("/api/v1/offers/{offer_id}/withdraw", post(withdraw_offer))
        .route("/api/v1/offers/{offer_id}/invitations", post(invite))
        .route("/api/v1/customers", get(customers))
        .route(
            "/api/v1/resellers",
            post(create_reseller).get(list_resellers),
        )
        .route(
            "/api/v1/resellers/{mpn_id}",
            get(show_reseller).delete(remove_reseller),
        )
        .route(
            "/api/v1/resellers/{mpn_id}/customers",
            post(associate_reseller),
        )
        .route("/api/v1/signups", post(signup_webhook))
        .route(
            "/api/v1/campaigns",
            post(create_campaign).get(list_campaigns),
        )
        .route("/api/v1/campaigns/{id}", get(show_campaign))
        .route("/api/v1/campaigns/{id}/recipients", post(add_recipients))
        .route("/api/v1/campaigns/{id}/start", post(campaign_start))
        .route("/api/v1/campaigns/{id}/pause", post(campaign_pause))
        .route("/api/v1/campaigns/{id}/resume", post(campaign_resume))
        .route("/api/v1/campaigns/{id}/cancel", post(campaign_cancel))
        .route("/api/v1/bounces", post(bounce_webhook))
        .route("/api/v1/instances", post(start_instance))
        .route("/api/v1/instances/{id}", get(show_instance))
        .route("/api/v1/instances/{id}/events", post(send_event))
        .merge(public_pages(rt.clone()))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(rt.clone(), guard))
        .with_state(rt)
}

/// The customer's pages: open to the internet, so every request first passes
/// [`public_guard`] (the per-client rate limit, kept in the database).
fn public_pages(rt: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/o/{code}", get(offer_page).post(accept_offer))
        .route("/c/{token}", get(confirm_page).post(confirm_post))
        .route("/r/{token}", get(remove_roles_page).post(remove_roles))
        .route("/p/{token}", get(reseller_page).post(reseller_accept))
        .layer(axum::middleware::from_fn_with_state(rt, public_guard))
        // One-click unsubscribes (RFC 8058) are posted by mail providers' servers, many
        // recipients from one address: a per-client limit would refuse them and lose the
        // unsubscribe. Each signed link suppresses only its own address, so it is not limited.
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe_post))
}

/// The address a public request came from: the TCP peer, or behind a trusted reverse proxy
/// the last entry of its header (`http.trusted_proxy_header`).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

fn client_addr(rt: &AppState, h: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    let name = rt.settings.http.trusted_proxy_header.trim();
    if !name.is_empty() {
        let last = h
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty());
        if let Some(a) = last.and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            return a.to_string();
        }
    }
    peer.map(|p| p.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Every request to a customer page counts against the per-client limit; over it, a 429
/// page and the handler is not run.
async fn public_guard(
    State(rt): State<Arc<AppState>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let client = client_addr(&rt, req.headers(), peer);
    let l = locale_of(&rt, req.headers());
    if let Some(refused) = spend(
        &rt,
        l,
        &format!("client:{client}"),
        60,
        rt.settings.public.requests_per_client_per_minute,
    )
    .await
    {
        tracing::warn!(
            client,
            path = req.uri().path(),
            "public pages: client over the request limit"
        );
        return refused;
    }
    req.extensions_mut().insert(ClientAddr(client));
    next.run(req).await
}

/// Spends one hit of a public limit (`limit` per `window_s` seconds; 0: no limit). Over it:
/// the 429 page; the store unavailable: the 503 page (refused rather than unlimited).
async fn spend(rt: &AppState, l: Locale, key: &str, window_s: u64, limit: u32) -> Option<Response> {
    if limit == 0 {
        return None;
    }
    let window = crate::core::domain::Span(window_s as i64 * 1000);
    match rt.store.rate_hit(key, window, limit, rt.clock.now()).await {
        Ok(true) => None,
        Ok(false) => Some(limited(rt, l, window_s)),
        Err(e) => {
            tracing::error!(error = %e, "public pages: rate limit store unavailable");
            Some(page(
                rt,
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error_page(l),
                None,
            ))
        }
    }
}

/// The 429 page: over a limit, nothing recorded or sent.
fn limited(rt: &AppState, l: Locale, retry_after_s: u64) -> Response {
    let mut r = page(
        rt,
        StatusCode::TOO_MANY_REQUESTS,
        pages::rate_limited_page(l),
        None,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

async fn fallback(
    State(rt): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    not_found(&rt, &uri, &headers)
}

/// The one answer to a path that leads nowhere: the API's `route_not_found`, else the page a
/// bad offer code gets (same headers, language from Accept-Language).
fn not_found(rt: &AppState, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::RouteNotFound(uri.path().to_string()).into_response();
    }
    let l = locale_of(rt, headers);
    page(rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None)
}

/// Around every request: a path that is not UTF-8 once percent-decoded (`/o/%FF`) gets the
/// 404 answer before routing; every response gets `nosniff`, API responses `no-store`, and all
/// of them `Strict-Transport-Security` when the public base URL is https.
async fn guard(
    State(rt): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut r = if decodes_to_utf8(req.uri().path()) {
        next.run(req).await
    } else {
        not_found(&rt, req.uri(), req.headers())
    };
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if rt.settings.app.public_base_url.scheme() == "https" {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

/// Whether a path, percent-decoded, is UTF-8 (what the `Path` extractor needs).
fn decodes_to_utf8(path: &str) -> bool {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// Checks the bearer token: the operator's `http.admin_token` (role admin) or an API token.
/// Returns the actor name for history rows.
async fn auth(rt: &AppState, headers: &HeaderMap, needed: Role) -> ApiResult<String> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    let admin = rt.settings.http.admin_token.expose();
    let (actor, role) = if !admin.is_empty() && constant_time_eq(given, admin) {
        ("admin-token".to_string(), Role::Admin)
    } else {
        offers::authenticate(rt, given)
            .await?
            .ok_or(ApiError::Unauthorized)?
    };
    if role.allows(needed) {
        Ok(actor)
    } else {
        Err(ApiError::Forbidden(needed))
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            "body"
        } else {
            &path
        };
        bad(field, e.into_inner().to_string())
    })
}

fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn query_map(q: &Option<String>, allowed: &[&str]) -> ApiResult<Map<String, Value>> {
    let mut m = Map::new();
    for (k, v) in query_pairs(q) {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(
                &k,
                format!("unknown query parameter (allowed: {})", allowed.join(", ")),
            ));
        }
        m.insert(k, Value::String(v));
    }
    Ok(m)
}

fn parse_offer_id(s: &str) -> ApiResult<OfferId> {
    OfferId::parse(s).map_err(|m| bad("offer_id", m))
}

// ---------------------------------------------------------------- handlers: misc

async fn healthz(State(rt): State<Arc<AppState>>) -> Response {
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

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

async fn catalog(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let m = query_map(&q, &["country"])?;
    let products: Vec<_> = match m.get("country").and_then(Value::as_str) {
        Some(c) => {
            let c = parse_country("country", c)?;
            rt.catalog.in_country(c)
        }
        None => rt.catalog.all().collect(),
    };
    Ok(Json(json!({ "products": products })))
}

async fn locations(State(rt): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let locs = rt.store.locations().await?;
    Ok(Json(
        json!({ "locations": locs.iter().map(|(l, first)| json!({
        "id": l.id, "name": l.name, "country": l.country, "partner_id": l.partner_id, "first_seen_at": first,
    })).collect::<Vec<_>>() }),
    ))
}

async fn locations_sync(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Admin).await?;
    let summary = crate::offers::tasks::location_sync(&rt)
        .await
        .map_err(|m| ApiError::Offer(OfferError::Conflict(format!("location sync failed: {m}"))))?;
    Ok(Json(json!({ "summary": summary })))
}

// ---------------------------------------------------------------- handlers: offers

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferBody {
    kind: String,
    location_id: String,
    country: String,
    #[serde(default)]
    products: Vec<LineBody>,
    delegated_admin: Option<String>,
    #[serde(default)]
    auto_extend: bool,
    expires_at: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    id: String,
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

/// Parses an offer request at the edge (shared with the CLI).
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
    let location_id = b.location_id.trim().to_string();
    if location_id.is_empty() || location_id.len() > 100 {
        return Err(bad("location_id", "is empty or longer than 100 characters"));
    }
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

async fn create_offer(
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

/// Parses list filters (shared with the CLI).
pub fn parse_filter(m: &Map<String, Value>) -> ApiResult<OfferFilter> {
    let get = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let time = |k: &str| -> ApiResult<Option<Timestamp>> {
        get(k)
            .map(|s| parse_time_or_date(s).map_err(|e| bad(k, e)))
            .transpose()
    };
    let limit = match get("limit") {
        None => 100,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| bad("limit", "a number from 1 to 1000"))?,
    };
    let before = match get("before") {
        None => None,
        Some(c) => {
            let (t, id) = c
                .split_once('~')
                .ok_or_else(|| bad("before", "use the `next` value of the previous page"))?;
            let t = t
                .parse::<i64>()
                .map_err(|_| bad("before", "use the `next` value of the previous page"))?;
            Some((Timestamp(t), parse_offer_id(id)?))
        }
    };
    let state = get("state").map(str::to_string);
    if let Some(s) = &state
        && !["created", "open", "expired", "withdrawn"].contains(&s.as_str())
    {
        return Err(bad("state", "one of open, expired, withdrawn, created"));
    }
    Ok(OfferFilter {
        state,
        kind: get("kind")
            .map(OfferKind::parse)
            .transpose()
            .map_err(|m| bad("kind", m))?,
        location_id: get("location").map(str::to_string),
        created_from: time("created_from")?,
        created_to: time("created_to")?,
        before,
        limit,
    })
}

/// `2026-11-22` (midnight UTC) or an RFC 3339 date-time.
pub fn parse_time_or_date(s: &str) -> Result<Timestamp, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let dt = d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
        return dt
            .map(Timestamp::from_datetime)
            .ok_or_else(|| format!("`{s}` is not a date"));
    }
    Timestamp::parse_rfc3339(s)
        .map_err(|_| format!("`{s}` is neither a date (2026-11-22) nor an RFC 3339 date-time"))
}

pub fn offers_page_json(list: &[OfferView], limit: i64) -> Value {
    let next = (list.len() as i64 == limit)
        .then(|| {
            list.last()
                .map(|o| format!("{}~{}", o.offer.created_at.0, o.offer.offer_id))
        })
        .flatten();
    json!({ "offers": list, "next": next })
}

async fn list_offers(
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
    Ok(Json(offers_page_json(&list, f.limit)))
}

async fn show_offer(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(offers::tracking(&rt, &parse_offer_id(&id)?).await?))
}

async fn withdraw_offer(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    let id = parse_offer_id(&id)?;
    offers::withdraw(&rt, &id, &actor).await?;
    Ok(Json(offers::tracking(&rt, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    recipient: String,
    locale: Option<String>,
    name: Option<String>,
}

async fn invite(
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
    Ok((StatusCode::CREATED, Json(json!(sent))).into_response())
}

async fn customers(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let m = query_map(&q, &["q"])?;
    let q = m.get("q").and_then(Value::as_str).unwrap_or("");
    Ok(Json(
        json!({ "customers": offers::search_customers(&rt, q).await? }),
    ))
}

// ---------------------------------------------------------------- handlers: resellers

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResellerBody {
    mpn_id: String,
    name: String,
    email: String,
}

async fn create_reseller(
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
    Ok((StatusCode::CREATED, Json(json!(r))).into_response())
}

async fn list_resellers(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(json!({ "resellers": rt.store.resellers().await? })))
}

fn parse_mpn(s: &str) -> ApiResult<MpnId> {
    MpnId::parse(s).map_err(|m| bad("mpn_id", m))
}

async fn show_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(mpn): Path<String>,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(json!(offers::reseller(&rt, &parse_mpn(&mpn)?).await?)))
}

async fn remove_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(mpn): Path<String>,
) -> ApiResult<Json<Value>> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    Ok(Json(json!(
        offers::remove_reseller(&rt, &parse_mpn(&mpn)?, &actor).await?
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssociateBody {
    domain: Option<String>,
    acceptance_id: Option<String>,
    #[serde(default)]
    support_contact: bool,
}

async fn associate_reseller(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(mpn): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!(
        offers::associate_reseller(&rt, &mpn, target, b.support_contact).await?
    )))
}

// ---------------------------------------------------------------- handlers: sign-ups

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    advisor_code: String,
    customer_domain: String,
    completed_at: String,
}

async fn signup_webhook(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    auth(&rt, &headers, Role::Signups).await?;
    let b: SignupBody = parse_json(&body)?;
    let domain = DomainName::parse(&b.customer_domain).map_err(|m| bad("customer_domain", m))?;
    let at = Timestamp::parse_rfc3339(&b.completed_at).map_err(|m| bad("completed_at", m))?;
    let r = offers::record_signup(&rt, &b.advisor_code, domain, at, "webhook").await?;
    let status = if r.recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(r))).into_response())
}

// ---------------------------------------------------------------- handlers: campaigns

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignBody {
    offer_id: String,
    name: String,
    template: Option<String>,
    max_per_minute: Option<u32>,
    reminder_after: Option<String>,
    reminder_template: Option<String>,
}

async fn create_campaign(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let actor = auth(&rt, &headers, Role::SalesAgent).await?;
    let b: CampaignBody = parse_json(&body)?;
    let offer = parse_offer_id(&b.offer_id)?;
    let reminder_after = b
        .reminder_after
        .as_deref()
        .map(|r| {
            r.parse::<crate::core::domain::Span>()
                .map_err(|m| bad("reminder_after", m))
        })
        .transpose()?;
    let c = crate::campaigns::create(
        &rt,
        &offer,
        crate::campaigns::NewCampaign {
            name: b.name,
            template: b.template,
            max_per_minute: b.max_per_minute,
            reminder_after,
            reminder_template: b.reminder_template,
        },
        &actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(c))).into_response())
}

async fn list_campaigns(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(json!({ "campaigns": rt.store.campaigns().await? })))
}

fn campaign_json(c: &crate::store::CampaignRow, n: &crate::store::RecipientCounts) -> Value {
    let mut v = json!(c);
    v["counts"] = json!(n);
    // Running with nothing to send now: when the last scheduled reminder is due.
    v["waiting_for_reminders_until"] = json!(crate::campaigns::waiting_for_reminders(c, n));
    v
}

async fn show_campaign(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let (c, n) = crate::campaigns::status(&rt, &id).await?;
    Ok(Json(campaign_json(&c, &n)))
}

async fn add_recipients(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    auth(&rt, &headers, Role::SalesAgent).await?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut bad_rows = Vec::new();
    let keep = |b: crate::campaigns::BadRow| {
        if bad_rows.len() < 1000 {
            bad_rows.push(b);
        }
    };
    let report = if is_json {
        // JSON rows take the CSV rows' checks; recipients[0] is line 2.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            recipients: Vec<Map<String, Value>>,
        }
        let b: Body = parse_json(&body)?;
        let rows = crate::campaigns::JsonRecipients::new(b.recipients)?;
        crate::campaigns::import(&rt, &id, rows, keep).await?
    } else {
        crate::campaigns::import_csv(&rt, &id, body.as_ref(), keep).await?
    };
    Ok((
        StatusCode::OK,
        Json(json!({ "report": report, "bad_rows": bad_rows })),
    )
        .into_response())
}

async fn campaign_action(
    rt: Arc<AppState>,
    headers: HeaderMap,
    id: String,
    needed: Role,
    what: &str,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, needed).await?;
    let c = match what {
        "start" => crate::campaigns::start(&rt, &id).await?,
        "pause" => crate::campaigns::pause(&rt, &id).await?,
        "resume" => crate::campaigns::resume(&rt, &id).await?,
        _ => crate::campaigns::cancel(&rt, &id).await?,
    };
    let n = rt.store.recipient_counts(&c.id).await?;
    Ok(Json(campaign_json(&c, &n)))
}

async fn campaign_start(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    campaign_action(rt, headers, id, Role::SalesAgent, "start").await
}
async fn campaign_pause(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    campaign_action(rt, headers, id, Role::SalesAgent, "pause").await
}
async fn campaign_resume(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    campaign_action(rt, headers, id, Role::SalesAgent, "resume").await
}
async fn campaign_cancel(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    campaign_action(rt, headers, id, Role::Admin, "cancel").await
}

async fn bounce_webhook(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Bounces).await?;
    let results = crate::campaigns::ingest_bounce(&rt, &body, "bounce-webhook")
        .await
        .map_err(|e| match e {
            crate::campaigns::CampaignError::Invalid(m) => bad("body", m),
            e => e.into(),
        })?;
    // Bounces that match no message we sent changed nothing; say how many.
    let unmatched = results.iter().filter(|r| r.unmatched.is_some()).count();
    Ok(Json(json!({ "bounces": results, "unmatched": unmatched })))
}

/// `/u/{token}`: the unsubscribe page (GET, a confirm button) and the one-click POST
/// (RFC 8058: mail clients POST `List-Unsubscribe=One-Click` without cookies, so no CSRF
/// token is asked for: the signed token is the authority, and unsubscribing is harmless).
async fn unsubscribe_page(
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
            pages::not_found_page(lang),
            None,
        ),
        Some((_, _, email)) => page(
            &rt,
            StatusCode::OK,
            pages::unsubscribe_confirm(lang, &email, &format!("/u/{token}")),
            None,
        ),
    })
}

async fn unsubscribe_post(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let lang = locale_of(&rt, &headers);
    Ok(match crate::campaigns::unsubscribe(&rt, &token).await? {
        None => page(
            &rt,
            StatusCode::NOT_FOUND,
            pages::not_found_page(lang),
            None,
        ),
        Some(email) => page(
            &rt,
            StatusCode::OK,
            pages::unsubscribe_done(lang, &email),
            None,
        ),
    })
}

// ---------------------------------------------------------------- handlers: instances

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

async fn start_instance(
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
    let body = instance_json(&rt, &id).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn instance_json(rt: &AppState, id: &InstanceId) -> Result<Value, StoreError> {
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
            "name": t.payload.timer().map(|x| &x.timer), "event": t.payload.timer().map(|x| &x.event), "state": t.state, "run_at": t.run_at,
        })).collect::<Vec<_>>(),
    }))
}

fn parse_id(id: &str) -> ApiResult<InstanceId> {
    InstanceId::parse(id).map_err(|m| bad("id", m))
}

async fn show_instance(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth(&rt, &headers, Role::Admin).await?;
    let id = parse_id(&id)?;
    Ok(Json(instance_json(&rt, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    event: String,
}

async fn send_event(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let actor = auth(&rt, &headers, Role::Admin).await?;
    let id = parse_id(&id)?;
    let b: EventBody = parse_json(&body)?;
    let t = rt.engine.fire(&id, &b.event, &actor).await?;
    Ok(Json(json!(t)))
}

// ---------------------------------------------------------------- the customer's pages

const CSRF_COOKIE: &str = "pf_csrf";

fn accept_language(h: &HeaderMap) -> Option<&str> {
    h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

fn locale_of(rt: &AppState, h: &HeaderMap) -> Locale {
    pages::negotiate(accept_language(h), rt.settings.app.default_locale)
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// A page with the content security policy: no scripts at all, forms only to us (and the
/// sign-up page the accept form redirects to).
fn page(rt: &AppState, status: StatusCode, body: String, set_cookie: Option<String>) -> Response {
    let mut r = html(status, body);
    let signup = rt.settings.offers.signup_url.origin().ascii_serialization();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self' {signup}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

fn cookie_nonce(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 26 && v.bytes().all(|c| c.is_ascii_alphanumeric()))
}

/// The browser's CSRF nonce (a new one, with its Set-Cookie, if it has none) and the form
/// token for `path`, issued now (it expires after `public.form_max_age`).
fn csrf_for(rt: &AppState, h: &HeaderMap, path: &str) -> (String, Option<String>) {
    let (nonce, set) = match cookie_nonce(h) {
        Some(n) => (n, None),
        None => {
            let n = crate::core::domain::random_base32(26);
            let secure = if rt.settings.app.public_base_url.scheme() == "https" {
                "; Secure"
            } else {
                ""
            };
            let c = format!("{CSRF_COOKIE}={n}; Path=/; HttpOnly; SameSite=Strict{secure}");
            (n, Some(c))
        }
    };
    (rt.keys.csrf_token(&nonce, path, rt.clock.now()), set)
}

/// A form post is ours: an Origin header, when sent, is our own; the cookie nonce and the
/// form's token match for this path, and the token is not older than `public.form_max_age`.
fn csrf_ok(
    rt: &AppState,
    h: &HeaderMap,
    form: &[(String, String)],
    path: &str,
) -> Result<(), pages::FormRefusal> {
    if let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let ours = rt
            .settings
            .app
            .public_base_url
            .origin()
            .ascii_serialization();
        if origin != ours {
            tracing::warn!(
                origin,
                expected = %ours,
                path,
                "form refused: the browser's Origin is not app.public_base_url (set app.public_base_url to the address customers use)"
            );
            return Err(pages::FormRefusal::Origin);
        }
    }
    let Some(nonce) = cookie_nonce(h) else {
        return Err(pages::FormRefusal::Invalid);
    };
    let token = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    rt.keys
        .check_csrf(
            token,
            &nonce,
            path,
            rt.clock.now(),
            rt.settings.public.form_max_age,
        )
        .map_err(|e| match e {
            crate::core::links::CsrfError::Expired => pages::FormRefusal::Expired,
            crate::core::links::CsrfError::Invalid => pages::FormRefusal::Invalid,
        })
}

/// The 403 page of a refused form.
fn refused(rt: &AppState, l: Locale, why: pages::FormRefusal) -> Response {
    page(
        rt,
        StatusCode::FORBIDDEN,
        pages::forbidden_page(l, why),
        None,
    )
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .into_owned()
        .take(200)
        .collect()
}

fn limits_of(rt: &AppState) -> impl Fn(&OfferLine) -> (u32, u32) + '_ {
    move |l: &OfferLine| {
        rt.catalog
            .get(&l.id)
            .map(|p| (p.min_licences, p.max_licences))
            .unwrap_or((1, 1))
    }
}

/// What a customer page shows when the link or the store fails.
fn page_error(rt: &AppState, l: Locale, e: Resolve) -> Response {
    match e {
        Resolve::NotFound(why) => {
            tracing::info!(why, "customer link refused");
            page(rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None)
        }
        Resolve::Unavailable(e) => {
            tracing::error!(error = %e, "customer page: store unavailable");
            page(
                rt,
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error_page(l),
                None,
            )
        }
        Resolve::Closed(o) => {
            let state = if o.state == "open" {
                "expired".to_string()
            } else {
                o.state.clone()
            };
            page(
                rt,
                StatusCode::GONE,
                pages::closed_page(l, &rt.settings.partner, &o, &state),
                None,
            )
        }
        Resolve::LocationGone(o, _) => page(
            rt,
            StatusCode::GONE,
            pages::location_gone_page(l, &rt.settings.partner, &o),
            None,
        ),
    }
}

async fn offer_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let o = match offers::resolve_code(&rt, &code).await {
        Ok(o) => o,
        Err(e) => return page_error(&rt, l, e),
    };
    let path = format!("/o/{code}");
    let (token, set) = csrf_for(&rt, &headers, &path);
    let limits = limits_of(&rt);
    let body = pages::offer_page(
        l,
        &rt.settings.partner,
        &o,
        &limits,
        &path,
        &token,
        &FormValues::default(),
        &[],
    );
    page(&rt, StatusCode::OK, body, set)
}

async fn accept_offer(
    State(rt): State<Arc<AppState>>,
    axum::Extension(client): axum::Extension<ClientAddr>,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("/o/{code}");
    let form = form_pairs(&body);
    if let Err(why) = csrf_ok(&rt, &headers, &form, &path) {
        return refused(&rt, l, why);
    }
    let o = match offers::resolve_code(&rt, &code).await {
        Ok(o) => o,
        Err(e) => return page_error(&rt, l, e),
    };
    let field = |k: &str| {
        form.iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let values = FormValues {
        organisation: field("organisation"),
        domain: field("domain"),
        admin_email: field("admin_email"),
        licences: form
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("licences.")
                    .map(|p| (p.to_string(), v.clone()))
            })
            .collect(),
        delegated_admin: field("delegated_admin") == "yes",
    };
    let limits = limits_of(&rt);
    let mut errors: Vec<(String, String)> = Vec::new();
    let organisation = crate::core::domain::parse_name(&values.organisation, 200)
        .map_err(|_| {
            errors.push((
                "organisation".into(),
                pages::field_message(l, "organisation", None),
            ))
        })
        .ok();
    let domain = DomainName::parse(&values.domain)
        .map_err(|_| errors.push(("domain".into(), pages::field_message(l, "domain", None))))
        .ok();
    let admin_email = EmailAddress::parse(&values.admin_email)
        .map_err(|_| {
            errors.push((
                "admin_email".into(),
                pages::field_message(l, "admin_email", None),
            ))
        })
        .ok();
    let mut licences = Vec::new();
    for (p, v) in &values.licences {
        let line = o.offer.products.iter().find(|x| x.id.as_str() == p);
        match (line, v.trim().parse::<i64>()) {
            (Some(line), Ok(n)) => licences.push((line.id.clone(), n)),
            (Some(line), Err(_)) => errors.push((
                format!("licences.{p}"),
                pages::field_message(l, "licences", Some(limits(line))),
            )),
            // A product that is not on the offer: refused, nothing recorded.
            (None, _) => errors.push((
                format!("licences.{p}"),
                pages::field_message(l, "unknown", None),
            )),
        }
    }
    let (token, set) = csrf_for(&rt, &headers, &path);
    let again = |errors: &[(String, String)]| {
        let body = pages::offer_page(
            l,
            &rt.settings.partner,
            &o,
            &limits,
            &path,
            &token,
            &values,
            errors,
        );
        page(&rt, StatusCode::UNPROCESSABLE_ENTITY, body, set.clone())
    };
    let (Some(organisation), Some(domain), Some(admin_email), true) =
        (organisation, domain, admin_email, errors.is_empty())
    else {
        return again(&errors);
    };
    // Accept forms per client address: counted only for a well-formed form.
    if let Some(refused) = spend(
        &rt,
        l,
        &format!("accept-from:{}", client.0),
        3600,
        rt.settings.public.accepts_per_client_per_hour,
    )
    .await
    {
        tracing::warn!(client = client.0, offer_id = %o.offer.offer_id, "accept form: client over the hourly limit");
        return refused;
    }
    let a = offers::Acceptance {
        organisation,
        domain,
        admin_email,
        licences,
        delegated_admin: o.offer.kind == OfferKind::DelegatedAdmin || values.delegated_admin,
        locale: l,
    };
    let email = a.admin_email.clone();
    let domain = a.domain.clone();
    match offers::accept(&rt, &o, a).await {
        Ok(Accepted::Unconfirmed(_)) => page(
            &rt,
            StatusCode::OK,
            pages::check_mail_page(l, &rt.settings.partner, &o, email.as_str()),
            None,
        ),
        Ok(Accepted::AlreadyAccepted) => page(
            &rt,
            StatusCode::CONFLICT,
            pages::already_accepted_page(l, &rt.settings.partner, &o, domain.as_str()),
            None,
        ),
        Err(offers::AcceptError::Limited(which)) => {
            tracing::warn!(offer_id = %o.offer.offer_id, limit = ?which, "accept form: over the confirmation-email limit");
            limited(&rt, l, 86_400)
        }
        Err(offers::AcceptError::Offer(e)) => match e {
            OfferError::LicenceCount { field, product, .. } => {
                let line = o.offer.products.iter().find(|x| x.id.as_str() == product);
                let msg = pages::field_message(l, "licences", line.map(&limits));
                again(&[(field, msg)])
            }
            OfferError::OfferClosed { .. } => page_error(&rt, l, Resolve::Closed(Box::new(o))),
            OfferError::Invalid { field, .. } if field == "admin_email" => {
                again(&[(field, pages::field_message(l, "admin_email_domain", None))])
            }
            OfferError::Invalid { field, .. } if field.starts_with("licences") => {
                again(&[(field, pages::field_message(l, "unknown", None))])
            }
            OfferError::LocationRemoved { since, .. } => {
                page_error(&rt, l, Resolve::LocationGone(Box::new(o), since))
            }
            e @ (OfferError::LocationNotSynced { .. }
            | OfferError::NotAvailable { .. }
            | OfferError::UnknownProduct { .. }) => {
                // The partner's data changed since the offer was made: the offer cannot be taken.
                tracing::warn!(offer_id = %o.offer.offer_id, error = %e, "acceptance refused: offer no longer valid");
                page_error(
                    &rt,
                    l,
                    Resolve::Closed(Box::new(OfferView {
                        state: "withdrawn".into(),
                        ..o
                    })),
                )
            }
            e => {
                tracing::error!(offer_id = %o.offer.offer_id, error = %e, "acceptance failed");
                page(
                    &rt,
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::error_page(l),
                    None,
                )
            }
        },
    }
}

/// A 303 to the provider's sign-up page for this offer.
fn to_signup(rt: &AppState, o: &OfferView) -> Response {
    let to = offers::signup_redirect(rt, o);
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What a confirmation link leads to, as a page (or the 303 to the sign-up page).
fn confirmation_response(
    rt: &AppState,
    l: Locale,
    c: offers::Confirmation,
    path: &str,
    csrf: Option<(String, Option<String>)>,
) -> Response {
    let p = &rt.settings.partner;
    match c {
        offers::Confirmation::Pending(pending) => {
            let (token, set) = csrf.unwrap_or_default();
            let limits = limits_of(rt);
            let body = pages::confirm_page(l, p, &pending, &limits, path, &token);
            page(rt, StatusCode::OK, body, set)
        }
        // A standalone delegated-admin offer is for an existing customer: no sign-up.
        offers::Confirmation::Done(o) if o.offer.kind == OfferKind::DelegatedAdmin => page(
            rt,
            StatusCode::OK,
            pages::admin_granted_page(l, p, o.offer.delegated_admin),
            None,
        ),
        offers::Confirmation::Done(o) => to_signup(rt, &o),
        offers::Confirmation::NotFound => {
            page(rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None)
        }
        offers::Confirmation::Expired(o) => page(
            rt,
            StatusCode::GONE,
            pages::confirm_expired_page(l, p, &o),
            None,
        ),
        offers::Confirmation::AlreadyAccepted(o) => page(
            rt,
            StatusCode::CONFLICT,
            pages::already_accepted_page(l, p, &o, ""),
            None,
        ),
        offers::Confirmation::OfferClosed(o) => page_error(rt, l, Resolve::Closed(o)),
        offers::Confirmation::LocationGone(o, since) => {
            page_error(rt, l, Resolve::LocationGone(o, since))
        }
    }
}

/// The confirmation link from the email: shows what was requested and one button. A GET
/// changes nothing (mail scanners open links).
async fn confirm_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("/c/{token}");
    match offers::confirmation(&rt, &token).await {
        Ok(c) => {
            let csrf = csrf_for(&rt, &headers, &path);
            confirmation_response(&rt, l, c, &path, Some(csrf))
        }
        Err(e) => {
            tracing::error!(error = %e, "confirmation page failed");
            page(
                &rt,
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error_page(l),
                None,
            )
        }
    }
}

/// The customer confirms: the acceptance counts from now on; on to the sign-up page.
async fn confirm_post(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("/c/{token}");
    if let Err(why) = csrf_ok(&rt, &headers, &form_pairs(&body), &path) {
        return refused(&rt, l, why);
    }
    match offers::confirm(&rt, &token).await {
        Ok(c) => confirmation_response(&rt, l, c, &path, None),
        Err(e) => {
            tracing::error!(error = %e, "confirming an acceptance failed");
            page(
                &rt,
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error_page(l),
                None,
            )
        }
    }
}

async fn relationship_of(rt: &AppState, token: &str) -> Option<crate::store::InstanceRow> {
    let id = offers::resolve_page_token(rt, Purpose::RemoveRoles, token)?;
    rt.store
        .instance(&id)
        .await
        .ok()
        .filter(|i| i.workflow == "delegated_admin")
}

fn rel_active(state: &str) -> bool {
    matches!(
        state,
        "approval_pending" | "active" | "expiring" | "termination_requested"
    )
}

async fn remove_roles_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let Some(rel) = relationship_of(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None);
    };
    let path = format!("/r/{token}");
    let (csrf, set) = csrf_for(&rt, &headers, &path);
    let who = format!(
        "{} ({})",
        rel.data
            .get("customer_name")
            .and_then(Value::as_str)
            .unwrap_or(""),
        rel.data.get("domain").and_then(Value::as_str).unwrap_or("")
    );
    let role = rel
        .data
        .get("role")
        .and_then(Value::as_str)
        .and_then(|r| AdminRole::parse(r).ok());
    let body = pages::remove_roles_page(
        l,
        &rt.settings.partner,
        &who,
        role,
        &path,
        &csrf,
        rel_active(&rel.state),
    );
    page(&rt, StatusCode::OK, body, set)
}

async fn remove_roles(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (l, _, ok) = personal_post(&rt, &headers, "r", &token, &body);
    if let Err(why) = ok {
        return refused(&rt, l, why);
    }
    let Some(rel) = relationship_of(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None);
    };
    if rel_active(&rel.state) {
        match offers::remove_roles(&rt, &rel.id).await {
            Ok(()) | Err(OfferError::Engine(EngineError::Rejected(_))) => {}
            Err(e) => {
                tracing::error!(relationship = %rel.id, error = %e, "removing roles failed");
                return page(
                    &rt,
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::error_page(l),
                    None,
                );
            }
        }
    }
    page(
        &rt,
        StatusCode::OK,
        pages::roles_removed_page(l, &rt.settings.partner),
        None,
    )
}

async fn reseller_of(rt: &AppState, token: &str) -> Option<crate::store::ResellerView> {
    let id = offers::resolve_page_token(rt, Purpose::Reseller, token)?;
    let r = rt.store.reseller_by_instance(&id).await.ok()??;
    // A later request for the same reseller replaces the row: an old link leads nowhere.
    (r.reseller.instance_id == id).then_some(r)
}

async fn reseller_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let Some(r) = reseller_of(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None);
    };
    let path = format!("/p/{token}");
    let (csrf, set) = csrf_for(&rt, &headers, &path);
    let open = r.state == "request_sent";
    let status = if open || r.state == "active" {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let body = pages::reseller_page(
        l,
        &rt.settings.partner,
        &r.reseller.name,
        r.reseller.mpn_id.as_str(),
        &path,
        &csrf,
        open,
    );
    page(&rt, status, body, set)
}

async fn reseller_accept(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (l, path, ok) = personal_post(&rt, &headers, "p", &token, &body);
    if let Err(why) = ok {
        return refused(&rt, l, why);
    }
    let Some(r) = reseller_of(&rt, &token).await else {
        return page(&rt, StatusCode::NOT_FOUND, pages::not_found_page(l), None);
    };
    let accepted = match r.state.as_str() {
        "active" => true,
        "request_sent" => match rt
            .engine
            .fire(&r.reseller.instance_id, "accept", "reseller")
            .await
        {
            Ok(_) => true,
            Err(EngineError::Rejected(_)) => false,
            Err(e) => {
                tracing::error!(error = %e, "reseller accept failed");
                let body = pages::error_page(l);
                return page(&rt, StatusCode::SERVICE_UNAVAILABLE, body, None);
            }
        },
        _ => false,
    };
    if accepted {
        let body = pages::reseller_done_page(l, &rt.settings.partner);
        return page(&rt, StatusCode::OK, body, None);
    }
    let p = &rt.settings.partner;
    let body = pages::reseller_page(
        l,
        p,
        &r.reseller.name,
        r.reseller.mpn_id.as_str(),
        &path,
        "",
        false,
    );
    page(&rt, StatusCode::GONE, body, None)
}

/// The start of every POST to a personal page (`/r/…`, `/p/…`): its locale, its path, and
/// whether the CSRF check passed.
fn personal_post(
    rt: &AppState,
    headers: &HeaderMap,
    prefix: &str,
    token: &str,
    body: &[u8],
) -> (Locale, String, Result<(), pages::FormRefusal>) {
    let path = format!("/{prefix}/{token}");
    let ok = csrf_ok(rt, headers, &form_pairs(body), &path);
    (locale_of(rt, headers), path, ok)
}

// ---------------------------------------------------------------- OpenAPI

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The OpenAPI 3.0 document of [`API`].
pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for op in API {
        let mut o = json!({
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "responses": {
                "default": { "description": "An error", "content": { "application/json": { "schema": schema_ref("Error") } } }
            }
        });
        let ok = if op.method == "post"
            && !op.path.ends_with("/withdraw")
            && !op.path.ends_with("/sync")
            && !op.path.ends_with("/events")
            && !op.path.ends_with("/customers")
        {
            "201"
        } else {
            "200"
        };
        o["responses"][ok] = json!({ "description": "Success", "content": { "application/json": { "schema": { "type": "object" } } } });
        if let Some(role) = op.role {
            o["security"] = json!([{ "bearer": [] }]);
            o["description"] = json!(if role == Role::Admin {
                "Needs a token with role `admin`.".to_string()
            } else {
                format!("Needs a token with role `{role}` (or `admin`).")
            });
        }
        let mut params: Vec<Value> = Vec::new();
        for seg in op.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
            }
        }
        let queries: &[&str] = match (op.method, op.path) {
            ("get", "/api/v1/offers") => &[
                "state",
                "kind",
                "location",
                "created_from",
                "created_to",
                "limit",
                "before",
            ],
            ("get", "/api/v1/catalog") => &["country"],
            ("get", "/api/v1/customers") => &["q"],
            _ => &[],
        };
        for q in queries {
            params.push(json!({ "name": q, "in": "query", "required": *q == "q", "schema": { "type": "string" } }));
        }
        if !params.is_empty() {
            o["parameters"] = json!(params);
        }
        let body = match (op.method, op.path) {
            ("post", "/api/v1/offers") => Some("NewOffer"),
            ("post", "/api/v1/offers/{offer_id}/invitations") => Some("NewInvitation"),
            ("post", "/api/v1/resellers") => Some("NewReseller"),
            ("post", "/api/v1/resellers/{mpn_id}/customers") => Some("ResellerCustomer"),
            ("post", "/api/v1/signups") => Some("Signup"),
            ("post", "/api/v1/instances") => Some("NewInstance"),
            ("post", "/api/v1/instances/{id}/events") => Some("Event"),
            _ => None,
        };
        if let Some(b) = body {
            o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema_ref(b) } } });
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = o;
    }
    let codes: Vec<&str> = ERROR_CODES.iter().map(|c| c.0).collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "partnerflow partner API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Offers, invitations, acceptances, resellers and sign-ups. Every write needs a bearer token (`partnerflow tokens create`). Times are RFC 3339 strings (`date-time`, UTC, e.g. `2026-11-22T10:00:00Z`, with milliseconds when there are any). Errors: {}", ERROR_CODES.iter().map(|(c, s, d)| format!("`{c}` ({s}): {d}")).collect::<Vec<_>>().join("; ")),
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string", "enum": codes }, "message": { "type": "string" }, "field": { "type": "string" } } } } },
                "NewOffer": { "type": "object", "required": ["kind", "location_id", "country"], "additionalProperties": false, "properties": {
                    "kind": { "type": "string", "enum": ["trial", "purchase", "delegated_admin"] },
                    "location_id": { "type": "string" }, "country": { "type": "string", "pattern": "^[A-Za-z]{2}$", "description": "usage country, an assigned ISO 3166-1 alpha-2 code", "example": "DE" },
                    "products": { "type": "array", "items": { "type": "object", "required": ["id"], "additionalProperties": false, "properties": { "id": { "type": "string" }, "licences": { "type": "integer" } } } },
                    "delegated_admin": { "type": "string", "enum": ["none", "full", "limited"] },
                    "expires_at": { "type": "string", "format": "date-time" }, "message": { "type": "string", "maxLength": 2000 } } },
                "NewInvitation": { "type": "object", "required": ["recipient"], "additionalProperties": false, "properties": {
                    "recipient": { "type": "string", "format": "email" }, "locale": { "type": "string", "enum": ["de", "en"] }, "name": { "type": "string" } } },
                "NewReseller": { "type": "object", "required": ["mpn_id", "name", "email"], "additionalProperties": false, "properties": {
                    "mpn_id": { "type": "string" }, "name": { "type": "string" }, "email": { "type": "string", "format": "email" } } },
                "ResellerCustomer": { "type": "object", "additionalProperties": false, "properties": {
                    "domain": { "type": "string" }, "acceptance_id": { "type": "string" }, "support_contact": { "type": "boolean" } } },
                "Signup": { "type": "object", "required": ["advisor_code", "customer_domain", "completed_at"], "additionalProperties": false, "properties": {
                    "advisor_code": { "type": "string" }, "customer_domain": { "type": "string" }, "completed_at": { "type": "string", "format": "date-time" } } },
                "NewInstance": { "type": "object", "required": ["workflow"], "additionalProperties": false, "properties": {
                    "workflow": { "type": "string" }, "data": { "type": "object" }, "locale": { "type": "string" }, "event": { "type": "string" } } },
                "Event": { "type": "object", "required": ["event"], "additionalProperties": false, "properties": { "event": { "type": "string" } } },
            }
        }
    })
}
