//! `bench portal`'s database: a year of partner business generated in SQL in one
//! transaction (SQLite), so the portal's pages can be timed at scale.

use super::*;
use crate::core::domain::Timestamp;

/// What `bench portal` seeded.
#[derive(Debug, Clone, Default)]
pub struct BenchSeed {
    pub offers: i64,
    pub invitations: i64,
    pub acceptances: i64,
    pub relationships: i64,
    pub emails: i64,
    pub campaign_recipients: i64,
    pub opens: i64,
    pub timers: i64,
}

/// `bench portal`'s data, generated in SQL (a recursive counter, `INSERT … SELECT`), spread
/// over the year before `now`: `offers` offers (a third of each kind, over 20 locations;
/// open for 30 days), 0.35 invitations per ledger row spread over them (their lifecycles),
/// one acceptance per ten invitations (20 % unconfirmed, 20 % submitted, 50 % completed,
/// 10 % abandoned) with three emails each, a delegated-admin relationship per fourth
/// acceptance (active ones with their `end` timer), first opens of 60 % of the offers, 50
/// campaigns (2 running) of 2,000 recipients but the first, which has `big_campaign` recipients
/// (half sent, the last of them in the minutes before `now`), and lifecycle emails to `ledger` rows in all
/// (invitations, reminders for half, acceptance emails, partner notices); a week of finished
/// email jobs (201,600, one in 400 failed).
const SEED: &[&str] = &[
    "INSERT INTO locations (id, name, country, partner_id, first_seen_at, last_seen_at)
     SELECT 'bench-loc-' || i, 'Bench ' || i, 'DE', 'bench', :now, :now FROM n WHERE i < 20",
    "INSERT INTO offers (offer_id, instance_id, kind, location_id, country, products, delegated_admin, key_id, link, message, created_by, created_at, expires_at)
     SELECT 'PF-B' || replace(replace(printf('%011d', i), '0', 'Z'), '1', 'Y'), 'in_o' || i, CASE i % 3 WHEN 0 THEN 'trial' WHEN 1 THEN 'purchase' ELSE 'delegated_admin' END,
            'bench-loc-' || (i % 20), 'DE', '[]', 'limited', 'k1', 'https://bench.example/o/' || i, NULL, 'bench',
            :now - i * (:year / :offers), :now - i * (:year / :offers) + 2592000000
       FROM n WHERE i < :offers",
    "INSERT INTO instances (id, workflow, state, version, data, locale, created_at, updated_at, final_at)
     SELECT instance_id, 'offer', CASE WHEN expires_at > :now THEN 'open' ELSE 'expired' END, 2, '{}', 'de', created_at, created_at,
            CASE WHEN expires_at > :now THEN NULL ELSE expires_at END
       FROM offers WHERE created_by = 'bench'",
    "INSERT INTO jobs (key, kind, subject, payload, state, run_at, max_attempts, created_at, updated_at)
     SELECT 'timer:' || instance_id || ':expiry', 'timer', instance_id, '{}', 'scheduled', expires_at, 5, created_at, created_at
       FROM offers WHERE created_by = 'bench' AND expires_at > :now",
    "INSERT INTO offer_opens (offer_id, kind, location_id, opened_at)
     SELECT offer_id, kind, location_id, created_at + 7200000 FROM offers WHERE created_by = 'bench' AND rowid % 5 < 3",
    // Invitations: the j-th to offer j % offers, a few hours after it was made.
    "INSERT INTO invitations (instance_id, offer_id, recipient, locale, created_by, created_at)
     SELECT 'in_v' || i, 'PF-B' || replace(replace(printf('%011d', i % :offers), '0', 'Z'), '1', 'Y'), 'c' || i || '@customer' || (i % 1000) || '.example', 'de', 'bench',
            :now - (i % :offers) * (:year / :offers) + (i % 7) * 3600000
       FROM n WHERE i < :invitations",
    "INSERT INTO instances (id, workflow, state, version, data, locale, created_at, updated_at, final_at)
     SELECT i.instance_id, CASE o.kind WHEN 'trial' THEN 'trial_invitation' WHEN 'purchase' THEN 'purchase_offer' ELSE 'admin_offer' END,
            CASE WHEN o.expires_at > :now THEN 'invited' ELSE 'expired' END, 2, '{}', 'de', i.created_at, i.created_at,
            CASE WHEN o.expires_at > :now THEN NULL ELSE o.expires_at END
       FROM invitations i JOIN offers o ON o.offer_id = i.offer_id WHERE i.created_by = 'bench'",
    // Acceptances: one per ten invitations.
    "INSERT INTO acceptances (instance_id, offer_id, organisation, domain, admin_email, products, delegated_admin, relationship_id, accepted_at, confirmed_at)
     SELECT 'in_a' || i, 'PF-B' || replace(replace(printf('%011d', (i * 10) % :offers), '0', 'Z'), '1', 'Y'), 'Customer ' || i, 'd' || i || '.example', 'admin@d' || i || '.example', '[]', NULL,
            CASE WHEN i % 4 = 0 AND i % 10 >= 2 THEN 'in_r' || i ELSE NULL END,
            :now - ((i * 10) % :offers) * (:year / :offers) + 86400000,
            CASE WHEN i % 10 < 2 THEN NULL ELSE :now - ((i * 10) % :offers) * (:year / :offers) + 90000000 END
       FROM n WHERE i < :invitations / 10",
    "INSERT INTO instances (id, workflow, state, version, data, locale, created_at, updated_at, final_at)
     SELECT instance_id, 'acceptance',
            CASE WHEN confirmed_at IS NULL THEN 'unconfirmed' WHEN CAST(substr(instance_id, 5) AS INTEGER) % 10 < 4 THEN 'submitted'
                 WHEN CAST(substr(instance_id, 5) AS INTEGER) % 10 < 9 THEN 'completed' ELSE 'abandoned' END,
            3, '{}', 'de', accepted_at, accepted_at,
            CASE WHEN confirmed_at IS NULL OR CAST(substr(instance_id, 5) AS INTEGER) % 10 < 4 THEN NULL ELSE accepted_at + 259200000 END
       FROM acceptances WHERE instance_id LIKE 'in_a%' AND organisation LIKE 'Customer %'",
    "INSERT INTO instances (id, workflow, state, version, data, locale, created_at, updated_at, final_at)
     SELECT relationship_id, 'delegated_admin', CASE WHEN accepted_at > :now - 31536000000 / 2 THEN 'active' ELSE 'expiring' END, 2,
            '{\"domain\":\"' || domain || '\",\"role\":\"limited\",\"customer_email\":\"' || admin_email || '\"}', 'de', accepted_at, accepted_at, NULL
       FROM acceptances WHERE relationship_id LIKE 'in_r%' AND organisation LIKE 'Customer %'",
    "INSERT INTO jobs (key, kind, subject, payload, state, run_at, max_attempts, created_at, updated_at)
     SELECT 'timer:' || relationship_id || ':end', 'timer', relationship_id, '{}', 'scheduled', accepted_at + 63072000000, 5, accepted_at, accepted_at
       FROM acceptances WHERE relationship_id LIKE 'in_r%' AND organisation LIKE 'Customer %'",
    // The email ledger: invitations, reminders (half), acceptance emails (three each).
    "INSERT INTO emails (message_id, instance_id, template, locale, role, recipient, state, attempts, created_at, sent_at)
     SELECT 'm-' || i.instance_id, i.instance_id, s.workflow, 'de', 'customer', i.recipient, 'sent', 1, i.created_at, i.created_at + 60000
       FROM invitations i JOIN instances s ON s.id = i.instance_id WHERE i.created_by = 'bench'",
    "INSERT INTO emails (message_id, instance_id, template, locale, role, recipient, state, attempts, created_at, sent_at)
     SELECT 'r-' || instance_id, instance_id, 'invitation_reminder', 'de', 'customer', recipient, 'sent', 1, created_at + 604800000, created_at + 604860000
       FROM invitations WHERE created_by = 'bench' AND CAST(substr(instance_id, 5) AS INTEGER) % 2 = 0",
    "INSERT INTO emails (message_id, instance_id, template, locale, role, recipient, state, attempts, created_at, sent_at)
     SELECT t.p || a.instance_id, a.instance_id, t.template, 'de', t.role, a.admin_email, 'sent', 1, a.accepted_at, a.accepted_at + 60000
       FROM acceptances a,
            (SELECT 'x-' AS p, 'acceptance_verify' AS template, 'customer' AS role
             UNION ALL SELECT 'y-', 'acceptance_confirmation', 'customer'
             UNION ALL SELECT 'z-', 'acceptance_notice', 'partner') t
      WHERE a.organisation LIKE 'Customer %'",
    // Campaigns: 50 of 2,000 recipients each, the first two running (half sent).
    "INSERT INTO campaigns (id, offer_id, name, template, state, created_by, created_at, updated_at)
     SELECT 'cmp_bench' || i, 'PF-B' || replace(replace(printf('%011d', i * 7), '0', 'Z'), '1', 'Y'), 'Bench campaign ' || i, 'trial_invitation',
            CASE WHEN i < 2 THEN 'running' ELSE 'completed' END, 'bench', :now - i * (:year / 50), :now - i * (:year / 50)
       FROM n WHERE i < 50 AND i * 7 < :offers",
    "INSERT INTO campaign_recipients (campaign_id, seq, email, email_key, domain, locale, state, message_id, due_at, sent_at, updated_at)
     SELECT c.id, n.i, 'r' || n.i || '@' || c.id || '.example', 'r' || n.i || '@' || c.id || '.example', c.id || '.example', 'de',
            CASE WHEN c.state = 'running' AND n.i % 2 = 0 THEN 'pending' WHEN n.i % 50 = 0 THEN 'bounced' WHEN n.i % 20 = 0 THEN 'accepted' ELSE 'sent' END,
            'cm-' || c.id || '-' || n.i, c.created_at,
            CASE WHEN c.state = 'running' AND n.i % 2 = 0 THEN NULL ELSE c.created_at + n.i * 1000 END, c.created_at
       FROM campaigns c, n WHERE c.created_by = 'bench' AND c.id <> 'cmp_bench0' AND n.i < 2000",
    // … but the first running one goes to `ledger` recipients (a million by default).
    "INSERT INTO campaign_recipients (campaign_id, seq, email, email_key, domain, locale, state, message_id, due_at, sent_at, updated_at)
     SELECT c.id, n.i, 'r' || n.i || '@big.example', 'r' || n.i || '@big.example', 'big.example', 'de',
            CASE WHEN n.i % 2 = 0 THEN 'pending' WHEN n.i % 50 = 1 THEN 'bounced' WHEN n.i % 20 = 1 THEN 'accepted' ELSE 'sent' END,
            'cm-big-' || n.i, c.created_at,
            CASE WHEN n.i % 2 = 0 THEN NULL ELSE :now - (:big - n.i) * 10 END, c.created_at
       FROM campaigns c, n WHERE c.id = 'cmp_bench0' AND n.i < :big",
    // A week of finished email jobs (one every 3 s, the pruner keeps 7 days), one in 400
    // failed with a refusal: what the operators' jobs page lists and counts.
    "INSERT INTO jobs (key, kind, subject, payload, state, run_at, attempts, max_attempts, last_error, created_at, updated_at, finished_at)
     SELECT 'email:bench:' || i, 'email', 'in_v' || i, '{}', CASE WHEN i % 400 = 0 THEN 'failed' ELSE 'done' END, :now - i * 3000, 1, 12,
            CASE WHEN i % 400 = 0 THEN 'permanent error (550): 5.1.1 no such user' ELSE NULL END,
            :now - i * 3000, :now - i * 3000 + 1000, :now - i * 3000 + 1000
       FROM n WHERE i < 201600",
];

/// The fill: partner notices (offer expired) until the ledger has `ledger` rows.
const FILL: &str = "INSERT INTO emails (message_id, instance_id, template, locale, role, recipient, state, attempts, created_at, sent_at)
     SELECT 'f-' || i, 'in_o' || (i % :offers), 'offer_expired', 'de', 'partner', 'partner@bench.example', 'sent', 1,
            :now - (i % :offers) * (:year / :offers) + 2592000000, :now - (i % :offers) * (:year / :offers) + 2592060000
       FROM n WHERE i < :fill";

impl Store {
    /// Seeds `bench portal`'s database (an empty one) in one transaction; see [`SEED`].
    pub async fn seed_portal_bench(
        &self,
        offers: i64,
        ledger: i64,
        big_campaign: i64,
        now: Timestamp,
        progress: impl Fn(&str),
    ) -> Result<BenchSeed> {
        let offers = offers.max(1);
        let invitations = ledger * 35 / 100;
        let year: i64 = 365 * 86_400_000;
        let mut tx = self.begin_write().await?;
        let top = offers
            .max(invitations)
            .max(ledger)
            .max(big_campaign)
            .max(2000);
        let mut fill = 0;
        for (k, sql) in SEED.iter().chain(std::iter::once(&FILL)).enumerate() {
            if k == SEED.len() {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM emails")
                    .fetch_one(&mut *tx)
                    .await?;
                fill = (ledger - n).max(0);
            }
            // Integers of ours only, written into the statement (no statement here binds
            // every parameter).
            let text = format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {top}) {sql}"
            )
            .replace(":offers", &offers.to_string())
            .replace(":now", &now.0.to_string())
            .replace(":year", &year.to_string())
            .replace(":invitations", &invitations.to_string())
            .replace(":fill", &fill.to_string())
            .replace(":big", &big_campaign.to_string());
            progress(&sql.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
            sqlx::query(sqlx::AssertSqlSafe(text))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.pool)
                .await
        };
        Ok(BenchSeed {
            offers,
            invitations,
            acceptances: count("SELECT COUNT(*) FROM acceptances").await?,
            relationships: count(
                "SELECT COUNT(*) FROM instances WHERE workflow = 'delegated_admin'",
            )
            .await?,
            emails: count("SELECT COUNT(*) FROM emails").await?,
            campaign_recipients: count("SELECT COUNT(*) FROM campaign_recipients").await?,
            opens: count("SELECT COUNT(*) FROM offer_opens").await?,
            timers: count("SELECT COUNT(*) FROM jobs WHERE kind = 'timer'").await?,
        })
    }

    /// `ANALYZE` (SQLite: the planner's statistics), as an operator would after a bulk load.
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }
}
