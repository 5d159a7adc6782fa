//! Reports: the portal overview's figures, each one aggregate statement (GROUP BY over index
//! ranges; no rows are loaded but the handful shown), and the first open of an offer's link.

use sqlx::Row;

use super::*;
use crate::core::domain::{OfferKind, Timestamp};
use crate::core::overview::{
    CampaignProgress, Funnel, FunnelFilter, RelationshipExpiry, StateCount,
};

/// A UTC day and an hour, in ms (timestamps are ms since the epoch).
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

/// The invitation workflows; each sends the invitation email of the same name.
const INVITATIONS: &str = "('trial_invitation', 'purchase_offer', 'admin_offer')";

fn kind_of(s: &str) -> Option<OfferKind> {
    OfferKind::parse(s).ok().or_else(|| {
        OfferKind::ALL
            .into_iter()
            .find(|k| k.invitation_workflow() == s)
    })
}

impl Store {
    /// Records the first time an offer's page was shown (later opens change nothing).
    pub async fn record_offer_open(
        &self,
        offer_id: &str,
        kind: OfferKind,
        location_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO offer_opens (offer_id, kind, location_id, opened_at) VALUES ($1, $2, $3, $4) ON CONFLICT (offer_id) DO NOTHING",
        )
        .bind(offer_id)
        .bind(kind.as_str())
        .bind(location_id)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Lifecycles by state: offers and invitations still open, every acceptance and
    /// delegated-admin relationship.
    pub async fn overview_states(&self) -> Result<Vec<StateCount>> {
        let sql = format!(
            "SELECT workflow, state, COUNT(*) FROM instances WHERE workflow = 'offer' AND state IN ('created', 'open') GROUP BY workflow, state
             UNION ALL
             SELECT workflow, state, COUNT(*) FROM instances WHERE workflow IN {INVITATIONS} AND state IN ('created', 'invited') GROUP BY workflow, state
             UNION ALL
             SELECT workflow, state, COUNT(*) FROM instances WHERE workflow IN ('acceptance', 'delegated_admin') GROUP BY workflow, state"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StateCount {
                    workflow: r.try_get(0)?,
                    state: r.try_get(1)?,
                    n: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The next `limit` ends of delegated-admin relationships (their `end` timers).
    pub async fn next_relationship_ends(&self, limit: i64) -> Result<Vec<RelationshipExpiry>> {
        let rows = sqlx::query(
            // CROSS JOIN: the scheduled jobs in time order first (SQLite keeps the order; the
            // key names the timer, so no kind filter makes it prefer another index), so the
            // search stops after `limit` ends.
            "SELECT j.subject, j.run_at, i.data FROM jobs j CROSS JOIN instances i
              WHERE i.id = j.subject AND j.state = 'scheduled'
                AND j.key LIKE 'timer:%:end' AND i.workflow = 'delegated_admin'
              ORDER BY j.run_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let data: String = r.try_get(2)?;
                let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                Ok(RelationshipExpiry {
                    instance_id: r.try_get(0)?,
                    ends_at: Timestamp(r.try_get(1)?),
                    customer: s("domain")
                        .or_else(|| s("customer_name"))
                        .or_else(|| s("customer_email"))
                        .unwrap_or_default(),
                    role: s("role").unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Running campaigns (oldest first, at most `limit`) with their recipients and how many
    /// are no longer pending (sent, being sent, failed, bounced, …).
    pub async fn running_campaign_progress(&self, limit: i64) -> Result<Vec<CampaignProgress>> {
        let rows = sqlx::query(
            "SELECT c.id, c.name, c.offer_id,
                    (SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) FROM campaign_tallies t WHERE t.campaign_id = c.id),
                    (SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) FROM campaign_tallies t WHERE t.campaign_id = c.id AND t.state = 'pending')
               FROM campaigns c WHERE c.state = 'running' ORDER BY c.created_at, c.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let total: i64 = r.try_get(3)?;
                let waiting = r.try_get::<i64, _>(4)?;
                Ok(CampaignProgress {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    offer_id: r.try_get(2)?,
                    total,
                    done: total - waiting,
                })
            })
            .collect()
    }

    /// The funnel of a period per offer kind (every kind, zeros included; the kind filter
    /// is applied by the caller). The period is taken as the UTC days it touches. Days
    /// rolled up ([`Store::roll_up_funnel`]) are summed from `funnel_days`, the rest (today,
    /// usually) counted from the ledgers; campaign messages come from the campaigns' tallies.
    pub async fn funnel(&self, f: &FunnelFilter) -> Result<Vec<(OfferKind, Funnel)>> {
        let mut out: Vec<(OfferKind, Funnel)> = OfferKind::ALL
            .into_iter()
            .map(|k| (k, Funnel::default()))
            .collect();
        let loc = f.location.clone().unwrap_or_default();
        let (d0, d1) = (f.from.0.div_euclid(DAY), (f.to.0 + DAY - 1).div_euclid(DAY));
        let upto = self.funnel_rolled_upto().await?.unwrap_or(d0);
        let mid = upto.clamp(d0, d1);
        let rolled = "SELECT kind, CAST(SUM(sent) AS BIGINT), CAST(SUM(bounced) AS BIGINT),
                    CAST(SUM(opened) AS BIGINT), CAST(SUM(accepted) AS BIGINT), CAST(SUM(completed) AS BIGINT)
               FROM funnel_days WHERE day >= $1 AND day < $2 AND ($3 = '' OR location_id = $3)
              GROUP BY kind"
            .to_string();
        let live = format!(
            "SELECT kind, CAST(SUM(sent) AS BIGINT), CAST(SUM(bounced) AS BIGINT),
                    CAST(SUM(opened) AS BIGINT), CAST(SUM(accepted) AS BIGINT), CAST(SUM(completed) AS BIGINT)
               FROM ({}) ev WHERE $3 = '' OR location_id = $3
              GROUP BY kind",
            funnel_events()
        );
        // Campaign messages sent on those days, and how many of them hard-bounced.
        let campaign = "SELECT o.kind, CAST(SUM(t.n) AS BIGINT),
                    CAST(SUM(CASE WHEN t.state = 'bounced' THEN t.n ELSE 0 END) AS BIGINT),
                    CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)
               FROM campaign_tallies t
               JOIN campaigns c ON c.id = t.campaign_id
               JOIN offers o ON o.offer_id = c.offer_id
              WHERE t.sent_day >= $1 AND t.sent_day < $2 AND ($3 = '' OR o.location_id = $3)
              GROUP BY o.kind"
            .to_string();
        let statements = [
            (rolled, d0, mid),
            (live, mid * DAY, d1 * DAY),
            (campaign, d0, d1),
        ];
        // At once, each on a connection of its own (readers do not wait for each other).
        let results = futures::future::try_join_all(statements.into_iter().map(|(sql, a, b)| {
            let loc = loc.clone();
            async move {
                if a >= b {
                    return Ok(vec![]);
                }
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(a)
                    .bind(b)
                    .bind(loc)
                    .fetch_all(&self.pool)
                    .await
            }
        }))
        .await?;
        for r in results.into_iter().flatten() {
            let k: String = r.try_get(0)?;
            let kind = kind_of(&k).ok_or_else(|| StoreError::Corrupt(format!("kind `{k}`")))?;
            let n = |i: usize| -> Result<i64> { Ok(r.try_get::<Option<i64>, _>(i)?.unwrap_or(0)) };
            if let Some((_, x)) = out.iter_mut().find(|(q, _)| *q == kind) {
                x.sent += n(1)?;
                x.delivered += n(1)? - n(2)?;
                x.opened += n(3)?;
                x.accepted += n(4)?;
                x.completed += n(5)?;
            }
        }
        for (_, x) in &mut out {
            x.delivered = x.delivered.max(0);
        }
        Ok(out)
    }

    /// The first day not rolled up into `funnel_days` (None: none yet).
    async fn funnel_rolled_upto(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT upto FROM funnel_rollup WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    /// Rolls the funnel's days that ended at least an hour before `now` up into
    /// `funnel_days` (a day's events are stamped when they happen, so a day over is final;
    /// the hour covers transactions stamped before midnight and committed after). A month per
    /// transaction. Every node may call it: each step moves `funnel_rollup.upto` from the value
    /// it read, so when two race, one rolls and the other stops. Returns the days rolled up.
    pub async fn roll_up_funnel(&self, now: Timestamp) -> Result<i64> {
        let end = (now.0 - HOUR).div_euclid(DAY);
        let mut upto = match self.funnel_rolled_upto().await? {
            Some(u) => u,
            None => {
                let first = format!(
                    "SELECT MIN(t) FROM (
                        SELECT MIN(sent_at) AS t FROM emails WHERE template IN {INVITATIONS}
                        UNION ALL SELECT MIN(received_at) FROM bounces
                        UNION ALL SELECT MIN(opened_at) FROM offer_opens
                        UNION ALL SELECT MIN(confirmed_at) FROM acceptances
                        UNION ALL SELECT MIN(final_at) FROM instances WHERE workflow = 'acceptance' AND state = 'completed') x"
                );
                let first: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(first))
                    .fetch_one(&self.pool)
                    .await?;
                let start = first.map_or(end, |t| t.div_euclid(DAY).min(end));
                let r =
                    sqlx::query("UPDATE funnel_rollup SET upto = $1 WHERE id = 1 AND upto IS NULL")
                        .bind(start)
                        .execute(&self.pool)
                        .await?;
                if r.rows_affected() == 0 {
                    return Ok(0);
                }
                start
            }
        };
        let mut rolled = 0;
        let insert = format!(
            "INSERT INTO funnel_days (day, kind, location_id, sent, bounced, opened, accepted, completed)
             SELECT t / {DAY}, kind, location_id, SUM(sent), SUM(bounced), SUM(opened), SUM(accepted), SUM(completed)
               FROM ({}) ev GROUP BY t / {DAY}, kind, location_id",
            funnel_events()
        );
        while upto < end {
            let next = (upto + 31).min(end);
            let mut tx = self.begin_write().await?;
            let r = sqlx::query("UPDATE funnel_rollup SET upto = $1 WHERE id = 1 AND upto = $2")
                .bind(next)
                .bind(upto)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(rolled);
            }
            sqlx::query("DELETE FROM funnel_days WHERE day >= $1 AND day < $2")
                .bind(upto)
                .bind(next)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
                .bind(upto * DAY)
                .bind(next * DAY)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            rolled += next - upto;
            upto = next;
        }
        Ok(rolled)
    }
}

/// The funnel's events between $1 and $2 (ms), one row each: its time `t`, the offer's kind
/// and location, and a 1 in the stage it counts. Lifecycle invitations sent (an invitation
/// started without an offer counts under its workflow's kind, no location), hard bounces
/// received for them, offers' links first opened, acceptances confirmed and completed.
/// Campaign messages are counted from the campaigns' tallies instead.
fn funnel_events() -> String {
    format!(
        "SELECT e.sent_at AS t, COALESCE(o.kind, e.template) AS kind, COALESCE(o.location_id, '') AS location_id,
                1 AS sent, 0 AS bounced, 0 AS opened, 0 AS accepted, 0 AS completed
           FROM emails e
           LEFT JOIN invitations i ON i.instance_id = e.instance_id
           LEFT JOIN offers o ON o.offer_id = i.offer_id
          WHERE e.template IN {INVITATIONS} AND e.sent_at >= $1 AND e.sent_at < $2
         UNION ALL
         SELECT b.received_at, COALESCE(o.kind, e.template), COALESCE(o.location_id, ''), 0, 1, 0, 0, 0
           FROM bounces b
           JOIN emails e ON e.message_id = substr(b.matched, 7)
           LEFT JOIN invitations i ON i.instance_id = e.instance_id
           LEFT JOIN offers o ON o.offer_id = i.offer_id
          WHERE b.matched LIKE 'email %' AND b.kind = 'hard'
            AND b.received_at >= $1 AND b.received_at < $2 AND e.template IN {INVITATIONS}
         UNION ALL
         SELECT opened_at, kind, location_id, 0, 0, 1, 0, 0
           FROM offer_opens WHERE opened_at >= $1 AND opened_at < $2
         UNION ALL
         SELECT a.confirmed_at, o.kind, o.location_id, 0, 0, 0, 1, 0
           FROM acceptances a JOIN offers o ON o.offer_id = a.offer_id
          WHERE a.confirmed_at >= $1 AND a.confirmed_at < $2
         UNION ALL
         SELECT s.final_at, o.kind, o.location_id, 0, 0, 0, 0, 1
           FROM instances s
           JOIN acceptances a ON a.instance_id = s.id
           JOIN offers o ON o.offer_id = a.offer_id
          WHERE s.workflow = 'acceptance' AND s.state = 'completed'
            AND s.final_at >= $1 AND s.final_at < $2"
    )
}
