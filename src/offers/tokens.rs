//! API tokens: made once (only a hash is stored), checked per request.

use crate::app::AppState;
use crate::core::domain::{Role, random_base32};
use crate::core::links::{constant_time_eq, sha256_hex};
use crate::store::{StoreError, TokenRow};

use super::*;

/// Creates an API token; the secret is returned once and only its SHA-256 is stored.
/// Format: `pf_<id>_<secret>`.
pub async fn create_token(rt: &AppState, name: &str, role: Role) -> Result<(TokenRow, String)> {
    let name = crate::core::domain::parse_name(name, 100).map_err(|m| invalid("name", m))?;
    let id = format!("t{}", random_base32(10).to_ascii_lowercase());
    let secret = random_base32(32).to_ascii_lowercase();
    let row = TokenRow {
        id: id.clone(),
        name,
        role: role.as_str().into(),
        secret_hash: sha256_hex(&secret),
        created_at: rt.clock.now(),
        revoked_at: None,
    };
    rt.store.insert_token(&row).await?;
    Ok((row, format!("pf_{id}_{secret}")))
}

/// Every API token (revoked ones too), oldest first; secrets are not kept, only their hashes.
pub async fn tokens(rt: &AppState) -> Result<Vec<TokenRow>> {
    Ok(rt.store.tokens().await?)
}

/// Revokes a token at once; false if there is none with this id or it was revoked already.
pub async fn revoke_token(rt: &AppState, id: &str) -> Result<bool> {
    Ok(rt.store.revoke_token(id.trim(), rt.clock.now()).await?)
}

/// The role of a presented token, or None (unknown, revoked, wrong secret).
pub async fn authenticate(rt: &AppState, token: &str) -> Result<Option<(String, Role)>> {
    let Some(rest) = token.strip_prefix("pf_") else {
        return Ok(None);
    };
    let Some((id, secret)) = rest.split_once('_') else {
        return Ok(None);
    };
    if id.len() > 32 || !id.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let Some(t) = rt.store.token(id).await? else {
        return Ok(None);
    };
    if t.revoked_at.is_some() || !constant_time_eq(&t.secret_hash, &sha256_hex(secret)) {
        return Ok(None);
    }
    let role = Role::parse(&t.role).map_err(|e| StoreError::Corrupt(format!("token role: {e}")))?;
    Ok(Some((format!("token:{}", t.id), role)))
}
