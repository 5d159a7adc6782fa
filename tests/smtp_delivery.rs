//! Email delivery over real SMTP: partnerflow's SMTP transport talks TCP to an aiosmtpd
//! server (tests/support/smtp_server.py) started per test. Time is a ManualClock: retries
//! happen when the test advances it and calls `run_due`, never by sleeping.
//!
//! The server's behaviour is chosen by the recipient's local part: `temp…` gets a 451 on
//! its first RCPT TO, `perm…` always a 550, anything else is accepted.

#[macro_use]
mod common;

use common::smtp::{Received, SmtpServer};
use common::{Store, TestDb};
use std::path::Path;
use std::sync::Arc;

use partnerflow::app::AppState;
use partnerflow::core::clock::{Clock, ManualClock};
use partnerflow::core::domain::{InstanceId, Locale, Span, Timestamp};
use partnerflow::core::instance::EmailRow;
use partnerflow::store::{JobRow, Outcome};
use serde_json::{Map, Value, json};

// ------------------------------------------------------------------ a tiny MIME reader

/// Headers (unfolded, in order) and body of a message or MIME part.
struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    fn parse(raw: &str) -> Part {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                let last = headers
                    .last_mut()
                    .expect("continuation line before any header");
                last.1.push(' ');
                last.1.push_str(line.trim());
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Part {
            headers,
            body: body.to_string(),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of a header; panics when it is missing or repeated.
    fn one(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [v] => v,
            other => panic!(
                "expected exactly one `{name}` header, found {}: {:?}",
                other.len(),
                self.headers
            ),
        }
    }

    fn content_type(&self) -> String {
        self.all("Content-Type")
            .first()
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }

    /// The parts of a multipart body.
    fn parts(&self) -> Vec<Part> {
        let ct = self.one("Content-Type");
        let boundary = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .unwrap_or_else(|| panic!("no boundary in `{ct}`"))
            .trim_matches('"');
        let delim = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut rest = self.body.as_str();
        assert!(
            rest.contains(&format!("{delim}--")),
            "multipart body lacks its closing delimiter"
        );
        while let Some(i) = rest.find(&delim) {
            rest = &rest[i + delim.len()..];
            if rest.starts_with("--") {
                break;
            }
            let end = rest.find(&delim).unwrap_or(rest.len());
            let chunk = rest[..end].strip_prefix('\n').unwrap_or(&rest[..end]);
            parts.push(Part::parse(chunk.strip_suffix('\n').unwrap_or(chunk)));
        }
        parts
    }

    /// The body with its Content-Transfer-Encoding undone.
    fn decoded(&self) -> String {
        let cte = self
            .all("Content-Transfer-Encoding")
            .first()
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        let bytes = match cte.as_str() {
            "base64" => base64_decode(&self.body),
            "quoted-printable" => qp_decode(&self.body),
            _ => self.body.clone().into_bytes(),
        };
        String::from_utf8(bytes).expect("decoded part is UTF-8")
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("bad base64 byte {c}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn qp_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2; // soft line break
                continue;
            }
            let hex = std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())]).unwrap_or("");
            out.push(
                u8::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| panic!("bad quoted-printable escape `={hex}`")),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in an unfolded header;
/// whitespace between two adjacent encoded words is dropped, as the RFC says.
fn decode_header(v: &str) -> String {
    let mut out = String::new();
    let mut prev_encoded = false;
    for (i, token) in v.split(' ').enumerate() {
        let word = token
            .strip_prefix("=?")
            .and_then(|t| t.strip_suffix("?="))
            .and_then(|t| {
                let mut it = t.splitn(3, '?');
                Some((it.next()?, it.next()?, it.next()?))
            });
        let decoded = match word {
            Some((charset, enc, text)) => {
                assert!(
                    charset.eq_ignore_ascii_case("utf-8"),
                    "charset {charset} in `{v}`"
                );
                let bytes = match enc {
                    "b" | "B" => base64_decode(text),
                    "q" | "Q" => qp_decode(&text.replace('_', " ")),
                    other => panic!("encoding {other} in `{v}`"),
                };
                Some(String::from_utf8(bytes).expect("encoded word is UTF-8"))
            }
            None => None,
        };
        if i > 0 && !(prev_encoded && decoded.is_some()) {
            out.push(' ');
        }
        prev_encoded = decoded.is_some();
        out.push_str(&decoded.unwrap_or_else(|| token.to_string()));
    }
    out
}

/// The address inside `Name <addr>` (or the value itself when there are no brackets).
fn addr_of(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(a), Some(b)) if a < b => &mailbox[a + 1..b],
        _ => mailbox.trim(),
    }
}

// ------------------------------------------------------------------ harness

struct Harness {
    rt: Arc<AppState>,
    clock: ManualClock,
    smtp: SmtpServer,
    // Dropped last: the database and the server's directory live in it.
    _tmp: tempfile::TempDir,
}

/// 2026-03-02T09:30:00Z: a whole second, so the Date header can be compared exactly.
const START: Timestamp = Timestamp(1_772_443_800_000);

async fn harness(store: Store) -> Harness {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(store, tmp.path()).await;
    let smtp = SmtpServer::start(&tmp.path().join("received"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env: Vec<(String, String)> = [
        ("DATABASE__URL", db.url.clone()),
        ("EMAIL__TRANSPORT", "smtp".into()),
        (
            "EMAIL__OUTBOX_DIR",
            tmp.path().join("outbox").display().to_string(),
        ),
        ("EMAIL__SMTP__HOST", "127.0.0.1".into()),
        ("EMAIL__SMTP__PORT", smtp.port.to_string()),
        ("EMAIL__SMTP__SECURITY", "none".into()),
        ("EMAIL__SMTP__TIMEOUT", "10s".into()),
        (
            "APP__DATA_DIR",
            tmp.path().join("data").display().to_string(),
        ),
        (
            "APP__WORKFLOWS_DIR",
            root.join("workflows").display().to_string(),
        ),
        (
            "APP__TEMPLATES_DIR",
            root.join("email-templates").display().to_string(),
        ),
        ("JOBS__BACKOFF_BASE", "1s".into()),
        ("SCHEDULES__LOCATION_SYNC__ENABLED", "false".into()),
        ("SCHEDULES__RECONCILE__ENABLED", "false".into()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("PARTNERFLOW__{k}"), v))
    .collect();
    let settings = partnerflow::core::config::Settings::load(None, &env).expect("settings");
    let clock = ManualClock::new(START);
    let rt = partnerflow::app::build(settings, Some(Arc::new(clock.clone())), "test")
        .await
        .expect("build the runtime");
    Harness {
        rt,
        clock,
        smtp,
        _tmp: tmp,
    }
}

impl Harness {
    /// Starts a trial invitation for `customer` and fires `send`: one email job is due now.
    async fn invite(&self, customer: &str) -> InstanceId {
        let data: Map<String, Value> = json!({
            "offer_id": "PF-SMTPTEST01",
            "customer_email": customer,
            "customer_name": "Erika Mustermann",
            "product_name": "Microsoft 365 Business Premium",
            "link": "https://partnerflow.example/o/PF-SMTPTEST01",
        })
        .as_object()
        .cloned()
        .expect("object");
        let id = self
            .rt
            .engine
            .start("trial_invitation", &data, Some(Locale::De), "test")
            .await
            .expect("start");
        let t = self
            .rt
            .engine
            .fire(&id, "send", "test")
            .await
            .expect("fire send");
        assert_eq!(t.to, "invited");
        id
    }

    async fn run_due(&self) -> usize {
        self.rt.run_due().await.expect("run_due")
    }

    async fn email_job(&self, id: &InstanceId) -> JobRow {
        let jobs: Vec<JobRow> = self
            .rt
            .store
            .list_jobs(None, 10_000)
            .await
            .expect("list jobs")
            .into_iter()
            .filter(|j| j.kind == "email" && j.subject == id.as_str())
            .collect();
        assert_eq!(jobs.len(), 1, "one email job per invitation: {jobs:?}");
        jobs.into_iter().next().expect("job")
    }

    async fn ledger(&self, id: &InstanceId) -> EmailRow {
        let rows = self.rt.store.emails_of(id).await.expect("emails_of");
        assert_eq!(rows.len(), 1, "one ledger row per invitation: {rows:?}");
        rows.into_iter().next().expect("row")
    }

    /// The seq of the history row of the `send` transition.
    async fn send_seq(&self, id: &InstanceId) -> i64 {
        let h = self.rt.store.history(id).await.expect("history");
        h.iter()
            .find(|r| r.event == "send")
            .expect("history has the send transition")
            .seq
    }
}

/// Checks one received message against what partnerflow should have sent, and returns its
/// Message-ID.
fn check_message(
    h: &Harness,
    m: &Received,
    to: &str,
    ledger: &EmailRow,
    send_seq: i64,
    id: &InstanceId,
    sent_at: Timestamp,
) {
    let s = &h.rt.settings;
    // The SMTP envelope.
    assert_eq!(m.mail_from, s.email.from_address.as_str(), "MAIL FROM");
    assert_eq!(m.rcpt_to, vec![to.to_string()], "RCPT TO");

    let msg = Part::parse(&m.raw);
    // Message-ID: the ledger's, of the form <instance.seq.idx@domain>.
    let mid = msg.one("Message-ID");
    assert_eq!(mid, ledger.message_id, "Message-ID is the ledger's");
    let inner = mid
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or_else(|| panic!("Message-ID {mid} lacks <>"));
    let (left, domain) = inner
        .split_once('@')
        .unwrap_or_else(|| panic!("Message-ID {mid} lacks @"));
    assert_eq!(domain, s.email.message_id_domain, "Message-ID domain");
    let fields: Vec<&str> = left.rsplitn(3, '.').collect();
    assert_eq!(
        fields.len(),
        3,
        "Message-ID {mid} is not <instance.seq.idx@domain>"
    );
    assert_eq!(fields[2], id.as_str(), "Message-ID names the instance");
    assert_eq!(
        fields[1].parse::<i64>().ok(),
        Some(send_seq),
        "Message-ID seq is the transition's"
    );
    assert_eq!(fields[0], "0", "Message-ID idx: the first effect");

    // Date: present, RFC 2822, the (manual) time of the attempt.
    let date = msg.one("Date");
    let parsed =
        chrono::DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("Date `{date}`: {e}"));
    assert_eq!(
        parsed.timestamp_millis(),
        sent_at.0,
        "Date is the clock's time of the attempt"
    );

    // From: partner's name and the from address; Reply-To: the partner; To: the customer.
    let from = msg.one("From");
    assert!(
        from.contains(&s.partner.name),
        "From `{from}` lacks the partner name `{}`",
        s.partner.name
    );
    assert_eq!(addr_of(from), s.email.from_address.as_str(), "From address");
    assert_eq!(
        addr_of(msg.one("Reply-To")),
        s.partner.email.as_str(),
        "Reply-To"
    );
    assert_eq!(addr_of(msg.one("To")), to, "To");
    let subject = decode_header(msg.one("Subject"));
    assert_eq!(
        subject,
        format!(
            "Einladung zum Testen von Microsoft 365 Business Premium – {}",
            s.partner.name
        ),
        "Subject"
    );

    // multipart/alternative with a text and an HTML part, both carrying the offer link.
    assert_eq!(
        msg.content_type(),
        "multipart/alternative",
        "top-level Content-Type"
    );
    let parts = msg.parts();
    let types: Vec<String> = parts.iter().map(Part::content_type).collect();
    assert_eq!(
        types,
        vec!["text/plain".to_string(), "text/html".to_string()],
        "alternative parts"
    );
    let text = parts[0].decoded();
    let html = parts[1].decoded();
    assert!(
        text.contains("https://partnerflow.example/o/PF-SMTPTEST01"),
        "text part lacks the link:\n{text}"
    );
    assert!(
        text.contains("PF-SMTPTEST01") && text.contains("Erika Mustermann"),
        "text part:\n{text}"
    );
    assert!(
        html.contains("href=\"https://partnerflow.example/o/PF-SMTPTEST01\""),
        "html part lacks the link:\n{html}"
    );
}

// ------------------------------------------------------------------ tests

async fn delivered_once_with_ledger_message_id(store: Store) {
    let h = harness(store).await;
    let to = "ok@customer.example";
    let id = h.invite(to).await;
    assert!(
        h.smtp.received().is_empty(),
        "nothing is sent before the job runs"
    );

    assert_eq!(h.run_due().await, 1, "one attempt: the email job");
    let got = h.smtp.received();
    assert_eq!(got.len(), 1, "exactly one message received");
    let ledger = h.ledger(&id).await;
    check_message(&h, &got[0], to, &ledger, h.send_seq(&id).await, &id, START);

    assert_eq!(ledger.state, "sent", "{ledger:?}");
    assert_eq!(ledger.recipient, to);
    assert_eq!(ledger.attempts, 1);
    assert_eq!(ledger.sent_at, Some(START));
    let reply = ledger.reply.as_deref().unwrap_or_default();
    assert!(reply.starts_with("250"), "ledger reply `{reply}`");
    let job = h.email_job(&id).await;
    assert_eq!((job.state.as_str(), job.attempts), ("done", 1), "{job:?}");

    // Later passes send nothing more.
    h.clock.advance(Span::from_secs(3600));
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.smtp.received().len(), 1);
}

async fn transient_4xx_is_retried_after_backoff_with_the_same_message_id(store: Store) {
    let h = harness(store).await;
    let to = "temp1@customer.example";
    let id = h.invite(to).await;

    assert_eq!(
        h.run_due().await,
        1,
        "one attempt, then the job waits for its backoff"
    );
    assert!(h.smtp.received().is_empty(), "a 451 delivers nothing");
    let job = h.email_job(&id).await;
    assert_eq!(job.state, "scheduled", "{job:?}");
    assert_eq!(job.attempts, 1);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("451"),
        "job last_error: {:?}",
        job.last_error
    );
    assert!(job.run_at > START, "retry is in the future: {job:?}");
    assert!(
        job.run_at <= START.plus(Span::from_secs(2)),
        "backoff_base 1s (±25 %): {job:?}"
    );
    let ledger = h.ledger(&id).await;
    assert_eq!(ledger.state, "queued", "{ledger:?}");
    assert!(
        ledger
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("451"),
        "{ledger:?}"
    );
    assert_eq!(ledger.reply, None);

    // Not yet due: nothing happens without the clock moving.
    assert_eq!(h.run_due().await, 0);

    h.clock.advance(Span::from_secs(120));
    let retry_at = h.clock.now();
    assert_eq!(h.run_due().await, 1, "the retry");
    let got = h.smtp.received();
    assert_eq!(got.len(), 1, "delivered exactly once");
    let ledger = h.ledger(&id).await;
    assert_eq!(ledger.state, "sent", "{ledger:?}");
    assert_eq!(ledger.attempts, 2);
    assert!(
        ledger
            .reply
            .as_deref()
            .unwrap_or_default()
            .starts_with("250"),
        "{ledger:?}"
    );
    // The same Message-ID as fixed at the transition (checked against the ledger row, which
    // was written with the transition and never changes).
    check_message(
        &h,
        &got[0],
        to,
        &ledger,
        h.send_seq(&id).await,
        &id,
        retry_at,
    );
    let job = h.email_job(&id).await;
    assert_eq!((job.state.as_str(), job.attempts), ("done", 2), "{job:?}");
}

async fn permanent_5xx_fails_at_once_and_can_be_retried_by_hand(store: Store) {
    let h = harness(store).await;
    let to = "perm1@customer.example";
    let id = h.invite(to).await;

    assert_eq!(h.run_due().await, 1, "exactly one attempt");
    assert!(h.smtp.received().is_empty());
    let job = h.email_job(&id).await;
    assert_eq!(job.state, "failed", "{job:?}");
    assert_eq!(job.attempts, 1, "a 5xx is not retried");
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("550"),
        "job last_error: {:?}",
        job.last_error
    );
    let ledger = h.ledger(&id).await;
    assert_eq!(ledger.state, "failed", "{ledger:?}");
    assert!(
        ledger
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("550"),
        "{ledger:?}"
    );

    // Time passing changes nothing: failed jobs are not picked up again.
    h.clock.advance(Span::from_secs(24 * 3600));
    assert_eq!(h.run_due().await, 0);
    assert!(h.smtp.received().is_empty());
    assert_eq!(h.email_job(&id).await.state, "failed");

    // An operator puts it back to work.
    let now = h.clock.now();
    let back = partnerflow::jobs::inspect::retry(&h.rt, job.id, &partnerflow::portal::Actor::cli())
        .await
        .expect("retry_job");
    assert_eq!(back.state, "scheduled", "{back:?}");
    assert_eq!(back.attempts, 0);
    assert_eq!(back.run_at, now);
    assert_eq!(h.ledger(&id).await.state, "queued");
    // The server still refuses: one more attempt, failed again, still nothing delivered.
    assert_eq!(h.run_due().await, 1);
    assert!(h.smtp.received().is_empty());
    let job = h.email_job(&id).await;
    assert_eq!((job.state.as_str(), job.attempts), ("failed", 1), "{job:?}");
    assert_eq!(h.ledger(&id).await.state, "failed");
}

/// A worker claims the email job and stalls; its lease runs out and another worker sends
/// the message. When the stalled attempt finally runs, the ledger says `sent`: it must not
/// send again, and its late outcome must not overwrite the job.
async fn a_stale_attempt_after_a_successful_send_does_not_send_again(store: Store) {
    let h = harness(store).await;
    let to = "ok2@customer.example";
    let id = h.invite(to).await;

    let now = h.clock.now();
    let lease = h.rt.settings.jobs.lease;
    let claimed =
        h.rt.store
            .claim("stalled-worker", now, now.plus(lease), 100)
            .await
            .expect("claim");
    let stale = claimed
        .into_iter()
        .find(|j| j.kind == "email" && j.subject == id.as_str())
        .expect("claimed the email job");
    assert_eq!(stale.attempts, 1);

    // Lease runs out; this node takes the job over and delivers.
    h.clock.advance(Span(lease.0 + 1_000));
    assert_eq!(h.run_due().await, 1);
    assert_eq!(h.smtp.received().len(), 1);
    assert_eq!(h.ledger(&id).await.state, "sent");

    // The stalled attempt wakes up.
    let outcome = h.rt.execute(&stale).await;
    assert_eq!(
        outcome,
        Outcome::Done,
        "the ledger says sent: nothing to do"
    );
    assert_eq!(h.smtp.received().len(), 1, "not sent a second time");
    h.rt.store
        .finish("stalled-worker", &[(stale, outcome)], h.clock.now())
        .await
        .expect("finish");
    let job = h.email_job(&id).await;
    assert_eq!((job.state.as_str(), job.attempts), ("done", 2), "{job:?}");
    let ledger = h.ledger(&id).await;
    assert_eq!(ledger.state, "sent");
    assert_eq!(
        ledger.attempts, 2,
        "the stale outcome did not touch the ledger"
    );
}

on_both_stores!(
    delivered_once_with_ledger_message_id,
    transient_4xx_is_retried_after_backoff_with_the_same_message_id,
    permanent_5xx_fails_at_once_and_can_be_retried_by_hand,
    a_stale_attempt_after_a_successful_send_does_not_send_again,
);
