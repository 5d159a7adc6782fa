//! Domain types parsed once at the edge: the core never sees raw strings for these.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. The store keeps every time in this form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or_default()
    }
    pub fn plus(self, d: Span) -> Self {
        Timestamp(self.0.saturating_add(d.0))
    }
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| Timestamp::from_datetime(d.with_timezone(&Utc)))
            .map_err(|e| format!("`{s}` is not an RFC 3339 date-time ({e})"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A signed duration in milliseconds, written as `90s`, `15m`, `12h`, `30d`, `2w`, `-7d`, `0d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub i64);

impl Span {
    pub fn from_secs(s: i64) -> Self {
        Span(s * 1000)
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let split = body
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` is not a duration: add a unit (ms, s, m, h, d, w)"))?;
        let (num, unit) = body.split_at(split);
        let n: i64 = num.parse().map_err(|_| {
            format!("`{s}` is not a duration: expected digits then a unit, like 30d")
        })?;
        let ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => {
                return Err(format!(
                    "`{s}` has an unknown unit `{unit}` (use ms, s, m, h, d or w)"
                ));
            }
        };
        let v = n
            .checked_mul(ms)
            .ok_or_else(|| format!("`{s}` is too long a duration"))?;
        Ok(Span(if neg { -v } else { v }))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, v) = if self.0 < 0 {
            ("-", -self.0)
        } else {
            ("", self.0)
        };
        for (unit, ms) in [
            ("w", 604_800_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if v != 0 && v % ms == 0 {
                return write!(f, "{sign}{}{unit}", v / ms);
            }
        }
        if v == 0 {
            return f.write_str("0s");
        }
        write!(f, "{sign}{v}ms")
    }
}

/// An email address checked for shape and for header injection; stored lower-cased domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("the email address is empty".into());
        }
        if t.len() > 254 {
            return Err(format!("`{t}` is longer than 254 characters"));
        }
        if t.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        }) {
            return Err(format!(
                "`{}` contains characters not allowed in an email address",
                t.escape_debug()
            ));
        }
        let (local, domain) = t
            .rsplit_once('@')
            .ok_or_else(|| format!("`{t}` has no `@`"))?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(format!("`{t}` has an invalid local part"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return Err(format!("`{t}` has an invalid domain `{domain}`"));
        }
        Ok(EmailAddress(format!(
            "{local}@{}",
            domain.to_ascii_lowercase()
        )))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EmailAddress::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The two locales every template exists in; `en` is the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    De,
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::De, Locale::En];
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::De => "de",
            Locale::En => "en",
        }
    }
    /// `de`, `de-DE`, `de_AT` → De; anything else → None.
    pub fn parse(s: &str) -> Option<Locale> {
        let lang = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match lang.as_str() {
            "de" => Some(Locale::De),
            "en" => Some(Locale::En),
            _ => None,
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Opaque id of a workflow instance (`in_` + 20 base32 chars, random).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(String);

const B32: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub fn random_base32(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| B32[rng.random_range(0..32)] as char)
        .collect()
}

impl InstanceId {
    pub fn generate() -> Self {
        InstanceId(format!("in_{}", random_base32(20).to_ascii_lowercase()))
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.len() > 3
            && t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Ok(InstanceId(t.to_string()))
        } else {
            Err(format!("`{t}` is not an instance id"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        assert_eq!("30d".parse::<Span>().unwrap(), Span(30 * 86_400_000));
        assert_eq!("-7d".parse::<Span>().unwrap(), Span(-7 * 86_400_000));
        assert_eq!("250ms".parse::<Span>().unwrap(), Span(250));
        assert_eq!(Span(-7 * 86_400_000).to_string(), "-1w");
        assert_eq!(Span(90_000).to_string(), "90s");
        assert!("30".parse::<Span>().is_err());
        assert!("30y".parse::<Span>().is_err());
        assert!("d".parse::<Span>().is_err());
    }

    #[test]
    fn email_addresses() {
        assert_eq!(
            EmailAddress::parse("Anna@Contoso.COM").unwrap().as_str(),
            "Anna@contoso.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.de",
            "a b@c.de",
            "a@b.de\r\nBcc: x@y.de",
            "<a@b.de>",
            "a@-b.de",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn locales() {
        assert_eq!(Locale::parse("de-AT"), Some(Locale::De));
        assert_eq!(Locale::parse("EN"), Some(Locale::En));
        assert_eq!(Locale::parse("fr"), None);
    }
}
