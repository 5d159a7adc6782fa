//! The partner portal's foundation (issue 14): partner users and their roles ([`users`]),
//! passwordless sign-in by a single-use emailed link and server-side sessions ([`signin`]),
//! and the audit log of every write ([`audit`]). Typed services shared by `web` (the
//! `/portal` pages) and `cli` (`partnerflow users …`); the store does the SQL.

pub mod audit;
pub mod company;
pub mod signin;
pub mod users;

pub use audit::*;
pub use signin::*;
pub use users::*;

use crate::core::portal::UserRow;
use crate::engine::EngineError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// A value a person typed does not fit (`field` names the form field / CLI flag).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("a user with the email {0} exists already")]
    Exists(String),
    #[error("no user {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub type Result<T, E = PortalError> = std::result::Result<T, E>;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> PortalError {
    PortalError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Who does something, and from where: what every audit entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in user's id (None: the command line).
    pub user_id: Option<String>,
    /// The user's email, or `cli`.
    pub label: String,
    /// The client address (as the rate limits see it), or `cli`.
    pub client: String,
}

impl Actor {
    /// The operator at the command line.
    pub fn cli() -> Actor {
        Actor {
            user_id: None,
            label: "cli".into(),
            client: "cli".into(),
        }
    }
    /// A signed-in user, from a client address.
    pub fn user(u: &UserRow, client: &str) -> Actor {
        Actor {
            user_id: Some(u.id.clone()),
            label: u.email.as_str().to_string(),
            client: client.to_string(),
        }
    }
}
