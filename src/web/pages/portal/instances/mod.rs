//! `/portal/instances/{id}` (administrators): a lifecycle instance with its data (addresses
//! and secrets masked), history, timers and emails; `POST /portal/instances/event` sends an
//! event its state takes, `…/timer/reschedule` and `…/timer/cancel` move or cancel a scheduled
//! timer — the engine's services, as the CLI's `instances event|reschedule-timer|cancel-timer`
//! — each with its audit entry in the same transaction (both or neither).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::{InstanceId, Role, Timestamp};
use crate::engine::EngineError;
use crate::portal::audit;
use crate::store::StoreError;
use crate::web::pages::{form_pairs, page};

use super::view::Nav;
use super::view::instances::{Outcome, instance_page};
use super::{
    EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, not_found, see_other, unavailable,
};

const EVENT: &str = "/portal/instances/event";
const RESCHEDULE: &str = "/portal/instances/timer/reschedule";
const CANCEL: &str = "/portal/instances/timer/cancel";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/portal/instances/{id}", get(show))
        .route(EVENT, post(event))
        .route(RESCHEDULE, post(reschedule))
        .route(CANCEL, post(cancel))
}

/// The page, with what the last action did (`outcome`) and the reschedule field as typed.
async fn respond(
    rt: &AppState,
    s: &SignedIn,
    id: &InstanceId,
    outcome: Option<Outcome>,
    form_at: &str,
) -> Response {
    let d = match rt.engine.detail(id).await {
        Ok(d) => d,
        Err(EngineError::Store(StoreError::NotFound(_))) => return not_found(rt, s.locale),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let mut events: Vec<String> = rt
        .engine
        .definition(&d.workflow)
        .map(|def| {
            def.transitions
                .iter()
                .filter(|t| t.from.contains(&d.state))
                .map(|t| t.event.clone())
                .collect()
        })
        .unwrap_or_default();
    events.sort();
    events.dedup();
    let status = match outcome {
        Some(Outcome::Refused(_)) => StatusCode::CONFLICT,
        _ => StatusCode::OK,
    };
    let data = crate::jobs::inspect::masked_json(serde_json::Value::Object(d.data.clone()));
    let ([out, everywhere, ev, re, ca], set) = csrf_tokens(
        rt,
        &s.headers,
        [SIGN_OUT, EVERYWHERE, EVENT, RESCHEDULE, CANCEL],
    );
    let nav = Nav::new(s.locale, &s.session.user, "workflows", out, everywhere);
    page(
        rt,
        status,
        instance_page(
            s.locale,
            &nav,
            &d,
            &data,
            &events,
            outcome,
            form_at,
            &[ev, re, ca],
        ),
        set,
    )
}

async fn show(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let Ok(id) = InstanceId::parse(&id) else {
        return not_found(&rt, s.locale);
    };
    let outcome = (q.as_deref() == Some("done=1")).then_some(Outcome::Done);
    respond(&rt, &s, &id, outcome, "").await
}

/// The form's instance after the role and CSRF checks, or the response that refuses it.
#[allow(clippy::result_large_err)] // a refusal is the response itself, built once
fn checked(
    rt: &AppState,
    s: &SignedIn,
    f: &[(String, String)],
    path: &str,
) -> Result<InstanceId, Response> {
    if let Some(r) = s.require(rt, Role::Admin) {
        return Err(r);
    }
    if let Some(r) = s.csrf(rt, f, path) {
        return Err(r);
    }
    InstanceId::parse(field(f, "id")).map_err(|_| not_found(rt, s.locale))
}

/// After a write (its audit entry written with it): a 303 to the page.
fn written(id: &InstanceId) -> Response {
    see_other(&format!("/portal/instances/{}?done=1", id.as_str()), None)
}

async fn event(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    let f = form_pairs(&body);
    let id = match checked(&rt, &s, &f, EVENT) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let ev = field(&f, "event");
    let entry = audit::entry(&rt, &s.actor(), "instance.event", id.as_str(), ev);
    match rt.engine.fire_audited(&id, ev, &entry).await {
        Ok(_) => written(&id),
        Err(EngineError::Store(StoreError::NotFound(_))) => not_found(&rt, s.locale),
        Err(e @ (EngineError::Rejected(_) | EngineError::Store(StoreError::Conflict(_)))) => {
            respond(&rt, &s, &id, Some(Outcome::Refused(e.to_string())), "").await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

async fn reschedule(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let f = form_pairs(&body);
    let id = match checked(&rt, &s, &f, RESCHEDULE) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let (timer, typed) = (field(&f, "timer"), field(&f, "at").trim());
    let at = chrono::NaiveDateTime::parse_from_str(typed, "%Y-%m-%d %H:%M")
        .ok()
        .map(|dt| Timestamp::from_datetime(dt.and_utc()));
    let Some(at) = at else {
        let why = format!("{typed:?}: YYYY-MM-DD HH:MM");
        return respond(&rt, &s, &id, Some(Outcome::Refused(why)), typed).await;
    };
    let entry = audit::entry(
        &rt,
        &s.actor(),
        "instance.timer_reschedule",
        id.as_str(),
        &format!("{timer} {at}"),
    );
    match rt
        .engine
        .reschedule_timer(&id, timer, at, Some(&entry))
        .await
    {
        Ok(true) => written(&id),
        Ok(false) => {
            let why = format!("{timer}: no such timer scheduled");
            respond(&rt, &s, &id, Some(Outcome::Refused(why)), typed).await
        }
        Err(EngineError::Store(StoreError::NotFound(_))) => not_found(&rt, s.locale),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

async fn cancel(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    let f = form_pairs(&body);
    let id = match checked(&rt, &s, &f, CANCEL) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let timer = field(&f, "timer");
    let entry = audit::entry(&rt, &s.actor(), "instance.timer_cancel", id.as_str(), timer);
    match rt.engine.cancel_timer(&id, timer, Some(&entry)).await {
        Ok(true) => written(&id),
        Ok(false) => {
            let why = format!("{timer}: no such timer scheduled");
            respond(&rt, &s, &id, Some(Outcome::Refused(why)), "").await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}
