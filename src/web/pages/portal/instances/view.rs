//! An instance's page (administrators): its data (secrets masked), history as a timeline,
//! timers, emails with their ledger state; forms to send an event, reschedule or cancel a
//! timer. Own texts ([`IT`], German and English).

use askama::Template;
use askama::filters::Safe;

use crate::core::domain::{Locale, Timestamp};
use crate::core::instance::InstanceDetail;

use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

pub(crate) struct IT {
    title: Text,
    workflow: Text,
    state: Text,
    version: Text,
    created: Text,
    finished: Text,
    data: Text,
    data_hint: Text,
    history: Text,
    timers: Text,
    emails: Text,
    none: Text,
    event: Text,
    send: Text,
    timer: Text,
    at: Text,
    at_hint: Text,
    reschedule: Text,
    cancel: Text,
    recipient: Text,
    template: Text,
    attempts: Text,
    error: Text,
    done: Text,
    not_now: Text,
}

const DE: IT = IT {
    title: Safe("Vorgang"),
    workflow: Safe("Ablauf"),
    state: Safe("Zustand"),
    version: Safe("Version"),
    created: Safe("Begonnen"),
    finished: Safe("Beendet"),
    data: Safe("Daten"),
    data_hint: Safe("Geheimnisse sind unkenntlich gemacht."),
    history: Safe("Verlauf"),
    timers: Safe("Fristen"),
    emails: Safe("E-Mails"),
    none: Safe("Keine."),
    event: Safe("Ereignis"),
    send: Safe("Ereignis senden"),
    timer: Safe("Frist"),
    at: Safe("Neuer Zeitpunkt (UTC)"),
    at_hint: Safe("Form: 2026-12-24 09:00"),
    reschedule: Safe("Verschieben"),
    cancel: Safe("Aufheben"),
    recipient: Safe("Empfänger"),
    template: Safe("Vorlage"),
    attempts: Safe("Versuche"),
    error: Safe("Fehler"),
    done: Safe("Erledigt."),
    not_now: Safe("Nicht möglich"),
};

const EN: IT = IT {
    title: Safe("Instance"),
    workflow: Safe("Workflow"),
    state: Safe("State"),
    version: Safe("Version"),
    created: Safe("Started"),
    finished: Safe("Finished"),
    data: Safe("Data"),
    data_hint: Safe("Secrets are masked."),
    history: Safe("History"),
    timers: Safe("Timers"),
    emails: Safe("Emails"),
    none: Safe("None."),
    event: Safe("Event"),
    send: Safe("Send event"),
    timer: Safe("Timer"),
    at: Safe("New time (UTC)"),
    at_hint: Safe("As in: 2026-12-24 09:00"),
    reschedule: Safe("Reschedule"),
    cancel: Safe("Cancel"),
    recipient: Safe("Recipient"),
    template: Safe("Template"),
    attempts: Safe("Attempts"),
    error: Safe("Error"),
    done: Safe("Done."),
    not_now: Safe("Not possible"),
};

fn it(l: Locale) -> &'static IT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

fn at(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The page's state after an action: done, or refused with the reason.
pub(crate) enum Outcome {
    Done,
    Refused(String),
}

struct Hist {
    at: String,
    from: String,
    event: String,
    to: String,
    actor: String,
}

struct Timer {
    name: String,
    event: String,
    state: String,
    at: String,
    scheduled: bool,
}

struct Mail {
    template: String,
    recipient: String,
    state: String,
    attempts: i64,
    error: String,
    at: String,
}

#[derive(Template)]
#[template(path = "portal/instances/instance.html")]
struct InstancePage<'a> {
    t: &'static PT,
    x: &'static IT,
    title: &'static str,
    nav: &'a Nav,
    d: &'a InstanceDetail,
    created: String,
    finished: String,
    data: &'a str,
    history: Vec<Hist>,
    timers: Vec<Timer>,
    mails: Vec<Mail>,
    events: &'a [String],
    message: Option<(bool, String)>,
    form_at: &'a str,
    csrf: &'a [String; 3],
}

/// The page; `data`: the instance's data as shown (masked); `events`: those the current state
/// takes; `csrf`: event, reschedule, cancel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn instance_page(
    l: Locale,
    nav: &Nav,
    d: &InstanceDetail,
    data: &str,
    events: &[String],
    outcome: Option<Outcome>,
    form_at: &str,
    csrf: &[String; 3],
) -> String {
    let x = it(l);
    render(&InstancePage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        d,
        created: at(d.created_at),
        finished: d.final_at.map(at).unwrap_or_default(),
        data,
        history: d
            .history
            .iter()
            .map(|h| Hist {
                at: at(h.at),
                from: h.from.clone().unwrap_or_default(),
                event: h.event.clone(),
                to: h.to.clone(),
                actor: h.actor.clone(),
            })
            .collect(),
        timers: d
            .timers
            .iter()
            .map(|t| Timer {
                name: t.name.clone().unwrap_or_default(),
                event: t.event.clone().unwrap_or_default(),
                state: t.state.clone(),
                at: at(t.run_at),
                scheduled: t.state == "scheduled",
            })
            .collect(),
        mails: d
            .emails
            .iter()
            .map(|m| Mail {
                template: m.template.clone(),
                recipient: m.recipient.clone(),
                state: m.state.clone(),
                attempts: m.attempts,
                error: m.last_error.clone().unwrap_or_default(),
                at: at(m.created_at),
            })
            .collect(),
        events,
        message: outcome.map(|o| match o {
            Outcome::Done => (true, x.done.0.to_string()),
            Outcome::Refused(why) => (false, format!("{}: {why}", x.not_now.0)),
        }),
        form_at,
        csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::InstanceId;
    use crate::core::instance::{EmailRow, HistoryRow, TimerView};

    #[test]
    fn the_page_escapes_and_offers_the_states_events_and_timers() {
        let evil = "\"><script>x</script>";
        let u = crate::web::pages::portal::view::test_admin();
        let d = InstanceDetail {
            id: InstanceId::parse("in_x").unwrap(),
            workflow: evil.into(),
            state: evil.into(),
            version: 3,
            locale: "de".into(),
            data: Default::default(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            final_at: None,
            history: vec![HistoryRow {
                seq: 1,
                event: evil.into(),
                from: None,
                to: evil.into(),
                at: Timestamp(0),
                actor: evil.into(),
            }],
            emails: vec![EmailRow {
                message_id: evil.into(),
                template: evil.into(),
                locale: "de".into(),
                role: "customer".into(),
                recipient: evil.into(),
                state: "failed".into(),
                attempts: 3,
                last_error: Some(evil.into()),
                reply: None,
                created_at: Timestamp(0),
                sent_at: None,
            }],
            timers: vec![TimerView {
                name: Some("expiry".into()),
                event: Some(evil.into()),
                state: "scheduled".into(),
                run_at: Timestamp(0),
            }],
        };
        for l in Locale::ALL {
            let nav = Nav::new(l, &u, "workflows", "t1".into(), "t2".into());
            let csrf = ["a".to_string(), "b".to_string(), "c".to_string()];
            let html = instance_page(
                l,
                &nav,
                &d,
                evil,
                &["expire".to_string()],
                Some(Outcome::Refused(evil.into())),
                evil,
                &csrf,
            );
            crate::web::pages::portal::view::check_page(l, "instance", &html);
            assert!(html.contains("<option value=\"expire\">expire</option>"));
            assert!(html.contains("id=\"cancel-expiry\""));
            assert!(html.contains("id=\"reschedule-expiry\""));
            assert!(html.contains("role=\"alert\""));
        }
    }
}
