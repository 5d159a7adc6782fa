//! Domain types parsed once at the edge: the core never sees raw strings for these.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. The store keeps every time in this form (binding
/// `.0`, never through serde); in JSON (the API, job payloads) it is an RFC 3339 string like
/// the CLI prints, with milliseconds when there are any. Reading JSON also takes the old
/// integer form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Timestamp(ms)),
            Raw::Text(s) => Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom),
        }
    }
}

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
            // Never echo an oversized value whole.
            let head: String = t.chars().take(40).flat_map(char::escape_debug).collect();
            return Err(format!("`{head}…` is longer than 254 characters"));
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
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
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

/// Public tracking ID of an offer: `PF-` + 12 random base32 characters (60 bits, not sequential).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OfferId(String);

impl OfferId {
    pub const LEN: usize = 12;
    pub fn generate() -> Self {
        OfferId(format!("PF-{}", random_base32(Self::LEN)))
    }
    /// Case-insensitive; `pf-abcd…` is the same offer as `PF-ABCD…`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_uppercase();
        let ok = t
            .strip_prefix("PF-")
            .is_some_and(|b| b.len() == Self::LEN && b.bytes().all(|c| B32.contains(&c)));
        if ok {
            Ok(OfferId(t))
        } else {
            Err(format!(
                "`{}` is not an Offer ID (PF- and {} characters of A-Z without I and O, 2-9)",
                s.trim().escape_debug(),
                Self::LEN
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an offer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// Exactly one trial product.
    Trial,
    /// One or more paid products, each with a licence count.
    Purchase,
    /// Delegated administration on its own (for a customer who already has a subscription).
    DelegatedAdmin,
}

impl OfferKind {
    pub const ALL: [OfferKind; 3] = [
        OfferKind::Trial,
        OfferKind::Purchase,
        OfferKind::DelegatedAdmin,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OfferKind::Trial => "trial",
            OfferKind::Purchase => "purchase",
            OfferKind::DelegatedAdmin => "delegated_admin",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "`{}` is not an offer kind (trial, purchase, delegated_admin)",
                    s.escape_debug()
                )
            })
    }
    /// The per-recipient invitation lifecycle of this kind.
    pub fn invitation_workflow(self) -> &'static str {
        match self {
            OfferKind::Trial => "trial_invitation",
            OfferKind::Purchase => "purchase_offer",
            OfferKind::DelegatedAdmin => "admin_offer",
        }
    }
}

impl fmt::Display for OfferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delegated-administration role: `full` ≈ global admin, `limited` ≈ password (helpdesk) admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    Full,
    Limited,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Full => "full",
            AdminRole::Limited => "limited",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "full" => Ok(AdminRole::Full),
            "limited" => Ok(AdminRole::Limited),
            o => Err(format!(
                "`{}` is not a delegated-admin role (full, limited)",
                o.escape_debug()
            )),
        }
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes (249, as published by the ISO 3166
/// Maintenance Agency), sorted.
pub const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// ISO 3166-1 alpha-2 country code, upper case (`DE`); only officially assigned codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    pub fn parse(s: &str) -> Result<Self, String> {
        let c = Self::parse_shape(s)?;
        if ISO_3166_ALPHA2.binary_search(&c.as_str()).is_ok() {
            Ok(c)
        } else {
            Err(format!(
                "`{}` is not an assigned ISO 3166-1 alpha-2 country code",
                c.as_str()
            ))
        }
    }
    /// Two letters, whether assigned or not: for rows stored before codes were checked.
    pub fn parse_stored(s: &str) -> Result<Self, String> {
        Self::parse_shape(s)
    }
    fn parse_shape(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Ok(Country([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
            ]))
        } else {
            Err(format!(
                "`{}` is not a two-letter country code like DE",
                t.escape_debug()
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Country::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A catalog product id: lower-case letters, digits and `-`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            Ok(ProductId(t.to_string()))
        } else {
            Err(format!(
                "`{}` is not a product id (a-z, 0-9 and -, at most 64)",
                t.escape_debug()
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProductId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ProductId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A number of user licences, checked against a product's limits where it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LicenseCount(u32);

impl LicenseCount {
    /// `n` within `min..=max`, or a message naming the limits.
    pub fn within(n: i64, min: u32, max: u32) -> Result<Self, String> {
        if n < i64::from(min) || n > i64::from(max) {
            Err(format!("{n} licences is outside {min}–{max}"))
        } else {
            Ok(LicenseCount(n as u32))
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// An internet domain name (the customer's), lower case, without wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    /// True when `host` is this domain or one of its subdomains (case-insensitive).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_lowercase();
        let d = self.as_str();
        host == d || host.strip_suffix(d).is_some_and(|rest| rest.ends_with('.'))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_end_matches('.').to_lowercase();
        if t.contains(['*', '%', '?']) {
            return Err(format!(
                "`{}`: wildcards are not allowed; give the exact domain",
                t.escape_debug()
            ));
        }
        let labels: Vec<&str> = t.split('.').collect();
        let ok = t.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if ok {
            Ok(DomainName(t))
        } else {
            Err(format!(
                "`{}` is not a domain name like contoso.com",
                s.trim().escape_debug()
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reseller's MPN ID (Microsoft Partner Network ID): 5 to 10 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MpnId(String);

impl MpnId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if (5..=10).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit()) {
            Ok(MpnId(t.to_string()))
        } else {
            Err(format!(
                "`{}` is not an MPN ID (5 to 10 digits)",
                t.escape_debug()
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MpnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an API token may do: `admin` everything, `sales_agent` create offers and send
/// invitations (and read), `viewer` read, `signups` only report completed sign-ups (for the
/// sign-up system's webhook), `bounces` only post bounces (the mail system's webhook),
/// `metrics` only scrape `GET /metrics` (a Prometheus server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    SalesAgent,
    Viewer,
    Signups,
    /// The mail system's bounce webhook.
    Bounces,
    /// A Prometheus server: only `GET /metrics`.
    Metrics,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::SalesAgent,
        Role::Viewer,
        Role::Signups,
        Role::Bounces,
        Role::Metrics,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SalesAgent => "sales_agent",
            Role::Viewer => "viewer",
            Role::Signups => "signups",
            Role::Bounces => "bounces",
            Role::Metrics => "metrics",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "`{}` is not a role (admin, sales_agent, viewer, signups, bounces, metrics)",
                    s.escape_debug()
                )
            })
    }
    /// Whether a holder of `self` may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        matches!(
            (self, needed),
            (Role::Admin, _)
                | (Role::SalesAgent, Role::SalesAgent | Role::Viewer)
                | (Role::Viewer, Role::Viewer)
                | (Role::Signups, Role::Signups)
                | (Role::Bounces, Role::Bounces)
                | (Role::Metrics, Role::Metrics)
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A free-text name typed by a person (organisation, reseller name): trimmed, 1 to `max`
/// characters, no control characters. HTML in it is kept as typed and escaped on output.
pub fn parse_name(s: &str, max: usize) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    if t.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(t.to_string())
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
    fn roles_round_trip_and_machines_may_do_one_thing() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
            assert!(Role::Admin.allows(r));
        }
        assert_eq!(Role::parse(" metrics "), Ok(Role::Metrics));
        for r in Role::ALL {
            assert_eq!(Role::Metrics.allows(r), r == Role::Metrics, "{r}");
            assert_eq!(
                r.allows(Role::Metrics),
                matches!(r, Role::Admin | Role::Metrics),
                "{r}"
            );
        }
    }

    #[test]
    fn a_domain_covers_itself_and_its_subdomains_only() {
        let d = DomainName::parse("fabrikam.example").unwrap();
        assert!(d.covers("fabrikam.example"));
        assert!(d.covers("Mail.Fabrikam.Example."));
        assert!(!d.covers("evilfabrikam.example"));
        assert!(!d.covers("fabrikam.example.evil"));
        assert!(!d.covers("example"));
    }

    #[test]
    fn timestamps_are_rfc3339_in_json() {
        let t = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            serde_json::json!("2026-11-22T10:00:00Z")
        );
        let ms = Timestamp(t.0 + 250);
        assert_eq!(
            serde_json::to_value(ms).unwrap(),
            serde_json::json!("2026-11-22T10:00:00.250Z")
        );
        for v in [
            serde_json::json!("2026-11-22T10:00:00.250Z"),
            serde_json::json!("2026-11-22T11:00:00.250+01:00"),
            serde_json::json!(t.0 + 250),
        ] {
            assert_eq!(serde_json::from_value::<Timestamp>(v).unwrap(), ms);
        }
        assert!(serde_json::from_value::<Timestamp>(serde_json::json!("yesterday")).is_err());
    }

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
            "a.@b.de",
            ".a@b.de",
            "a..b@c.de",
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

    #[test]
    fn offer_ids() {
        let id = OfferId::generate();
        assert_eq!(id.as_str().len(), 15);
        assert_eq!(
            OfferId::parse(&id.as_str().to_ascii_lowercase()).unwrap(),
            id
        );
        for bad in [
            "",
            "PF-",
            "PF-ABCDEFGHJKM",
            "PF-ABCDEFGHJKMNP",
            "PF-ABCDEFGHJKMO",
            "XX-ABCDEFGHJKMN",
            "PF-ABCDEFGHJK1N",
        ] {
            assert!(OfferId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_ne!(OfferId::generate(), OfferId::generate());
    }

    #[test]
    fn domains_countries_mpn_and_licences() {
        assert_eq!(
            DomainName::parse("Contoso.COM.").unwrap().as_str(),
            "contoso.com"
        );
        for bad in [
            "contoso",
            "*.contoso.com",
            "con%",
            "-a.de",
            "a b.de",
            "<b>.de",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Country::parse("de").unwrap().as_str(), "DE");
        assert!(Country::parse("DEU").is_err());
        for unassigned in ["XX", "ZZ", "UK", "EU", "QQ"] {
            let e = Country::parse(unassigned).unwrap_err();
            assert!(
                e.contains("not an assigned ISO 3166-1"),
                "{unassigned}: {e}"
            );
        }
        for assigned in ["DE", "at", "GB", "US", "CH", "AX", "SS"] {
            assert!(Country::parse(assigned).is_ok(), "{assigned} refused");
        }
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Country::parse_stored("XX").unwrap().as_str(), "XX");
        assert!(MpnId::parse("1234567").is_ok());
        assert!(MpnId::parse("12a4567").is_err());
        assert_eq!(LicenseCount::within(5, 1, 300).unwrap().get(), 5);
        assert!(LicenseCount::within(0, 1, 300).is_err());
        assert!(LicenseCount::within(301, 1, 300).is_err());
        assert!(parse_name(" a\u{7}b ", 10).is_err());
        assert_eq!(parse_name(" <b>x</b> ", 20).unwrap(), "<b>x</b>");
    }
}
