//! The customer's pages (German or English): the offer with its accept form, the pages that
//! say a link is unknown, closed or expired, the page to remove the partner's admin roles and
//! the reseller's request page. Plain HTML that works without JavaScript, labelled for screen
//! readers, one column on a phone.
//!
//! The HTML is in askama templates (`src/web/templates/`, checked at compile time): one
//! layout (`base.html`) and one template per page. Here are only the texts and the view
//! models. Templates escape every value by default ([`HtmlEntities`]); the texts of this
//! file are [`Text`] (trusted, written out as they are) — nothing from outside may become
//! one. Pure: no HTTP, no I/O.

use std::fmt;

use askama::Template;
use askama::filters::{Escaper, Safe};

use crate::core::config::PartnerSettings;
use crate::core::domain::{AdminRole, Locale, OfferKind, Timestamp};
use crate::core::offer::{OfferLine, OfferView};

/// The pages' HTML escaper (askama.toml names it for `.html` templates): `& < > " '` become
/// `&amp; &lt; &gt; &quot; &#39;`, for element content and quoted attribute values.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlEntities;

impl Escaper for HtmlEntities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, s: &str) -> fmt::Result {
        let mut done = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            dest.write_str(&s[done..i])?;
            dest.write_str(entity)?;
            done = i + 1;
        }
        dest.write_str(&s[done..])
    }
}

/// [`HtmlEntities`] for HTML built outside the templates (the unsubscribe footer of
/// campaign emails).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    // Writing to a String cannot fail.
    let _ = HtmlEntities.write_escaped_str(&mut o, s);
    o
}

/// A text of this file: trusted, so the templates write it out unescaped.
type Text = Safe<&'static str>;

/// The best of de/en for an `Accept-Language` header (quality values honoured); `fallback`
/// when it names neither.
pub fn negotiate(header: Option<&str>, fallback: Locale) -> Locale {
    let Some(h) = header else { return fallback };
    let mut best: Option<(f32, usize, Locale)> = None;
    for (i, part) in h.split(',').enumerate().take(20) {
        let mut it = part.split(';');
        let tag = it.next().unwrap_or("").trim();
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        if let Some(l) = Locale::parse(tag) {
            let better = match best {
                None => true,
                Some((bq, bi, _)) => q > bq || (q == bq && i < bi),
            };
            if better {
                best = Some((q, i, l));
            }
        }
    }
    best.map(|b| b.2).unwrap_or(fallback)
}

struct T {
    lang: Text,
    offer_title_trial: Text,
    offer_title_purchase: Text,
    offer_title_admin: Text,
    from_partner: Text,
    authorised: Text,
    phone: Text,
    email: Text,
    offer_id: Text,
    valid_until: Text,
    products: Text,
    licences: Text,
    trial_note: Text,
    billing: Text,
    trial_terms: Text,
    customer: Text,
    organisation: Text,
    domain: Text,
    domain_hint: Text,
    admin_email: Text,
    admin_email_hint: Text,
    da_legend: Text,
    da_full: Text,
    da_limited: Text,
    da_checkbox_full: Text,
    da_checkbox_limited: Text,
    da_optional: Text,
    da_standalone_note: Text,
    accept: Text,
    agreement_before: Text,
    agreement_link: Text,
    agreement_after: Text,
    accept_note: Text,
    errors_title: Text,
    not_found_title: Text,
    not_found_text: Text,
    closed_title: Text,
    expired_text: Text,
    withdrawn_text: Text,
    forbidden_title: Text,
    forbidden_text: Text,
    error_title: Text,
    error_text: Text,
    remove_title: Text,
    remove_text: Text,
    remove_keeps: Text,
    remove_button: Text,
    removed_title: Text,
    removed_text: Text,
    remove_gone_text: Text,
    reseller_title: Text,
    reseller_text: Text,
    reseller_button: Text,
    reseller_done_title: Text,
    reseller_done_text: Text,
    reseller_gone_text: Text,
    state_word: Text,
    state_expired: Text,
    state_withdrawn: Text,
}

const DE: T = T {
    lang: Safe("de"),
    offer_title_trial: Safe("Einladung zum Testen"),
    offer_title_purchase: Safe("Kaufangebot"),
    offer_title_admin: Safe("Angebot für die delegierte Administration"),
    from_partner: Safe("Ein Angebot von"),
    authorised: Safe("autorisierter Partner von {provider}"),
    phone: Safe("Telefon"),
    email: Safe("E-Mail"),
    offer_id: Safe("Angebots-ID"),
    valid_until: Safe("Gültig bis"),
    products: Safe("Angebotene Abonnements"),
    licences: Safe("Benutzerlizenzen"),
    trial_note: Safe("Testabonnement"),
    billing: Safe(
        "Die Abrechnung erfolgt direkt durch {provider}, nicht durch den Partner. Sie bestimmen die Anzahl der Lizenzen selbst und können sie später ändern.",
    ),
    trial_terms: Safe(
        "Sie erhalten ein Testabonnement von {provider}: kostenlos und für 30 Tage. Es geht danach nicht von selbst in ein kostenpflichtiges Abonnement über; es wird nichts berechnet.",
    ),
    customer: Safe("Ihre Organisation"),
    organisation: Safe("Name der Organisation"),
    domain: Safe("Domäne"),
    domain_hint: Safe("zum Beispiel contoso.com"),
    admin_email: Safe("E-Mail-Adresse des Administrators"),
    admin_email_hint: Safe(
        "eine Adresse in Ihrer Domäne, zum Beispiel admin@contoso.com: Dorthin senden wir den Link, mit dem Sie die Annahme bestätigen",
    ),
    da_legend: Safe("Delegierte Administration (optional)"),
    da_full: Safe(
        "Vollständige Verwaltung: Der Partner erhält Rechte vergleichbar mit einem globalen Administrator. Er kann z. B. Benutzer anlegen, Kennwörter zurücksetzen, Domänen hinzufügen und Abonnements für Sie verwalten.",
    ),
    da_limited: Safe(
        "Eingeschränkte Verwaltung: Der Partner erhält Rechte vergleichbar mit einem Kennwortadministrator (Helpdesk). Er kann z. B. Kennwörter zurücksetzen und Benutzer unterstützen; Käufe, Domänen und Abonnements bleiben bei Ihnen.",
    ),
    da_checkbox_full: Safe("Ich erteile dem Partner die vollständige Verwaltung"),
    da_checkbox_limited: Safe("Ich erteile dem Partner die eingeschränkte Verwaltung"),
    da_optional: Safe(
        "Sie können das Angebot auch ohne delegierte Administration annehmen und die Rechte jederzeit wieder entziehen.",
    ),
    da_standalone_note: Safe(
        "Mit der Annahme erteilen Sie dem Partner diese Administratorrechte für Ihre bestehende Organisation. Sie können sie jederzeit wieder entziehen.",
    ),
    accept: Safe("Angebot annehmen"),
    agreement_before: Safe("Mit der Annahme stimmen Sie dem "),
    agreement_link: Safe("Kundenvertrag von {provider}"),
    agreement_after: Safe(" zu."),
    accept_note: Safe(
        "Nach der Annahme senden wir einen Bestätigungslink an die E-Mail-Adresse des Administrators. Erst mit der Bestätigung gilt die Annahme; danach geht es weiter zur Registrierungsseite von {provider}.",
    ),
    errors_title: Safe("Bitte prüfen Sie Ihre Angaben:"),
    not_found_title: Safe("Angebot nicht gefunden"),
    not_found_text: Safe(
        "Dieser Link ist ungültig oder unvollständig. Bitte verwenden Sie den vollständigen Link aus Ihrer E-Mail oder wenden Sie sich an den Absender.",
    ),
    closed_title: Safe("Angebot nicht mehr verfügbar"),
    expired_text: Safe(
        "Dieses Angebot ist abgelaufen und kann nicht mehr angenommen werden. Bitte wenden Sie sich an den Partner, wenn Sie ein neues Angebot wünschen.",
    ),
    withdrawn_text: Safe(
        "Dieses Angebot wurde vom Partner zurückgezogen und kann nicht mehr angenommen werden.",
    ),
    forbidden_title: Safe("Formular abgelaufen"),
    forbidden_text: Safe(
        "Das Formular konnte nicht überprüft werden (z. B. weil Cookies blockiert sind oder die Seite zu alt ist). Bitte laden Sie die Seite neu und senden Sie das Formular erneut.",
    ),
    error_title: Safe("Vorübergehender Fehler"),
    error_text: Safe(
        "Ihre Anfrage konnte gerade nicht bearbeitet werden. Bitte versuchen Sie es in einigen Minuten erneut.",
    ),
    remove_title: Safe("Administratorrechte des Partners entfernen"),
    remove_text: Safe(
        "Hier können Sie die delegierten Administratorrechte entfernen, die Sie dem Partner erteilt haben.",
    ),
    remove_keeps: Safe(
        "Der Partner bleibt Ihr Abonnementberater; Ihre Abonnements sind nicht betroffen.",
    ),
    remove_button: Safe("Administratorrechte entfernen"),
    removed_title: Safe("Administratorrechte entfernt"),
    removed_text: Safe(
        "Die Administratorrechte des Partners sind beendet. Der Partner wurde benachrichtigt.",
    ),
    remove_gone_text: Safe("Für diese Beziehung bestehen keine Administratorrechte mehr."),
    reseller_title: Safe("Partnerschaftsanfrage eines indirekten Anbieters"),
    reseller_text: Safe(
        "bittet Sie als Wiederverkäufer um eine Partnerschaft. Danach kann der Anbieter Kunden in Ihrem Namen hinzufügen, Sie Kunden und Abonnements zuordnen und Sie als Supportkontakt benennen.",
    ),
    reseller_button: Safe("Partnerschaft annehmen"),
    reseller_done_title: Safe("Partnerschaft angenommen"),
    reseller_done_text: Safe("Die Partnerschaft ist aktiv. Der Anbieter wurde benachrichtigt."),
    reseller_gone_text: Safe("Diese Anfrage kann nicht mehr angenommen werden."),
    state_word: Safe("Status"),
    state_expired: Safe("abgelaufen"),
    state_withdrawn: Safe("zurückgezogen"),
};

const EN: T = T {
    lang: Safe("en"),
    offer_title_trial: Safe("Trial invitation"),
    offer_title_purchase: Safe("Purchase offer"),
    offer_title_admin: Safe("Delegated administration offer"),
    from_partner: Safe("An offer from"),
    authorised: Safe("an authorised partner of {provider}"),
    phone: Safe("Phone"),
    email: Safe("Email"),
    offer_id: Safe("Offer ID"),
    valid_until: Safe("Valid until"),
    products: Safe("Subscriptions offered"),
    licences: Safe("User licences"),
    trial_note: Safe("Trial subscription"),
    billing: Safe(
        "You are billed directly by {provider}, not by the partner. You decide the number of licences and can change it later.",
    ),
    trial_terms: Safe(
        "You get one trial subscription from {provider}: free of charge, for 30 days. It does not turn into a paid subscription by itself afterwards; nothing is billed.",
    ),
    customer: Safe("Your organisation"),
    organisation: Safe("Organisation name"),
    domain: Safe("Domain"),
    domain_hint: Safe("for example contoso.com"),
    admin_email: Safe("Administrator's email address"),
    admin_email_hint: Safe(
        "an address at your domain, for example admin@contoso.com: we send the link that confirms the acceptance there",
    ),
    da_legend: Safe("Delegated administration (optional)"),
    da_full: Safe(
        "Full administration: the partner gets rights comparable to a global administrator, for example to add users, reset passwords, add domains and manage subscriptions for you.",
    ),
    da_limited: Safe(
        "Limited administration: the partner gets rights comparable to a password (helpdesk) administrator, for example to reset passwords and support your users; purchases, domains and subscriptions stay with you.",
    ),
    da_checkbox_full: Safe("I grant the partner full administration"),
    da_checkbox_limited: Safe("I grant the partner limited administration"),
    da_optional: Safe(
        "You may accept the offer without delegated administration, and you can remove the rights at any time.",
    ),
    da_standalone_note: Safe(
        "By accepting, you grant the partner these administrator rights for your existing organisation. You can remove them at any time.",
    ),
    accept: Safe("Accept offer"),
    agreement_before: Safe("By accepting, you agree to the "),
    agreement_link: Safe("customer agreement of {provider}"),
    agreement_after: Safe("."),
    accept_note: Safe(
        "After accepting, we send a confirmation link to the administrator's email address. The acceptance counts once it is confirmed; then you continue to the sign-up page of {provider}.",
    ),
    errors_title: Safe("Please check what you entered:"),
    not_found_title: Safe("Offer not found"),
    not_found_text: Safe(
        "This link is invalid or incomplete. Please use the complete link from your email, or contact the sender.",
    ),
    closed_title: Safe("Offer no longer available"),
    expired_text: Safe(
        "This offer has expired and can no longer be accepted. Please contact the partner if you would like a new offer.",
    ),
    withdrawn_text: Safe("The partner has withdrawn this offer; it can no longer be accepted."),
    forbidden_title: Safe("Form expired"),
    forbidden_text: Safe(
        "The form could not be verified (for example because cookies are blocked or the page is too old). Please reload the page and send the form again.",
    ),
    error_title: Safe("Temporary error"),
    error_text: Safe(
        "Your request could not be processed just now. Please try again in a few minutes.",
    ),
    remove_title: Safe("Remove the partner's administrator rights"),
    remove_text: Safe(
        "Here you can remove the delegated administrator rights you granted to the partner.",
    ),
    remove_keeps: Safe(
        "The partner remains your subscription advisor; your subscriptions are not affected.",
    ),
    remove_button: Safe("Remove administrator rights"),
    removed_title: Safe("Administrator rights removed"),
    removed_text: Safe(
        "The partner's administrator rights have ended. The partner has been notified.",
    ),
    remove_gone_text: Safe("There are no administrator rights left in this relationship."),
    reseller_title: Safe("Partnership request from an indirect provider"),
    reseller_text: Safe(
        "asks you, as a reseller, for a partnership. Then the provider can add customers on your behalf, associate you with customers and subscriptions, and name you as support contact.",
    ),
    reseller_button: Safe("Accept partnership"),
    reseller_done_title: Safe("Partnership accepted"),
    reseller_done_text: Safe("The partnership is active. The provider has been notified."),
    reseller_gone_text: Safe("This request can no longer be accepted."),
    state_word: Safe("State"),
    state_expired: Safe("expired"),
    state_withdrawn: Safe("withdrawn"),
};

fn t(l: Locale) -> &'static T {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// Renders a page; on an error (none is expected: every value is a string or a number) a
/// fixed plain page, and the error in the log.
fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a customer page failed to render");
        FALLBACK.to_string()
    })
}

/// The page shown when a page cannot be rendered: static, in both languages.
const FALLBACK: &str = include_str!("templates/fallback.html");

/// A text around the provider's name: `before`, the name (escaped), `after`; a text without
/// `{provider}` is all `before`.
struct Split {
    before: Text,
    after: Option<Text>,
}

fn split(text: &Text) -> Split {
    match text.0.split_once("{provider}") {
        Some((before, after)) => Split {
            before: Safe(before),
            after: Some(Safe(after)),
        },
        None => Split {
            before: Safe(text.0),
            after: None,
        },
    }
}

/// The partner block (`partner.html`).
struct PartnerView<'a> {
    p: &'a PartnerSettings,
    authorised: Split,
}

fn partner_view(l: Locale, p: &PartnerSettings) -> PartnerView<'_> {
    PartnerView {
        p,
        authorised: split(&t(l).authorised),
    }
}

fn date(ts: Timestamp, l: Locale) -> String {
    crate::email::format_date(ts, l)
}

/// What the customer typed, to show the form again after an error.
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    pub organisation: String,
    pub domain: String,
    pub admin_email: String,
    pub licences: Vec<(String, String)>,
    pub delegated_admin: bool,
}

fn title_of(l: Locale, kind: OfferKind) -> &'static str {
    let t = t(l);
    match kind {
        OfferKind::Trial => t.offer_title_trial.0,
        OfferKind::Purchase => t.offer_title_purchase.0,
        OfferKind::DelegatedAdmin => t.offer_title_admin.0,
    }
}

fn role_text(l: Locale, r: AdminRole) -> Text {
    match r {
        AdminRole::Full => Safe(t(l).da_full.0),
        AdminRole::Limited => Safe(t(l).da_limited.0),
    }
}

/// A line of `products.html`.
enum ProductRow<'a> {
    /// A trial subscription (no licence count).
    Trial {
        name: &'a str,
    },
    Fixed {
        name: &'a str,
        licences: u32,
    },
    /// A licence count the customer sets (a purchase offer's form).
    Editable {
        name: &'a str,
        id: String,
        field: String,
        value: String,
        min: u32,
        max: u32,
        error: Option<&'a str>,
    },
}

fn product_rows<'a>(
    lines: &'a [OfferLine],
    limits: &dyn Fn(&OfferLine) -> (u32, u32),
    editable: bool,
    v: &FormValues,
    errors: &'a [(String, String)],
) -> Vec<ProductRow<'a>> {
    lines
        .iter()
        .map(|line| match line.licences {
            None => ProductRow::Trial { name: &line.name },
            Some(n) if editable => {
                let field = format!("licences.{}", line.id);
                let value = v
                    .licences
                    .iter()
                    .find(|(p, _)| p == line.id.as_str())
                    .map(|(_, x)| x.clone())
                    .unwrap_or_else(|| n.to_string());
                let (min, max) = limits(line);
                ProductRow::Editable {
                    name: &line.name,
                    id: format!("licences-{}", line.id),
                    error: field_error(errors, &field),
                    field,
                    value,
                    min,
                    max,
                }
            }
            Some(n) => ProductRow::Fixed {
                name: &line.name,
                licences: n,
            },
        })
        .collect()
}

fn field_error<'a>(errors: &'a [(String, String)], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, m)| m.as_str())
}

/// A customer field of the offer form.
struct Field<'a> {
    name: &'static str,
    label: Text,
    kind: &'static str,
    hint: Option<Text>,
    value: &'a str,
    autocomplete: &'static str,
    error: Option<&'a str>,
}

/// The delegated-admin part of the offer form.
struct DelegatedAdmin {
    /// A delegated-admin offer on its own: granted by accepting, no checkbox.
    standalone: bool,
    role: Text,
    extension: Text,
    checked: bool,
    label: Text,
}

#[derive(Template)]
#[template(path = "offer.html")]
struct OfferPage<'a> {
    t: &'static T,
    title: String,
    heading: &'static str,
    partner: PartnerView<'a>,
    /// (anchor, message) per refused field.
    errors: Vec<(String, &'a str)>,
    action: &'a str,
    csrf: &'a str,
    offer_id: &'a str,
    valid_until: String,
    message: Option<Vec<&'a str>>,
    products: Vec<ProductRow<'a>>,
    terms: Split,
    fields: Vec<Field<'a>>,
    delegated_admin: Option<DelegatedAdmin>,
    note: Split,
    /// The provider's customer agreement's link text, around the provider's name.
    agreement: Split,
}

/// The offer page with its accept form. `errors` are (field, message) pairs shown at the top
/// and at their fields; `action` is the form's own path.
#[allow(clippy::too_many_arguments)]
pub fn offer_page(
    l: Locale,
    partner: &PartnerSettings,
    o: &OfferView,
    limits: &dyn Fn(&OfferLine) -> (u32, u32),
    action: &str,
    csrf: &str,
    v: &FormValues,
    errors: &[(String, String)],
) -> String {
    let t = t(l);
    let offer = &o.offer;
    let heading = title_of(l, offer.kind);
    // A trial is one free trial subscription: no licence counts, nothing billed.
    let terms = if offer.kind == OfferKind::Trial {
        &t.trial_terms
    } else {
        &t.billing
    };
    let fields = [
        (
            "organisation",
            &t.organisation,
            "text",
            None,
            &v.organisation,
            "organization",
        ),
        (
            "domain",
            &t.domain,
            "text",
            Some(&t.domain_hint),
            &v.domain,
            "off",
        ),
        (
            "admin_email",
            &t.admin_email,
            "email",
            Some(&t.admin_email_hint),
            &v.admin_email,
            "email",
        ),
    ]
    .into_iter()
    .map(|(name, label, kind, hint, value, autocomplete)| Field {
        name,
        label: Safe(label.0),
        kind,
        hint: hint.map(|h| Safe(h.0)),
        value,
        autocomplete,
        error: field_error(errors, name),
    })
    .collect();
    let delegated_admin = offer.delegated_admin.map(|role| DelegatedAdmin {
        standalone: offer.kind == OfferKind::DelegatedAdmin,
        role: role_text(l, role),
        extension: Safe(auto_extend_text(
            l,
            offer.auto_extend && role == AdminRole::Limited,
        )),
        checked: v.delegated_admin,
        label: match role {
            AdminRole::Full => Safe(t.da_checkbox_full.0),
            AdminRole::Limited => Safe(t.da_checkbox_limited.0),
        },
    });
    let note = match (offer.kind, l) {
        (OfferKind::DelegatedAdmin, Locale::De) => split(&Safe(
            "Nach der Annahme senden wir einen Bestätigungslink an die E-Mail-Adresse des Administrators. Erst mit der Bestätigung erhält der Partner die Rechte.",
        )),
        (OfferKind::DelegatedAdmin, Locale::En) => split(&Safe(
            "After accepting, we send a confirmation link to the administrator's email address. The partner gets the rights only once it is confirmed.",
        )),
        _ => split(&t.accept_note),
    };
    render(&OfferPage {
        t,
        title: format!("{heading} {}", offer.offer_id),
        heading,
        partner: partner_view(l, partner),
        errors: errors
            .iter()
            .map(|(f, m)| (field_anchor(f), m.as_str()))
            .collect(),
        action,
        csrf,
        offer_id: offer.offer_id.as_str(),
        valid_until: date(offer.expires_at, l),
        message: offer.message.as_deref().map(|m| m.split('\n').collect()),
        products: product_rows(
            &offer.products,
            limits,
            offer.kind == OfferKind::Purchase,
            v,
            errors,
        ),
        terms: split(terms),
        fields,
        delegated_admin,
        note,
        agreement: split(&t.agreement_link),
    })
}

/// What happens at the end of the relationship, as the partner chose it on the offer.
fn auto_extend_text(l: Locale, auto_extend: bool) -> &'static str {
    match (l, auto_extend) {
        (Locale::De, true) => {
            "Die Beziehung ist befristet und wird an ihrem Ende automatisch um jeweils 180 Tage verlängert, solange Sie die Rechte nicht entziehen."
        }
        (Locale::De, false) => {
            "Die Beziehung ist befristet und endet an ihrem Ende; sie wird nicht automatisch verlängert."
        }
        (Locale::En, true) => {
            "The relationship is limited in time and is extended automatically by 180 days at a time at its end, unless you remove the rights."
        }
        (Locale::En, false) => {
            "The relationship is limited in time and ends then; it is not extended automatically."
        }
    }
}

fn field_anchor(field: &str) -> String {
    field.replace('.', "-")
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    t: &'static T,
    title: &'static str,
}

pub fn not_found_page(l: Locale) -> String {
    let t = t(l);
    render(&NotFoundPage {
        t,
        title: t.not_found_title.0,
    })
}

#[derive(Template)]
#[template(path = "unsubscribe_confirm.html")]
struct UnsubscribeConfirmPage<'a> {
    t: &'static T,
    title: &'static str,
    text: Text,
    button: Text,
    email: &'a str,
    action: &'a str,
}

/// The unsubscribe page of a campaign recipient: one button (the one-click POST target).
pub fn unsubscribe_confirm(l: Locale, email: &str, action: &str) -> String {
    let (title, text, button) = match l {
        Locale::De => (
            "Abmelden",
            "Keine weiteren Einladungen an diese Adresse senden:",
            "Abmelden",
        ),
        Locale::En => (
            "Unsubscribe",
            "Send no further invitations to this address:",
            "Unsubscribe",
        ),
    };
    render(&UnsubscribeConfirmPage {
        t: t(l),
        title,
        text: Safe(text),
        button: Safe(button),
        email,
        action,
    })
}

#[derive(Template)]
#[template(path = "unsubscribe_done.html")]
struct UnsubscribeDonePage<'a> {
    t: &'static T,
    title: &'static str,
    text: Text,
    email: &'a str,
}

/// After unsubscribing.
pub fn unsubscribe_done(l: Locale, email: &str) -> String {
    let (title, text) = match l {
        Locale::De => (
            "Abgemeldet",
            "Diese Adresse erhält keine weiteren Einladungen:",
        ),
        Locale::En => (
            "Unsubscribed",
            "This address will receive no further invitations:",
        ),
    };
    render(&UnsubscribeDonePage {
        t: t(l),
        title,
        text: Safe(text),
        email,
    })
}

#[derive(Template)]
#[template(path = "closed.html")]
struct ClosedPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    text: Text,
    offer_id: &'a str,
    state: Text,
}

/// An expired or withdrawn offer (410).
pub fn closed_page(l: Locale, partner: &PartnerSettings, o: &OfferView, state: &str) -> String {
    let t = t(l);
    // An offer closes by withdrawal or by expiry; the state is shown in the page's language.
    let (text, state) = if state == "withdrawn" {
        (&t.withdrawn_text, &t.state_withdrawn)
    } else {
        (&t.expired_text, &t.state_expired)
    };
    render(&ClosedPage {
        t,
        title: t.closed_title.0,
        partner: partner_view(l, partner),
        text: Safe(text.0),
        offer_id: o.offer.offer_id.as_str(),
        state: Safe(state.0),
    })
}

/// Why a form post was refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefusal {
    /// No cookie, another page's or another browser's token.
    Invalid,
    /// The form was shown too long ago.
    Expired,
    /// The browser sent the form from another address than the configured public one.
    Origin,
}

#[derive(Template)]
#[template(path = "forbidden.html")]
struct ForbiddenPage {
    t: &'static T,
    title: &'static str,
    text: Text,
}

pub fn forbidden_page(l: Locale, why: FormRefusal) -> String {
    let t = t(l);
    let text = match (why, l) {
        (FormRefusal::Invalid, _) => t.forbidden_text.0,
        (FormRefusal::Expired, Locale::De) => {
            "Das Formular ist abgelaufen: Es gilt nur eine begrenzte Zeit, nachdem die Seite geladen wurde. Bitte laden Sie die Seite neu und senden Sie das Formular erneut."
        }
        (FormRefusal::Expired, Locale::En) => {
            "The form has expired: it is only valid for a limited time after the page was loaded. Please reload the page and send the form again."
        }
        (FormRefusal::Origin, Locale::De) => {
            "Das Formular wurde von einer anderen Adresse gesendet als der, unter der dieser Dienst eingerichtet ist (die Adresse stimmt nicht überein). Bitte öffnen Sie den Link aus Ihrer E-Mail unverändert. Der Betreiber findet Einzelheiten im Protokoll."
        }
        (FormRefusal::Origin, Locale::En) => {
            "The form was sent from another address than the one this service is set up for (the address does not match). Please open the link from your email as it is. The operator finds details in the log."
        }
    };
    render(&ForbiddenPage {
        t,
        title: t.forbidden_title.0,
        text: Safe(text),
    })
}

#[derive(Template)]
#[template(path = "rate_limited.html")]
struct RateLimitedPage {
    t: &'static T,
    title: &'static str,
    text: Text,
}

/// Over a rate limit (429): nothing was recorded or sent.
pub fn rate_limited_page(l: Locale) -> String {
    let (title, text) = match l {
        Locale::De => (
            "Zu viele Anfragen",
            "Von Ihrer Adresse oder für diese E-Mail-Adresse bzw. Domäne kamen in kurzer Zeit zu viele Anfragen. Es wurde nichts gespeichert und keine E-Mail gesendet. Bitte versuchen Sie es später erneut.",
        ),
        Locale::En => (
            "Too many requests",
            "Too many requests came from your address, or for this email address or domain, in a short time. Nothing was recorded and no email was sent. Please try again later.",
        ),
    };
    render(&RateLimitedPage {
        t: t(l),
        title,
        text: Safe(text),
    })
}

#[derive(Template)]
#[template(path = "check_mail.html")]
struct CheckMailPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    before: Text,
    admin_email: &'a str,
    after: Split,
    offer_id: &'a str,
}

/// After the accept form: the confirmation link is on its way to the admin address.
pub fn check_mail_page(
    l: Locale,
    partner: &PartnerSettings,
    o: &OfferView,
    admin_email: &str,
) -> String {
    let standalone = o.offer.kind == OfferKind::DelegatedAdmin;
    let (title, before, after) = match (l, standalone) {
        (Locale::De, false) => (
            "Bitte bestätigen Sie Ihre Annahme",
            "Fast geschafft: Wir haben einen Bestätigungslink gesendet an",
            "Öffnen Sie den Link in dieser E-Mail, um die Annahme zu bestätigen; danach geht es weiter zur Registrierungsseite von {provider}. Erst mit der Bestätigung gilt die Annahme. Kommt keine E-Mail an, prüfen Sie bitte den Spam-Ordner oder wenden Sie sich an den Partner.",
        ),
        (Locale::De, true) => (
            "Bitte bestätigen Sie Ihre Annahme",
            "Fast geschafft: Wir haben einen Bestätigungslink gesendet an",
            "Öffnen Sie den Link in dieser E-Mail, um die Annahme zu bestätigen. Erst mit der Bestätigung erhält der Partner die Administratorrechte. Kommt keine E-Mail an, prüfen Sie bitte den Spam-Ordner oder wenden Sie sich an den Partner.",
        ),
        (Locale::En, false) => (
            "Please confirm your acceptance",
            "Almost done: we have sent a confirmation link to",
            "Open the link in that email to confirm the acceptance; you then continue to the sign-up page of {provider}. The acceptance counts once it is confirmed. If no email arrives, please check your spam folder or contact the partner.",
        ),
        (Locale::En, true) => (
            "Please confirm your acceptance",
            "Almost done: we have sent a confirmation link to",
            "Open the link in that email to confirm the acceptance. The partner gets the administrator rights only once it is confirmed. If no email arrives, please check your spam folder or contact the partner.",
        ),
    };
    render(&CheckMailPage {
        t: t(l),
        title,
        partner: partner_view(l, partner),
        before: Safe(before),
        admin_email,
        after: split(&Safe(after)),
        offer_id: o.offer.offer_id.as_str(),
    })
}

#[derive(Template)]
#[template(path = "already_accepted.html")]
struct AlreadyAcceptedPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    /// The text; with a domain, the part before it, and `after` the rest.
    before: Text,
    domain: Option<&'a str>,
    after: Text,
    offer_id: &'a str,
}

/// The offer was already accepted (and confirmed) for this domain (409).
pub fn already_accepted_page(
    l: Locale,
    partner: &PartnerSettings,
    o: &OfferView,
    domain: &str,
) -> String {
    let (title, before, after) = match (l, domain.is_empty()) {
        (Locale::De, false) => (
            "Angebot bereits angenommen",
            "Dieses Angebot wurde für die Domäne ",
            " bereits angenommen und bestätigt. Es wurde nichts Neues gespeichert. Wenn Sie Fragen dazu haben oder etwas ändern möchten, wenden Sie sich bitte an den Partner:",
        ),
        (Locale::De, true) => (
            "Angebot bereits angenommen",
            "Dieses Angebot wurde für Ihre Domäne bereits angenommen und bestätigt. Es wurde nichts Neues gespeichert. Wenn Sie Fragen dazu haben oder etwas ändern möchten, wenden Sie sich bitte an den Partner:",
            "",
        ),
        (Locale::En, false) => (
            "Offer already accepted",
            "This offer has already been accepted and confirmed for the domain ",
            ". Nothing new was recorded. If you have questions or want to change something, please contact the partner:",
        ),
        (Locale::En, true) => (
            "Offer already accepted",
            "This offer has already been accepted and confirmed for your domain. Nothing new was recorded. If you have questions or want to change something, please contact the partner:",
            "",
        ),
    };
    render(&AlreadyAcceptedPage {
        t: t(l),
        title,
        partner: partner_view(l, partner),
        before: Safe(before),
        domain: (!domain.is_empty()).then_some(domain),
        after: Safe(after),
        offer_id: o.offer.offer_id.as_str(),
    })
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    intro: Text,
    offer_id: &'a str,
    domain: &'a str,
    organisation: &'a str,
    org_label: Text,
    admin_email: &'a str,
    products: Vec<ProductRow<'a>>,
    da_label: Text,
    /// (role, what happens at the end) when delegated administration was requested.
    delegated_admin: Option<(Text, Text)>,
    da_none: Text,
    action: &'a str,
    csrf: &'a str,
    button: Text,
    valid: Text,
    confirm_by: String,
}

/// The confirmation link's page: what was requested, and one button to confirm it.
pub fn confirm_page(
    l: Locale,
    partner: &PartnerSettings,
    p: &crate::offers::PendingConfirmation,
    limits: &dyn Fn(&OfferLine) -> (u32, u32),
    action: &str,
    csrf: &str,
) -> String {
    let t = t(l);
    let a = &p.acceptance.acceptance;
    let (title, intro, org_label, da_none, button, valid) = match l {
        Locale::De => (
            "Annahme bestätigen",
            "Bitte prüfen Sie, was angefragt wurde. Die Annahme gilt erst, wenn Sie sie hier bestätigen. Haben Sie das nicht veranlasst, schließen Sie diese Seite einfach.",
            "wie vom Anfragenden eingegeben",
            "Delegierte Administration: nicht angefragt.",
            "Annahme bestätigen",
            "Dieser Link gilt einmal und bis",
        ),
        Locale::En => (
            "Confirm the acceptance",
            "Please check what was requested. The acceptance only counts once you confirm it here. If you did not ask for this, just close this page.",
            "as entered by the requester",
            "Delegated administration: not requested.",
            "Confirm acceptance",
            "This link works once and is valid until",
        ),
    };
    render(&ConfirmPage {
        t,
        title,
        partner: partner_view(l, partner),
        intro: Safe(intro),
        offer_id: a.offer_id.as_str(),
        domain: a.domain.as_str(),
        organisation: &a.organisation,
        org_label: Safe(org_label),
        admin_email: a.admin_email.as_str(),
        products: product_rows(&a.products, limits, false, &FormValues::default(), &[]),
        da_label: Safe(t.da_legend.0.trim_end_matches(" (optional)")),
        delegated_admin: a.delegated_admin.map(|role| {
            (
                role_text(l, role),
                Safe(auto_extend_text(
                    l,
                    p.offer.offer.auto_extend && role == AdminRole::Limited,
                )),
            )
        }),
        da_none: Safe(da_none),
        action,
        csrf,
        button: Safe(button),
        valid: Safe(valid),
        confirm_by: date(p.confirm_by, l),
    })
}

#[derive(Template)]
#[template(path = "admin_granted.html")]
struct AdminGrantedPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    text: Text,
    role: Text,
}

/// A standalone delegated-admin offer, confirmed: the rights are granted (no sign-up).
pub fn admin_granted_page(l: Locale, partner: &PartnerSettings, role: Option<AdminRole>) -> String {
    let (title, text) = match l {
        Locale::De => (
            "Delegierte Administration erteilt",
            "Vielen Dank. Der Partner hat die folgenden Administratorrechte für Ihre Organisation erhalten; wir haben Ihnen eine Bestätigung mit dem Link gesendet, über den Sie die Rechte jederzeit wieder entziehen können.",
        ),
        Locale::En => (
            "Delegated administration granted",
            "Thank you. The partner now holds the following administrator rights for your organisation; we have sent you a confirmation with the link where you can remove them at any time.",
        ),
    };
    render(&AdminGrantedPage {
        t: t(l),
        title,
        partner: partner_view(l, partner),
        text: Safe(text),
        role: role.map(|r| role_text(l, r)).unwrap_or(Safe("")),
    })
}

#[derive(Template)]
#[template(path = "location_gone.html")]
struct LocationGonePage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    text: Text,
    offer_id: &'a str,
}

/// An offer whose partner location is no longer available (410).
pub fn location_gone_page(l: Locale, partner: &PartnerSettings, o: &OfferView) -> String {
    let t = t(l);
    let text = match l {
        Locale::De => {
            "Dieses Angebot kann nicht mehr angenommen werden: Der Partnerstandort, für den es erstellt wurde, ist nicht mehr verfügbar. Bitte wenden Sie sich an den Partner, wenn Sie ein neues Angebot wünschen."
        }
        Locale::En => {
            "This offer can no longer be accepted: the partner location it was made for is no longer available. Please contact the partner if you would like a new offer."
        }
    };
    render(&LocationGonePage {
        t,
        title: t.closed_title.0,
        partner: partner_view(l, partner),
        text: Safe(text),
        offer_id: o.offer.offer_id.as_str(),
    })
}

#[derive(Template)]
#[template(path = "confirm_expired.html")]
struct ConfirmExpiredPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    text: Text,
    offer_id: &'a str,
}

/// A confirmation link that ran out before it was used (410).
pub fn confirm_expired_page(l: Locale, partner: &PartnerSettings, o: &OfferView) -> String {
    let (title, text) = match l {
        Locale::De => (
            "Bestätigungslink abgelaufen",
            "Dieser Bestätigungslink ist abgelaufen oder wurde nicht rechtzeitig verwendet; die Anfrage ist verfallen. Sie können das Angebot über den Link aus der Angebots-E-Mail erneut annehmen, solange es gilt.",
        ),
        Locale::En => (
            "Confirmation link expired",
            "This confirmation link has expired or was not used in time; the request has lapsed. You can accept the offer again from the link in the offer email while it is valid.",
        ),
    };
    render(&ConfirmExpiredPage {
        t: t(l),
        title,
        partner: partner_view(l, partner),
        text: Safe(text),
        offer_id: o.offer.offer_id.as_str(),
    })
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: &'static T,
    title: &'static str,
}

pub fn error_page(l: Locale) -> String {
    let t = t(l);
    render(&ErrorPage {
        t,
        title: t.error_title.0,
    })
}

#[derive(Template)]
#[template(path = "remove_roles.html")]
struct RemoveRolesPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    active: bool,
    action: &'a str,
    csrf: &'a str,
    customer: &'a str,
    role: Option<Text>,
}

/// The page to remove the partner's admin roles; `active` false: nothing left to remove.
pub fn remove_roles_page(
    l: Locale,
    partner: &PartnerSettings,
    customer: &str,
    role: Option<AdminRole>,
    action: &str,
    csrf: &str,
    active: bool,
) -> String {
    let t = t(l);
    render(&RemoveRolesPage {
        t,
        title: t.remove_title.0,
        partner: partner_view(l, partner),
        active,
        action,
        csrf,
        customer,
        role: role.map(|r| role_text(l, r)),
    })
}

#[derive(Template)]
#[template(path = "roles_removed.html")]
struct RolesRemovedPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
}

pub fn roles_removed_page(l: Locale, partner: &PartnerSettings) -> String {
    let t = t(l);
    render(&RolesRemovedPage {
        t,
        title: t.removed_title.0,
        partner: partner_view(l, partner),
    })
}

#[derive(Template)]
#[template(path = "reseller.html")]
struct ResellerPage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
    reseller_name: &'a str,
    mpn: &'a str,
    action: &'a str,
    csrf: &'a str,
    open: bool,
}

/// The reseller's page for a partnership request; `open` false: it can no longer be accepted.
pub fn reseller_page(
    l: Locale,
    partner: &PartnerSettings,
    reseller_name: &str,
    mpn: &str,
    action: &str,
    csrf: &str,
    open: bool,
) -> String {
    let t = t(l);
    render(&ResellerPage {
        t,
        title: t.reseller_title.0,
        partner: partner_view(l, partner),
        reseller_name,
        mpn,
        action,
        csrf,
        open,
    })
}

#[derive(Template)]
#[template(path = "reseller_done.html")]
struct ResellerDonePage<'a> {
    t: &'static T,
    title: &'static str,
    partner: PartnerView<'a>,
}

pub fn reseller_done_page(l: Locale, partner: &PartnerSettings) -> String {
    let t = t(l);
    render(&ResellerDonePage {
        t,
        title: t.reseller_done_title.0,
        partner: partner_view(l, partner),
    })
}

/// The customer-facing message for a refused form field, in the page's language.
pub fn field_message(l: Locale, field: &str, limits: Option<(u32, u32)>) -> String {
    match (l, field) {
        (Locale::De, "organisation") => {
            "Bitte geben Sie den Namen Ihrer Organisation an (höchstens 200 Zeichen).".into()
        }
        (Locale::En, "organisation") => {
            "Please enter your organisation's name (at most 200 characters).".into()
        }
        (Locale::De, "domain") => {
            "Bitte geben Sie eine Domäne wie contoso.com an (ohne Platzhalter).".into()
        }
        (Locale::En, "domain") => "Please enter a domain like contoso.com (no wildcards).".into(),
        (Locale::De, "admin_email") => "Bitte geben Sie eine gültige E-Mail-Adresse an.".into(),
        (Locale::En, "admin_email") => "Please enter a valid email address.".into(),
        (Locale::De, "admin_email_domain") => {
            "Bitte geben Sie eine Adresse in der angegebenen Domäne an (z. B. admin@contoso.com für contoso.com): Dorthin senden wir den Bestätigungslink.".into()
        }
        (Locale::En, "admin_email_domain") => {
            "Please enter an address at the domain you gave (e.g. admin@contoso.com for contoso.com): we send the confirmation link there.".into()
        }
        (Locale::De, "licences") => match limits {
            Some((a, b)) => format!("Bitte geben Sie eine ganze Zahl von {a} bis {b} an."),
            None => "Bitte geben Sie eine ganze Zahl an.".into(),
        },
        (Locale::En, "licences") => match limits {
            Some((a, b)) => format!("Please enter a whole number from {a} to {b}."),
            None => "Please enter a whole number.".into(),
        },
        (Locale::De, _) => "Dieses Feld gehört nicht zu diesem Angebot.".into(),
        (Locale::En, _) => "This field does not belong to this offer.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    const HOSTILE: &str = "<script>\"'&</script>";

    fn partner(full: bool) -> PartnerSettings {
        PartnerSettings {
            id: "p1".into(),
            name: format!("Fabrikam {HOSTILE}"),
            legal_name: "Fabrikam <GmbH> & Co. \"KG\"".into(),
            email: crate::core::domain::EmailAddress::parse("o'brien&x@fabrikam.example").unwrap(),
            phone: if full {
                "+49 30 <1234>".into()
            } else {
                String::new()
            },
            website: if full {
                "https://fabrikam.example/?a=1&b=\"2\"".into()
            } else {
                String::new()
            },
            provider_name: "Contoso <Cloud> & \"Co\"".into(),
            customer_agreement_url: url::Url::parse(
                "https://contoso.example/agreement?a=1&b=\"2\"",
            )
            .unwrap(),
            logo_path: full.then(|| "/partner/logo?v=3".into()),
            logo_url: full.then(|| "https://offers.example/partner/logo?v=3".into()),
        }
    }

    fn line(id: &str, licences: Option<u32>) -> OfferLine {
        OfferLine {
            id: crate::core::domain::ProductId::parse(id).unwrap(),
            name: format!("Product {id} {HOSTILE}"),
            licences,
        }
    }

    fn offer(kind: OfferKind, role: Option<AdminRole>, auto_extend: bool) -> OfferView {
        let products = match kind {
            OfferKind::Trial => vec![line("m365-trial", None)],
            OfferKind::Purchase => vec![line("m365-e3", Some(25)), line("exo-plan-1", Some(10))],
            OfferKind::DelegatedAdmin => vec![],
        };
        OfferView {
            offer: crate::core::offer::OfferRow {
                offer_id: crate::core::domain::OfferId::parse("PF-ABCDEFGHJKLM").unwrap(),
                instance_id: crate::core::domain::InstanceId::parse("in_abc").unwrap(),
                kind,
                location_id: "loc".into(),
                country: crate::core::domain::Country::parse("DE").unwrap(),
                products,
                delegated_admin: role,
                auto_extend,
                key_id: "k1".into(),
                link: "https://x.example/o/code".into(),
                message: Some(format!("Hallo {HOSTILE}\nzweite Zeile")),
                created_by: "me".into(),
                created_at: Timestamp(1_700_000_000),
                expires_at: Timestamp(1_800_000_000),
            },
            state: "offered".into(),
            final_at: None,
            location_removed_at: None,
        }
    }

    fn pending(o: OfferView, role: Option<AdminRole>) -> crate::offers::PendingConfirmation {
        let products = o.offer.products.clone();
        crate::offers::PendingConfirmation {
            acceptance: crate::core::offer::AcceptanceView {
                acceptance: crate::core::offer::AcceptanceRow {
                    instance_id: crate::core::domain::InstanceId::parse("in_acc").unwrap(),
                    offer_id: o.offer.offer_id.clone(),
                    organisation: format!("Org {HOSTILE}"),
                    domain: crate::core::domain::DomainName::parse("kunde.example").unwrap(),
                    admin_email: crate::core::domain::EmailAddress::parse("it'&@kunde.example")
                        .unwrap(),
                    products,
                    delegated_admin: role,
                    relationship_id: None,
                    accepted_at: Timestamp(1_700_000_000),
                    confirmed_at: None,
                },
                state: "unconfirmed".into(),
                relationship: None,
                signup: None,
            },
            offer: o,
            confirm_by: Timestamp(1_700_100_000),
        }
    }

    /// Every page in every variant the code has, with hostile outside values.
    fn all_pages(l: Locale) -> Vec<(String, String)> {
        let full = partner(true);
        let bare = partner(false);
        let limits = |x: &OfferLine| {
            if x.id.as_str() == "m365-e3" {
                (1, 300)
            } else {
                (5, 50)
            }
        };
        let act = format!("/o/x?a=1&b={HOSTILE}");
        let csrf = format!("tok{HOSTILE}");
        let v = FormValues {
            organisation: format!("Org {HOSTILE}"),
            domain: format!("dom{HOSTILE}"),
            admin_email: format!("mail{HOSTILE}"),
            licences: vec![("m365-e3".into(), format!("7{HOSTILE}"))],
            delegated_admin: true,
        };
        let errors = vec![
            ("organisation".to_string(), format!("bad org {HOSTILE}")),
            (
                "licences.m365-e3".to_string(),
                format!("bad count {HOSTILE}"),
            ),
            (
                "admin_email".to_string(),
                field_message(l, "admin_email_domain", None),
            ),
            (format!("x{HOSTILE}"), field_message(l, "unknown", None)),
        ];
        let none = FormValues::default();
        let trial = offer(OfferKind::Trial, None, false);
        let purchase = offer(OfferKind::Purchase, Some(AdminRole::Limited), true);
        let purchase_full = offer(OfferKind::Purchase, Some(AdminRole::Full), false);
        let purchase_plain = offer(OfferKind::Purchase, None, false);
        let admin = offer(OfferKind::DelegatedAdmin, Some(AdminRole::Full), false);
        let admin_ext = offer(OfferKind::DelegatedAdmin, Some(AdminRole::Limited), true);
        let mut no_message = trial.clone();
        no_message.offer.message = None;
        vec![
            (
                "offer_trial".into(),
                offer_page(l, &full, &trial, &limits, &act, &csrf, &none, &[]),
            ),
            (
                "offer_trial_bare".into(),
                offer_page(l, &bare, &no_message, &limits, "/o/y", "c", &none, &[]),
            ),
            (
                "offer_purchase_errors".into(),
                offer_page(l, &full, &purchase, &limits, &act, &csrf, &v, &errors),
            ),
            (
                "offer_purchase_full".into(),
                offer_page(l, &full, &purchase_full, &limits, &act, &csrf, &none, &[]),
            ),
            (
                "offer_purchase_plain".into(),
                offer_page(l, &bare, &purchase_plain, &limits, &act, &csrf, &none, &[]),
            ),
            (
                "offer_admin".into(),
                offer_page(l, &full, &admin, &limits, &act, &csrf, &v, &errors),
            ),
            (
                "offer_admin_ext".into(),
                offer_page(l, &full, &admin_ext, &limits, &act, &csrf, &none, &[]),
            ),
            (
                "check_mail".into(),
                check_mail_page(l, &full, &purchase, &format!("a{HOSTILE}@x")),
            ),
            (
                "check_mail_admin".into(),
                check_mail_page(l, &bare, &admin, "it@kunde.example"),
            ),
            (
                "already_accepted".into(),
                already_accepted_page(l, &full, &trial, &format!("d{HOSTILE}")),
            ),
            (
                "already_accepted_nodomain".into(),
                already_accepted_page(l, &full, &trial, ""),
            ),
            (
                "confirm".into(),
                confirm_page(
                    l,
                    &full,
                    &pending(purchase.clone(), Some(AdminRole::Limited)),
                    &limits,
                    &act,
                    &csrf,
                ),
            ),
            (
                "confirm_full".into(),
                confirm_page(
                    l,
                    &full,
                    &pending(purchase_full.clone(), Some(AdminRole::Limited)),
                    &limits,
                    &act,
                    &csrf,
                ),
            ),
            (
                "confirm_trial".into(),
                confirm_page(
                    l,
                    &bare,
                    &pending(trial.clone(), None),
                    &limits,
                    &act,
                    &csrf,
                ),
            ),
            (
                "confirm_admin".into(),
                confirm_page(
                    l,
                    &full,
                    &pending(admin.clone(), Some(AdminRole::Full)),
                    &limits,
                    &act,
                    &csrf,
                ),
            ),
            (
                "admin_granted".into(),
                admin_granted_page(l, &full, Some(AdminRole::Limited)),
            ),
            (
                "admin_granted_none".into(),
                admin_granted_page(l, &bare, None),
            ),
            ("location_gone".into(), location_gone_page(l, &full, &trial)),
            (
                "confirm_expired".into(),
                confirm_expired_page(l, &full, &trial),
            ),
            ("error".into(), error_page(l)),
            ("not_found".into(), not_found_page(l)),
            (
                "forbidden_invalid".into(),
                forbidden_page(l, FormRefusal::Invalid),
            ),
            (
                "forbidden_expired".into(),
                forbidden_page(l, FormRefusal::Expired),
            ),
            (
                "forbidden_origin".into(),
                forbidden_page(l, FormRefusal::Origin),
            ),
            ("rate_limited".into(), rate_limited_page(l)),
            (
                "remove_roles".into(),
                remove_roles_page(
                    l,
                    &full,
                    &format!("Kunde {HOSTILE}"),
                    Some(AdminRole::Full),
                    &act,
                    &csrf,
                    true,
                ),
            ),
            (
                "remove_roles_norole".into(),
                remove_roles_page(l, &bare, "Kunde", None, "/r/x", "c", true),
            ),
            (
                "remove_roles_gone".into(),
                remove_roles_page(
                    l,
                    &full,
                    &format!("Kunde {HOSTILE}"),
                    Some(AdminRole::Full),
                    &act,
                    &csrf,
                    false,
                ),
            ),
            ("roles_removed".into(), roles_removed_page(l, &full)),
            (
                "reseller".into(),
                reseller_page(
                    l,
                    &full,
                    &format!("Reseller {HOSTILE}"),
                    &format!("mpn{HOSTILE}"),
                    &act,
                    &csrf,
                    true,
                ),
            ),
            (
                "reseller_closed".into(),
                reseller_page(
                    l,
                    &bare,
                    &format!("Reseller {HOSTILE}"),
                    "123",
                    &act,
                    &csrf,
                    false,
                ),
            ),
            ("reseller_done".into(), reseller_done_page(l, &full)),
            (
                "unsubscribe_confirm".into(),
                unsubscribe_confirm(l, &format!("u{HOSTILE}@x"), &act),
            ),
            (
                "unsubscribe_done".into(),
                unsubscribe_done(l, &format!("u{HOSTILE}@x")),
            ),
            (
                "closed_withdrawn".into(),
                closed_page(l, &full, &trial, "withdrawn"),
            ),
            (
                "closed_expired".into(),
                closed_page(l, &full, &trial, "expired"),
            ),
        ]
    }

    /// An organisation name and email addresses with markup in them come out as text, in
    /// element content and in attribute values alike.
    #[test]
    fn outside_values_come_out_escaped() {
        const RAW: &str = "<script>\"'&";
        const ESCAPED: &str = "&lt;script&gt;&quot;&#39;&amp;";
        let mut p = partner(false);
        p.name = format!("Org {RAW}");
        let mut confirm = pending(offer(OfferKind::Trial, None, false), None);
        confirm.acceptance.acceptance.organisation = format!("Org {RAW}");
        let limits = |_: &OfferLine| (1, 10);
        let v = FormValues {
            organisation: format!("Org {RAW}"),
            admin_email: format!("a{RAW}@x.example"),
            ..FormValues::default()
        };
        let o = offer(OfferKind::Purchase, None, false);
        for l in Locale::ALL {
            let pages = [
                confirm_page(l, &p, &confirm, &limits, "/c/x", "c"),
                offer_page(l, &p, &o, &limits, "/o/x", "c", &v, &[]),
                check_mail_page(l, &p, &o, &format!("a{RAW}@x.example")),
                unsubscribe_confirm(l, &format!("a{RAW}@x.example"), "/u/x"),
                reseller_page(l, &p, &format!("Org {RAW}"), "1", "/r/x", "c", true),
            ];
            for html in pages {
                assert!(
                    html.contains(&format!("Org {ESCAPED}"))
                        || html.contains(&format!("a{ESCAPED}@x.example")),
                    "{html}"
                );
                assert!(!html.contains("<script"), "{html}");
                assert!(!html.contains("\"'&"), "{html}");
            }
            let html = confirm_page(l, &p, &confirm, &limits, "/c/x", "c");
            assert!(html.contains(&format!("“Org {ESCAPED}”")), "{html}");
            let html = offer_page(l, &p, &o, &limits, "/o/x", "c", &v, &[]);
            assert!(html.contains(&format!("value=\"Org {ESCAPED}\"")), "{html}");
            assert!(
                html.contains(&format!("value=\"a{ESCAPED}@x.example\"")),
                "{html}"
            );
            let html = unsubscribe_confirm(l, &format!("a{RAW}@x.example"), "/u/x");
            assert!(
                html.contains(&format!("<strong>a{ESCAPED}@x.example</strong>")),
                "{html}"
            );
        }
    }

    struct Broken;

    impl fmt::Display for Broken {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    #[derive(Template)]
    #[template(source = "<p>{{ value }}</p>", ext = "html")]
    struct BrokenPage {
        value: Broken,
    }

    /// A page that fails to render is the fixed error page, not a panic.
    #[test]
    fn a_failed_render_is_the_fallback_page() {
        let html = render(&BrokenPage { value: Broken });
        assert_eq!(html, FALLBACK);
        assert!(html.contains("Temporary error"));
    }

    /// Every page × locale against `tests/snapshots/pages/`. `UPDATE_SNAPSHOTS=1` rewrites them
    /// (review the diff).
    #[test]
    fn pages_match_snapshots() {
        let update = std::env::var("UPDATE_SNAPSHOTS").is_ok();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/pages");
        let mut mismatches = Vec::new();
        for l in Locale::ALL {
            for (name, html) in all_pages(l) {
                let path = dir.join(l.as_str()).join(format!("{name}.html"));
                if update {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &html).unwrap();
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(want) if want == html => {}
                    Ok(_) => mismatches.push(format!("{} differs", path.display())),
                    Err(_) => mismatches.push(format!("{} missing", path.display())),
                }
                // No outside value comes out raw, anywhere.
                assert!(!html.contains("<script>"), "{l}/{name}");
                assert!(!html.contains("</script>"), "{l}/{name}");
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    #[test]
    fn accept_language_with_quality() {
        assert_eq!(
            negotiate(Some("fr-FR,fr;q=0.9,en;q=0.8,de;q=0.7"), Locale::De),
            Locale::En
        );
        assert_eq!(negotiate(Some("de-AT"), Locale::En), Locale::De);
        assert_eq!(
            negotiate(Some("en;q=0.5, de;q=0.9"), Locale::En),
            Locale::De
        );
        assert_eq!(negotiate(Some("fr"), Locale::De), Locale::De);
        assert_eq!(negotiate(Some("en;q=0"), Locale::De), Locale::De);
        assert_eq!(negotiate(None, Locale::En), Locale::En);
    }
}
