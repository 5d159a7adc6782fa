//! `/portal/jobs` (administrators): the job queue by state and kind, a list filtered by state,
//! kind and creation day a page at a time (keyset on the id, newest first), `/portal/jobs/{id}`
//! a job with its masked payload, its failed attempts and its lease owner (the node);
//! `POST /portal/jobs/retry|cancel|run` one job (its id in the form), `POST
//! /portal/jobs/readdress` a failed email to a corrected address, `POST /portal/jobs/bulk` one
//! action on every job the list's filter selects (after a page saying how many). Each write is
//! audited with it (`jobs::inspect`, as the CLI's `jobs retry|cancel`). `/portal/nodes`: the
//! worker processes seen in the last day.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::{EmailAddress, Locale, Role, Span};
use crate::core::job::{JobAction, JobFilter, JobState};
use crate::jobs::inspect;
use crate::store::StoreError;
use crate::web::pages::page;

use super::view::Nav;
use super::view::jobs::{
    Bulk, Done, JobForms, JobsFilter, confirm_page, job_page, jobs_page, nodes_page,
};
use super::{
    EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, not_found, parse_day, query_pairs,
    see_other, unavailable,
};

const JOBS: &str = "/portal/jobs";
const RETRY: &str = "/portal/jobs/retry";
const CANCEL: &str = "/portal/jobs/cancel";
const RUN: &str = "/portal/jobs/run";
const READDRESS: &str = "/portal/jobs/readdress";
const BULK: &str = "/portal/jobs/bulk";
const NODES: &str = "/portal/nodes";
const PAGE: i64 = 50;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(JOBS, get(list))
        .route("/portal/jobs/{id}", get(show))
        .route(RETRY, post(retry))
        .route(CANCEL, post(cancel))
        .route(RUN, post(run))
        .route(READDRESS, post(readdress))
        .route(BULK, post(bulk))
        .route(NODES, get(nodes))
}

/// The filter of a query or form: state, kind, from and to (days, `to` inclusive). None when
/// a part is malformed (an unknown state, a kind that is not a word, a day that is no date):
/// such a filter selects nothing.
fn parse_filter(pairs: &[(String, String)]) -> (JobsFilter, Option<JobFilter>) {
    let shown = JobsFilter {
        state: field(pairs, "state").into(),
        kind: field(pairs, "kind").into(),
        from: field(pairs, "from").trim().into(),
        to: field(pairs, "to").trim().into(),
    };
    let state_ok = shown.state.is_empty() || JobState::parse(&shown.state).is_some();
    let kind_ok = shown.kind.len() <= 40
        && shown
            .kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    let day = |v: &str| -> Result<Option<crate::core::domain::Timestamp>, ()> {
        if v.is_empty() {
            Ok(None)
        } else {
            parse_day(v).map(Some).ok_or(())
        }
    };
    let (Ok(from), Ok(to)) = (day(&shown.from), day(&shown.to)) else {
        return (shown, None);
    };
    if !state_ok || !kind_ok {
        return (shown, None);
    }
    let f = JobFilter {
        state: shown.state.clone(),
        kind: shown.kind.clone(),
        from,
        // The whole of the last day.
        to: to.map(|t| t.plus(Span(86_400_000))),
    };
    (shown, Some(f))
}

/// The filter as a query string (the next page's link, the way back from a confirmation).
fn filter_query(f: &JobsFilter) -> url::form_urlencoded::Serializer<'static, String> {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("state", &f.state)
        .append_pair("kind", &f.kind)
        .append_pair("from", &f.from)
        .append_pair("to", &f.to);
    q
}

async fn list(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (shown, filter) = parse_filter(&pairs);
    let before = field(&pairs, "before").parse::<i64>().ok();
    let counts = match inspect::job_counts(&rt).await {
        Ok(c) => c,
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let (jobs, can) = match &filter {
        Some(f) => {
            let jobs = match inspect::jobs_page(&rt, f, before, PAGE).await {
                Ok(j) => j,
                Err(e) => return unavailable(&rt, s.locale, &e),
            };
            let mut can = [0; 3];
            for (i, a) in JobAction::ALL.into_iter().enumerate() {
                can[i] = match inspect::count_for(&rt, a, f).await {
                    Ok(n) => n,
                    Err(e) => return unavailable(&rt, s.locale, &e),
                };
            }
            (jobs, can)
        }
        None => (vec![], [0; 3]),
    };
    let older = (jobs.len() as i64 == PAGE)
        .then(|| jobs.last().map(|j| j.id))
        .flatten()
        .map(|id| {
            filter_query(&shown)
                .append_pair("before", &id.to_string())
                .finish()
        });
    let status = if filter.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let ([out, everywhere, bulk], set) = csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE, BULK]);
    let nav = Nav::new(s.locale, &s.session.user, "jobs", out, everywhere);
    let done = JobAction::parse(field(&pairs, "done"))
        .and_then(|a| field(&pairs, "n").parse::<u64>().ok().map(|n| (a, n)));
    let bulk = Bulk {
        csrf: bulk,
        done,
        can,
    };
    page(
        &rt,
        status,
        jobs_page(s.locale, &nav, &counts, &shown, &jobs, older, &bulk),
        set,
    )
}

/// One action on every job the form's filter selects: first a page saying how many, whose
/// form confirms; confirmed, it is done and the list says how many.
async fn bulk(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, BULK) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (shown, filter) = parse_filter(&f);
    let (Some(action), Some(filter)) = (JobAction::parse(field(&f, "action")), filter) else {
        return not_found(&rt, s.locale);
    };
    if field(&f, "confirm") != "yes" {
        let n = match inspect::count_for(&rt, action, &filter).await {
            Ok(n) => n,
            Err(e) => return unavailable(&rt, s.locale, &e),
        };
        let ([out, everywhere, token], set) =
            csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE, BULK]);
        let nav = Nav::new(s.locale, &s.session.user, "jobs", out, everywhere);
        let back = filter_query(&shown).finish();
        return page(
            &rt,
            StatusCode::OK,
            confirm_page(s.locale, &nav, action, &shown, &back, n, &token),
            set,
        );
    }
    match inspect::act_on_all(&rt, action, &filter, &s.actor()).await {
        Ok(n) => {
            let q = filter_query(&shown)
                .append_pair("done", action.as_str())
                .append_pair("n", &n.to_string())
                .finish();
            see_other(&format!("{JOBS}?{q}"), None)
        }
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
    let done = match q.as_deref() {
        Some("done=retry") => Some(Done::Retried),
        Some("done=run") => Some(Done::Run),
        Some("done=cancel") => Some(Done::Cancelled),
        Some("done=readdress") => Some(Done::Readdressed),
        Some("done=not-now") => Some(Done::NotNow),
        _ => None,
    };
    job_response(&rt, &s, id, done, None).await
}

/// A job's page; `bad_address`: the readdress form's value and why it was refused.
async fn job_response(
    rt: &AppState,
    s: &SignedIn,
    id: i64,
    done: Option<Done>,
    bad_address: Option<(&str, String)>,
) -> Response {
    let j = match inspect::job(rt, id).await {
        Ok(j) => j,
        Err(StoreError::NotFound(_)) => return not_found(rt, s.locale),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let errors = match inspect::errors(rt, id).await {
        Ok(e) => e,
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let ([out, everywhere, retry, cancel, run, readdress], set) = csrf_tokens(
        rt,
        &s.headers,
        [SIGN_OUT, EVERYWHERE, RETRY, CANCEL, RUN, READDRESS],
    );
    let nav = Nav::new(s.locale, &s.session.user, "jobs", out, everywhere);
    let payload = inspect::masked_payload(&j.payload);
    let status = if bad_address.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if done == Some(Done::NotNow) {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let forms = JobForms {
        csrf: [retry, cancel, run, readdress],
        address: bad_address
            .as_ref()
            .map(|(v, _)| v.to_string())
            .unwrap_or_default(),
        address_error: bad_address.map(|(_, e)| e),
    };
    page(
        rt,
        status,
        job_page(s.locale, &nav, &j, &payload, &errors, done, &forms),
        set,
    )
}

async fn retry(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, JobAction::Retry, RETRY).await
}

async fn cancel(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, JobAction::Cancel, CANCEL).await
}

async fn run(State(rt): State<Arc<AppState>>, s: SignedIn, body: axum::body::Bytes) -> Response {
    act(rt, s, body, JobAction::RunNow, RUN).await
}

/// Retry, cancel or run now the job in the form: a 303 to its page saying what happened (a
/// job no longer in a state the action applies to says so); an unknown id is a 404.
async fn act(
    rt: Arc<AppState>,
    s: SignedIn,
    body: axum::body::Bytes,
    action: JobAction,
    path: &str,
) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, path) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(id) = field(&f, "id").parse::<i64>() else {
        return not_found(&rt, s.locale);
    };
    match inspect::act(&rt, action, id, &s.actor()).await {
        Ok(_) => see_other(&format!("{JOBS}/{id}?done={}", action.as_str()), None),
        Err(e) => after_refusal(&rt, s.locale, id, e),
    }
}

/// A job that exists but is in another state: its page says so; no such job: 404.
fn after_refusal(rt: &AppState, l: Locale, id: i64, e: StoreError) -> Response {
    match e {
        StoreError::NotNow(_) => see_other(&format!("{JOBS}/{id}?done=not-now"), None),
        StoreError::NotFound(_) => not_found(rt, l),
        e => unavailable(rt, l, &e),
    }
}

/// A failed email sent to the address in the form instead, now: a malformed address is shown
/// again beside its field (422), nothing changed.
async fn readdress(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, READDRESS) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(id) = field(&f, "id").parse::<i64>() else {
        return not_found(&rt, s.locale);
    };
    let typed = field(&f, "to").trim();
    let to = match EmailAddress::parse(typed) {
        Ok(to) => to,
        Err(e) => return job_response(&rt, &s, id, None, Some((typed, e))).await,
    };
    match inspect::readdress(&rt, id, &to, &s.actor()).await {
        Ok(_) => see_other(&format!("{JOBS}/{id}?done=readdress"), None),
        Err(e) => after_refusal(&rt, s.locale, id, e),
    }
}

/// The worker processes seen in the last day: identity, start, last heartbeat and claim, jobs
/// held now.
async fn nodes(State(rt): State<Arc<AppState>>, s: SignedIn) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let nodes = match inspect::nodes(&rt, Span(86_400_000)).await {
        Ok(n) => n,
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let ([out, everywhere], set) = csrf_tokens(&rt, &s.headers, [SIGN_OUT, EVERYWHERE]);
    let nav = Nav::new(s.locale, &s.session.user, "nodes", out, everywhere);
    page(
        &rt,
        StatusCode::OK,
        nodes_page(s.locale, &nav, &nodes, rt.clock.now()),
        set,
    )
}
