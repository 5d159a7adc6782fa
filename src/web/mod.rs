//! The only module that knows HTTP (axum): the partner API under `/api/v1` (JSON, bearer
//! tokens with roles, an OpenAPI document generated from the handlers' types) and the
//! customer's pages (`/o/…` offer and accept, `/c/…` confirm, `/r/…` remove admin roles,
//! `/p/…` reseller request, `/u/…` unsubscribe).
//!
//! - [`error`]   — `ApiError`: every error maps to a status and a stable code in one place.
//! - [`api`]     — the partner API's handlers, one file per resource.
//! - [`pages`]   — the customer's pages per flow; their CSRF and cookie helpers.
//! - [`openapi`] — the document (`GET /api/v1/openapi.json`), made by utoipa from the handlers.
//! - here       — the router, the guards around every request (security headers, one 404
//!   answer, the public pages' rate limit, the request metrics), the bearer-token check, and
//!   the metrics router of `http.metrics_bind`.

pub mod api;
pub mod error;
pub mod openapi;
pub mod pages;
mod serve;
pub mod views;

pub use error::{ApiError, ERROR_CODES};
pub use serve::serve;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::core::domain::{Locale, OfferId, Role};
use crate::core::links::constant_time_eq;
use crate::offers;
use error::{ApiResult, bad};
use pages::{locale_of, page};

pub fn router(rt: Arc<AppState>) -> Router {
    use api::{campaigns, catalog, customers, health, instances, offers, resellers, webhooks};
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::scrape))
        .route("/api/v1/openapi.json", get(openapi::openapi))
        .route("/api/v1/catalog", get(catalog::catalog))
        .route("/api/v1/locations", get(catalog::locations))
        .route("/api/v1/locations/sync", post(catalog::locations_sync))
        .route(
            "/api/v1/offers",
            post(offers::create_offer).get(offers::list_offers),
        )
        .route("/api/v1/offers/{offer_id}", get(offers::show_offer))
        .route(
            "/api/v1/offers/{offer_id}/withdraw",
            post(offers::withdraw_offer),
        )
        .route(
            "/api/v1/offers/{offer_id}/invitations",
            post(offers::invite),
        )
        .route("/api/v1/customers", get(customers::customers))
        .route(
            "/api/v1/resellers",
            post(resellers::create_reseller).get(resellers::list_resellers),
        )
        .route(
            "/api/v1/resellers/{mpn_id}",
            get(resellers::show_reseller).delete(resellers::remove_reseller),
        )
        .route(
            "/api/v1/resellers/{mpn_id}/customers",
            post(resellers::associate_reseller),
        )
        .route("/api/v1/signups", post(webhooks::signup_webhook))
        .route(
            "/api/v1/campaigns",
            post(campaigns::create_campaign).get(campaigns::list_campaigns),
        )
        .route("/api/v1/campaigns/{id}", get(campaigns::show_campaign))
        .route(
            "/api/v1/campaigns/{id}/recipients",
            post(campaigns::add_recipients),
        )
        .route(
            "/api/v1/campaigns/{id}/start",
            post(campaigns::campaign_start),
        )
        .route(
            "/api/v1/campaigns/{id}/pause",
            post(campaigns::campaign_pause),
        )
        .route(
            "/api/v1/campaigns/{id}/resume",
            post(campaigns::campaign_resume),
        )
        .route(
            "/api/v1/campaigns/{id}/cancel",
            post(campaigns::campaign_cancel),
        )
        .route("/api/v1/bounces", post(webhooks::bounce_webhook))
        .route("/api/v1/instances", post(instances::start_instance))
        .route("/api/v1/instances/{id}", get(instances::show_instance))
        .route("/api/v1/instances/{id}/events", post(instances::send_event))
        .merge(public_pages(rt.clone()))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(rt.clone(), guard))
        .layer(axum::middleware::from_fn(measure))
        .with_state(rt)
}

/// What `http.metrics_bind` serves, a private address: `/metrics` without a token, `/readyz`
/// and `/healthz`; anything else 404.
pub fn metrics_router(rt: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(open_metrics))
        .route("/readyz", get(api::health::readyz))
        .route("/healthz", get(api::health::healthz))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(rt)
}

async fn open_metrics(State(rt): State<Arc<AppState>>) -> Response {
    api::health::exposition(&rt).await
}

/// Around every request (a layer of each route and of the fallback, so after routing): counts
/// it by method, route template (axum's `MatchedPath`, never the path itself, which may hold a
/// code or a secret link; `unmatched` for the fallback) and status, and records its latency.
async fn measure(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use crate::core::metric_names as names;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = names::bounded(req.method().as_str(), &names::METHODS);
    let started = std::time::Instant::now();
    let r = next.run(req).await;
    let status = r.status().as_u16().to_string();
    metrics::histogram!(names::HTTP_DURATION, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(names::HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    r
}

/// The customer's pages: open to the internet, so every request first passes
/// [`public_guard`] (the per-client rate limit, kept in the database).
fn public_pages(rt: Arc<AppState>) -> Router<Arc<AppState>> {
    use pages::{offer, portal, relationship, reseller, unsubscribe};
    Router::new()
        .route(
            "/o/{code}",
            get(offer::offer_page).post(offer::accept_offer),
        )
        .route(
            "/c/{token}",
            get(offer::confirm_page).post(offer::confirm_post),
        )
        .route(
            "/r/{token}",
            get(relationship::remove_roles_page).post(relationship::remove_roles),
        )
        .route(
            "/p/{token}",
            get(reseller::reseller_page).post(reseller::reseller_accept),
        )
        .merge(portal::routes())
        .layer(axum::middleware::from_fn_with_state(rt, public_guard))
        // One-click unsubscribes (RFC 8058) are posted by mail providers' servers, many
        // recipients from one address: a per-client limit would refuse them and lose the
        // unsubscribe. Each signed link suppresses only its own address, so it is not limited.
        .route(
            "/u/{token}",
            get(unsubscribe::unsubscribe_page).post(unsubscribe::unsubscribe_post),
        )
        .merge(portal::logo_routes())
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
        // The first segment only: the rest of these paths are secrets (sign-in, confirmation
        // and personal page links).
        let page = req.uri().path().split('/').nth(1).unwrap_or("");
        tracing::warn!(client, page, "public pages: client over the request limit");
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
    match rt.rate_hit(key, window, limit).await {
        Ok(true) => None,
        Ok(false) => Some(limited(rt, l, window_s)),
        Err(e) => {
            tracing::error!(error = %e, "public pages: rate limit store unavailable");
            Some(page(
                rt,
                StatusCode::SERVICE_UNAVAILABLE,
                views::error_page(l),
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
        views::rate_limited_page(l),
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
    page(rt, StatusCode::NOT_FOUND, views::not_found_page(l), None)
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

/// A JSON body into `T`; a body that does not fit is `invalid_request` naming the place.
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

/// The query string as a map; a parameter not in `allowed` is `invalid_request`.
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
