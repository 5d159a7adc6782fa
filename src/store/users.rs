//! The partner portal's users, their sign-in links and sessions, and the audit log. Secrets
//! never reach this file: links and sessions are keyed by the SHA-256 of their secret.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::*;
use crate::core::domain::{EmailAddress, Locale, Role, Timestamp};
use crate::core::portal::{AuditFilter, AuditRow, SessionRow, UserRow};

/// A session to write when a sign-in link is redeemed.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub hash: String,
    pub expires_at: Timestamp,
    pub client: String,
}

/// One audit log entry to write: who (`actor`, the user's email or `cli`), what (`action`,
/// `target`, `detail`), when (`at`), from where (`client`).
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: Timestamp,
    pub user_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client: String,
    pub detail: String,
}

const USER_COLS: &str = "id, email, name, language, role, created_at, created_by, deactivated_at";

fn user_row(r: &AnyRow, at: usize) -> Result<UserRow> {
    let email: String = r.try_get(at + 1)?;
    let language: String = r.try_get(at + 3)?;
    let role: String = r.try_get(at + 4)?;
    Ok(UserRow {
        id: r.try_get(at)?,
        email: EmailAddress::parse(&email)
            .map_err(|e| StoreError::Corrupt(format!("user email: {e}")))?,
        name: r.try_get(at + 2)?,
        language: Locale::parse(&language)
            .ok_or_else(|| StoreError::Corrupt(format!("user language `{language}`")))?,
        role: Role::parse(&role).map_err(|e| StoreError::Corrupt(format!("user role: {e}")))?,
        created_at: Timestamp(r.try_get(at + 5)?),
        created_by: r.try_get(at + 6)?,
        deactivated_at: r.try_get::<Option<i64>, _>(at + 7)?.map(Timestamp),
    })
}

fn session_row(r: &AnyRow) -> Result<SessionRow> {
    Ok(SessionRow {
        hash: r.try_get(0)?,
        user_id: r.try_get(1)?,
        created_at: Timestamp(r.try_get(2)?),
        last_seen_at: Timestamp(r.try_get(3)?),
        expires_at: Timestamp(r.try_get(4)?),
        revoked_at: r.try_get::<Option<i64>, _>(5)?.map(Timestamp),
        client: r.try_get(6)?,
    })
}

fn audit_row(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.try_get(0)?,
        at: Timestamp(r.try_get(1)?),
        user_id: r.try_get(2)?,
        actor: r.try_get(3)?,
        action: r.try_get(4)?,
        target: r.try_get(5)?,
        client: r.try_get(6)?,
        detail: r.try_get(7)?,
    })
}

pub(super) fn audit_insert(
    a: &NewAudit,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, actor, action, target, client, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.at.0)
    .bind(a.user_id.clone())
    .bind(a.actor.clone())
    .bind(a.action.clone())
    .bind(a.target.clone())
    .bind(a.client.clone())
    .bind(a.detail.clone())
}

impl Store {
    /// Writes a new user and its audit entry in one transaction; false (nothing written) if a
    /// user with this email exists.
    pub async fn insert_user(&self, u: &UserRow, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "INSERT INTO users (id, email, name, language, role, created_at, created_by, deactivated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(&u.id)
        .bind(u.email.as_str().to_lowercase())
        .bind(&u.name)
        .bind(u.language.as_str())
        .bind(u.role.as_str())
        .bind(u.created_at.0)
        .bind(&u.created_by)
        .bind(u.deactivated_at.map(|t| t.0))
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| user_row(&r, 0))
        .transpose()
    }

    /// The user with this address (compared lower-case).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE email = $1"
        )))
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| user_row(&r, 0))
        .transpose()
    }

    /// Every user, by email.
    pub async fn users(&self) -> Result<Vec<UserRow>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users ORDER BY email"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| user_row(r, 0))
        .collect()
    }

    /// Deactivates a user: in one transaction, marks the user, revokes every session, voids
    /// every unused sign-in link and writes the audit entry. False if the user is unknown or
    /// deactivated already (nothing written).
    pub async fn deactivate_user(
        &self,
        id: &str,
        now: Timestamp,
        audit: &NewAudit,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE users SET deactivated_at = $1 WHERE id = $2 AND deactivated_at IS NULL",
        )
        .bind(now.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE portal_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE portal_signin_links SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(now.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Lets a deactivated user sign in again (audited in the same transaction); false: the
    /// user is active already. Their old sessions stay revoked.
    pub async fn reactivate_user(&self, id: &str, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE users SET deactivated_at = NULL WHERE id = $1 AND deactivated_at IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives a user another role (audited in the same transaction). Refused (false, nothing
    /// written) when it would leave no active administrator: the check and the write are one
    /// statement, so two administrators demoting each other at once cannot both succeed.
    pub async fn set_user_role(&self, id: &str, role: &str, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE users SET role = $1 WHERE id = $2 AND role <> $1 AND ($1 = 'admin' OR (SELECT COUNT(*) FROM users WHERE role = 'admin' AND deactivated_at IS NULL AND id <> $2) > 0)",
        )
        .bind(role)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a sign-in link (its hash) for a user.
    pub async fn insert_signin_link(
        &self,
        hash: &str,
        user_id: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_signin_links (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a sign-in link could still be used now (unused, not expired): what the page
    /// shows before the button is pressed. Uses nothing.
    pub async fn signin_link_usable(&self, hash: &str, now: Timestamp) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM portal_signin_links WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Uses a sign-in link and opens a session for its user, with its audit entry (`audit`,
    /// made for the user), in one transaction. The link is spent by one conditional UPDATE
    /// (unused and not expired), so of two redemptions racing one wins. None: unknown, used,
    /// expired, or its user is deactivated (the link is spent then too; no session is written).
    pub async fn redeem_signin_link(
        &self,
        hash: &str,
        now: Timestamp,
        session: &NewSession,
        audit: impl FnOnce(&UserRow) -> NewAudit,
    ) -> Result<Option<UserRow>> {
        let mut tx = self.begin_write().await?;
        let user_id: Option<String> = sqlx::query_scalar(
            "UPDATE portal_signin_links SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(now.0)
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let user = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE id = $1 AND deactivated_at IS NULL"
        )))
        .bind(&user_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| user_row(&r, 0))
        .transpose()?;
        if let Some(u) = &user {
            sqlx::query(
                "INSERT INTO portal_sessions (hash, user_id, created_at, last_seen_at, expires_at, client) VALUES ($1, $2, $3, $3, $4, $5)",
            )
            .bind(&session.hash)
            .bind(&user_id)
            .bind(now.0)
            .bind(session.expires_at.0)
            .bind(&session.client)
            .execute(&mut *tx)
            .await?;
            audit_insert(&audit(u)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// A session and its user (whatever their state: the caller decides what is expired).
    pub async fn session(&self, hash: &str) -> Result<Option<(SessionRow, UserRow)>> {
        let row = sqlx::query(
            "SELECT s.hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, s.client,
                    u.id, u.email, u.name, u.language, u.role, u.created_at, u.created_by, u.deactivated_at
             FROM portal_sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((session_row(&r)?, user_row(&r, 7)?)))
            .transpose()
    }

    /// Moves a live session's last-seen time to `now` if it is at or before `stale_before`
    /// (so a session is written at most once per that interval).
    pub async fn touch_session(
        &self,
        hash: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE portal_sessions SET last_seen_at = $1 WHERE hash = $2 AND revoked_at IS NULL AND last_seen_at <= $3",
        )
        .bind(now.0)
        .bind(hash)
        .bind(stale_before.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes one session and writes the audit entry (one transaction); false if it was
    /// revoked already.
    pub async fn revoke_session(
        &self,
        hash: &str,
        now: Timestamp,
        audit: &NewAudit,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE portal_sessions SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes every session of a user and writes the audit entry (one transaction); how many
    /// were live.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        audit: &NewAudit,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE portal_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// Deletes sign-in links and sessions that expired before `before` (run with the job
    /// pruning). Users and the audit log are kept.
    pub async fn prune_portal(&self, before: Timestamp) -> Result<()> {
        sqlx::query("DELETE FROM portal_signin_links WHERE expires_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes one audit entry on its own.
    pub async fn insert_audit(&self, a: &NewAudit) -> Result<()> {
        audit_insert(a).execute(&self.pool).await?;
        Ok(())
    }

    /// Audit entries, newest first (see [`AuditFilter`]).
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        // Absent filters are bound as NULL and hold: one statement for every combination.
        let (before_at, before_id) = match f.before {
            Some((at, id)) => (Some(at.0), Some(id)),
            None => (None, None),
        };
        sqlx::query(
            "SELECT id, at, user_id, actor, action, target, client, detail FROM audit_log
             WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1)
               AND (CAST($2 AS TEXT) IS NULL OR action = $2)
               AND (CAST($3 AS BIGINT) IS NULL OR at >= $3)
               AND (CAST($4 AS BIGINT) IS NULL OR at < $4)
               AND (CAST($5 AS BIGINT) IS NULL OR at < $5 OR (at = $5 AND id < $6))
             ORDER BY at DESC, id DESC LIMIT $7",
        )
        .bind(f.actor.clone())
        .bind(f.action.clone())
        .bind(f.from.map(|t| t.0))
        .bind(f.to.map(|t| t.0))
        .bind(before_at)
        .bind(before_id)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_row)
        .collect()
    }
}
