//! `/portal/schedules` (administrators): each schedule with its cron, catch-up policy, last
//! and next ticks, whether it is paused, and its latest runs; `POST /portal/schedules/pause`,
//! `…/resume` and `…/run` (the schedule's name in the form). The same services as the CLI's
//! `schedules pause|resume` (`jobs::inspect`); each action is audited with its write.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::Role;
use crate::jobs::inspect::{self, ScheduleError};
use crate::web::pages::{form_pairs, page};

use super::view::Nav;
use super::view::schedules::{Done, schedules_page};
use super::{
    EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, not_found, see_other, unavailable,
};

const SCHEDULES: &str = "/portal/schedules";
const PAUSE: &str = "/portal/schedules/pause";
const RESUME: &str = "/portal/schedules/resume";
const RUN: &str = "/portal/schedules/run";
/// Runs shown per schedule.
const RUNS: usize = 10;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(SCHEDULES, get(show))
        .route(PAUSE, post(pause))
        .route(RESUME, post(resume))
        .route(RUN, post(run))
}

async fn show(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let done = match q.as_deref() {
        Some("done=paused") => Some(Done::Paused),
        Some("done=resumed") => Some(Done::Resumed),
        Some("done=run") => Some(Done::Run),
        Some("done=busy") => Some(Done::Busy),
        _ => None,
    };
    let status = match inspect::schedules(&rt, 3).await {
        Ok(s) => s,
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let mut shown = Vec::with_capacity(status.len());
    for st in status {
        match inspect::recent_runs(&rt, st.name, RUNS).await {
            Ok(runs) => shown.push((st, runs)),
            Err(e) => return unavailable(&rt, s.locale, &e),
        }
    }
    let ([out, everywhere, p, r, n], set) =
        csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE, PAUSE, RESUME, RUN]);
    let nav = Nav::new(s.locale, &s.session.user, "schedules", out, everywhere);
    let status = if done == Some(Done::Busy) {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    page(
        &rt,
        status,
        schedules_page(s.locale, &nav, &shown, done, &[p, r, n]),
        set,
    )
}

#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Run,
}

async fn pause(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, Action::Pause).await
}

async fn resume(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, Action::Resume).await
}

async fn run(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, Action::Run).await
}

/// An action on the schedule named in the form: a 303 back to the page saying what happened
/// (a run refused while the previous one is unfinished says so); an unknown name is a 404.
async fn act(rt: Arc<AppState>, s: SignedIn, body: axum::body::Bytes, a: Action) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let f = form_pairs(&body);
    let path = match a {
        Action::Pause => PAUSE,
        Action::Resume => RESUME,
        Action::Run => RUN,
    };
    if let Some(r) = s.csrf(&rt, &f, path) {
        return r;
    }
    let name = field(&f, "name");
    let by = s.actor();
    let done = match a {
        // Pausing a paused schedule (or resuming a running one) changes nothing: the page
        // shows the state it is in.
        Action::Pause => inspect::pause(&rt, name, &by).await.map(|_| "paused"),
        Action::Resume => inspect::resume(&rt, name, &by).await.map(|_| "resumed"),
        Action::Run => inspect::run_now(&rt, name, &by)
            .await
            .map(|queued| if queued { "run" } else { "busy" }),
    };
    match done {
        Ok(d) => see_other(&format!("{SCHEDULES}?done={d}"), None),
        Err(ScheduleError::Unknown(..)) => not_found(&rt, s.locale),
        Err(ScheduleError::Store(e)) => unavailable(&rt, s.locale, &e),
    }
}
