//! Invitation campaigns: one offer sent to many recipients, each with a ledger row whose
//! Message-ID is fixed when it is written. Recipients files are streamed (bad rows reported by
//! line and skipped). The sender claims recipients in leased batches, renders and hands them to
//! the transport with at most `campaigns.in_flight` in flight, and commits outcomes in batches;
//! a recipient's permit is released only after its outcome committed, so after a crash at most
//! `in_flight` recipients can be sent twice, and none marked `sent` is sent again.

use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::core::campaign::{CampaignAction, CampaignState};
use crate::core::campaign::{CampaignRow, RecipientCounts};
use crate::core::domain::{Locale, OfferId, OfferKind, Span, Timestamp, parse_name, random_base32};
use crate::offers::OfferError;
use crate::store::{ClaimedRecipient, StoreError};

mod bounces;
mod import;
mod portal;
mod sender;
mod unsubscribe;
pub use bounces::*;
pub use import::*;
pub use portal::*;
pub use sender::*;
pub use unsubscribe::*;

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign {0} not found")]
    NotFound(String),
    #[error("campaign {id} is {state}: {what} is not possible")]
    WrongState {
        id: String,
        state: CampaignState,
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
fn base_context(rt: &AppState, c: &CampaignRow, o: &crate::core::offer::OfferView) -> Value {
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
        "partner": *rt.company().partner,
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
        state: CampaignState::Draft,
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

/// Starts (or resumes) a campaign.
pub async fn start(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(rt, id, CampaignAction::Start, None).await?;
    tracing::info!(campaign = %c.id, name = %c.name, "campaign started");
    Ok(c)
}

/// Resumes a paused campaign (paused by the operator or automatically).
pub async fn resume(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(rt, id, CampaignAction::Resume, None).await?;
    tracing::info!(campaign = %c.id, "campaign resumed");
    Ok(c)
}

pub async fn pause(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(
        rt,
        id,
        CampaignAction::Pause,
        Some("paused by the operator"),
    )
    .await?;
    sender::count_pause("manual");
    tracing::info!(campaign = %id, "campaign paused by the operator");
    Ok(c)
}

pub async fn cancel(rt: &AppState, id: &str) -> Result<CampaignRow> {
    let c = transition(rt, id, CampaignAction::Cancel, None).await?;
    tracing::info!(campaign = %c.id, "campaign cancelled");
    Ok(c)
}

/// Takes `action` on a campaign (with `reason` as its pause reason): the lifecycle
/// ([`CampaignState::apply`]) decides from the state it is in, and the store moves it only
/// while it is still in that state. If another process changed it meanwhile, the lifecycle
/// decides again from the new state.
async fn transition(
    rt: &AppState,
    id: &str,
    action: CampaignAction,
    reason: Option<&str>,
) -> Result<CampaignRow> {
    // Each retry means someone else moved the campaign; a few are plenty.
    const TRIES: usize = 5;
    let mut c = get(rt, id).await?;
    for _ in 0..TRIES {
        let to = c
            .state
            .apply(action)
            .map_err(|e| CampaignError::WrongState {
                id: c.id.clone(),
                state: e.from,
                what: action.gerund().into(),
            })?;
        if rt
            .store
            .set_campaign_state(id, &[c.state], to, reason, rt.clock.now())
            .await?
        {
            rt.store.wake_handle().notify_waiters();
            return get(rt, id).await;
        }
        c = get(rt, id).await?;
    }
    Err(CampaignError::WrongState {
        id: c.id,
        state: c.state,
        what: action.gerund().into(),
    })
}

pub async fn status(rt: &AppState, id: &str) -> Result<(CampaignRow, RecipientCounts)> {
    let c = get(rt, id).await?;
    let n = rt.store.recipient_counts(id).await?;
    Ok((c, n))
}

/// A campaign's counts from its ledger itself (every recipient read), to check the tallies
/// that [`status`] reads.
pub async fn recount(rt: &AppState, id: &str) -> Result<RecipientCounts> {
    get(rt, id).await?;
    Ok(rt.store.recount_recipients(id).await?)
}

/// Every campaign, newest first.
pub async fn list(rt: &AppState) -> Result<Vec<CampaignRow>> {
    Ok(rt.store.campaigns().await?)
}

/// A campaign's ledger counts (by state and phase).
pub async fn counts(rt: &AppState, id: &str) -> Result<RecipientCounts> {
    Ok(rt.store.recipient_counts(id).await?)
}

/// When a running campaign has nothing to send now but reminders scheduled, it waits for
/// them: it stays `running` until the last one is sent (or its recipient accepts, unsubscribes
/// or bounces, or the offer expires), then completes. Returns when the last is due, or None
/// when the campaign is not waiting (it has something to send, or is not running).
/// Reminders that would fall due after the offer expires are never scheduled.
pub fn waiting_for_reminders(c: &CampaignRow, n: &RecipientCounts) -> Option<Timestamp> {
    if c.state == CampaignState::Running
        && n.pending == 0
        && n.sending == 0
        && n.reminders_scheduled > 0
    {
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
                r.state.as_str().to_string(),
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
