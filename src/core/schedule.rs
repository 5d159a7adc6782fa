//! Cron schedules. The tick arithmetic here is pure; the store makes each tick fire once
//! across processes (a compare-and-set on the schedule's last tick, in the same transaction
//! as the run's job).

use chrono::{DateTime, Utc};

use crate::core::config::{CatchUp, Settings, parse_cron};
use crate::core::domain::{Span, Timestamp};

#[derive(Debug, Clone)]
pub struct ScheduleDef {
    pub name: &'static str,
    pub cron: cron::Schedule,
    pub expr: String,
    pub catch_up: CatchUp,
}

/// What to do about a schedule now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing due; the next tick is at this time.
    Wait(Timestamp),
    /// Never ticked: record this tick as the baseline, fire nothing.
    Baseline(Timestamp),
    /// Advance to `tick`; fire a run if `fire`. `missed` ticks were passed over.
    Advance {
        tick: Timestamp,
        fire: bool,
        missed: u64,
    },
}

/// Ticks older than this when first seen count as missed (the process was down).
pub fn grace(cron: &cron::Schedule, at: Timestamp) -> Span {
    let mut it = cron.after(&at.to_datetime());
    let interval = match (it.next(), it.next()) {
        (Some(a), Some(b)) => (b - a).num_milliseconds(),
        _ => 60_000,
    };
    Span((interval / 2).clamp(500, 5_000))
}

pub fn plan(def: &ScheduleDef, last: Option<Timestamp>, now: Timestamp) -> Plan {
    let now_dt: DateTime<Utc> = now.to_datetime();
    let Some(last) = last else {
        // The latest tick at or before now; or now itself if there is none.
        let end = now.plus(Span(1)).to_datetime();
        return match def.cron.after(&end).next_back() {
            Some(t) if t <= now_dt => Plan::Baseline(Timestamp::from_datetime(t)),
            _ => Plan::Baseline(now),
        };
    };
    let mut latest = None;
    let mut count: u64 = 0;
    for t in def.cron.after(&last.to_datetime()) {
        if t > now_dt {
            if latest.is_none() {
                return Plan::Wait(Timestamp::from_datetime(t));
            }
            break;
        }
        latest = Some(t);
        count += 1;
        if count > 1_000_000 {
            break;
        }
    }
    let Some(latest) = latest.map(Timestamp::from_datetime) else {
        return Plan::Wait(Timestamp(i64::MAX));
    };
    let on_time = now.0 - latest.0 <= grace(&def.cron, latest).0;
    match def.catch_up {
        // One run stands for every missed tick.
        CatchUp::Once => Plan::Advance {
            tick: latest,
            fire: true,
            missed: count - 1,
        },
        CatchUp::Skip => Plan::Advance {
            tick: latest,
            fire: on_time,
            missed: if on_time { count - 1 } else { count },
        },
    }
}

/// The schedules configured and enabled.
pub fn from_settings(s: &Settings) -> Result<Vec<ScheduleDef>, String> {
    let mut out = Vec::new();
    let ls = &s.schedules.location_sync;
    if ls.enabled {
        out.push(ScheduleDef {
            name: "location_sync",
            cron: parse_cron(&ls.cron)?,
            expr: ls.cron.clone(),
            catch_up: ls.catch_up,
        });
    }
    let rc = &s.schedules.reconcile;
    if rc.enabled {
        out.push(ScheduleDef {
            name: "reconcile",
            cron: parse_cron(&rc.cron)?,
            expr: rc.cron.clone(),
            catch_up: rc.catch_up,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(expr: &str, catch_up: CatchUp) -> ScheduleDef {
        ScheduleDef {
            name: "t",
            cron: parse_cron(expr).unwrap(),
            expr: expr.into(),
            catch_up,
        }
    }
    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn first_sight_is_a_baseline() {
        let d = def("0 0 * * * *", CatchUp::Once);
        assert_eq!(
            plan(&d, None, ts("2026-11-22T10:30:00Z")),
            Plan::Baseline(ts("2026-11-22T10:00:00Z"))
        );
    }

    #[test]
    fn waits_for_next_tick() {
        let d = def("0 0 * * * *", CatchUp::Once);
        assert_eq!(
            plan(
                &d,
                Some(ts("2026-11-22T10:00:00Z")),
                ts("2026-11-22T10:30:00Z")
            ),
            Plan::Wait(ts("2026-11-22T11:00:00Z"))
        );
    }

    #[test]
    fn due_tick_fires() {
        let d = def("0 0 * * * *", CatchUp::Skip);
        assert_eq!(
            plan(
                &d,
                Some(ts("2026-11-22T10:00:00Z")),
                ts("2026-11-22T11:00:01Z")
            ),
            Plan::Advance {
                tick: ts("2026-11-22T11:00:00Z"),
                fire: true,
                missed: 0
            }
        );
    }

    #[test]
    fn missed_ticks_follow_policy() {
        let last = Some(ts("2026-11-22T10:00:00Z"));
        let now = ts("2026-11-22T13:20:00Z");
        assert_eq!(
            plan(&def("0 0 * * * *", CatchUp::Once), last, now),
            Plan::Advance {
                tick: ts("2026-11-22T13:00:00Z"),
                fire: true,
                missed: 2
            }
        );
        assert_eq!(
            plan(&def("0 0 * * * *", CatchUp::Skip), last, now),
            Plan::Advance {
                tick: ts("2026-11-22T13:00:00Z"),
                fire: false,
                missed: 3
            }
        );
    }

    #[test]
    fn five_field_cron_accepted() {
        let d = def("*/5 * * * *", CatchUp::Once);
        assert_eq!(
            plan(
                &d,
                Some(ts("2026-11-22T10:00:00Z")),
                ts("2026-11-22T10:01:00Z")
            ),
            Plan::Wait(ts("2026-11-22T10:05:00Z"))
        );
    }
}
