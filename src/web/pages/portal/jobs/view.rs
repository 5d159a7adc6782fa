//! The jobs pages' views (administrators): counts by state and kind, the filtered list a page
//! at a time with its bulk actions, the confirmation, a job's page (payload masked, attempts,
//! each failed attempt, lease owner) with its retry, cancel, run-now and readdress forms, and
//! the nodes page. Own texts ([`JT`], German and English).

use askama::Template;
use askama::filters::Safe;

use crate::core::domain::{Locale, Timestamp};
use crate::core::job::{JobAction, JobPayload, JobState};
use crate::store::{JobError, JobRow, NodeRow};

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
    from: Text,
    to: Text,
    created: Text,
    cancel: Text,
    done_cancel: Text,
    done_readdress: Text,
    cancel_all: Text,
    run_all: Text,
    confirm_cancel: Text,
    confirm_run: Text,
    confirm_cancel_button: Text,
    confirm_run_button: Text,
    cancelled: Text,
    run: Text,
    errors: Text,
    no_errors: Text,
    attempt: Text,
    at: Text,
    node: Text,
    taken_over: Text,
    readdress: Text,
    readdress_hint: Text,
    readdress_button: Text,
    nodes_title: Text,
    nodes_intro: Text,
    no_nodes: Text,
    host: Text,
    started: Text,
    seen: Text,
    last_claim: Text,
    held: Text,
    status: Text,
    running: Text,
    stopped: Text,
    silent: Text,
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
    from: Safe("Erstellt ab"),
    to: Safe("bis"),
    created: Safe("Erstellt"),
    cancel: Safe("Abbrechen"),
    done_cancel: Safe("Abgebrochen: der Auftrag läuft nicht mehr."),
    done_readdress: Safe("Neue Adresse gespeichert; die E-Mail wird jetzt gesendet."),
    cancel_all: Safe("Alle ausgewählten abbrechen …"),
    run_all: Safe("Alle ausgewählten wartenden jetzt ausführen …"),
    confirm_cancel: Safe("Wartende und fehlgeschlagene Aufträge abbrechen:"),
    confirm_run: Safe("Wartende Aufträge jetzt ausführen:"),
    confirm_cancel_button: Safe("Ja, abbrechen"),
    confirm_run_button: Safe("Ja, jetzt ausführen"),
    cancelled: Safe("Abgebrochen:"),
    run: Safe("Jetzt fällig:"),
    errors: Safe("Fehlgeschlagene Versuche"),
    no_errors: Safe("Kein Versuch ist fehlgeschlagen."),
    attempt: Safe("Versuch"),
    at: Safe("Zeit"),
    node: Safe("Knoten"),
    taken_over: Safe("Übernommen von"),
    readdress: Safe("Empfängeradresse korrigieren"),
    readdress_hint: Safe(
        "Die E-Mail geht dann sofort an diese Adresse (neue Versuche); die Daten des Vorgangs behalten ihre Adresse.",
    ),
    readdress_button: Safe("An diese Adresse senden"),
    nodes_title: Safe("Knoten"),
    nodes_intro: Safe(
        "Die Arbeitsprozesse der letzten 24 Stunden: jeder meldet sich alle paar Sekunden. Ein Knoten, der schweigt, ist ausgefallen; seine Aufträge übernehmen andere, sobald ihre Frist abläuft.",
    ),
    no_nodes: Safe("Kein Arbeitsprozess hat sich gemeldet."),
    host: Safe("Rechner"),
    started: Safe("Gestartet"),
    seen: Safe("Zuletzt gemeldet"),
    last_claim: Safe("Zuletzt Arbeit geholt"),
    held: Safe("Aufträge in Arbeit"),
    status: Safe("Zustand"),
    running: Safe("läuft"),
    stopped: Safe("beendet"),
    silent: Safe("schweigt"),
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
    from: Safe("Created from"),
    to: Safe("to"),
    created: Safe("Created"),
    cancel: Safe("Cancel"),
    done_cancel: Safe("Cancelled: the job will not run."),
    done_readdress: Safe("New address saved; the email is being sent now."),
    cancel_all: Safe("Cancel every selected job …"),
    run_all: Safe("Run every selected waiting job now …"),
    confirm_cancel: Safe("Waiting and failed jobs to cancel:"),
    confirm_run: Safe("Waiting jobs to run now:"),
    confirm_cancel_button: Safe("Yes, cancel them"),
    confirm_run_button: Safe("Yes, run them now"),
    cancelled: Safe("Cancelled:"),
    run: Safe("Due now:"),
    errors: Safe("Failed attempts"),
    no_errors: Safe("No attempt has failed."),
    attempt: Safe("Attempt"),
    at: Safe("At"),
    node: Safe("Node"),
    taken_over: Safe("Taken over from"),
    readdress: Safe("Correct the recipient's address"),
    readdress_hint: Safe(
        "The email then goes to this address at once (fresh attempts); the instance's data keeps its address.",
    ),
    readdress_button: Safe("Send to this address"),
    nodes_title: Safe("Nodes"),
    nodes_intro: Safe(
        "The worker processes of the last 24 hours: each reports every few seconds. A node that falls silent is gone; others take over its jobs when their leases run out.",
    ),
    no_nodes: Safe("No worker process has reported."),
    host: Safe("Host"),
    started: Safe("Started"),
    seen: Safe("Last report"),
    last_claim: Safe("Last claimed work"),
    held: Safe("Jobs held"),
    status: Safe("Status"),
    running: Safe("running"),
    stopped: Safe("stopped"),
    silent: Safe("silent"),
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
    pub from: String,
    pub to: String,
}

struct Line<'a> {
    j: &'a JobRow,
    run_at: String,
    created: String,
    updated: String,
    error: String,
}

fn line(j: &JobRow) -> Line<'_> {
    let error = j.last_error.as_deref().unwrap_or_default();
    let short: String = error.chars().take(120).collect();
    Line {
        j,
        run_at: at(j.run_at),
        created: at(j.created_at),
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
    states: &'a [JobState],
    kinds: Vec<&'a str>,
    counts: Vec<(&'a str, Vec<i64>, i64)>,
    filter: &'a JobsFilter,
    lines: Vec<Line<'a>>,
    older: Option<String>,
    bulk: &'a Bulk,
    /// What the last bulk action did, in words, and how many.
    done: Option<(Text, u64)>,
    /// The bulk actions that apply to some job of the filter: (action, label, element id, how
    /// many).
    actions: Vec<(&'static str, &'static str, &'static str, i64)>,
}

/// The list page's bulk actions: their form's token, how many jobs of the filter each would
/// apply to (retry, cancel, run now: [`JobAction::ALL`]'s order) and, after one, which and how
/// many it did.
#[derive(Default)]
pub(crate) struct Bulk {
    pub csrf: String,
    pub can: [i64; 3],
    pub done: Option<(JobAction, u64)>,
}

#[derive(Template)]
#[template(path = "portal/jobs/confirm.html")]
struct ConfirmPage<'a> {
    t: &'static PT,
    x: &'static JT,
    title: &'static str,
    nav: &'a Nav,
    action: &'static str,
    question: Text,
    button: Text,
    filter: &'a JobsFilter,
    back: &'a str,
    n: i64,
    csrf: &'a str,
}

/// "`action` these `n` jobs (of the filter)?" with the form that does it; `back`: the list's
/// query string.
pub(crate) fn confirm_page(
    l: Locale,
    nav: &Nav,
    action: JobAction,
    filter: &JobsFilter,
    back: &str,
    n: i64,
    csrf: &str,
) -> String {
    let x = jt(l);
    let (question, button) = match action {
        JobAction::Retry => (Safe(x.confirm_retry.0), Safe(x.confirm.0)),
        JobAction::Cancel => (Safe(x.confirm_cancel.0), Safe(x.confirm_cancel_button.0)),
        JobAction::RunNow => (Safe(x.confirm_run.0), Safe(x.confirm_run_button.0)),
    };
    render(&ConfirmPage {
        t: texts(l),
        x,
        title: x.confirm_title.0,
        nav,
        action: action.as_str(),
        question,
        button,
        filter,
        back,
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
    let states = &JobState::ALL;
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
                        .filter(|(cs, ck, _)| cs == s.as_str() && ck == k)
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
        actions: JobAction::ALL
            .into_iter()
            .zip(bulk.can)
            .filter(|(_, n)| *n > 0)
            .map(|(a, n)| {
                let (label, id) = match a {
                    JobAction::Retry => (x.retry_all.0, "retry-all"),
                    JobAction::Cancel => (x.cancel_all.0, "cancel-all"),
                    JobAction::RunNow => (x.run_all.0, "run-all"),
                };
                (a.as_str(), label, id, n)
            })
            .collect(),
        done: bulk.done.map(|(a, n)| {
            let said = match a {
                JobAction::Retry => Safe(x.retried.0),
                JobAction::Cancel => Safe(x.cancelled.0),
                JobAction::RunNow => Safe(x.run.0),
            };
            (said, n)
        }),
    })
}

/// What the job page says after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    Retried,
    Run,
    Cancelled,
    Readdressed,
    NotNow,
}

/// The job page's forms: tokens (retry, cancel, run now, readdress) and the readdress form's
/// value and error when it was refused.
pub(crate) struct JobForms {
    pub csrf: [String; 4],
    pub address: String,
    pub address_error: Option<String>,
}

struct ErrorLine<'a> {
    e: &'a JobError,
    at: String,
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
    errors: Vec<ErrorLine<'a>>,
    message: Option<(bool, Text)>,
    forms: &'a JobForms,
    /// A failed or waiting email: its address may be corrected.
    readdressable: bool,
}

/// A job's page; `payload` already masked.
pub(crate) fn job_page(
    l: Locale,
    nav: &Nav,
    j: &JobRow,
    payload: &str,
    errors: &[JobError],
    done: Option<Done>,
    forms: &JobForms,
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
        errors: errors
            .iter()
            .map(|e| ErrorLine { e, at: at(e.at) })
            .collect(),
        message: done.map(|d| match d {
            Done::Retried => (true, Safe(x.done_retry.0)),
            Done::Run => (true, Safe(x.done_run.0)),
            Done::Cancelled => (true, Safe(x.done_cancel.0)),
            Done::Readdressed => (true, Safe(x.done_readdress.0)),
            Done::NotNow => (false, Safe(x.not_now.0)),
        }),
        forms,
        readdressable: matches!(&j.payload, JobPayload::Email(e) if e.readdressable())
            && matches!(j.state, JobState::Failed | JobState::Scheduled),
    })
}

struct NodeLine<'a> {
    n: &'a NodeRow,
    started: String,
    seen: String,
    last_claim: String,
    status: Text,
}

#[derive(Template)]
#[template(path = "portal/jobs/nodes.html")]
struct NodesPage<'a> {
    t: &'static PT,
    x: &'static JT,
    title: &'static str,
    nav: &'a Nav,
    lines: Vec<NodeLine<'a>>,
}

/// How long a running node may be silent before the page calls it silent (it reports every
/// few seconds).
const SILENT_AFTER_MS: i64 = 30_000;

/// The nodes page: each worker process with its status (running, stopped, silent) at `now`.
pub(crate) fn nodes_page(l: Locale, nav: &Nav, nodes: &[NodeRow], now: Timestamp) -> String {
    let x = jt(l);
    render(&NodesPage {
        t: texts(l),
        x,
        title: x.nodes_title.0,
        nav,
        lines: nodes
            .iter()
            .map(|n| NodeLine {
                n,
                started: at(n.started_at),
                seen: at(n.seen_at),
                last_claim: n.last_claim.map(at).unwrap_or_default(),
                status: if n.stopped_at.is_some() {
                    Safe(x.stopped.0)
                } else if now.0 - n.seen_at.0 > SILENT_AFTER_MS {
                    Safe(x.silent.0)
                } else {
                    Safe(x.running.0)
                },
            })
            .collect(),
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
            payload: JobPayload::from_row(
                "email",
                r#"{"message_id":"<m@x.example>","envelope":{"message_id":"<m@x.example>","to":"k@contoso.example","locale":"de","template":"trial_invitation"},"context":{},"workflow":"trial_invitation"}"#,
            ),
            state: JobState::Failed,
            run_at: Timestamp(0),
            attempts: 5,
            max_attempts: 5,
            lease_owner: Some(evil.into()),
            last_error: Some(evil.repeat(20)),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            taken_over_from: Some(evil.into()),
        };
        let counts = vec![
            ("failed".to_string(), "email".to_string(), 2),
            ("done".to_string(), "email".to_string(), 40),
            ("scheduled".to_string(), "timer".to_string(), 3),
            ("failed".to_string(), evil.to_string(), 1),
        ];
        let errors = [JobError {
            attempt: 1,
            at: Timestamp(0),
            node: evil.into(),
            error: "550 5.1.1 no such user".into(),
        }];
        let node = NodeRow {
            node: evil.into(),
            host: evil.into(),
            pid: 42,
            version: "0.1.0".into(),
            started_at: Timestamp(0),
            seen_at: Timestamp(1_000),
            last_claim: None,
            stopped_at: None,
            jobs_held: 3,
        };
        for l in Locale::ALL {
            let nav = Nav::new(l, &u, "jobs", "t1".into(), "t2".into());
            let f = JobsFilter {
                state: evil.into(),
                kind: evil.into(),
                from: evil.into(),
                to: "2026-12-01".into(),
            };
            let bulk = Bulk {
                csrf: "b".into(),
                can: [2, 5, 0],
                done: Some((JobAction::Cancel, 3)),
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
            assert!(html.contains("id=\"retry-all\""), "two to retry");
            assert!(html.contains("id=\"cancel-all\""), "five to cancel");
            assert!(!html.contains("id=\"run-all\""), "none waiting");
            assert!(html.contains("name=\"to\" value=\"2026-12-01\""));
            let html = confirm_page(l, &nav, JobAction::Cancel, &f, "state=x", 2, "c");
            crate::web::pages::portal::view::check_page(l, "confirm", &html);
            assert!(html.contains("name=\"confirm\" value=\"yes\""));
            assert!(html.contains("name=\"action\" value=\"cancel\""));
            let forms = JobForms {
                csrf: ["a".into(), "b".into(), "c".into(), "d".into()],
                address: evil.into(),
                address_error: Some(evil.into()),
            };
            let html = job_page(l, &nav, &job, evil, &errors, Some(Done::NotNow), &forms);
            crate::web::pages::portal::view::check_page(l, "job", &html);
            assert!(
                html.contains("action=\"/portal/jobs/retry\""),
                "failed: retry"
            );
            assert!(html.contains("action=\"/portal/jobs/cancel\""));
            assert!(html.contains("action=\"/portal/jobs/readdress\""));
            // A sign-in email (a link that is the recipient's own): no form to send it elsewhere.
            let signin = JobRow {
                payload: JobPayload::from_row(
                    "email",
                    r#"{"message_id":"<m@x.example>","envelope":{"message_id":"<m@x.example>","to":"k@contoso.example","locale":"de","template":"portal_signin"},"context":{},"workflow":"portal_signin"}"#,
                ),
                ..job.clone()
            };
            let other = job_page(l, &nav, &signin, evil, &errors, None, &forms);
            assert!(!other.contains("action=\"/portal/jobs/readdress\""));
            assert!(html.contains("aria-invalid=\"true\""));
            assert!(html.contains("550 5.1.1 no such user"));
            assert!(!html.contains("action=\"/portal/jobs/run\""));
            assert!(html.contains("role=\"alert\""));
            let word = if l == Locale::De { "Auftrag" } else { "Job" };
            assert!(html.contains(word), "{l}");
            let nav = Nav::new(l, &u, "nodes", "t1".into(), "t2".into());
            let html = nodes_page(l, &nav, std::slice::from_ref(&node), Timestamp(60_000));
            crate::web::pages::portal::view::check_page(l, "nodes", &html);
            let silent = if l == Locale::De {
                "schweigt"
            } else {
                "silent"
            };
            let cell = format!("<td>{silent}</td>");
            assert!(html.contains(&cell), "{html}");
            let html = nodes_page(l, &nav, std::slice::from_ref(&node), Timestamp(2_000));
            assert!(!html.contains(&cell));
        }
    }
}
