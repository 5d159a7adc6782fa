//! The portal's reseller list: MPN IDs a page at a time (keyset on the primary key).

use sqlx::Row;

use super::{Result, Store, StoreError};
use crate::core::domain::MpnId;

impl Store {
    /// Up to `limit` resellers' MPN IDs after `after` (exclusive), ascending.
    pub async fn reseller_ids_after(
        &self,
        after: Option<&MpnId>,
        limit: i64,
    ) -> Result<Vec<MpnId>> {
        let rows =
            sqlx::query("SELECT mpn_id FROM resellers WHERE mpn_id > $1 ORDER BY mpn_id LIMIT $2")
                .bind(after.map(MpnId::as_str).unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let m: String = r.try_get(0)?;
                MpnId::parse(&m).map_err(|e| StoreError::Corrupt(format!("mpn_id: {e}")))
            })
            .collect()
    }
}
