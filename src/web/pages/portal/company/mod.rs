//! `/portal/company` (administrators): the partner's identity shown on every customer page
//! and email (name, legal name, email, phone, website; `POST /portal/company`), its logo
//! (`POST /portal/company/logo`, multipart, PNG or JPEG checked by its bytes;
//! `POST /portal/company/logo/remove`), and `/partner/logo`, the public logo (from this
//! node's copy: no database read). Every write is audited (`company.update`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Multipart, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::Role;
use crate::portal::company::{self, CompanyInput, LOGO_MAX_BYTES, Problem};
use crate::web::pages::{form_pairs, page};

use super::view::Nav;
use super::view::company::{CompanyView, company_page, problem_text};
use super::{EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, see_other, unavailable};

const COMPANY: &str = "/portal/company";
const LOGO: &str = "/portal/company/logo";
const REMOVE: &str = "/portal/company/logo/remove";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(COMPANY, get(show).post(save))
        .route(LOGO, post(upload))
        .route(REMOVE, post(remove))
}

/// `/partner/logo`, public: served from memory, so it is outside the public pages' limit
/// (which counts in the database).
pub(super) fn logo_routes() -> Router<Arc<AppState>> {
    Router::new().route("/partner/logo", get(logo))
}

/// The page with the form as given, its errors, and the logo's.
fn company_response(
    rt: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &CompanyInput,
    errors: Vec<(&'static str, String)>,
    saved: bool,
) -> Response {
    let ([out, everywhere, save, logo, remove], set) = csrf_tokens(
        rt,
        &s.headers,
        [SIGN_OUT, EVERYWHERE, COMPANY, LOGO, REMOVE],
    );
    let nav = Nav::new(s.locale, &s.session.user, "company", out, everywhere);
    let c = rt.company();
    let v = CompanyView {
        form,
        errors,
        saved,
        logo: c.partner.logo_path.as_deref(),
        provider: &c.partner.provider_name,
        agreement: c.partner.customer_agreement_url.as_str(),
        csrf: [save, logo, remove],
    };
    page(rt, status, company_page(s.locale, &nav, &v), set)
}

async fn show(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let form = CompanyInput::of(&rt.company().partner);
    let saved = q.as_deref() == Some("saved=1");
    company_response(&rt, &s, StatusCode::OK, &form, vec![], saved)
}

/// Saves the identity: errors next to their fields (400), else a 303 back.
async fn save(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, COMPANY) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let form = CompanyInput {
        name: field(&f, "name").into(),
        legal_name: field(&f, "legal_name").into(),
        email: field(&f, "email").into(),
        phone: field(&f, "phone").into(),
        website: field(&f, "website").into(),
    };
    match form.parse() {
        Ok(fields) => match company::update(&rt, &fields, &s.actor()).await {
            Ok(_) => see_other("/portal/company?saved=1", None),
            Err(e) => unavailable(&rt, s.locale, &e),
        },
        Err(problems) => {
            let errors = problems
                .into_iter()
                .map(|(f, p)| (f, problem_text(s.locale, p)))
                .collect();
            company_response(&rt, &s, StatusCode::BAD_REQUEST, &form, errors, false)
        }
    }
}

/// The posted multipart form's `csrf` and `logo` (read up to one byte past the limit).
async fn logo_form(mut m: Multipart) -> Option<(String, Vec<u8>)> {
    let (mut csrf, mut bytes) = (String::new(), Vec::new());
    while let Some(mut f) = m.next_field().await.ok()? {
        match f.name() {
            Some("csrf") => csrf = f.text().await.ok()?,
            Some("logo") => {
                while let Some(chunk) = f.chunk().await.ok()? {
                    let room = LOGO_MAX_BYTES + 1 - bytes.len();
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if bytes.len() > LOGO_MAX_BYTES {
                        break;
                    }
                }
                if bytes.len() > LOGO_MAX_BYTES {
                    break;
                }
            }
            _ => {}
        }
    }
    Some((csrf, bytes))
}

/// Stores an uploaded logo: a problem next to the file field (400), else a 303 back.
async fn upload(State(rt): State<Arc<AppState>>, s: SignedIn, req: Request) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let parsed = match Multipart::from_request(req, &rt).await {
        Ok(m) => logo_form(m).await,
        Err(_) => None,
    };
    // An unreadable body carries no valid token either: refused like a missing one.
    let (csrf, bytes) = parsed.unwrap_or_default();
    if let Some(r) = s.csrf(&rt, &[("csrf".into(), csrf)], LOGO) {
        return r;
    }
    let again = |p: Problem| {
        let form = CompanyInput::of(&rt.company().partner);
        let errors = vec![("logo", problem_text(s.locale, p))];
        company_response(&rt, &s, StatusCode::BAD_REQUEST, &form, errors, false)
    };
    match company::set_logo(&rt, &bytes, &s.actor()).await {
        Ok(Ok(())) => see_other("/portal/company?saved=1", None),
        Ok(Err(p)) => again(p),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

async fn remove(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    if let Some(r) = s.csrf(&rt, &form_pairs(&body), REMOVE) {
        return r;
    }
    match company::remove_logo(&rt, &s.actor()).await {
        Ok(_) => see_other("/portal/company?saved=1", None),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// The logo: its checked type, never sniffed; cached for a year at its versioned address
/// (`?v=…`, as the pages link it), five minutes otherwise. 404 without one.
async fn logo(State(rt): State<Arc<AppState>>, RawQuery(q): RawQuery, h: HeaderMap) -> Response {
    let c = rt.company();
    let Some(l) = &c.logo else {
        let mut r = StatusCode::NOT_FOUND.into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    };
    let etag = format!("\"logo-{}\"", l.version);
    let versioned = q.as_deref() == Some(&format!("v={}", l.version));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let fresh = h
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, axum::body::Bytes::copy_from_slice(&l.bytes)).into_response()
    };
    let hs = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&l.content_type) {
        hs.insert(header::CONTENT_TYPE, v);
    }
    hs.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    hs.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        hs.insert(header::ETAG, v);
    }
    r
}
