//! Partner locations, as the daily sync left them.

use sqlx::Row;

use super::*;
use crate::core::domain::Timestamp;
use crate::core::offer::Location;

impl Store {
    /// Upserts what a sync saw. Returns (new, updated).
    pub async fn upsert_locations(&self, locs: &[Location], now: Timestamp) -> Result<(u64, u64)> {
        let mut tx = self.begin_write().await?;
        let (mut new, mut updated) = (0, 0);
        for l in locs {
            let existed = sqlx::query("SELECT 1 FROM locations WHERE id = $1")
                .bind(&l.id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            // Seen again: available again (a later removal is told again).
            sqlx::query(
                "INSERT INTO locations (id, name, country, partner_id, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, country = excluded.country, partner_id = excluded.partner_id, last_seen_at = excluded.last_seen_at, removed_at = NULL",
            )
            .bind(&l.id)
            .bind(&l.name)
            .bind(&l.country)
            .bind(&l.partner_id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            if existed { updated += 1 } else { new += 1 }
        }
        tx.commit().await?;
        Ok((new, updated))
    }

    /// Locations still available (listed by the latest sync), with when each was first seen.
    pub async fn locations(&self) -> Result<Vec<(Location, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT id, name, country, partner_id, first_seen_at FROM locations WHERE removed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    Location {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        country: r.try_get(2)?,
                        partner_id: r.try_get(3)?,
                    },
                    Timestamp(r.try_get(4)?),
                ))
            })
            .collect()
    }

    /// Locations that a sync at `at` did not list and that are not marked removed yet.
    pub async fn unlisted_locations(&self, at: Timestamp) -> Result<Vec<Location>> {
        let rows = sqlx::query(
            "SELECT id, name, country, partner_id FROM locations WHERE last_seen_at < $1 AND removed_at IS NULL ORDER BY id",
        )
        .bind(at.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Location {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    country: r.try_get(2)?,
                    partner_id: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// When a location was marked removed (None: available, or never synced).
    pub async fn location_removed_at(&self, id: &str) -> Result<Option<Timestamp>> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT removed_at FROM locations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten().map(Timestamp))
    }
}
