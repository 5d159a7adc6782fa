//! The campaigns section's views and texts (German and English). A child of the portal's
//! `view` (declared there), so that its pages can use the shared layout's texts (`PT`). Pure:
//! no HTTP; every value escaped by askama.

use askama::Template;
use askama::filters::Safe;

use super::{Nav, PT, render, texts};
use crate::campaigns::{BadRow, CampaignLine, Dropouts, ImportReport, Progress};
use crate::core::campaign::{CampaignRow, CampaignState, RecipientCounts};
use crate::core::domain::{Locale, Timestamp};

type Text = Safe<&'static str>;

/// The section's texts.
pub(crate) struct CT {
    title: Text,
    new_title: Text,
    new_link: Text,
    created_title: Text,
    name: Text,
    offer: Text,
    state: Text,
    progress: Text,
    created: Text,
    none: Text,
    older: Text,
    offer_id: Text,
    offer_id_hint: Text,
    template: Text,
    template_hint: Text,
    max_per_minute: Text,
    max_per_minute_hint: Text,
    reminder_after: Text,
    reminder_after_hint: Text,
    reminder_template: Text,
    reminder_template_hint: Text,
    recipients: Text,
    recipients_hint: Text,
    max_size: Text,
    create: Text,
    lines: Text,
    added: Text,
    invalid: Text,
    duplicates: Text,
    blank: Text,
    suppressed_added: Text,
    bad_rows_title: Text,
    bad_rows_more: Text,
    no_bad_rows: Text,
    line: Text,
    reason: Text,
    to_campaign: Text,
    counts_title: Text,
    total: Text,
    pending: Text,
    sending: Text,
    awaiting: Text,
    failed: Text,
    bounced: Text,
    suppressed: Text,
    accepted: Text,
    expired: Text,
    sent: Text,
    reminded: Text,
    soft_bounces: Text,
    done: Text,
    rate: Text,
    per_minute: Text,
    eta: Text,
    eta_unknown: Text,
    paused_because: Text,
    waiting: Text,
    reminders: Text,
    refreshes: Text,
    dropouts_title: Text,
    unsubscribed: Text,
    email: Text,
    when: Text,
    error: Text,
    report: Text,
    report_hint: Text,
    actions: Text,
    start: Text,
    pause: Text,
    resume: Text,
    cancel: Text,
    cancel_hint: Text,
    details: Text,
    cap: Text,
    reminder: Text,
    no_reminder: Text,
    created_by: Text,
}

const DE: CT = CT {
    title: Safe("Kampagnen"),
    new_title: Safe("Neue Kampagne"),
    new_link: Safe("Neue Kampagne aus einer CSV-Datei"),
    created_title: Safe("Kampagne angelegt"),
    name: Safe("Name"),
    offer: Safe("Angebot"),
    state: Safe("Status"),
    progress: Safe("Fortschritt"),
    created: Safe("Angelegt (UTC)"),
    none: Safe("Noch keine Kampagnen."),
    older: Safe("Ältere Kampagnen"),
    offer_id: Safe("Angebots-ID"),
    offer_id_hint: Safe(
        "Ein offenes Angebot, z. B. OFR-…; alle Empfänger erhalten dieses Angebot.",
    ),
    template: Safe("E-Mail-Vorlage (optional)"),
    template_hint: Safe("Leer: die Einladungsvorlage der Angebotsart."),
    max_per_minute: Safe("Höchstens pro Minute (optional)"),
    max_per_minute_hint: Safe("Leer: keine eigene Obergrenze."),
    reminder_after: Safe("Erinnerung nach (optional)"),
    reminder_after_hint: Safe("z. B. 3d; 0s: keine Erinnerung; leer: die Voreinstellung."),
    reminder_template: Safe("Vorlage der Erinnerung (optional)"),
    reminder_template_hint: Safe("Leer: invitation_reminder."),
    recipients: Safe("Empfänger (CSV-Datei, UTF-8)"),
    recipients_hint: Safe(
        "Kopfzeile mit der Spalte email; name, company, locale (de oder en) und weitere Spalten gehen an die Vorlage. Eine Zeile je Empfänger.",
    ),
    max_size: Safe("Höchstens"),
    create: Safe("Kampagne anlegen"),
    lines: Safe("Datenzeilen"),
    added: Safe("übernommen"),
    invalid: Safe("ungültig"),
    duplicates: Safe("doppelt"),
    blank: Safe("leer"),
    suppressed_added: Safe("gesperrt (übernommen, nicht versandt)"),
    bad_rows_title: Safe("Nicht übernommene Zeilen"),
    bad_rows_more: Safe("Weitere nicht übernommene Zeilen, hier nicht aufgeführt:"),
    no_bad_rows: Safe("Alle Zeilen wurden übernommen."),
    line: Safe("Zeile"),
    reason: Safe("Grund"),
    to_campaign: Safe("Zur Kampagne (Entwurf: dort starten)"),
    counts_title: Safe("Empfänger"),
    total: Safe("Empfänger insgesamt"),
    pending: Safe("ausstehend"),
    sending: Safe("wird gesendet"),
    awaiting: Safe("gesendet, ohne Antwort"),
    failed: Safe("fehlgeschlagen"),
    bounced: Safe("unzustellbar (Bounce)"),
    suppressed: Safe("gesperrt"),
    accepted: Safe("angenommen"),
    expired: Safe("abgelaufen"),
    sent: Safe("Einladungen gesendet"),
    reminded: Safe("Erinnerungen gesendet"),
    soft_bounces: Safe("vorübergehende Bounces"),
    done: Safe("erledigt"),
    rate: Safe("Rate"),
    per_minute: Safe("pro Minute (letzte 5 Minuten)"),
    eta: Safe("Voraussichtlich fertig (UTC)"),
    eta_unknown: Safe("noch nicht absehbar"),
    paused_because: Safe("Angehalten:"),
    waiting: Safe("Wartet auf Erinnerungen bis (UTC)"),
    reminders: Safe("Erinnerungen geplant"),
    refreshes: Safe("Diese Seite lädt sich alle 5 Sekunden neu, solange die Kampagne läuft."),
    dropouts_title: Safe("Bounces und Abmeldungen"),
    unsubscribed: Safe("abgemeldet"),
    email: Safe("E-Mail-Adresse"),
    when: Safe("Wann (UTC)"),
    error: Safe("Meldung"),
    report: Safe("Bericht als CSV herunterladen"),
    report_hint: Safe("Eine Zeile je Empfänger: Status, Message-ID, Zustellung, Fehler."),
    actions: Safe("Aktionen"),
    start: Safe("Starten"),
    pause: Safe("Anhalten"),
    resume: Safe("Fortsetzen"),
    cancel: Safe("Abbrechen"),
    cancel_hint: Safe("Endgültig: ausstehende Empfänger werden nicht mehr angeschrieben."),
    details: Safe("Einstellungen"),
    cap: Safe("Obergrenze pro Minute"),
    reminder: Safe("Erinnerung"),
    no_reminder: Safe("keine"),
    created_by: Safe("Angelegt von"),
};

const EN: CT = CT {
    title: Safe("Campaigns"),
    new_title: Safe("New campaign"),
    new_link: Safe("New campaign from a CSV file"),
    created_title: Safe("Campaign created"),
    name: Safe("Name"),
    offer: Safe("Offer"),
    state: Safe("State"),
    progress: Safe("Progress"),
    created: Safe("Created (UTC)"),
    none: Safe("No campaigns yet."),
    older: Safe("Older campaigns"),
    offer_id: Safe("Offer ID"),
    offer_id_hint: Safe("An open offer, e.g. OFR-…; every recipient gets this offer."),
    template: Safe("Email template (optional)"),
    template_hint: Safe("Empty: the offer kind's invitation template."),
    max_per_minute: Safe("At most per minute (optional)"),
    max_per_minute_hint: Safe("Empty: no cap of its own."),
    reminder_after: Safe("Reminder after (optional)"),
    reminder_after_hint: Safe("e.g. 3d; 0s: no reminder; empty: the default."),
    reminder_template: Safe("Reminder template (optional)"),
    reminder_template_hint: Safe("Empty: invitation_reminder."),
    recipients: Safe("Recipients (CSV file, UTF-8)"),
    recipients_hint: Safe(
        "A header row with an email column; name, company, locale (de or en) and any other columns reach the template. One line per recipient.",
    ),
    max_size: Safe("At most"),
    create: Safe("Create campaign"),
    lines: Safe("Data lines"),
    added: Safe("added"),
    invalid: Safe("invalid"),
    duplicates: Safe("duplicates"),
    blank: Safe("blank"),
    suppressed_added: Safe("suppressed (added, not sent)"),
    bad_rows_title: Safe("Rows not added"),
    bad_rows_more: Safe("More rows not added, not listed here:"),
    no_bad_rows: Safe("Every row was added."),
    line: Safe("Line"),
    reason: Safe("Reason"),
    to_campaign: Safe("To the campaign (a draft: start it there)"),
    counts_title: Safe("Recipients"),
    total: Safe("Recipients in all"),
    pending: Safe("pending"),
    sending: Safe("sending"),
    awaiting: Safe("sent, awaiting an answer"),
    failed: Safe("failed"),
    bounced: Safe("bounced"),
    suppressed: Safe("suppressed"),
    accepted: Safe("accepted"),
    expired: Safe("expired"),
    sent: Safe("Invitations sent"),
    reminded: Safe("Reminders sent"),
    soft_bounces: Safe("soft bounces"),
    done: Safe("done"),
    rate: Safe("Rate"),
    per_minute: Safe("per minute (last 5 minutes)"),
    eta: Safe("Expected to finish (UTC)"),
    eta_unknown: Safe("not known yet"),
    paused_because: Safe("Paused:"),
    waiting: Safe("Waiting for reminders until (UTC)"),
    reminders: Safe("Reminders scheduled"),
    refreshes: Safe("This page reloads every 5 seconds while the campaign runs."),
    dropouts_title: Safe("Bounces and unsubscribes"),
    unsubscribed: Safe("unsubscribed"),
    email: Safe("Email address"),
    when: Safe("When (UTC)"),
    error: Safe("Message"),
    report: Safe("Download the report as CSV"),
    report_hint: Safe("One line per recipient: state, Message-ID, delivery, errors."),
    actions: Safe("Actions"),
    start: Safe("Start"),
    pause: Safe("Pause"),
    resume: Safe("Resume"),
    cancel: Safe("Cancel"),
    cancel_hint: Safe("For good: pending recipients are not mailed any more."),
    details: Safe("Settings"),
    cap: Safe("Cap per minute"),
    reminder: Safe("Reminder"),
    no_reminder: Safe("none"),
    created_by: Safe("Created by"),
};

fn ct(l: Locale) -> &'static CT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// Why a campaign action was refused, in the reader's language (the service's own words in
/// English).
pub(crate) fn why_not(l: Locale, e: &crate::campaigns::CampaignError) -> String {
    use crate::campaigns::CampaignError as E;
    use crate::offers::OfferError;
    match (l, e) {
        (Locale::De, E::WrongState { state, .. }) => {
            format!("die Kampagne ist {}", state_name(l, *state))
        }
        (Locale::De, E::Offer(OfferError::OfferClosed { offer, .. })) => {
            format!("das Angebot {} ist nicht mehr offen", offer.as_str())
        }
        _ => e.to_string(),
    }
}

/// A campaign state in the reader's language.
pub(crate) fn state_name(l: Locale, s: CampaignState) -> &'static str {
    use CampaignState as S;
    match (l, s) {
        (Locale::De, S::Draft) => "Entwurf",
        (Locale::De, S::Running) => "läuft",
        (Locale::De, S::Paused) => "angehalten",
        (Locale::De, S::Completed) => "abgeschlossen",
        (Locale::De, S::Cancelled) => "abgebrochen",
        (Locale::De, S::Expired) => "abgelaufen",
        (Locale::En, S::Draft) => "draft",
        (Locale::En, S::Running) => "running",
        (Locale::En, S::Paused) => "paused",
        (Locale::En, S::Completed) => "completed",
        (Locale::En, S::Cancelled) => "cancelled",
        (Locale::En, S::Expired) => "expired",
    }
}

fn time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S").to_string()
}

// ------------------------------------------------------------------- form messages

pub(crate) fn too_long(l: Locale) -> String {
    match l {
        Locale::De => "ist zu lang".into(),
        Locale::En => "is too long".into(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

pub(crate) fn too_large(l: Locale, max: u64) -> String {
    match l {
        Locale::De => format!(
            "Die Datei ist größer als {}. Teilen Sie sie auf, oder nehmen Sie die Kommandozeile (partnerflow campaign add).",
            mib(max)
        ),
        Locale::En => format!(
            "The file is larger than {}. Split it, or use the command line (partnerflow campaign add).",
            mib(max)
        ),
    }
}

pub(crate) fn unreadable_form(l: Locale) -> String {
    match l {
        Locale::De => "Das Formular kam nicht vollständig an. Bitte erneut senden.".into(),
        Locale::En => "The form did not arrive complete. Please send it again.".into(),
    }
}

pub(crate) fn required(l: Locale) -> String {
    match l {
        Locale::De => "Bitte ausfüllen.".into(),
        Locale::En => "Please fill in.".into(),
    }
}

pub(crate) fn whole_number(l: Locale) -> String {
    match l {
        Locale::De => "Eine ganze Zahl ab 1, oder leer.".into(),
        Locale::En => "A whole number from 1, or empty.".into(),
    }
}

pub(crate) fn choose_file(l: Locale) -> String {
    match l {
        Locale::De => "Bitte eine CSV-Datei mit den Empfängern wählen.".into(),
        Locale::En => "Please choose a CSV file with the recipients.".into(),
    }
}

/// A button that did not fit the campaign's state (any more).
pub(crate) fn not_now(l: Locale, why: &str) -> String {
    match l {
        Locale::De => format!("Nicht möglich: {why}"),
        Locale::En => format!("Not possible: {why}"),
    }
}

// ---------------------------------------------------------------------------- the list

struct ListLine<'a> {
    c: &'a CampaignRow,
    state: &'static str,
    created: String,
    done: i64,
    total: i64,
    percent: i64,
}

#[derive(Template)]
#[template(path = "portal/campaigns/list.html")]
struct ListPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'static str,
    nav: &'a Nav,
    rows: Vec<ListLine<'a>>,
    next: Option<&'a str>,
}

/// The campaigns, newest first; `next`: the query string of the next (older) page.
pub(crate) fn list_page(l: Locale, nav: &Nav, rows: &[CampaignLine], next: Option<&str>) -> String {
    let x = ct(l);
    render(&ListPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        rows: rows
            .iter()
            .map(|r| ListLine {
                c: &r.campaign,
                state: state_name(l, r.campaign.state),
                created: time(r.campaign.created_at),
                done: r.done,
                total: r.total,
                percent: if r.total > 0 {
                    r.done * 100 / r.total
                } else {
                    0
                },
            })
            .collect(),
        next,
    })
}

// ------------------------------------------------------------------------ the new form

/// The new campaign form's values as typed, and its errors (field, message).
#[derive(Default)]
pub(crate) struct NewForm {
    pub offer_id: String,
    pub name: String,
    pub template: String,
    pub max_per_minute: String,
    pub reminder_after: String,
    pub reminder_template: String,
    pub errors: Vec<(String, String)>,
}

impl NewForm {
    /// Adds an error to a field (its first one is shown next to it).
    pub(crate) fn error(&mut self, field: &str, message: impl Into<String>) {
        let known = [
            "offer_id",
            "name",
            "template",
            "max_per_minute",
            "reminder_after",
            "reminder_template",
            "recipients",
        ];
        let field = known
            .into_iter()
            .find(|f| *f == field)
            .unwrap_or("recipients");
        self.errors.push((field.into(), message.into()));
    }
    fn error_of(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "portal/campaigns/new.html")]
struct NewPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'static str,
    nav: &'a Nav,
    form: &'a NewForm,
    csrf: &'a str,
    max: String,
}

pub(crate) fn new_page(l: Locale, nav: &Nav, form: &NewForm, csrf: &str, max: u64) -> String {
    let x = ct(l);
    render(&NewPage {
        t: texts(l),
        x,
        title: x.new_title.0,
        nav,
        form,
        csrf,
        max: mib(max),
    })
}

#[derive(Template)]
#[template(path = "portal/campaigns/created.html")]
struct CreatedPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'static str,
    nav: &'a Nav,
    c: &'a CampaignRow,
    r: &'a ImportReport,
    bad: &'a [BadRow],
    not_listed: u64,
}

/// What creating a campaign from a file did: its counts, and every bad row with its line
/// (at most the first `bad.len()`; `bad_count` in all).
pub(crate) fn created_page(
    l: Locale,
    nav: &Nav,
    c: &CampaignRow,
    r: &ImportReport,
    bad: &[BadRow],
    bad_count: u64,
) -> String {
    let x = ct(l);
    render(&CreatedPage {
        t: texts(l),
        x,
        title: x.created_title.0,
        nav,
        c,
        r,
        bad,
        not_listed: bad_count.saturating_sub(bad.len() as u64),
    })
}

// ------------------------------------------------------------------------ one campaign

/// The buttons a campaign's page shows, each with its form's CSRF token: only those the
/// state allows and the user's role may press.
#[derive(Default)]
pub(crate) struct Buttons {
    pub start: Option<String>,
    pub pause: Option<String>,
    pub resume: Option<String>,
    pub cancel: Option<String>,
}

impl Buttons {
    fn any(&self) -> bool {
        self.start.is_some()
            || self.pause.is_some()
            || self.resume.is_some()
            || self.cancel.is_some()
    }
}

struct DropLine {
    seq: i64,
    email: String,
    what: String,
}

#[derive(Template)]
#[template(path = "portal/campaigns/show.html")]
struct CampaignPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'a str,
    nav: &'a Nav,
    c: &'a CampaignRow,
    n: &'a RecipientCounts,
    p: &'a Progress,
    state: &'static str,
    running: bool,
    created: String,
    rate: Option<String>,
    eta: Option<String>,
    waiting: Option<String>,
    next_reminder: Option<String>,
    reminder: Option<String>,
    bounced: Vec<DropLine>,
    unsubscribed: Vec<DropLine>,
    unsubscribed_count: i64,
    b: &'a Buttons,
    error: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn campaign_page(
    l: Locale,
    nav: &Nav,
    c: &CampaignRow,
    n: &RecipientCounts,
    p: &Progress,
    d: &Dropouts,
    b: &Buttons,
    error: Option<&str>,
    now: Timestamp,
) -> String {
    let x = ct(l);
    let eta = p.eta.map(|t| {
        let mins = ((t.0 - now.0).max(0) + 59_999) / 60_000;
        match l {
            Locale::De => format!("{} (in etwa {mins} Min.)", time(t)),
            Locale::En => format!("{} (in about {mins} min)", time(t)),
        }
    });
    let reminder = c.reminder_after.map(|r| {
        format!(
            "{r} ({})",
            c.reminder_template
                .as_deref()
                .unwrap_or(crate::campaigns::DEFAULT_REMINDER_TEMPLATE)
        )
    });
    render(&CampaignPage {
        t: texts(l),
        x,
        title: &c.name,
        nav,
        c,
        n,
        p,
        state: state_name(l, c.state),
        running: c.state == CampaignState::Running,
        created: time(c.created_at),
        rate: p.per_minute.map(|r| format!("{r:.1}")),
        eta,
        waiting: p.waiting_until.map(time),
        next_reminder: n.next_reminder_at.map(time),
        reminder,
        bounced: d
            .bounced
            .iter()
            .map(|r| DropLine {
                seq: r.seq,
                email: r.email.clone(),
                what: r.error.clone().unwrap_or_default(),
            })
            .collect(),
        unsubscribed: d
            .unsubscribed_rows
            .iter()
            .map(|r| DropLine {
                seq: r.seq,
                email: r.email.clone(),
                what: time(r.at),
            })
            .collect(),
        unsubscribed_count: d.unsubscribed,
        b,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{EmailAddress, Role, Span};
    use crate::core::portal::UserRow;
    use crate::store::{LedgerRow, UnsubscribedRow};

    const EVIL: &str = "\"><script>x</script>";

    #[test]
    fn a_refused_action_says_why_in_the_readers_language() {
        let e = crate::campaigns::CampaignError::WrongState {
            id: "cmp_x".into(),
            state: CampaignState::Completed,
            what: "pausing".into(),
        };
        assert_eq!(
            not_now(Locale::De, &why_not(Locale::De, &e)),
            "Nicht möglich: die Kampagne ist abgeschlossen"
        );
        assert_eq!(
            not_now(Locale::En, &why_not(Locale::En, &e)),
            "Not possible: campaign cmp_x is completed: pausing is not possible"
        );
    }

    fn user() -> UserRow {
        UserRow {
            id: "u1".into(),
            email: EmailAddress::parse("a@b.example").unwrap(),
            name: EVIL.into(),
            language: Locale::De,
            role: Role::Admin,
            created_at: Timestamp(0),
            created_by: "cli".into(),
            deactivated_at: None,
        }
    }

    fn campaign(state: CampaignState) -> CampaignRow {
        CampaignRow {
            id: "cmp_abc".into(),
            offer_id: EVIL.into(),
            name: EVIL.into(),
            template: EVIL.into(),
            state,
            pause_reason: Some(EVIL.into()),
            consecutive_failures: 0,
            created_by: EVIL.into(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            finished_at: None,
            max_per_minute: Some(60),
            reminder_after: Some(Span::from_secs(86_400)),
            reminder_template: Some(EVIL.into()),
        }
    }

    fn ledger(email: &str) -> LedgerRow {
        LedgerRow {
            seq: 7,
            email: email.into(),
            state: crate::core::campaign::RecipientState::Bounced,
            message_id: EVIL.into(),
            attempts: 1,
            reply: None,
            error: Some(EVIL.into()),
            sent_at: None,
            reminded_at: None,
            reminder_reply: None,
            remind_at: None,
            phase: 0,
            soft_bounces: 0,
        }
    }

    /// Every page of the section in one language, with hostile values and every error shown.
    fn all_pages(l: Locale) -> Vec<(String, String)> {
        let u = user();
        let nav = Nav::new(l, &u, "campaigns", "t1".into(), "t2".into());
        let mut out = vec![];
        let lines: Vec<CampaignLine> = CampaignState::ALL
            .into_iter()
            .map(|s| CampaignLine {
                campaign: campaign(s),
                total: 10,
                done: 3,
            })
            .collect();
        out.push((
            "list".into(),
            list_page(l, &nav, &lines, Some("cursor=1.cmp_a")),
        ));
        out.push(("list_empty".into(), list_page(l, &nav, &[], None)));
        let mut form = NewForm {
            offer_id: EVIL.into(),
            name: EVIL.into(),
            template: EVIL.into(),
            max_per_minute: EVIL.into(),
            reminder_after: EVIL.into(),
            reminder_template: EVIL.into(),
            errors: vec![],
        };
        out.push(("new".into(), new_page(l, &nav, &form, "c", 1 << 24)));
        for f in [
            "offer_id",
            "name",
            "template",
            "max_per_minute",
            "reminder_after",
            "reminder_template",
            "recipients",
            EVIL,
        ] {
            form.error(f, EVIL);
        }
        out.push(("new_errors".into(), new_page(l, &nav, &form, "c", 1 << 24)));
        let report = ImportReport {
            lines: 3,
            rows: 3,
            added: 1,
            invalid: 2,
            ..Default::default()
        };
        let bad = vec![
            BadRow {
                line: 2,
                reason: EVIL.into(),
            },
            BadRow {
                line: 3,
                reason: EVIL.into(),
            },
        ];
        let c = campaign(CampaignState::Draft);
        out.push((
            "created".into(),
            created_page(l, &nav, &c, &report, &bad, 5),
        ));
        out.push((
            "created_clean".into(),
            created_page(l, &nav, &c, &report, &[], 0),
        ));
        let n = RecipientCounts {
            total: 10,
            pending: 4,
            bounced: 1,
            next_reminder_at: Some(Timestamp(1)),
            ..Default::default()
        };
        let p = Progress {
            done: 6,
            total: 10,
            percent: 60,
            per_minute: Some(12.0),
            eta: Some(Timestamp(600_000)),
            waiting_until: Some(Timestamp(5)),
        };
        let d = Dropouts {
            bounced: vec![ledger(EVIL)],
            unsubscribed: 1,
            unsubscribed_rows: vec![UnsubscribedRow {
                seq: 3,
                email: EVIL.into(),
                at: Timestamp(0),
            }],
        };
        let all = Buttons {
            start: Some("c1".into()),
            pause: Some("c2".into()),
            resume: Some("c3".into()),
            cancel: Some("c4".into()),
        };
        for s in CampaignState::ALL {
            out.push((
                format!("show_{s}"),
                campaign_page(
                    l,
                    &nav,
                    &campaign(s),
                    &n,
                    &p,
                    &d,
                    &all,
                    Some(EVIL),
                    Timestamp(0),
                ),
            ));
        }
        out.push((
            "show_plain".into(),
            campaign_page(
                l,
                &nav,
                &campaign(CampaignState::Draft),
                &RecipientCounts::default(),
                &Progress {
                    done: 0,
                    total: 0,
                    percent: 0,
                    per_minute: None,
                    eta: None,
                    waiting_until: None,
                },
                &Dropouts::default(),
                &Buttons::default(),
                None,
                Timestamp(0),
            ),
        ));
        out
    }

    #[test]
    fn pages_escape_label_every_field_and_speak_the_language() {
        for l in Locale::ALL {
            for (name, html) in all_pages(l) {
                crate::web::pages::portal::view::check_page(l, &name, &html);
                // Only a running campaign's page reloads itself.
                assert_eq!(
                    html.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
                    name == "show_running",
                    "{l}/{name}"
                );
            }
        }
        let de = all_pages(Locale::De);
        assert!(de.iter().any(|(_, h)| h.contains("Kampagne anlegen")));
        let en = all_pages(Locale::En);
        assert!(en.iter().any(|(_, h)| h.contains("Create campaign")));
        // The pause reason only while paused; errors next to their fields.
        let paused = &en.iter().find(|(n, _)| n == "show_paused").unwrap().1;
        assert!(paused.contains("id=\"pause-reason\""));
        let running = &en.iter().find(|(n, _)| n == "show_running").unwrap().1;
        assert!(!running.contains("id=\"pause-reason\""));
        assert!(running.contains("id=\"eta\">1970-01-01 00:10:00 (in about 10 min)<"));
        let errors = &en.iter().find(|(n, _)| n == "new_errors").unwrap().1;
        assert_eq!(errors.matches("aria-invalid=\"true\"").count(), 7);
    }
}
