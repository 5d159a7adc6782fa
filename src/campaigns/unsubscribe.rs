//! Unsubscribe links (signed, per recipient) and what a verified one does.

use crate::app::AppState;

use super::*;

/// The signed unsubscribe link of a recipient (`/u/{token}`).
pub fn unsubscribe_url(rt: &AppState, campaign: &str, seq: i64) -> String {
    let token = rt.keys.sign(
        crate::core::links::Purpose::Unsubscribe,
        &format!("{campaign}_{seq}"),
        &[],
    );
    crate::offers::link_for(rt, "u", &token)
}

/// Whose a verified unsubscribe token is: (campaign, seq, email). None for any bad token
/// (one answer for all: no oracle).
pub async fn unsubscribe_target(
    rt: &AppState,
    token: &str,
) -> Result<Option<(String, i64, String)>> {
    let Ok(p) = crate::core::links::KeyRing::split(token) else {
        return Ok(None);
    };
    if rt
        .keys
        .verify(crate::core::links::Purpose::Unsubscribe, &p, &[])
        .is_err()
    {
        return Ok(None);
    }
    let Some((campaign, seq)) = p.subject.rsplit_once('_') else {
        return Ok(None);
    };
    let Ok(seq) = seq.parse::<i64>() else {
        return Ok(None);
    };
    Ok(rt
        .store
        .recipient_email(campaign, seq)
        .await?
        .map(|(email, _)| (campaign.to_string(), seq, email)))
}

/// One click: the address is suppressed (no campaign mails it again) and its pending rows
/// are marked. Idempotent. Returns the address, or None for a bad token.
pub async fn unsubscribe(rt: &AppState, token: &str) -> Result<Option<String>> {
    let Some((campaign, seq, email)) = unsubscribe_target(rt, token).await? else {
        return Ok(None);
    };
    let key = email.to_lowercase();
    let now = rt.clock.now();
    let reason = format!("unsubscribed ({campaign} line {seq})");
    if rt.store.suppress(&key, &reason, "unsubscribe", now).await? {
        tracing::info!(campaign = %campaign, seq, "recipient unsubscribed");
    }
    rt.store.suppress_pending_address(&key, now).await?;
    Ok(Some(email))
}

/// An address no campaign mails.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suppression {
    pub email: String,
    pub reason: String,
    /// Who added it: `unsubscribe`, `bounce`, `operator`.
    pub source: String,
    pub at: Timestamp,
}

/// The suppression list, newest first.
pub async fn suppressions(rt: &AppState, limit: i64) -> Result<Vec<Suppression>> {
    Ok(rt
        .store
        .suppressions(limit)
        .await?
        .into_iter()
        .map(|(email, reason, source, at)| Suppression {
            email,
            reason,
            source,
            at,
        })
        .collect())
}

/// An operator suppresses an address: no campaign mails it again, and its recipients still
/// pending in running campaigns are suppressed now. Returns whether it is new to the list and
/// how many pending recipients it took out.
pub async fn suppress(
    rt: &AppState,
    email: &crate::core::domain::EmailAddress,
    reason: &str,
) -> Result<(bool, u64)> {
    let key = email.as_str().to_lowercase();
    let now = rt.clock.now();
    let new = rt.store.suppress(&key, reason, "operator", now).await?;
    let n = rt.store.suppress_pending_address(&key, now).await?;
    Ok((new, n))
}
