//! The resellers section's views: the partnerships a page at a time with the request form
//! (administrators), and one reseller's page with its customers, support contacts and the
//! associate and end forms (administrators). German and English; every value escaped by the
//! templates. Pure: no HTTP.

use askama::Template;
use askama::filters::Safe;

use crate::core::domain::Locale;
use crate::core::offer::ResellerView;

use super::customers::{state_label, when};
use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

/// The resellers section's texts.
pub(crate) struct RT {
    pub title: Text,
    pub intro: Text,
    pub none: Text,
    pub mpn_id: Text,
    pub mpn_hint: Text,
    pub name: Text,
    pub email: Text,
    pub state: Text,
    pub requested_at: Text,
    pub customers: Text,
    pub support_contacts: Text,
    pub next: Text,
    pub request_title: Text,
    pub request_hint: Text,
    pub request_button: Text,
    pub requested: Text,
    pub associated: Text,
    pub ended: Text,
    pub no_customers: Text,
    pub domain: Text,
    pub domain_hint: Text,
    pub acceptance_id: Text,
    pub acceptance_hint: Text,
    pub support_contact: Text,
    pub since: Text,
    pub yes: Text,
    pub no: Text,
    pub associate_title: Text,
    pub associate_hint: Text,
    pub associate_button: Text,
    pub associate_inactive: Text,
    pub end_title: Text,
    pub end_hint: Text,
    pub end_button: Text,
    pub withdraw_button: Text,
    pub back: Text,
    pub exists: Text,
    pub one_of: Text,
    pub no_customer: Text,
    pub no_acceptance: Text,
    pub not_active: Text,
    pub cannot_end: Text,
    pub bad_mpn: Text,
    pub bad_name: Text,
    pub bad_email: Text,
    pub bad_domain: Text,
    pub bad_acceptance: Text,
}

const DE: RT = RT {
    title: Safe("Reseller"),
    intro: Safe(
        "Partnerschaften als indirekter Anbieter: Anfragen und ihr Status, zugeordnete Kunden, Supportkontakte.",
    ),
    none: Safe("Keine Reseller-Partnerschaften."),
    mpn_id: Safe("MPN-ID"),
    mpn_hint: Safe("5 bis 10 Ziffern."),
    name: Safe("Name"),
    email: Safe("E-Mail-Adresse"),
    state: Safe("Status"),
    requested_at: Safe("Angefragt (UTC)"),
    customers: Safe("Kunden"),
    support_contacts: Safe("Supportkontakt für"),
    next: Safe("Weitere Reseller"),
    request_title: Safe("Reseller-Partnerschaft anfragen"),
    request_hint: Safe(
        "Der Reseller erhält eine E-Mail mit einem persönlichen Link, über den er die Partnerschaft annimmt.",
    ),
    request_button: Safe("Anfrage senden"),
    requested: Safe("Die Anfrage ist unterwegs."),
    associated: Safe("Der Kunde ist zugeordnet."),
    ended: Safe("Die Partnerschaft ist beendet."),
    no_customers: Safe("Keine Kunden zugeordnet."),
    domain: Safe("Domain des Kunden"),
    domain_hint: Safe("Ein Kunde, der ein Angebot angenommen hat (contoso.com)."),
    acceptance_id: Safe("oder Annahme-ID"),
    acceptance_hint: Safe("Statt der Domain: die ID einer Annahme (in_…)."),
    support_contact: Safe("Reseller ist Supportkontakt"),
    since: Safe("Seit (UTC)"),
    yes: Safe("ja"),
    no: Safe("nein"),
    associate_title: Safe("Kunden zuordnen"),
    associate_hint: Safe("Geben Sie genau eines an: Domain oder Annahme-ID."),
    associate_button: Safe("Zuordnen"),
    associate_inactive: Safe(
        "Kunden können erst zugeordnet werden, wenn der Reseller die Partnerschaft angenommen hat.",
    ),
    end_title: Safe("Partnerschaft beenden"),
    end_hint: Safe(
        "Zugeordnete Kunden bleiben erhalten; der Reseller ist dann für niemanden mehr Supportkontakt.",
    ),
    end_button: Safe("Partnerschaft beenden"),
    withdraw_button: Safe("Anfrage zurückziehen"),
    back: Safe("Zu den Resellern"),
    exists: Safe("Mit diesem Reseller besteht schon eine Partnerschaft oder offene Anfrage."),
    one_of: Safe("Geben Sie genau eines an: Domain oder Annahme-ID."),
    no_customer: Safe("Zu dieser Domain gibt es keinen Kunden mit Annahme."),
    no_acceptance: Safe("Eine Annahme mit dieser ID gibt es nicht."),
    not_active: Safe("Die Partnerschaft ist nicht aktiv."),
    cannot_end: Safe("Die Partnerschaft kann in diesem Status nicht beendet werden."),
    bad_mpn: Safe("Die MPN-ID besteht aus 5 bis 10 Ziffern."),
    bad_name: Safe("Bitte geben Sie einen Namen an (höchstens 200 Zeichen)."),
    bad_email: Safe("Bitte geben Sie eine gültige E-Mail-Adresse an."),
    bad_domain: Safe("Bitte geben Sie eine Domain wie contoso.com an."),
    bad_acceptance: Safe("Das ist keine Annahme-ID (in_…)."),
};

const EN: RT = RT {
    title: Safe("Resellers"),
    intro: Safe(
        "Partnerships as an indirect provider: requests and their state, associated customers, support contacts.",
    ),
    none: Safe("No reseller partnerships."),
    mpn_id: Safe("MPN ID"),
    mpn_hint: Safe("5 to 10 digits."),
    name: Safe("Name"),
    email: Safe("Email address"),
    state: Safe("State"),
    requested_at: Safe("Requested (UTC)"),
    customers: Safe("Customers"),
    support_contacts: Safe("Support contact for"),
    next: Safe("More resellers"),
    request_title: Safe("Request a reseller partnership"),
    request_hint: Safe(
        "The reseller gets an email with a personal link to accept the partnership.",
    ),
    request_button: Safe("Send request"),
    requested: Safe("The request is on its way."),
    associated: Safe("The customer is associated."),
    ended: Safe("The partnership has ended."),
    no_customers: Safe("No customers associated."),
    domain: Safe("Customer's domain"),
    domain_hint: Safe("A customer who accepted an offer (contoso.com)."),
    acceptance_id: Safe("or acceptance ID"),
    acceptance_hint: Safe("Instead of the domain: an acceptance's ID (in_…)."),
    support_contact: Safe("Reseller is the support contact"),
    since: Safe("Since (UTC)"),
    yes: Safe("yes"),
    no: Safe("no"),
    associate_title: Safe("Associate a customer"),
    associate_hint: Safe("Give exactly one: domain or acceptance ID."),
    associate_button: Safe("Associate"),
    associate_inactive: Safe(
        "Customers can be associated once the reseller has accepted the partnership.",
    ),
    end_title: Safe("End the partnership"),
    end_hint: Safe("Associated customers stay; the reseller is then no one's support contact."),
    end_button: Safe("End partnership"),
    withdraw_button: Safe("Withdraw request"),
    back: Safe("Back to the resellers"),
    exists: Safe("There is a partnership or an open request with this reseller already."),
    one_of: Safe("Give exactly one: domain or acceptance ID."),
    no_customer: Safe("There is no customer with an acceptance at this domain."),
    no_acceptance: Safe("There is no acceptance with this ID."),
    not_active: Safe("The partnership is not active."),
    cannot_end: Safe("The partnership cannot be ended in this state."),
    bad_mpn: Safe("An MPN ID has 5 to 10 digits."),
    bad_name: Safe("Please give a name (at most 200 characters)."),
    bad_email: Safe("Please give a valid email address."),
    bad_domain: Safe("Please give a domain like contoso.com."),
    bad_acceptance: Safe("This is not an acceptance ID (in_…)."),
};

pub(crate) fn rtexts(l: Locale) -> &'static RT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// Form errors: (field, message).
pub(crate) type Errors = Vec<(String, String)>;

fn error_of<'a>(errors: &'a Errors, field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, m)| m.as_str())
}

/// The request form's values and errors.
#[derive(Default)]
pub(crate) struct RequestForm {
    pub mpn_id: String,
    pub name: String,
    pub email: String,
    pub errors: Errors,
}

impl RequestForm {
    fn error(&self, field: &str) -> Option<&str> {
        error_of(&self.errors, field)
    }
}

/// The associate form's values and errors.
#[derive(Default)]
pub(crate) struct AssociateForm {
    pub domain: String,
    pub acceptance_id: String,
    pub support_contact: bool,
    pub errors: Errors,
}

impl AssociateForm {
    fn error(&self, field: &str) -> Option<&str> {
        error_of(&self.errors, field)
    }
}

struct ResellerLine {
    mpn_id: String,
    name: String,
    email: String,
    state: String,
    raw_state: String,
    requested_at: String,
    customers: usize,
    support_contacts: usize,
}

impl ResellerLine {
    fn new(l: Locale, r: &ResellerView) -> ResellerLine {
        ResellerLine {
            mpn_id: r.reseller.mpn_id.as_str().to_string(),
            name: r.reseller.name.clone(),
            email: r.reseller.email.as_str().to_string(),
            state: state_label(l, &r.state),
            raw_state: r.state.clone(),
            requested_at: when(r.reseller.created_at),
            customers: r.customers.len(),
            support_contacts: r.customers.iter().filter(|c| c.support_contact).count(),
        }
    }
}

/// A flash message after a write (`?done=…`).
pub(crate) fn done_text(l: Locale, done: &str) -> Option<&'static str> {
    let x = rtexts(l);
    match done {
        "request" => Some(x.requested.0),
        "associate" => Some(x.associated.0),
        "end" => Some(x.ended.0),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "portal/resellers/list.html")]
struct ListPage<'a> {
    t: &'static PT,
    x: &'static RT,
    title: &'static str,
    nav: &'a Nav,
    lines: Vec<ResellerLine>,
    next: Option<&'a str>,
    form: &'a RequestForm,
    /// The request form's CSRF token; None: the user may not request (not an administrator).
    csrf: Option<&'a str>,
}

/// The partnerships (a page), and the request form for administrators.
pub(crate) fn list_page(
    l: Locale,
    nav: &Nav,
    resellers: &[ResellerView],
    next: Option<&str>,
    form: &RequestForm,
    csrf: Option<&str>,
) -> String {
    let x = rtexts(l);
    render(&ListPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        lines: resellers.iter().map(|r| ResellerLine::new(l, r)).collect(),
        next,
        form,
        csrf,
    })
}

struct CustomerLine {
    domain: String,
    acceptance_id: String,
    support_contact: bool,
    since: String,
}

/// The writes an administrator sees on a reseller's page: the forms' actions and tokens.
pub(crate) struct Writes<'a> {
    pub associate_action: &'a str,
    pub associate_csrf: &'a str,
    pub end_action: &'a str,
    pub end_csrf: &'a str,
}

#[derive(Template)]
#[template(path = "portal/resellers/reseller.html")]
struct ResellerPage<'a> {
    t: &'static PT,
    x: &'static RT,
    title: &'a str,
    nav: &'a Nav,
    r: ResellerLine,
    customers: Vec<CustomerLine>,
    done: Option<&'a str>,
    writes: Option<Writes<'a>>,
    active: bool,
    /// May be ended (or withdrawn while requested).
    endable: bool,
    requested: bool,
    form: &'a AssociateForm,
    end_error: Option<&'a str>,
}

/// One reseller: its partnership, customers, and (administrators) the associate and end
/// forms with their errors.
pub(crate) fn reseller_page(
    l: Locale,
    nav: &Nav,
    r: &ResellerView,
    done: Option<&str>,
    writes: Option<Writes<'_>>,
    form: &AssociateForm,
    end_error: Option<&str>,
) -> String {
    let x = rtexts(l);
    render(&ResellerPage {
        t: texts(l),
        x,
        title: &r.reseller.name,
        nav,
        r: ResellerLine::new(l, r),
        customers: r
            .customers
            .iter()
            .map(|c| CustomerLine {
                domain: c.domain.clone(),
                acceptance_id: c.acceptance_id.clone().unwrap_or_default(),
                support_contact: c.support_contact,
                since: when(c.created_at),
            })
            .collect(),
        done,
        writes,
        active: r.state == "active",
        endable: matches!(r.state.as_str(), "created" | "request_sent" | "active"),
        requested: r.state != "active",
        form,
        end_error,
    })
}

#[cfg(test)]
mod tests {
    use super::super::customers::tests::{check, nav};
    use super::*;
    use crate::core::domain::{EmailAddress, InstanceId, MpnId, Timestamp};
    use crate::core::offer::{ResellerCustomer, ResellerRow};

    const EVIL: &str = "\"><script>x</script>";

    fn reseller(state: &str) -> ResellerView {
        ResellerView {
            reseller: ResellerRow {
                mpn_id: MpnId::parse("1234567").unwrap(),
                instance_id: InstanceId::parse("in_r1").unwrap(),
                name: EVIL.into(),
                email: EmailAddress::parse("p@reseller.example").unwrap(),
                created_at: Timestamp(0),
            },
            state: state.into(),
            customers: vec![ResellerCustomer {
                mpn_id: "1234567".into(),
                domain: EVIL.into(),
                acceptance_id: Some(EVIL.into()),
                support_contact: true,
                partnership: state.into(),
                created_at: Timestamp(0),
            }],
        }
    }

    #[test]
    fn reseller_pages_escape_label_and_speak_the_language() {
        for l in Locale::ALL {
            let nav = nav(l);
            let errors: Errors = ["mpn_id", "name", "email", "domain", "acceptance_id"]
                .iter()
                .map(|f| (f.to_string(), EVIL.to_string()))
                .collect();
            let rf = RequestForm {
                mpn_id: EVIL.into(),
                name: EVIL.into(),
                email: EVIL.into(),
                errors: errors.clone(),
            };
            let af = AssociateForm {
                domain: EVIL.into(),
                acceptance_id: EVIL.into(),
                support_contact: true,
                errors,
            };
            let writes = || {
                Some(Writes {
                    associate_action: "/portal/resellers/1234567/customers",
                    associate_csrf: "c1",
                    end_action: "/portal/resellers/1234567/end",
                    end_csrf: "c2",
                })
            };
            let all = [reseller("active"), reseller("request_sent")];
            let pages = [
                (
                    "list",
                    list_page(l, &nav, &all, Some("1234567"), &rf, Some("c")),
                ),
                (
                    "list_viewer",
                    list_page(l, &nav, &[], None, &RequestForm::default(), None),
                ),
                (
                    "reseller",
                    reseller_page(l, &nav, &all[0], Some(EVIL), writes(), &af, Some(EVIL)),
                ),
                (
                    "requested",
                    reseller_page(
                        l,
                        &nav,
                        &all[1],
                        None,
                        writes(),
                        &AssociateForm::default(),
                        None,
                    ),
                ),
                (
                    "reseller_viewer",
                    reseller_page(
                        l,
                        &nav,
                        &all[0],
                        None,
                        None,
                        &AssociateForm::default(),
                        None,
                    ),
                ),
            ];
            for (name, html) in pages {
                check(l, name, &html);
            }
        }
        let de = list_page(
            Locale::De,
            &nav(Locale::De),
            &[reseller("active")],
            None,
            &RequestForm::default(),
            Some("c"),
        );
        assert!(de.contains("Reseller-Partnerschaft anfragen") && de.contains("aktiv"));
        let en = reseller_page(
            Locale::En,
            &nav(Locale::En),
            &reseller("active"),
            None,
            None,
            &AssociateForm::default(),
            None,
        );
        assert!(
            en.contains("Support contact")
                && !en.contains("id=\"associate-form\"")
                && !en.contains("id=\"end-form\"")
        );
    }
}
