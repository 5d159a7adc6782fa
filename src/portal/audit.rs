//! The audit log: every write made through the portal (and `partnerflow users`), with who,
//! what, when and from where; read newest first, filtered, a page at a time.

use crate::app::AppState;
use crate::core::domain::Timestamp;
use crate::core::portal::{AuditFilter, AuditRow};
use crate::store::NewAudit;

use super::*;

/// An audit entry for `what` done now by `by` (written by the caller's store call, in the
/// transaction of the write it records).
pub fn entry(rt: &AppState, by: &Actor, action: &str, target: &str, detail: &str) -> NewAudit {
    NewAudit {
        at: rt.clock.now(),
        user_id: by.user_id.clone(),
        actor: by.label.clone(),
        action: action.into(),
        target: target.into(),
        client: by.client.clone(),
        detail: detail.into(),
    }
}

/// Records one entry on its own (for writes that have no other row).
pub async fn record(
    rt: &AppState,
    by: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    rt.store
        .insert_audit(&entry(rt, by, action, target, detail))
        .await?;
    Ok(())
}

/// Which entries to show (all optional; `cursor` is the `next` of the previous page).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub cursor: Option<String>,
}

/// One page of entries, newest first, and the cursor of the next page (None: the last).
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub next: Option<String>,
}

/// Parses a page cursor: `<at ms>.<id>`.
pub fn parse_cursor(s: &str) -> Result<(Timestamp, i64)> {
    let bad = || invalid("cursor", "is not a page cursor of this list");
    let (at, id) = s.split_once('.').ok_or_else(bad)?;
    Ok((
        Timestamp(at.parse().map_err(|_| bad())?),
        id.parse().map_err(|_| bad())?,
    ))
}

/// A page of at most `limit` entries matching `q`, newest first.
pub async fn list(rt: &AppState, q: &AuditQuery, limit: i64) -> Result<AuditPage> {
    let before = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let limit = limit.clamp(1, 500);
    let mut rows = rt
        .store
        .audit(&AuditFilter {
            actor: q.actor.clone().filter(|s| !s.is_empty()),
            action: q.action.clone().filter(|s| !s.is_empty()),
            from: q.from,
            to: q.to,
            before,
            limit: limit + 1,
        })
        .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| format!("{}.{}", r.at.0, r.id))
    } else {
        None
    };
    Ok(AuditPage { rows, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(parse_cursor("1700.42").unwrap(), (Timestamp(1700), 42));
        for bad in ["", "1700", "x.1", "1.x", "1.2.3"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
