//! Partner users: created at the command line (the first administrator) or invited by an
//! administrator from the portal, listed, deactivated (which revokes their sessions).

use crate::app::AppState;
use crate::core::domain::{EmailAddress, Locale, Role, parse_name, random_base32};
use crate::core::portal::UserRow;

use super::*;

/// The roles a partner user may have (the API's; `signups` and `bounces` are for machines).
pub const USER_ROLES: [Role; 3] = [Role::Admin, Role::SalesAgent, Role::Viewer];

/// A user to create, parsed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: EmailAddress,
    pub name: String,
    pub language: Locale,
    pub role: Role,
}

impl NewUser {
    /// Parses what a person typed (form fields or CLI flags): the email (stored lower-case),
    /// a name, a role of [`USER_ROLES`], a language (de or en).
    pub fn parse(email: &str, name: &str, role: &str, language: &str) -> Result<NewUser> {
        let email =
            EmailAddress::parse(&email.trim().to_lowercase()).map_err(|m| invalid("email", m))?;
        let name = parse_name(name, 100).map_err(|m| invalid("name", m))?;
        let role = parse_role(role)?;
        let language = match language.trim() {
            "de" => Locale::De,
            "en" => Locale::En,
            _ => return Err(invalid("language", "must be de or en")),
        };
        Ok(NewUser {
            email,
            name,
            language,
            role,
        })
    }
}

/// A user's role: admin, sales_agent or viewer.
pub fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s)
        .ok()
        .filter(|r| USER_ROLES.contains(r))
        .ok_or_else(|| invalid("role", "must be admin, sales_agent or viewer"))
}

/// Creates a user and returns it with a sign-in link (its secret: the CLI prints it for the
/// first administrator; nothing else shows it). Audited as `user.create`.
pub async fn create_user(rt: &AppState, new: &NewUser, by: &Actor) -> Result<(UserRow, Link)> {
    let user = UserRow {
        id: format!("u{}", random_base32(16).to_ascii_lowercase()),
        email: new.email.clone(),
        name: new.name.clone(),
        language: new.language,
        role: new.role,
        created_at: rt.clock.now(),
        created_by: by.label.clone(),
        deactivated_at: None,
    };
    let detail = format!("role={} language={}", user.role.as_str(), user.language);
    let audit = audit::entry(rt, by, "user.create", user.email.as_str(), &detail);
    if !rt.store.insert_user(&user, &audit).await? {
        return Err(PortalError::Exists(user.email.as_str().to_string()));
    }
    let link = issue_link(rt, &user).await?;
    tracing::info!(user = %user.id, role = user.role.as_str(), by = %by.label, "portal user created");
    Ok((user, link))
}

/// An administrator invites a user: created, and mailed a sign-in link (in their language,
/// saying who invited them). Audited as `user.create`.
pub async fn invite_user(
    rt: &AppState,
    new: &NewUser,
    by: &Actor,
    inviter: &str,
) -> Result<UserRow> {
    let (user, link) = create_user(rt, new, by).await?;
    mail_link(rt, &user, &link, Some(inviter), by).await?;
    Ok(user)
}

/// Every user, by email.
pub async fn list_users(rt: &AppState) -> Result<Vec<UserRow>> {
    Ok(rt.store.users().await?)
}

/// Deactivates the user with this email: they can no longer sign in, their sessions and
/// unused links end now (one transaction, audited as `user.deactivate`). Deactivating a
/// deactivated user changes nothing.
pub async fn deactivate_user(rt: &AppState, email: &str, by: &Actor) -> Result<UserRow> {
    let user = rt
        .store
        .user_by_email(email.trim())
        .await?
        .ok_or_else(|| PortalError::NotFound(email.trim().to_string()))?;
    let audit = audit::entry(rt, by, "user.deactivate", user.email.as_str(), "");
    if rt
        .store
        .deactivate_user(&user.id, rt.clock.now(), &audit)
        .await?
    {
        tracing::info!(user = %user.id, by = %by.label, "portal user deactivated");
    }
    rt.store
        .user(&user.id)
        .await?
        .ok_or_else(|| PortalError::NotFound(user.email.as_str().to_string()))
}

/// Lets a deactivated user sign in again (audited as `user.reactivate`); they get no link by
/// this: they ask for one on the sign-in page. Reactivating an active user changes nothing.
pub async fn reactivate_user(rt: &AppState, email: &str, by: &Actor) -> Result<UserRow> {
    let user = user_named(rt, email).await?;
    let audit = audit::entry(rt, by, "user.reactivate", user.email.as_str(), "");
    if rt.store.reactivate_user(&user.id, &audit).await? {
        tracing::info!(user = %user.id, by = %by.label, "portal user reactivated");
    }
    user_again(rt, &user).await
}

/// Gives the user with this email another role (audited as `user.role`, with the old and the
/// new role), effective on their next request. There is always an active administrator
/// left: demoting the last one is refused (`Invalid` on the field `role`).
pub async fn change_role(rt: &AppState, email: &str, role: Role, by: &Actor) -> Result<UserRow> {
    let user = user_named(rt, email).await?;
    if user.role == role {
        return Ok(user);
    }
    let detail = format!("{} -> {}", user.role.as_str(), role.as_str());
    let audit = audit::entry(rt, by, "user.role", user.email.as_str(), &detail);
    if !rt
        .store
        .set_user_role(&user.id, role.as_str(), &audit)
        .await?
    {
        return Err(invalid(
            "role",
            "the last active administrator keeps the role admin",
        ));
    }
    tracing::info!(user = %user.id, by = %by.label, %detail, "portal user's role changed");
    user_again(rt, &user).await
}

async fn user_named(rt: &AppState, email: &str) -> Result<UserRow> {
    rt.store
        .user_by_email(email.trim())
        .await?
        .ok_or_else(|| PortalError::NotFound(email.trim().to_string()))
}

async fn user_again(rt: &AppState, user: &UserRow) -> Result<UserRow> {
    rt.store
        .user(&user.id)
        .await?
        .ok_or_else(|| PortalError::NotFound(user.email.as_str().to_string()))
}

/// A fresh id-like secret (160 bits, base32).
pub(crate) fn secret() -> String {
    random_base32(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_at_the_edge() {
        let u = NewUser::parse(" Erika@Contoso.Example ", "Erika", "sales_agent", "de").unwrap();
        assert_eq!(u.email.as_str(), "erika@contoso.example");
        assert_eq!(u.role, Role::SalesAgent);
        for (e, n, r, l, field) in [
            ("x", "N", "admin", "de", "email"),
            ("a@b.example", " ", "admin", "de", "name"),
            ("a@b.example", "N", "signups", "de", "role"),
            ("a@b.example", "N", "bounces", "de", "role"),
            ("a@b.example", "N", "admin", "fr", "language"),
        ] {
            match NewUser::parse(e, n, r, l) {
                Err(PortalError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{e} {n} {r} {l}: {other:?}"),
            }
        }
    }
}
