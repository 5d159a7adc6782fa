//! Offers and what hangs off them: the rows written with transitions ([`Record`]) and the
//! queries that track, list and search them, read into the `core::offer` values the services
//! return. Lifecycle states come from `instances`.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Result, Store, StoreError, json_text};
use crate::core::domain::{
    AdminRole, Country, DomainName, EmailAddress, InstanceId, MpnId, OfferId, OfferKind, Span,
    Timestamp,
};
use crate::core::offer::{
    AcceptanceRow, AcceptanceView, CustomerInvitation, CustomerView, InvitationRow, InvitationView,
    Location, OfferFilter, OfferLine, OfferRow, OfferView, RelationshipView, ResellerCustomer,
    ResellerRow, ResellerView, SignupRow,
};

#[derive(Debug, Clone)]
pub struct NewSignup {
    pub advisor_code: String,
    pub offer_id: Option<OfferId>,
    pub domain: DomainName,
    pub completed_at: Timestamp,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Rows written in the transaction of a transition.
#[derive(Debug, Clone)]
pub enum Record {
    Offer(OfferRow),
    Invitation(InvitationRow),
    Acceptance(AcceptanceRow),
    /// The acceptance was confirmed from the admin mailbox (with its delegated-admin
    /// relationship, if the customer granted one). A unique violation means another
    /// acceptance of the same (offer, domain) was confirmed first.
    AcceptanceConfirmed {
        acceptance: InstanceId,
        relationship_id: Option<InstanceId>,
    },
    /// A new partnership request for `mpn_id` (replaces an ended one; keeps its customers).
    Reseller(ResellerRow),
    ResellerCustomer {
        mpn_id: MpnId,
        domain: DomainName,
        acceptance_id: Option<InstanceId>,
        support_contact: bool,
    },
    /// A location the latest sync did not list becomes unavailable (conflict if another node
    /// marked it first: the partner is told once).
    LocationRemoved {
        location_id: String,
        /// The `location_notice` instance that tells the partner.
        notice: InstanceId,
    },
    /// A reported sign-up matched to the acceptance this transition completes.
    SignupMatched {
        signup_id: i64,
        acceptance: InstanceId,
    },
    /// The audit entry of a person's action that this transition is (an administrator's
    /// event from the portal): written with it, or not at all.
    Audit(super::NewAudit),
}

pub(super) async fn write_record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    r: &Record,
    at: Timestamp,
) -> Result<()> {
    match r {
        Record::Offer(o) => {
            sqlx::query(
                "INSERT INTO offers (offer_id, instance_id, kind, location_id, country, products, delegated_admin, key_id, link, message, created_by, created_at, expires_at, auto_extend)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(o.offer_id.as_str())
            .bind(o.instance_id.as_str())
            .bind(o.kind.as_str())
            .bind(&o.location_id)
            .bind(o.country.as_str())
            .bind(json_text(&o.products))
            .bind(o.delegated_admin.map(AdminRole::as_str))
            .bind(&o.key_id)
            .bind(&o.link)
            .bind(o.message.as_deref())
            .bind(&o.created_by)
            .bind(o.created_at.0)
            .bind(o.expires_at.0)
            .bind(i64::from(o.auto_extend))
            .execute(&mut **tx)
            .await?;
        }
        Record::Invitation(i) => {
            sqlx::query(
                "INSERT INTO invitations (instance_id, offer_id, recipient, locale, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(i.instance_id.as_str())
            .bind(i.offer_id.as_str())
            .bind(i.recipient.as_str())
            .bind(&i.locale)
            .bind(&i.created_by)
            .bind(i.created_at.0)
            .execute(&mut **tx)
            .await?;
        }
        Record::Acceptance(a) => {
            sqlx::query(
                "INSERT INTO acceptances (instance_id, offer_id, organisation, domain, admin_email, products, delegated_admin, relationship_id, accepted_at, confirmed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(a.instance_id.as_str())
            .bind(a.offer_id.as_str())
            .bind(&a.organisation)
            .bind(a.domain.as_str())
            .bind(a.admin_email.as_str())
            .bind(json_text(&a.products))
            .bind(a.delegated_admin.map(AdminRole::as_str))
            .bind(a.relationship_id.as_ref().map(InstanceId::as_str))
            .bind(a.accepted_at.0)
            .bind(a.confirmed_at.map(|t| t.0))
            .execute(&mut **tx)
            .await?;
        }
        Record::AcceptanceConfirmed {
            acceptance,
            relationship_id,
        } => {
            let r = sqlx::query(
                "UPDATE acceptances SET confirmed_at = $1, relationship_id = $2 WHERE instance_id = $3 AND confirmed_at IS NULL",
            )
            .bind(at.0)
            .bind(relationship_id.as_ref().map(InstanceId::as_str))
            .bind(acceptance.as_str())
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(acceptance.clone()));
            }
        }
        Record::Reseller(r) => {
            sqlx::query(
                "INSERT INTO resellers (mpn_id, instance_id, name, email, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (mpn_id) DO UPDATE SET instance_id = excluded.instance_id, name = excluded.name, email = excluded.email, created_at = excluded.created_at",
            )
            .bind(r.mpn_id.as_str())
            .bind(r.instance_id.as_str())
            .bind(&r.name)
            .bind(r.email.as_str())
            .bind(r.created_at.0)
            .execute(&mut **tx)
            .await?;
            // A new partnership starts as no one's support contact (an ended one is not).
            sqlx::query("UPDATE reseller_customers SET support_contact = 0 WHERE mpn_id = $1")
                .bind(r.mpn_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Record::ResellerCustomer {
            mpn_id,
            domain,
            acceptance_id,
            support_contact,
        } => {
            sqlx::query(
                "INSERT INTO reseller_customers (mpn_id, domain, acceptance_id, support_contact, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (mpn_id, domain) DO UPDATE SET acceptance_id = COALESCE(excluded.acceptance_id, reseller_customers.acceptance_id), support_contact = excluded.support_contact",
            )
            .bind(mpn_id.as_str())
            .bind(domain.as_str())
            .bind(acceptance_id.as_ref().map(InstanceId::as_str))
            .bind(i64::from(*support_contact))
            .bind(at.0)
            .execute(&mut **tx)
            .await?;
            if *support_contact {
                // One support contact per customer.
                sqlx::query("UPDATE reseller_customers SET support_contact = 0 WHERE domain = $1 AND mpn_id <> $2")
                    .bind(domain.as_str())
                    .bind(mpn_id.as_str())
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Record::LocationRemoved {
            location_id,
            notice,
        } => {
            let r = sqlx::query(
                "UPDATE locations SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL AND last_seen_at < $1",
            )
            .bind(at.0)
            .bind(location_id)
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(notice.clone()));
            }
        }
        Record::Audit(a) => {
            super::users::audit_insert(a).execute(&mut **tx).await?;
        }
        Record::SignupMatched {
            signup_id,
            acceptance,
        } => {
            sqlx::query("UPDATE signups SET acceptance_id = $1, matched_at = $2 WHERE id = $3 AND acceptance_id IS NULL")
                .bind(acceptance.as_str())
                .bind(at.0)
                .bind(signup_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn lines(r: &AnyRow, col: &str) -> Result<Vec<OfferLine>> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| corrupt(col, e))
}

fn role(r: &AnyRow, col: &str) -> Result<Option<AdminRole>> {
    let s: Option<String> = r.try_get(col)?;
    s.map(|s| AdminRole::parse(&s).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn inst(r: &AnyRow, col: &str) -> Result<InstanceId> {
    let s: String = r.try_get(col)?;
    InstanceId::parse(&s).map_err(|e| corrupt(col, e))
}

const OFFER_COLS: &str = "o.offer_id, o.instance_id, o.kind, o.location_id, o.country, o.products, o.delegated_admin, o.auto_extend, o.key_id, o.link, o.message, o.created_by, o.created_at, o.expires_at, i.state, i.final_at, l.removed_at AS location_removed_at";

fn offer_view(r: &AnyRow) -> Result<OfferView> {
    let s = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
    Ok(OfferView {
        offer: OfferRow {
            offer_id: OfferId::parse(&s("offer_id")?).map_err(|e| corrupt("offer_id", e))?,
            instance_id: inst(r, "instance_id")?,
            kind: OfferKind::parse(&s("kind")?).map_err(|e| corrupt("kind", e))?,
            location_id: s("location_id")?,
            country: Country::parse_stored(&s("country")?).map_err(|e| corrupt("country", e))?,
            products: lines(r, "products")?,
            delegated_admin: role(r, "delegated_admin")?,
            auto_extend: r.try_get::<i64, _>("auto_extend")? != 0,
            key_id: s("key_id")?,
            link: s("link")?,
            message: r.try_get("message")?,
            created_by: s("created_by")?,
            created_at: Timestamp(r.try_get("created_at")?),
            expires_at: Timestamp(r.try_get("expires_at")?),
        },
        state: s("state")?,
        final_at: r.try_get::<Option<i64>, _>("final_at")?.map(Timestamp),
        location_removed_at: r
            .try_get::<Option<i64>, _>("location_removed_at")?
            .map(Timestamp),
    })
}

const ACC_COLS: &str = "a.instance_id, a.offer_id, a.organisation, a.domain, a.admin_email, a.products, a.delegated_admin, a.relationship_id, a.accepted_at, a.confirmed_at, i.state, r.state AS rel_state, r.data AS rel_data";

fn acceptance_view(r: &AnyRow) -> Result<AcceptanceView> {
    let s = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
    let relationship_id: Option<String> = r.try_get("relationship_id")?;
    let relationship = match (
        relationship_id,
        r.try_get::<Option<String>, _>("rel_state")?,
    ) {
        (Some(id), Some(state)) => {
            let data: Value = r
                .try_get::<Option<String>, _>("rel_data")?
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(Value::Null);
            Some(RelationshipView {
                id: InstanceId::parse(&id).map_err(|e| corrupt("relationship_id", e))?,
                role: data.get("role").and_then(Value::as_str).map(str::to_string),
                state,
                ends_at: data
                    .get("ends_at")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        }
        _ => None,
    };
    Ok(AcceptanceView {
        acceptance: AcceptanceRow {
            instance_id: inst(r, "instance_id")?,
            offer_id: OfferId::parse(&s("offer_id")?).map_err(|e| corrupt("offer_id", e))?,
            organisation: s("organisation")?,
            domain: DomainName::parse(&s("domain")?).map_err(|e| corrupt("domain", e))?,
            admin_email: EmailAddress::parse(&s("admin_email")?)
                .map_err(|e| corrupt("admin_email", e))?,
            products: lines(r, "products")?,
            delegated_admin: role(r, "delegated_admin")?,
            relationship_id: relationship.as_ref().map(|r| r.id.clone()),
            accepted_at: Timestamp(r.try_get("accepted_at")?),
            confirmed_at: r.try_get::<Option<i64>, _>("confirmed_at")?.map(Timestamp),
        },
        state: s("state")?,
        relationship,
        signup: None,
    })
}

const SIGNUP_COLS: &str = "id, advisor_code, offer_id, domain, completed_at, received_at, source, acceptance_id, matched_at";

fn signup_row(r: &AnyRow) -> Result<SignupRow> {
    Ok(SignupRow {
        id: r.try_get("id")?,
        advisor_code: r.try_get("advisor_code")?,
        offer_id: r.try_get("offer_id")?,
        domain: r.try_get("domain")?,
        completed_at: Timestamp(r.try_get("completed_at")?),
        received_at: Timestamp(r.try_get("received_at")?),
        source: r.try_get("source")?,
        acceptance_id: r.try_get("acceptance_id")?,
        matched_at: r.try_get::<Option<i64>, _>("matched_at")?.map(Timestamp),
    })
}

impl StoreError {
    /// A unique constraint refused the write (e.g. the same customer accepting twice at once).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => {
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                matches!(code.as_str(), "2067" | "1555" | "23505")
                    || d.message().to_ascii_lowercase().contains("unique")
            }
            _ => false,
        }
    }
}

impl Store {
    pub async fn offer(&self, id: &OfferId) -> Result<Option<OfferView>> {
        let q = format!(
            "SELECT {OFFER_COLS} FROM offers o JOIN instances i ON i.id = o.instance_id LEFT JOIN locations l ON l.id = o.location_id WHERE o.offer_id = $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| offer_view(&r))
            .transpose()
    }

    pub async fn offers(&self, f: &OfferFilter) -> Result<Vec<OfferView>> {
        // Every filter is bound as a parameter; "unset" is a NULL that matches everything.
        let q = format!(
            "SELECT {OFFER_COLS} FROM offers o JOIN instances i ON i.id = o.instance_id LEFT JOIN locations l ON l.id = o.location_id
             WHERE (CAST($1 AS TEXT) IS NULL OR i.state = $1)
               AND (CAST($2 AS TEXT) IS NULL OR o.kind = $2)
               AND (CAST($3 AS TEXT) IS NULL OR o.location_id = $3)
               AND (CAST($4 AS BIGINT) IS NULL OR o.created_at >= $4)
               AND (CAST($5 AS BIGINT) IS NULL OR o.created_at < $5)
               AND (CAST($6 AS BIGINT) IS NULL OR o.created_at < $6 OR (o.created_at = $6 AND o.offer_id < $7))
               AND (CAST($9 AS TEXT) IS NULL OR o.created_by = $9)
             ORDER BY o.created_at DESC, o.offer_id DESC LIMIT $8"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(f.state.as_deref())
            .bind(f.kind.map(OfferKind::as_str))
            .bind(f.location_id.as_deref())
            .bind(f.created_from.map(|t| t.0))
            .bind(f.created_to.map(|t| t.0))
            .bind(f.before.as_ref().map(|b| b.0.0))
            .bind(
                f.before
                    .as_ref()
                    .map(|b| b.1.as_str().to_string())
                    .unwrap_or_default(),
            )
            .bind(f.limit)
            .bind(f.created_by.as_deref())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(offer_view).collect()
    }

    pub async fn invitations_of(&self, offer: &OfferId) -> Result<Vec<InvitationView>> {
        let rows = sqlx::query(
            "SELECT v.instance_id, v.offer_id, v.recipient, v.locale, v.created_by, v.created_at, i.state
             FROM invitations v JOIN instances i ON i.id = v.instance_id WHERE v.offer_id = $1 ORDER BY v.created_at, v.instance_id",
        )
        .bind(offer.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = inst(r, "instance_id")?;
            let emails = self.emails_of(&id).await?;
            out.push(InvitationView {
                invitation: InvitationRow {
                    instance_id: id,
                    offer_id: offer.clone(),
                    recipient: EmailAddress::parse(&r.try_get::<String, _>("recipient")?)
                        .map_err(|e| corrupt("recipient", e))?,
                    locale: r.try_get("locale")?,
                    created_by: r.try_get("created_by")?,
                    created_at: Timestamp(r.try_get("created_at")?),
                },
                state: r.try_get("state")?,
                emails,
            });
        }
        Ok(out)
    }

    /// Invitations of an offer not yet in a final state (to close them with the offer).
    pub async fn open_invitations(
        &self,
        offer: &OfferId,
    ) -> Result<Vec<(InstanceId, EmailAddress)>> {
        let rows = sqlx::query(
            "SELECT v.instance_id, v.recipient FROM invitations v JOIN instances i ON i.id = v.instance_id
             WHERE v.offer_id = $1 AND i.final_at IS NULL",
        )
        .bind(offer.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    inst(r, "instance_id")?,
                    EmailAddress::parse(&r.try_get::<String, _>("recipient")?)
                        .map_err(|e| corrupt("recipient", e))?,
                ))
            })
            .collect()
    }

    /// The open invitations of an offer to addresses at `domain` or its subdomains.
    pub async fn open_invitations_at_domain(
        &self,
        offer: &OfferId,
        domain: &DomainName,
    ) -> Result<Vec<InstanceId>> {
        let rows = sqlx::query(
            "SELECT v.instance_id, v.recipient FROM invitations v JOIN instances i ON i.id = v.instance_id
             WHERE v.offer_id = $1 AND i.final_at IS NULL",
        )
        .bind(offer.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let to: String = r.try_get("recipient")?;
            if domain.covers(to.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()) {
                out.push(inst(r, "instance_id")?);
            }
        }
        Ok(out)
    }

    /// Acceptances matching `cond` (over `$1`, and `$2` if given), with their lifecycle
    /// state, relationship and matched sign-up, in one query.
    async fn acceptances_where(
        &self,
        cond: &str,
        arg: &str,
        arg2: Option<&str>,
    ) -> Result<Vec<AcceptanceView>> {
        let q = format!(
            "SELECT {ACC_COLS}, s.id AS s_id, s.advisor_code AS s_advisor_code, s.offer_id AS s_offer_id, s.domain AS s_domain,
                    s.completed_at AS s_completed_at, s.received_at AS s_received_at, s.source AS s_source, s.matched_at AS s_matched_at
             FROM acceptances a JOIN instances i ON i.id = a.instance_id
             LEFT JOIN instances r ON r.id = a.relationship_id
             LEFT JOIN signups s ON s.acceptance_id = a.instance_id
             WHERE {cond} ORDER BY a.accepted_at, a.instance_id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q)).bind(arg);
        if let Some(a2) = arg2 {
            query = query.bind(a2);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut v = acceptance_view(r)?;
                if let Some(id) = r.try_get::<Option<i64>, _>("s_id")? {
                    v.signup = Some(SignupRow {
                        id,
                        advisor_code: r.try_get("s_advisor_code")?,
                        offer_id: r.try_get("s_offer_id")?,
                        domain: r.try_get("s_domain")?,
                        completed_at: Timestamp(r.try_get("s_completed_at")?),
                        received_at: Timestamp(r.try_get("s_received_at")?),
                        source: r.try_get("s_source")?,
                        acceptance_id: Some(v.acceptance.instance_id.as_str().to_string()),
                        matched_at: r.try_get::<Option<i64>, _>("s_matched_at")?.map(Timestamp),
                    });
                }
                Ok(v)
            })
            .collect()
    }

    /// The confirmed acceptances of an offer (the ones that count).
    pub async fn acceptances_of(&self, offer: &OfferId) -> Result<Vec<AcceptanceView>> {
        self.acceptances_where(
            "a.offer_id = $1 AND a.confirmed_at IS NOT NULL",
            offer.as_str(),
            None,
        )
        .await
    }

    /// Acceptances of an offer still waiting for their confirmation link to be used.
    pub async fn unconfirmed_acceptances_of(&self, offer: &OfferId) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM acceptances a JOIN instances i ON i.id = a.instance_id
             WHERE a.offer_id = $1 AND a.confirmed_at IS NULL AND i.state = 'unconfirmed'",
        )
        .bind(offer.as_str())
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn acceptance(&self, id: &InstanceId) -> Result<Option<AcceptanceView>> {
        Ok(self
            .acceptances_where("a.instance_id = $1", id.as_str(), None)
            .await?
            .into_iter()
            .next())
    }

    /// The confirmed acceptance of `offer` for `domain` (at most one).
    pub async fn acceptance_by_domain(
        &self,
        offer: &OfferId,
        domain: &DomainName,
    ) -> Result<Option<AcceptanceView>> {
        Ok(self
            .acceptances_where(
                "a.offer_id = $1 AND a.domain = $2 AND a.confirmed_at IS NOT NULL",
                offer.as_str(),
                Some(domain.as_str()),
            )
            .await?
            .into_iter()
            .next())
    }

    /// The acceptance whose delegated-admin relationship is `rel`.
    pub async fn acceptance_of_relationship(
        &self,
        rel: &InstanceId,
    ) -> Result<Option<AcceptanceView>> {
        Ok(self
            .acceptances_where("a.relationship_id = $1", rel.as_str(), None)
            .await?
            .into_iter()
            .next())
    }

    /// Acceptances still `submitted` that were accepted before `before` (to abandon).
    pub async fn stale_acceptances(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> Result<Vec<InstanceId>> {
        let rows = sqlx::query(
            "SELECT a.instance_id FROM acceptances a JOIN instances i ON i.id = a.instance_id
             WHERE i.state = 'submitted' AND a.accepted_at < $1 ORDER BY a.accepted_at LIMIT $2",
        )
        .bind(before.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| inst(r, "instance_id")).collect()
    }

    /// Counts one hit on a fixed-window rate limit: true while `key` has had at most `limit`
    /// hits in the current window of `window` (the arithmetic: `core::rate::FixedWindow`).
    /// One statement, atomic on either store, so the limit holds across nodes. Only a
    /// SHA-256 of the key is stored (keys name addresses and clients).
    pub async fn rate_hit(
        &self,
        key: &str,
        window: Span,
        limit: u32,
        now: Timestamp,
    ) -> Result<bool> {
        let key = crate::core::links::sha256_hex(key);
        let limits = crate::core::rate::FixedWindow { window, limit };
        let start = limits.start(now).0;
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO rate_counters (key, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN rate_counters.window_start = excluded.window_start THEN rate_counters.count + 1 ELSE 1 END,
               window_start = excluded.window_start
             RETURNING count",
        )
        .bind(key)
        .bind(start)
        .fetch_one(&self.pool)
        .await?;
        Ok(limits.allows(count))
    }

    /// Records a reported sign-up; false if the same (code, domain) was reported before.
    pub async fn insert_signup(&self, s: &NewSignup, now: Timestamp) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO signups (advisor_code, offer_id, domain, completed_at, received_at, source) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (advisor_code, domain) DO NOTHING",
        )
        .bind(&s.advisor_code)
        .bind(s.offer_id.as_ref().map(OfferId::as_str))
        .bind(s.domain.as_str())
        .bind(s.completed_at.0)
        .bind(now.0)
        .bind(&s.source)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sign-ups not matched to an acceptance, oldest first.
    pub async fn unmatched_signups(&self, limit: i64) -> Result<Vec<SignupRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SIGNUP_COLS} FROM signups WHERE acceptance_id IS NULL ORDER BY received_at, id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(signup_row).collect()
    }

    /// Sign-ups reported with a code of this offer that match no acceptance.
    pub async fn unmatched_signups_of(&self, offer: &OfferId) -> Result<Vec<SignupRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SIGNUP_COLS} FROM signups WHERE offer_id = $1 AND acceptance_id IS NULL ORDER BY received_at, id"
        )))
        .bind(offer.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(signup_row).collect()
    }

    // ------------------------------------------------------------ tokens

    pub async fn insert_token(&self, t: &TokenRow) -> Result<()> {
        sqlx::query("INSERT INTO api_tokens (id, name, role, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.role)
            .bind(&t.secret_hash)
            .bind(t.created_at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn token_row(r: &AnyRow) -> Result<TokenRow> {
        Ok(TokenRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            secret_hash: r.try_get("secret_hash")?,
            created_at: Timestamp(r.try_get("created_at")?),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
        })
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        sqlx::query("SELECT id, name, role, secret_hash, created_at, revoked_at FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Self::token_row(&r))
            .transpose()
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query("SELECT id, name, role, secret_hash, created_at, revoked_at FROM api_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::token_row).collect()
    }

    /// Revokes a token; false if there is none with this id or it was revoked already.
    pub async fn revoke_token(&self, id: &str, now: Timestamp) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ------------------------------------------------------------ resellers

    pub async fn reseller(&self, mpn: &MpnId) -> Result<Option<ResellerView>> {
        let row = sqlx::query(
            "SELECT r.mpn_id, r.instance_id, r.name, r.email, r.created_at, i.state
             FROM resellers r JOIN instances i ON i.id = r.instance_id WHERE r.mpn_id = $1",
        )
        .bind(mpn.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let customers = self.reseller_customers("mpn_id", mpn.as_str()).await?;
        Ok(Some(ResellerView {
            reseller: Self::reseller_row(&r)?,
            state: r.try_get("state")?,
            customers,
        }))
    }

    pub async fn reseller_by_instance(&self, id: &InstanceId) -> Result<Option<ResellerView>> {
        let mpn: Option<String> =
            sqlx::query("SELECT mpn_id FROM resellers WHERE instance_id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        match mpn {
            Some(m) => {
                self.reseller(&MpnId::parse(&m).map_err(|e| corrupt("mpn_id", e))?)
                    .await
            }
            None => Ok(None),
        }
    }

    fn reseller_row(r: &AnyRow) -> Result<ResellerRow> {
        Ok(ResellerRow {
            mpn_id: MpnId::parse(&r.try_get::<String, _>("mpn_id")?)
                .map_err(|e| corrupt("mpn_id", e))?,
            instance_id: inst(r, "instance_id")?,
            name: r.try_get("name")?,
            email: EmailAddress::parse(&r.try_get::<String, _>("email")?)
                .map_err(|e| corrupt("email", e))?,
            created_at: Timestamp(r.try_get("created_at")?),
        })
    }

    pub async fn resellers(&self) -> Result<Vec<ResellerView>> {
        let rows = sqlx::query("SELECT mpn_id FROM resellers ORDER BY created_at, mpn_id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let m: String = r.try_get(0)?;
            if let Some(v) = self
                .reseller(&MpnId::parse(&m).map_err(|e| corrupt("mpn_id", e))?)
                .await?
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    async fn reseller_customers(&self, col: &str, v: &str) -> Result<Vec<ResellerCustomer>> {
        let col = if col == "domain" { "domain" } else { "mpn_id" };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rc.mpn_id, rc.domain, rc.acceptance_id, rc.support_contact, rc.created_at, i.state AS partnership
             FROM reseller_customers rc LEFT JOIN resellers r ON r.mpn_id = rc.mpn_id LEFT JOIN instances i ON i.id = r.instance_id
             WHERE rc.{col} = $1 ORDER BY rc.created_at, rc.domain"
        )))
        .bind(v)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let partnership: Option<String> = r.try_get("partnership")?;
                let partnership = partnership.unwrap_or_else(|| "unknown".into());
                Ok(ResellerCustomer {
                    mpn_id: r.try_get("mpn_id")?,
                    domain: r.try_get("domain")?,
                    acceptance_id: r.try_get("acceptance_id")?,
                    support_contact: r.try_get::<i64, _>("support_contact")? != 0
                        && partnership == "active",
                    partnership,
                    created_at: Timestamp(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ customers

    /// Invitations to exactly `recipient` (case-insensitive), or to any address at `domain`.
    async fn invitations_for(&self, q: CustomerQuery<'_>) -> Result<Vec<CustomerInvitation>> {
        // By domain: the recipient's domain part, the expression of the `invitations_domain`
        // index (migration 0019; a recipient has exactly one `@`).
        let (cond, arg) = match (q, self.backend) {
            (CustomerQuery::Domain(d), Backend::Sqlite) => (
                "lower(substr(v.recipient, instr(v.recipient, '@') + 1)) = $1",
                d.as_str().to_string(),
            ),
            (CustomerQuery::Domain(d), Backend::Postgres) => (
                "lower(split_part(v.recipient, '@', 2)) = $1",
                d.as_str().to_string(),
            ),
            (CustomerQuery::User(e), _) => {
                ("lower(v.recipient) = lower($1)", e.as_str().to_string())
            }
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT v.instance_id, v.offer_id, v.recipient, v.locale, v.created_by, v.created_at, i.state
             FROM invitations v JOIN instances i ON i.id = v.instance_id WHERE {cond} ORDER BY v.created_at, v.instance_id"
        )))
        .bind(arg)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CustomerInvitation {
                    invitation: InvitationRow {
                        instance_id: inst(r, "instance_id")?,
                        offer_id: OfferId::parse(&r.try_get::<String, _>("offer_id")?)
                            .map_err(|e| corrupt("offer_id", e))?,
                        recipient: EmailAddress::parse(&r.try_get::<String, _>("recipient")?)
                            .map_err(|e| corrupt("recipient", e))?,
                        locale: r.try_get("locale")?,
                        created_by: r.try_get("created_by")?,
                        created_at: Timestamp(r.try_get("created_at")?),
                    },
                    state: r.try_get("state")?,
                })
            })
            .collect()
    }

    /// Customers by exact domain, or by exact user name (case-insensitive): those who
    /// accepted an offer (the admin email) and those the partner invited (the recipient).
    pub async fn search_customers(&self, q: CustomerQuery<'_>) -> Result<Vec<CustomerView>> {
        let invited = self.invitations_for(q).await?;
        let accs = match q {
            CustomerQuery::Domain(d) => {
                self.acceptances_where(
                    "a.domain = $1 AND a.confirmed_at IS NOT NULL",
                    d.as_str(),
                    None,
                )
                .await?
            }
            CustomerQuery::User(e) => {
                self.acceptances_where(
                    "lower(a.admin_email) = lower($1) AND a.confirmed_at IS NOT NULL",
                    e.as_str(),
                    None,
                )
                .await?
            }
        };
        type Found = (Vec<AcceptanceView>, Vec<CustomerInvitation>);
        let mut by_domain: std::collections::BTreeMap<String, Found> = Default::default();
        for a in accs {
            by_domain
                .entry(a.acceptance.domain.as_str().to_string())
                .or_default()
                .0
                .push(a);
        }
        for v in invited {
            by_domain
                .entry(v.invitation.recipient.domain().to_string())
                .or_default()
                .1
                .push(v);
        }
        let mut out = Vec::new();
        for (domain, (acceptances, invitations)) in by_domain {
            let mut admin_emails: Vec<String> = acceptances
                .iter()
                .map(|a| a.acceptance.admin_email.as_str().to_string())
                .collect();
            admin_emails.sort();
            admin_emails.dedup();
            let organisation = acceptances
                .last()
                .map(|a| a.acceptance.organisation.clone())
                .unwrap_or_default();
            let resellers = self.reseller_customers("domain", &domain).await?;
            out.push(CustomerView {
                domain,
                source: if acceptances.is_empty() {
                    "invited"
                } else {
                    "accepted"
                },
                organisation,
                admin_emails,
                acceptances,
                invitations,
                resellers,
            });
        }
        Ok(out)
    }

    pub async fn location(&self, id: &str) -> Result<Option<Location>> {
        Ok(self
            .locations()
            .await?
            .into_iter()
            .map(|(l, _)| l)
            .find(|l| l.id == id))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum CustomerQuery<'a> {
    Domain(&'a DomainName),
    User(&'a EmailAddress),
}
