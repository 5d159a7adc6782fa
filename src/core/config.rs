//! Layered configuration: built-in `config/default.toml` < `--config FILE` < environment
//! (`PARTNERFLOW__SECTION__KEY`). Every error names the key and the layer it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::domain::{Locale, Span};

/// The documented defaults; also the list of every key there is.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "PARTNERFLOW__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("config key `{key}` (from {source_name}): {message}")]
    Key {
        key: String,
        source_name: String,
        message: String,
    },
}

/// A secret value: never printed, never logged — not even in the error about a value of the
/// wrong type (`password = 12345` says "a number", never which).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        struct V;
        impl V {
            fn refuse<E: Error>(self, what: &'static str) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other(what), &self))
            }
        }
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_bool<E: Error>(self, _: bool) -> Result<Secret, E> {
                self.refuse("a boolean (value not shown)")
            }
            fn visit_i64<E: Error>(self, _: i64) -> Result<Secret, E> {
                self.refuse("a number (value not shown)")
            }
            fn visit_u64<E: Error>(self, _: u64) -> Result<Secret, E> {
                self.refuse("a number (value not shown)")
            }
            fn visit_i128<E: Error>(self, _: i128) -> Result<Secret, E> {
                self.refuse("a number (value not shown)")
            }
            fn visit_u128<E: Error>(self, _: u128) -> Result<Secret, E> {
                self.refuse("a number (value not shown)")
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<Secret, E> {
                self.refuse("a number (value not shown)")
            }
            fn visit_char<E: Error>(self, _: char) -> Result<Secret, E> {
                self.refuse("a character (value not shown)")
            }
            fn visit_bytes<E: Error>(self, _: &[u8]) -> Result<Secret, E> {
                self.refuse("bytes (value not shown)")
            }
        }
        d.deserialize_string(V)
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub app: AppSettings,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub partner: PartnerSettings,
    pub email: EmailSettings,
    pub jobs: JobSettings,
    pub schedules: Schedules,
    pub links: LinkSettings,
    pub offers: OfferSettings,
    pub public: PublicSettings,
    pub campaigns: CampaignSettings,
    pub portal: PortalSettings,
    #[serde(default)]
    pub workflows: BTreeMap<String, WorkflowOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    pub data_dir: PathBuf,
    pub workflows_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub catalog: PathBuf,
    pub default_locale: Locale,
    pub public_base_url: url::Url,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: std::net::SocketAddr,
    pub admin_token: Secret,
    /// Behind a reverse proxy: the header that proxy sets to the client's address (e.g.
    /// `x-forwarded-for`; its last entry is taken, the one our proxy appended). Empty: the
    /// TCP peer's address. Only set it when every request comes through that proxy.
    pub trusted_proxy_header: String,
    /// A connection that has not sent a complete request head within this time is closed.
    pub header_read_timeout: Span,
    /// A second, private address serving `GET /metrics` without a token (and `/readyz`,
    /// `/healthz`), for a Prometheus server on an internal network. Empty (None): not served
    /// separately; `/metrics` on `bind` always needs a `metrics` (or `admin`) token.
    #[serde(deserialize_with = "empty_or_socket_addr")]
    pub metrics_bind: Option<std::net::SocketAddr>,
}

/// An address (`HOST:PORT`), or None for an empty string.
fn empty_or_socket_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{}` is not an address (HOST:PORT, e.g. 127.0.0.1:9464) nor empty: {e}",
            s.escape_debug()
        ))
    })
}

/// Limits of the customer's public pages (`/o/…`, `/c/…`, `/r/…`, `/p/…`; not the one-click
/// unsubscribe `/u/…`, which mail providers post in bulk from one address). Counted in
/// the database, so they hold across every node that shares it. 0 turns a limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicSettings {
    /// How long a form (its CSRF token) stays valid after the page was shown.
    pub form_max_age: Span,
    /// Requests (page views and form posts) per client address per minute.
    pub requests_per_client_per_minute: u32,
    /// Accept forms submitted per client address per hour.
    pub accepts_per_client_per_hour: u32,
    /// Confirmation emails per recipient address per day.
    pub confirmations_per_address_per_day: u32,
    /// Confirmation emails per claimed customer domain per day.
    pub confirmations_per_domain_per_day: u32,
}

/// The partner portal (`/portal`): passwordless sign-in by emailed link, sessions, limits.
/// The limits are counted in the database (0 turns one off).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// How long a sign-in link can be used (once).
    pub signin_link_ttl: Span,
    /// A session not used for this long ends.
    pub session_idle: Span,
    /// A session ends this long after sign-in, however much it is used.
    pub session_max: Span,
    /// Sign-in links requested per email address per hour.
    pub signin_requests_per_address_per_hour: u32,
    /// Sign-in links requested per client address per hour.
    pub signin_requests_per_client_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub busy_timeout: Span,
    pub statement_timeout: Span,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSettings {
    pub id: String,
    pub name: String,
    pub legal_name: String,
    pub email: crate::core::domain::EmailAddress,
    pub phone: String,
    pub website: String,
    /// The service provider (the cloud vendor) whose subscriptions the partner offers, by
    /// name: pages and emails say "authorised partner of …" and "billed by …".
    pub provider_name: String,
    /// The service provider's customer agreement (http or https): the customer's offer page
    /// links it next to the accept button; accepting agrees to it.
    pub customer_agreement_url: url::Url,
    /// The logo's address on our pages (`/partner/logo?v=…`), when the portal has one: set
    /// from the database (`store::company`), never from the configuration.
    #[serde(skip_deserializing, default)]
    pub logo_path: Option<String>,
    /// The same as an absolute URL (`app.public_base_url`), for emails' HTML.
    #[serde(skip_deserializing, default)]
    pub logo_url: Option<String>,
}

/// Keys that sign advisor codes and customer page links (HMAC-SHA256).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// `kid:base64url-key, kid2:…` (each key at least 32 bytes); empty: the key file in the
    /// data folder, generated on first start.
    pub keys: Secret,
    /// The key id that signs new links; empty: the first of `keys`.
    pub signing_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferSettings {
    /// Default expiry per kind, when an offer is created without one.
    pub trial_expiry: Span,
    pub purchase_expiry: Span,
    pub delegated_admin_expiry: Span,
    /// The latest an offer may expire, from its creation.
    pub max_expiry: Span,
    /// Where an accepting customer is sent (303), with `advisor_code` added to the query.
    pub signup_url: url::Url,
    /// An acceptance whose sign-up is not reported within this time is marked abandoned.
    pub signup_window: Span,
}

/// How campaigns send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    /// Recipients claimed per round trip.
    pub batch: u32,
    /// Messages being sent at once by one worker process (rendered, handed to the transport,
    /// outcome not yet committed): the bound on duplicates after a crash.
    pub in_flight: u32,
    /// A claimed recipient belongs to its worker this long (extended while it is being sent).
    pub lease: Span,
    /// Consecutive delivery failures (transient) that pause a campaign.
    pub max_failures: u32,
    /// A campaign paused for delivery failures resumes by itself after this long (0s: never).
    pub auto_resume_after: Span,
    /// Attempts per recipient before it is `failed`.
    pub max_attempts: u32,
    /// Retry n of a recipient waits retry_base * 2^(n-1), at most retry_max.
    pub retry_base: Span,
    pub retry_max: Span,
    /// Per SMTP transport, messages per second, shared by every worker on the database (0: no
    /// limit). Concurrent connections are `email.smtp.pool_size` per worker process.
    pub rate_per_second: u32,
    /// Per recipient domain, messages per minute (0: no limit).
    pub rate_per_domain_per_minute: u32,
    /// The default follow-up of a new campaign: a reminder this long after the invitation to
    /// those who have not accepted ("0s": none). `campaign create --reminder-after` overrides.
    pub reminder_after: Span,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub transport: TransportKind,
    pub outbox_dir: PathBuf,
    pub from_address: crate::core::domain::EmailAddress,
    pub message_id_domain: String,
    pub smtp: SmtpSettings,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: String,
    pub password: Secret,
    pub password_file: String,
    pub pool_size: u32,
    pub timeout: Span,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub concurrency: usize,
    pub lease: Span,
    pub poll_interval: Span,
    pub batch: usize,
    pub max_attempts: u32,
    pub backoff_base: Span,
    pub backoff_max: Span,
    pub job_timeout: Span,
    pub prune_after: Span,
    pub prune_interval: Span,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    Once,
    Skip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedules {
    pub location_sync: LocationSyncSettings,
    pub reconcile: ReconcileSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationSyncSettings {
    pub enabled: bool,
    pub cron: String,
    pub catch_up: CatchUp,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    pub enabled: bool,
    pub cron: String,
    pub catch_up: CatchUp,
    pub stuck_after: Span,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowOverride {
    #[serde(default)]
    pub durations: BTreeMap<String, Span>,
}

/// Parses a cron expression in the `cron` crate's syntax; 5 fields get a leading `0` second.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    full.parse::<cron::Schedule>()
        .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

/// An empty `app.public_base_url` is derived from `http.bind` (`http://HOST:PORT`; an
/// unspecified address such as 0.0.0.0 becomes 127.0.0.1), so that changing the port changes
/// the links too. Behind a proxy or on another host it must be set.
fn derive_public_base_url(t: &mut toml::Table) {
    let bind = t
        .get("http")
        .and_then(|h| h.get("bind"))
        .and_then(toml::Value::as_str)
        .and_then(|b| b.parse::<std::net::SocketAddr>().ok());
    let Some(app) = t.get_mut("app").and_then(toml::Value::as_table_mut) else {
        return;
    };
    let empty = app
        .get("public_base_url")
        .and_then(toml::Value::as_str)
        .is_some_and(|u| u.trim().is_empty());
    if let (true, Some(mut b)) = (empty, bind) {
        if b.ip().is_unspecified() {
            b.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        }
        app.insert(
            "public_base_url".into(),
            toml::Value::String(format!("http://{b}")),
        );
    }
}

struct Layered {
    table: toml::Table,
    sources: BTreeMap<String, String>,
}

fn merge(
    dst: &mut toml::Table,
    src: toml::Table,
    prefix: &str,
    source: &str,
    sources: &mut BTreeMap<String, String>,
) {
    for (k, v) in src {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (dst.get_mut(&k), v) {
            (Some(toml::Value::Table(d)), toml::Value::Table(s)) => {
                merge(d, s, &path, source, sources)
            }
            (_, v) => {
                mark(&v, &path, source, sources);
                dst.insert(k, v);
            }
        }
    }
}

fn mark(v: &toml::Value, path: &str, source: &str, sources: &mut BTreeMap<String, String>) {
    sources.insert(path.to_string(), source.to_string());
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            mark(v, &format!("{path}.{k}"), source, sources);
        }
    }
}

impl Settings {
    /// Loads the layers. `env` is passed in so tests need not touch the process environment.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Settings, ConfigError> {
        let mut layered = Layered {
            table: toml::Table::new(),
            sources: BTreeMap::new(),
        };
        let base: toml::Table = toml::from_str(DEFAULT_TOML).map_err(|e| ConfigError::Invalid {
            source_name: "built-in config/default.toml".into(),
            message: e.to_string(),
        })?;
        merge(
            &mut layered.table,
            base,
            "",
            "config/default.toml",
            &mut layered.sources,
        );
        if let Some(path) = file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                source_name: name.clone(),
                message: format!("cannot read: {e}"),
            })?;
            let t: toml::Table =
                toml::from_str(&text).map_err(|e| syntax_error(&name, &text, &e))?;
            merge(&mut layered.table, t, "", &name, &mut layered.sources);
        }
        for (k, v) in env {
            let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_env(&mut layered, &path, v, k)?;
        }
        derive_public_base_url(&mut layered.table);
        let mut s = Self::from_table(&layered)?;
        s.resolve_secrets(&layered)?;
        s.validate(&layered)?;
        Ok(s)
    }

    /// The process environment's `PARTNERFLOW__*` variables.
    pub fn process_env() -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect()
    }

    fn from_table(l: &Layered) -> Result<Settings, ConfigError> {
        let de = toml::Value::Table(l.table.clone());
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let source_name = source_of(l, &key);
            ConfigError::Key {
                key,
                source_name,
                message: e.into_inner().message().to_string(),
            }
        })
    }

    fn resolve_secrets(&mut self, l: &Layered) -> Result<(), ConfigError> {
        let smtp = &mut self.email.smtp;
        if smtp.password.is_empty() && !smtp.password_file.is_empty() {
            let pw =
                std::fs::read_to_string(&smtp.password_file).map_err(|e| ConfigError::Key {
                    key: "email.smtp.password_file".into(),
                    source_name: source_of(l, "email.smtp.password_file"),
                    message: format!("cannot read `{}`: {e}", smtp.password_file),
                })?;
            smtp.password = Secret::new(pw.trim_end_matches(['\r', '\n']));
        }
        Ok(())
    }

    fn validate(&self, l: &Layered) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError::Key {
            key: key.into(),
            source_name: source_of(l, key),
            message,
        };
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(err(
                "database.url",
                format!(
                    "`{}` is neither sqlite:… nor postgres://…",
                    without_password(url)
                ),
            ));
        }
        if !(1..=600_000).contains(&self.http.header_read_timeout.0) {
            return Err(err(
                "http.header_read_timeout",
                format!("{} is outside 1ms..10m", self.http.header_read_timeout),
            ));
        }
        if self.partner.provider_name.trim().is_empty() {
            return Err(err(
                "partner.provider_name",
                "must name the service provider (shown to customers)".into(),
            ));
        }
        if !matches!(
            self.partner.customer_agreement_url.scheme(),
            "https" | "http"
        ) {
            return Err(err(
                "partner.customer_agreement_url",
                "must be an https (or http) URL".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(err("database.max_connections", "must be at least 1".into()));
        }
        let lease = self.jobs.lease.0;
        if !(5_000..=3_600_000).contains(&lease) {
            return Err(err(
                "jobs.lease",
                format!("{} is outside 5s..1h", self.jobs.lease),
            ));
        }
        if self.jobs.concurrency == 0 || self.jobs.batch == 0 || self.jobs.max_attempts == 0 {
            return Err(err(
                "jobs",
                "concurrency, batch and max_attempts must be at least 1".into(),
            ));
        }
        for (key, span) in [
            ("jobs.poll_interval", self.jobs.poll_interval),
            ("jobs.backoff_base", self.jobs.backoff_base),
            ("jobs.job_timeout", self.jobs.job_timeout),
            ("jobs.prune_interval", self.jobs.prune_interval),
        ] {
            if span.0 <= 0 {
                return Err(err(key, "must be positive".into()));
            }
        }
        if self.jobs.backoff_max < self.jobs.backoff_base {
            return Err(err(
                "jobs.backoff_max",
                "must not be below jobs.backoff_base".into(),
            ));
        }
        for (key, expr) in [
            (
                "schedules.location_sync.cron",
                &self.schedules.location_sync.cron,
            ),
            ("schedules.reconcile.cron", &self.schedules.reconcile.cron),
        ] {
            parse_cron(expr).map_err(|m| err(key, m))?;
        }
        if self.email.message_id_domain.is_empty()
            || self.email.message_id_domain.contains(['<', '>', '@', ' '])
        {
            return Err(err(
                "email.message_id_domain",
                "must be a plain domain".into(),
            ));
        }
        for (key, span) in [
            ("offers.trial_expiry", self.offers.trial_expiry),
            ("offers.purchase_expiry", self.offers.purchase_expiry),
            (
                "offers.delegated_admin_expiry",
                self.offers.delegated_admin_expiry,
            ),
            ("offers.signup_window", self.offers.signup_window),
        ] {
            if span.0 <= 0 || span > self.offers.max_expiry && !key.ends_with("window") {
                return Err(err(
                    key,
                    format!("{span} must be positive and at most offers.max_expiry"),
                ));
            }
        }
        if !matches!(self.offers.signup_url.scheme(), "http" | "https") {
            return Err(err("offers.signup_url", "must be an http(s) URL".into()));
        }
        if !matches!(self.app.public_base_url.scheme(), "http" | "https")
            || self.app.public_base_url.cannot_be_a_base()
        {
            return Err(err("app.public_base_url", "must be an http(s) URL".into()));
        }
        let c = &self.campaigns;
        if c.batch == 0 || c.in_flight == 0 || c.max_failures == 0 || c.max_attempts == 0 {
            return Err(err(
                "campaigns",
                "batch, in_flight, max_failures and max_attempts must be at least 1".into(),
            ));
        }
        if c.lease.0 < 5_000
            || c.retry_base.0 <= 0
            || c.retry_max < c.retry_base
            || c.auto_resume_after.0 < 0
        {
            return Err(err(
                "campaigns",
                "lease at least 5s, retry_base positive, retry_max not below retry_base, auto_resume_after not negative".into(),
            ));
        }
        let p = &self.portal;
        for (key, span) in [
            ("portal.signin_link_ttl", p.signin_link_ttl),
            ("portal.session_idle", p.session_idle),
            ("portal.session_max", p.session_max),
        ] {
            if span.0 <= 0 {
                return Err(err(key, format!("{span} must be positive")));
            }
        }
        if p.session_idle > p.session_max {
            return Err(err(
                "portal.session_idle",
                "must not be longer than portal.session_max".into(),
            ));
        }
        if self.email.smtp.pool_size == 0 {
            return Err(err("email.smtp.pool_size", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// A URL for an error message: its password (if any) masked; not a URL: not shown.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

/// A TOML syntax error as `file:line:column`, the key it is at (when the line has one) and
/// the parser's message — never the line itself: it may hold a secret.
fn syntax_error(name: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let Some(at) = e.span().map(|s| s.start.min(text.len())) else {
        return ConfigError::Invalid {
            source_name: name.to_string(),
            message: format!("not valid TOML: {}", e.message().trim()),
        };
    };
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    // The section and key in force at that line, from the lines up to it.
    let mut section = String::new();
    let mut key = String::new();
    for l in text.lines().take(line) {
        let l = l.trim();
        if l.starts_with('[') {
            section = l.trim_matches(['[', ']', ' ']).to_string();
            key.clear();
        } else if let Some((k, _)) = l.split_once('=') {
            key = k.trim().to_string();
        } else {
            key.clear();
        }
    }
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '))
    };
    let at_key = match (plain(&section), plain(&key)) {
        (true, true) => format!(" (key `{section}.{key}`)"),
        (false, true) => format!(" (key `{key}`)"),
        (true, false) => format!(" (section `{section}`)"),
        (false, false) => String::new(),
    };
    ConfigError::Invalid {
        source_name: format!("{name}:{line}:{column}"),
        message: format!(
            "not valid TOML{at_key}: {} (the line is not shown: it may hold a secret)",
            e.message().trim()
        ),
    }
}

fn source_of(l: &Layered, key: &str) -> String {
    let mut k = key.to_string();
    loop {
        if let Some(s) = l.sources.get(&k) {
            return s.clone();
        }
        match k.rfind('.') {
            Some(i) => k.truncate(i),
            None => return "config".into(),
        }
    }
}

fn set_env(l: &mut Layered, path: &[String], raw: &str, var: &str) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        source_name: format!("environment variable {var}"),
        message,
    };
    if path.is_empty() || path.iter().any(|p| p.is_empty()) {
        return Err(invalid("expected PARTNERFLOW__SECTION__KEY".into()));
    }
    let dotted = path.join(".");
    let mut t = &mut l.table;
    for (i, seg) in path[..path.len() - 1].iter().enumerate() {
        // [workflows.*] is open-ended: create tables on the way.
        let open = path[0] == "workflows";
        if !t.contains_key(seg) {
            if !open {
                return Err(invalid(format!(
                    "unknown config key `{}`",
                    path[..=i].join(".")
                )));
            }
            t.insert(seg.clone(), toml::Value::Table(toml::Table::new()));
        }
        t = match t.get_mut(seg) {
            Some(toml::Value::Table(t)) => t,
            _ => {
                return Err(invalid(format!(
                    "`{}` is not a section",
                    path[..=i].join(".")
                )));
            }
        };
    }
    let last = &path[path.len() - 1];
    let value = match t.get(last) {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_string()),
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| invalid(format!("`{dotted}` must be an integer, got `{raw}`")))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            raw.trim()
                .parse()
                .map_err(|_| invalid(format!("`{dotted}` must be true or false, got `{raw}`")))?,
        ),
        Some(_) => {
            return Err(invalid(format!(
                "`{dotted}` is a section: set its keys one by one"
            )));
        }
        None if path[0] == "workflows" => toml::Value::String(raw.to_string()),
        None => return Err(invalid(format!("unknown config key `{dotted}`"))),
    };
    t.insert(last.clone(), value);
    l.sources
        .insert(dotted, format!("environment variable {var}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load(None, &[]).unwrap();
        assert_eq!(s.database.url, "sqlite://data/partnerflow.db");
        assert_eq!(s.jobs.lease, Span(30_000));
    }

    #[test]
    fn portal_defaults_and_checks() {
        let s = Settings::load(None, &[]).unwrap();
        assert_eq!(s.portal.signin_link_ttl, Span(15 * 60_000));
        assert_eq!(s.portal.session_idle, Span(30 * 60_000));
        assert_eq!(s.portal.session_max, Span(12 * 3_600_000));
        for (key, value, named) in [
            (
                "PARTNERFLOW__PORTAL__SESSION_IDLE",
                "13h",
                "portal.session_idle",
            ),
            (
                "PARTNERFLOW__PORTAL__SIGNIN_LINK_TTL",
                "0s",
                "portal.signin_link_ttl",
            ),
        ] {
            let e = Settings::load(None, &env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn env_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[http]\nbind = \"127.0.0.1:9000\"\n[jobs]\nconcurrency = 3\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&f),
            &env(&[
                ("PARTNERFLOW__HTTP__BIND", "127.0.0.1:8081"),
                ("PARTNERFLOW__DATABASE__URL", "sqlite://x.db"),
                (
                    "PARTNERFLOW__WORKFLOWS__TRIAL_INVITATION__DURATIONS__EXPIRY",
                    "2m",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.bind.port(), 8081);
        assert_eq!(
            s.http.metrics_bind, None,
            "not served separately by default"
        );
        assert_eq!(s.jobs.concurrency, 3);
        assert_eq!(s.database.url, "sqlite://x.db");
        assert_eq!(
            s.workflows["trial_invitation"].durations["expiry"],
            Span(120_000)
        );
    }

    #[test]
    fn metrics_bind_is_an_address_or_empty() {
        let s = Settings::load(
            None,
            &env(&[("PARTNERFLOW__HTTP__METRICS_BIND", "127.0.0.1:9464")]),
        )
        .unwrap();
        assert_eq!(s.http.metrics_bind, Some("127.0.0.1:9464".parse().unwrap()));
        let e = Settings::load(None, &env(&[("PARTNERFLOW__HTTP__METRICS_BIND", "9464")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http.metrics_bind") && e.contains("not an address"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_key_and_source() {
        let e = Settings::load(None, &env(&[("PARTNERFLOW__JOBS__LEASE", "2s")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jobs.lease") && e.contains("PARTNERFLOW__JOBS__LEASE"),
            "{e}"
        );
        let e = Settings::load(None, &env(&[("PARTNERFLOW__JOBS__NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown config key `jobs.nope`"), "{e}");
        let e = Settings::load(
            None,
            &env(&[("PARTNERFLOW__HTTP__HEADER_READ_TIMEOUT", "0s")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http.header_read_timeout"), "{e}");
        let e = Settings::load(None, &env(&[("PARTNERFLOW__PARTNER__PROVIDER_NAME", " ")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("partner.provider_name"), "{e}");
        let s = Settings::load(None, &[]).unwrap();
        assert_eq!(s.partner.provider_name, "Contoso Cloud");
        assert!(s.partner.logo_url.is_none());
        let key = "PARTNERFLOW__PARTNER__CUSTOMER_AGREEMENT_URL";
        let e = Settings::load(None, &env(&[(key, "javascript:alert(1)")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("partner.customer_agreement_url"), "{e}");
        let s = Settings::load(None, &env(&[(key, "https://p.example/mca")])).unwrap();
        assert_eq!(
            s.partner.customer_agreement_url.as_str(),
            "https://p.example/mca"
        );
        // The logo comes from the database only.
        let e = Settings::load(
            None,
            &env(&[("PARTNERFLOW__PARTNER__LOGO_URL", "https://x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("logo_url"), "{e}");
        let e = Settings::load(None, &env(&[("PARTNERFLOW__JOBS__CONCURRENCY", "many")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jobs.concurrency") && e.contains("integer"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[schedules.reconcile]\ncron = \"every hour\"\n").unwrap();
        let e = Settings::load(Some(&f), &[]).unwrap_err().to_string();
        assert!(
            e.contains("schedules.reconcile.cron") && e.contains("c.toml"),
            "{e}"
        );
        std::fs::write(&f, "[email]\ntransport = \"pigeon\"\n").unwrap();
        let e = Settings::load(Some(&f), &[]).unwrap_err().to_string();
        assert!(e.contains("email.transport") && e.contains("c.toml"), "{e}");
    }

    #[test]
    fn config_errors_never_show_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        for (text, key, line) in [
            (
                "[email.smtp]\nhost = \"x\"\npassword = \"S3cr3t-value\n",
                "email.smtp.password",
                Some(":3:"),
            ),
            (
                "[email.smtp]\npassword = S3cr3t-value\n",
                "email.smtp.password",
                Some(":2:"),
            ),
            (
                "[http]\nadmin_token = \"S3cr3t-value\" trailing\n",
                "http.admin_token",
                Some(":2:"),
            ),
            (
                "[http]\nadmin_token = 4711000815\n",
                "http.admin_token",
                None,
            ),
            ("[links]\nkeys = 4711.000815\n", "links.keys", None),
            (
                "[email.smtp]\npassword = true\n",
                "email.smtp.password",
                None,
            ),
            (
                "[email.smtp]\npassword = [\"S3cr3t-value\"]\n",
                "email.smtp.password",
                None,
            ),
            (
                "[database]\nurl = \"mysql://u:S3cr3t-value@h/db\"\n",
                "database.url",
                None,
            ),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = Settings::load(Some(&f), &[]).unwrap_err().to_string();
            eprintln!("{e}");
            for v in ["S3cr3t", "4711", "000815", "true"] {
                assert!(!e.contains(v), "{e}");
            }
            assert!(e.contains(key) && e.contains("c.toml"), "{e}");
            if let Some(line) = line {
                assert!(e.contains(line), "{e}");
            }
        }
    }

    #[test]
    fn secrets_are_never_printed() {
        let s = Settings::load(
            None,
            &env(&[("PARTNERFLOW__EMAIL__SMTP__PASSWORD", "hunter2")]),
        )
        .unwrap();
        assert_eq!(s.email.smtp.password.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
