//! What the partner portal's offer pages need beyond the API's services (which they use as
//! they are: `create`, `list`, `tracking`, `invite`, `withdraw`, `locations`): the catalog a
//! form may offer for a kind and a usage country, recipients typed one per line, an offer's
//! tracking with the campaigns that carried it and its emails' bounces, and each invitation
//! email's delivery state.

use std::collections::BTreeSet;

use super::*;
use crate::core::campaign::CampaignRow;
use crate::core::catalog::Product;
use crate::core::instance::EmailRow;

/// At most this many recipients in one form (more: a campaign).
pub const MAX_RECIPIENTS: usize = 100;

/// The usage countries where the catalog has something to offer for `kind` (every country
/// of the catalog for delegated administration, which offers no product), sorted.
pub fn countries(rt: &AppState, kind: OfferKind) -> Vec<Country> {
    let set: BTreeSet<Country> = rt
        .catalog
        .all()
        .filter(|p| kind == OfferKind::DelegatedAdmin || fits(kind, p))
        .flat_map(|p| p.countries.iter().copied())
        .collect();
    set.into_iter().collect()
}

fn fits(kind: OfferKind, p: &Product) -> bool {
    match kind {
        OfferKind::Trial => p.kind == ProductKind::Trial,
        OfferKind::Purchase => p.kind == ProductKind::Paid,
        OfferKind::DelegatedAdmin => false,
    }
}

/// The catalog's products an offer of `kind` may hold in `country` (what `check_lines`
/// accepts), in catalog order.
pub fn products_for(rt: &AppState, kind: OfferKind, country: Country) -> Vec<&Product> {
    rt.catalog
        .in_country(country)
        .into_iter()
        .filter(|p| fits(kind, p))
        .collect()
}

/// Recipients typed one per line (commas and semicolons separate too; blank lines are
/// skipped; the same address twice counts once). The error names the first bad line.
pub fn parse_recipients(text: &str) -> Result<Vec<EmailAddress>, String> {
    let mut out: Vec<EmailAddress> = Vec::new();
    for (i, line) in text.split(['\n', ',', ';']).enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let e = EmailAddress::parse(t).map_err(|m| format!("{} ({}): {m}", i + 1, t))?;
        if !out
            .iter()
            .any(|o| o.as_str().eq_ignore_ascii_case(e.as_str()))
        {
            out.push(e);
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(format!(
                "more than {MAX_RECIPIENTS} recipients (use a campaign)"
            ));
        }
    }
    Ok(out)
}

/// Sends the offer's link to each recipient (`invite`, one after the other); stops at the
/// first refusal, returning what was sent before it with the error.
pub async fn invite_all(
    rt: &AppState,
    id: &OfferId,
    recipients: &[EmailAddress],
    locale: Option<Locale>,
    actor: &str,
) -> (Vec<InvitationSent>, Option<OfferError>) {
    let mut sent = Vec::with_capacity(recipients.len());
    for r in recipients {
        match invite(rt, id, r.clone(), None, locale, actor).await {
            Ok(s) => sent.push(s),
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}

/// A bounce matched to one of the offer's emails.
#[derive(Debug, Clone)]
pub struct EmailBounce {
    pub message_id: String,
    /// `hard` or `soft`.
    pub kind: String,
    pub status: String,
    pub diagnostic: Option<String>,
    pub received_at: Timestamp,
}

/// An offer's tracking view (`tracking`), the campaigns that carried it, and the bounces
/// matched to its invitations' emails.
#[derive(Debug, Clone)]
pub struct OfferDetail {
    pub tracking: OfferTracking,
    pub campaigns: Vec<CampaignRow>,
    pub bounces: Vec<EmailBounce>,
}

pub async fn detail(rt: &AppState, id: &OfferId) -> Result<OfferDetail> {
    let tracking = tracking(rt, id).await?;
    let campaigns = rt.store.campaigns_of_offer(id).await?;
    let mut bounces = Vec::new();
    for inv in &tracking.invitations {
        for e in &inv.emails {
            for b in rt.store.bounces_of_message(&e.message_id).await? {
                bounces.push(EmailBounce {
                    message_id: e.message_id.clone(),
                    kind: b.kind,
                    status: b.status,
                    diagnostic: b.diagnostic,
                    received_at: b.received_at,
                });
            }
        }
    }
    Ok(OfferDetail {
        tracking,
        campaigns,
        bounces,
    })
}

/// Where an email is: waiting to be sent (perhaps after a failed try), accepted by the mail
/// server, bounced back afterwards, or given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Queued {
        last_error: Option<String>,
    },
    Sent {
        at: Option<Timestamp>,
        reply: Option<String>,
    },
    Bounced {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

/// An email's delivery state; a hard bounce after sending wins over `sent` (a soft one
/// only when nothing else came back).
pub fn delivery(e: &EmailRow, bounces: &[EmailBounce]) -> Delivery {
    let mine: Vec<&EmailBounce> = bounces
        .iter()
        .filter(|b| b.message_id == e.message_id)
        .collect();
    let hard = mine.iter().find(|b| b.kind == "hard");
    if let Some(b) = hard.or(mine.last()) {
        let reason = match &b.diagnostic {
            Some(d) => format!("{} {}: {d}", b.kind, b.status),
            None => format!("{} {}", b.kind, b.status),
        };
        return Delivery::Bounced { reason };
    }
    match e.state.as_str() {
        "sent" => Delivery::Sent {
            at: e.sent_at,
            reply: e.reply.clone(),
        },
        "failed" => Delivery::Failed {
            reason: e.last_error.clone().unwrap_or_default(),
        },
        _ => Delivery::Queued {
            last_error: e.last_error.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_one_per_line_deduplicated_and_bounded() {
        let r =
            parse_recipients("a@b.example\n\n  C@d.example ; a@b.example,e@f.example\r\n").unwrap();
        let got: Vec<&str> = r.iter().map(EmailAddress::as_str).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            parse_recipients("a@b.example\nnope")
                .unwrap_err()
                .starts_with("2 (nope)")
        );
        let many: String = (0..=MAX_RECIPIENTS)
            .map(|i| format!("u{i}@x.example\n"))
            .collect();
        assert!(parse_recipients(&many).is_err());
        assert!(parse_recipients("").unwrap().is_empty());
    }

    fn email(state: &str) -> EmailRow {
        EmailRow {
            message_id: "<m1@x>".into(),
            template: "t".into(),
            locale: "en".into(),
            role: "customer".into(),
            recipient: "a@b.example".into(),
            state: state.into(),
            attempts: 1,
            last_error: Some("550 no such user".into()),
            reply: None,
            created_at: Timestamp(0),
            sent_at: None,
        }
    }

    #[test]
    fn delivery_states() {
        assert!(matches!(
            delivery(&email("sent"), &[]),
            Delivery::Sent { .. }
        ));
        assert_eq!(
            delivery(&email("failed"), &[]),
            Delivery::Failed {
                reason: "550 no such user".into()
            }
        );
        assert!(matches!(
            delivery(&email("queued"), &[]),
            Delivery::Queued { .. }
        ));
        let b = EmailBounce {
            message_id: "<m1@x>".into(),
            kind: "hard".into(),
            status: "5.1.1".into(),
            diagnostic: Some("unknown".into()),
            received_at: Timestamp(1),
        };
        assert_eq!(
            delivery(&email("sent"), &[b]),
            Delivery::Bounced {
                reason: "hard 5.1.1: unknown".into()
            }
        );
    }
}
