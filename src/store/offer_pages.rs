//! What the portal's offer pages read beyond the offer's tracking view: the campaigns that
//! carried an offer and the bounces matched to its invitations' emails.

use sqlx::Row;

use super::campaigns::{CAMPAIGN_COLS, campaign_row};
use super::{BounceRow, Result, Store};
use crate::core::campaign::CampaignRow;
use crate::core::domain::{OfferId, Timestamp};

impl Store {
    /// The campaigns of an offer, newest first.
    pub async fn campaigns_of_offer(&self, offer: &OfferId) -> Result<Vec<CampaignRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE offer_id = $1 ORDER BY created_at DESC, id"
        )))
        .bind(offer.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_row).collect()
    }

    /// The bounces matched to the email with this Message-ID, oldest first.
    pub async fn bounces_of_message(&self, message_id: &str) -> Result<Vec<BounceRow>> {
        let rows = sqlx::query(
            "SELECT received_at, source, kind, status, message_id, recipient, diagnostic, matched, reason, suppressed
             FROM bounces WHERE message_id = $1 AND matched IS NOT NULL ORDER BY received_at, id",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BounceRow {
                    received_at: Timestamp(r.try_get("received_at")?),
                    source: r.try_get("source")?,
                    kind: r.try_get("kind")?,
                    status: r.try_get("status")?,
                    message_id: r.try_get("message_id")?,
                    recipient: r.try_get("recipient")?,
                    diagnostic: r.try_get("diagnostic")?,
                    matched: r.try_get("matched")?,
                    reason: r.try_get("reason")?,
                    suppressed: r.try_get::<i64, _>("suppressed")? != 0,
                })
            })
            .collect()
    }
}
