//! What the portal's campaign pages show beyond `campaign status`: campaigns a page at a time
//! with their progress, the sending rate and the expected end of a running campaign, who
//! bounced and who unsubscribed, and the report as a file to send.

use std::io::{Seek, Write};

use crate::app::AppState;
use crate::store::{LedgerRow, UnsubscribedRow};

use super::*;

/// How far back the sending rate looks.
pub const RATE_WINDOW: Span = Span(5 * 60_000);

/// Whether `id` has the shape of a campaign id (`cmp_` and lower-case letters and digits):
/// anything else is not looked up.
pub fn is_campaign_id(id: &str) -> bool {
    id.strip_prefix("cmp_").is_some_and(|rest| {
        (1..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// A campaign of a list, with how far it got.
#[derive(Debug, Clone)]
pub struct CampaignLine {
    pub campaign: CampaignRow,
    pub total: i64,
    /// Recipients no longer to send (neither pending nor being sent).
    pub done: i64,
}

/// A page of campaigns, newest first; `next`: the cursor of the following page.
#[derive(Debug, Clone, Default)]
pub struct CampaignPage {
    pub rows: Vec<CampaignLine>,
    pub next: Option<String>,
}

fn parse_cursor(c: &str) -> Option<(Timestamp, String)> {
    let (at, id) = c.split_once('.')?;
    let at = at.parse::<i64>().ok()?;
    is_campaign_id(id).then(|| (Timestamp(at), id.to_string()))
}

/// Campaigns newest first, `limit` a page, after `cursor` (from a previous page's `next`).
pub async fn list_page(rt: &AppState, cursor: Option<&str>, limit: i64) -> Result<CampaignPage> {
    let before = match cursor {
        None => None,
        Some(c) => {
            Some(parse_cursor(c).ok_or_else(|| CampaignError::Invalid("cursor: not ours".into()))?)
        }
    };
    let mut rows = rt
        .store
        .campaigns_page(before.as_ref().map(|(t, id)| (*t, id.as_str())), limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next = more
        .then(|| rows.last().map(|c| format!("{}.{}", c.created_at.0, c.id)))
        .flatten();
    let ids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
    let progress = rt.store.campaigns_progress(&ids).await?;
    let rows = rows
        .into_iter()
        .map(|c| {
            let (total, left) = progress
                .iter()
                .find(|(id, _, _)| *id == c.id)
                .map(|(_, t, l)| (*t, *l))
                .unwrap_or((0, 0));
            CampaignLine {
                campaign: c,
                total,
                done: total - left,
            }
        })
        .collect();
    Ok(CampaignPage { rows, next })
}

/// How far a campaign got and, while it runs, how fast and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Recipients no longer to send (neither pending nor being sent).
    pub done: i64,
    pub total: i64,
    /// Whole percent of `done` in `total`.
    pub percent: i64,
    /// Messages handed to the server per minute over the last [`RATE_WINDOW`] (running
    /// campaigns only).
    pub per_minute: Option<f64>,
    /// When the last pending recipient is expected to be sent at that rate.
    pub eta: Option<Timestamp>,
    /// Running with nothing to send now: the last scheduled reminder's time.
    pub waiting_until: Option<Timestamp>,
}

/// A campaign's progress: its counts, and while it runs the rate of the last minutes and the
/// time the pending recipients are expected to be sent by.
pub async fn progress(rt: &AppState, c: &CampaignRow, n: &RecipientCounts) -> Result<Progress> {
    let left = (n.pending + n.sending).max(0);
    let done = (n.total - left).max(0);
    let percent = if n.total > 0 { done * 100 / n.total } else { 0 };
    let waiting_until = waiting_for_reminders(c, n);
    let (mut per_minute, mut eta) = (None, None);
    if c.state == CampaignState::Running {
        let now = rt.clock.now();
        let recent = rt
            .store
            .deliveries_since(&c.id, Timestamp(now.0 - RATE_WINDOW.0))
            .await?;
        let rate = recent as f64 * 60_000.0 / RATE_WINDOW.0 as f64;
        per_minute = Some(rate);
        if left > 0 && rate > 0.0 {
            let ms = (left as f64 / rate * 60_000.0).ceil() as i64;
            eta = Some(now.plus(Span(ms)));
        }
    }
    Ok(Progress {
        done,
        total: n.total,
        percent,
        per_minute,
        eta,
        waiting_until,
    })
}

/// Who of a campaign's recipients dropped out: the hard bounces and the unsubscribes, counted,
/// with the first few of each.
#[derive(Debug, Clone, Default)]
pub struct Dropouts {
    pub bounced: Vec<LedgerRow>,
    pub unsubscribed: i64,
    pub unsubscribed_rows: Vec<UnsubscribedRow>,
}

pub async fn dropouts(rt: &AppState, id: &str, limit: i64) -> Result<Dropouts> {
    let bounced = rt.store.bounced_recipients(id, limit).await?;
    let (unsubscribed, unsubscribed_rows) = rt.store.unsubscribed_recipients(id, limit).await?;
    Ok(Dropouts {
        bounced,
        unsubscribed,
        unsubscribed_rows,
    })
}

/// The report ([`report_csv`]) written to an unnamed temporary file in the data directory
/// (gone when closed), rewound: a long ledger is sent from disk, not held in memory.
pub async fn report_file(rt: &AppState, id: &str) -> Result<std::fs::File> {
    let io = |e: std::io::Error| CampaignError::Invalid(format!("writing the report: {e}"));
    let f = tempfile::tempfile_in(&rt.settings.app.data_dir)
        .or_else(|_| tempfile::tempfile())
        .map_err(io)?;
    let mut w = std::io::BufWriter::new(f);
    report_csv(rt, id, &mut w).await?;
    w.flush().map_err(io)?;
    let mut f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.rewind().map_err(io)?;
    Ok(f)
}

#[cfg(test)]
mod portal_tests {
    use super::*;

    #[test]
    fn campaign_ids_have_one_shape() {
        for ok in ["cmp_abc234", "cmp_0"] {
            assert!(is_campaign_id(ok), "{ok}");
        }
        for bad in [
            "",
            "cmp_",
            "CMP_abc",
            "cmp_ABC",
            "cmp_a-b",
            "cmp_a/b",
            "off_abc",
            "cmp_<x>",
            &format!("cmp_{}", "a".repeat(33)),
        ] {
            assert!(!is_campaign_id(bad), "{bad}");
        }
        assert_eq!(
            parse_cursor("12.cmp_ab"),
            Some((Timestamp(12), "cmp_ab".into()))
        );
        assert_eq!(parse_cursor("x.cmp_ab"), None);
        assert_eq!(parse_cursor("12.x"), None);
    }
}
