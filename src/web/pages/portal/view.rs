//! The portal's pages (German or English: the signed-in user's language, else the browser's):
//! view models and texts for the askama templates in `src/web/templates/portal/`, which
//! extend the customer pages' `base.html` and escape every value by default. Pure: no HTTP.

use askama::Template;
use askama::filters::Safe;

use crate::core::domain::{Locale, Role};
use crate::core::portal::{AuditRow, UserRow};

#[path = "campaigns/view.rs"]
pub(super) mod campaigns;

/// A text of this file: trusted, written out unescaped.
type Text = Safe<&'static str>;

pub(crate) struct PT {
    pub portal: Text,
    pub lang: Text,
    pub nav_label: Text,
    pub nav_overview: Text,
    pub nav_users: Text,
    pub nav_audit: Text,
    pub nav_customers: Text,
    pub nav_offers: Text,
    pub nav_campaigns: Text,
    pub nav_resellers: Text,
    pub nav_company: Text,
    pub nav_schedules: Text,
    pub nav_jobs: Text,
    pub nav_nodes: Text,
    pub nav_workflows: Text,
    pub skip: Text,
    pub errors_title: Text,
    pub none: Text,
    pub sign_in_title: Text,
    pub sign_in_text: Text,
    pub email: Text,
    pub send_link: Text,
    pub sent_text: Text,
    pub link_title: Text,
    pub link_text: Text,
    pub sign_in_button: Text,
    pub link_gone: Text,
    pub request_new: Text,
    pub signed_in_as: Text,
    pub role: Text,
    pub sign_out: Text,
    pub sign_out_everywhere: Text,
    pub sign_out_everywhere_hint: Text,
    pub users_title: Text,
    pub name: Text,
    pub language: Text,
    pub state: Text,
    pub active: Text,
    pub deactivated: Text,
    pub deactivate: Text,
    pub reactivate: Text,
    pub change_role: Text,
    pub invite_title: Text,
    pub invite_button: Text,
    pub invited_text: Text,
    pub audit_title: Text,
    pub filter: Text,
    pub actor: Text,
    pub action: Text,
    pub target: Text,
    pub when: Text,
    pub client: Text,
    pub detail: Text,
    pub from: Text,
    pub to: Text,
    pub older: Text,
    pub you: Text,
    pub forbidden_title: Text,
    pub forbidden_text: Text,
}

const DE: PT = PT {
    lang: Safe("de"),
    portal: Safe("Partnerportal"),
    nav_label: Safe("Hauptnavigation"),
    nav_overview: Safe("Übersicht"),
    nav_users: Safe("Benutzer"),
    nav_audit: Safe("Protokoll"),
    nav_customers: Safe("Kunden"),
    nav_offers: Safe("Angebote"),
    nav_campaigns: Safe("Kampagnen"),
    nav_resellers: Safe("Reseller"),
    nav_company: Safe("Unternehmen"),
    nav_schedules: Safe("Zeitpläne"),
    nav_jobs: Safe("Aufträge"),
    nav_nodes: Safe("Knoten"),
    nav_workflows: Safe("Abläufe"),
    skip: Safe("Zum Inhalt"),
    sign_in_title: Safe("Anmelden"),
    sign_in_text: Safe(
        "Geben Sie Ihre E-Mail-Adresse ein. Wenn sie zu einem Benutzer gehört, erhalten Sie einen Anmeldelink (kurz gültig, einmal verwendbar).",
    ),
    email: Safe("E-Mail-Adresse"),
    send_link: Safe("Anmeldelink senden"),
    sent_text: Safe(
        "Wenn die Adresse zu einem Benutzer gehört, ist ein Anmeldelink unterwegs. Bitte sehen Sie in Ihr Postfach.",
    ),
    errors_title: Safe("Bitte korrigieren Sie:"),
    link_title: Safe("Anmelden"),
    link_text: Safe(
        "Klicken Sie auf „Anmelden“, um sich im Partnerportal anzumelden. Der Link gilt nur einmal.",
    ),
    sign_in_button: Safe("Anmelden"),
    link_gone: Safe("Dieser Anmeldelink ist ungültig, abgelaufen oder wurde schon verwendet."),
    request_new: Safe("Neuen Anmeldelink anfordern"),
    signed_in_as: Safe("Angemeldet als"),
    role: Safe("Rolle"),
    sign_out: Safe("Abmelden"),
    sign_out_everywhere: Safe("Überall abmelden"),
    sign_out_everywhere_hint: Safe("Beendet Ihre Sitzungen auf allen Geräten."),
    users_title: Safe("Benutzer"),
    name: Safe("Name"),
    language: Safe("Sprache"),
    state: Safe("Status"),
    active: Safe("aktiv"),
    deactivated: Safe("deaktiviert"),
    deactivate: Safe("Deaktivieren"),
    reactivate: Safe("Wieder aktivieren"),
    change_role: Safe("Rolle ändern"),
    invite_title: Safe("Benutzer einladen"),
    invite_button: Safe("Einladen"),
    invited_text: Safe("Die Einladung ist unterwegs."),
    audit_title: Safe("Protokoll"),
    filter: Safe("Filtern"),
    actor: Safe("Wer"),
    action: Safe("Aktion"),
    target: Safe("Ziel"),
    when: Safe("Wann (UTC)"),
    client: Safe("Von"),
    detail: Safe("Einzelheiten"),
    from: Safe("Ab (JJJJ-MM-TT)"),
    to: Safe("Bis vor (JJJJ-MM-TT)"),
    older: Safe("Ältere Einträge"),
    none: Safe("Keine Einträge."),
    you: Safe("(Sie)"),
    forbidden_title: Safe("Keine Berechtigung"),
    forbidden_text: Safe("Ihre Rolle erlaubt diese Seite nicht."),
};

const EN: PT = PT {
    lang: Safe("en"),
    portal: Safe("Partner portal"),
    nav_label: Safe("Main navigation"),
    nav_overview: Safe("Overview"),
    nav_users: Safe("Users"),
    nav_audit: Safe("Audit log"),
    nav_customers: Safe("Customers"),
    nav_offers: Safe("Offers"),
    nav_campaigns: Safe("Campaigns"),
    nav_resellers: Safe("Resellers"),
    nav_company: Safe("Company"),
    nav_schedules: Safe("Schedules"),
    nav_jobs: Safe("Jobs"),
    nav_nodes: Safe("Nodes"),
    nav_workflows: Safe("Workflows"),
    skip: Safe("Skip to content"),
    sign_in_title: Safe("Sign in"),
    sign_in_text: Safe(
        "Enter your email address. If it belongs to a user, you get a sign-in link (valid for a short time, single use).",
    ),
    email: Safe("Email address"),
    send_link: Safe("Send sign-in link"),
    sent_text: Safe(
        "If the address belongs to a user, a sign-in link is on its way. Please check your mailbox.",
    ),
    errors_title: Safe("Please correct:"),
    link_title: Safe("Sign in"),
    link_text: Safe("Press “Sign in” to sign in to the partner portal. The link works once."),
    sign_in_button: Safe("Sign in"),
    link_gone: Safe("This sign-in link is invalid, expired or used already."),
    request_new: Safe("Request a new sign-in link"),
    signed_in_as: Safe("Signed in as"),
    role: Safe("Role"),
    sign_out: Safe("Sign out"),
    sign_out_everywhere: Safe("Sign out everywhere"),
    sign_out_everywhere_hint: Safe("Ends your sessions on every device."),
    users_title: Safe("Users"),
    name: Safe("Name"),
    language: Safe("Language"),
    state: Safe("State"),
    active: Safe("active"),
    deactivated: Safe("deactivated"),
    deactivate: Safe("Deactivate"),
    reactivate: Safe("Reactivate"),
    change_role: Safe("Change role"),
    invite_title: Safe("Invite a user"),
    invite_button: Safe("Invite"),
    invited_text: Safe("The invitation is on its way."),
    audit_title: Safe("Audit log"),
    filter: Safe("Filter"),
    actor: Safe("Who"),
    action: Safe("Action"),
    target: Safe("Target"),
    when: Safe("When (UTC)"),
    client: Safe("From"),
    detail: Safe("Detail"),
    from: Safe("From (YYYY-MM-DD)"),
    to: Safe("Before (YYYY-MM-DD)"),
    older: Safe("Older entries"),
    none: Safe("No entries."),
    you: Safe("(you)"),
    forbidden_title: Safe("Not allowed"),
    forbidden_text: Safe("Your role does not allow this page."),
};

pub(super) fn texts(l: Locale) -> &'static PT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

pub(super) fn role_name(l: Locale, r: Role) -> &'static str {
    match (l, r) {
        (Locale::De, Role::Admin) => "Administrator",
        (Locale::De, Role::SalesAgent) => "Vertrieb",
        (Locale::De, Role::Viewer) => "Lesen",
        (Locale::En, Role::Admin) => "Administrator",
        (Locale::En, Role::SalesAgent) => "Sales agent",
        (Locale::En, Role::Viewer) => "Viewer",
        (_, r) => r.as_str(),
    }
}

pub(super) fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a portal page failed to render");
        include_str!("../../templates/fallback.html").to_string()
    })
}

/// The navigation of a signed-in page.
pub(crate) struct Nav {
    pub email: String,
    pub role: &'static str,
    pub admin: bool,
    /// May write offers, invitations and campaigns (sales agents and administrators).
    pub writer: bool,
    pub current: &'static str,
    pub sign_out_csrf: String,
    pub everywhere_csrf: String,
}

impl Nav {
    pub(crate) fn new(
        l: Locale,
        u: &UserRow,
        current: &'static str,
        sign_out_csrf: String,
        everywhere_csrf: String,
    ) -> Nav {
        Nav {
            email: u.email.as_str().to_string(),
            role: role_name(l, u.role),
            admin: u.role == Role::Admin,
            writer: u.role.allows(Role::SalesAgent),
            current,
            sign_out_csrf,
            everywhere_csrf,
        }
    }
}

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage<'a> {
    t: &'static PT,
    title: &'static str,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    sent: bool,
}

/// The sign-in form; `sent`: the one answer after a request; `error`: the email field's.
pub(crate) fn sign_in_page(
    l: Locale,
    csrf: &str,
    email: &str,
    error: Option<&str>,
    sent: bool,
) -> String {
    let t = texts(l);
    render(&SignInPage {
        t,
        title: t.sign_in_title.0,
        csrf,
        email,
        error,
        sent,
    })
}

#[derive(Template)]
#[template(path = "portal/sign_in_link.html")]
struct LinkPage<'a> {
    t: &'static PT,
    title: &'static str,
    action: &'a str,
    csrf: &'a str,
    usable: bool,
}

/// A sign-in link's page: one button (a POST redeems it), or why it cannot be used.
pub(crate) fn link_page(l: Locale, action: &str, csrf: &str, usable: bool) -> String {
    let t = texts(l);
    render(&LinkPage {
        t,
        title: t.link_title.0,
        action,
        csrf,
        usable,
    })
}

#[derive(Template)]
#[template(path = "portal/forbidden.html")]
struct ForbiddenPage<'a> {
    t: &'static PT,
    title: &'static str,
    nav: &'a Nav,
}

/// The 403 page of a signed-in user whose role does not allow a page.
pub(crate) fn forbidden_page(l: Locale, nav: &Nav) -> String {
    let t = texts(l);
    render(&ForbiddenPage {
        t,
        title: t.forbidden_title.0,
        nav,
    })
}

/// A user's row on the users page.
pub(crate) struct UserLine {
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub language: &'static str,
    pub active: bool,
    pub me: bool,
    /// The deactivate (active user) or reactivate (deactivated user) form's token.
    pub csrf: String,
    pub role_value: &'static str,
    pub role_csrf: String,
}

impl UserLine {
    pub(crate) fn new(
        l: Locale,
        u: &UserRow,
        me: bool,
        csrf: String,
        role_csrf: String,
    ) -> UserLine {
        UserLine {
            email: u.email.as_str().to_string(),
            name: u.name.clone(),
            role: role_name(l, u.role),
            language: u.language.as_str(),
            active: u.active(),
            me,
            csrf,
            role_value: u.role.as_str(),
            role_csrf,
        }
    }
}

/// The invite form's values and errors (field name, message).
#[derive(Default)]
pub(crate) struct InviteForm {
    pub email: String,
    pub name: String,
    pub role: String,
    pub language: String,
    pub errors: Vec<(String, String)>,
    pub invited: bool,
}

impl InviteForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "portal/users.html")]
struct UsersPage<'a> {
    t: &'static PT,
    title: &'static str,
    nav: &'a Nav,
    users: &'a [UserLine],
    form: &'a InviteForm,
    csrf: &'a str,
    roles: [(&'static str, &'static str); 3],
    languages: [(&'static str, &'static str); 2],
}

pub(crate) fn users_page(
    l: Locale,
    nav: &Nav,
    users: &[UserLine],
    form: &InviteForm,
    csrf: &str,
) -> String {
    let t = texts(l);
    render(&UsersPage {
        t,
        title: t.users_title.0,
        nav,
        users,
        form,
        csrf,
        roles: [
            ("viewer", role_name(l, Role::Viewer)),
            ("sales_agent", role_name(l, Role::SalesAgent)),
            ("admin", role_name(l, Role::Admin)),
        ],
        languages: [("de", "Deutsch"), ("en", "English")],
    })
}

/// The audit page's filter, as typed (shown again in the form).
#[derive(Default)]
pub(crate) struct AuditForm {
    pub actor: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub errors: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/audit.html")]
struct AuditPage<'a> {
    t: &'static PT,
    title: &'static str,
    nav: &'a Nav,
    form: &'a AuditForm,
    rows: Vec<AuditLine<'a>>,
    next: Option<&'a str>,
}

struct AuditLine<'a> {
    at: String,
    r: &'a AuditRow,
}

/// The audit log, newest first; `next`: the query string of the next (older) page.
pub(crate) fn audit_page(
    l: Locale,
    nav: &Nav,
    form: &AuditForm,
    rows: &[AuditRow],
    next: Option<&str>,
) -> String {
    let t = texts(l);
    render(&AuditPage {
        t,
        title: t.audit_title.0,
        nav,
        form,
        rows: rows
            .iter()
            .map(|r| AuditLine {
                at: r.at.to_datetime().format("%Y-%m-%d %H:%M:%S").to_string(),
                r,
            })
            .collect(),
        next,
    })
}

/// A signed-in user for the views' tests: an administrator whose name is hostile markup.
#[cfg(test)]
pub(crate) fn test_admin() -> UserRow {
    UserRow {
        id: "u1".into(),
        email: crate::core::domain::EmailAddress::parse("a@b.example").unwrap(),
        name: "\"><script>x</script>".into(),
        language: Locale::De,
        role: Role::Admin,
        created_at: crate::core::domain::Timestamp(0),
        created_by: "cli".into(),
        deactivated_at: None,
    }
}

/// What every portal page's view test checks: nothing unescaped, the language, a heading, a
/// label for every visible input, select and textarea, a CSRF field in every POST form.
#[cfg(test)]
pub(crate) fn check_page(l: Locale, name: &str, html: &str) {
    assert!(!html.contains("<script>"), "{l}/{name}");
    assert!(html.contains(&format!("<html lang=\"{l}\">")), "{l}/{name}");
    assert!(html.contains("<h1>"), "{l}/{name}: a heading");
    for (i, _) in html
        .match_indices("<input type=\"")
        .chain(html.match_indices("<select"))
        .chain(html.match_indices("<textarea"))
    {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag
            .split("id=\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{l}/{name}: no id in {tag}"))
            .split('"')
            .next()
            .unwrap();
        assert!(
            html.contains(&format!("<label for=\"{id}\">")),
            "{l}/{name}: no label for {id}"
        );
    }
    assert_eq!(
        html.matches("method=\"post\"").count(),
        html.matches("name=\"csrf\"").count(),
        "{l}/{name}: a POST form without its CSRF field"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{EmailAddress, Timestamp};

    fn user(role: Role) -> UserRow {
        UserRow {
            id: "u1".into(),
            email: EmailAddress::parse("a@b.example").unwrap(),
            name: "<script>alert(1)</script>".into(),
            language: Locale::De,
            role,
            created_at: Timestamp(0),
            created_by: "cli".into(),
            deactivated_at: None,
        }
    }

    /// Every portal page in both languages, with hostile values and every error shown.
    fn all_pages(l: Locale) -> Vec<(&'static str, String)> {
        let u = user(Role::Admin);
        let nav = Nav::new(l, &u, "users", "t1".into(), "t2".into());
        let evil = "\"><script>x</script>";
        let form = InviteForm {
            email: evil.into(),
            name: evil.into(),
            role: "admin".into(),
            language: "en".into(),
            errors: vec![
                ("email".into(), evil.into()),
                ("name".into(), "empty".into()),
            ],
            invited: true,
        };
        let lines = vec![
            UserLine::new(l, &u, true, "t3".into(), "t4".into()),
            UserLine::new(l, &user(Role::Viewer), false, "t3".into(), "t4".into()),
        ];
        let row = AuditRow {
            id: 1,
            at: Timestamp(0),
            user_id: None,
            actor: evil.into(),
            action: "user.create".into(),
            target: evil.into(),
            client: "127.0.0.1".into(),
            detail: evil.into(),
        };
        let audit = AuditForm {
            actor: evil.into(),
            errors: vec![("from".into(), evil.into())],
            ..Default::default()
        };
        vec![
            ("sign_in", sign_in_page(l, "c", evil, Some(evil), true)),
            ("link", link_page(l, "/portal/sign-in/X", "c", true)),
            ("link_gone", link_page(l, "/portal/sign-in/X", "", false)),
            ("forbidden", forbidden_page(l, &nav)),
            ("users", users_page(l, &nav, &lines, &form, "c")),
            (
                "audit",
                audit_page(l, &nav, &audit, &[row], Some("cursor=1.1")),
            ),
        ]
    }

    #[test]
    fn pages_escape_label_every_field_and_speak_the_language() {
        for l in Locale::ALL {
            for (name, html) in all_pages(l) {
                check_page(l, name, &html);
            }
        }
        let de = sign_in_page(Locale::De, "c", "", None, false);
        assert!(de.contains("Anmeldelink senden"));
        let en = sign_in_page(Locale::En, "c", "", None, false);
        assert!(en.contains("Send sign-in link"));
    }
}

// The offers section's views: a child of this module (the layout reads `PT`).
#[path = "offers/templates.rs"]
pub(super) mod offers;

// The customers' and resellers' views: children of this module (the layout reads `PT`).
#[path = "customers/view.rs"]
pub(super) mod customers;
#[path = "resellers/view.rs"]
pub(super) mod resellers;

// The company section's views: a child of this module (the layout reads `PT`).
#[path = "company/view.rs"]
pub(super) mod company;

// The schedules section's views.
#[path = "schedules/view.rs"]
pub(super) mod schedules;

// The jobs section's views.
#[path = "jobs/view.rs"]
pub(super) mod jobs;

// The workflows section's views.
#[path = "workflows/view.rs"]
pub(super) mod workflows;

// A lifecycle instance's page.
#[path = "instances/view.rs"]
pub(super) mod instances;
