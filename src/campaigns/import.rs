//! Recipients in: a CSV file streamed line by line (bounded lines, every bad row reported
//! with its line and reason) or a JSON list, written 1,000 rows per statement.

use std::io::Read;

use serde_json::{Map, Value};

use crate::app::AppState;
use crate::core::domain::{EmailAddress, Locale, parse_name};
use crate::store::NewRecipient;

use super::*;

/// What an import did. Every data line (each line after the header) is counted once:
/// `lines == added + duplicates + invalid + blank`; `suppressed` counts those added whose
/// address is suppressed (they stay in the ledger and are not sent).
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
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
pub(super) fn split_fields(line: &str) -> Result<Vec<String>, String> {
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
    if !c.state.accepts_recipients() {
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
