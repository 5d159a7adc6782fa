//! Passwordless sign-in: a single-use link mailed to the user (through the one delivery path,
//! as a `portal_signin` lifecycle), redeemed by a form POST for a session; sessions are kept
//! server-side by the SHA-256 of their secret, with idle and absolute expiry, and revocable.
//! Requesting a link answers the same whether or not the address is a user's.

use serde_json::{Map, json};

use crate::app::AppState;
use crate::core::domain::{InstanceId, Span, Timestamp};
use crate::core::links::{Purpose, sha256_hex};
use crate::core::portal::{SessionRow, UserRow};
use crate::store::NewSession;

use super::*;

/// The page path of a sign-in link (the secret follows).
pub const SIGNIN_PATH: &str = "/portal/sign-in";

/// A session is written (its last-seen time) at most this often.
pub const TOUCH_EVERY: Span = Span(60_000);

/// A sign-in link: its URL holds the secret, which is never logged.
#[derive(Clone)]
pub struct Link {
    pub url: String,
    /// What the email carries instead of the URL (see [`LINK_REF`]).
    pub reference: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Whether a path segment can be a secret of ours at all (checked before any lookup).
pub fn plausible_secret(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// The context field of a `portal_signin` email that names its link (`{kid}.{random}`): the
/// secret is derived from it with the link key when the email is rendered
/// ([`signin_url_of`]), so neither the instance's data nor the email job holds it.
pub const LINK_REF: &str = "link_ref";

/// The sign-in URL a link reference stands for (None: malformed, or its key is gone).
pub fn signin_url_of(rt: &AppState, reference: &str) -> Option<String> {
    let secret = rt.keys.derived_secret(Purpose::SigninLink, reference)?;
    Some(rt.public_link(&["portal", "sign-in", &secret]))
}

/// Makes a sign-in link for a user (only its hash is stored), valid `portal.signin_link_ttl`.
/// Its secret is derived from a fresh reference with the link key.
pub async fn issue_link(rt: &AppState, user: &UserRow) -> Result<Link> {
    let reference = rt.keys.new_reference(&super::users::secret());
    let secret = rt
        .keys
        .derived_secret(Purpose::SigninLink, &reference)
        .ok_or_else(|| invalid("link", "the link key is missing"))?;
    let now = rt.clock.now();
    let expires_at = now.plus(rt.settings.portal.signin_link_ttl);
    rt.store
        .insert_signin_link(&sha256_hex(&secret), &user.id, now, expires_at)
        .await?;
    Ok(Link {
        url: rt.public_link(&["portal", "sign-in", &secret]),
        reference,
        expires_at,
    })
}

/// Mails a sign-in link to its user, in their language: a `portal_signin` instance whose one
/// transition enqueues the email (durable, retried, through `Mailer::deliver`).
pub async fn mail_link(
    rt: &AppState,
    user: &UserRow,
    link: &Link,
    invited_by: Option<&str>,
    by: &Actor,
) -> Result<()> {
    let mut d = Map::new();
    d.insert("user_email".into(), json!(user.email));
    d.insert("user_name".into(), json!(user.name));
    d.insert(LINK_REF.into(), json!(link.reference));
    // The template's `link`: empty here (the commit checks the template renders), the URL
    // only in the message being sent.
    d.insert("link".into(), json!(""));
    d.insert("expires_at".into(), json!(link.expires_at.to_rfc3339()));
    if let Some(who) = invited_by {
        d.insert("invited_by".into(), json!(who));
    }
    let id = InstanceId::generate();
    let (c, _) = rt.engine.plan_start(
        &id,
        "portal_signin",
        &d,
        Some(user.language),
        &format!("portal:{}", by.label),
        &["send"],
    )?;
    rt.engine.commit_plan(&c).await?;
    Ok(())
}

/// What became of a request for a sign-in link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The one answer, whether or not a link was sent ("if the address is a user's, a link
    /// is on its way").
    Accepted,
    /// Over the limit per address or per client: nothing was sent.
    Limited,
}

/// A sign-in link requested for `email` from `client`. Rate-limited per address and per
/// client (in the database) before anything is looked up; an active user gets a link by
/// email; an unknown or deactivated address gets nothing, and the same answer.
pub async fn request_link(rt: &AppState, email: &str, client: &str) -> Result<Requested> {
    let email = crate::core::domain::EmailAddress::parse(&email.trim().to_lowercase())
        .map_err(|m| invalid("email", m))?;
    let hour = Span(3_600_000);
    let p = &rt.settings.portal;
    for (key, limit) in [
        (
            format!("portal-client:{client}"),
            p.signin_requests_per_client_per_hour,
        ),
        (
            format!("portal-address:{}", email.as_str()),
            p.signin_requests_per_address_per_hour,
        ),
    ] {
        if limit > 0 && !rt.rate_hit(&key, hour, limit).await? {
            tracing::warn!(client, "portal sign-in: over a request limit");
            return Ok(Requested::Limited);
        }
    }
    if let Some(user) = rt
        .store
        .user_by_email(email.as_str())
        .await?
        .filter(UserRow::active)
    {
        let link = issue_link(rt, &user).await?;
        mail_link(rt, &user, &link, None, &Actor::user(&user, client)).await?;
        tracing::info!(user = %user.id, client, "portal sign-in link mailed");
    }
    Ok(Requested::Accepted)
}

/// Whether a sign-in link can still be used (what its page shows); uses nothing.
pub async fn link_usable(rt: &AppState, secret: &str) -> Result<bool> {
    if !plausible_secret(secret) {
        return Ok(false);
    }
    Ok(rt
        .store
        .signin_link_usable(&sha256_hex(secret), rt.clock.now())
        .await?)
}

/// Redeems a sign-in link (once): a new session for its user, from `client`. Returns the user
/// and the session's secret (for the cookie; only its hash is stored). None: unknown, used,
/// expired, or the user is deactivated. Audited as `session.sign_in`.
pub async fn redeem(
    rt: &AppState,
    secret: &str,
    client: &str,
) -> Result<Option<(UserRow, String)>> {
    if !plausible_secret(secret) {
        return Ok(None);
    }
    let now = rt.clock.now();
    let session = super::users::secret();
    let new = NewSession {
        hash: sha256_hex(&session),
        expires_at: now.plus(rt.settings.portal.session_max),
        client: client.to_string(),
    };
    let audit = |u: &UserRow| {
        audit::entry(
            rt,
            &Actor::user(u, client),
            "session.sign_in",
            u.email.as_str(),
            "",
        )
    };
    let Some(user) = rt
        .store
        .redeem_signin_link(&sha256_hex(secret), now, &new, audit)
        .await?
    else {
        return Ok(None);
    };
    tracing::info!(user = %user.id, client, "portal sign-in");
    Ok(Some((user, session)))
}

/// A signed-in user's live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub hash: String,
    pub user: UserRow,
    pub row: SessionRow,
}

/// Why a stored session does not count (or that it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    Live,
    Revoked,
    Deactivated,
    /// Not used for `portal.session_idle`.
    Idle,
    /// Past its absolute expiry (`portal.session_max` after sign-in).
    Expired,
}

/// Decides whether a stored session counts at `now` (pure).
pub fn check_session(s: &SessionRow, u: &UserRow, now: Timestamp, idle: Span) -> SessionCheck {
    if s.revoked_at.is_some() {
        SessionCheck::Revoked
    } else if !u.active() {
        SessionCheck::Deactivated
    } else if now >= s.expires_at {
        SessionCheck::Expired
    } else if now >= s.last_seen_at.plus(idle) {
        SessionCheck::Idle
    } else {
        SessionCheck::Live
    }
}

/// The live session a cookie's secret names, touched (its idle expiry moved on) at most once
/// per [`TOUCH_EVERY`]. None: no such session, or it is revoked, idle, expired, or its user
/// deactivated.
pub async fn session(rt: &AppState, secret: &str) -> Result<Option<Session>> {
    if !plausible_secret(secret) {
        return Ok(None);
    }
    let hash = sha256_hex(secret);
    let Some((row, user)) = rt.store.session(&hash).await? else {
        return Ok(None);
    };
    let now = rt.clock.now();
    if check_session(&row, &user, now, rt.settings.portal.session_idle) != SessionCheck::Live {
        return Ok(None);
    }
    if now >= row.last_seen_at.plus(TOUCH_EVERY) {
        rt.store
            .touch_session(&hash, now, now.plus(Span(-TOUCH_EVERY.0)))
            .await?;
    }
    Ok(Some(Session { hash, user, row }))
}

/// Ends this session (audited as `session.sign_out`).
pub async fn sign_out(rt: &AppState, s: &Session, client: &str) -> Result<()> {
    let by = Actor::user(&s.user, client);
    let audit = audit::entry(rt, &by, "session.sign_out", s.user.email.as_str(), "");
    rt.store
        .revoke_session(&s.hash, rt.clock.now(), &audit)
        .await?;
    Ok(())
}

/// Ends every session of this user, on every device (audited as
/// `session.sign_out_everywhere`, with how many there were).
pub async fn sign_out_everywhere(rt: &AppState, s: &Session, client: &str) -> Result<u64> {
    let by = Actor::user(&s.user, client);
    let audit = audit::entry(
        rt,
        &by,
        "session.sign_out_everywhere",
        s.user.email.as_str(),
        "",
    );
    Ok(rt
        .store
        .revoke_user_sessions(&s.user.id, rt.clock.now(), &audit)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{EmailAddress, Locale, Role};

    fn user(deactivated: Option<i64>) -> UserRow {
        UserRow {
            id: "u1".into(),
            email: EmailAddress::parse("a@b.example").unwrap(),
            name: "A".into(),
            language: Locale::En,
            role: Role::Viewer,
            created_at: Timestamp(0),
            created_by: "cli".into(),
            deactivated_at: deactivated.map(Timestamp),
        }
    }

    fn row(last_seen: i64, expires: i64, revoked: Option<i64>) -> SessionRow {
        SessionRow {
            hash: "h".into(),
            user_id: "u1".into(),
            created_at: Timestamp(0),
            last_seen_at: Timestamp(last_seen),
            expires_at: Timestamp(expires),
            revoked_at: revoked.map(Timestamp),
            client: "c".into(),
        }
    }

    #[test]
    fn a_session_counts_until_idle_expiry_absolute_expiry_revocation_or_deactivation() {
        let idle = Span(100);
        let u = user(None);
        assert_eq!(
            check_session(&row(0, 1000, None), &u, Timestamp(99), idle),
            SessionCheck::Live
        );
        assert_eq!(
            check_session(&row(0, 1000, None), &u, Timestamp(100), idle),
            SessionCheck::Idle
        );
        assert_eq!(
            check_session(&row(950, 1000, None), &u, Timestamp(1000), idle),
            SessionCheck::Expired
        );
        assert_eq!(
            check_session(&row(0, 1000, Some(5)), &u, Timestamp(10), idle),
            SessionCheck::Revoked
        );
        assert_eq!(
            check_session(&row(0, 1000, None), &user(Some(5)), Timestamp(10), idle),
            SessionCheck::Deactivated
        );
    }

    #[test]
    fn only_plausible_secrets_are_looked_up() {
        assert!(plausible_secret(&super::super::users::secret()));
        for bad in [
            "",
            "short",
            "../../etc/passwd/aaaaaaaaaaaaaaaaaaa",
            &"A".repeat(33),
        ] {
            assert!(!plausible_secret(bad), "{bad}");
        }
    }
}
