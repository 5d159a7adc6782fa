//! The only module that knows handlebars and lettre: templates (strict mode, `de` and `en`,
//! `en` as fallback), message building with a fixed Message-ID, and the transports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

use crate::config::{EmailSettings, PartnerSettings, SmtpSecurity, TransportKind};
use crate::domain::{EmailAddress, Locale, Timestamp};
use crate::workflow::TemplateCheck;

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
            locales.insert(locale.as_str(), LocaleSet { html, text, names });
        }
        if errors.is_empty() {
            Ok(Templates {
                dir: dir.to_path_buf(),
                locales,
            })
        } else {
            Err(EmailError::Load(errors.join("\n")))
        }
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
        let mut ctx = context.clone();
        if let Some(o) = ctx.as_object_mut() {
            o.insert("locale".into(), Value::String(used.as_str().into()));
        }
        let err = |e: handlebars::RenderError| EmailError::Render {
            template: name.into(),
            locale: used,
            message: e.to_string(),
        };
        let subject = set
            .text
            .render(&format!("{name}.subject"), &ctx)
            .map_err(err)?;
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: set.text.render(&format!("{name}.txt"), &ctx).map_err(err)?,
            html: set
                .html
                .render(&format!("{name}.html"), &ctx)
                .map_err(err)?,
        })
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

/// Everything needed to send one email, fixed when the transition committed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Envelope {
    pub message_id: String,
    pub to: EmailAddress,
    pub locale: Locale,
    pub template: String,
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
    Message::builder()
        .message_id(Some(env.message_id.clone()))
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
                std::fs::create_dir_all(&s.outbox_dir).map_err(|e| {
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
                Ok(Transport::Smtp {
                    transport: b.build(),
                    host: format!("{}:{}", smtp.host, smtp.port),
                })
            }
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
                tokio::fs::write(&tmp, &bytes)
                    .await
                    .map_err(|e| EmailError::Transient(format!("{}: {e}", tmp.display())))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| EmailError::Transient(format!("{}: {e}", path.display())))?;
                Ok(format!("written {}", path.display()))
            }
            Transport::Smtp { transport, .. } => match transport.send(msg).await {
                Ok(resp) => Ok(format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) if e.is_permanent() => Err(EmailError::Permanent(e.to_string())),
                Err(e) => Err(EmailError::Transient(e.to_string())),
            },
        }
    }
}
