//! Reports: the portal overview's figures, each one aggregate statement (GROUP BY over index
//! ranges; no rows are loaded but the handful shown), and the first open of an offer's link.

use sqlx::Row;

use super::*;
use crate::core::domain::{OfferKind, Timestamp};
use crate::core::overview::{
    CampaignProgress, Funnel, FunnelFilter, RelationshipExpiry, StateCount,
};

/// The invitation workflows; each sends the invitation email of the same name.
const INVITATIONS: &str = "('trial_invitation', 'purchase_offer', 'admin_offer')";

fn kind_of(s: &str) -> Option<OfferKind> {
    OfferKind::parse(s).ok().or_else(|| {
        OfferKind::ALL
            .into_iter()
            .find(|k| k.invitation_workflow() == s)
    })
}

fn add(
    out: &mut [(OfferKind, Funnel)],
    rows: Vec<sqlx::any::AnyRow>,
    f: impl Fn(&mut Funnel, i64),
) -> Result<()> {
    for r in rows {
        let k: String = r.try_get(0)?;
        let n: i64 = r.try_get(1)?;
        let Some(kind) = kind_of(&k) else {
            return Err(StoreError::Corrupt(format!("offer kind `{k}`")));
        };
        if let Some((_, fun)) = out.iter_mut().find(|(x, _)| *x == kind) {
            f(fun, n);
        }
    }
    Ok(())
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
                    (SELECT COUNT(*) FROM campaign_recipients r WHERE r.campaign_id = c.id),
                    (SELECT COUNT(*) FROM campaign_recipients r WHERE r.campaign_id = c.id AND r.state = 'pending')
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
    /// is applied by the caller).
    pub async fn funnel(&self, f: &FunnelFilter) -> Result<Vec<(OfferKind, Funnel)>> {
        let mut out: Vec<(OfferKind, Funnel)> = OfferKind::ALL
            .into_iter()
            .map(|k| (k, Funnel::default()))
            .collect();
        let loc = f.location.clone().unwrap_or_default();
        let (from, to) = (f.from.0, f.to.0);

        // Lifecycle invitations sent: a range of (template, sent_at) per template; with a
        // location, from that location's offers to their invitations' emails.
        let sent = if loc.is_empty() {
            format!(
                "SELECT template, COUNT(*) FROM emails
                  WHERE template IN {INVITATIONS} AND sent_at >= $1 AND sent_at < $2 AND $3 = ''
                  GROUP BY template"
            )
        } else {
            format!(
                "SELECT o.kind, COUNT(*) FROM offers o
                   JOIN invitations i ON i.offer_id = o.offer_id
                   JOIN emails e ON e.instance_id = i.instance_id
                  WHERE o.location_id = $3 AND e.sent_at + 0 >= $1 AND e.sent_at + 0 < $2
                    AND e.template || '' IN {INVITATIONS}
                  GROUP BY o.kind"
            )
        };
        // Campaign messages sent (and hard-bounced), grouped per campaign first.
        let campaign = "SELECT o.kind, CAST(SUM(x.n) AS BIGINT), CAST(SUM(x.b) AS BIGINT) FROM
               (SELECT campaign_id, COUNT(*) AS n, SUM(CASE WHEN state = 'bounced' THEN 1 ELSE 0 END) AS b
                  FROM campaign_recipients WHERE sent_at >= $1 AND sent_at < $2 GROUP BY campaign_id) x
               JOIN campaigns c ON c.id = x.campaign_id
               JOIN offers o ON o.offer_id = c.offer_id
              WHERE ($3 = '' OR o.location_id = $3)
              GROUP BY o.kind";
        // Hard bounces of lifecycle invitations received in the period.
        let bounced = format!(
            "SELECT o.kind, COUNT(*) FROM bounces b
               JOIN emails e ON e.message_id = substr(b.matched, 7)
               JOIN invitations i ON i.instance_id = e.instance_id
               JOIN offers o ON o.offer_id = i.offer_id
              WHERE b.matched LIKE 'email %' AND b.kind = 'hard'
                AND b.received_at >= $1 AND b.received_at < $2
                AND e.template IN {INVITATIONS} AND ($3 = '' OR o.location_id = $3)
              GROUP BY o.kind"
        );
        // Links first opened, acceptances confirmed, acceptances completed.
        let opened = "SELECT kind, COUNT(*) FROM offer_opens
                  WHERE opened_at >= $1 AND opened_at < $2 AND ($3 = '' OR location_id = $3)
                  GROUP BY kind";
        let accepted = "SELECT o.kind, COUNT(*) FROM acceptances a JOIN offers o ON o.offer_id = a.offer_id
                  WHERE a.confirmed_at >= $1 AND a.confirmed_at < $2 AND ($3 = '' OR o.location_id = $3)
                  GROUP BY o.kind";
        let completed = "SELECT o.kind, COUNT(*) FROM instances s
                   JOIN acceptances a ON a.instance_id = s.id
                   JOIN offers o ON o.offer_id = a.offer_id
                  WHERE s.workflow = 'acceptance' AND s.state = 'completed'
                    AND s.final_at >= $1 AND s.final_at < $2 AND ($3 = '' OR o.location_id = $3)
                  GROUP BY o.kind";
        // The six counts at once (each on a connection of its own: readers do not wait for
        // each other).
        let statements = [
            sent,
            campaign.to_string(),
            bounced,
            opened.to_string(),
            accepted.to_string(),
            completed.to_string(),
        ];
        let mut results = futures::future::try_join_all(statements.into_iter().map(|sql| {
            let loc = loc.clone();
            async move {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(from)
                    .bind(to)
                    .bind(loc)
                    .fetch_all(&self.pool)
                    .await
            }
        }))
        .await?
        .into_iter();
        let mut next = || results.next().unwrap_or_default();
        add(&mut out, next(), |x, n| {
            x.sent += n;
            x.delivered += n
        })?;
        for r in next() {
            let k: String = r.try_get(0)?;
            let n: i64 = r.try_get::<Option<i64>, _>(1)?.unwrap_or(0);
            let b: i64 = r.try_get::<Option<i64>, _>(2)?.unwrap_or(0);
            let kind = kind_of(&k).ok_or_else(|| StoreError::Corrupt(format!("kind `{k}`")))?;
            if let Some((_, x)) = out.iter_mut().find(|(q, _)| *q == kind) {
                x.sent += n;
                x.delivered += n - b;
            }
        }
        add(&mut out, next(), |x, n| x.delivered -= n)?;
        add(&mut out, next(), |x, n| x.opened += n)?;
        add(&mut out, next(), |x, n| x.accepted += n)?;
        add(&mut out, next(), |x, n| x.completed += n)?;
        for (_, x) in &mut out {
            x.delivered = x.delivered.max(0);
        }
        Ok(out)
    }
}
