//! Bounce messages: delivery status notifications (RFC 3464 inside an RFC 3462
//! `multipart/report; report-type=delivery-status`) parsed into one [`Bounce`] per failed or
//! delayed recipient. Pure: bytes in, values out; no I/O, no clock, no database.
//!
//! MIME is parsed by `mail-parser`. It has no notion of delivery-status fields: it hands the
//! `message/delivery-status` part over as an opaque body (`PartType::Binary`, transfer
//! encoding already decoded), so the field groups inside it are parsed here.

use std::borrow::Cow;

use mail_parser::{
    Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// Longest diagnostic kept, in characters.
const MAX_DIAGNOSTIC_CHARS: usize = 500;

/// Most recipient blocks one DSN may name. Each message we send has one recipient, so a real
/// DSN about it names one or a few (an MTA may add delivered or relayed ones); a DSN naming
/// more is refused whole, never acted on in part.
pub const MAX_RECIPIENTS: usize = 20;

/// Longest recipient or Message-ID kept, in characters (longer ones cannot be ours).
const MAX_ADDRESS_CHARS: usize = 320;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BounceKind {
    /// Permanent failure (status class 5): the address should not be mailed again.
    Hard,
    /// Transient failure or delay (status class 4).
    Soft,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bounce {
    pub kind: BounceKind,
    /// The failed recipient (Final-Recipient, else Original-Recipient), address only, e.g.
    /// "kunde@contoso.example" (the "rfc822;" type prefix and angle brackets stripped, trimmed).
    pub recipient: Option<String>,
    /// Message-ID of the message that bounced, WITH angle brackets, e.g.
    /// "<cmp_x.12@partnerflow.example>": from the returned message/rfc822 or
    /// text/rfc822-headers part (its Message-ID header); None if absent.
    pub message_id: Option<String>,
    /// The DSN Status, e.g. "5.1.1".
    pub status: String,
    /// Diagnostic-Code text if present (e.g. "smtp; 550 5.1.1 user unknown"), unfolded,
    /// trimmed, at most 500 chars.
    pub diagnostic: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BounceError {
    #[error("not a MIME message")]
    Unparsable,
    #[error("not a delivery status notification (no message/delivery-status part)")]
    NotDsn,
    #[error("delivery status notification without a failed or delayed recipient")]
    NothingFailed,
    #[error("bad delivery status: {0}")]
    Malformed(String),
    #[error(
        "delivery status notification naming {0} recipients (at most {MAX_RECIPIENTS}): refused"
    )]
    TooManyRecipients(usize),
}

/// One Bounce per failed (Action: failed → Hard if Status class 5, Soft if class 4) or delayed
/// (Action: delayed → Soft) recipient block; blocks with Action delivered/relayed/expanded are
/// skipped. If every block is skipped → Err(NothingFailed).
///
/// A block without Action (or with an unregistered one) is classified by its Status alone:
/// class 5 → Hard, class 4 → Soft, class 2 → skipped. `failed` with a class-2 status is
/// taken as Hard (the reporting MTA gave up for good). Status is checked (present, `d.d.d`
/// with class 2, 4 or 5, RFC 3463) in every block that is not skipped by its Action.
///
/// A DSN with more than [`MAX_RECIPIENTS`] recipient blocks is refused
/// (Err(TooManyRecipients)) before any block is classified.
pub fn parse(raw: &[u8]) -> Result<Vec<Bounce>, BounceError> {
    let message = MessageParser::new()
        .parse(raw)
        .filter(|message| has_header_field(message, raw))
        .ok_or(BounceError::Unparsable)?;
    // `parts` is the flat list of this message's MIME parts; parts of an attached message
    // (a returned message that was itself a bounce, say) are not in it.
    let report = message
        .parts
        .iter()
        .find(|part| {
            part.is_content_type("message", "delivery-status")
                || part.is_content_type("message", "global-delivery-status")
        })
        .ok_or(BounceError::NotDsn)?;
    let body = report_body(report);
    let message_id = returned_message_id(&message);

    let groups: Vec<Fields> = field_groups(&body)
        .into_iter()
        // Skip the per-message group (Reporting-MTA, Arrival-Date, ...).
        .filter(is_recipient_group)
        .collect();
    if groups.len() > MAX_RECIPIENTS {
        return Err(BounceError::TooManyRecipients(groups.len()));
    }
    let recipient_blocks = groups.len();
    let mut bounces = Vec::new();
    for group in groups {
        if let Some((kind, status)) = classify(&group)? {
            bounces.push(Bounce {
                kind,
                recipient: field(&group, "final-recipient")
                    .and_then(address)
                    .or_else(|| field(&group, "original-recipient").and_then(address)),
                message_id: message_id.clone(),
                status,
                diagnostic: field(&group, "diagnostic-code").and_then(diagnostic),
            });
        }
    }
    if recipient_blocks == 0 {
        return Err(BounceError::Malformed(
            "no per-recipient fields (Final-Recipient, Action, Status)".into(),
        ));
    }
    if bounces.is_empty() {
        return Err(BounceError::NothingFailed);
    }
    Ok(bounces)
}

/// Whether the message starts with at least one well-formed `name: value` field.
/// mail-parser returns None only for empty or blank input: any other bytes become a
/// "message" (a line of binary noise, even without a colon, is taken as a header name).
fn has_header_field(message: &Message<'_>, raw: &[u8]) -> bool {
    message.parts.first().is_some_and(|root| {
        root.headers().iter().any(|header| {
            is_field_name(header.name.as_str())
                && raw
                    .get(header.offset_field() as usize..header.offset_start() as usize)
                    .is_some_and(|field| field.ends_with(b":"))
        })
    })
}

/// The delivery-status body as text. mail-parser gives `message/delivery-status` parts as
/// `Binary`; `Text` appears when it fell back after an encoding problem. The fields are
/// ASCII (UTF-8 for `message/global-delivery-status`); anything else is replaced, not fatal.
fn report_body<'a>(part: &'a MessagePart<'_>) -> Cow<'a, str> {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => Cow::Borrowed(text.as_ref()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => String::from_utf8_lossy(bytes),
        // Only with a malformed content type; read what raw text there is.
        PartType::Message(nested) => String::from_utf8_lossy(nested.raw_message()),
        PartType::Multipart(_) => Cow::Borrowed(""),
    }
}

/// One field group: (lower-case name, unfolded trimmed value), in order.
type Fields = Vec<(String, String)>;

/// Splits a delivery-status body into its field groups (separated by blank lines). Folded
/// lines are joined with a single space; lines that are not `name: value` are ignored.
fn field_groups(body: &str) -> Vec<Fields> {
    let mut groups = Vec::new();
    let mut group: Fields = Vec::new();
    // Whether a continuation line belongs to the last field of `group`.
    let mut can_continue = false;
    for line in body.lines() {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            can_continue = false;
        } else if line.starts_with([' ', '\t']) {
            if can_continue && let Some((_, value)) = group.last_mut() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':')
            && is_field_name(name)
        {
            group.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            can_continue = true;
        } else {
            can_continue = false;
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// RFC 5322 field name: printable ASCII except colon (the split already removed it).
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
}

/// The first value of the field `name` (lower case).
fn field<'a>(group: &'a Fields, name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.as_str())
}

fn is_recipient_group(group: &Fields) -> bool {
    group.iter().any(|(name, _)| {
        matches!(
            name.as_str(),
            "final-recipient" | "original-recipient" | "action" | "status"
        )
    })
}

/// The bounce kind and status of a recipient block, or None if it reports no failure.
fn classify(group: &Fields) -> Result<Option<(BounceKind, String)>, BounceError> {
    let action = field(group, "action")
        .and_then(first_token)
        .map(str::to_ascii_lowercase);
    if matches!(
        action.as_deref(),
        Some("delivered" | "relayed" | "expanded")
    ) {
        return Ok(None);
    }
    let (class, status) = status(group)?;
    let kind = match (action.as_deref(), class) {
        (Some("delayed"), _) => Some(BounceKind::Soft),
        (Some("failed"), 4) => Some(BounceKind::Soft),
        (Some("failed"), _) => Some(BounceKind::Hard),
        // No Action, or one RFC 3464 does not define: the status decides.
        (_, 5) => Some(BounceKind::Hard),
        (_, 4) => Some(BounceKind::Soft),
        _ => None,
    };
    Ok(kind.map(|kind| (kind, status)))
}

/// The Status field checked as `class.subject.detail` (RFC 3463: class 2, 4 or 5, then one
/// to three digits each), with its class.
fn status(group: &Fields) -> Result<(u8, String), BounceError> {
    let who = field(group, "final-recipient")
        .or_else(|| field(group, "original-recipient"))
        .unwrap_or("unknown recipient");
    let raw = field(group, "status")
        .ok_or_else(|| BounceError::Malformed(format!("no Status field for {who}")))?;
    let code = first_token(raw).unwrap_or("");
    let mut parts = code.split('.');
    let class = match parts.next() {
        Some("2") => Some(2),
        Some("4") => Some(4),
        Some("5") => Some(5),
        _ => None,
    };
    let digits = |part: Option<&str>| {
        part.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match class {
        Some(class) if digits(parts.next()) && digits(parts.next()) && parts.next().is_none() => {
            Ok((class, code.to_owned()))
        }
        _ => Err(BounceError::Malformed(format!(
            "Status {raw:?} for {who} is not a d.d.d status code"
        ))),
    }
}

/// The value up to the first whitespace or comment: `failed (bad mailbox)` → `failed`.
fn first_token(value: &str) -> Option<&str> {
    value
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .filter(|token| !token.is_empty())
}

/// `rfc822; <kunde@contoso.example>` → `kunde@contoso.example`.
fn address(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, address)| address);
    let address = address.trim();
    let address = address.strip_prefix('<').unwrap_or(address);
    let address = address.strip_suffix('>').unwrap_or(address).trim();
    (!address.is_empty() && address.chars().count() <= MAX_ADDRESS_CHARS)
        .then(|| address.to_owned())
}

fn diagnostic(value: &str) -> Option<String> {
    let text: String = value.trim().chars().take(MAX_DIAGNOSTIC_CHARS).collect();
    let text = text.trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The Message-ID of the returned message: the first `message/rfc822` (or `message/global`)
/// part, or `text/rfc822-headers` (or `message/global-headers`) part, that has one.
fn returned_message_id(message: &Message<'_>) -> Option<String> {
    message
        .parts
        .iter()
        .filter(|part| {
            part.is_content_type("message", "rfc822")
                || part.is_content_type("message", "global")
                || part.is_content_type("text", "rfc822-headers")
                || part.is_content_type("message", "global-headers")
        })
        .find_map(part_message_id)
}

fn part_message_id(part: &MessagePart<'_>) -> Option<String> {
    match &part.body {
        // mail-parser parses message/rfc822 (and message/global) into a nested message.
        PartType::Message(nested) => nested
            .parts
            .first()
            .and_then(|root| header_message_id(root.headers())),
        // text/rfc822-headers is text; message/global-headers (or a message/rfc822 part that
        // failed to parse) is binary: parse the header block here.
        PartType::Text(_) | PartType::Html(_) | PartType::Binary(_) | PartType::InlineBinary(_) => {
            let headers = MessageParser::new().parse_headers(part.contents().trim_ascii_start())?;
            headers
                .parts
                .first()
                .and_then(|root| header_message_id(root.headers()))
        }
        PartType::Multipart(_) => None,
    }
}

/// mail-parser strips the angle brackets from message ids; they are put back here.
fn header_message_id(headers: &[Header<'_>]) -> Option<String> {
    let id = headers
        .iter()
        .find(|header| header.name == HeaderName::MessageId)
        .and_then(|header| match &header.value {
            HeaderValue::Text(id) => Some(id.as_ref()),
            HeaderValue::TextList(ids) => ids.first().map(|id| id.as_ref()),
            _ => None,
        })?;
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && id.chars().count() <= MAX_ADDRESS_CHARS).then(|| format!("<{id}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HARD_POSTFIX: &[u8] = include_bytes!("../../tests/support/bounces/hard-postfix.eml");
    const SOFT_DELAYED: &[u8] = include_bytes!("../../tests/support/bounces/soft-delayed.eml");
    const EXCHANGE_HARD: &[u8] = include_bytes!("../../tests/support/bounces/exchange-hard.eml");
    const TWO_RECIPIENTS: &[u8] = include_bytes!("../../tests/support/bounces/two-recipients.eml");
    const NOT_A_BOUNCE: &[u8] = include_bytes!("../../tests/support/bounces/not-a-bounce.eml");
    const AUTOREPLY: &[u8] = include_bytes!("../../tests/support/bounces/autoreply.eml");

    fn s(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    /// A multipart/report with the given delivery-status lines and returned-part lines
    /// (CRLF line endings; an empty `returned` leaves the returned part out).
    fn report(status_lines: &[&str], returned: &[&str]) -> Vec<u8> {
        let mut lines = vec![
            "From: MAILER-DAEMON@mx.partnerflow.example",
            "To: bounces@partnerflow.example",
            "Subject: Delivery Status Notification (Failure)",
            "MIME-Version: 1.0",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"",
            "",
            "--b1",
            "Content-Type: text/plain; charset=us-ascii",
            "",
            "Delivery failed.",
            "",
            "--b1",
            "Content-Type: message/delivery-status",
            "",
        ];
        lines.extend_from_slice(status_lines);
        lines.push("");
        if !returned.is_empty() {
            lines.push("--b1");
            lines.extend_from_slice(returned);
            lines.push("");
        }
        lines.push("--b1--");
        lines.push("");
        lines.join("\r\n").into_bytes()
    }

    const HEADERS_PART: &[&str] = &[
        "Content-Type: text/rfc822-headers",
        "",
        "From: einladung@partnerflow.example",
        "To: x@kunde.example",
        "Message-ID: <cmp_unit.1@partnerflow.example>",
        "Subject: Einladung",
    ];

    #[test]
    fn postfix_hard_bounce() {
        assert_eq!(
            parse(HARD_POSTFIX).unwrap(),
            vec![Bounce {
                kind: BounceKind::Hard,
                recipient: s("perm1@kunde.example"),
                message_id: s("<cmp_test.2@partnerflow.example>"),
                status: "5.1.1".into(),
                diagnostic: s(
                    "smtp; 550 5.1.1 <perm1@kunde.example>: Recipient address rejected: \
                     User unknown in virtual mailbox table"
                ),
            }]
        );
    }

    #[test]
    fn delayed_is_soft_with_message_id_from_rfc822_headers() {
        assert_eq!(
            parse(SOFT_DELAYED).unwrap(),
            vec![Bounce {
                kind: BounceKind::Soft,
                recipient: s("slow@kunde.example"),
                message_id: s("<cmp_test.3@partnerflow.example>"),
                status: "4.4.7".into(),
                diagnostic: None,
            }]
        );
    }

    #[test]
    fn exchange_ndr_with_folded_diagnostic() {
        assert!(
            EXCHANGE_HARD.windows(2).any(|w| w == b"\r\n"),
            "fixture uses CRLF"
        );
        assert_eq!(
            parse(EXCHANGE_HARD).unwrap(),
            vec![Bounce {
                kind: BounceKind::Hard,
                recipient: s("gone@contoso.example"),
                message_id: s("<cmp_test.4@partnerflow.example>"),
                status: "5.1.10".into(),
                diagnostic: s(
                    "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by \
                     SMTP address lookup"
                ),
            }]
        );
    }

    #[test]
    fn delivered_recipient_is_skipped() {
        assert_eq!(
            parse(TWO_RECIPIENTS).unwrap(),
            vec![Bounce {
                kind: BounceKind::Hard,
                recipient: s("full@kunde.example"),
                message_id: s("<cmp_test.5@partnerflow.example>"),
                status: "5.2.2".into(),
                diagnostic: s("smtp; 552 5.2.2 <full@kunde.example>: Mailbox full"),
            }]
        );
    }

    #[test]
    fn ordinary_mail_and_autoreply_are_not_dsns() {
        assert_eq!(parse(NOT_A_BOUNCE), Err(BounceError::NotDsn));
        assert_eq!(parse(AUTOREPLY), Err(BounceError::NotDsn));
    }

    #[test]
    fn folded_fields_are_unfolded() {
        let raw = report(
            &[
                "Reporting-MTA: dns;",
                "  mx.partnerflow.example",
                "",
                "Final-Recipient:",
                " rfc822;",
                "\t<folded@kunde.example>",
                "Action:",
                " failed",
                "Status:",
                "   5.7.1",
                "Diagnostic-Code: smtp; 550-5.7.1 The user or domain that you are",
                "    sending to (or from) has a policy that",
                "\tprohibits the mail that you sent.",
            ],
            HEADERS_PART,
        );
        assert_eq!(
            parse(&raw).unwrap(),
            vec![Bounce {
                kind: BounceKind::Hard,
                recipient: s("folded@kunde.example"),
                message_id: s("<cmp_unit.1@partnerflow.example>"),
                status: "5.7.1".into(),
                diagnostic: s(
                    "smtp; 550-5.7.1 The user or domain that you are sending to (or from) \
                     has a policy that prohibits the mail that you sent."
                ),
            }]
        );
    }

    #[test]
    fn field_names_and_action_are_case_insensitive() {
        let mut raw = report(
            &[
                "REPORTING-MTA: dns; mx.partnerflow.example",
                "",
                "final-RECIPIENT: RFC822; Upper@Kunde.Example",
                "ACTION: FAILED",
                "status: 4.2.2",
                "DIAGNOSTIC-code: smtp; 452 4.2.2 over quota",
            ],
            HEADERS_PART,
        );
        // Content-Type names and values are case-insensitive too.
        let text = String::from_utf8(raw).unwrap().replace(
            "Content-Type: message/delivery-status",
            "content-type: Message/Delivery-Status",
        );
        raw = text.into_bytes();
        assert_eq!(
            parse(&raw).unwrap(),
            vec![Bounce {
                kind: BounceKind::Soft,
                recipient: s("Upper@Kunde.Example"),
                message_id: s("<cmp_unit.1@partnerflow.example>"),
                status: "4.2.2".into(),
                diagnostic: s("smtp; 452 4.2.2 over quota"),
            }]
        );
    }

    #[test]
    fn missing_status_is_malformed() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; nostatus@kunde.example",
                "Action: failed",
            ],
            HEADERS_PART,
        );
        match parse(&raw) {
            Err(BounceError::Malformed(why)) => {
                assert!(why.contains("Status"), "{why}");
                assert!(why.contains("nostatus@kunde.example"), "{why}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn status_must_look_like_d_d_d() {
        for bad in [
            "5.1", "5.1.1.1", "x.1.1", "5.1.", "5..1", "3.1.1", "5.1.1234", "", "failed",
        ] {
            let status = format!("Status: {bad}");
            let raw = report(
                &[
                    "Reporting-MTA: dns; mx.partnerflow.example",
                    "",
                    "Final-Recipient: rfc822; bad@kunde.example",
                    "Action: failed",
                    &status,
                ],
                &[],
            );
            match parse(&raw) {
                Err(BounceError::Malformed(why)) => assert!(why.contains("Status"), "{bad}: {why}"),
                other => panic!("{bad}: expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn status_comment_is_dropped() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; c@kunde.example",
                "Action: failed (no such user)",
                "Status: 5.0.0 (permanent failure)",
            ],
            &[],
        );
        let bounces = parse(&raw).unwrap();
        assert_eq!(bounces[0].kind, BounceKind::Hard);
        assert_eq!(bounces[0].status, "5.0.0");
    }

    #[test]
    fn delivered_only_is_nothing_failed() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; ok@kunde.example",
                "Action: delivered",
                "Status: 2.0.0",
                "",
                "Final-Recipient: rfc822; list@kunde.example",
                "Action: expanded",
                "Status: 2.0.0",
                "",
                "Final-Recipient: rfc822; legacy@kunde.example",
                "Action: relayed",
            ],
            HEADERS_PART,
        );
        assert_eq!(parse(&raw), Err(BounceError::NothingFailed));
    }

    #[test]
    fn without_action_the_status_class_decides() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; five@kunde.example",
                "Status: 5.1.1",
                "",
                "Final-Recipient: rfc822; four@kunde.example",
                "Status: 4.2.2",
                "",
                "Final-Recipient: rfc822; two@kunde.example",
                "Status: 2.0.0",
            ],
            &[],
        );
        let got: Vec<_> = parse(&raw)
            .unwrap()
            .into_iter()
            .map(|b| (b.kind, b.recipient.unwrap(), b.status, b.message_id))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    BounceKind::Hard,
                    "five@kunde.example".into(),
                    "5.1.1".into(),
                    None
                ),
                (
                    BounceKind::Soft,
                    "four@kunde.example".into(),
                    "4.2.2".into(),
                    None
                ),
            ]
        );
    }

    #[test]
    fn failed_with_class_4_is_soft() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; expired@kunde.example",
                "Action: failed",
                "Status: 4.4.7",
                "Diagnostic-Code: X-Postfix; delivery temporarily suspended",
            ],
            &[],
        );
        let bounces = parse(&raw).unwrap();
        assert_eq!(bounces.len(), 1);
        assert_eq!(bounces[0].kind, BounceKind::Soft);
        assert_eq!(bounces[0].status, "4.4.7");
    }

    #[test]
    fn original_recipient_when_final_is_missing() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Original-Recipient: rfc822;<orig@kunde.example>",
                "Action: failed",
                "Status: 5.1.1",
                "",
                "Action: failed",
                "Status: 5.1.2",
            ],
            &[],
        );
        let bounces = parse(&raw).unwrap();
        assert_eq!(bounces.len(), 2);
        assert_eq!(bounces[0].recipient, s("orig@kunde.example"));
        assert_eq!(bounces[1].recipient, None);
        assert_eq!(bounces[1].status, "5.1.2");
    }

    #[test]
    fn diagnostic_is_capped_at_500_chars() {
        let long = format!("Diagnostic-Code: smtp; 550 {}", "ä".repeat(600));
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; long@kunde.example",
                "Action: failed",
                "Status: 5.0.0",
                &long,
            ],
            &[],
        );
        let diagnostic = parse(&raw).unwrap().remove(0).diagnostic.unwrap();
        assert_eq!(diagnostic.chars().count(), 500);
        assert!(diagnostic.starts_with("smtp; 550 ää"));
    }

    #[test]
    fn empty_diagnostic_is_none() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; d@kunde.example",
                "Action: failed",
                "Status: 5.0.0",
                "Diagnostic-Code:   ",
            ],
            &[],
        );
        assert_eq!(parse(&raw).unwrap()[0].diagnostic, None);
    }

    #[test]
    fn message_id_from_full_returned_message() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; x@kunde.example",
                "Action: failed",
                "Status: 5.1.1",
            ],
            &[
                "Content-Type: message/rfc822",
                "",
                "From: einladung@partnerflow.example",
                "To: x@kunde.example",
                "Subject: Einladung",
                "Message-ID:",
                " <cmp_x.12@partnerflow.example>",
                "Content-Type: text/plain",
                "",
                "Hallo",
            ],
        );
        assert_eq!(
            parse(&raw).unwrap()[0].message_id,
            s("<cmp_x.12@partnerflow.example>")
        );
    }

    #[test]
    fn returned_part_without_message_id() {
        let raw = report(
            &[
                "Reporting-MTA: dns; mx.partnerflow.example",
                "",
                "Final-Recipient: rfc822; x@kunde.example",
                "Action: failed",
                "Status: 5.1.1",
            ],
            &[
                "Content-Type: text/rfc822-headers",
                "",
                "From: einladung@partnerflow.example",
                "Subject: Einladung",
            ],
        );
        assert_eq!(parse(&raw).unwrap()[0].message_id, None);
    }

    #[test]
    fn base64_delivery_status_is_decoded() {
        // "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; b64@kunde.example\r\n
        //  Action: failed\r\nStatus: 5.1.1\r\n"
        let raw = String::from_utf8(report(
            &[
                "UmVwb3J0aW5nLU1UQTogZG5zOyBteA0KDQpGaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjsgYjY0QGt1bmRl",
                "LmV4YW1wbGUNCkFjdGlvbjogZmFpbGVkDQpTdGF0dXM6IDUuMS4xDQo=",
            ],
            &[],
        ))
        .unwrap()
        .replace(
            "Content-Type: message/delivery-status\r\n",
            "Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n",
        );
        let bounces = parse(raw.as_bytes()).unwrap();
        assert_eq!(bounces[0].recipient, s("b64@kunde.example"));
        assert_eq!(bounces[0].status, "5.1.1");
    }

    #[test]
    fn no_recipient_block_is_malformed() {
        let raw = report(&["Reporting-MTA: dns; mx.partnerflow.example"], &[]);
        assert!(matches!(parse(&raw), Err(BounceError::Malformed(_))));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(parse(b""), Err(BounceError::Unparsable));
        assert_eq!(parse(b"   \r\n\r\n"), Err(BounceError::Unparsable));
        assert_eq!(parse(b"hello"), Err(BounceError::Unparsable));
        assert_eq!(
            parse(b"\x00\xff\xfe not mail at all \x01\x02"),
            Err(BounceError::Unparsable)
        );
        assert_eq!(
            parse(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Err(BounceError::Unparsable)
        );
        let noise: Vec<u8> = (0u32..4096)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(parse(&noise), Err(BounceError::Unparsable));
    }

    #[test]
    fn too_many_recipients_are_refused_whole() {
        let blocks: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("Final-Recipient: rfc822; r{i}@evil.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"))
            .collect();
        let mut lines = vec!["Reporting-MTA: dns; mx.evil.example", ""];
        lines.extend(blocks.iter().map(String::as_str));
        let raw = report(&lines, HEADERS_PART);
        assert_eq!(
            parse(&raw),
            Err(BounceError::TooManyRecipients(MAX_RECIPIENTS + 1))
        );
        // At the cap, every block is read.
        let raw = report(&lines[..lines.len() - 1], HEADERS_PART);
        assert_eq!(parse(&raw).unwrap().len(), MAX_RECIPIENTS);
    }

    #[test]
    fn headers_only_mail_is_not_a_dsn() {
        assert_eq!(parse(b"Subject: hi\r\n"), Err(BounceError::NotDsn));
    }

    #[test]
    fn serializes_kind_in_lowercase() {
        let bounce = parse(HARD_POSTFIX).unwrap().remove(0);
        let json = serde_json::to_value(&bounce).unwrap();
        assert_eq!(json["kind"], "hard");
        assert_eq!(json["status"], "5.1.1");
        assert_eq!(
            serde_json::to_value(BounceKind::Soft).unwrap(),
            serde_json::json!("soft")
        );
    }
}
