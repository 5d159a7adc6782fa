//! `/portal`: the partner overview, the first page after signing in (every role). What the
//! partner wants to see first: open offers, invitations, acceptances and delegated-admin
//! relationships by state, the next relationship ends, running campaigns with their progress,
//! and the funnel sent → delivered → link opened → accepted → completed of a period per offer
//! kind (filters in a GET form: period or from/to days, kind, location), drawn as an SVG on the
//! server. The links to the actions; the write actions for writers only.

mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::app::AppState;
use crate::core::domain::{Locale, OfferKind, Span, Timestamp};
use crate::core::overview::FunnelFilter;
use crate::offers;
use crate::web::pages::page;

use super::{SignedIn, field, parse_day, unavailable};
use view::OverviewForm;

const DAY: i64 = 86_400_000;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/portal", get(overview))
}

/// The filter from the query: the funnel's filter, or the form with its errors.
fn parse_filter(
    l: Locale,
    now: Timestamp,
    pairs: &[(String, String)],
    locations: &[(String, String)],
) -> (OverviewForm, Option<FunnelFilter>) {
    let o = view::otexts(l);
    let mut form = OverviewForm {
        period: field(pairs, "period").trim().into(),
        from: field(pairs, "from").trim().into(),
        to: field(pairs, "to").trim().into(),
        kind: field(pairs, "kind").trim().into(),
        location: field(pairs, "location").trim().into(),
        errors: vec![],
    };
    if form.period.is_empty() {
        form.period = "30".into();
    }
    let days = match form.period.as_str() {
        "7" => 7,
        "30" => 30,
        "90" => 90,
        _ => {
            form.errors.push(("period".into(), o.bad_period.into()));
            30
        }
    };
    let mut day = |name: &str, v: &str| {
        if v.is_empty() {
            return None;
        }
        let d = parse_day(v);
        if d.is_none() {
            form.errors
                .push((name.into(), format!("{v}: {}", o.bad_day)));
        }
        d
    };
    let (from_day, to_day) = (day("from", &form.from.clone()), day("to", &form.to.clone()));
    // Whole UTC days: a period is today and the days before it.
    let today = Timestamp(now.0.div_euclid(DAY) * DAY);
    let end = today.plus(Span(DAY));
    let (from, to) = match (from_day, to_day) {
        (Some(f), Some(t)) => (f, t.plus(Span(DAY))),
        (Some(f), None) => (f, end),
        (None, Some(t)) if form.from.is_empty() => {
            form.errors.push(("from".into(), o.no_from.into()));
            (t, t)
        }
        _ => (Timestamp(end.0 - days * DAY), end),
    };
    if from_day.is_some() && to.0 <= from.0 {
        form.errors.push(("to".into(), o.bad_range.into()));
    }
    let kind = if form.kind.is_empty() {
        None
    } else {
        match OfferKind::parse(&form.kind) {
            Ok(k) => Some(k),
            Err(_) => {
                form.errors.push(("kind".into(), o.bad_kind.into()));
                None
            }
        }
    };
    let location = if form.location.is_empty() {
        None
    } else if locations.iter().any(|(id, _)| *id == form.location) {
        Some(form.location.clone())
    } else {
        form.errors.push(("location".into(), o.bad_location.into()));
        None
    };
    let filter = FunnelFilter {
        from,
        to,
        kind,
        location,
    };
    let ok = form.errors.is_empty();
    (form, ok.then_some(filter))
}

async fn overview(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, crate::core::domain::Role::Viewer) {
        return r;
    }
    let pairs: Vec<(String, String)> = q
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .take(20)
                .collect()
        })
        .unwrap_or_default();
    let locations: Vec<(String, String)> = match offers::locations(&rt).await {
        Ok(ls) => ls
            .into_iter()
            .map(|l| {
                let label = format!("{} ({})", l.location.name, l.location.country);
                (l.location.id, label)
            })
            .collect(),
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let now = rt.clock.now();
    let (form, filter) = parse_filter(s.locale, now, &pairs, &locations);
    let end = Timestamp((now.0.div_euclid(DAY) + 1) * DAY);
    let shown = filter.clone().unwrap_or(FunnelFilter {
        from: Timestamp(end.0 - 30 * DAY),
        to: end,
        kind: None,
        location: None,
    });
    let v = match offers::overview::overview(&rt, &shown).await {
        Ok(v) => v,
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let status = if filter.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let (nav, set) = s.nav(&rt, "overview");
    page(
        &rt,
        status,
        view::overview_page(
            s.locale,
            &nav,
            &s.session.user.name,
            &form,
            &locations,
            &v,
            filter.is_some(),
        ),
        set,
    )
}
