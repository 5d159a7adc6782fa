//! Invitation campaigns: one offer sent to many recipients, each with a ledger row whose
//! Message-ID is fixed when it is written. Recipients files are streamed (bad rows reported by
//! line and skipped). The sender claims recipients in leased batches, renders and hands them to
//! the transport with at most `campaigns.in_flight` in flight, and commits outcomes in batches;
//! a recipient's permit is released only after its outcome committed, so after a crash at most
//! `in_flight` recipients can be sent twice, and none marked `sent` is sent again.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::app::AppState;
use crate::core::domain::{
    EmailAddress, Locale, OfferId, OfferKind, Span, Timestamp, parse_name, random_base32,
};
use crate::email::{EmailError, Envelope};
use crate::offers::OfferError;
use crate::store::{
    CampaignRow, ClaimedRecipient, NewRecipient, RateLimits, RecipientCounts, RecipientOutcome,
    StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign {0} not found")]
    NotFound(String),
    #[error("campaign {id} is {state}: {what} is not possible")]
    WrongState {
        id: String,
        state: String,
        what: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Offer(#[from] OfferError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = CampaignError> = std::result::Result<T, E>;

/// The invitation template of an offer kind (a campaign's default).
pub fn default_template(kind: OfferKind) -> &'static str {
    match kind {
        OfferKind::Trial => "trial_invitation",
        OfferKind::Purchase => "purchase_offer",
        OfferKind::DelegatedAdmin => "admin_offer",
    }
}

/// The template context shared by every recipient of a campaign (the offer's data).
fn base_context(rt: &AppState, c: &CampaignRow, o: &crate::store::OfferView) -> Value {
    let offer = &o.offer;
    let mut data = Map::new();
    data.insert("offer_id".into(), json!(offer.offer_id));
    data.insert("kind".into(), json!(offer.kind));
    data.insert("link".into(), json!(offer.link));
    data.insert("message".into(), json!(offer.message));
    data.insert("expires_at".into(), json!(offer.expires_at.to_rfc3339()));
    data.insert(
        "product_name".into(),
        json!(offer.products.first().map(|l| &l.name)),
    );
    data.insert("products".into(), json!(offer.products));
    data.insert(
        "delegated_admin".into(),
        json!(offer.delegated_admin.map(|r| r.as_str()).unwrap_or("none")),
    );
    json!({
        "partner": rt.settings.partner,
        "instance": { "id": c.id, "workflow": offer.kind.invitation_workflow(), "state": "invited", "event": "send" },
        "data": data,
    })
}

/// The context for one recipient: the campaign's, plus who they are and any extra columns.
fn recipient_context(base: &Value, r: &ClaimedRecipient) -> Value {
    let mut ctx = base.clone();
    ctx["recipient"] = json!({ "email": r.email, "role": "customer", "name": r.name, "company": r.company, "extra": r.extra });
    if let Some(d) = ctx["data"].as_object_mut() {
        d.insert("customer_email".into(), json!(r.email));
        d.insert("customer_name".into(), json!(r.name));
        d.insert("company".into(), json!(r.company));
    }
    ctx
}

/// What a new campaign is.
#[derive(Debug, Clone, Default)]
pub struct NewCampaign {
    pub name: String,
    /// Default: the offer kind's invitation template.
    pub template: Option<String>,
    /// Overall cap, messages per minute.
    pub max_per_minute: Option<u32>,
    /// Follow-up delay; default `campaigns.reminder_after` ("0s" there: none).
    pub reminder_after: Option<Span>,
    /// Default: `invitation_reminder`.
    pub reminder_template: Option<String>,
}

/// The reminder template a campaign uses unless told otherwise.
pub const DEFAULT_REMINDER_TEMPLATE: &str = "invitation_reminder";

/// Creates a campaign (state `draft`) for an open offer; checks at once that its templates
/// render for this offer in both locales.
pub async fn create(
    rt: &AppState,
    offer: &OfferId,
    new: NewCampaign,
    actor: &str,
) -> Result<CampaignRow> {
    let NewCampaign {
        name,
        template,
        max_per_minute,
        reminder_after,
        reminder_template,
    } = new;
    let name = name.as_str();
    let template = template.as_deref();
    let reminder_after = reminder_after.unwrap_or(rt.settings.campaigns.reminder_after);
    if reminder_after.0 < 0 {
        return Err(CampaignError::Invalid(
            "reminder_after: must not be negative".into(),
        ));
    }
    let reminder_after = (reminder_after.0 > 0).then_some(reminder_after);
    if max_per_minute == Some(0) {
        return Err(CampaignError::Invalid(
            "max_per_minute: must be at least 1 (leave it out for no cap)".into(),
        ));
    }
    let o = crate::offers::get(rt, offer).await?;
    if o.state != "open" {
        return Err(OfferError::OfferClosed {
            offer: offer.clone(),
            state: o.state,
        }
        .into());
    }
    let name = parse_name(name, 200).map_err(|m| CampaignError::Invalid(format!("name: {m}")))?;
    let template = template
        .unwrap_or(default_template(o.offer.kind))
        .to_string();
    let now = rt.clock.now();
    let c = CampaignRow {
        id: format!("cmp_{}", random_base32(12).to_ascii_lowercase()),
        offer_id: offer.to_string(),
        name,
        template: template.clone(),
        state: "draft".into(),
        pause_reason: None,
        consecutive_failures: 0,
        created_by: actor.into(),
        created_at: now,
        updated_at: now,
        finished_at: None,
        max_per_minute: max_per_minute.map(i64::from),
        reminder_after,
        reminder_template: reminder_after
            .map(|_| reminder_template.unwrap_or_else(|| DEFAULT_REMINDER_TEMPLATE.into())),
    };
    let sample = ClaimedRecipient {
        campaign_id: c.id.clone(),
        seq: 0,
        email: "kunde@contoso.example".into(),
        email_key: "kunde@contoso.example".into(),
        name: Some("Erika Mustermann".into()),
        company: Some("Contoso AG".into()),
        locale: "de".into(),
        extra: None,
        message_id: String::new(),
        attempts: 0,
        phase: 0,
    };
    let ctx = recipient_context(&base_context(rt, &c, &o), &sample);
    for (what, t) in [
        ("template", Some(&template)),
        ("reminder_template", c.reminder_template.as_ref()),
    ] {
        let Some(t) = t else { continue };
        for l in Locale::ALL {
            rt.templates
                .render(t, l, &ctx)
                .map_err(|e| CampaignError::Invalid(format!("{what}: {e}")))?;
        }
    }
    rt.store.insert_campaign(&c).await?;
    Ok(c)
}

pub async fn get(rt: &AppState, id: &str) -> Result<CampaignRow> {
    rt.store
        .campaign(id)
        .await?
        .ok_or_else(|| CampaignError::NotFound(id.into()))
}

/// What an import did. Every data line (each line after the header) is counted once:
/// `lines == added + duplicates + invalid + blank`; `suppressed` counts those added whose
/// address is suppressed (they stay in the ledger and are not sent).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Data lines read (the header is not counted).
    pub lines: u64,
    /// Data lines that were not blank.
    pub rows: u64,
    pub added: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub blank: u64,
    pub suppressed: u64,
}

/// A refused row: its line in the file and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

const KNOWN: [&str; 4] = ["email", "name", "company", "locale"];

/// Longest line of a recipients file, in bytes: a longer one is reported (with an excerpt)
/// and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Longest value of a column other than email, name, company and locale, in characters.
pub const MAX_EXTRA_CHARS: usize = 1000;
/// Longest column name, in characters.
const MAX_COLUMN_NAME_CHARS: usize = 100;
/// How much of an oversized or unreadable value an error message shows, in characters.
const EXCERPT_CHARS: usize = 40;

/// At most `EXCERPT_CHARS` characters of `s`, control characters escaped, `…` if cut.
fn excerpt(s: &str) -> String {
    let mut e: String = s
        .chars()
        .take(EXCERPT_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(EXCERPT_CHARS).is_some() {
        e.push('…');
    }
    e
}

/// One data line of a recipients file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Blank,
    Fields(Vec<String>),
    /// Unreadable (too long, not UTF-8, an unterminated quote…): the reason.
    Bad(String),
}

/// Where recipients come from: a CSV file, or the API's JSON list. Each data line has its
/// own number (the header is line 1).
pub trait RecipientRows {
    /// The column names, lower case, checked (unique, `email` among them).
    fn headers(&self) -> &[String];
    /// The next data line and its number; None at the end.
    fn next_line(&mut self) -> Result<Option<(u64, Line)>>;
}

/// A recipients CSV whose header has been read and checked. Read a line at a time: a record
/// never spans lines (no value we take may hold a line break), so a stray or unterminated
/// quote costs its own line only, never the lines after it.
pub struct RecipientsFile<R> {
    reader: std::io::BufReader<R>,
    headers: Vec<String>,
    line: u64,
}

enum RawLine {
    Line(Vec<u8>),
    /// Longer than the limit: its length and its first `MAX_LINE_BYTES` bytes.
    TooLong(usize, Vec<u8>),
}

/// Reads one line (without its `\n` or `\r\n`), keeping at most `max` bytes of it; None at
/// the end of the input.
fn read_bounded(r: &mut impl std::io::BufRead, max: usize) -> std::io::Result<Option<RawLine>> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        total += chunk.len();
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
        r.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if total > max {
        return Ok(Some(RawLine::TooLong(total, buf)));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(RawLine::Line(buf)))
}

/// Splits one CSV line into its fields (RFC 4180 quoting: `"a, b"`, `""` for a quote;
/// whitespace around a field is trimmed). A quote left open at the end of the line, or text
/// after a closing quote, is an error naming the field.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let n = fields.len() + 1;
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "field {n}: unterminated quote (a value cannot span lines)"
                        ));
                    }
                    Some('"') if chars.next_if_eq(&'"').is_some() => value.push('"'),
                    Some('"') => break,
                    Some(c) => value.push(c),
                }
            }
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            match chars.next() {
                None => {
                    fields.push(value.trim().to_string());
                    return Ok(fields);
                }
                Some(',') => fields.push(value.trim().to_string()),
                Some(_) => return Err(format!("field {n}: text after the closing quote")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(value.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(value.trim().to_string());
                        break;
                    }
                    Some(c) => value.push(c),
                }
            }
        }
    }
}

/// Checks column names (lower-cased here): none empty of meaning twice, none too long or
/// with control characters, and `email` among them.
fn check_headers(names: Vec<String>) -> Result<Vec<String>> {
    let bad = |m: String| CampaignError::Invalid(format!("line 1: {m}"));
    let headers: Vec<String> = names.iter().map(|h| h.to_lowercase()).collect();
    for (i, h) in headers.iter().enumerate() {
        if h.chars().count() > MAX_COLUMN_NAME_CHARS || h.chars().any(char::is_control) {
            return Err(bad(format!(
                "column {}: a column name has at most {MAX_COLUMN_NAME_CHARS} characters and no control characters: `{}`",
                i + 1,
                excerpt(h)
            )));
        }
        if headers[..i].contains(h) {
            return Err(bad(format!("the column `{h}` appears twice")));
        }
    }
    if !headers.iter().any(|h| h == "email") {
        return Err(bad(format!(
            "the header needs an `email` column (have: {})",
            excerpt(&headers.join(","))
        )));
    }
    Ok(headers)
}

impl<R: Read> RecipientsFile<R> {
    /// Reads and checks the header (line 1). A file that cannot be read as UTF-8 CSV with an
    /// `email` column (UTF-16, binary, no header) is refused here, before anything is written.
    pub fn open(reader: R) -> Result<Self> {
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
        let bad = |m: &str| CampaignError::Invalid(format!("line 1: {m}"));
        let raw = read_bounded(&mut reader, MAX_LINE_BYTES)
            .map_err(|e| CampaignError::Invalid(format!("line 1: {e}")))?;
        let bytes = match raw {
            None => {
                return Err(bad(
                    "the file is empty; it needs a header row with an `email` column",
                ));
            }
            Some(RawLine::TooLong(n, _)) => {
                return Err(bad(&format!(
                    "the header is {n} bytes long (at most {MAX_LINE_BYTES}); is this a CSV file?"
                )));
            }
            Some(RawLine::Line(b)) => b,
        };
        if bytes.starts_with(&[0xFF, 0xFE])
            || bytes.starts_with(&[0xFE, 0xFF])
            || bytes.contains(&0)
        {
            return Err(bad(
                "the file is UTF-16 or binary (it has NUL bytes); save it as CSV in UTF-8",
            ));
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let text = std::str::from_utf8(bytes)
            .map_err(|_| bad("the header is not UTF-8; save the file as CSV in UTF-8"))?;
        if text.trim().is_empty() {
            return Err(bad("the header row is empty; it needs an `email` column"));
        }
        let names = split_fields(text).map_err(|m| bad(&m))?;
        let headers = check_headers(names)?;
        Ok(RecipientsFile {
            reader,
            headers,
            line: 1,
        })
    }
}

impl<R: Read> RecipientRows for RecipientsFile<R> {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_line(&mut self) -> Result<Option<(u64, Line)>> {
        let n = self.line + 1;
        let Some(raw) = read_bounded(&mut self.reader, MAX_LINE_BYTES)
            .map_err(|e| CampaignError::Invalid(format!("line {n}: {e}")))?
        else {
            return Ok(None);
        };
        self.line = n;
        let line = match raw {
            RawLine::TooLong(len, head) => Line::Bad(format!(
                "the line is {len} bytes long, at most {MAX_LINE_BYTES}: `{}`",
                excerpt(&String::from_utf8_lossy(&head))
            )),
            RawLine::Line(bytes) => match std::str::from_utf8(&bytes) {
                Err(_) => Line::Bad(format!(
                    "not UTF-8 (save the file as UTF-8): `{}`",
                    excerpt(&String::from_utf8_lossy(&bytes))
                )),
                Ok(t) if t.trim().is_empty() => Line::Blank,
                Ok(t) => match split_fields(t) {
                    Ok(f) => Line::Fields(f),
                    Err(m) => Line::Bad(m),
                },
            },
        };
        Ok(Some((n, line)))
    }
}

/// The API's JSON recipients (`[{"email": …, "name": …, …}]`) as rows: the columns are every
/// key seen, and recipient `i` is line `i + 2` (as if the header were line 1).
pub struct JsonRecipients {
    headers: Vec<String>,
    rows: std::vec::IntoIter<Vec<String>>,
    line: u64,
}

impl JsonRecipients {
    pub fn new(list: Vec<Map<String, Value>>) -> Result<Self> {
        let mut cols: Vec<String> = vec!["email".into()];
        for r in &list {
            for k in r.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|r| {
                cols.iter()
                    .map(|c| match r.get(c) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.trim().to_string(),
                        Some(v) => v.to_string(),
                    })
                    .collect()
            })
            .collect();
        Ok(JsonRecipients {
            headers: check_headers(cols)?,
            rows: rows.into_iter(),
            line: 1,
        })
    }
}

impl RecipientRows for JsonRecipients {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_line(&mut self) -> Result<Option<(u64, Line)>> {
        Ok(self.rows.next().map(|f| {
            self.line += 1;
            (self.line, Line::Fields(f))
        }))
    }
}

/// Streams a recipients CSV into a campaign: see [`import`].
pub async fn import_csv<R: Read>(
    rt: &AppState,
    campaign: &str,
    reader: R,
    bad: impl FnMut(BadRow),
) -> Result<ImportReport> {
    let file = RecipientsFile::open(reader)?;
    import(rt, campaign, file, bad).await
}

/// Imports recipients (header row; `email` required; `name`, `company`, `locale` and any
/// other columns reach the template) into a campaign. Every data line is accounted for:
/// added, counted as blank, or reported to `bad` with its own line number and reason
/// (unreadable, a value too long, invalid, a duplicate of a row before or of an address
/// already in the campaign). Suppressed addresses are added as `suppressed` and counted.
/// Memory stays flat: lines are read one at a time (each at most `MAX_LINE_BYTES`) and rows
/// go to the database in chunks.
pub async fn import(
    rt: &AppState,
    campaign: &str,
    mut rows: impl RecipientRows,
    mut bad: impl FnMut(BadRow),
) -> Result<ImportReport> {
    let c = get(rt, campaign).await?;
    if !matches!(c.state.as_str(), "draft" | "running" | "paused") {
        return Err(CampaignError::WrongState {
            id: c.id,
            state: c.state,
            what: "adding recipients".into(),
        });
    }
    let headers: Vec<String> = rows.headers().to_vec();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let email_col = col("email").ok_or_else(|| {
        CampaignError::Invalid("line 1: the header needs an `email` column".into())
    })?;
    let (name_col, company_col, locale_col) = (col("name"), col("company"), col("locale"));
    let extra_cols: Vec<(usize, &String)> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| !KNOWN.contains(&h.as_str()))
        .collect();
    let mid_domain = rt.settings.email.message_id_domain.clone();
    let mut report = ImportReport::default();
    let mut chunk: Vec<NewRecipient> = Vec::with_capacity(1000);
    while let Some((line, item)) = rows.next_line()? {
        report.lines += 1;
        let record = match item {
            Line::Blank => {
                report.blank += 1;
                continue;
            }
            Line::Fields(f) if f.iter().all(String::is_empty) => {
                report.blank += 1;
                continue;
            }
            Line::Bad(reason) => {
                report.rows += 1;
                report.invalid += 1;
                bad(BadRow { line, reason });
                continue;
            }
            Line::Fields(f) => f,
        };
        report.rows += 1;
        match parse_row(
            &record,
            &headers,
            email_col,
            name_col,
            company_col,
            locale_col,
            &extra_cols,
            rt.settings.app.default_locale,
        ) {
            Ok((email, name, company, locale, extra)) => {
                let seq = line as i64;
                chunk.push(NewRecipient {
                    seq,
                    email_key: email.as_str().to_lowercase(),
                    domain: email.domain().to_string(),
                    email: email.as_str().to_string(),
                    name,
                    company,
                    locale: locale.as_str().into(),
                    extra,
                    message_id: format!("<{}.{seq}@{mid_domain}>", c.id),
                });
            }
            Err(reason) => {
                report.invalid += 1;
                bad(BadRow { line, reason });
            }
        }
        if chunk.len() >= 1000 {
            flush(rt, &c.id, &mut chunk, &mut report, &mut bad).await?;
        }
    }
    flush(rt, &c.id, &mut chunk, &mut report, &mut bad).await?;
    report.suppressed = rt.store.suppress_pending(&c.id, rt.clock.now()).await?;
    Ok(report)
}

async fn flush(
    rt: &AppState,
    campaign: &str,
    chunk: &mut Vec<NewRecipient>,
    report: &mut ImportReport,
    bad: &mut impl FnMut(BadRow),
) -> Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let inserted: std::collections::HashSet<i64> = rt
        .store
        .insert_recipients(campaign, chunk, rt.clock.now())
        .await?
        .into_iter()
        .collect();
    for r in chunk.iter() {
        if inserted.contains(&r.seq) {
            report.added += 1;
        } else {
            report.duplicates += 1;
            bad(BadRow {
                line: r.seq as u64,
                reason: format!("duplicate: {} is already a recipient", r.email),
            });
        }
    }
    chunk.clear();
    Ok(())
}

type Parsed = (
    EmailAddress,
    Option<String>,
    Option<String>,
    Locale,
    Option<Value>,
);

/// The longest value a column may hold, in characters.
fn max_chars(column: &str) -> usize {
    match column {
        "email" => 254,
        "name" | "company" => 200,
        "locale" => 16,
        _ => MAX_EXTRA_CHARS,
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_row(
    r: &[String],
    headers: &[String],
    email_col: usize,
    name_col: Option<usize>,
    company_col: Option<usize>,
    locale_col: Option<usize>,
    extra_cols: &[(usize, &String)],
    default_locale: Locale,
) -> Result<Parsed, String> {
    if r.len() != headers.len() {
        return Err(format!(
            "{} fields, the header has {}",
            r.len(),
            headers.len()
        ));
    }
    for (h, v) in headers.iter().zip(r) {
        let max = max_chars(h);
        let n = v.chars().count();
        if n > max {
            return Err(format!(
                "{h}: {n} characters, at most {max}: `{}`",
                excerpt(v)
            ));
        }
    }
    let get = |i: usize| r.get(i).map(String::as_str).unwrap_or("");
    let raw = get(email_col);
    let email = EmailAddress::parse(raw).map_err(|m| format!("email: {m}"))?;
    let text = |c: Option<usize>, what: &str| -> Result<Option<String>, String> {
        match c.map(get).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_name(v, 200)
                .map(Some)
                .map_err(|m| format!("{what}: {m}")),
        }
    };
    let name = text(name_col, "name")?;
    let company = text(company_col, "company")?;
    let locale = match locale_col.map(get).filter(|v| !v.is_empty()) {
        None => default_locale,
        Some(l) => Locale::parse(l)
            .ok_or_else(|| format!("locale: unknown locale `{}` (de or en)", l.escape_debug()))?,
    };
    let extra = if extra_cols.is_empty() {
        None
    } else {
        let mut m = Map::new();
        for (i, h) in extra_cols {
            let v = get(*i);
            if v.chars().any(|c| c.is_control()) {
                return Err(format!("{h}: contains control characters"));
            }
            m.insert((*h).clone(), Value::String(v.to_string()));
        }
        Some(Value::Object(m))
    };
    Ok((email, name, company, locale, extra))
}

/// Starts (or resumes) a campaign.
pub async fn start(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(rt, id, &["draft", "paused"], "running", "starting").await?;
    tracing::info!(campaign = %c.id, name = %c.name, "campaign started");
    Ok(c)
}

/// Resumes a paused campaign (paused by the operator or automatically).
pub async fn resume(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(rt, id, &["paused"], "running", "resuming").await?;
    tracing::info!(campaign = %c.id, "campaign resumed");
    Ok(c)
}

pub async fn pause(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let now = rt.clock.now();
    if !rt
        .store
        .set_campaign_state(
            id,
            &["running"],
            "paused",
            Some("paused by the operator"),
            now,
        )
        .await?
    {
        let c = get(rt, id).await?;
        return Err(CampaignError::WrongState {
            id: c.id,
            state: c.state,
            what: "pausing".into(),
        });
    }
    tracing::info!(campaign = %id, "campaign paused by the operator");
    get(rt, id).await
}

pub async fn cancel(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(
        rt,
        id,
        &["draft", "running", "paused"],
        "cancelled",
        "cancelling",
    )
    .await?;
    tracing::info!(campaign = %c.id, "campaign cancelled");
    Ok(c)
}

async fn transition(
    rt: &AppState,
    id: &str,
    from: &[&str],
    to: &str,
    what: &str,
) -> Result<CampaignRow> {
    if !rt
        .store
        .set_campaign_state(id, from, to, None, rt.clock.now())
        .await?
    {
        let c = get(rt, id).await?;
        return Err(CampaignError::WrongState {
            id: c.id,
            state: c.state,
            what: what.into(),
        });
    }
    rt.store.wake_handle().notify_waiters();
    get(rt, id).await
}

pub async fn status(rt: &AppState, id: &str) -> Result<(CampaignRow, RecipientCounts)> {
    let c = get(rt, id).await?;
    let n = rt.store.recipient_counts(id).await?;
    Ok((c, n))
}

/// When a running campaign has nothing to send now but reminders scheduled, it waits for
/// them: it stays `running` until the last one is sent (or its recipient accepts, unsubscribes
/// or bounces, or the offer expires), then completes. Returns when the last is due, or None
/// when the campaign is not waiting (it has something to send, or is not running).
/// Reminders that would fall due after the offer expires are never scheduled.
pub fn waiting_for_reminders(c: &CampaignRow, n: &RecipientCounts) -> Option<Timestamp> {
    if c.state == "running" && n.pending == 0 && n.sending == 0 && n.reminders_scheduled > 0 {
        n.last_reminder_at
    } else {
        None
    }
}

/// A cell for a CSV file that people open in a spreadsheet: one that would be taken for a
/// formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a `'` before it
/// (OWASP, CSV injection).
pub fn csv_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Writes the ledger as CSV, a page at a time; every cell through [`csv_cell`].
pub async fn report_csv(rt: &AppState, id: &str, out: &mut impl std::io::Write) -> Result<u64> {
    get(rt, id).await?;
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| CampaignError::Invalid(format!("writing the report: {e}"));
    w.write_record([
        "line",
        "email",
        "state",
        "message_id",
        "attempts",
        "sent_at",
        "reply",
        "reminded_at",
        "reminder_reply",
        "remind_at",
        "error",
        "phase",
        "soft_bounces",
    ])
    .map_err(io)?;
    let mut after = 0;
    let mut n = 0;
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
    loop {
        let page = rt.store.ledger(id, after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            let row = [
                r.seq.to_string(),
                r.email.clone(),
                r.state.clone(),
                r.message_id.clone(),
                r.attempts.to_string(),
                time(r.sent_at),
                r.reply.clone().unwrap_or_default(),
                time(r.reminded_at),
                r.reminder_reply.clone().unwrap_or_default(),
                time(r.remind_at),
                r.error.clone().unwrap_or_default(),
                if r.phase == 1 {
                    "reminder"
                } else {
                    "invitation"
                }
                .to_string(),
                r.soft_bounces.to_string(),
            ];
            w.write_record(row.iter().map(|c| csv_cell(c).into_owned()))
                .map_err(io)?;
            n += 1;
        }
    }
    w.flush()
        .map_err(|e| CampaignError::Invalid(format!("writing the report: {e}")))?;
    Ok(n)
}

// ---------------------------------------------------------------- the sender

/// What one send produced, with the permit that is released once it is committed.
struct Done {
    recipient: ClaimedRecipient,
    outcome: RecipientOutcome,
    transient: bool,
    latency: Duration,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Figures the sender reports (for `bench campaign` and progress).
#[derive(Debug, Default)]
pub struct SenderStats {
    pub sent: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    /// Whether to keep `latencies_us` (the bench does; a long-running worker must not grow
    /// a list per message sent).
    pub record_latencies: bool,
    /// Claim to SMTP acceptance, in microseconds, of each sent message.
    pub latencies_us: std::sync::Mutex<Vec<u32>>,
}

struct CampaignCtx {
    template: String,
    reminder_template: Option<String>,
    base: Value,
    limits: RateLimits,
}

fn retry_at(rt: &AppState, attempts: i64, now: Timestamp) -> Timestamp {
    let c = &rt.settings.campaigns;
    now.plus(crate::core::retry::backoff(
        attempts,
        c.retry_base,
        c.retry_max,
        rand::random::<f64>() * 2.0 - 1.0,
    ))
}

async fn send_one(
    rt: Arc<AppState>,
    ctx: Arc<CampaignCtx>,
    r: ClaimedRecipient,
) -> (RecipientOutcome, bool) {
    let now = || rt.clock.now();
    let locale = Locale::parse(&r.locale).unwrap_or(rt.settings.app.default_locale);
    let template = match (r.phase, &ctx.reminder_template) {
        (1, Some(t)) => t.as_str(),
        (1, None) => DEFAULT_REMINDER_TEMPLATE,
        _ => ctx.template.as_str(),
    };
    let unsubscribe = unsubscribe_url(&rt, &r.campaign_id, r.seq);
    let to = match EmailAddress::parse(&r.email) {
        Ok(t) => t,
        Err(e) => return (RecipientOutcome::Failed { error: e }, false),
    };
    let env = Envelope {
        message_id: r.phase_message_id(),
        to,
        locale,
        template: template.to_string(),
    };
    let out = crate::email::Outgoing {
        envelope: &env,
        context: &recipient_context(&ctx.base, &r),
        unsubscribe: Some(&unsubscribe),
    };
    match rt.mailer().deliver(out, now()).await {
        Ok(reply) => (RecipientOutcome::Sent { reply, at: now() }, false),
        Err(EmailError::Transient(e)) => {
            if r.attempts >= i64::from(rt.settings.campaigns.max_attempts) {
                (
                    RecipientOutcome::Failed {
                        error: format!("gave up after {} attempts: {e}", r.attempts),
                    },
                    true,
                )
            } else {
                (
                    RecipientOutcome::Retry {
                        at: retry_at(&rt, r.attempts, now()),
                        error: e,
                    },
                    true,
                )
            }
        }
        Err(e) => (
            RecipientOutcome::Failed {
                error: e.to_string(),
            },
            false,
        ),
    }
}

/// Runs until `stop` turns true, then finishes what is in flight and commits it.
pub async fn run_sender(
    rt: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<SenderStats>,
) {
    let cfg = rt.settings.campaigns.clone();
    let permits = Arc::new(Semaphore::new(cfg.in_flight as usize));
    let (done_tx, done_rx) = mpsc::channel::<Done>(cfg.in_flight as usize * 2);
    let flusher = tokio::spawn(flush_outcomes(rt.clone(), done_rx, stats.clone()));
    let mut contexts: HashMap<String, Arc<CampaignCtx>> = HashMap::new();
    // The campaigns this sender saw running, so that it logs when one starts or stops running
    // (started, paused, resumed or cancelled by any process, or completed).
    let mut seen_running: std::collections::HashSet<String> = Default::default();
    let mut last_requeue = Instant::now() - Duration::from_secs(60);
    let wake = rt.store.wake_handle();
    let poll = rt.settings.jobs.poll_interval.as_std();
    while !*stop.borrow() && stop.has_changed().is_ok() {
        if last_requeue.elapsed() > Duration::from_secs(1) {
            last_requeue = Instant::now();
            let now = rt.clock.now();
            // Writes only where there is something to do: idle workers leave the database
            // (and SQLite's one writer) alone.
            let active = rt.store.campaign_state_counts().await.unwrap_or_default();
            let has = |s: &str| active.iter().any(|(st, n)| st == s && *n > 0);
            if has("running") {
                if let Err(e) = rt.store.requeue_expired_recipients(now).await {
                    tracing::warn!(error = %e, "requeueing expired campaign leases failed");
                }
                if permits.available_permits() < cfg.in_flight as usize
                    && let Err(e) = rt
                        .store
                        .extend_recipient_leases(&rt.node, now.plus(cfg.lease))
                        .await
                {
                    tracing::warn!(error = %e, "extending campaign leases failed");
                }
                match rt.store.promote_reminders(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(n, "campaign reminders due"),
                    Err(e) => tracing::warn!(error = %e, "promoting campaign reminders failed"),
                }
            }
            if has("paused")
                && cfg.auto_resume_after.0 > 0
                && let Err(e) = auto_resume(&rt, now).await
            {
                tracing::warn!(error = %e, "auto-resume check failed");
            }
            if !active.is_empty() {
                match rt.store.expire_campaigns(now).await {
                    Ok(ids) => {
                        for id in ids {
                            tracing::info!(campaign = %id, "campaign expired with its offer");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "expiring campaigns failed"),
                }
            }
        }
        let mut limited_until: Option<Timestamp> = None;
        let running = match rt.store.running_campaigns().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "listing running campaigns failed");
                sleep_or_stop(&mut stop, poll).await;
                continue;
            }
        };
        for id in &running {
            if !seen_running.contains(id) {
                tracing::info!(campaign = %id, node = %rt.node, "campaign running: sending it");
            }
        }
        for id in seen_running.iter().filter(|id| !running.contains(*id)) {
            tracing::info!(campaign = %id, node = %rt.node, "campaign no longer running: not sending it");
        }
        seen_running = running.iter().cloned().collect();
        let mut claimed_any = false;
        for id in &running {
            let ctx = match contexts.get(id) {
                Some(c) => c.clone(),
                None => match load_ctx(&rt, id).await {
                    Ok(c) => {
                        let c = Arc::new(c);
                        contexts.insert(id.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        tracing::error!(campaign = %id, error = %e, "campaign cannot be sent; pausing it");
                        let reason = format!("cannot render: {e}");
                        let _ = rt
                            .store
                            .set_campaign_state(
                                id,
                                &["running"],
                                "paused",
                                Some(&reason),
                                rt.clock.now(),
                            )
                            .await;
                        continue;
                    }
                },
            };
            // Take permits first: never claim more than can be in flight, and claim in batches
            // worth a round trip (wait for half a batch of room rather than claim one by one).
            let batch_size = (cfg.batch.min(cfg.in_flight)) as usize;
            let room = permits.available_permits();
            if room < batch_size.div_ceil(2) {
                break;
            }
            let Ok(held) = permits
                .clone()
                .try_acquire_many_owned(room.min(batch_size) as u32)
            else {
                break;
            };
            let want = held.num_permits();
            let now = rt.clock.now();
            let batch = match rt
                .store
                .claim_recipients(
                    id,
                    &rt.node,
                    want as i64,
                    now,
                    now.plus(cfg.lease),
                    ctx.limits,
                )
                .await
            {
                Ok(claim) => {
                    if claim.deferred > 0 {
                        // A domain's backlog moved: others may be due now.
                        claimed_any = true;
                    }
                    if let Some(u) = claim.limited_until {
                        limited_until = Some(limited_until.map_or(u, |l| l.min(u)));
                    }
                    claim.recipients
                }
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "claiming recipients failed");
                    continue;
                }
            };
            if batch.is_empty() {
                drop(held);
                // Nothing claimed: completed if nothing is left to send, now or later. A rate
                // limit does not hold this back (with nothing pending there is nothing to
                // limit); scheduled reminders do.
                match rt.store.complete_if_done(id, rt.clock.now()).await {
                    Ok(true) => tracing::info!(campaign = %id, "campaign completed"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(campaign = %id, error = %e, "completing the campaign failed")
                    }
                }
                continue;
            }
            claimed_any = true;
            // Addresses suppressed since the import (unsubscribed, hard-bounced) are not sent.
            let keys: Vec<&str> = batch.iter().map(|r| r.email_key.as_str()).collect();
            let suppressed = rt.store.suppressed_among(&keys).await.unwrap_or_default();
            let mut held = Some(held);
            for r in batch {
                // One permit per recipient; the last one takes what is left.
                let permit = match held.take() {
                    Some(mut h) if h.num_permits() > 1 => match h.split(1) {
                        Some(p) => {
                            held = Some(h);
                            p
                        }
                        None => h,
                    },
                    Some(h) => h,
                    None => break,
                };
                if let Some(reason) = suppressed.get(&r.email_key) {
                    let outcome = RecipientOutcome::Suppressed {
                        reason: reason.clone(),
                    };
                    let d = Done {
                        recipient: r,
                        outcome,
                        transient: false,
                        latency: Duration::ZERO,
                        _permit: permit,
                    };
                    let _ = done_tx.send(d).await;
                    continue;
                }
                let (rt, ctx, tx) = (rt.clone(), ctx.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let (outcome, transient) = send_one(rt, ctx, r.clone()).await;
                    let _ = tx
                        .send(Done {
                            recipient: r,
                            outcome,
                            transient,
                            latency: started.elapsed(),
                            _permit: permit,
                        })
                        .await;
                });
            }
        }
        let half = (cfg.batch.min(cfg.in_flight)).div_ceil(2);
        if permits.available_permits() < half as usize {
            // Wait for room for half a batch, not for the poll interval.
            if let Ok(p) = permits.clone().acquire_many_owned(half).await {
                drop(p);
            }
        } else if !claimed_any {
            contexts.retain(|k, _| running.contains(k));
            // Held back by a rate limit: until a token is there (re-read the clock).
            let nap = match limited_until {
                Some(u) => {
                    Duration::from_millis((u.0 - rt.clock.now().0).clamp(1, 1000) as u64).min(poll)
                }
                // Nothing running: look again each second at most as often as the job poll
                // (a campaign started in this process wakes us at once), so idle workers cost
                // the database little.
                None if running.is_empty() => poll.max(Duration::from_secs(1)),
                None => poll,
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
                _ = stop.changed() => {}
            }
        }
    }
    drop(done_tx);
    let _ = flusher.await;
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

async fn load_ctx(rt: &AppState, id: &str) -> Result<CampaignCtx> {
    let c = get(rt, id).await?;
    let offer = OfferId::parse(&c.offer_id).map_err(CampaignError::Invalid)?;
    let o = crate::offers::get(rt, &offer).await?;
    let cfg = &rt.settings.campaigns;
    let limits = RateLimits {
        per_second: cfg.rate_per_second,
        per_domain_per_minute: cfg.rate_per_domain_per_minute,
        campaign_per_minute: c
            .max_per_minute
            .map_or(0, |m| m.clamp(0, i64::from(u32::MAX)) as u32),
    };
    Ok(CampaignCtx {
        base: base_context(rt, &c, &o),
        template: c.template,
        reminder_template: c.reminder_template,
        limits,
    })
}

async fn auto_resume(rt: &AppState, now: Timestamp) -> Result<()> {
    let after = rt.settings.campaigns.auto_resume_after;
    for c in rt.store.campaigns().await? {
        if c.state == "paused"
            && c.pause_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(AUTO_PAUSE))
            && c.updated_at.plus(after) <= now
            && rt
                .store
                .set_campaign_state(&c.id, &["paused"], "running", None, now)
                .await?
        {
            tracing::info!(campaign = %c.id, "campaign resumed after its automatic pause");
        }
    }
    Ok(())
}

/// The start of the reason of an automatic pause.
pub const AUTO_PAUSE: &str = "delivery failures:";

/// Commits outcomes in batches (when 256 are waiting or every 20 ms), then releases their
/// permits; counts consecutive transient failures per campaign and pauses at the limit.
async fn flush_outcomes(rt: Arc<AppState>, mut rx: mpsc::Receiver<Done>, stats: Arc<SenderStats>) {
    let limit = i64::from(rt.settings.campaigns.max_failures);
    let mut buf: Vec<Done> = Vec::with_capacity(512);
    loop {
        let first = match rx.recv().await {
            Some(d) => d,
            None => break,
        };
        buf.push(first);
        let deadline = tokio::time::sleep(Duration::from_millis(20));
        tokio::pin!(deadline);
        while buf.len() < 256 {
            tokio::select! {
                d = rx.recv() => match d { Some(d) => buf.push(d), None => break },
                _ = &mut deadline => break,
            }
        }
        let outcomes: Vec<(ClaimedRecipient, RecipientOutcome)> = buf
            .iter()
            .map(|d| (d.recipient.clone(), d.outcome.clone()))
            .collect();
        // Suppressed meanwhile (unsubscribed, bounced): recorded as such, whatever happened.
        let mut backoff = Duration::from_millis(50);
        loop {
            match rt
                .store
                .finish_recipients(&rt.node, &outcomes, rt.clock.now())
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, n = outcomes.len(), "committing campaign outcomes failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // Consecutive failures per campaign, in completion order.
        let mut per: HashMap<&str, (i64, bool, String)> = HashMap::new();
        for d in &buf {
            let e =
                per.entry(d.recipient.campaign_id.as_str())
                    .or_insert((0, false, String::new()));
            if d.transient {
                e.0 += 1;
                if let RecipientOutcome::Retry { error, .. } | RecipientOutcome::Failed { error } =
                    &d.outcome
                {
                    e.2 = error.clone();
                }
            } else {
                e.0 = 0;
                e.1 = true;
            }
            match d.outcome {
                RecipientOutcome::Sent { .. } => {
                    stats
                        .sent
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if stats.record_latencies
                        && let Ok(mut l) = stats.latencies_us.lock()
                    {
                        l.push(d.latency.as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                }
                RecipientOutcome::Failed { .. } => {
                    stats
                        .failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {}
            }
        }
        for (id, (failures, reset, last)) in per {
            if failures == 0 && !reset {
                continue;
            }
            let reason = format!("{AUTO_PAUSE} {limit} in a row; last: {last}");
            match rt
                .store
                .note_campaign_failures(id, failures, reset, limit, &reason, rt.clock.now())
                .await
            {
                Ok(true) => tracing::warn!(campaign = %id, reason, "campaign paused"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "counting delivery failures failed")
                }
            }
        }
        buf.clear();
    }
}

// ------------------------------------------------------- unsubscribe and bounces

/// The signed unsubscribe link of a recipient (`/u/{token}`).
pub fn unsubscribe_url(rt: &AppState, campaign: &str, seq: i64) -> String {
    let token = rt.keys.sign(
        crate::core::links::Purpose::Unsubscribe,
        &format!("{campaign}_{seq}"),
        &[],
    );
    crate::offers::link_for(rt, "u", &token)
}

/// Whose a verified unsubscribe token is: (campaign, seq, email). None for any bad token
/// (one answer for all: no oracle).
pub async fn unsubscribe_target(
    rt: &AppState,
    token: &str,
) -> Result<Option<(String, i64, String)>> {
    let Ok(p) = crate::core::links::KeyRing::split(token) else {
        return Ok(None);
    };
    if rt
        .keys
        .verify(crate::core::links::Purpose::Unsubscribe, &p, &[])
        .is_err()
    {
        return Ok(None);
    }
    let Some((campaign, seq)) = p.subject.rsplit_once('_') else {
        return Ok(None);
    };
    let Ok(seq) = seq.parse::<i64>() else {
        return Ok(None);
    };
    Ok(rt
        .store
        .recipient_email(campaign, seq)
        .await?
        .map(|(email, _)| (campaign.to_string(), seq, email)))
}

/// One click: the address is suppressed (no campaign mails it again) and its pending rows
/// are marked. Idempotent. Returns the address, or None for a bad token.
pub async fn unsubscribe(rt: &AppState, token: &str) -> Result<Option<String>> {
    let Some((campaign, seq, email)) = unsubscribe_target(rt, token).await? else {
        return Ok(None);
    };
    let key = email.to_lowercase();
    let now = rt.clock.now();
    let reason = format!("unsubscribed ({campaign} line {seq})");
    if rt.store.suppress(&key, &reason, "unsubscribe", now).await? {
        tracing::info!(campaign = %campaign, seq, "recipient unsubscribed");
    }
    rt.store.suppress_pending_address(&key, now).await?;
    Ok(Some(email))
}

/// What ingesting one bounce message did, per failed recipient.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct BounceResult {
    pub recipient: Option<String>,
    pub message_id: Option<String>,
    pub kind: crate::core::bounces::BounceKind,
    pub status: String,
    /// The campaign recipient it matched (campaign, line), if any.
    pub matched: Option<(String, i64)>,
    /// The lifecycle email it matched (its Message-ID), if any.
    pub matched_email: Option<String>,
    /// Why it matches no message we sent (then nothing was changed or suppressed); it is
    /// kept for `bounces list --unmatched`.
    pub unmatched: Option<String>,
    pub suppressed: bool,
}

/// Ingests one raw bounce (a delivery status notification). Each failed recipient is
/// matched to a message we sent: its returned Message-ID must be one of ours (a campaign
/// invitation or reminder, or a lifecycle email) that was handed to the transport, and the
/// failed recipient must be that message's recipient. Only then does a hard bounce make the
/// campaign recipient `bounced` and suppress the address, and a soft one count. Bounces
/// that match nothing change nothing; every bounce is kept (`bounces list`). A DSN naming
/// more than [`crate::core::bounces::MAX_RECIPIENTS`] recipients is refused whole.
pub async fn ingest_bounce(rt: &AppState, raw: &[u8], source: &str) -> Result<Vec<BounceResult>> {
    use crate::store::BounceTarget;
    let bounces =
        crate::core::bounces::parse(raw).map_err(|e| CampaignError::Invalid(e.to_string()))?;
    let now = rt.clock.now();
    let mut out = Vec::new();
    for b in bounces {
        let hard = b.kind == crate::core::bounces::BounceKind::Hard;
        let detail = format!(
            "{} bounce {}{}",
            if hard { "hard" } else { "soft" },
            b.status,
            b.diagnostic
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
        let target = match (&b.message_id, &b.recipient) {
            (None, _) => Err("no Message-ID of the returned message".to_string()),
            (_, None) => Err("no Final-Recipient".to_string()),
            (Some(id), Some(rcpt)) => rt.store.match_bounce(id, rcpt).await?,
        };
        let mut result = BounceResult {
            recipient: b.recipient.clone(),
            message_id: b.message_id.clone(),
            kind: b.kind,
            status: b.status.clone(),
            matched: None,
            matched_email: None,
            unmatched: None,
            suppressed: false,
        };
        let matched = match target {
            Ok(t) => {
                let key = match &t {
                    BounceTarget::Campaign {
                        campaign_id,
                        seq,
                        email_key,
                    } => {
                        rt.store
                            .record_campaign_bounce(campaign_id, *seq, hard, &detail, now)
                            .await?;
                        result.matched = Some((campaign_id.clone(), *seq));
                        email_key.clone()
                    }
                    BounceTarget::Email {
                        message_id,
                        email_key,
                    } => {
                        result.matched_email = Some(message_id.clone());
                        email_key.clone()
                    }
                };
                if hard {
                    result.suppressed = rt.store.suppress(&key, &detail, source, now).await?;
                    rt.store.suppress_pending_address(&key, now).await?;
                }
                Some(match &t {
                    BounceTarget::Campaign {
                        campaign_id, seq, ..
                    } => format!("campaign {campaign_id} line {seq}"),
                    BounceTarget::Email { message_id, .. } => format!("email {message_id}"),
                })
            }
            Err(reason) => {
                tracing::info!(
                    message_id = b.message_id.as_deref().unwrap_or("-"),
                    %reason,
                    "bounce matches no message we sent; not acted on"
                );
                result.unmatched = Some(reason);
                None
            }
        };
        rt.store
            .insert_bounce(&crate::store::BounceRow {
                received_at: now,
                source: source.to_string(),
                kind: if hard { "hard" } else { "soft" }.into(),
                status: b.status,
                message_id: b.message_id,
                recipient: b.recipient,
                diagnostic: b.diagnostic,
                matched,
                reason: result.unmatched.clone(),
                suppressed: result.suppressed,
            })
            .await?;
        out.push(result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> (Vec<String>, Vec<(u64, Line)>) {
        let mut f = RecipientsFile::open(text).unwrap();
        let mut out = Vec::new();
        while let Some(l) = f.next_line().unwrap() {
            out.push(l);
        }
        (f.headers().to_vec(), out)
    }

    #[test]
    fn fields_are_split_with_rfc4180_quotes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(split_fields("a, b ,c").unwrap(), s(&["a", "b", "c"]));
        assert_eq!(
            split_fields(r#""Contoso, AG", "say ""hi""" ,"#).unwrap(),
            s(&["Contoso, AG", r#"say "hi""#, ""])
        );
        assert_eq!(split_fields("").unwrap(), s(&[""]));
        let e = split_fields(r#"a,"open"#).unwrap_err();
        assert!(e.starts_with("field 2: unterminated quote"), "{e}");
        let e = split_fields(r#""x"y,z"#).unwrap_err();
        assert!(
            e.starts_with("field 1: text after the closing quote"),
            "{e}"
        );
    }

    #[test]
    fn an_unterminated_quote_costs_its_own_line_only() {
        let (h, l) =
            lines(b"email,name\r\na@x.example,\"Anna\r\nb@x.example,Bert\r\n\r\nc@x.example,Carl");
        assert_eq!(h, vec!["email", "name"]);
        assert_eq!(l.len(), 4);
        assert!(matches!(&l[0], (2, Line::Bad(m)) if m.contains("unterminated")));
        assert_eq!(
            l[1],
            (3, Line::Fields(vec!["b@x.example".into(), "Bert".into()]))
        );
        assert_eq!(l[2], (4, Line::Blank));
        assert_eq!(
            l[3],
            (5, Line::Fields(vec!["c@x.example".into(), "Carl".into()]))
        );
    }

    #[test]
    fn long_lines_are_cut_and_reported_with_an_excerpt() {
        let mut text = b"email,segment\na@x.example,".to_vec();
        text.extend(std::iter::repeat_n(b'z', 3 * MAX_LINE_BYTES));
        text.extend_from_slice(b"\nb@x.example,ok\n");
        let (_, l) = lines(&text);
        match &l[0] {
            (2, Line::Bad(m)) => {
                assert!(m.len() < 200, "{m}");
                assert!(
                    m.contains(&format!("{} bytes long", 3 * MAX_LINE_BYTES + 12)),
                    "{m}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l[1].0, 3);
    }

    #[test]
    fn unreadable_headers_are_refused() {
        let utf16: Vec<u8> = "\u{feff}email,name\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for (text, want) in [
            (&utf16[..], "UTF-16"),
            (b"" as &[u8], "empty"),
            (b"name,company\nx,y\n", "`email` column"),
            (b"email,Email\n", "appears twice"),
            (b"\"email,name\n", "unterminated"),
        ] {
            match RecipientsFile::open(text) {
                Err(CampaignError::Invalid(m)) => {
                    assert!(m.starts_with("line 1: ") && m.contains(want), "{m}")
                }
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("accepted {want}"),
            }
        }
        // A UTF-8 byte order mark is fine.
        assert_eq!(lines(b"\xEF\xBB\xBFEmail\n").0, vec!["email"]);
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for (cell, want) in [
            ("=1+2", "'=1+2"),
            ("+49 30", "'+49 30"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("kunde@contoso.example", "kunde@contoso.example"),
            ("12", "12"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), want);
        }
    }
}
