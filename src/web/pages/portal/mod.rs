//! `/portal`: the partner portal's pages (issue 14, first part). Sign-in by an emailed link
//! (`/portal/sign-in`, `/portal/sign-in/{token}`: a GET shows a button, only its POST uses the
//! link), the overview, sign out (here, everywhere), the users (administrators: list, invite,
//! deactivate) and the audit log (administrators). Every page checks the session and the role
//! on the server ([`SignedIn`], [`SignedIn::require`]); every form is CSRF-protected
//! (`pages::csrf`); every write is audited with the client address the rate limits use.
//! Served behind the public pages' per-client limit (`web::public_guard`).

// One file (or folder) per section; each gives its routes and uses the shared pieces here
// (`SignedIn`, `csrf_tokens`, `see_other`, `unavailable`, `field`) and in `view` (`Nav`,
// `texts`, `render`).
mod campaigns;
mod company;
mod customers;
mod instances;
mod jobs;
mod offers;
mod overview;
mod resellers;
mod schedules;
mod view;
mod workflows;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::{Locale, Role, Timestamp};
use crate::portal::{self, Actor, AuditQuery, NewUser, PortalError, Requested, Session};
use crate::web::pages::csrf::{cookie_nonce, csrf_for, csrf_ok};
use crate::web::pages::{form_pairs, locale_of, page, refused};
use crate::web::{ClientAddr, views};

use view::{AuditForm, InviteForm, Nav, UserLine};

const SIGN_IN: &str = "/portal/sign-in";
const SIGN_OUT: &str = "/portal/sign-out";
const EVERYWHERE: &str = "/portal/sign-out-everywhere";
const USERS: &str = "/portal/users";
const DEACTIVATE: &str = "/portal/users/deactivate";
const REACTIVATE: &str = "/portal/users/reactivate";
const ROLE: &str = "/portal/users/role";
const AUDIT_PAGE: i64 = 50;

/// The portal's routes (merged into the public pages, behind their per-client limit).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(overview::routes())
        .merge(customers::routes())
        .merge(offers::routes())
        .merge(campaigns::routes())
        .merge(resellers::routes())
        .merge(company::routes())
        .merge(schedules::routes())
        .merge(jobs::routes())
        .merge(workflows::routes())
        .merge(instances::routes())
        .route(SIGN_IN, get(sign_in_form).post(sign_in_request))
        .route("/portal/sign-in/{token}", get(link_page).post(redeem))
        .route(SIGN_OUT, post(sign_out))
        .route(EVERYWHERE, post(sign_out_everywhere))
        .route(USERS, get(users).post(invite))
        .route(DEACTIVATE, post(deactivate))
        .route(REACTIVATE, post(reactivate))
        .route(ROLE, post(change_role))
        .route("/portal/audit", get(audit))
}

/// The public `/partner/logo` (not behind the public pages' limit: served from memory).
pub(crate) fn logo_routes() -> Router<Arc<AppState>> {
    company::logo_routes()
}

/// The session cookie's name: `__Host-pf_session` where the public base URL is https (the
/// browser then insists on Secure, Path=/ and no Domain), else `pf_session`.
pub(crate) fn session_cookie_name(rt: &AppState) -> &'static str {
    if https(rt) {
        "__Host-pf_session"
    } else {
        "pf_session"
    }
}

fn https(rt: &AppState) -> bool {
    rt.settings.app.public_base_url.scheme() == "https"
}

fn session_cookie(rt: &AppState, value: &str, max_age_s: i64) -> String {
    let secure = if https(rt) { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}",
        session_cookie_name(rt)
    )
}

fn cookie_value<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn client_of(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<ClientAddr>()
        .map(|c| c.0.clone())
        .unwrap_or_else(|| "unknown".into())
}

/// A 303 to `to`, with an optional Set-Cookie.
pub(super) fn see_other(to: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(super) fn unavailable(rt: &AppState, l: Locale, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "portal: store unavailable");
    page(
        rt,
        StatusCode::SERVICE_UNAVAILABLE,
        views::error_page(l),
        None,
    )
}

/// CSRF tokens for several forms of one page (one nonce; a new one's Set-Cookie if the
/// browser had none).
pub(super) fn csrf_tokens<const N: usize>(
    rt: &AppState,
    h: &HeaderMap,
    paths: [&str; N],
) -> ([String; N], Option<String>) {
    let (first, set) = csrf_for(rt, h, paths[0]);
    let nonce = cookie_nonce(h).or_else(|| {
        set.as_deref()
            .and_then(|c| c.split(';').next())
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
    });
    let now = rt.clock.now();
    let tokens = std::array::from_fn(|i| match (i, &nonce) {
        (0, _) => first.clone(),
        (_, Some(n)) => rt.keys.csrf_token(n, paths[i], now),
        (_, None) => String::new(),
    });
    (tokens, set)
}

/// A signed-in user's request: their live session (touched), their language, the client
/// address. Without one, a page request is sent to the sign-in page (303).
pub(crate) struct SignedIn {
    pub session: Session,
    pub locale: Locale,
    pub client: String,
    pub headers: HeaderMap,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, rt: &Arc<AppState>) -> Result<Self, Response> {
        let secret = cookie_value(&parts.headers, session_cookie_name(rt)).unwrap_or("");
        match portal::session(rt, secret).await {
            Ok(Some(session)) => Ok(SignedIn {
                locale: session.user.language,
                session,
                client: client_of(&parts.extensions),
                headers: parts.headers.clone(),
            }),
            Ok(None) => Err(see_other(SIGN_IN, None)),
            Err(e) => Err(unavailable(rt, locale_of(rt, &parts.headers), &e)),
        }
    }
}

impl SignedIn {
    /// The page's navigation, its sign-out forms' tokens, and a CSRF Set-Cookie if new.
    pub(super) fn nav(&self, rt: &AppState, current: &'static str) -> (Nav, Option<String>) {
        let ([out, everywhere], set) = csrf_tokens(rt, &self.headers, [SIGN_OUT, EVERYWHERE]);
        (
            Nav::new(self.locale, &self.session.user, current, out, everywhere),
            set,
        )
    }

    /// The server-side role check of a page: a role that may not gets the 403 page (the
    /// refusal is returned; None: allowed).
    pub(super) fn require(&self, rt: &AppState, needed: Role) -> Option<Response> {
        if self.session.user.role.allows(needed) {
            return None;
        }
        let (nav, set) = self.nav(rt, "");
        Some(page(
            rt,
            StatusCode::FORBIDDEN,
            view::forbidden_page(self.locale, &nav),
            set,
        ))
    }

    pub(super) fn actor(&self) -> Actor {
        Actor::user(&self.session.user, &self.client)
    }

    /// A form posted to `path` by a user whose role allows `needed`: its fields, or the
    /// refusal (the role's 403 page, else the CSRF check's).
    #[allow(clippy::result_large_err)] // a refusal is the response itself, built once
    pub(super) fn form(
        &self,
        rt: &AppState,
        needed: Role,
        body: &[u8],
        path: &str,
    ) -> Result<Vec<(String, String)>, Response> {
        if let Some(r) = self.require(rt, needed) {
            return Err(r);
        }
        let f = form_pairs(body);
        if let Some(r) = self.csrf(rt, &f, path) {
            return Err(r);
        }
        Ok(f)
    }

    /// The CSRF check of a form posted to `path`: the refusal, or None.
    pub(super) fn csrf(
        &self,
        rt: &AppState,
        form: &[(String, String)],
        path: &str,
    ) -> Option<Response> {
        csrf_ok(rt, &self.headers, form, path)
            .err()
            .map(|why| refused(rt, self.locale, why))
    }
}

/// The query string's pairs (the first few).
pub(super) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .take(20)
            .collect()
    })
    .unwrap_or_default()
}

/// The portal's 404 page, in the reader's language.
pub(super) fn not_found(rt: &AppState, l: Locale) -> Response {
    page(rt, StatusCode::NOT_FOUND, views::not_found_page(l), None)
}

pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

// ------------------------------------------------------------------------------ sign in

async fn sign_in_form(State(rt): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let l = locale_of(&rt, &headers);
    let (csrf, set) = csrf_for(&rt, &headers, SIGN_IN);
    page(
        &rt,
        StatusCode::OK,
        view::sign_in_page(l, &csrf, "", None, false),
        set,
    )
}

/// A sign-in link requested: the same answer whether or not the address is a user's.
async fn sign_in_request(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Extension(ClientAddr(client)): axum::Extension<ClientAddr>,
    body: axum::body::Bytes,
) -> Response {
    let l = locale_of(&rt, &headers);
    let form = form_pairs(&body);
    if let Err(why) = csrf_ok(&rt, &headers, &form, SIGN_IN) {
        return refused(&rt, l, why);
    }
    let email = field(&form, "email");
    let (csrf, set) = csrf_for(&rt, &headers, SIGN_IN);
    match portal::request_link(&rt, email, &client).await {
        Ok(Requested::Accepted) => page(
            &rt,
            StatusCode::OK,
            view::sign_in_page(l, &csrf, "", None, true),
            set,
        ),
        Ok(Requested::Limited) => crate::web::limited(&rt, l, 3600),
        Err(PortalError::Invalid { message, .. }) => page(
            &rt,
            StatusCode::BAD_REQUEST,
            view::sign_in_page(l, &csrf, email, Some(&message), false),
            set,
        ),
        Err(e) => unavailable(&rt, l, &e),
    }
}

/// A sign-in link's page: a button (its POST uses the link). A GET uses nothing, so mail
/// scanners that open links do not spend it.
async fn link_page(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let l = locale_of(&rt, &headers);
    let usable = match portal::link_usable(&rt, &token).await {
        Ok(u) => u,
        Err(e) => return unavailable(&rt, l, &e),
    };
    let path = format!("{SIGN_IN}/{token}");
    let (csrf, set) = csrf_for(&rt, &headers, &path);
    let status = if usable {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    page(&rt, status, view::link_page(l, &path, &csrf, usable), set)
}

/// Uses a sign-in link (once): a session cookie and a 303 to the overview.
async fn redeem(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Extension(ClientAddr(client)): axum::Extension<ClientAddr>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = locale_of(&rt, &headers);
    let path = format!("{SIGN_IN}/{token}");
    if let Err(why) = csrf_ok(&rt, &headers, &form_pairs(&body), &path) {
        return refused(&rt, l, why);
    }
    match portal::redeem(&rt, &token, &client).await {
        Ok(Some((_, secret))) => {
            let max_age = rt.settings.portal.session_max.0 / 1000;
            see_other("/portal", Some(session_cookie(&rt, &secret, max_age)))
        }
        Ok(None) => page(
            &rt,
            StatusCode::GONE,
            view::link_page(l, &path, "", false),
            None,
        ),
        Err(e) => unavailable(&rt, l, &e),
    }
}

// ------------------------------------------------------------------ signed-in pages

async fn sign_out(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.csrf(&rt, &form_pairs(&body), SIGN_OUT) {
        return r;
    }
    if let Err(e) = portal::sign_out(&rt, &s.session, &s.client).await {
        return unavailable(&rt, s.locale, &e);
    }
    see_other(SIGN_IN, Some(session_cookie(&rt, "", 0)))
}

async fn sign_out_everywhere(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.csrf(&rt, &form_pairs(&body), EVERYWHERE) {
        return r;
    }
    if let Err(e) = portal::sign_out_everywhere(&rt, &s.session, &s.client).await {
        return unavailable(&rt, s.locale, &e);
    }
    see_other(SIGN_IN, Some(session_cookie(&rt, "", 0)))
}

/// The users page (administrators), with the invite form as given.
async fn users_page(
    rt: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &InviteForm,
) -> Response {
    let users = match portal::list_users(rt).await {
        Ok(u) => u,
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let ([out, everywhere, invite, deactivate, reactivate, role], set) = csrf_tokens(
        rt,
        &s.headers,
        [SIGN_OUT, EVERYWHERE, USERS, DEACTIVATE, REACTIVATE, ROLE],
    );
    let nav = Nav::new(s.locale, &s.session.user, "users", out, everywhere);
    let lines: Vec<UserLine> = users
        .iter()
        .map(|u| {
            let csrf = if u.active() {
                deactivate.clone()
            } else {
                reactivate.clone()
            };
            UserLine::new(s.locale, u, u.id == s.session.user.id, csrf, role.clone())
        })
        .collect();
    page(
        rt,
        status,
        view::users_page(s.locale, &nav, &lines, form, &invite),
        set,
    )
}

async fn users(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let form = InviteForm {
        invited: q.as_deref() == Some("invited=1"),
        language: s.locale.as_str().into(),
        role: "viewer".into(),
        ..Default::default()
    };
    users_page(&rt, &s, StatusCode::OK, &form).await
}

/// An administrator invites a user: created and mailed a sign-in link; then a 303 back.
async fn invite(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, USERS) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut form = InviteForm {
        email: field(&f, "email").into(),
        name: field(&f, "name").into(),
        role: field(&f, "role").into(),
        language: field(&f, "language").into(),
        ..Default::default()
    };
    let result = match NewUser::parse(&form.email, &form.name, &form.role, &form.language) {
        Ok(new) => portal::invite_user(&rt, &new, &s.actor(), &s.session.user.name).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other("/portal/users?invited=1", None),
        Err(PortalError::Invalid { field, message }) => {
            form.errors.push((field, message));
            users_page(&rt, &s, StatusCode::BAD_REQUEST, &form).await
        }
        Err(PortalError::Exists(_)) => {
            let m = match s.locale {
                Locale::De => "Zu dieser Adresse gibt es schon einen Benutzer.",
                Locale::En => "There is a user with this address already.",
            };
            form.errors.push(("email".into(), m.into()));
            users_page(&rt, &s, StatusCode::CONFLICT, &form).await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// An administrator deactivates a user (not themselves); then a 303 back.
async fn deactivate(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, DEACTIVATE) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let email = field(&f, "email").trim().to_lowercase();
    if email == s.session.user.email.as_str() {
        let m = match s.locale {
            Locale::De => "Sie können sich nicht selbst deaktivieren.",
            Locale::En => "You cannot deactivate yourself.",
        };
        let form = InviteForm {
            errors: vec![("email".into(), m.into())],
            ..Default::default()
        };
        return users_page(&rt, &s, StatusCode::BAD_REQUEST, &form).await;
    }
    match portal::deactivate_user(&rt, &email, &s.actor()).await {
        Ok(_) | Err(PortalError::NotFound(_)) => see_other(USERS, None),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// An administrator lets a deactivated user sign in again; then a 303 back.
async fn reactivate(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, REACTIVATE) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match portal::reactivate_user(&rt, field(&f, "email"), &s.actor()).await {
        Ok(_) | Err(PortalError::NotFound(_)) => see_other(USERS, None),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// An administrator gives a user (not themselves) another role; then a 303 back, or the page
/// with the reason (the last administrator keeps the role).
async fn change_role(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, ROLE) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let email = field(&f, "email").trim().to_lowercase();
    let refuse = |m: String| InviteForm {
        errors: vec![("role".into(), m)],
        ..Default::default()
    };
    if email == s.session.user.email.as_str() {
        let m = match s.locale {
            Locale::De => "Ihre eigene Rolle ändert ein anderer Administrator.",
            Locale::En => "Another administrator changes your own role.",
        };
        return users_page(&rt, &s, StatusCode::BAD_REQUEST, &refuse(m.into())).await;
    }
    let role = match portal::parse_role(field(&f, "role")) {
        Ok(r) => r,
        Err(e) => {
            return users_page(&rt, &s, StatusCode::BAD_REQUEST, &refuse(e.to_string())).await;
        }
    };
    match portal::change_role(&rt, &email, role, &s.actor()).await {
        Ok(_) | Err(PortalError::NotFound(_)) => see_other(USERS, None),
        Err(PortalError::Invalid { message, .. }) => {
            users_page(&rt, &s, StatusCode::CONFLICT, &refuse(message)).await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// `YYYY-MM-DD` as the start of that day (UTC).
pub(super) fn parse_day(s: &str) -> Option<Timestamp> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| Timestamp::from_datetime(dt.and_utc()))
}

/// The audit log (administrators): filtered by who, action, from and to (days), newest first,
/// a page at a time.
async fn audit(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let pairs: Vec<(String, String)> = q
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .take(20)
                .collect()
        })
        .unwrap_or_default();
    let mut form = AuditForm {
        actor: field(&pairs, "actor").trim().into(),
        action: field(&pairs, "action").trim().into(),
        from: field(&pairs, "from").trim().into(),
        to: field(&pairs, "to").trim().into(),
        errors: vec![],
    };
    let bad_day = match s.locale {
        Locale::De => "ist kein Datum JJJJ-MM-TT",
        Locale::En => "is not a date YYYY-MM-DD",
    };
    let mut day = |name: &str, v: &str| {
        if v.is_empty() {
            return None;
        }
        let d = parse_day(v);
        if d.is_none() {
            form.errors
                .push((name.to_string(), format!("{v}: {bad_day}")));
        }
        d
    };
    let (from, to) = (day("from", &form.from.clone()), day("to", &form.to.clone()));
    let cursor = field(&pairs, "cursor");
    let query = AuditQuery {
        actor: Some(form.actor.clone()),
        action: Some(form.action.clone()),
        from,
        to,
        cursor: (!cursor.is_empty()).then(|| cursor.to_string()),
    };
    let (status, result) = if form.errors.is_empty() {
        (
            StatusCode::OK,
            portal::audit::list(&rt, &query, AUDIT_PAGE).await,
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            Ok(portal::AuditPage {
                rows: vec![],
                next: None,
            }),
        )
    };
    let listed = match result {
        Ok(p) => p,
        Err(PortalError::Invalid { .. }) => portal::AuditPage {
            rows: vec![],
            next: None,
        },
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let next = listed.next.as_ref().map(|c| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &form.actor)
            .append_pair("action", &form.action)
            .append_pair("from", &form.from)
            .append_pair("to", &form.to)
            .append_pair("cursor", c)
            .finish()
    });
    let (nav, set) = s.nav(&rt, "audit");
    page(
        &rt,
        status,
        view::audit_page(s.locale, &nav, &form, &listed.rows, next.as_deref()),
        set,
    )
}
