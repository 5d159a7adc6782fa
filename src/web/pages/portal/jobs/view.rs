//! The jobs pages' views (administrators): counts by state and kind, the filtered list a page
//! at a time, and a job's page (payload masked, attempts, last error, lease owner) with its
//! retry and run-now forms. Own texts ([`JT`], German and English).

use askama::Template;
use askama::filters::Safe;

use crate::core::domain::{Locale, Timestamp};
use crate::store::JobRow;

use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

pub(crate) struct JT {
    title: Text,
    intro: Text,
    counts: Text,
    state: Text,
    kind: Text,
    any: Text,
    filter: Text,
    id: Text,
    subject: Text,
    run_at: Text,
    attempts: Text,
    owner: Text,
    error: Text,
    updated: Text,
    older: Text,
    none: Text,
    job_title: Text,
    payload: Text,
    payload_hint: Text,
    retry: Text,
    run_now: Text,
    back: Text,
    done_retry: Text,
    done_run: Text,
    not_now: Text,
    retry_all: Text,
    confirm_title: Text,
    confirm_retry: Text,
    confirm: Text,
    retried: Text,
}

const DE: JT = JT {
    title: Safe("Aufträge"),
    intro: Safe(
        "Die Warteschlange: E-Mails, Fristen, Zeitpläne. Fehlgeschlagene Aufträge lassen sich erneut versuchen, wartende sofort ausführen; beides steht im Protokoll.",
    ),
    counts: Safe("Nach Zustand und Art"),
    state: Safe("Zustand"),
    kind: Safe("Art"),
    any: Safe("alle"),
    filter: Safe("Filtern"),
    id: Safe("Nr."),
    subject: Safe("Bezug"),
    run_at: Safe("Fällig"),
    attempts: Safe("Versuche"),
    owner: Safe("Bearbeitet von"),
    error: Safe("Letzter Fehler"),
    updated: Safe("Geändert"),
    older: Safe("Ältere"),
    none: Safe("Keine Aufträge."),
    job_title: Safe("Auftrag"),
    payload: Safe("Inhalt"),
    payload_hint: Safe("Adressen und Geheimnisse sind unkenntlich gemacht."),
    retry: Safe("Erneut versuchen"),
    run_now: Safe("Jetzt ausführen"),
    back: Safe("Zur Liste"),
    done_retry: Safe("Erneut eingeplant."),
    done_run: Safe("Jetzt fällig."),
    not_now: Safe("Nicht möglich: der Auftrag ist nicht (mehr) in diesem Zustand."),
    retry_all: Safe("Alle fehlgeschlagenen erneut versuchen …"),
    confirm_title: Safe("Bestätigen"),
    confirm_retry: Safe("Fehlgeschlagene Aufträge erneut versuchen:"),
    confirm: Safe("Ja, erneut versuchen"),
    retried: Safe("Erneut eingeplant:"),
};

const EN: JT = JT {
    title: Safe("Jobs"),
    intro: Safe(
        "The queue: emails, timers, schedules. A failed job can be retried, a waiting one run now; both are in the audit log.",
    ),
    counts: Safe("By state and kind"),
    state: Safe("State"),
    kind: Safe("Kind"),
    any: Safe("any"),
    filter: Safe("Filter"),
    id: Safe("No."),
    subject: Safe("Subject"),
    run_at: Safe("Due"),
    attempts: Safe("Attempts"),
    owner: Safe("Held by"),
    error: Safe("Last error"),
    updated: Safe("Changed"),
    older: Safe("Older"),
    none: Safe("No jobs."),
    job_title: Safe("Job"),
    payload: Safe("Payload"),
    payload_hint: Safe("Addresses and secrets are masked."),
    retry: Safe("Retry"),
    run_now: Safe("Run now"),
    back: Safe("Back to the list"),
    done_retry: Safe("Scheduled again."),
    done_run: Safe("Due now."),
    not_now: Safe("Not possible: the job is not (or no longer) in that state."),
    retry_all: Safe("Retry every failed job …"),
    confirm_title: Safe("Confirm"),
    confirm_retry: Safe("Failed jobs to retry:"),
    confirm: Safe("Yes, retry them"),
    retried: Safe("Scheduled again:"),
};

fn jt(l: Locale) -> &'static JT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

fn at(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The filter as given (shown again in the form).
#[derive(Default)]
pub(crate) struct JobsFilter {
    pub state: String,
    pub kind: String,
}

struct Line<'a> {
    j: &'a JobRow,
    run_at: String,
    updated: String,
    error: String,
}

fn line(j: &JobRow) -> Line<'_> {
    let error = j.last_error.as_deref().unwrap_or_default();
    let short: String = error.chars().take(120).collect();
    Line {
        j,
        run_at: at(j.run_at),
        updated: at(j.updated_at),
        error: if short.len() < error.len() {
            format!("{short}…")
        } else {
            short
        },
    }
}

#[derive(Template)]
#[template(path = "portal/jobs/jobs.html")]
struct JobsPage<'a> {
    t: &'static PT,
    x: &'static JT,
    title: &'static str,
    nav: &'a Nav,
    states: &'a [&'static str],
    kinds: Vec<&'a str>,
    counts: Vec<(&'a str, Vec<i64>, i64)>,
    filter: &'a JobsFilter,
    lines: Vec<Line<'a>>,
    older: Option<String>,
    bulk: &'a Bulk,
    /// Failed jobs of the filter's kind (any kind when none): what "retry all" retries.
    failed: i64,
}

/// The list page's bulk action: its form's token and, after one, how many it retried.
#[derive(Default)]
pub(crate) struct Bulk {
    pub csrf: String,
    pub retried: Option<u64>,
}

#[derive(Template)]
#[template(path = "portal/jobs/confirm.html")]
struct ConfirmPage<'a> {
    t: &'static PT,
    x: &'static JT,
    title: &'static str,
    nav: &'a Nav,
    kind: &'a str,
    n: i64,
    csrf: &'a str,
}

/// "Retry `n` failed jobs (of `kind`)?" with the form that does it.
pub(crate) fn confirm_page(l: Locale, nav: &Nav, kind: &str, n: i64, csrf: &str) -> String {
    let x = jt(l);
    render(&ConfirmPage {
        t: texts(l),
        x,
        title: x.confirm_title.0,
        nav,
        kind,
        n,
        csrf,
    })
}

/// The list page: counts (state × kind), the filter, one page of jobs; `older`: the query
/// string of the next page.
pub(crate) fn jobs_page(
    l: Locale,
    nav: &Nav,
    counts: &[(String, String, i64)],
    filter: &JobsFilter,
    jobs: &[JobRow],
    older: Option<String>,
    bulk: &Bulk,
) -> String {
    let x = jt(l);
    let states = &crate::jobs::inspect::JOB_STATES;
    let mut kinds: Vec<&str> = counts.iter().map(|(_, k, _)| k.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let table = kinds
        .iter()
        .map(|k| {
            let per: Vec<i64> = states
                .iter()
                .map(|s| {
                    counts
                        .iter()
                        .filter(|(cs, ck, _)| cs == s && ck == k)
                        .map(|c| c.2)
                        .sum()
                })
                .collect();
            let total = per.iter().sum();
            (*k, per, total)
        })
        .collect();
    render(&JobsPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        states,
        kinds,
        counts: table,
        filter,
        lines: jobs.iter().map(line).collect(),
        older,
        bulk,
        failed: counts
            .iter()
            .filter(|(st, k, _)| st == "failed" && (filter.kind.is_empty() || *k == filter.kind))
            .map(|c| c.2)
            .sum(),
    })
}

/// What the job page says after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    Retried,
    Run,
    NotNow,
}

#[derive(Template)]
#[template(path = "portal/jobs/job.html")]
struct JobPage<'a> {
    t: &'static PT,
    x: &'static JT,
    title: &'static str,
    nav: &'a Nav,
    l: Line<'a>,
    payload: &'a str,
    message: Option<(bool, Text)>,
    csrf: &'a [String; 2],
}

/// A job's page; `payload` already masked; `csrf`: retry, run now.
pub(crate) fn job_page(
    l: Locale,
    nav: &Nav,
    j: &JobRow,
    payload: &str,
    done: Option<Done>,
    csrf: &[String; 2],
) -> String {
    let x = jt(l);
    let mut ln = line(j);
    ln.error = j.last_error.clone().unwrap_or_default();
    render(&JobPage {
        t: texts(l),
        x,
        title: x.job_title.0,
        nav,
        l: ln,
        payload,
        message: done.map(|d| match d {
            Done::Retried => (true, Safe(x.done_retry.0)),
            Done::Run => (true, Safe(x.done_run.0)),
            Done::NotNow => (false, Safe(x.not_now.0)),
        }),
        csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::job::JobPayload;

    #[test]
    fn the_pages_escape_count_and_speak_the_language() {
        let evil = "\"><script>x</script>";
        let u = crate::web::pages::portal::view::test_admin();
        let job = JobRow {
            id: 7,
            key: evil.into(),
            kind: "email".into(),
            subject: evil.into(),
            payload: JobPayload::from_row("email", "{}"),
            state: "failed".into(),
            run_at: Timestamp(0),
            attempts: 5,
            max_attempts: 5,
            lease_owner: Some(evil.into()),
            last_error: Some(evil.repeat(20)),
            updated_at: Timestamp(0),
        };
        let counts = vec![
            ("failed".to_string(), "email".to_string(), 2),
            ("done".to_string(), "email".to_string(), 40),
            ("scheduled".to_string(), "timer".to_string(), 3),
            ("failed".to_string(), evil.to_string(), 1),
        ];
        for l in Locale::ALL {
            let nav = Nav::new(l, &u, "jobs", "t1".into(), "t2".into());
            let f = JobsFilter {
                state: evil.into(),
                kind: evil.into(),
            };
            let bulk = Bulk {
                csrf: "b".into(),
                retried: Some(3),
            };
            let html = jobs_page(
                l,
                &nav,
                &counts,
                &f,
                std::slice::from_ref(&job),
                Some("state=failed&before=7".into()),
                &bulk,
            );
            crate::web::pages::portal::view::check_page(l, "jobs", &html);
            assert!(html.contains("<td class=\"num\">42</td>"), "email's total");
            assert!(html.contains("href=\"/portal/jobs/7\""));
            assert!(html.contains("href=\"/portal/jobs?state=failed&amp;before=7\""));
            assert!(
                html.contains("action=\"/portal/jobs/retry-all\""),
                "a failed job of the filter's kind: retry all"
            );
            let html = confirm_page(l, &nav, evil, 2, "c");
            crate::web::pages::portal::view::check_page(l, "confirm", &html);
            assert!(html.contains("name=\"confirm\" value=\"yes\""));
            let html = job_page(
                l,
                &nav,
                &job,
                evil,
                Some(Done::NotNow),
                &["a".into(), "b".into()],
            );
            crate::web::pages::portal::view::check_page(l, "job", &html);
            assert!(
                html.contains("action=\"/portal/jobs/retry\""),
                "failed: retry"
            );
            assert!(!html.contains("action=\"/portal/jobs/run\""));
            assert!(html.contains("role=\"alert\""));
            let word = if l == Locale::De { "Auftrag" } else { "Job" };
            assert!(html.contains(word), "{l}");
        }
    }
}
