//! The customers section's views: the search form with its results and one customer's page
//! (acceptances, delegated-admin relationships with their end and reminders, resellers and
//! support contact, invitations with their delivery). Texts in German and English; every
//! value escaped by the templates. Pure: no HTTP.

use askama::Template;
use askama::filters::Safe;

use crate::core::customer::CustomerDetail;
use crate::core::domain::{Locale, Timestamp};
use crate::core::instance::EmailRow;
use crate::core::offer::CustomerView;

use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

/// The customers section's texts.
pub(crate) struct CT {
    pub title: Text,
    pub query: Text,
    pub query_hint: Text,
    pub search: Text,
    pub results: Text,
    pub no_results: Text,
    pub domain: Text,
    pub organisation: Text,
    pub source: Text,
    pub accepted: Text,
    pub invited: Text,
    pub admin_emails: Text,
    pub acceptances: Text,
    pub no_acceptances: Text,
    pub offer: Text,
    pub accepted_at: Text,
    pub confirmed_at: Text,
    pub state: Text,
    pub products: Text,
    pub delegated_admin: Text,
    pub relationships: Text,
    pub no_relationships: Text,
    pub role: Text,
    pub ends_at: Text,
    pub reminders_sent: Text,
    pub reminders_due: Text,
    pub resellers: Text,
    pub no_resellers: Text,
    pub mpn_id: Text,
    pub name: Text,
    pub partnership: Text,
    pub support_contact: Text,
    pub yes: Text,
    pub no: Text,
    pub since: Text,
    pub invitations: Text,
    pub no_invitations: Text,
    pub recipient: Text,
    pub sent_at: Text,
    pub delivery: Text,
    pub more_invitations: Text,
    pub back: Text,
    pub not_found_title: Text,
    pub not_found_text: Text,
    pub bad_query: Text,
    pub wildcards: Text,
    pub too_long: Text,
    pub to_partner: Text,
    pub to_customer: Text,
    pub full: Text,
    pub limited: Text,
}

const DE: CT = CT {
    title: Safe("Kunden"),
    query: Safe("E-Mail-Adresse oder Domain"),
    query_hint: Safe(
        "Genau, ohne Platzhalter: ein Benutzername (person@contoso.com) oder eine Domain (contoso.com).",
    ),
    search: Safe("Suchen"),
    results: Safe("Ergebnisse"),
    no_results: Safe("Kein Kunde gefunden."),
    domain: Safe("Domain"),
    organisation: Safe("Organisation"),
    source: Safe("Quelle"),
    accepted: Safe("hat angenommen"),
    invited: Safe("nur eingeladen"),
    admin_emails: Safe("Administratoren"),
    acceptances: Safe("Annahmen"),
    no_acceptances: Safe("Keine bestätigten Annahmen."),
    offer: Safe("Angebot"),
    accepted_at: Safe("Angenommen (UTC)"),
    confirmed_at: Safe("Bestätigt (UTC)"),
    state: Safe("Status"),
    products: Safe("Produkte"),
    delegated_admin: Safe("Delegierte Administration"),
    relationships: Safe("Delegierte Administration"),
    no_relationships: Safe("Keine Beziehung zur delegierten Administration."),
    role: Safe("Rolle"),
    ends_at: Safe("Endet (UTC)"),
    reminders_sent: Safe("Erinnerungen gesendet"),
    reminders_due: Safe("Nächste Erinnerungen (UTC)"),
    resellers: Safe("Reseller und Supportkontakt"),
    no_resellers: Safe("Kein Reseller zugeordnet."),
    mpn_id: Safe("MPN-ID"),
    name: Safe("Name"),
    partnership: Safe("Partnerschaft"),
    support_contact: Safe("Supportkontakt"),
    yes: Safe("ja"),
    no: Safe("nein"),
    since: Safe("Seit (UTC)"),
    invitations: Safe("Einladungen"),
    no_invitations: Safe("Keine Einladungen."),
    recipient: Safe("Empfänger"),
    sent_at: Safe("Erstellt (UTC)"),
    delivery: Safe("Zustellung"),
    more_invitations: Safe("Ältere Einladungen werden nicht angezeigt:"),
    back: Safe("Zur Kundensuche"),
    not_found_title: Safe("Nicht gefunden"),
    not_found_text: Safe("Dazu gibt es keinen Eintrag."),
    bad_query: Safe(
        "Geben Sie eine vollständige E-Mail-Adresse (person@contoso.com) oder eine Domain (contoso.com) ein.",
    ),
    wildcards: Safe(
        "Platzhalter (*, %, ?) werden nicht unterstützt: Geben Sie die genaue Adresse oder Domain ein.",
    ),
    too_long: Safe("Die Eingabe ist zu lang."),
    to_partner: Safe("an Partner"),
    to_customer: Safe("an Kunde"),
    full: Safe("vollständig"),
    limited: Safe("eingeschränkt"),
};

const EN: CT = CT {
    title: Safe("Customers"),
    query: Safe("Email address or domain"),
    query_hint: Safe(
        "Exact, no wildcards: a user name (person@contoso.com) or a domain (contoso.com).",
    ),
    search: Safe("Search"),
    results: Safe("Results"),
    no_results: Safe("No customer found."),
    domain: Safe("Domain"),
    organisation: Safe("Organisation"),
    source: Safe("Source"),
    accepted: Safe("accepted"),
    invited: Safe("invited only"),
    admin_emails: Safe("Administrators"),
    acceptances: Safe("Acceptances"),
    no_acceptances: Safe("No confirmed acceptances."),
    offer: Safe("Offer"),
    accepted_at: Safe("Accepted (UTC)"),
    confirmed_at: Safe("Confirmed (UTC)"),
    state: Safe("State"),
    products: Safe("Products"),
    delegated_admin: Safe("Delegated administration"),
    relationships: Safe("Delegated administration"),
    no_relationships: Safe("No delegated-admin relationship."),
    role: Safe("Role"),
    ends_at: Safe("Ends (UTC)"),
    reminders_sent: Safe("Reminders sent"),
    reminders_due: Safe("Next reminders (UTC)"),
    resellers: Safe("Resellers and support contact"),
    no_resellers: Safe("No reseller associated."),
    mpn_id: Safe("MPN ID"),
    name: Safe("Name"),
    partnership: Safe("Partnership"),
    support_contact: Safe("Support contact"),
    yes: Safe("yes"),
    no: Safe("no"),
    since: Safe("Since (UTC)"),
    invitations: Safe("Invitations"),
    no_invitations: Safe("No invitations."),
    recipient: Safe("Recipient"),
    sent_at: Safe("Created (UTC)"),
    delivery: Safe("Delivery"),
    more_invitations: Safe("Older invitations not shown:"),
    back: Safe("Back to the customer search"),
    not_found_title: Safe("Not found"),
    not_found_text: Safe("There is no such entry."),
    bad_query: Safe(
        "Give a complete email address (person@contoso.com) or a domain (contoso.com).",
    ),
    wildcards: Safe("Wildcards (*, %, ?) are not supported: give the exact address or domain."),
    too_long: Safe("The query is too long."),
    to_partner: Safe("to partner"),
    to_customer: Safe("to customer"),
    full: Safe("full"),
    limited: Safe("limited"),
};

pub(crate) fn ctexts(l: Locale) -> &'static CT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// A lifecycle or delivery state in the user's language (unknown ones as they are).
pub(crate) fn state_label(l: Locale, s: &str) -> String {
    let de = match s {
        "created" => ("erstellt", "created"),
        "unconfirmed" => ("unbestätigt", "unconfirmed"),
        "submitted" => ("eingereicht", "submitted"),
        "completed" => ("abgeschlossen", "completed"),
        "abandoned" => ("abgebrochen", "abandoned"),
        "expired" => ("abgelaufen", "expired"),
        "invited" => ("eingeladen", "invited"),
        "accepted" => ("angenommen", "accepted"),
        "withdrawn" => ("zurückgezogen", "withdrawn"),
        "approval_pending" => ("Genehmigung ausstehend", "approval pending"),
        "active" => ("aktiv", "active"),
        "expiring" => ("läuft bald ab", "expiring"),
        "termination_requested" => ("Beendigung beantragt", "termination requested"),
        "terminated" => ("beendet", "terminated"),
        "request_sent" => ("Anfrage gesendet", "request sent"),
        "removed" => ("beendet (entfernt)", "ended (removed)"),
        "open" => ("offen", "open"),
        "queued" => ("wartet auf Versand", "queued"),
        "sent" => ("zugestellt", "delivered"),
        "failed" => ("fehlgeschlagen", "failed"),
        "retrying" => ("neuer Versuch", "retrying"),
        "bounced" => ("unzustellbar", "bounced"),
        "cancelled" => ("abgebrochen", "cancelled"),
        other => (other, other),
    };
    match l {
        Locale::De => de.0.to_string(),
        Locale::En => de.1.to_string(),
    }
}

/// A time as `YYYY-MM-DD HH:MM` (UTC).
pub(crate) fn when(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M").to_string()
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM` (UTC); as given when it does not parse.
fn when_text(s: &str) -> String {
    Timestamp::parse_rfc3339(s)
        .map(when)
        .unwrap_or_else(|_| s.to_string())
}

fn role_label(x: &CT, r: &str) -> &'static str {
    match r {
        "full" => x.full.0,
        "limited" => x.limited.0,
        _ => "",
    }
}

// ------------------------------------------------------------------------------ search

/// A customer in the search results.
pub(crate) struct ResultLine {
    pub domain: String,
    pub organisation: String,
    pub accepted: bool,
    pub acceptances: usize,
    pub invitations: usize,
    pub resellers: usize,
}

impl ResultLine {
    pub(crate) fn new(c: &CustomerView) -> ResultLine {
        ResultLine {
            domain: c.domain.clone(),
            organisation: c.organisation.clone(),
            accepted: c.source == "accepted",
            acceptances: c.acceptances.len(),
            invitations: c.invitations.len(),
            resellers: c.resellers.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/customers/search.html")]
struct SearchPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'static str,
    nav: &'a Nav,
    q: &'a str,
    error: Option<&'a str>,
    /// None: nothing searched (the form only).
    results: Option<&'a [ResultLine]>,
}

/// The search form; `results` after a search, `error` next to the field.
pub(crate) fn search_page(
    l: Locale,
    nav: &Nav,
    q: &str,
    error: Option<&str>,
    results: Option<&[ResultLine]>,
) -> String {
    let x = ctexts(l);
    render(&SearchPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        q,
        error,
        results,
    })
}

// ------------------------------------------------------------------------------ a customer

struct AcceptanceLine {
    id: String,
    offer_id: String,
    accepted_at: String,
    confirmed_at: String,
    state: String,
    raw_state: String,
    products: String,
    delegated_admin: &'static str,
}

struct RelationshipLine {
    offer_id: String,
    role: &'static str,
    state: String,
    raw_state: String,
    ends_at: String,
    sent: Vec<String>,
    due: Vec<String>,
}

struct ResellerLine {
    mpn_id: String,
    name: String,
    partnership: String,
    raw_partnership: String,
    support_contact: bool,
    since: String,
}

struct InvitationLine {
    offer_id: String,
    recipient: String,
    created_at: String,
    state: String,
    raw_state: String,
    delivery: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/customers/customer.html")]
struct CustomerPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'a str,
    nav: &'a Nav,
    domain: &'a str,
    organisation: &'a str,
    accepted: bool,
    admin_emails: &'a [String],
    acceptances: Vec<AcceptanceLine>,
    relationships: Vec<RelationshipLine>,
    resellers: Vec<ResellerLine>,
    invitations: Vec<InvitationLine>,
    more_invitations: usize,
}

fn email_line(l: Locale, x: &CT, e: &EmailRow) -> String {
    let to = match e.role.as_str() {
        "partner" => x.to_partner.0,
        "customer" => x.to_customer.0,
        _ => "",
    };
    let at = e.sent_at.unwrap_or(e.created_at);
    format!(
        "{} {to} · {} · {}",
        e.template,
        state_label(l, &e.state),
        when(at)
    )
}

/// One customer's page.
pub(crate) fn customer_page(l: Locale, nav: &Nav, d: &CustomerDetail) -> String {
    let x = ctexts(l);
    let c = &d.customer;
    let offer_of = |acceptance: &str| {
        c.acceptances
            .iter()
            .find(|a| a.acceptance.instance_id.as_str() == acceptance)
            .map(|a| a.acceptance.offer_id.as_str().to_string())
            .unwrap_or_default()
    };
    let acceptances = c
        .acceptances
        .iter()
        .map(|a| AcceptanceLine {
            id: a.acceptance.instance_id.as_str().to_string(),
            offer_id: a.acceptance.offer_id.as_str().to_string(),
            accepted_at: when(a.acceptance.accepted_at),
            confirmed_at: a.acceptance.confirmed_at.map(when).unwrap_or_default(),
            state: state_label(l, &a.state),
            raw_state: a.state.clone(),
            products: a
                .acceptance
                .products
                .iter()
                .map(|p| match p.licences {
                    Some(n) => format!("{} × {n}", p.name),
                    None => p.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            delegated_admin: a
                .acceptance
                .delegated_admin
                .map(|r| role_label(x, r.as_str()))
                .unwrap_or(x.no.0),
        })
        .collect();
    let relationships = d
        .relationships
        .iter()
        .map(|r| RelationshipLine {
            offer_id: offer_of(&r.acceptance_id),
            role: role_label(x, r.relationship.role.as_deref().unwrap_or("")),
            state: state_label(l, &r.relationship.state),
            raw_state: r.relationship.state.clone(),
            ends_at: r
                .relationship
                .ends_at
                .as_deref()
                .map(when_text)
                .unwrap_or_default(),
            sent: r
                .reminders_sent
                .iter()
                .map(|e| email_line(l, x, e))
                .collect(),
            due: r.reminders_due.iter().map(|t| when(t.run_at)).collect(),
        })
        .collect();
    let resellers = c
        .resellers
        .iter()
        .map(|r| ResellerLine {
            mpn_id: r.mpn_id.clone(),
            name: d
                .reseller_names
                .iter()
                .find(|(m, _)| *m == r.mpn_id)
                .and_then(|(_, n)| n.clone())
                .unwrap_or_default(),
            partnership: state_label(l, &r.partnership),
            raw_partnership: r.partnership.clone(),
            support_contact: r.support_contact,
            since: when(r.created_at),
        })
        .collect();
    let invitations = d
        .invitations
        .iter()
        .map(|v| InvitationLine {
            offer_id: v.invitation.invitation.offer_id.as_str().to_string(),
            recipient: v.invitation.invitation.recipient.as_str().to_string(),
            created_at: when(v.invitation.invitation.created_at),
            state: state_label(l, &v.invitation.state),
            raw_state: v.invitation.state.clone(),
            delivery: v.emails.iter().map(|e| email_line(l, x, e)).collect(),
        })
        .collect();
    render(&CustomerPage {
        t: texts(l),
        x,
        title: &c.domain,
        nav,
        domain: &c.domain,
        organisation: &c.organisation,
        accepted: c.source == "accepted",
        admin_emails: &c.admin_emails,
        acceptances,
        relationships,
        resellers,
        invitations,
        more_invitations: d.more_invitations,
    })
}

#[derive(Template)]
#[template(path = "portal/customers/not_found.html")]
struct NotFoundPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'static str,
    nav: &'a Nav,
    back: &'a str,
    back_text: &'a str,
}

/// The 404 page of the customers and resellers sections (`back`: where its link leads).
pub(crate) fn not_found_page(l: Locale, nav: &Nav, back: &str, back_text: &str) -> String {
    let x = ctexts(l);
    render(&NotFoundPage {
        t: texts(l),
        x,
        title: x.not_found_title.0,
        nav,
        back,
        back_text,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::core::customer::{InvitationDelivery, RelationshipDetail};
    use crate::core::domain::{
        AdminRole, DomainName, EmailAddress, InstanceId, OfferId, Role, Timestamp,
    };
    use crate::core::instance::TimerView;
    use crate::core::offer::{
        AcceptanceRow, AcceptanceView, CustomerInvitation, InvitationRow, OfferLine,
        RelationshipView, ResellerCustomer,
    };
    use crate::core::portal::UserRow;

    const EVIL: &str = "\"><script>x</script>";

    pub(crate) fn nav(l: Locale) -> Nav {
        let u = UserRow {
            id: "u1".into(),
            email: EmailAddress::parse("a@b.example").unwrap(),
            name: EVIL.into(),
            language: l,
            role: Role::Admin,
            created_at: Timestamp(0),
            created_by: "cli".into(),
            deactivated_at: None,
        };
        Nav::new(l, &u, "customers", "t1".into(), "t2".into())
    }

    fn detail() -> CustomerDetail {
        let email = EmailAddress::parse("admin@contoso.example").unwrap();
        let acc = AcceptanceView {
            acceptance: AcceptanceRow {
                instance_id: InstanceId::parse("in_acc1").unwrap(),
                offer_id: OfferId::generate(),
                organisation: EVIL.into(),
                domain: DomainName::parse("contoso.example").unwrap(),
                admin_email: email.clone(),
                products: vec![OfferLine {
                    id: crate::core::domain::ProductId::parse("m365-e3").unwrap(),
                    name: EVIL.into(),
                    licences: Some(3),
                }],
                delegated_admin: Some(AdminRole::Limited),
                relationship_id: None,
                accepted_at: Timestamp(0),
                confirmed_at: Some(Timestamp(1)),
            },
            state: EVIL.into(),
            relationship: Some(RelationshipView {
                id: InstanceId::parse("in_rel1").unwrap(),
                role: Some("limited".into()),
                state: "active".into(),
                ends_at: Some("2028-11-01T09:00:00Z".into()),
            }),
            signup: None,
        };
        let email_row = EmailRow {
            message_id: "m".into(),
            template: EVIL.into(),
            locale: "en".into(),
            role: "partner".into(),
            recipient: EVIL.into(),
            state: EVIL.into(),
            attempts: 1,
            last_error: Some(EVIL.into()),
            reply: None,
            created_at: Timestamp(0),
            sent_at: None,
        };
        let inv = CustomerInvitation {
            invitation: InvitationRow {
                instance_id: InstanceId::parse("in_inv1").unwrap(),
                offer_id: OfferId::generate(),
                recipient: email,
                locale: "en".into(),
                created_by: EVIL.into(),
                created_at: Timestamp(0),
            },
            state: EVIL.into(),
        };
        CustomerDetail {
            customer: CustomerView {
                domain: "contoso.example".into(),
                source: "accepted",
                organisation: EVIL.into(),
                admin_emails: vec![EVIL.into()],
                acceptances: vec![acc.clone()],
                invitations: vec![inv.clone()],
                resellers: vec![ResellerCustomer {
                    mpn_id: EVIL.into(),
                    domain: "contoso.example".into(),
                    acceptance_id: None,
                    support_contact: true,
                    partnership: EVIL.into(),
                    created_at: Timestamp(0),
                }],
            },
            invitations: vec![InvitationDelivery {
                invitation: inv,
                emails: vec![email_row.clone()],
            }],
            more_invitations: 3,
            relationships: vec![RelationshipDetail {
                acceptance_id: "in_acc1".into(),
                relationship: acc.relationship.clone().unwrap(),
                reminders_sent: vec![email_row],
                reminders_due: vec![TimerView {
                    name: Some("reminder_7".into()),
                    event: Some("remind".into()),
                    state: "scheduled".into(),
                    run_at: Timestamp(0),
                }],
            }],
            reseller_names: vec![(EVIL.into(), Some(EVIL.into()))],
        }
    }

    /// The section's pages in both languages, with hostile values everywhere.
    pub(crate) fn pages(l: Locale) -> Vec<(&'static str, String)> {
        let nav = nav(l);
        let d = detail();
        let lines = vec![ResultLine::new(&d.customer)];
        vec![
            ("search", search_page(l, &nav, EVIL, None, None)),
            ("search_error", search_page(l, &nav, EVIL, Some(EVIL), None)),
            ("results", search_page(l, &nav, EVIL, None, Some(&lines))),
            ("none", search_page(l, &nav, "x.example", None, Some(&[]))),
            ("customer", customer_page(l, &nav, &d)),
            (
                "not_found",
                not_found_page(l, &nav, "/portal/customers", EVIL),
            ),
        ]
    }

    /// Escaped, labelled, in the language asked for.
    pub(crate) fn check(l: Locale, name: &str, html: &str) {
        crate::web::pages::portal::view::check_page(l, name, html);
    }

    #[test]
    fn customer_pages_escape_label_and_speak_the_language() {
        for l in Locale::ALL {
            for (name, html) in pages(l) {
                check(l, name, &html);
            }
        }
        let [de, en] = [Locale::De, Locale::En].map(|l| customer_page(l, &nav(l), &detail()));
        assert!(de.contains("Endet (UTC)") && de.contains("2028-11-01 09:00"));
        assert!(en.contains("Ends (UTC)") && en.contains("Support contact"));
        assert!(de.contains("&#34;&gt;&lt;script&gt;") || de.contains("&quot;&gt;&lt;script&gt;"));
        let err = search_page(Locale::En, &nav(Locale::En), "x", Some("bad"), None);
        assert!(err.contains("aria-invalid=\"true\"") && err.contains("href=\"#customers-q\""));
    }
}
