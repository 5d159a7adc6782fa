//! The customer's pages as HTML strings (German or English): the offer with its accept
//! form, the pages that say a link is unknown, closed or expired, the page to remove the
//! partner's admin roles and the reseller's request page. Plain HTML that works without
//! JavaScript, labelled for screen readers, one column on a phone. Every value from outside
//! goes through [`esc`]. Pure: no HTTP, no I/O.

use crate::config::PartnerSettings;
use crate::domain::{AdminRole, Locale, OfferKind, Timestamp};
use crate::store::{OfferLine, OfferView};

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

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
    lang: &'static str,
    offer_title_trial: &'static str,
    offer_title_purchase: &'static str,
    offer_title_admin: &'static str,
    from_partner: &'static str,
    authorised: &'static str,
    phone: &'static str,
    email: &'static str,
    offer_id: &'static str,
    valid_until: &'static str,
    products: &'static str,
    licences: &'static str,
    trial_note: &'static str,
    billing: &'static str,
    trial_terms: &'static str,
    customer: &'static str,
    organisation: &'static str,
    domain: &'static str,
    domain_hint: &'static str,
    admin_email: &'static str,
    admin_email_hint: &'static str,
    da_legend: &'static str,
    da_full: &'static str,
    da_limited: &'static str,
    da_checkbox_full: &'static str,
    da_checkbox_limited: &'static str,
    da_optional: &'static str,
    da_standalone_note: &'static str,
    accept: &'static str,
    accept_note: &'static str,
    errors_title: &'static str,
    not_found_title: &'static str,
    not_found_text: &'static str,
    closed_title: &'static str,
    expired_text: &'static str,
    withdrawn_text: &'static str,
    forbidden_title: &'static str,
    forbidden_text: &'static str,
    error_title: &'static str,
    error_text: &'static str,
    remove_title: &'static str,
    remove_text: &'static str,
    remove_keeps: &'static str,
    remove_button: &'static str,
    removed_title: &'static str,
    removed_text: &'static str,
    remove_gone_text: &'static str,
    reseller_title: &'static str,
    reseller_text: &'static str,
    reseller_button: &'static str,
    reseller_done_title: &'static str,
    reseller_done_text: &'static str,
    reseller_gone_text: &'static str,
    state_word: &'static str,
    state_expired: &'static str,
    state_withdrawn: &'static str,
}

const DE: T = T {
    lang: "de",
    offer_title_trial: "Einladung zum Testen",
    offer_title_purchase: "Kaufangebot",
    offer_title_admin: "Angebot für die delegierte Administration",
    from_partner: "Ein Angebot von",
    authorised: "autorisierter Partner von {provider}",
    phone: "Telefon",
    email: "E-Mail",
    offer_id: "Angebots-ID",
    valid_until: "Gültig bis",
    products: "Angebotene Abonnements",
    licences: "Benutzerlizenzen",
    trial_note: "Testabonnement",
    billing: "Die Abrechnung erfolgt direkt durch {provider}, nicht durch den Partner. Sie bestimmen die Anzahl der Lizenzen selbst und können sie später ändern.",
    trial_terms: "Sie erhalten ein Testabonnement von {provider}: kostenlos und für 30 Tage. Es geht danach nicht von selbst in ein kostenpflichtiges Abonnement über; es wird nichts berechnet.",
    customer: "Ihre Organisation",
    organisation: "Name der Organisation",
    domain: "Domäne",
    domain_hint: "zum Beispiel contoso.com",
    admin_email: "E-Mail-Adresse des Administrators",
    admin_email_hint: "eine Adresse in Ihrer Domäne, zum Beispiel admin@contoso.com: Dorthin senden wir den Link, mit dem Sie die Annahme bestätigen",
    da_legend: "Delegierte Administration (optional)",
    da_full: "Vollständige Verwaltung: Der Partner erhält Rechte vergleichbar mit einem globalen Administrator. Er kann z. B. Benutzer anlegen, Kennwörter zurücksetzen, Domänen hinzufügen und Abonnements für Sie verwalten.",
    da_limited: "Eingeschränkte Verwaltung: Der Partner erhält Rechte vergleichbar mit einem Kennwortadministrator (Helpdesk). Er kann z. B. Kennwörter zurücksetzen und Benutzer unterstützen; Käufe, Domänen und Abonnements bleiben bei Ihnen.",
    da_checkbox_full: "Ich erteile dem Partner die vollständige Verwaltung",
    da_checkbox_limited: "Ich erteile dem Partner die eingeschränkte Verwaltung",
    da_optional: "Sie können das Angebot auch ohne delegierte Administration annehmen und die Rechte jederzeit wieder entziehen.",
    da_standalone_note: "Mit der Annahme erteilen Sie dem Partner diese Administratorrechte für Ihre bestehende Organisation. Sie können sie jederzeit wieder entziehen.",
    accept: "Angebot annehmen",
    accept_note: "Nach der Annahme senden wir einen Bestätigungslink an die E-Mail-Adresse des Administrators. Erst mit der Bestätigung gilt die Annahme; danach geht es weiter zur Registrierungsseite von {provider}.",
    errors_title: "Bitte prüfen Sie Ihre Angaben:",
    not_found_title: "Angebot nicht gefunden",
    not_found_text: "Dieser Link ist ungültig oder unvollständig. Bitte verwenden Sie den vollständigen Link aus Ihrer E-Mail oder wenden Sie sich an den Absender.",
    closed_title: "Angebot nicht mehr verfügbar",
    expired_text: "Dieses Angebot ist abgelaufen und kann nicht mehr angenommen werden. Bitte wenden Sie sich an den Partner, wenn Sie ein neues Angebot wünschen.",
    withdrawn_text: "Dieses Angebot wurde vom Partner zurückgezogen und kann nicht mehr angenommen werden.",
    forbidden_title: "Formular abgelaufen",
    forbidden_text: "Das Formular konnte nicht überprüft werden (z. B. weil Cookies blockiert sind oder die Seite zu alt ist). Bitte laden Sie die Seite neu und senden Sie das Formular erneut.",
    error_title: "Vorübergehender Fehler",
    error_text: "Ihre Anfrage konnte gerade nicht bearbeitet werden. Bitte versuchen Sie es in einigen Minuten erneut.",
    remove_title: "Administratorrechte des Partners entfernen",
    remove_text: "Hier können Sie die delegierten Administratorrechte entfernen, die Sie dem Partner erteilt haben.",
    remove_keeps: "Der Partner bleibt Ihr Abonnementberater; Ihre Abonnements sind nicht betroffen.",
    remove_button: "Administratorrechte entfernen",
    removed_title: "Administratorrechte entfernt",
    removed_text: "Die Administratorrechte des Partners sind beendet. Der Partner wurde benachrichtigt.",
    remove_gone_text: "Für diese Beziehung bestehen keine Administratorrechte mehr.",
    reseller_title: "Partnerschaftsanfrage eines indirekten Anbieters",
    reseller_text: "bittet Sie als Wiederverkäufer um eine Partnerschaft. Danach kann der Anbieter Kunden in Ihrem Namen hinzufügen, Sie Kunden und Abonnements zuordnen und Sie als Supportkontakt benennen.",
    reseller_button: "Partnerschaft annehmen",
    reseller_done_title: "Partnerschaft angenommen",
    reseller_done_text: "Die Partnerschaft ist aktiv. Der Anbieter wurde benachrichtigt.",
    reseller_gone_text: "Diese Anfrage kann nicht mehr angenommen werden.",
    state_word: "Status",
    state_expired: "abgelaufen",
    state_withdrawn: "zurückgezogen",
};

const EN: T = T {
    lang: "en",
    offer_title_trial: "Trial invitation",
    offer_title_purchase: "Purchase offer",
    offer_title_admin: "Delegated administration offer",
    from_partner: "An offer from",
    authorised: "an authorised partner of {provider}",
    phone: "Phone",
    email: "Email",
    offer_id: "Offer ID",
    valid_until: "Valid until",
    products: "Subscriptions offered",
    licences: "User licences",
    trial_note: "Trial subscription",
    billing: "You are billed directly by {provider}, not by the partner. You decide the number of licences and can change it later.",
    trial_terms: "You get one trial subscription from {provider}: free of charge, for 30 days. It does not turn into a paid subscription by itself afterwards; nothing is billed.",
    customer: "Your organisation",
    organisation: "Organisation name",
    domain: "Domain",
    domain_hint: "for example contoso.com",
    admin_email: "Administrator's email address",
    admin_email_hint: "an address at your domain, for example admin@contoso.com: we send the link that confirms the acceptance there",
    da_legend: "Delegated administration (optional)",
    da_full: "Full administration: the partner gets rights comparable to a global administrator, for example to add users, reset passwords, add domains and manage subscriptions for you.",
    da_limited: "Limited administration: the partner gets rights comparable to a password (helpdesk) administrator, for example to reset passwords and support your users; purchases, domains and subscriptions stay with you.",
    da_checkbox_full: "I grant the partner full administration",
    da_checkbox_limited: "I grant the partner limited administration",
    da_optional: "You may accept the offer without delegated administration, and you can remove the rights at any time.",
    da_standalone_note: "By accepting, you grant the partner these administrator rights for your existing organisation. You can remove them at any time.",
    accept: "Accept offer",
    accept_note: "After accepting, we send a confirmation link to the administrator's email address. The acceptance counts once it is confirmed; then you continue to the sign-up page of {provider}.",
    errors_title: "Please check what you entered:",
    not_found_title: "Offer not found",
    not_found_text: "This link is invalid or incomplete. Please use the complete link from your email, or contact the sender.",
    closed_title: "Offer no longer available",
    expired_text: "This offer has expired and can no longer be accepted. Please contact the partner if you would like a new offer.",
    withdrawn_text: "The partner has withdrawn this offer; it can no longer be accepted.",
    forbidden_title: "Form expired",
    forbidden_text: "The form could not be verified (for example because cookies are blocked or the page is too old). Please reload the page and send the form again.",
    error_title: "Temporary error",
    error_text: "Your request could not be processed just now. Please try again in a few minutes.",
    remove_title: "Remove the partner's administrator rights",
    remove_text: "Here you can remove the delegated administrator rights you granted to the partner.",
    remove_keeps: "The partner remains your subscription advisor; your subscriptions are not affected.",
    remove_button: "Remove administrator rights",
    removed_title: "Administrator rights removed",
    removed_text: "The partner's administrator rights have ended. The partner has been notified.",
    remove_gone_text: "There are no administrator rights left in this relationship.",
    reseller_title: "Partnership request from an indirect provider",
    reseller_text: "asks you, as a reseller, for a partnership. Then the provider can add customers on your behalf, associate you with customers and subscriptions, and name you as support contact.",
    reseller_button: "Accept partnership",
    reseller_done_title: "Partnership accepted",
    reseller_done_text: "The partnership is active. The provider has been notified.",
    reseller_gone_text: "This request can no longer be accepted.",
    state_word: "State",
    state_expired: "expired",
    state_withdrawn: "withdrawn",
};

fn t(l: Locale) -> &'static T {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

const STYLE: &str = "*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1b1b;background:#f5f6f8}main{max-width:40rem;margin:0 auto;padding:1rem}section,form{background:#fff;border:1px solid #d9dce1;border-radius:8px;padding:1rem;margin:0 0 1rem}h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}h2:first-child{margin-top:0}label{display:block;font-weight:600;margin:.75rem 0 .25rem}input[type=text],input[type=email],input[type=number]{width:100%;padding:.6rem;font-size:1rem;border:1px solid #8a8f98;border-radius:6px}input:focus,button:focus{outline:3px solid #0b57d0;outline-offset:2px}.hint{color:#555;font-size:.9rem;margin:.1rem 0 0}.check{display:flex;gap:.6rem;align-items:flex-start;font-weight:600}.check input{width:1.4rem;height:1.4rem;margin-top:.1rem;flex:none}fieldset{border:1px solid #d9dce1;border-radius:6px;margin:1rem 0 0;padding:.75rem}legend{font-weight:700;padding:0 .25rem}button{display:block;width:100%;margin:1rem 0 .5rem;padding:.8rem;font-size:1.05rem;font-weight:700;color:#fff;background:#0b57d0;border:0;border-radius:6px;cursor:pointer}.errors{border-color:#b3261e;background:#fdf2f1}.errors h2{color:#b3261e}.field-error{color:#b3261e;font-weight:600;margin:.25rem 0 0}dl{display:grid;grid-template-columns:fit-content(45%) minmax(0,1fr);gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}ul.products{padding-left:1.2rem;margin:.25rem 0}small{color:#555}";

fn layout(l: Locale, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n<meta name=\"referrer\" content=\"same-origin\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        t(l).lang,
        esc(title)
    )
}

/// `text` with `{provider}` replaced by the configured provider's name (escaped).
fn provider(text: &str, p: &PartnerSettings) -> String {
    text.replace("{provider}", &esc(&p.provider_name))
}

fn partner_block(l: Locale, p: &PartnerSettings) -> String {
    let t = t(l);
    let mut s = format!(
        "<section aria-labelledby=\"partner-h\"><h2 id=\"partner-h\">{} {}</h2><p>{}, {}.</p><dl><dt>{}</dt><dd><a href=\"mailto:{}\">{}</a></dd>",
        t.from_partner,
        esc(&p.name),
        esc(&p.legal_name),
        provider(t.authorised, p),
        t.email,
        esc(p.email.as_str()),
        esc(p.email.as_str()),
    );
    if !p.phone.is_empty() {
        s.push_str(&format!("<dt>{}</dt><dd>{}</dd>", t.phone, esc(&p.phone)));
    }
    if !p.website.is_empty() {
        s.push_str(&format!(
            "<dt>Web</dt><dd><a href=\"{}\">{}</a></dd>",
            esc(&p.website),
            esc(&p.website)
        ));
    }
    s.push_str("</dl></section>\n");
    s
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

fn field_error(errors: &[(String, String)], field: &str) -> (String, String) {
    match errors.iter().find(|(f, _)| f == field) {
        Some((_, m)) => (
            format!(
                " aria-invalid=\"true\" aria-describedby=\"{}-error\"",
                esc(field)
            ),
            format!(
                "<p class=\"field-error\" id=\"{}-error\">{}</p>",
                esc(field),
                esc(m)
            ),
        ),
        None => (String::new(), String::new()),
    }
}

fn title_of(l: Locale, kind: OfferKind) -> &'static str {
    let t = t(l);
    match kind {
        OfferKind::Trial => t.offer_title_trial,
        OfferKind::Purchase => t.offer_title_purchase,
        OfferKind::DelegatedAdmin => t.offer_title_admin,
    }
}

fn role_text(l: Locale, r: AdminRole) -> &'static str {
    match r {
        AdminRole::Full => t(l).da_full,
        AdminRole::Limited => t(l).da_limited,
    }
}

fn product_rows(
    l: Locale,
    lines: &[OfferLine],
    limits: &dyn Fn(&OfferLine) -> (u32, u32),
    editable: bool,
    v: &FormValues,
    errors: &[(String, String)],
) -> String {
    let t = t(l);
    let mut s = String::from("<ul class=\"products\">");
    for line in lines {
        match line.licences {
            None => s.push_str(&format!(
                "<li>{} <small>({})</small></li>",
                esc(&line.name),
                t.trial_note
            )),
            Some(n) if editable => {
                let field = format!("licences.{}", line.id);
                let id = format!("licences-{}", line.id);
                let value = v
                    .licences
                    .iter()
                    .find(|(p, _)| p == line.id.as_str())
                    .map(|(_, x)| x.clone())
                    .unwrap_or_else(|| n.to_string());
                let (min, max) = limits(line);
                let (attr, msg) = field_error(errors, &field);
                s.push_str(&format!(
                    "<li><label for=\"{id}\">{} — {}</label><input type=\"number\" id=\"{id}\" name=\"{}\" value=\"{}\" min=\"{min}\" max=\"{max}\" step=\"1\" inputmode=\"numeric\" required{attr}><p class=\"hint\">{min}–{max}</p>{msg}</li>",
                    esc(&line.name),
                    t.licences,
                    esc(&field),
                    esc(&value),
                ));
            }
            Some(n) => s.push_str(&format!(
                "<li>{} — {n} {}</li>",
                esc(&line.name),
                t.licences
            )),
        }
    }
    s.push_str("</ul>");
    s
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
    let title = title_of(l, offer.kind);
    let mut b = format!("<h1>{}</h1>\n", esc(title));
    if !errors.is_empty() {
        b.push_str(&format!(
            "<section class=\"errors\" role=\"alert\" aria-labelledby=\"errors-h\"><h2 id=\"errors-h\">{}</h2><ul>",
            t.errors_title
        ));
        for (f, m) in errors {
            b.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>",
                esc(&field_anchor(f)),
                esc(m)
            ));
        }
        b.push_str("</ul></section>\n");
    }
    b.push_str(&partner_block(l, partner));
    b.push_str(&format!(
        "<form method=\"post\" action=\"{}\" id=\"accept-form\" novalidate>\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        esc(action),
        esc(csrf)
    ));
    b.push_str(&format!(
        "<dl><dt>{}</dt><dd id=\"offer-id\">{}</dd><dt>{}</dt><dd>{}</dd></dl>\n",
        t.offer_id,
        esc(offer.offer_id.as_str()),
        t.valid_until,
        date(offer.expires_at, l)
    ));
    if let Some(m) = &offer.message {
        b.push_str(&format!("<p>{}</p>\n", esc(m).replace('\n', "<br>")));
    }
    if !offer.products.is_empty() {
        b.push_str(&format!("<h2>{}</h2>", t.products));
        b.push_str(&product_rows(
            l,
            &offer.products,
            limits,
            offer.kind == OfferKind::Purchase,
            v,
            errors,
        ));
        // A trial is one free trial subscription: no licence counts, nothing billed.
        let terms = if offer.kind == OfferKind::Trial {
            t.trial_terms
        } else {
            t.billing
        };
        b.push_str(&format!(
            "<p class=\"hint\" id=\"terms\">{}</p>\n",
            provider(terms, partner)
        ));
    }
    b.push_str(&format!("<h2>{}</h2>\n", t.customer));
    for (field, label, ty, hint, value, auto) in [
        (
            "organisation",
            t.organisation,
            "text",
            "",
            &v.organisation,
            "organization",
        ),
        ("domain", t.domain, "text", t.domain_hint, &v.domain, "off"),
        (
            "admin_email",
            t.admin_email,
            "email",
            t.admin_email_hint,
            &v.admin_email,
            "email",
        ),
    ] {
        let (attr, msg) = field_error(errors, field);
        let hint_html = if hint.is_empty() {
            String::new()
        } else {
            format!("<p class=\"hint\" id=\"{field}-hint\">{hint}</p>")
        };
        b.push_str(&format!(
            "<label for=\"{field}\">{label}</label><input type=\"{ty}\" id=\"{field}\" name=\"{field}\" value=\"{}\" autocomplete=\"{auto}\" maxlength=\"254\" required{attr}>{hint_html}{msg}\n",
            esc(value)
        ));
    }
    if let Some(role) = offer.delegated_admin {
        let extension = format!(
            "<p id=\"auto-extend\">{}</p>",
            auto_extend_text(l, offer.auto_extend && role == AdminRole::Limited)
        );
        if offer.kind == OfferKind::DelegatedAdmin {
            b.push_str(&format!(
                "<fieldset><legend>{}</legend><p>{}</p>{extension}<p>{}</p></fieldset>\n",
                esc(title),
                role_text(l, role),
                t.da_standalone_note
            ));
        } else {
            let label = match role {
                AdminRole::Full => t.da_checkbox_full,
                AdminRole::Limited => t.da_checkbox_limited,
            };
            b.push_str(&format!(
                "<fieldset><legend>{}</legend><p id=\"da-text\">{}</p>{extension}<label class=\"check\" for=\"delegated_admin\"><input type=\"checkbox\" id=\"delegated_admin\" name=\"delegated_admin\" value=\"yes\" aria-describedby=\"da-text da-optional\"{}> <span>{}</span></label><p class=\"hint\" id=\"da-optional\">{}</p></fieldset>\n",
                t.da_legend,
                role_text(l, role),
                if v.delegated_admin { " checked" } else { "" },
                label,
                t.da_optional
            ));
        }
    }
    let note = match (offer.kind, l) {
        (OfferKind::DelegatedAdmin, Locale::De) => {
            "Nach der Annahme senden wir einen Bestätigungslink an die E-Mail-Adresse des Administrators. Erst mit der Bestätigung erhält der Partner die Rechte."
        }
        (OfferKind::DelegatedAdmin, Locale::En) => {
            "After accepting, we send a confirmation link to the administrator's email address. The partner gets the rights only once it is confirmed."
        }
        _ => &provider(t.accept_note, partner),
    };
    b.push_str(&format!(
        "<button type=\"submit\" id=\"accept\">{}</button><p class=\"hint\">{note}</p>\n</form>\n",
        t.accept
    ));
    layout(l, &format!("{title} {}", offer.offer_id), &b)
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

pub fn not_found_page(l: Locale) -> String {
    let t = t(l);
    layout(
        l,
        t.not_found_title,
        &format!(
            "<h1>{}</h1><section><p>{}</p></section>",
            t.not_found_title, t.not_found_text
        ),
    )
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
    layout(
        l,
        title,
        &format!(
            "<h1>{title}</h1><section><p>{text} <strong>{}</strong></p><form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\" id=\"unsubscribe\">{button}</button></form></section>",
            esc(email),
            esc(action)
        ),
    )
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
    layout(
        l,
        title,
        &format!(
            "<h1>{title}</h1><section><p>{text} <strong>{}</strong></p></section>",
            esc(email)
        ),
    )
}

/// An expired or withdrawn offer (410).
pub fn closed_page(l: Locale, partner: &PartnerSettings, o: &OfferView, state: &str) -> String {
    let t = t(l);
    // An offer closes by withdrawal or by expiry; the state is shown in the page's language.
    let (text, state) = if state == "withdrawn" {
        (t.withdrawn_text, t.state_withdrawn)
    } else {
        (t.expired_text, t.state_expired)
    };
    layout(
        l,
        t.closed_title,
        &format!(
            "<h1>{}</h1><section><p>{}</p><dl><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></section>{}",
            t.closed_title,
            text,
            t.offer_id,
            esc(o.offer.offer_id.as_str()),
            t.state_word,
            state,
            partner_block(l, partner)
        ),
    )
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

pub fn forbidden_page(l: Locale, why: FormRefusal) -> String {
    let t = t(l);
    let text = match (why, l) {
        (FormRefusal::Invalid, _) => t.forbidden_text,
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
    layout(
        l,
        t.forbidden_title,
        &format!(
            "<h1>{}</h1><section><p>{}</p></section>",
            t.forbidden_title, text
        ),
    )
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
    layout(
        l,
        title,
        &format!("<h1>{title}</h1><section role=\"alert\"><p>{text}</p></section>"),
    )
}

/// After the accept form: the confirmation link is on its way to the admin address.
pub fn check_mail_page(
    l: Locale,
    partner: &PartnerSettings,
    o: &OfferView,
    admin_email: &str,
) -> String {
    let t = t(l);
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
    layout(
        l,
        title,
        &format!(
            "<h1>{title}</h1><section role=\"status\" id=\"check-mail\"><p>{before} <strong>{}</strong>.</p><p>{}</p><dl><dt>{}</dt><dd>{}</dd></dl></section>{}",
            esc(admin_email),
            provider(after, partner),
            t.offer_id,
            esc(o.offer.offer_id.as_str()),
            partner_block(l, partner)
        ),
    )
}

/// The offer was already accepted (and confirmed) for this domain (409).
pub fn already_accepted_page(
    l: Locale,
    partner: &PartnerSettings,
    o: &OfferView,
    domain: &str,
) -> String {
    let t = t(l);
    let (title, text) = match (l, domain.is_empty()) {
        (Locale::De, false) => (
            "Angebot bereits angenommen",
            format!(
                "Dieses Angebot wurde für die Domäne <strong>{}</strong> bereits angenommen und bestätigt. Es wurde nichts Neues gespeichert. Wenn Sie Fragen dazu haben oder etwas ändern möchten, wenden Sie sich bitte an den Partner:",
                esc(domain)
            ),
        ),
        (Locale::De, true) => (
            "Angebot bereits angenommen",
            "Dieses Angebot wurde für Ihre Domäne bereits angenommen und bestätigt. Es wurde nichts Neues gespeichert. Wenn Sie Fragen dazu haben oder etwas ändern möchten, wenden Sie sich bitte an den Partner:".to_string(),
        ),
        (Locale::En, false) => (
            "Offer already accepted",
            format!(
                "This offer has already been accepted and confirmed for the domain <strong>{}</strong>. Nothing new was recorded. If you have questions or want to change something, please contact the partner:",
                esc(domain)
            ),
        ),
        (Locale::En, true) => (
            "Offer already accepted",
            "This offer has already been accepted and confirmed for your domain. Nothing new was recorded. If you have questions or want to change something, please contact the partner:".to_string(),
        ),
    };
    layout(
        l,
        title,
        &format!(
            "<h1>{title}</h1><section role=\"alert\" id=\"already-accepted\"><p>{text}</p><dl><dt>{}</dt><dd>{}</dd></dl></section>{}",
            t.offer_id,
            esc(o.offer.offer_id.as_str()),
            partner_block(l, partner)
        ),
    )
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
    let mut b = format!(
        "<h1>{title}</h1>\n<section><p>{intro}</p><dl><dt>{}</dt><dd id=\"offer-id\">{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>“{}” <small>({org_label})</small></dd><dt>{}</dt><dd>{}</dd></dl>",
        t.offer_id,
        esc(a.offer_id.as_str()),
        t.domain,
        esc(a.domain.as_str()),
        t.organisation,
        esc(&a.organisation),
        t.admin_email,
        esc(a.admin_email.as_str()),
    );
    if !a.products.is_empty() {
        b.push_str(&format!("<h2>{}</h2>", t.products));
        b.push_str(&product_rows(
            l,
            &a.products,
            limits,
            false,
            &FormValues::default(),
            &[],
        ));
    }
    match a.delegated_admin {
        Some(role) => b.push_str(&format!(
            "<p id=\"da-requested\"><strong>{}:</strong> {} {}</p>",
            t.da_legend.trim_end_matches(" (optional)"),
            role_text(l, role),
            auto_extend_text(l, p.offer.offer.auto_extend && role == AdminRole::Limited)
        )),
        None => b.push_str(&format!("<p id=\"da-requested\">{da_none}</p>")),
    }
    b.push_str("</section>\n");
    b.push_str(&partner_block(l, partner));
    b.push_str(&format!(
        "<form method=\"post\" action=\"{}\" id=\"confirm-form\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"confirm\">{button}</button><p class=\"hint\">{valid} {}.</p></form>",
        esc(action),
        esc(csrf),
        date(p.confirm_by, l)
    ));
    layout(l, title, &b)
}

/// A standalone delegated-admin offer, confirmed: the rights are granted (no sign-up).
pub fn admin_granted_page(l: Locale, partner: &PartnerSettings, role: Option<AdminRole>) -> String {
    let t = t(l);
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
    let role = role.map(|r| role_text(l, r)).unwrap_or("");
    layout(
        l,
        title,
        &format!(
            "<h1>{title}</h1><section role=\"status\" id=\"admin-granted\"><p>{text}</p><p>{role}</p><p>{}</p></section>{}",
            t.remove_keeps,
            partner_block(l, partner)
        ),
    )
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
    layout(
        l,
        t.closed_title,
        &format!(
            "<h1>{}</h1><section id=\"location-gone\"><p>{text}</p><dl><dt>{}</dt><dd>{}</dd></dl></section>{}",
            t.closed_title,
            t.offer_id,
            esc(o.offer.offer_id.as_str()),
            partner_block(l, partner)
        ),
    )
}

/// A confirmation link that ran out before it was used (410).
pub fn confirm_expired_page(l: Locale, partner: &PartnerSettings, o: &OfferView) -> String {
    let t = t(l);
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
    layout(
        l,
        title,
        &format!(
            "<h1>{title}</h1><section id=\"confirm-expired\"><p>{text}</p><dl><dt>{}</dt><dd>{}</dd></dl></section>{}",
            t.offer_id,
            esc(o.offer.offer_id.as_str()),
            partner_block(l, partner)
        ),
    )
}

pub fn error_page(l: Locale) -> String {
    let t = t(l);
    layout(
        l,
        t.error_title,
        &format!(
            "<h1>{}</h1><section><p>{}</p></section>",
            t.error_title, t.error_text
        ),
    )
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
    let mut b = format!("<h1>{}</h1>\n", t.remove_title);
    b.push_str(&partner_block(l, partner));
    if !active {
        b.push_str(&format!("<section><p>{}</p></section>", t.remove_gone_text));
        return layout(l, t.remove_title, &b);
    }
    b.push_str(&format!(
        "<form method=\"post\" action=\"{}\" id=\"remove-form\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><p>{}</p><p><strong>{}</strong></p>",
        esc(action),
        esc(csrf),
        t.remove_text,
        esc(customer)
    ));
    if let Some(r) = role {
        b.push_str(&format!("<p>{}</p>", role_text(l, r)));
    }
    b.push_str(&format!(
        "<p>{}</p><button type=\"submit\" id=\"remove\">{}</button></form>",
        t.remove_keeps, t.remove_button
    ));
    layout(l, t.remove_title, &b)
}

pub fn roles_removed_page(l: Locale, partner: &PartnerSettings) -> String {
    let t = t(l);
    layout(
        l,
        t.removed_title,
        &format!(
            "<h1>{}</h1><section role=\"status\"><p>{}</p><p>{}</p></section>{}",
            t.removed_title,
            t.removed_text,
            t.remove_keeps,
            partner_block(l, partner)
        ),
    )
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
    let mut b = format!(
        "<h1>{}</h1>\n<section><p><strong>{}</strong> {}</p><dl><dt>{}</dt><dd>{}</dd><dt>MPN ID</dt><dd>{}</dd></dl></section>\n",
        t.reseller_title,
        esc(&partner.name),
        t.reseller_text,
        t.organisation,
        esc(reseller_name),
        esc(mpn)
    );
    b.push_str(&partner_block(l, partner));
    if open {
        b.push_str(&format!(
            "<form method=\"post\" action=\"{}\" id=\"reseller-form\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"accept\">{}</button></form>",
            esc(action),
            esc(csrf),
            t.reseller_button
        ));
    } else {
        b.push_str(&format!(
            "<section><p>{}</p></section>",
            t.reseller_gone_text
        ));
    }
    layout(l, t.reseller_title, &b)
}

pub fn reseller_done_page(l: Locale, partner: &PartnerSettings) -> String {
    let t = t(l);
    layout(
        l,
        t.reseller_done_title,
        &format!(
            "<h1>{}</h1><section role=\"status\"><p>{}</p></section>{}",
            t.reseller_done_title,
            t.reseller_done_text,
            partner_block(l, partner)
        ),
    )
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
            email: crate::domain::EmailAddress::parse("o'brien&x@fabrikam.example").unwrap(),
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
        }
    }

    fn line(id: &str, licences: Option<u32>) -> OfferLine {
        OfferLine {
            id: crate::domain::ProductId::parse(id).unwrap(),
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
            offer: crate::store::OfferRow {
                offer_id: crate::domain::OfferId::parse("PF-ABCDEFGHJKLM").unwrap(),
                instance_id: crate::domain::InstanceId::parse("in_abc").unwrap(),
                kind,
                location_id: "loc".into(),
                country: crate::domain::Country::parse("DE").unwrap(),
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
            acceptance: crate::store::AcceptanceView {
                acceptance: crate::store::AcceptanceRow {
                    instance_id: crate::domain::InstanceId::parse("in_acc").unwrap(),
                    offer_id: o.offer.offer_id.clone(),
                    organisation: format!("Org {HOSTILE}"),
                    domain: crate::domain::DomainName::parse("kunde.example").unwrap(),
                    admin_email: crate::domain::EmailAddress::parse("it'&@kunde.example").unwrap(),
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
