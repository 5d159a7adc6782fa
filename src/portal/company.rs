//! The partner's identity (name, legal name, email, phone, website, logo) as administrators
//! edit it on the portal's company page: checked here, stored in the `company` row with its
//! audit entry (`company.update`, naming what changed), and this node's copy replaced at once
//! (other nodes re-read it within `store::COMPANY_REFRESH`).

use serde_json::{Map, Value};

use crate::app::AppState;
use crate::core::config::PartnerSettings;
use crate::core::domain::EmailAddress;
use crate::store::CompanyFields;

use super::*;

/// The largest logo accepted, in bytes.
pub const LOGO_MAX_BYTES: usize = 200 * 1024;

/// What is wrong with a typed value (the page words it in the user's language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Required and empty.
    Empty,
    /// Longer than this many characters.
    TooLong(usize),
    /// Line breaks or other control characters.
    Control,
    /// Not an email address.
    Email,
    /// Other characters than digits, spaces and `+ - ( ) / .`.
    Phone,
    /// Not an http(s) URL with a host.
    Url,
    /// No file chosen (or an empty one).
    NoFile,
    /// Neither PNG nor JPEG (by its first bytes, whatever its name or type says).
    LogoType,
    /// Larger than [`LOGO_MAX_BYTES`].
    LogoTooLarge,
}

/// The fields as typed.
#[derive(Debug, Clone, Default)]
pub struct CompanyInput {
    pub name: String,
    pub legal_name: String,
    pub email: String,
    pub phone: String,
    pub website: String,
}

impl CompanyInput {
    pub fn of(p: &PartnerSettings) -> CompanyInput {
        CompanyInput {
            name: p.name.clone(),
            legal_name: p.legal_name.clone(),
            email: p.email.as_str().to_string(),
            phone: p.phone.clone(),
            website: p.website.clone(),
        }
    }

    /// The fields, checked (trimmed); else every problem, by field, in form order.
    pub fn parse(&self) -> Result<CompanyFields, Vec<(&'static str, Problem)>> {
        let mut errors = Vec::new();
        let mut text = |field: &'static str, v: &str, max: usize, required: bool| {
            let v = v.trim();
            if required && v.is_empty() {
                errors.push((field, Problem::Empty));
            } else if v.chars().count() > max {
                errors.push((field, Problem::TooLong(max)));
            } else if v.chars().any(char::is_control) {
                errors.push((field, Problem::Control));
            }
            v.to_string()
        };
        let name = text("name", &self.name, 100, true);
        let legal_name = text("legal_name", &self.legal_name, 200, true);
        let email_text = text("email", &self.email, 254, true);
        let phone = text("phone", &self.phone, 40, false);
        let website = text("website", &self.website, 200, false);
        let email = EmailAddress::parse(&email_text).ok();
        if email.is_none() && !errors.iter().any(|(f, _)| *f == "email") {
            errors.push(("email", Problem::Email));
        }
        if !errors.iter().any(|(f, _)| *f == "phone")
            && !phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-()/.".contains(c))
        {
            errors.push(("phone", Problem::Phone));
        }
        if !website.is_empty()
            && !errors.iter().any(|(f, _)| *f == "website")
            && !is_web_url(&website)
        {
            errors.push(("website", Problem::Url));
        }
        let order = ["name", "legal_name", "email", "phone", "website"];
        errors.sort_by_key(|(f, _)| order.iter().position(|o| o == f));
        match email {
            Some(email) if errors.is_empty() => Ok(CompanyFields {
                name,
                legal_name,
                email,
                phone,
                website,
            }),
            _ => Err(errors),
        }
    }
}

fn is_web_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "https" | "http")
            && u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
    })
}

/// A logo's content type from its first bytes: PNG or JPEG only (never SVG, which can carry
/// script); else the problem.
pub fn check_logo(bytes: &[u8]) -> Result<&'static str, Problem> {
    if bytes.is_empty() {
        return Err(Problem::NoFile);
    }
    if bytes.len() > LOGO_MAX_BYTES {
        return Err(Problem::LogoTooLarge);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok("image/jpeg")
    } else {
        Err(Problem::LogoType)
    }
}

/// Writes the identity's current fields over an email context's `partner` object (an email
/// queued before an edit is sent with the identity as it is then).
pub fn overlay(p: &mut Map<String, Value>, now: &PartnerSettings) {
    let mut set = |k: &str, v: Value| {
        p.insert(k.into(), v);
    };
    set("name", Value::String(now.name.clone()));
    set("legal_name", Value::String(now.legal_name.clone()));
    set("email", Value::String(now.email.as_str().to_string()));
    set("phone", Value::String(now.phone.clone()));
    set("website", Value::String(now.website.clone()));
    set(
        "logo_url",
        now.logo_url
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
}

async fn refreshed(rt: &AppState) {
    if let Err(e) = rt.engine.company.refresh(&rt.store).await {
        tracing::warn!(error = %e, "saved, but the partner's identity could not be re-read");
    }
}

/// Saves the identity's fields: the names of the fields that changed (none: nothing was
/// written). Audited as `company.update`.
pub async fn update(rt: &AppState, f: &CompanyFields, by: &Actor) -> Result<Vec<&'static str>> {
    let now = rt.company();
    let old = CompanyFields::of(&now.partner);
    let changed: Vec<&'static str> = [
        ("name", old.name != f.name),
        ("legal_name", old.legal_name != f.legal_name),
        ("email", old.email != f.email),
        ("phone", old.phone != f.phone),
        ("website", old.website != f.website),
    ]
    .into_iter()
    .filter_map(|(k, c)| c.then_some(k))
    .collect();
    if changed.is_empty() {
        return Ok(changed);
    }
    let detail = format!("changed: {}", changed.join(", "));
    let audit = audit::entry(rt, by, "company.update", "company", &detail);
    rt.store
        .save_company(f, rt.clock.now(), &by.label, &audit)
        .await?;
    refreshed(rt).await;
    Ok(changed)
}

/// Stores a new logo (checked with [`check_logo`]; the problem else). Audited as
/// `company.update` (`logo`).
pub async fn set_logo(
    rt: &AppState,
    bytes: &[u8],
    by: &Actor,
) -> Result<std::result::Result<(), Problem>> {
    let content_type = match check_logo(bytes) {
        Ok(t) => t,
        Err(p) => return Ok(Err(p)),
    };
    let fields = CompanyFields::of(&rt.company().partner);
    let detail = format!("changed: logo ({content_type}, {} bytes)", bytes.len());
    let audit = audit::entry(rt, by, "company.update", "company", &detail);
    rt.store
        .save_company_logo(
            &fields,
            Some((content_type, bytes)),
            rt.clock.now(),
            &by.label,
            &audit,
        )
        .await?;
    refreshed(rt).await;
    Ok(Ok(()))
}

/// Removes the logo (nothing to do without one). Audited as `company.update` (`logo removed`).
pub async fn remove_logo(rt: &AppState, by: &Actor) -> Result<bool> {
    let now = rt.company();
    if now.logo.is_none() {
        return Ok(false);
    }
    let fields = CompanyFields::of(&now.partner);
    let audit = audit::entry(rt, by, "company.update", "company", "changed: logo removed");
    rt.store
        .save_company_logo(&fields, None, rt.clock.now(), &by.label, &audit)
        .await?;
    refreshed(rt).await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> CompanyInput {
        CompanyInput {
            name: " Fabrikam ".into(),
            legal_name: "Fabrikam GmbH".into(),
            email: "info@fabrikam.example".into(),
            phone: "+49 (30) 123-45/6.7".into(),
            website: "https://fabrikam.example/".into(),
        }
    }

    #[test]
    fn fields_are_checked() {
        let f = input().parse().unwrap();
        assert_eq!(f.name, "Fabrikam");
        let mut i = input();
        i.name = String::new();
        i.email = "nope".into();
        i.phone = "030 <1234>".into();
        i.website = "javascript:alert(1)".into();
        i.legal_name = "x".repeat(201);
        assert_eq!(
            i.parse().unwrap_err(),
            vec![
                ("name", Problem::Empty),
                ("legal_name", Problem::TooLong(200)),
                ("email", Problem::Email),
                ("phone", Problem::Phone),
                ("website", Problem::Url),
            ]
        );
        let mut i = input();
        i.name = "a\nb".into();
        i.website = "ftp://fabrikam.example".into();
        assert_eq!(
            i.parse().unwrap_err(),
            vec![("name", Problem::Control), ("website", Problem::Url)]
        );
        let mut i = input();
        i.phone = String::new();
        i.website = String::new();
        assert!(i.parse().is_ok());
    }

    #[test]
    fn logos_are_png_or_jpeg_by_their_bytes() {
        assert_eq!(check_logo(b"\x89PNG\r\n\x1a\nrest"), Ok("image/png"));
        assert_eq!(check_logo(&[0xFF, 0xD8, 0xFF, 0xE0]), Ok("image/jpeg"));
        assert_eq!(
            check_logo(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>"),
            Err(Problem::LogoType)
        );
        assert_eq!(check_logo(b"<html>"), Err(Problem::LogoType));
        assert_eq!(check_logo(b""), Err(Problem::NoFile));
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(LOGO_MAX_BYTES + 1, 0);
        assert_eq!(check_logo(&big), Err(Problem::LogoTooLarge));
    }
}
