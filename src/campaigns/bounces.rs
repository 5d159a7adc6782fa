//! Bounce messages: matched to a message we sent (Message-ID and recipient), then the ledger
//! row and the suppression list change; unmatched ones are kept and change nothing.

use crate::app::AppState;

use super::*;

/// What ingesting one bounce message did, per failed recipient.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct BounceResult {
    pub recipient: Option<String>,
    pub message_id: Option<String>,
    pub kind: crate::core::bounces::BounceKind,
    pub status: String,
    /// The campaign recipient it matched (campaign, line), if any.
    #[schema(value_type = Option<Vec<Object>>, example = json!(["in_abcdefghjklmnpqrstu", 2]))]
    pub matched: Option<(String, i64)>,
    /// The lifecycle email it matched (its Message-ID), if any.
    pub matched_email: Option<String>,
    /// Why it matches no message we sent (then nothing was changed or suppressed); it is
    /// kept for `bounces list --unmatched`.
    pub unmatched: Option<String>,
    pub suppressed: bool,
}

/// Ingests one raw bounce (a delivery status notification). Each failed recipient is
/// matched to a message we sent: its returned Message-ID must be one of ours (a campaign
/// invitation or reminder, or a lifecycle email) that was handed to the transport, and the
/// failed recipient must be that message's recipient. Only then does a hard bounce make the
/// campaign recipient `bounced` and suppress the address, and a soft one count. Bounces
/// that match nothing change nothing; every bounce is kept (`bounces list`). A DSN naming
/// more than [`crate::core::bounces::MAX_RECIPIENTS`] recipients is refused whole.
pub async fn ingest_bounce(rt: &AppState, raw: &[u8], source: &str) -> Result<Vec<BounceResult>> {
    use crate::store::BounceTarget;
    let bounces =
        crate::core::bounces::parse(raw).map_err(|e| CampaignError::Invalid(e.to_string()))?;
    let now = rt.clock.now();
    let mut out = Vec::new();
    for b in bounces {
        let hard = b.kind == crate::core::bounces::BounceKind::Hard;
        let detail = format!(
            "{} bounce {}{}",
            if hard { "hard" } else { "soft" },
            b.status,
            b.diagnostic
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
        let target = match (&b.message_id, &b.recipient) {
            (None, _) => Err("no Message-ID of the returned message".to_string()),
            (_, None) => Err("no Final-Recipient".to_string()),
            (Some(id), Some(rcpt)) => rt.store.match_bounce(id, rcpt).await?,
        };
        let mut result = BounceResult {
            recipient: b.recipient.clone(),
            message_id: b.message_id.clone(),
            kind: b.kind,
            status: b.status.clone(),
            matched: None,
            matched_email: None,
            unmatched: None,
            suppressed: false,
        };
        let matched = match target {
            Ok(t) => {
                let key = match &t {
                    BounceTarget::Campaign {
                        campaign_id,
                        seq,
                        email_key,
                    } => {
                        rt.store
                            .record_campaign_bounce(campaign_id, *seq, hard, &detail, now)
                            .await?;
                        result.matched = Some((campaign_id.clone(), *seq));
                        email_key.clone()
                    }
                    BounceTarget::Email {
                        message_id,
                        email_key,
                    } => {
                        result.matched_email = Some(message_id.clone());
                        email_key.clone()
                    }
                };
                if hard {
                    result.suppressed = rt.store.suppress(&key, &detail, source, now).await?;
                    rt.store.suppress_pending_address(&key, now).await?;
                }
                Some(match &t {
                    BounceTarget::Campaign {
                        campaign_id, seq, ..
                    } => format!("campaign {campaign_id} line {seq}"),
                    BounceTarget::Email { message_id, .. } => format!("email {message_id}"),
                })
            }
            Err(reason) => {
                tracing::info!(
                    message_id = b.message_id.as_deref().unwrap_or("-"),
                    %reason,
                    "bounce matches no message we sent; not acted on"
                );
                result.unmatched = Some(reason);
                None
            }
        };
        let matched_label = match (&result.matched, &result.matched_email) {
            (Some(_), _) => "campaign",
            (None, Some(_)) => "email",
            (None, None) => "none",
        };
        metrics::counter!(crate::core::metric_names::BOUNCES,
            "kind" => if hard { "hard" } else { "soft" }, "matched" => matched_label)
        .increment(1);
        rt.store
            .insert_bounce(&crate::store::BounceRow {
                received_at: now,
                source: source.to_string(),
                kind: if hard { "hard" } else { "soft" }.into(),
                status: b.status,
                message_id: b.message_id,
                recipient: b.recipient,
                diagnostic: b.diagnostic,
                matched,
                reason: result.unmatched.clone(),
                suppressed: result.suppressed,
            })
            .await?;
        out.push(result);
    }
    Ok(out)
}

/// Bounce messages received, newest first (only those that matched no message we sent, with
/// `unmatched_only`), and how many matched none in all.
pub async fn list_bounces(
    rt: &AppState,
    unmatched_only: bool,
    limit: i64,
) -> Result<(Vec<crate::store::BounceRow>, i64)> {
    let rows = rt.store.bounces(unmatched_only, limit).await?;
    let unmatched = rt.store.unmatched_bounce_count().await?;
    Ok((rows, unmatched))
}
