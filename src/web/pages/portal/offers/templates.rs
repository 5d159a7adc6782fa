//! The offers section's view models and askama templates (`templates/portal/offers/`). A
//! child of `portal::view` (mounted there by path) because the layout reads `PT`'s texts.
//! Pure: no HTTP; every value escaped by the templates.

use askama::Template;

use super::{Nav, PT, render, texts};
use crate::core::domain::{Locale, OfferKind};
use crate::core::offer::OfferView;
use crate::offers::pages::{self, Delivery, OfferDetail};
use crate::web::pages::portal::offers::texts::{KINDS, STATES, XT, kind_name, state_name, xt};
use crate::web::pages::portal::offers::{iso, time};

pub(crate) fn slug(k: OfferKind) -> &'static str {
    match k {
        OfferKind::Trial => "trial",
        OfferKind::Purchase => "purchase",
        OfferKind::DelegatedAdmin => "delegated-admin",
    }
}

fn title(x: &XT, k: OfferKind) -> &'static str {
    match k {
        OfferKind::Trial => x.new_trial,
        OfferKind::Purchase => x.new_purchase,
        OfferKind::DelegatedAdmin => x.new_delegated_admin,
    }
}

/// Field errors: (field, message); the first for a field is shown next to it.
#[derive(Default, Clone)]
pub(crate) struct Errors(pub Vec<(String, String)>);

impl Errors {
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Template)]
#[template(path = "portal/offers/not_found.html")]
struct NotFoundPage<'a> {
    t: &'static PT,
    x: &'static XT,
    title: &'static str,
    nav: &'a Nav,
    typed: &'a str,
}

pub(crate) fn not_found_html(l: crate::core::domain::Locale, nav: &Nav, typed: &str) -> String {
    let x = xt(l);
    render(&NotFoundPage {
        t: texts(l),
        x,
        title: x.not_found_title,
        nav,
        typed,
    })
}

/// The offer form's values as typed, and its errors.
#[derive(Default)]
pub(crate) struct OfferForm {
    pub location: String,
    pub product: String,
    /// (product id, licences as typed) for purchase offers.
    pub licences: Vec<(String, String)>,
    pub delegated_admin: String,
    pub auto_extend: bool,
    pub expires: String,
    pub message: String,
    pub recipients: String,
    pub language: String,
    pub errors: Errors,
}

impl OfferForm {
    pub(crate) fn licences_of(&self, id: &str) -> &str {
        self.licences
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A catalog product as the form shows it.
pub(crate) struct ProductChoice {
    pub id: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/offers/new.html")]
struct NewPage<'a> {
    t: &'static PT,
    x: &'static XT,
    title: &'static str,
    nav: &'a Nav,
    action: String,
    /// None: step 1 (choose the country).
    country: Option<String>,
    countries: Vec<String>,
    country_error: Option<String>,
    kind: &'static str,
    locations: Vec<(String, String)>,
    products: Vec<ProductChoice>,
    form: &'a OfferForm,
    csrf: &'a str,
    default_expiry: String,
    latest_expiry: String,
    languages: [(&'static str, &'static str); 2],
}

impl NewPage<'_> {
    fn error(&self, f: &str) -> Option<&str> {
        self.form.errors.get(f)
    }
}

pub(crate) struct NewView<'a> {
    pub kind: OfferKind,
    pub country: Option<String>,
    pub countries: Vec<String>,
    pub country_error: Option<String>,
    pub locations: Vec<(String, String)>,
    pub products: Vec<ProductChoice>,
    pub form: &'a OfferForm,
    pub default_expiry: String,
    pub latest_expiry: String,
}

pub(crate) fn new_page(l: Locale, nav: &Nav, v: NewView<'_>, csrf: &str) -> String {
    let x = xt(l);
    render(&NewPage {
        t: texts(l),
        x,
        title: title(x, v.kind),
        nav,
        action: format!("/portal/offers/new/{}", slug(v.kind)),
        country: v.country,
        countries: v.countries,
        country_error: v.country_error,
        kind: slug(v.kind),
        locations: v.locations,
        products: v.products,
        form: v.form,
        csrf,
        default_expiry: v.default_expiry,
        latest_expiry: v.latest_expiry,
        languages: [("de", "Deutsch"), ("en", "English")],
    })
}

/// The invite form (on the result page and the offer's page) as typed.
#[derive(Default)]
pub(crate) struct InviteForm {
    pub recipients: String,
    pub language: String,
    pub errors: Errors,
    /// Invitations just sent (from the query after a 303).
    pub invited: Option<usize>,
}

#[derive(Template)]
#[template(path = "portal/offers/created.html")]
struct CreatedPage<'a> {
    t: &'static PT,
    x: &'static XT,
    title: &'static str,
    nav: &'a Nav,
    offer_id: &'a str,
    kind: &'static str,
    link: &'a str,
    invite: &'a InviteForm,
    csrf: &'a str,
    action: String,
    back: &'static str,
    languages: [(&'static str, &'static str); 2],
}

pub(crate) fn created_page(
    l: Locale,
    nav: &Nav,
    o: &crate::core::offer::OfferView,
    invite: &InviteForm,
    csrf: &str,
) -> String {
    let x = xt(l);
    render(&CreatedPage {
        t: texts(l),
        x,
        title: x.created_title,
        nav,
        offer_id: o.offer.offer_id.as_str(),
        kind: kind_name(l, o.offer.kind),
        link: &o.offer.link,
        invite,
        csrf,
        action: format!("/portal/offers/{}/invite", o.offer.offer_id),
        back: "created",
        languages: [("de", "Deutsch"), ("en", "English")],
    })
}

/// The list's filters as typed (shown again in the form).
#[derive(Default)]
pub(crate) struct ListForm {
    pub state: String,
    pub kind: String,
    pub location: String,
    pub from: String,
    pub to: String,
    pub created_by: String,
    pub errors: Errors,
}

/// One offer's row.
pub(crate) struct Row {
    pub offer_id: String,
    pub kind: &'static str,
    pub state: String,
    pub location: String,
    pub country: String,
    pub products: String,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: String,
}

impl Row {
    pub(crate) fn new(l: Locale, o: &OfferView) -> Row {
        let r = &o.offer;
        Row {
            offer_id: r.offer_id.to_string(),
            kind: kind_name(l, r.kind),
            state: state_name(l, &o.state),
            location: r.location_id.clone(),
            country: r.country.as_str().to_string(),
            products: r
                .products
                .iter()
                .map(|p| match p.licences {
                    Some(n) => format!("{} × {n}", p.name),
                    None => p.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            created_at: time(r.created_at),
            created_by: r.created_by.clone(),
            expires_at: time(r.expires_at),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/offers/list.html")]
struct ListPage<'a> {
    t: &'static PT,
    x: &'static XT,
    title: &'static str,
    nav: &'a Nav,
    form: &'a ListForm,
    rows: &'a [Row],
    next: Option<&'a str>,
    paged: bool,
    kinds: Vec<(&'static str, &'static str)>,
    states: Vec<(&'static str, String)>,
    locations: &'a [(String, String)],
}

pub(crate) fn list_page(
    l: Locale,
    nav: &Nav,
    form: &ListForm,
    rows: &[Row],
    next: Option<&str>,
    paged: bool,
    locations: &[(String, String)],
) -> String {
    let x = xt(l);
    render(&ListPage {
        t: texts(l),
        x,
        title: x.offers_title,
        nav,
        form,
        rows,
        next,
        paged,
        kinds: KINDS
            .iter()
            .map(|k| (k.as_str(), kind_name(l, *k)))
            .collect(),
        states: STATES.iter().map(|s| (*s, state_name(l, s))).collect(),
        locations,
    })
}

/// An invitation's row.
pub(crate) struct InvitationLine {
    pub recipient: String,
    pub language: String,
    pub state: String,
    pub created_at: String,
    /// (ok, bad, text, reason): the latest email's delivery.
    pub delivery: String,
    pub delivery_class: &'static str,
    pub reason: String,
    pub sent_at: String,
}

pub(crate) struct AcceptanceLine {
    pub organisation: String,
    pub domain: String,
    pub admin_email: String,
    pub products: String,
    pub state: String,
    pub accepted_at: String,
}

pub(crate) struct RelationshipLine {
    pub domain: String,
    pub role: String,
    pub state: String,
    pub ends_at: String,
}

pub(crate) struct CampaignLine {
    pub id: String,
    pub name: String,
    pub state: String,
    pub created_at: String,
}

pub(crate) struct HistoryLine {
    pub iso: String,
    pub at: String,
    pub event: String,
    pub from: String,
    pub to: String,
    pub actor: String,
}

/// The offer's page, ready to render.
pub(crate) struct OfferPageView {
    pub offer_id: String,
    pub kind: &'static str,
    pub state: String,
    pub open: bool,
    pub location: String,
    pub location_gone: bool,
    pub country: String,
    pub products: Vec<(String, String)>,
    pub delegated_admin: String,
    pub auto_extend: bool,
    pub message: Option<String>,
    pub link: String,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: String,
    pub invitations: Vec<InvitationLine>,
    pub acceptances: Vec<AcceptanceLine>,
    pub unconfirmed: i64,
    pub relationships: Vec<RelationshipLine>,
    pub campaigns: Vec<CampaignLine>,
    pub history: Vec<HistoryLine>,
}

fn delivery_text(x: &XT, d: &Delivery) -> (String, &'static str, String, String) {
    match d {
        Delivery::Queued { last_error } => (
            x.d_queued.into(),
            "",
            last_error.clone().unwrap_or_default(),
            String::new(),
        ),
        Delivery::Sent { at, reply } => (
            x.d_sent.into(),
            "ok",
            reply.clone().unwrap_or_default(),
            at.map(time).unwrap_or_default(),
        ),
        Delivery::Bounced { reason } => (x.d_bounced.into(), "bad", reason.clone(), String::new()),
        Delivery::Failed { reason } => (x.d_failed.into(), "bad", reason.clone(), String::new()),
    }
}

fn da_name(x: &XT, r: Option<&str>) -> String {
    match r {
        Some("full") => x.da_full.into(),
        Some("limited") => x.da_limited.into(),
        Some(other) => other.into(),
        None => x.da_none.into(),
    }
}

impl OfferPageView {
    pub(crate) fn new(l: Locale, d: &OfferDetail) -> OfferPageView {
        let x = xt(l);
        let t = &d.tracking;
        let o = &t.offer.offer;
        let invitations = t
            .invitations
            .iter()
            .map(|i| {
                let (delivery, class, reason, sent_at) = match i.emails.last() {
                    Some(e) => delivery_text(x, &pages::delivery(e, &d.bounces)),
                    None => (x.no_email.into(), "", String::new(), String::new()),
                };
                InvitationLine {
                    recipient: i.invitation.recipient.as_str().to_string(),
                    language: i.invitation.locale.clone(),
                    state: state_name(l, &i.state),
                    created_at: time(i.invitation.created_at),
                    delivery,
                    delivery_class: class,
                    reason,
                    sent_at,
                }
            })
            .collect();
        let lines = |ps: &[crate::core::offer::OfferLine]| {
            ps.iter()
                .map(|p| match p.licences {
                    Some(n) => format!("{} × {n}", p.name),
                    None => p.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        OfferPageView {
            offer_id: o.offer_id.to_string(),
            kind: kind_name(l, o.kind),
            state: state_name(l, &t.offer.state),
            open: t.offer.state == "open",
            location: match &t.location {
                Some(loc) => format!("{} ({})", loc.name, loc.id),
                None => o.location_id.clone(),
            },
            location_gone: t.offer.location_removed_at.is_some() || t.location.is_none(),
            country: o.country.as_str().to_string(),
            products: o
                .products
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        p.licences.map(|n| n.to_string()).unwrap_or_default(),
                    )
                })
                .collect(),
            delegated_admin: da_name(x, o.delegated_admin.map(|r| r.as_str())),
            auto_extend: o.auto_extend,
            message: o.message.clone(),
            link: o.link.clone(),
            created_at: time(o.created_at),
            created_by: o.created_by.clone(),
            expires_at: time(o.expires_at),
            invitations,
            acceptances: t
                .acceptances
                .iter()
                .map(|a| AcceptanceLine {
                    organisation: a.acceptance.organisation.clone(),
                    domain: a.acceptance.domain.as_str().to_string(),
                    admin_email: a.acceptance.admin_email.as_str().to_string(),
                    products: lines(&a.acceptance.products),
                    state: state_name(l, &a.state),
                    accepted_at: time(a.acceptance.accepted_at),
                })
                .collect(),
            unconfirmed: t.unconfirmed_acceptances,
            relationships: t
                .acceptances
                .iter()
                .filter_map(|a| {
                    a.relationship.as_ref().map(|r| RelationshipLine {
                        domain: a.acceptance.domain.as_str().to_string(),
                        role: da_name(x, r.role.as_deref()),
                        state: state_name(l, &r.state),
                        ends_at: r.ends_at.clone().unwrap_or_default(),
                    })
                })
                .collect(),
            campaigns: d
                .campaigns
                .iter()
                .map(|c| CampaignLine {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    state: state_name(l, c.state.as_str()),
                    created_at: time(c.created_at),
                })
                .collect(),
            history: t
                .history
                .iter()
                .map(|h| HistoryLine {
                    iso: iso(h.at),
                    at: time(h.at),
                    event: h.event.clone(),
                    from: h
                        .from
                        .as_deref()
                        .map(|s| state_name(l, s))
                        .unwrap_or_default(),
                    to: state_name(l, &h.to),
                    actor: h.actor.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/offers/offer.html")]
struct OfferPage<'a> {
    t: &'static PT,
    x: &'static XT,
    title: &'a str,
    nav: &'a Nav,
    v: &'a OfferPageView,
    invite: &'a InviteForm,
    csrf: &'a str,
    action: String,
    back: &'static str,
    withdrawn: bool,
    languages: [(&'static str, &'static str); 2],
}

pub(crate) fn offer_page(
    l: Locale,
    nav: &Nav,
    v: &OfferPageView,
    invite: &InviteForm,
    csrf: &str,
    withdrawn: bool,
) -> String {
    render(&OfferPage {
        t: texts(l),
        x: xt(l),
        title: &v.offer_id,
        nav,
        v,
        invite,
        csrf,
        action: format!("/portal/offers/{}/invite", v.offer_id),
        back: "offer",
        withdrawn,
        languages: [("de", "Deutsch"), ("en", "English")],
    })
}

#[derive(Template)]
#[template(path = "portal/offers/withdraw.html")]
struct WithdrawPage<'a> {
    t: &'static PT,
    x: &'static XT,
    title: &'static str,
    nav: &'a Nav,
    offer_id: &'a str,
    state: String,
    open: bool,
    csrf: &'a str,
    error: Option<&'a str>,
}

pub(crate) fn withdraw_html(
    l: Locale,
    nav: &Nav,
    offer_id: &str,
    state: &str,
    csrf: &str,
    error: Option<&str>,
) -> String {
    let x = xt(l);
    render(&WithdrawPage {
        t: texts(l),
        x,
        title: x.withdraw_title,
        nav,
        offer_id,
        state: state_name(l, state),
        open: state == "open",
        csrf,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::campaign::{CampaignRow, CampaignState};
    use crate::core::domain::{
        AdminRole, Country, DomainName, EmailAddress, InstanceId, OfferId, Role, Timestamp,
    };
    use crate::core::instance::{EmailRow, HistoryRow};
    use crate::core::offer::{
        AcceptanceRow, AcceptanceView, InvitationRow, InvitationView, OfferLine, OfferRow,
        OfferTracking, OfferView, RelationshipView,
    };
    use crate::core::portal::UserRow;
    use crate::offers::pages::EmailBounce;

    const EVIL: &str = "\"><script>x</script>";

    fn detail() -> OfferDetail {
        let offer_id = OfferId::generate();
        let row = OfferRow {
            offer_id: offer_id.clone(),
            instance_id: InstanceId::generate(),
            kind: OfferKind::Purchase,
            location_id: EVIL.into(),
            country: Country::parse("DE").unwrap(),
            products: vec![OfferLine {
                id: crate::core::domain::ProductId::parse("m365-e3").unwrap(),
                name: EVIL.into(),
                licences: Some(5),
            }],
            delegated_admin: Some(AdminRole::Limited),
            auto_extend: true,
            key_id: "k".into(),
            link: format!("https://x.example/o/{EVIL}"),
            message: Some(EVIL.into()),
            created_by: EVIL.into(),
            created_at: Timestamp(0),
            expires_at: Timestamp(1),
        };
        let email = |mid: &str, state: &str| EmailRow {
            message_id: mid.into(),
            template: "t".into(),
            locale: "en".into(),
            role: "customer".into(),
            recipient: "a@b.example".into(),
            state: state.into(),
            attempts: 1,
            last_error: Some(EVIL.into()),
            reply: Some(EVIL.into()),
            created_at: Timestamp(0),
            sent_at: Some(Timestamp(0)),
        };
        let invitation = |mid: &str, state: &str| InvitationView {
            invitation: InvitationRow {
                instance_id: InstanceId::generate(),
                offer_id: offer_id.clone(),
                recipient: EmailAddress::parse("a@b.example").unwrap(),
                locale: "en".into(),
                created_by: EVIL.into(),
                created_at: Timestamp(0),
            },
            state: EVIL.into(),
            emails: vec![email(mid, state)],
        };
        OfferDetail {
            tracking: OfferTracking {
                offer: OfferView {
                    offer: row,
                    state: "open".into(),
                    final_at: None,
                    location_removed_at: Some(Timestamp(0)),
                },
                location: None,
                invitations: vec![
                    invitation("m1", "sent"),
                    invitation("m2", "failed"),
                    invitation("m3", "queued"),
                    invitation("m4", "sent"),
                ],
                acceptances: vec![AcceptanceView {
                    acceptance: AcceptanceRow {
                        instance_id: InstanceId::generate(),
                        offer_id: offer_id.clone(),
                        organisation: EVIL.into(),
                        domain: DomainName::parse("contoso.example").unwrap(),
                        admin_email: EmailAddress::parse("admin@contoso.example").unwrap(),
                        products: vec![],
                        delegated_admin: None,
                        relationship_id: None,
                        accepted_at: Timestamp(0),
                        confirmed_at: Some(Timestamp(0)),
                    },
                    state: EVIL.into(),
                    relationship: Some(RelationshipView {
                        id: InstanceId::generate(),
                        role: Some(EVIL.into()),
                        state: EVIL.into(),
                        ends_at: Some(EVIL.into()),
                    }),
                    signup: None,
                }],
                unconfirmed_acceptances: 2,
                unmatched_signups: vec![],
                history: vec![HistoryRow {
                    seq: 1,
                    event: EVIL.into(),
                    from: Some(EVIL.into()),
                    to: EVIL.into(),
                    at: Timestamp(0),
                    actor: EVIL.into(),
                }],
            },
            campaigns: vec![CampaignRow {
                id: EVIL.into(),
                offer_id: offer_id.to_string(),
                name: EVIL.into(),
                template: "t".into(),
                state: CampaignState::Running,
                pause_reason: None,
                consecutive_failures: 0,
                created_by: EVIL.into(),
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
                finished_at: None,
                max_per_minute: None,
                reminder_after: None,
                reminder_template: None,
            }],
            bounces: vec![EmailBounce {
                message_id: "m4".into(),
                kind: "hard".into(),
                status: "5.1.1".into(),
                diagnostic: Some(EVIL.into()),
                received_at: Timestamp(0),
            }],
        }
    }

    fn pages(l: Locale) -> Vec<(&'static str, String)> {
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
        let nav = Nav::new(l, &u, "offers", "t1".into(), "t2".into());
        let mut form = OfferForm {
            location: EVIL.into(),
            product: EVIL.into(),
            licences: vec![("m365-e3".into(), EVIL.into())],
            delegated_admin: EVIL.into(),
            auto_extend: true,
            expires: EVIL.into(),
            message: EVIL.into(),
            recipients: EVIL.into(),
            language: "de".into(),
            errors: Errors::default(),
        };
        for f in [
            "location",
            "product",
            "products",
            "delegated_admin",
            "auto_extend",
            "expires",
            "message",
            "recipients",
        ] {
            form.errors.add(f, EVIL);
        }
        let choice = || ProductChoice {
            id: "m365-e3".into(),
            name: EVIL.into(),
            min: 1,
            max: 300,
            value: EVIL.into(),
            error: Some(EVIL.into()),
        };
        let view = |kind, country: Option<&str>| NewView {
            kind,
            country: country.map(str::to_string),
            countries: vec!["DE".into(), "AT".into()],
            country_error: country.is_none().then(|| EVIL.to_string()),
            locations: vec![(EVIL.into(), EVIL.into())],
            products: vec![choice()],
            form: &form,
            default_expiry: "2026-12-01".into(),
            latest_expiry: "2027-11-01".into(),
        };
        let mut invite = InviteForm {
            recipients: EVIL.into(),
            language: "en".into(),
            errors: Errors::default(),
            invited: Some(3),
        };
        invite.errors.add("recipients", EVIL);
        let d = detail();
        let v = OfferPageView::new(l, &d);
        let list = ListForm {
            created_by: EVIL.into(),
            from: EVIL.into(),
            errors: Errors(vec![("from".into(), EVIL.into())]),
            ..Default::default()
        };
        let rows = vec![Row::new(l, &d.tracking.offer)];
        let locations = vec![(EVIL.to_string(), EVIL.to_string())];
        vec![
            (
                "step1",
                new_page(l, &nav, view(OfferKind::Purchase, None), "c"),
            ),
            (
                "trial",
                new_page(l, &nav, view(OfferKind::Trial, Some("DE")), "c"),
            ),
            (
                "purchase",
                new_page(l, &nav, view(OfferKind::Purchase, Some("DE")), "c"),
            ),
            (
                "delegated_admin",
                new_page(l, &nav, view(OfferKind::DelegatedAdmin, Some("DE")), "c"),
            ),
            (
                "created",
                created_page(l, &nav, &d.tracking.offer, &invite, "c"),
            ),
            ("offer", offer_page(l, &nav, &v, &invite, "c", true)),
            (
                "list",
                list_page(l, &nav, &list, &rows, Some("before=1"), true, &locations),
            ),
            (
                "withdraw",
                withdraw_html(l, &nav, "PF-X", "open", "c", None),
            ),
            (
                "withdraw_closed",
                withdraw_html(l, &nav, "PF-X", EVIL, "c", Some(EVIL)),
            ),
            ("not_found", not_found_html(l, &nav, EVIL)),
        ]
    }

    #[test]
    fn offer_pages_escape_label_every_field_and_speak_the_language() {
        for l in Locale::ALL {
            for (name, html) in pages(l) {
                assert!(!html.contains("<script>"), "{l}/{name}");
                assert!(html.contains(&format!("<html lang=\"{l}\">")), "{l}/{name}");
                assert!(html.contains("<h1>"), "{l}/{name}: a heading");
                for tag in ["<input ", "<select", "<textarea"] {
                    for (i, _) in html.match_indices(tag) {
                        let t = &html[i..i + html[i..].find('>').unwrap()];
                        if t.contains("type=\"hidden\"") {
                            continue;
                        }
                        let id = t.split(" id=\"").nth(1).unwrap().split('"').next().unwrap();
                        assert!(
                            html.contains(&format!("<label for=\"{id}\">")),
                            "{l}/{name}: {id}"
                        );
                    }
                }
                assert_eq!(
                    html.matches("method=\"post\"").count(),
                    html.matches("name=\"csrf\"").count(),
                    "{l}/{name}"
                );
                // Every field error is linked from the summary and described by the field.
                let pat = "class=\"field-error\" id=\"";
                for (i, _) in html.match_indices(pat) {
                    let id = html[i + pat.len()..].split('"').next().unwrap();
                    assert!(
                        html.contains(&format!("aria-describedby=\"{id}\""))
                            || html.contains(&format!(" {id}\"")),
                        "{l}/{name}: {id} describes its field"
                    );
                }
            }
        }
        let de = pages(Locale::De);
        let en = pages(Locale::En);
        assert!(de[2].1.contains("Kaufangebot erstellen") && de[2].1.contains("Lizenzen"));
        assert!(en[2].1.contains("Create a purchase offer") && en[2].1.contains("Licences"));
        // The offer's page: each delivery state, the timeline, the hard bounce's reason.
        let offer = &en[5].1;
        for s in [
            "delivered to the mail server",
            "failed",
            "waiting to be sent",
            "bounced",
        ] {
            assert!(offer.contains(s), "{s}");
        }
        assert!(offer.contains("hard 5.1.1"));
        assert!(offer.contains("<ol id=\"history\">") && offer.contains("<time datetime=\""));
        assert!(offer.contains("readonly"));
    }
}
