//! The only module that knows handlebars and lettre: templates (strict mode, `de` and `en`,
//! `en` as fallback), message building with a fixed Message-ID, and the transports.

pub mod sink;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use crate::core::config::{EmailSettings, PartnerSettings, SmtpSecurity, TransportKind};
use crate::core::domain::{EmailAddress, Locale, Timestamp};
use crate::core::metric_names;
use crate::core::workflow::TemplateCheck;

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("{0}")]
    Load(String),
    #[error("template `{template}` ({locale}): {message}")]
    Render {
        template: String,
        locale: Locale,
        message: String,
    },
    /// Will not get better by retrying: 5xx reply, invalid address, bad message.
    #[error("permanent: {0}")]
    Permanent(String),
    /// May succeed later: 4xx reply, connection trouble, I/O.
    #[error("transient: {0}")]
    Transient(String),
}

/// A rendered message: what the transport sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

struct LocaleSet {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    names: BTreeSet<String>,
}

/// All templates, parsed at start. Rendering never reads a file.
pub struct Templates {
    dir: PathBuf,
    locales: BTreeMap<&'static str, LocaleSet>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("dir", &self.dir).finish()
    }
}

const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// The partials that end bulk mail (`<locale>/partials/unsubscribe_footer{,_html}.hbs`),
/// given `url`, the recipient's unsubscribe link.
const FOOTER_TEXT: &str = "unsubscribe_footer";
const FOOTER_HTML: &str = "unsubscribe_footer_html";

fn read_hbs(dir: &Path) -> Result<Vec<(String, PathBuf, String)>, String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Some(fname) = p.file_name().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some(stem) = fname.strip_suffix(".hbs") else {
            continue;
        };
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
        out.push((stem.to_string(), p, text));
    }
    Ok(out)
}

fn template_error(path: &Path, e: &handlebars::TemplateError) -> String {
    match e.pos() {
        Some((line, col)) => format!("{}:{line}:{col}: {}", path.display(), e.reason()),
        None => format!("{}: {}", path.display(), e.reason()),
    }
}

/// Reports, as `file:line:col`, every partial `t` uses that `hb` does not have (inline
/// partials defined in `t` and `@partial-block` excepted).
fn unknown_partials(hb: &Handlebars, t: &Template, path: &Path, errors: &mut Vec<String>) {
    fn inline_names(t: &Template, out: &mut BTreeSet<String>) {
        for e in &t.elements {
            match e {
                TemplateElement::DecoratorBlock(d) | TemplateElement::DecoratorExpression(d) => {
                    if d.name.as_name() == Some("inline")
                        && let Some(Parameter::Literal(Value::String(n))) = d.params.first()
                    {
                        out.insert(n.clone());
                    }
                    if let Some(inner) = &d.template {
                        inline_names(inner, out);
                    }
                }
                TemplateElement::HelperBlock(h) => {
                    for inner in [&h.template, &h.inverse].into_iter().flatten() {
                        inline_names(inner, out);
                    }
                }
                TemplateElement::PartialBlock(d) => {
                    if let Some(inner) = &d.template {
                        inline_names(inner, out);
                    }
                }
                _ => {}
            }
        }
    }
    fn walk(
        hb: &Handlebars,
        t: &Template,
        inline: &BTreeSet<String>,
        path: &Path,
        errors: &mut Vec<String>,
    ) {
        for (i, e) in t.elements.iter().enumerate() {
            let inner: Vec<&Template> = match e {
                TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                    if let Some(name) = d.name.as_name()
                        && !name.starts_with('@')
                        && !hb.has_template(name)
                        && !inline.contains(name)
                    {
                        let at = t
                            .mapping
                            .get(i)
                            .map(|m| format!(":{}:{}", m.0, m.1))
                            .unwrap_or_default();
                        errors.push(format!("{}{at}: unknown partial `{name}`", path.display()));
                    }
                    d.template.iter().collect()
                }
                TemplateElement::DecoratorBlock(d) => d.template.iter().collect(),
                TemplateElement::HelperBlock(h) => {
                    [&h.template, &h.inverse].into_iter().flatten().collect()
                }
                _ => Vec::new(),
            };
            for t in inner {
                walk(hb, t, inline, path, errors);
            }
        }
    }
    let mut inline = BTreeSet::new();
    inline_names(t, &mut inline);
    walk(hb, t, &inline, path, errors);
}

fn date_helper(
    h: &Helper,
    _: &Handlebars,
    ctx: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let v = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("date", 0))?
        .value();
    let Some(s) = v.as_str() else {
        return Ok(());
    };
    let ts = Timestamp::parse_rfc3339(s).map_err(RenderErrorReason::Other)?;
    let locale = ctx
        .data()
        .get("locale")
        .and_then(Value::as_str)
        .and_then(Locale::parse)
        .unwrap_or(Locale::En);
    out.write(&format_date(ts, locale))?;
    Ok(())
}

/// A date as people of the locale write it: `24.12.2026` / `24 December 2026`.
pub fn format_date(ts: Timestamp, locale: Locale) -> String {
    let d = ts.to_datetime();
    match locale {
        Locale::De => d.format("%d.%m.%Y").to_string(),
        Locale::En => d.format("%-d %B %Y").to_string(),
    }
}

impl Templates {
    /// Loads `dir/partials/*.hbs`, `dir/<locale>/partials/*.hbs` and
    /// `dir/<locale>/<name>.{subject,txt,html}.hbs`. Every syntax error is reported with its
    /// file, line and column.
    pub fn load(dir: &Path) -> Result<Templates, EmailError> {
        let mut errors = Vec::new();
        let shared = read_hbs(&dir.join("partials")).map_err(EmailError::Load)?;
        let mut locales = BTreeMap::new();
        for locale in Locale::ALL {
            let mut html = Handlebars::new();
            let mut text = Handlebars::new();
            for hb in [&mut html, &mut text] {
                hb.set_strict_mode(true);
                hb.set_prevent_indent(true);
                hb.register_helper("date", Box::new(date_helper));
            }
            text.register_escape_fn(handlebars::no_escape);
            let ldir = dir.join(locale.as_str());
            let own = read_hbs(&ldir.join("partials")).map_err(EmailError::Load)?;
            for (name, path, body) in shared.iter().chain(own.iter()) {
                for hb in [&mut html, &mut text] {
                    if let Err(e) = hb.register_partial(name, body.as_str()) {
                        errors.push(template_error(path, &e));
                    }
                }
            }
            let mut names = BTreeSet::new();
            let files = read_hbs(&ldir).map_err(EmailError::Load)?;
            for (stem, path, body) in &files {
                let Some((name, part)) = stem.rsplit_once('.') else {
                    errors.push(format!(
                        "{}: expected <name>.subject.hbs, <name>.txt.hbs or <name>.html.hbs",
                        path.display()
                    ));
                    continue;
                };
                if !PARTS.contains(&part) {
                    errors.push(format!(
                        "{}: unknown part `{part}` (subject, txt or html)",
                        path.display()
                    ));
                    continue;
                }
                let hb = if part == "html" { &mut html } else { &mut text };
                if let Err(e) = hb.register_template_string(stem, body.trim_end_matches('\n')) {
                    errors.push(template_error(path, &e));
                }
                names.insert(name.to_string());
            }
            for name in &names {
                for part in PARTS {
                    if !files.iter().any(|(s, _, _)| *s == format!("{name}.{part}")) {
                        errors.push(format!("{}: missing {name}.{part}.hbs", ldir.display()));
                    }
                }
            }
            // A partial that does not exist would render a partial block's content without
            // its layout, silently: every partial used must be registered.
            for (stem, path, _) in shared.iter().chain(own.iter()).chain(files.iter()) {
                let hb = if stem.ends_with(".html") {
                    &html
                } else {
                    &text
                };
                if let Some(t) = hb.get_template(stem) {
                    unknown_partials(hb, t, path, &mut errors);
                }
            }
            // Bulk mail ends with the unsubscribe footer: both of its partials must exist.
            for (hb, partial) in [(&text, FOOTER_TEXT), (&html, FOOTER_HTML)] {
                if hb.get_template(partial).is_none() {
                    errors.push(format!(
                        "{}: missing {partial}.hbs (the unsubscribe footer of campaign mail)",
                        ldir.join("partials").display()
                    ));
                }
            }
            locales.insert(locale.as_str(), LocaleSet { html, text, names });
        }
        let mut seen = BTreeSet::new();
        errors.retain(|e| seen.insert(e.clone()));
        if errors.is_empty() {
            Ok(Templates {
                dir: dir.to_path_buf(),
                locales,
            })
        } else {
            Err(EmailError::Load(errors.join("\n")))
        }
    }

    /// Whether a template of this name is loaded (in any language).
    pub fn has(&self, name: &str) -> bool {
        self.locales.values().any(|l| l.names.contains(name))
    }

    pub fn names(&self) -> BTreeSet<String> {
        self.locales
            .values()
            .flat_map(|l| l.names.iter().cloned())
            .collect()
    }

    /// Renders `name` in `locale`, falling back to `en` when the locale lacks it.
    pub fn render(
        &self,
        name: &str,
        locale: Locale,
        context: &Value,
    ) -> Result<Rendered, EmailError> {
        self.render_owned(name, locale, context.clone())
    }

    /// [`render`](Self::render) with a context of the caller's own (no copy of it is made).
    pub fn render_owned(
        &self,
        name: &str,
        locale: Locale,
        context: Value,
    ) -> Result<Rendered, EmailError> {
        let (set, used) = match self.locales.get(locale.as_str()) {
            Some(s) if s.names.contains(name) => (s, locale),
            _ => match self.locales.get("en") {
                Some(s) if s.names.contains(name) => (s, Locale::En),
                _ => {
                    return Err(EmailError::Render {
                        template: name.into(),
                        locale,
                        message: "no such template".into(),
                    });
                }
            },
        };
        let mut ctx = context;
        if let Some(o) = ctx.as_object_mut() {
            o.insert("locale".into(), Value::String(used.as_str().into()));
        }
        // One handlebars context for the three parts: `render` would copy the JSON into a
        // context of its own for each (a deep copy per part and message).
        let ctx = handlebars::Context::from(ctx);
        let err = |e: handlebars::RenderError| EmailError::Render {
            template: name.into(),
            locale: used,
            message: e.to_string(),
        };
        let subject = set
            .text
            .render_with_context(&format!("{name}.subject"), &ctx)
            .map_err(err)?;
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: set
                .text
                .render_with_context(&format!("{name}.txt"), &ctx)
                .map_err(err)?,
            html: set
                .html
                .render_with_context(&format!("{name}.html"), &ctx)
                .map_err(err)?,
        })
    }
}

impl Templates {
    /// The unsubscribe footer of bulk mail in `locale`, as (text, HTML): its partials with
    /// `url` (escaped in the HTML, as every value is there).
    pub fn unsubscribe_footer(
        &self,
        locale: Locale,
        url: &str,
    ) -> Result<(String, String), EmailError> {
        let set = self
            .locales
            .get(locale.as_str())
            .or_else(|| self.locales.get("en"));
        let err = |message: String| EmailError::Render {
            template: FOOTER_TEXT.into(),
            locale,
            message,
        };
        let set = set.ok_or_else(|| err("no templates".into()))?;
        let ctx = serde_json::json!({ "url": url, "locale": locale.as_str() });
        let text = set
            .text
            .render(FOOTER_TEXT, &ctx)
            .map_err(|e| err(e.to_string()))?;
        let html = set
            .html
            .render(FOOTER_HTML, &ctx)
            .map_err(|e| err(e.to_string()))?;
        Ok((text, html))
    }
}

impl TemplateCheck for Templates {
    fn check(&self, template: &str, context: &Value) -> Result<(), String> {
        for locale in Locale::ALL {
            let set = &self.locales[locale.as_str()];
            if !set.names.contains(template) {
                return Err(format!(
                    "missing in {}",
                    self.dir.join(locale.as_str()).display()
                ));
            }
            self.render(template, locale, context)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

pub use crate::core::job::Envelope;

/// One email to deliver: the envelope and template context fixed at commit and, for bulk
/// mail, its unsubscribe link (an https URL: footer line plus RFC 8058 headers).
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub envelope: &'a Envelope,
    /// Owned: rendering adds the locale to it and hands it to handlebars without a copy.
    pub context: Value,
    pub unsubscribe: Option<&'a str>,
}

/// What every delivery needs besides the message: templates, transport, sender identity.
#[derive(Debug, Clone)]
pub struct Mailer<'a> {
    pub templates: &'a Templates,
    pub transport: &'a Transport,
    pub partner: std::sync::Arc<PartnerSettings>,
    pub from: &'a EmailAddress,
}

impl Mailer<'_> {
    /// The one delivery path, for lifecycle emails and campaign messages alike: renders the
    /// template, adds the unsubscribe footer to bulk mail, builds the MIME message (Date:
    /// `at`) and hands it to the transport. Returns the server's reply.
    /// `EmailError::Transient` may succeed later; every other error will not. Each outcome
    /// is counted (`partnerflow_emails_total` by template and outcome).
    pub async fn deliver(&self, out: Outgoing<'_>, at: Timestamp) -> Result<String, EmailError> {
        let env = out.envelope;
        let result = self.render_and_send(out, at).await;
        let outcome = outcome_label(&result);
        // A loaded template's name, never a value from outside that set.
        let template = if self.templates.has(&env.template) {
            env.template.clone()
        } else {
            metric_names::OTHER.to_string()
        };
        let transport = self.transport.name();
        metrics::counter!(metric_names::EMAILS, "template" => template, "transport" => transport, "outcome" => outcome)
            .increment(1);
        result
    }

    async fn render_and_send(
        &self,
        out: Outgoing<'_>,
        at: Timestamp,
    ) -> Result<String, EmailError> {
        let env = out.envelope;
        let mut rendered = self
            .templates
            .render_owned(&env.template, env.locale, out.context)?;
        if let Some(url) = out.unsubscribe {
            let footer = self.templates.unsubscribe_footer(env.locale, url)?;
            add_unsubscribe_footer(&mut rendered, &footer);
        }
        let date = SystemTime::UNIX_EPOCH + Duration::from_millis(at.0.max(0) as u64);
        let msg = build_message_with(
            env,
            &rendered,
            &self.partner,
            self.from,
            date,
            out.unsubscribe,
        )?;
        let asked = std::time::Instant::now();
        let result = self.transport.send(env, msg).await;
        let outcome = outcome_label(&result);
        let transport = self.transport.name();
        metrics::histogram!(metric_names::SMTP_REPLY, "transport" => transport, "outcome" => outcome)
            .record(asked.elapsed().as_secs_f64());
        result
    }
}

/// A delivery's outcome as the metrics label it: `sent`, `retry` (a transient error) or
/// `failed`.
fn outcome_label(r: &Result<String, EmailError>) -> &'static str {
    match r {
        Ok(_) => "sent",
        Err(EmailError::Transient(_)) => "retry",
        Err(_) => "failed",
    }
}

/// The unsubscribe footer (text, HTML) at the end of a bulk message's parts: after a blank
/// line of the text, before `</body>` of the HTML.
fn add_unsubscribe_footer(r: &mut Rendered, (text, html): &(String, String)) {
    r.text.push_str("\n\n");
    r.text.push_str(text.trim_end_matches('\n'));
    r.text.push('\n');
    let html = html.trim_end_matches('\n');
    match r.html.rfind("</body>") {
        Some(i) => r.html.insert_str(i, html),
        None => r.html.push_str(html),
    }
}

/// Builds the MIME message: text and HTML parts, fixed Message-ID, Date, From with the
/// partner's name, Reply-To the partner's contact.
pub fn build_message(
    env: &Envelope,
    rendered: &Rendered,
    partner: &PartnerSettings,
    from: &EmailAddress,
    date: SystemTime,
) -> Result<Message, EmailError> {
    build_message_with(env, rendered, partner, from, date, None)
}

/// As [`build_message`]; with `unsubscribe` (an https URL) the message carries
/// `List-Unsubscribe: <url>` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
/// (RFC 8058), as bulk mail must.
pub fn build_message_with(
    env: &Envelope,
    rendered: &Rendered,
    partner: &PartnerSettings,
    from: &EmailAddress,
    date: SystemTime,
    unsubscribe: Option<&str>,
) -> Result<Message, EmailError> {
    let perm = |e: String| EmailError::Permanent(e);
    let from_box = Mailbox::new(
        Some(partner.name.clone()),
        from.as_str()
            .parse()
            .map_err(|e| perm(format!("from address: {e}")))?,
    );
    let reply = Mailbox::new(
        Some(partner.name.clone()),
        partner
            .email
            .as_str()
            .parse()
            .map_err(|e| perm(format!("reply-to address: {e}")))?,
    );
    let to = Mailbox::new(
        None,
        env.to
            .as_str()
            .parse()
            .map_err(|e| perm(format!("recipient {}: {e}", env.to)))?,
    );
    let mut b = Message::builder();
    if let Some(url) = unsubscribe {
        if url.contains(['\r', '\n', '>']) {
            return Err(perm(format!("unsubscribe URL {url:?}")));
        }
        let name = |n: &'static str| lettre::message::header::HeaderName::new_from_ascii_str(n);
        b = b
            .raw_header(lettre::message::header::HeaderValue::new(
                name("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(lettre::message::header::HeaderValue::new(
                name("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            ));
    }
    b.message_id(Some(env.message_id.clone()))
        .date(date)
        .from(from_box)
        .reply_to(reply)
        .to(to)
        .subject(rendered.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html.clone()),
                ),
        )
        .map_err(|e| perm(format!("building the message: {e}")))
}

/// Where messages go.
#[derive(Clone)]
pub enum Transport {
    /// One `.eml` per message, named after its Message-ID: a retried send overwrites the
    /// same file, so the outbox never holds a message twice.
    File { dir: PathBuf },
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        host: String,
        /// At most `email.smtp.pool_size` connections: lettre's pool size only bounds the idle
        /// connections it keeps, and opens a new one for every send beyond them.
        connections: std::sync::Arc<tokio::sync::Semaphore>,
        /// Plain and STARTTLS connections: our pool of lettre connections on sockets with
        /// TCP_NODELAY (see [`SmtpPool`]); implicit TLS uses lettre's transport.
        pool: Option<std::sync::Arc<SmtpPool>>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::File { dir } => write!(f, "file:{}", dir.display()),
            Transport::Smtp { host, .. } => write!(f, "smtp:{host}"),
        }
    }
}

impl Transport {
    pub fn from_settings(s: &EmailSettings) -> Result<Transport, EmailError> {
        match s.transport {
            TransportKind::File => {
                crate::core::files::private_dir(&s.outbox_dir).map_err(|e| {
                    EmailError::Load(format!("email.outbox_dir {}: {e}", s.outbox_dir.display()))
                })?;
                Ok(Transport::File {
                    dir: s.outbox_dir.clone(),
                })
            }
            TransportKind::Smtp => {
                let smtp = &s.smtp;
                let tls = || {
                    TlsParameters::new(smtp.host.clone())
                        .map_err(|e| EmailError::Load(format!("email.smtp TLS: {e}")))
                };
                let mut b =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
                        .port(smtp.port)
                        .timeout(Some(smtp.timeout.as_std()))
                        .pool_config(
                            PoolConfig::new()
                                .max_size(smtp.pool_size)
                                .idle_timeout(Duration::from_secs(60)),
                        );
                b = match smtp.security {
                    SmtpSecurity::None => b.tls(Tls::None),
                    SmtpSecurity::Starttls => b.tls(Tls::Required(tls()?)),
                    SmtpSecurity::Tls => b.tls(Tls::Wrapper(tls()?)),
                };
                if !smtp.username.is_empty() {
                    b = b.credentials(Credentials::new(
                        smtp.username.clone(),
                        smtp.password.expose().to_string(),
                    ));
                }
                let pool = match smtp.security {
                    SmtpSecurity::Tls => None,
                    SmtpSecurity::None | SmtpSecurity::Starttls => {
                        Some(std::sync::Arc::new(SmtpPool {
                            host: smtp.host.clone(),
                            port: smtp.port,
                            hello: lettre::transport::smtp::extension::ClientId::default(),
                            starttls: match smtp.security {
                                SmtpSecurity::Starttls => Some(tls()?),
                                _ => None,
                            },
                            credentials: (!smtp.username.is_empty()).then(|| {
                                Credentials::new(
                                    smtp.username.clone(),
                                    smtp.password.expose().to_string(),
                                )
                            }),
                            timeout: smtp.timeout.as_std(),
                            idle: std::sync::Mutex::new(Vec::new()),
                        }))
                    }
                };
                Ok(Transport::Smtp {
                    pool,
                    transport: b.build(),
                    host: format!("{}:{}", smtp.host, smtp.port),
                    connections: std::sync::Arc::new(tokio::sync::Semaphore::new(
                        smtp.pool_size.max(1) as usize,
                    )),
                })
            }
        }
    }

    /// `file` or `smtp`: the metrics' `transport` label.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::File { .. } => "file",
            Transport::Smtp { .. } => "smtp",
        }
    }

    /// Sends; returns the server's reply (or the file written).
    pub async fn send(&self, env: &Envelope, msg: Message) -> Result<String, EmailError> {
        match self {
            Transport::File { dir } => {
                let name: String = env
                    .message_id
                    .trim_matches(['<', '>'])
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let path = dir.join(format!("{name}.eml"));
                let tmp = dir.join(format!(".{name}.tmp"));
                let bytes = msg.formatted();
                crate::core::files::write_private(&tmp, &bytes)
                    .await
                    .map_err(|e| EmailError::Transient(format!("{}: {e}", tmp.display())))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| EmailError::Transient(format!("{}: {e}", path.display())))?;
                Ok(format!("written {}", path.display()))
            }
            Transport::Smtp {
                pool: Some(pool),
                connections,
                ..
            } => {
                let _connection = connections
                    .acquire()
                    .await
                    .map_err(|e| EmailError::Transient(e.to_string()))?;
                pool.send(&msg).await
            }
            Transport::Smtp {
                transport,
                connections,
                pool: None,
                ..
            } => {
                let _connection = connections
                    .acquire()
                    .await
                    .map_err(|e| EmailError::Transient(e.to_string()))?;
                match transport.send(msg).await {
                    Ok(resp) => Ok(format!(
                        "{} {}",
                        resp.code(),
                        resp.message().collect::<Vec<_>>().join(" ")
                    )),
                    Err(e) if e.is_permanent() => Err(EmailError::Permanent(e.to_string())),
                    Err(e) => Err(EmailError::Transient(e.to_string())),
                }
            }
        }
    }
}

/// A pool of SMTP connections (lettre's `AsyncSmtpConnection`) on sockets with TCP_NODELAY.
///
/// lettre writes a message's body and its final `.` in two writes; with Nagle's algorithm on,
/// the second waits for the server's delayed ACK (40 ms on Linux) — every message, on every
/// connection: 25 messages/s per connection at best. lettre's own pool cannot set the socket
/// option, so plain and STARTTLS connections are made here. The caller bounds concurrency.
pub struct SmtpPool {
    host: String,
    port: u16,
    hello: lettre::transport::smtp::extension::ClientId,
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    idle: std::sync::Mutex<
        Vec<(
            lettre::transport::smtp::client::AsyncSmtpConnection,
            std::time::Instant,
        )>,
    >,
}

impl SmtpPool {
    const IDLE: Duration = Duration::from_secs(30);

    async fn connect(
        &self,
    ) -> Result<lettre::transport::smtp::client::AsyncSmtpConnection, EmailError> {
        use lettre::transport::smtp::authentication::Mechanism;
        use lettre::transport::smtp::client::AsyncSmtpConnection;
        let t = |e: String| EmailError::Transient(format!("{}:{}: {e}", self.host, self.port));
        let work = async {
            let sock = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| t(format!("connecting: {e}")))?;
            sock.set_nodelay(true)
                .map_err(|e| t(format!("TCP_NODELAY: {e}")))?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(sock), &self.hello)
                .await
                .map_err(|e| t(e.to_string()))?;
            if let Some(tls) = &self.starttls {
                conn.starttls(tls.clone(), &self.hello)
                    .await
                    .map_err(|e| t(format!("STARTTLS: {e}")))?;
            }
            if let Some(c) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                    .await
                    .map_err(|e| {
                        if e.is_permanent() {
                            EmailError::Permanent(format!("authentication: {e}"))
                        } else {
                            t(format!("authentication: {e}"))
                        }
                    })?;
            }
            Ok(conn)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| t(format!("no answer within {:?}", self.timeout)))?
    }

    fn take_idle(&self) -> Option<lettre::transport::smtp::client::AsyncSmtpConnection> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((c, since)) = idle.pop() {
            if since.elapsed() < Self::IDLE && !c.has_broken() {
                return Some(c);
            }
        }
        None
    }

    async fn send(&self, msg: &Message) -> Result<String, EmailError> {
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let bytes = msg.formatted();
        let sent = tokio::time::timeout(self.timeout * 2, conn.send(msg.envelope(), &bytes)).await;
        match sent {
            Ok(Ok(resp)) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push((conn, std::time::Instant::now()));
                }
                Ok(format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                ))
            }
            // lettre closes the connection on any error reply: it is not put back.
            Ok(Err(e)) if e.is_permanent() => Err(EmailError::Permanent(e.to_string())),
            Ok(Err(e)) => Err(EmailError::Transient(e.to_string())),
            Err(_) => Err(EmailError::Transient(format!(
                "{}:{}: no answer within {:?}",
                self.host,
                self.port,
                self.timeout * 2
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_templates() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("email-templates")
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                copy_dir(&p, &to.join(e.file_name()));
            } else {
                std::fs::copy(&p, to.join(e.file_name())).unwrap();
            }
        }
    }

    /// The footer comes from the partials, the URL escaped in the HTML: the same bytes the
    /// footer had when it was written in Rust.
    #[test]
    fn the_unsubscribe_footer_is_its_partials_with_the_url_escaped() {
        let t = Templates::load(&repo_templates()).unwrap();
        let url = "https://x.example/u/a\"<b>&c";
        let esc = "https://x.example/u/a&quot;&lt;b&gt;&amp;c";
        for (locale, line) in [
            (
                Locale::De,
                "Sie möchten keine weiteren Einladungen erhalten? Abmelden:",
            ),
            (Locale::En, "Do not want further invitations? Unsubscribe:"),
        ] {
            let mut r = Rendered {
                subject: String::new(),
                text: "Hallo".into(),
                html: "<html><body><p>x</p></body></html>".into(),
            };
            add_unsubscribe_footer(&mut r, &t.unsubscribe_footer(locale, url).unwrap());
            assert_eq!(r.text, format!("Hallo\n\n--\n{line}\n{url}\n"));
            assert_eq!(
                r.html,
                format!(
                    "<html><body><p>x</p><p style=\"margin:24px 0 0;font-size:12px;color:#777777;\">{line} <a href=\"{esc}\" style=\"color:#777777;\">{esc}</a></p></body></html>"
                )
            );
        }
    }

    #[test]
    fn a_templates_folder_without_the_footer_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo_templates(), dir.path());
        std::fs::remove_file(dir.path().join("de/partials/unsubscribe_footer_html.hbs")).unwrap();
        let e = Templates::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("de/partials: missing unsubscribe_footer_html.hbs"),
            "{e}"
        );
    }
}
