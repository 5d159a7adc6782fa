//! `partnerflow users …`: the partner portal's users. `create` makes a user (the first
//! administrator, typically) and prints a sign-in link for them; `list`; `deactivate`. Every
//! command calls the `portal` services (audited as the actor `cli`), never the store.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::output::{CliError, print_json};
use crate::app::AppState;
use crate::portal::{self, Actor, NewUser};

#[derive(Subcommand, Debug)]
pub(crate) enum UsersCmd {
    /// Create a portal user and print a sign-in link for them (single use, valid for
    /// portal.signin_link_ttl). This is how the first administrator gets in.
    Create {
        /// The user's email address (one user per address; stored lower-case).
        #[arg(long)]
        email: String,
        /// The user's name, as the portal and emails show it.
        #[arg(long)]
        name: String,
        /// admin (users, company information, everything), sales_agent (offers, invitations,
        /// campaigns) or viewer (read only).
        #[arg(long, value_enum)]
        role: UserRole,
        /// The language of the user's pages and emails: de or en.
        #[arg(long, value_enum, default_value_t = Language::De)]
        language: Language,
    },
    /// List the portal users (active and deactivated).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a user: they can no longer sign in; their sessions end now.
    Deactivate {
        /// The user's email address.
        email: String,
    },
    /// Let a deactivated user sign in again (they request a link on the sign-in page).
    Reactivate {
        /// The user's email address.
        email: String,
    },
    /// Give a user another role (effective on their next request). The last active
    /// administrator keeps the role admin.
    Role {
        /// The user's email address.
        email: String,
        /// The new role.
        #[arg(long, value_enum)]
        role: UserRole,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum UserRole {
    Admin,
    SalesAgent,
    Viewer,
}

impl UserRole {
    fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::SalesAgent => "sales_agent",
            UserRole::Viewer => "viewer",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum Language {
    De,
    En,
}

pub(crate) async fn dispatch(cmd: UsersCmd, rt: &AppState) -> Result<(), CliError> {
    match cmd {
        UsersCmd::Create {
            email,
            name,
            role,
            language,
        } => {
            let lang = match language {
                Language::De => "de",
                Language::En => "en",
            };
            let new = NewUser::parse(&email, &name, role.as_str(), lang)?;
            let (user, link) = portal::create_user(rt, &new, &Actor::cli()).await?;
            println!(
                "user {} ({}, {}) created",
                user.email.as_str(),
                user.role.as_str(),
                user.language
            );
            // The one place a sign-in link is shown: to the operator creating the user.
            println!(
                "sign-in link (single use, valid until {}):\n{}",
                link.expires_at, link.url
            );
        }
        UsersCmd::List { json } => {
            let users = portal::list_users(rt).await?;
            if json {
                print_json(&json!(
                    users
                        .iter()
                        .map(|u| json!({
                            "id": u.id, "email": u.email, "name": u.name,
                            "language": u.language, "role": u.role.as_str(),
                            "created_at": u.created_at.to_rfc3339(), "created_by": u.created_by,
                            "deactivated_at": u.deactivated_at.map(|t| t.to_rfc3339()),
                        }))
                        .collect::<Vec<_>>()
                ));
            } else if users.is_empty() {
                println!(
                    "no users: create the first administrator with `partnerflow users create --email … --name … --role admin`"
                );
            } else {
                for u in users {
                    let state = match u.deactivated_at {
                        Some(t) => format!("deactivated {t}"),
                        None => "active".into(),
                    };
                    println!(
                        "{:<40} {:<12} {}  {:<30} {state}",
                        u.email.as_str(),
                        u.role.as_str(),
                        u.language,
                        u.name
                    );
                }
            }
        }
        UsersCmd::Reactivate { email } => {
            let u = portal::reactivate_user(rt, &email, &Actor::cli()).await?;
            println!("user {} is active", u.email.as_str());
        }
        UsersCmd::Role { email, role } => {
            let role = crate::core::domain::Role::parse(role.as_str())
                .map_err(|e| CliError::Other(format!("--role: {e}")))?;
            let u = portal::change_role(rt, &email, role, &Actor::cli()).await?;
            println!("user {} has the role {}", u.email.as_str(), u.role.as_str());
        }
        UsersCmd::Deactivate { email } => {
            let u = portal::deactivate_user(rt, &email, &Actor::cli()).await?;
            println!(
                "user {} deactivated (since {}); their sessions are ended",
                u.email.as_str(),
                u.deactivated_at.unwrap_or(u.created_at)
            );
        }
    }
    Ok(())
}
