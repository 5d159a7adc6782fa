//! The overview's view: its texts (German, English), the filter form, the cards and the
//! funnel (an SVG drawn here, with the same figures as a table). Pure: no HTTP.

use askama::Template;

use crate::core::domain::{Locale, OfferKind, Timestamp};
use crate::core::overview::{Funnel, Overview};

use super::super::view::{Nav, PT, render, texts};

/// The overview's texts.
pub(crate) struct OT {
    pub title: &'static str,
    pub signed_in: &'static str,
    pub actions: &'static str,
    pub new_trial: &'static str,
    pub new_purchase: &'static str,
    pub new_admin: &'static str,
    pub new_campaign: &'static str,
    pub offers: &'static str,
    pub customers: &'static str,
    pub open_offers: &'static str,
    pub waiting: &'static str,
    pub sent_period: &'static str,
    pub acceptances: &'static str,
    pub relationships: &'static str,
    pub next_ends: &'static str,
    pub customer: &'static str,
    pub role: &'static str,
    pub ends: &'static str,
    pub campaigns: &'static str,
    pub campaign: &'static str,
    pub offer: &'static str,
    pub progress: &'static str,
    pub funnel: &'static str,
    pub funnel_hint: &'static str,
    pub filters: &'static str,
    pub period: &'static str,
    pub periods: [(&'static str, &'static str); 3],
    pub from: &'static str,
    pub to: &'static str,
    pub dates_hint: &'static str,
    pub kind: &'static str,
    pub all_kinds: &'static str,
    pub location: &'static str,
    pub all_locations: &'static str,
    pub show: &'static str,
    pub stage: &'static str,
    pub count: &'static str,
    pub of_sent: &'static str,
    pub by_kind: &'static str,
    pub total: &'static str,
    pub stages: [&'static str; 5],
    pub bad_day: &'static str,
    pub bad_period: &'static str,
    pub bad_kind: &'static str,
    pub bad_location: &'static str,
    pub bad_range: &'static str,
    pub no_from: &'static str,
}

const DE: OT = OT {
    title: "Partnerübersicht",
    signed_in: "Angemeldet als",
    actions: "Aktionen",
    new_trial: "Einladung zum Testen senden",
    new_purchase: "Kaufangebot erstellen",
    new_admin: "Angebot für die delegierte Administration senden",
    new_campaign: "Neue Kampagne",
    offers: "Angebote",
    customers: "Nach Kunden oder Domäne suchen",
    open_offers: "Offene Angebote",
    waiting: "Einladungen ohne Antwort",
    sent_period: "Einladungen gesendet (Zeitraum)",
    acceptances: "Annahmen",
    relationships: "Delegierte Administration",
    next_ends: "Nächste Abläufe",
    customer: "Kunde",
    role: "Rolle",
    ends: "Endet am",
    campaigns: "Laufende Kampagnen",
    campaign: "Kampagne",
    offer: "Angebot",
    progress: "Fortschritt",
    funnel: "Trichter",
    funnel_hint: "Jede Stufe zählt, was im Zeitraum geschah. „Link geöffnet“ zählt Angebote, deren Link zum ersten Mal geöffnet wurde: ein Link ist nicht persönlich.",
    filters: "Filter",
    period: "Zeitraum",
    periods: [
        ("7", "Letzte 7 Tage"),
        ("30", "Letzte 30 Tage"),
        ("90", "Letzte 90 Tage"),
    ],
    from: "Von (JJJJ-MM-TT)",
    to: "Bis (JJJJ-MM-TT)",
    dates_hint: "Ein Datum geht dem Zeitraum vor.",
    kind: "Angebotsart",
    all_kinds: "Alle Arten",
    location: "Standort",
    all_locations: "Alle Standorte",
    show: "Anzeigen",
    stage: "Stufe",
    count: "Anzahl",
    of_sent: "Anteil an gesendet",
    by_kind: "Nach Angebotsart",
    total: "Summe",
    stages: [
        "Gesendet",
        "Zugestellt",
        "Link geöffnet",
        "Angenommen",
        "Abgeschlossen",
    ],
    bad_day: "ist kein Datum JJJJ-MM-TT",
    bad_period: "Wählen Sie einen Zeitraum aus der Liste.",
    bad_kind: "Wählen Sie eine Angebotsart aus der Liste.",
    bad_location: "Diesen Standort gibt es nicht.",
    bad_range: "„Bis“ liegt vor „Von“.",
    no_from: "Geben Sie zu „Bis“ auch „Von“ an.",
};

const EN: OT = OT {
    title: "Partner overview",
    signed_in: "Signed in as",
    actions: "Actions",
    new_trial: "Send a trial invitation",
    new_purchase: "Create a purchase offer",
    new_admin: "Send a delegated administration offer",
    new_campaign: "New campaign",
    offers: "Offers",
    customers: "Search for a customer or domain",
    open_offers: "Open offers",
    waiting: "Invitations awaiting an answer",
    sent_period: "Invitations sent (period)",
    acceptances: "Acceptances",
    relationships: "Delegated administration",
    next_ends: "Next expiries",
    customer: "Customer",
    role: "Role",
    ends: "Ends on",
    campaigns: "Running campaigns",
    campaign: "Campaign",
    offer: "Offer",
    progress: "Progress",
    funnel: "Funnel",
    funnel_hint: "Each stage counts what happened in the period. “Link opened” counts offers whose link was opened for the first time: a link is not personal.",
    filters: "Filters",
    period: "Period",
    periods: [
        ("7", "Last 7 days"),
        ("30", "Last 30 days"),
        ("90", "Last 90 days"),
    ],
    from: "From (YYYY-MM-DD)",
    to: "To (YYYY-MM-DD)",
    dates_hint: "A date takes precedence over the period.",
    kind: "Offer kind",
    all_kinds: "All kinds",
    location: "Location",
    all_locations: "All locations",
    show: "Show",
    stage: "Stage",
    count: "Count",
    of_sent: "Share of sent",
    by_kind: "By offer kind",
    total: "Total",
    stages: ["Sent", "Delivered", "Link opened", "Accepted", "Completed"],
    bad_day: "is not a date YYYY-MM-DD",
    bad_period: "Choose a period from the list.",
    bad_kind: "Choose an offer kind from the list.",
    bad_location: "There is no such location.",
    bad_range: "“To” is before “From”.",
    no_from: "Give “From” with “To”.",
};

pub(crate) fn otexts(l: Locale) -> &'static OT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

pub(crate) fn kind_name(l: Locale, k: OfferKind) -> &'static str {
    match (l, k) {
        (Locale::De, OfferKind::Trial) => "Testversion",
        (Locale::De, OfferKind::Purchase) => "Kaufangebot",
        (Locale::De, OfferKind::DelegatedAdmin) => "Delegierte Administration",
        (_, OfferKind::Trial) => "Trial",
        (_, OfferKind::Purchase) => "Purchase",
        (_, OfferKind::DelegatedAdmin) => "Delegated administration",
    }
}

/// A lifecycle state's name (acceptances, relationships).
fn state_name(l: Locale, s: &str) -> &'static str {
    let de = l == Locale::De;
    match s {
        "created" => {
            if de {
                "Angelegt"
            } else {
                "Created"
            }
        }
        "unconfirmed" => {
            if de {
                "Unbestätigt"
            } else {
                "Unconfirmed"
            }
        }
        "submitted" => {
            if de {
                "Eingereicht"
            } else {
                "Submitted"
            }
        }
        "completed" => {
            if de {
                "Abgeschlossen"
            } else {
                "Completed"
            }
        }
        "abandoned" => {
            if de {
                "Abgebrochen"
            } else {
                "Abandoned"
            }
        }
        "expired" => {
            if de {
                "Abgelaufen"
            } else {
                "Expired"
            }
        }
        "approval_pending" => {
            if de {
                "Wartet auf Zustimmung"
            } else {
                "Awaiting approval"
            }
        }
        "active" => {
            if de {
                "Aktiv"
            } else {
                "Active"
            }
        }
        "expiring" => {
            if de {
                "Läuft aus"
            } else {
                "Expiring"
            }
        }
        "termination_requested" => {
            if de {
                "Beendigung beantragt"
            } else {
                "Termination requested"
            }
        }
        "terminated" => {
            if de {
                "Beendet"
            } else {
                "Terminated"
            }
        }
        _ => {
            if de {
                "Anderer Zustand"
            } else {
                "Other state"
            }
        }
    }
}

const ACCEPTANCE_STATES: [&str; 5] = [
    "unconfirmed",
    "submitted",
    "completed",
    "abandoned",
    "expired",
];
const RELATIONSHIP_STATES: [&str; 6] = [
    "approval_pending",
    "active",
    "expiring",
    "expired",
    "termination_requested",
    "terminated",
];

/// The filter form's values as given, and its errors (field, message).
#[derive(Default, Clone)]
pub(crate) struct OverviewForm {
    pub period: String,
    pub from: String,
    pub to: String,
    pub kind: String,
    pub location: String,
    pub errors: Vec<(String, String)>,
}

impl OverviewForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// One bar of the funnel's drawing.
pub(crate) struct Bar {
    pub label: &'static str,
    pub n: i64,
    pub share: String,
    pub y: i64,
    pub text_y: i64,
    pub width: i64,
    pub num_x: i64,
}

pub(crate) struct KindRow {
    pub name: &'static str,
    pub cells: [i64; 5],
}

pub(crate) struct Line {
    pub label: &'static str,
    pub n: i64,
}

pub(crate) struct EndLine {
    pub customer: String,
    pub role: String,
    pub ends: String,
}

pub(crate) struct CampaignLine {
    pub id: String,
    pub name: String,
    pub offer_id: String,
    pub total: i64,
    pub done: i64,
}

/// The funnel's drawing: a 640 × height box, labels left, bars from x = 180 up to 400 wide.
pub(crate) struct Drawing {
    pub height: i64,
    pub bars: Vec<Bar>,
    /// What the drawing says, for its title and aria-label.
    pub summary: String,
}

const BAR_X: i64 = 180;
const BAR_MAX: i64 = 380;
const ROW: i64 = 40;

fn share(n: i64, of: i64) -> String {
    if of <= 0 {
        return "–".into();
    }
    format!("{:.1} %", n as f64 * 100.0 / of as f64)
}

pub(crate) fn drawing(o: &OT, f: &Funnel) -> Drawing {
    let stages = f.stages();
    let max = stages.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let bars: Vec<Bar> = stages
        .iter()
        .enumerate()
        .map(|(i, (_, n))| {
            let y = 10 + i as i64 * ROW;
            let width = if *n > 0 {
                (n * BAR_MAX / max).max(2)
            } else {
                0
            };
            Bar {
                label: o.stages[i],
                n: *n,
                share: share(*n, f.sent),
                y,
                text_y: y + 19,
                width,
                num_x: BAR_X + width + 8,
            }
        })
        .collect();
    let summary = format!(
        "{}: {}",
        o.funnel,
        bars.iter()
            .map(|b| format!("{} {}", b.label, b.n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Drawing {
        height: 20 + 5 * ROW,
        bars,
        summary,
    }
}

#[derive(Template)]
#[template(path = "portal/overview/page.html")]
struct OverviewPage<'a> {
    t: &'static PT,
    o: &'static OT,
    title: &'static str,
    nav: &'a Nav,
    name: &'a str,
    form: &'a OverviewForm,
    kinds: Vec<(&'static str, &'static str)>,
    locations: &'a [(String, String)],
    open_offers: i64,
    waiting: i64,
    sent: Option<i64>,
    acceptances: Vec<Line>,
    relationships: Vec<Line>,
    ends: Vec<EndLine>,
    campaigns: Vec<CampaignLine>,
    drawing: Option<Drawing>,
    by_kind: Vec<KindRow>,
    total: [i64; 5],
}

fn day(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d").to_string()
}

/// The overview page. `locations`: (id, label) for the filter; `funnel`: false when the
/// filter was refused (its errors are in `form`), then no funnel is drawn.
pub(crate) fn overview_page(
    l: Locale,
    nav: &Nav,
    name: &str,
    form: &OverviewForm,
    locations: &[(String, String)],
    v: &Overview,
    funnel: bool,
) -> String {
    let t = texts(l);
    let o = otexts(l);
    let invitations = OfferKind::ALL.map(|k| k.invitation_workflow());
    let waiting = invitations
        .iter()
        .map(|w| v.count(w, "invited") + v.count(w, "created"))
        .sum();
    let lines = |workflow: &str, states: &[&str]| -> Vec<Line> {
        states
            .iter()
            .map(|s| Line {
                label: state_name(l, s),
                n: v.count(workflow, s),
            })
            .collect()
    };
    let total = v.total();
    let cells = |f: &Funnel| f.stages().map(|(_, n)| n);
    render(&OverviewPage {
        t,
        o,
        title: o.title,
        nav,
        name,
        form,
        kinds: OfferKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), kind_name(l, k)))
            .collect(),
        locations,
        open_offers: v.count("offer", "open") + v.count("offer", "created"),
        waiting,
        sent: funnel.then_some(total.sent),
        acceptances: lines("acceptance", &ACCEPTANCE_STATES),
        relationships: lines("delegated_admin", &RELATIONSHIP_STATES),
        ends: v
            .expiries
            .iter()
            .map(|e| EndLine {
                customer: e.customer.clone(),
                role: e.role.clone(),
                ends: day(e.ends_at),
            })
            .collect(),
        campaigns: v
            .campaigns
            .iter()
            .map(|c| CampaignLine {
                id: c.id.clone(),
                name: c.name.clone(),
                offer_id: c.offer_id.clone(),
                total: c.total,
                done: c.done,
            })
            .collect(),
        drawing: funnel.then(|| drawing(o, &total)),
        by_kind: v
            .funnel
            .iter()
            .map(|(k, f)| KindRow {
                name: kind_name(l, *k),
                cells: cells(f),
            })
            .collect(),
        total: cells(&total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{EmailAddress, Role};
    use crate::core::overview::{CampaignProgress, RelationshipExpiry, StateCount};
    use crate::core::portal::UserRow;

    const EVIL: &str = "\"><script>x</script>";

    fn nav(l: Locale, role: Role) -> Nav {
        let u = UserRow {
            id: "u1".into(),
            email: EmailAddress::parse("a@b.example").unwrap(),
            name: EVIL.into(),
            language: l,
            role,
            created_at: Timestamp(0),
            created_by: "cli".into(),
            deactivated_at: None,
        };
        Nav::new(l, &u, "overview", "t1".into(), "t2".into())
    }

    fn overview() -> Overview {
        let f = Funnel {
            sent: 100,
            delivered: 90,
            opened: 40,
            accepted: 10,
            completed: 5,
        };
        Overview {
            states: vec![StateCount {
                workflow: "acceptance".into(),
                state: "completed".into(),
                n: 7,
            }],
            expiries: vec![RelationshipExpiry {
                instance_id: "r1".into(),
                ends_at: Timestamp(0),
                customer: EVIL.into(),
                role: EVIL.into(),
            }],
            campaigns: vec![CampaignProgress {
                id: EVIL.into(),
                name: EVIL.into(),
                offer_id: EVIL.into(),
                total: 10,
                done: 3,
            }],
            funnel: vec![
                (OfferKind::Trial, f),
                (OfferKind::Purchase, Funnel::default()),
            ],
        }
    }

    #[test]
    fn the_overview_escapes_labels_every_field_and_draws_the_funnel() {
        for l in Locale::ALL {
            let form = OverviewForm {
                period: "30".into(),
                from: EVIL.into(),
                location: EVIL.into(),
                errors: vec![("from".into(), EVIL.into())],
                ..Default::default()
            };
            let locations = vec![(EVIL.to_string(), EVIL.to_string())];
            for (role, funnel) in [(Role::Viewer, true), (Role::SalesAgent, false)] {
                let html = overview_page(
                    l,
                    &nav(l, role),
                    EVIL,
                    &form,
                    &locations,
                    &overview(),
                    funnel,
                );
                assert!(!html.contains("<script>"), "{l}: escaped");
                assert!(html.contains(&format!("<html lang=\"{l}\">")));
                assert!(html.contains(otexts(l).title));
                assert_eq!(html.contains("<svg"), funnel);
                assert_eq!(
                    html.contains("/portal/offers/new/trial"),
                    role == Role::SalesAgent
                );
                crate::web::pages::portal::view::check_page(l, "overview", &html);
                assert!(html.contains("aria-invalid=\"true\""));
                assert!(
                    html.contains("<td class=\"num\">7</td>"),
                    "completed acceptances"
                );
            }
        }
        let en = overview_page(
            Locale::En,
            &nav(Locale::En, Role::Viewer),
            "x",
            &OverviewForm::default(),
            &[],
            &overview(),
            true,
        );
        assert!(en.contains(
            "aria-label=\"Funnel: Sent 100, Delivered 90, Link opened 40, Accepted 10, Completed 5\""
        ));
        // The longest bar is the full width, the others in proportion.
        assert!(en.contains("width=\"380\" height=\"28\""));
        assert!(en.contains("width=\"19\" height=\"28\""));
        assert!(en.contains("<td class=\"num\">40.0 %</td>"));
    }
}
