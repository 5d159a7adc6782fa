//! The schedules page's view (administrators): each schedule's cron, catch-up policy, last and
//! next ticks, whether it is paused (by whom, since when), its latest runs, and the pause,
//! resume and run-now forms. Its own texts ([`ST`], German and English).

use askama::Template;
use askama::filters::Safe;

use crate::core::config::CatchUp;
use crate::core::domain::{Locale, Timestamp};
use crate::jobs::inspect::ScheduleStatus;
use crate::store::ScheduleRun;

use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

pub(crate) struct ST {
    title: Text,
    intro: Text,
    cron: Text,
    catch_up: Text,
    last: Text,
    next: Text,
    never: Text,
    state: Text,
    active: Text,
    paused: Text,
    pause: Text,
    resume: Text,
    run_now: Text,
    runs: Text,
    tick: Text,
    after: Text,
    node: Text,
    started: Text,
    took: Text,
    outcome: Text,
    no_runs: Text,
    once: Text,
    skip: Text,
    none: Text,
    done_paused: Text,
    done_resumed: Text,
    done_run: Text,
    busy: Text,
}

const DE: ST = ST {
    title: Safe("Zeitpläne"),
    intro: Safe(
        "Geplante Aufgaben. Ein angehaltener Zeitplan läuft auf keinem Server, bis er fortgesetzt wird; verpasste Termine behandelt dann seine Nachholregel.",
    ),
    cron: Safe("Cron"),
    catch_up: Safe("Nachholen"),
    last: Safe("Letzter Termin"),
    next: Safe("Nächste Termine"),
    never: Safe("noch nie"),
    state: Safe("Zustand"),
    active: Safe("aktiv"),
    paused: Safe("angehalten"),
    pause: Safe("Anhalten"),
    resume: Safe("Fortsetzen"),
    run_now: Safe("Jetzt ausführen"),
    runs: Safe("Letzte Läufe"),
    tick: Safe("Termin"),
    after: Safe("steht für Termine nach"),
    node: Safe("Server"),
    started: Safe("Begonnen"),
    took: Safe("Dauer"),
    outcome: Safe("Ergebnis"),
    no_runs: Safe("Noch keine Läufe."),
    once: Safe("einmal für alle verpassten"),
    skip: Safe("verpasste auslassen"),
    none: Safe("Keine Zeitpläne aktiviert."),
    done_paused: Safe("Angehalten."),
    done_resumed: Safe("Fortgesetzt."),
    done_run: Safe("Lauf eingeplant: ein Worker führt ihn gleich aus."),
    busy: Safe("Nicht möglich: der vorige Lauf ist noch nicht fertig."),
};

const EN: ST = ST {
    title: Safe("Schedules"),
    intro: Safe(
        "Scheduled tasks. A paused schedule runs on no server until it is resumed; the ticks it missed then follow its catch-up policy.",
    ),
    cron: Safe("Cron"),
    catch_up: Safe("Catch-up"),
    last: Safe("Last tick"),
    next: Safe("Next ticks"),
    never: Safe("never"),
    state: Safe("State"),
    active: Safe("active"),
    paused: Safe("paused"),
    pause: Safe("Pause"),
    resume: Safe("Resume"),
    run_now: Safe("Run now"),
    runs: Safe("Latest runs"),
    tick: Safe("Tick"),
    after: Safe("stands for ticks after"),
    node: Safe("Node"),
    started: Safe("Started"),
    took: Safe("Took"),
    outcome: Safe("Outcome"),
    no_runs: Safe("No runs yet."),
    once: Safe("once for all missed"),
    skip: Safe("skip missed"),
    none: Safe("No schedule is enabled."),
    done_paused: Safe("Paused."),
    done_resumed: Safe("Resumed."),
    done_run: Safe("Run queued: a worker takes it up at once."),
    busy: Safe("Not possible: the previous run has not finished."),
};

fn st(l: Locale) -> &'static ST {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// What the page says after an action (`?done=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    Paused,
    Resumed,
    Run,
    Busy,
}

fn at(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

struct RunLine {
    tick: String,
    after: String,
    node: String,
    started: String,
    took: String,
    outcome: String,
}

struct Line {
    name: &'static str,
    cron: String,
    catch_up: Text,
    last: String,
    next: Vec<String>,
    paused: Option<(String, String)>,
    runs: Vec<RunLine>,
}

#[derive(Template)]
#[template(path = "portal/schedules/schedules.html")]
struct SchedulesPage<'a> {
    t: &'static PT,
    x: &'static ST,
    title: &'static str,
    nav: &'a Nav,
    lines: Vec<Line>,
    message: Option<(bool, Text)>,
    csrf: &'a [String; 3],
}

/// The page: each schedule with its latest runs; `csrf`: pause, resume, run.
pub(crate) fn schedules_page(
    l: Locale,
    nav: &Nav,
    schedules: &[(ScheduleStatus, Vec<ScheduleRun>)],
    done: Option<Done>,
    csrf: &[String; 3],
) -> String {
    let x = st(l);
    let lines = schedules
        .iter()
        .map(|(s, runs)| Line {
            name: s.name,
            cron: s.cron.clone(),
            catch_up: match s.catch_up {
                CatchUp::Once => Safe(x.once.0),
                CatchUp::Skip => Safe(x.skip.0),
            },
            last: s.last_tick.map_or_else(|| x.never.0.to_string(), at),
            next: s.next.iter().map(|t| at(*t)).collect(),
            paused: s.paused.as_ref().map(|p| (p.by.clone(), at(p.since))),
            runs: runs
                .iter()
                .map(|r| RunLine {
                    tick: at(r.tick),
                    after: r.after.map(at).unwrap_or_default(),
                    node: r.node.clone(),
                    started: at(r.started),
                    took: format!("{} ms", (r.finished.0 - r.started.0).max(0)),
                    outcome: r.outcome.clone(),
                })
                .collect(),
        })
        .collect();
    let message = done.map(|d| match d {
        Done::Paused => (true, Safe(x.done_paused.0)),
        Done::Resumed => (true, Safe(x.done_resumed.0)),
        Done::Run => (true, Safe(x.done_run.0)),
        Done::Busy => (false, Safe(x.busy.0)),
    });
    render(&SchedulesPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        lines,
        message,
        csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::inspect::SchedulePause;

    #[test]
    fn the_page_escapes_shows_pauses_and_runs_and_speaks_the_language() {
        let evil = "\"><script>x</script>";
        let u = crate::web::pages::portal::view::test_admin();
        let status = |name: &'static str, paused: bool| ScheduleStatus {
            name,
            cron: evil.into(),
            catch_up: CatchUp::Once,
            paused: paused.then(|| SchedulePause {
                by: evil.into(),
                since: Timestamp(0),
            }),
            last_tick: Some(Timestamp(3_600_000)),
            next: vec![Timestamp(7_200_000)],
        };
        let run = ScheduleRun {
            name: "reconcile".into(),
            tick: Timestamp(3_600_000),
            after: Some(Timestamp(0)),
            node: evil.into(),
            started: Timestamp(3_600_000),
            finished: Timestamp(3_600_250),
            outcome: evil.into(),
        };
        for l in Locale::ALL {
            let nav = Nav::new(l, &u, "schedules", "t1".into(), "t2".into());
            let v = [
                (status("reconcile", true), vec![run.clone()]),
                (status("location_sync", false), vec![]),
            ];
            let csrf = ["p".to_string(), "r".to_string(), "n".to_string()];
            let html = schedules_page(l, &nav, &v, Some(Done::Busy), &csrf);
            crate::web::pages::portal::view::check_page(l, "schedules", &html);
            assert!(html.contains("id=\"schedule-reconcile\""));
            assert!(html.contains("id=\"resume-reconcile\""), "paused: resume");
            assert!(!html.contains("id=\"pause-reconcile\""));
            assert!(html.contains("id=\"pause-location_sync\""), "active: pause");
            assert!(html.contains("1970-01-01 01:00:00 UTC"));
            assert!(html.contains("250 ms"));
            assert!(html.contains("role=\"alert\""), "busy is an error");
            assert!(html.contains("aria-current=\"page\""));
            let word = if l == Locale::De {
                "Zeitpläne"
            } else {
                "Schedules"
            };
            assert!(html.contains(word), "{l}");
        }
    }
}
