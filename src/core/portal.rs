//! The partner portal's read models: users, their sessions and the audit log, as the store
//! returns them and the portal services and pages use them.

use crate::core::domain::{EmailAddress, Locale, Role, Timestamp};

/// A partner user, as stored (parsed: a row that does not parse is `Corrupt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    /// Lower-case.
    pub email: EmailAddress,
    pub name: String,
    pub language: Locale,
    /// admin, sales_agent or viewer.
    pub role: Role,
    pub created_at: Timestamp,
    /// Who created it: `cli`, or the creating administrator's email.
    pub created_by: String,
    pub deactivated_at: Option<Timestamp>,
}

impl UserRow {
    pub fn active(&self) -> bool {
        self.deactivated_at.is_none()
    }
}

/// A portal session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub hash: String,
    pub user_id: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute expiry.
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub client: String,
}

/// An audit log entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: Timestamp,
    pub user_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client: String,
    pub detail: String,
}

/// Which audit entries to read: newest first, `limit` of them, older than `before` (the
/// keyset cursor: the (at, id) of the last entry of the previous page).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
    pub before: Option<(Timestamp, i64)>,
    pub limit: i64,
}
