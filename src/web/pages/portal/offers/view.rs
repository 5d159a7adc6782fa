//! `/portal/offers/{offer_id}`: tracking by Offer ID — the link, products, invitations with
//! each email's delivery state, acceptances, delegated-admin relationships, campaigns, and
//! the history as a timeline; invite more recipients (sales agents and up), withdraw
//! (administrators, after a confirmation page), download as CSV (`{id}.csv` or
//! `?format=csv`, every cell guarded against formula injection).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::campaigns::csv_cell;
use crate::core::domain::{OfferId, Role};
use crate::engine::EngineError;
use crate::offers::pages::{self, Delivery, OfferDetail};
use crate::offers::{self, OfferError};
use crate::portal::audit;
use crate::web::pages::{form_pairs, page};

use super::forms::invited_of;
use super::texts::xt;
use super::{nav_with, not_found, query_pairs};
use crate::web::pages::portal::view::offers::{
    InviteForm, OfferPageView, offer_page, withdraw_html,
};
use crate::web::pages::portal::{SignedIn, field, see_other, unavailable};

pub(super) async fn offer_response(
    rt: &AppState,
    s: &SignedIn,
    id: &OfferId,
    invite: &InviteForm,
    status: StatusCode,
) -> Response {
    offer_response_with(rt, s, id, invite, status, false).await
}

async fn offer_response_with(
    rt: &AppState,
    s: &SignedIn,
    id: &OfferId,
    invite: &InviteForm,
    status: StatusCode,
    withdrawn: bool,
) -> Response {
    let d = match pages::detail(rt, id).await {
        Ok(d) => d,
        Err(OfferError::OfferNotFound(_)) => return not_found(rt, s, id.as_str()),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let (nav, csrf, set) = nav_with(rt, s, "offers", &format!("/portal/offers/{id}/invite"));
    let v = OfferPageView::new(s.locale, &d);
    page(
        rt,
        status,
        offer_page(s.locale, &nav, &v, invite, &csrf, withdrawn),
        set,
    )
}

/// The offer's page (viewers and up), or its CSV (`{id}.csv`, `?format=csv`).
pub(super) async fn show(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let pairs = query_pairs(&q);
    let (typed, csv) = match id.strip_suffix(".csv") {
        Some(i) => (i, true),
        None => (id.as_str(), field(&pairs, "format") == "csv"),
    };
    let Ok(id) = OfferId::parse(typed) else {
        return not_found(&rt, &s, typed);
    };
    if csv {
        return match pages::detail(&rt, &id).await {
            Ok(d) => csv_response(&id, &d),
            Err(OfferError::OfferNotFound(_)) => not_found(&rt, &s, id.as_str()),
            Err(e) => unavailable(&rt, s.locale, &e),
        };
    }
    let form = InviteForm {
        language: s.locale.as_str().into(),
        invited: invited_of(&pairs),
        ..Default::default()
    };
    let withdrawn = field(&pairs, "withdrawn") == "1";
    offer_response_with(&rt, &s, &id, &form, StatusCode::OK, withdrawn).await
}

/// The offer's tracking as CSV: one row per fact (offer, product, invitation, acceptance,
/// relationship, campaign, history entry), every cell through `csv_cell`.
pub(crate) fn tracking_csv(d: &OfferDetail) -> Vec<u8> {
    let t = &d.tracking;
    let o = &t.offer.offer;
    let id = o.offer_id.as_str();
    let ts = |t: crate::core::domain::Timestamp| t.to_rfc3339();
    let mut rows: Vec<[String; 6]> = vec![[
        "record".into(),
        "offer_id".into(),
        "subject".into(),
        "state".into(),
        "at".into(),
        "detail".into(),
    ]];
    rows.push([
        "offer".into(),
        id.into(),
        o.kind.as_str().into(),
        t.offer.state.clone(),
        ts(o.created_at),
        format!(
            "location {}; country {}; expires {}; created by {}; link {}",
            o.location_id,
            o.country.as_str(),
            ts(o.expires_at),
            o.created_by,
            o.link
        ),
    ]);
    for p in &o.products {
        rows.push([
            "product".into(),
            id.into(),
            p.id.to_string(),
            String::new(),
            String::new(),
            format!(
                "{}{}",
                p.name,
                p.licences
                    .map(|n| format!("; {n} licences"))
                    .unwrap_or_default()
            ),
        ]);
    }
    for i in &t.invitations {
        let delivery = match i.emails.last().map(|e| pages::delivery(e, &d.bounces)) {
            Some(Delivery::Queued { last_error }) => {
                format!("queued {}", last_error.unwrap_or_default())
            }
            Some(Delivery::Sent { reply, .. }) => format!("sent {}", reply.unwrap_or_default()),
            Some(Delivery::Bounced { reason }) => format!("bounced {reason}"),
            Some(Delivery::Failed { reason }) => format!("failed {reason}"),
            None => "no email".into(),
        };
        rows.push([
            "invitation".into(),
            id.into(),
            i.invitation.recipient.as_str().into(),
            i.state.clone(),
            ts(i.invitation.created_at),
            delivery.trim().to_string(),
        ]);
    }
    for a in &t.acceptances {
        rows.push([
            "acceptance".into(),
            id.into(),
            a.acceptance.domain.as_str().into(),
            a.state.clone(),
            ts(a.acceptance.accepted_at),
            format!(
                "{}; {}",
                a.acceptance.organisation,
                a.acceptance.admin_email.as_str()
            ),
        ]);
        if let Some(r) = &a.relationship {
            rows.push([
                "relationship".into(),
                id.into(),
                a.acceptance.domain.as_str().into(),
                r.state.clone(),
                r.ends_at.clone().unwrap_or_default(),
                r.role.clone().unwrap_or_default(),
            ]);
        }
    }
    for c in &d.campaigns {
        rows.push([
            "campaign".into(),
            id.into(),
            c.id.clone(),
            c.state.as_str().into(),
            ts(c.created_at),
            c.name.clone(),
        ]);
    }
    for h in &t.history {
        rows.push([
            "history".into(),
            id.into(),
            h.event.clone(),
            h.to.clone(),
            ts(h.at),
            h.actor.clone(),
        ]);
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        if let Err(e) = w.write_record(r.iter().map(|c| csv_cell(c).into_owned())) {
            tracing::error!(error = %e, "writing an offer's CSV");
        }
    }
    w.into_inner().unwrap_or_default()
}

fn csv_response(id: &OfferId, d: &OfferDetail) -> Response {
    let mut r = (StatusCode::OK, tracking_csv(d)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn withdraw_response(
    rt: &AppState,
    s: &SignedIn,
    id: &OfferId,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let o = match offers::get(rt, id).await {
        Ok(o) => o,
        Err(OfferError::OfferNotFound(_)) => return not_found(rt, s, id.as_str()),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let (nav, csrf, set) = nav_with(rt, s, "offers", &format!("/portal/offers/{id}/withdraw"));
    page(
        rt,
        status,
        withdraw_html(s.locale, &nav, id.as_str(), &o.state, &csrf, error),
        set,
    )
}

/// The confirmation step of withdrawing (administrators).
pub(super) async fn withdraw_page(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let Ok(id) = OfferId::parse(&id) else {
        return not_found(&rt, &s, &id);
    };
    withdraw_response(&rt, &s, &id, StatusCode::OK, None).await
}

/// Withdraws the offer and its open invitations (administrators); then its page (303), or
/// the confirmation page saying it is closed already (409).
pub(super) async fn withdraw(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    if let Some(r) = s.csrf(
        &rt,
        &form_pairs(&body),
        &format!("/portal/offers/{id}/withdraw"),
    ) {
        return r;
    }
    let Ok(id) = OfferId::parse(&id) else {
        return not_found(&rt, &s, &id);
    };
    let actor = s.actor();
    match offers::withdraw(&rt, &id, &actor.label).await {
        Ok(_) => {}
        Err(OfferError::OfferNotFound(_)) => return not_found(&rt, &s, id.as_str()),
        Err(OfferError::OfferClosed { .. } | OfferError::Engine(EngineError::Rejected(_))) => {
            let x = xt(s.locale);
            return withdraw_response(&rt, &s, &id, StatusCode::CONFLICT, Some(x.closed)).await;
        }
        Err(e) => return unavailable(&rt, s.locale, &e),
    }
    if let Err(e) = audit::record(&rt, &actor, "offer.withdraw", id.as_str(), "").await {
        return unavailable(&rt, s.locale, &e);
    }
    see_other(&format!("/portal/offers/{id}?withdrawn=1"), None)
}
