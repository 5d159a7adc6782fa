//! CSRF for the customer's forms: a nonce cookie (`pf_csrf`, HttpOnly, SameSite=Strict)
//! and a form token bound to it and to the page's path (signed, with its issue time); an
//! Origin header, when sent, must be ours.

use axum::http::{HeaderMap, header};

use crate::app::AppState;
use crate::core::domain::Locale;
use crate::web::views;

use super::{form_pairs, locale_of};

const CSRF_COOKIE: &str = "pf_csrf";

pub(crate) fn cookie_nonce(h: &HeaderMap) -> Option<String> {
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
pub(crate) fn csrf_for(rt: &AppState, h: &HeaderMap, path: &str) -> (String, Option<String>) {
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
pub(crate) fn csrf_ok(
    rt: &AppState,
    h: &HeaderMap,
    form: &[(String, String)],
    path: &str,
) -> Result<(), views::FormRefusal> {
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
            return Err(views::FormRefusal::Origin);
        }
    }
    let Some(nonce) = cookie_nonce(h) else {
        return Err(views::FormRefusal::Invalid);
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
            crate::core::links::CsrfError::Expired => views::FormRefusal::Expired,
            crate::core::links::CsrfError::Invalid => views::FormRefusal::Invalid,
        })
}

/// The start of every POST to a personal page (`/r/…`, `/p/…`): its locale, its path, and
/// whether the CSRF check passed.
pub(crate) fn personal_post(
    rt: &AppState,
    headers: &HeaderMap,
    prefix: &str,
    token: &str,
    body: &[u8],
) -> (Locale, String, Result<(), views::FormRefusal>) {
    let path = format!("/{prefix}/{token}");
    let ok = csrf_ok(rt, headers, &form_pairs(body), &path);
    (locale_of(rt, headers), path, ok)
}
