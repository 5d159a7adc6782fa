//! `/portal/jobs` (administrators): the job queue by state and kind, a filtered list a page at a
//! time (keyset on the id, newest first), `/portal/jobs/{id}` a job with its masked payload;
//! `POST /portal/jobs/retry` (a failed job) and `POST /portal/jobs/run` (a waiting one now),
//! the job's id in the form, each audited with its write (`jobs::inspect`, as the CLI's
//! `jobs retry`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::Role;
use crate::jobs::inspect::{self, JOB_STATES};
use crate::store::StoreError;
use crate::web::pages::{form_pairs, page};

use super::view::Nav;
use super::view::jobs::{Bulk, Done, JobsFilter, confirm_page, job_page, jobs_page};
use super::{
    EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, not_found, query_pairs, see_other,
    unavailable,
};

const JOBS: &str = "/portal/jobs";
const RETRY: &str = "/portal/jobs/retry";
const RUN: &str = "/portal/jobs/run";
const RETRY_ALL: &str = "/portal/jobs/retry-all";
const PAGE: i64 = 50;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(JOBS, get(list))
        .route("/portal/jobs/{id}", get(show))
        .route(RETRY, post(retry))
        .route(RUN, post(run))
        .route(RETRY_ALL, post(retry_all))
}

async fn list(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    // A state that is none of the states, or a kind that is not a word, finds nothing.
    let state = field(&pairs, "state");
    let kind = field(&pairs, "kind");
    let filter = JobsFilter {
        state: state.into(),
        kind: kind.into(),
    };
    let state_ok = state.is_empty() || JOB_STATES.contains(&state);
    let kind_ok = kind.len() <= 40 && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let before = field(&pairs, "before").parse::<i64>().ok();
    let counts = match inspect::job_counts(&rt).await {
        Ok(c) => c,
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let jobs = if state_ok && kind_ok {
        match inspect::jobs_page(&rt, state, kind, before, PAGE).await {
            Ok(j) => j,
            Err(e) => return unavailable(&rt, s.locale, &e),
        }
    } else {
        vec![]
    };
    let older = (jobs.len() as i64 == PAGE)
        .then(|| jobs.last().map(|j| j.id))
        .flatten()
        .map(|id| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", state)
                .append_pair("kind", kind)
                .append_pair("before", &id.to_string())
                .finish()
        });
    let status = if state_ok && kind_ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let ([out, everywhere, bulk], set) =
        csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE, RETRY_ALL]);
    let nav = Nav::new(s.locale, &s.session.user, "jobs", out, everywhere);
    let bulk = Bulk {
        csrf: bulk,
        retried: field(&pairs, "retried").parse().ok(),
    };
    page(
        &rt,
        status,
        jobs_page(s.locale, &nav, &counts, &filter, &jobs, older, &bulk),
        set,
    )
}

/// Retry every failed job (of the form's kind): first a page saying how many, whose form
/// confirms; confirmed, they are retried and the list says how many were.
async fn retry_all(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let f = form_pairs(&body);
    if let Some(r) = s.csrf(&rt, &f, RETRY_ALL) {
        return r;
    }
    let kind = field(&f, "kind");
    if kind.len() > 40 || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return not_found(&rt, s.locale);
    }
    if field(&f, "confirm") != "yes" {
        let n = match inspect::failed_of(&rt, kind).await {
            Ok(n) => n,
            Err(e) => return unavailable(&rt, s.locale, &e),
        };
        let ([out, everywhere, token], set) =
            csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE, RETRY_ALL]);
        let nav = Nav::new(s.locale, &s.session.user, "jobs", out, everywhere);
        return page(
            &rt,
            StatusCode::OK,
            confirm_page(s.locale, &nav, kind, n, &token),
            set,
        );
    }
    match inspect::retry_all_failed(&rt, kind, &s.actor()).await {
        Ok(n) => see_other(&format!("{JOBS}?retried={n}"), None),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

async fn show(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&rt, s.locale);
    };
    let j = match inspect::job(&rt, id).await {
        Ok(j) => j,
        Err(StoreError::NotFound(_)) => return not_found(&rt, s.locale),
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let done = match q.as_deref() {
        Some("done=retry") => Some(Done::Retried),
        Some("done=run") => Some(Done::Run),
        Some("done=not-now") => Some(Done::NotNow),
        _ => None,
    };
    let ([out, everywhere, retry, run], set) =
        csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE, RETRY, RUN]);
    let nav = Nav::new(s.locale, &s.session.user, "jobs", out, everywhere);
    let payload = inspect::masked_payload(&j.payload);
    let status = if done == Some(Done::NotNow) {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    page(
        &rt,
        status,
        job_page(s.locale, &nav, &j, &payload, done, &[retry, run]),
        set,
    )
}

async fn retry(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, RETRY).await
}

async fn run(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, RUN).await
}

/// Retry or run now the job in the form: a 303 to its page saying what happened (a job no
/// longer in that state says so); an unknown id is a 404.
async fn act(rt: Arc<AppState>, s: SignedIn, body: axum::body::Bytes, path: &str) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let f = form_pairs(&body);
    if let Some(r) = s.csrf(&rt, &f, path) {
        return r;
    }
    let Ok(id) = field(&f, "id").parse::<i64>() else {
        return not_found(&rt, s.locale);
    };
    let by = s.actor();
    let (done, r) = if path == RETRY {
        ("retry", inspect::retry(&rt, id, &by).await)
    } else {
        ("run", inspect::run_job_now(&rt, id, &by).await)
    };
    match r {
        Ok(_) => see_other(&format!("{JOBS}/{id}?done={done}"), None),
        // The job exists but is in another state: its page says so.
        Err(StoreError::NotFound(m)) if !m.starts_with("job ") => {
            see_other(&format!("{JOBS}/{id}?done=not-now"), None)
        }
        Err(StoreError::NotFound(_)) => not_found(&rt, s.locale),
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}
