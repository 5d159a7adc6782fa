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
