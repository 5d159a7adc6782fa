//! `/portal/campaigns`: the campaigns (viewers and up) with their state and progress; a new
//! campaign from an uploaded recipients CSV (sales agents and up: the upload is streamed to
//! a temporary file in the data directory, at most [`UPLOAD_MAX`] bytes, then imported by
//! the CLI's importer: every bad row is listed with its line); a campaign's page (state,
//! counts, rate, ETA, why paused, bounces and unsubscribes; it reloads itself every few
//! seconds while the campaign runs, without JavaScript) with its start / pause / resume /
//! cancel buttons; the report as CSV. Every write is audited (`campaign.create`,
//! `campaign.import`, `campaign.start`, …).

use std::sync::Arc;

use axum::Router;
use axum::extract::multipart::Field;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::AppState;
use crate::campaigns::{self, BadRow, CampaignError, ImportReport, NewCampaign};
use crate::core::campaign::CampaignAction;
use crate::core::domain::{OfferId, Role, Span};
use crate::offers::OfferError;
use crate::portal::audit;
use crate::web::pages::{form_pairs, page, refused};
use crate::web::views::FormRefusal;

use super::view::Nav;
use super::view::campaigns as view;
use super::{
    EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, not_found, see_other, unavailable,
};
use view::{Buttons, NewForm};

const LIST: &str = "/portal/campaigns";
const NEW: &str = "/portal/campaigns/new";
/// Campaigns on one page of the list.
const LIST_PAGE: i64 = 25;
/// The largest recipients file the portal takes, in bytes (16 MiB, about 300,000 rows; the
/// CLI takes any size).
pub(crate) const UPLOAD_MAX: u64 = 16 * 1024 * 1024;
/// The whole upload request's limit: the file, the form's other fields and the multipart
/// framing. A file over [`UPLOAD_MAX`] is read to its end (within this) and refused.
const BODY_MAX: usize = UPLOAD_MAX as usize + 1024 * 1024;
/// The longest value of the form's text fields, in bytes.
const FIELD_MAX: usize = 4096;
/// Bad rows shown on the result page (all are counted).
const BAD_ROWS_SHOWN: usize = 1000;
/// Bounced and unsubscribed recipients listed on a campaign's page.
const DROPOUTS_SHOWN: i64 = 10;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(LIST, get(list))
        .route(
            NEW,
            get(new_form)
                .post(create)
                .layer(DefaultBodyLimit::max(BODY_MAX)),
        )
        .route("/portal/campaigns/{id}", get(show))
        .route("/portal/campaigns/{id}/report.csv", get(report))
        .route("/portal/campaigns/{id}/start", post(start))
        .route("/portal/campaigns/{id}/pause", post(pause))
        .route("/portal/campaigns/{id}/resume", post(resume))
        .route("/portal/campaigns/{id}/cancel", post(cancel))
}

/// The campaign's path, or None for an id that is not a campaign id's shape.
fn campaign_path(id: &str) -> Option<String> {
    campaigns::is_campaign_id(id).then(|| format!("{LIST}/{id}"))
}

// ------------------------------------------------------------------------------ the list

async fn list(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let pairs: Vec<(String, String)> = q
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .take(10)
                .collect()
        })
        .unwrap_or_default();
    let cursor = field(&pairs, "cursor");
    let listed = match campaigns::list_page(&rt, (!cursor.is_empty()).then_some(cursor), LIST_PAGE)
        .await
    {
        Ok(p) => p,
        // A cursor that is not ours: the first page.
        Err(CampaignError::Invalid(_)) => match campaigns::list_page(&rt, None, LIST_PAGE).await {
            Ok(p) => p,
            Err(e) => return unavailable(&rt, s.locale, &e),
        },
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let next = listed.next.as_ref().map(|c| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("cursor", c)
            .finish()
    });
    let (nav, set) = s.nav(&rt, "campaigns");
    page(
        &rt,
        StatusCode::OK,
        view::list_page(s.locale, &nav, &listed.rows, next.as_deref()),
        set,
    )
}

// ------------------------------------------------------------------------- a new campaign

async fn new_form(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::SalesAgent) {
        return r;
    }
    // `?offer_id=…`: the offer to send (from an offer's page).
    let pairs: Vec<(String, String)> = q
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .take(10)
                .collect()
        })
        .unwrap_or_default();
    let form = NewForm {
        offer_id: field(&pairs, "offer_id").chars().take(100).collect(),
        ..Default::default()
    };
    form_page(&rt, &s, StatusCode::OK, &form)
}

fn form_page(rt: &AppState, s: &SignedIn, status: StatusCode, form: &NewForm) -> Response {
    let ([out, everywhere, csrf], set) = csrf_tokens(rt, &s.headers, [SIGN_OUT, EVERYWHERE, NEW]);
    let nav = Nav::new(s.locale, &s.session.user, "campaigns", out, everywhere);
    page(
        rt,
        status,
        view::new_page(s.locale, &nav, form, &csrf, UPLOAD_MAX),
        set,
    )
}

/// An uploaded recipients file: an unnamed temporary file (gone when closed), rewound.
struct Upload {
    file: std::fs::File,
    size: u64,
}

enum UploadError {
    TooLarge,
    /// The request is not a readable multipart form.
    Malformed(String),
    Io(std::io::Error),
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> UploadError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UploadError::TooLarge
    } else {
        UploadError::Malformed(e.body_text())
    }
}

/// Streams the file field to a temporary file in the data directory, a chunk at a time. Past
/// [`UPLOAD_MAX`] bytes the rest is read and dropped (bounded by the request's limit), so the
/// browser gets the answer rather than a reset connection.
async fn receive(rt: &AppState, mut f: Field<'_>) -> Result<Upload, UploadError> {
    use tokio::io::AsyncWriteExt;
    let file = tempfile::tempfile_in(&rt.settings.app.data_dir)
        .or_else(|_| tempfile::tempfile())
        .map_err(UploadError::Io)?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let mut size = 0u64;
    while let Some(chunk) = f.chunk().await.map_err(multipart_error)? {
        size += chunk.len() as u64;
        if size <= UPLOAD_MAX {
            out.write_all(&chunk).await.map_err(UploadError::Io)?;
        }
    }
    if size > UPLOAD_MAX {
        return Err(UploadError::TooLarge);
    }
    out.flush().await.map_err(UploadError::Io)?;
    let mut file = out.into_inner().into_std().await;
    std::io::Seek::rewind(&mut file).map_err(UploadError::Io)?;
    Ok(Upload { file, size })
}

/// A text field's value, at most [`FIELD_MAX`] bytes (None: longer, or not UTF-8).
async fn text(mut f: Field<'_>) -> Result<Option<String>, UploadError> {
    let mut buf = Vec::new();
    while let Some(chunk) = f.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > FIELD_MAX {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8(buf).ok())
}

/// A new campaign from the form: the CSRF field is checked before the file is read (it comes
/// first in the form), the fields are checked, the file's header is read (a file that cannot
/// be read creates nothing), then the campaign is created and the file imported as `campaign
/// create --recipients` does. The answer lists every bad row with its line.
async fn create(State(rt): State<Arc<AppState>>, s: SignedIn, req: Request) -> Response {
    if let Some(r) = s.require(&rt, Role::SalesAgent) {
        return r;
    }
    let l = s.locale;
    let Ok(mut mp) = Multipart::from_request(req, &()).await else {
        return refused(&rt, l, FormRefusal::Invalid);
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut upload: Option<Upload> = None;
    let mut checked = false;
    let mut form = NewForm::default();
    let failed = loop {
        let f = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(multipart_error(e)),
        };
        let name = f.name().unwrap_or("").to_string();
        if name == "recipients" {
            if !checked {
                if let Some(r) = s.csrf(&rt, &fields, NEW) {
                    return r;
                }
                checked = true;
            }
            if upload.is_some() {
                break Some(UploadError::Malformed("two files".into()));
            }
            match receive(&rt, f).await {
                Ok(u) => upload = Some(u),
                Err(e) => break Some(e),
            }
        } else if fields.len() >= 20 {
            break Some(UploadError::Malformed("too many fields".into()));
        } else {
            match text(f).await {
                Ok(Some(v)) => fields.push((name, v)),
                Ok(None) => form.error(&name, view::too_long(l)),
                Err(e) => break Some(e),
            }
        }
    };
    if !checked && let Some(r) = s.csrf(&rt, &fields, NEW) {
        return r;
    }
    form.offer_id = field(&fields, "offer_id").trim().into();
    form.name = field(&fields, "name").trim().into();
    form.template = field(&fields, "template").trim().into();
    form.max_per_minute = field(&fields, "max_per_minute").trim().into();
    form.reminder_after = field(&fields, "reminder_after").trim().into();
    form.reminder_template = field(&fields, "reminder_template").trim().into();
    match failed {
        None => {}
        Some(UploadError::TooLarge) => {
            form.error("recipients", view::too_large(l, UPLOAD_MAX));
            return form_page(&rt, &s, StatusCode::PAYLOAD_TOO_LARGE, &form);
        }
        Some(UploadError::Malformed(why)) => {
            tracing::info!(why, "portal: a campaign upload was not a readable form");
            form.error("recipients", view::unreadable_form(l));
            return form_page(&rt, &s, StatusCode::BAD_REQUEST, &form);
        }
        Some(UploadError::Io(e)) => return unavailable(&rt, l, &e),
    }
    // The fields, as the CLI and the API take them.
    let offer = match OfferId::parse(&form.offer_id) {
        Ok(o) => Some(o),
        Err(m) => {
            form.error("offer_id", m);
            None
        }
    };
    if form.name.is_empty() {
        form.error("name", view::required(l));
    }
    let max_per_minute = match form.max_per_minute.as_str() {
        "" => None,
        v => match v.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                form.error("max_per_minute", view::whole_number(l));
                None
            }
        },
    };
    let reminder_after = match form.reminder_after.as_str() {
        "" => None,
        v => match v.parse::<Span>() {
            Ok(s) => Some(s),
            Err(m) => {
                form.error("reminder_after", m);
                None
            }
        },
    };
    let opt = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let upload = upload.filter(|u| u.size > 0);
    if upload.is_none() {
        form.error("recipients", view::choose_file(l));
    }
    // The file's header first: a file that cannot be read leaves no empty draft behind.
    let rows = match upload {
        Some(u) if form.errors.is_empty() => match campaigns::RecipientsFile::open(u.file) {
            Ok(rows) => Some(rows),
            Err(CampaignError::Invalid(m)) => {
                form.error("recipients", m);
                None
            }
            Err(e) => return unavailable(&rt, l, &e),
        },
        _ => None,
    };
    let (Some(offer), Some(rows), true) = (offer, rows, form.errors.is_empty()) else {
        return form_page(&rt, &s, StatusCode::BAD_REQUEST, &form);
    };
    let new = NewCampaign {
        name: form.name.clone(),
        template: opt(&form.template),
        max_per_minute,
        reminder_after,
        reminder_template: opt(&form.reminder_template),
    };
    let actor = s.actor();
    let c = match campaigns::create(&rt, &offer, new, &actor.label).await {
        Ok(c) => c,
        Err(e) => {
            let (status, field, message) = match e {
                CampaignError::Invalid(m) => {
                    let f = [
                        "name",
                        "template",
                        "reminder_template",
                        "max_per_minute",
                        "reminder_after",
                    ]
                    .into_iter()
                    .find(|f| m.starts_with(&format!("{f}:")))
                    .unwrap_or("offer_id");
                    (StatusCode::BAD_REQUEST, f, m)
                }
                CampaignError::Offer(
                    o @ (OfferError::OfferNotFound(_) | OfferError::NotFound(_)),
                ) => (StatusCode::NOT_FOUND, "offer_id", o.to_string()),
                CampaignError::Offer(o @ OfferError::OfferClosed { .. }) => {
                    (StatusCode::CONFLICT, "offer_id", o.to_string())
                }
                e => return unavailable(&rt, l, &e),
            };
            form.error(field, message);
            return form_page(&rt, &s, status, &form);
        }
    };
    if let Err(e) = audit::record(
        &rt,
        &actor,
        "campaign.create",
        &c.id,
        &format!("offer {}; {}", c.offer_id, c.name),
    )
    .await
    {
        return unavailable(&rt, l, &e);
    }
    let mut bad: Vec<BadRow> = Vec::new();
    let mut bad_count = 0u64;
    let result = campaigns::import(&rt, &c.id, rows, |b| {
        bad_count += 1;
        if bad.len() < BAD_ROWS_SHOWN {
            bad.push(b);
        }
    })
    .await;
    let report: ImportReport = match result {
        Ok(r) => r,
        Err(CampaignError::Invalid(m)) => {
            // Unreadable part way (the file is on our disk: unlikely): the draft stays, said so.
            tracing::warn!(campaign = %c.id, error = %m, "portal: import stopped");
            bad_count += 1;
            bad.push(BadRow { line: 0, reason: m });
            ImportReport::default()
        }
        Err(e) => return unavailable(&rt, l, &e),
    };
    let detail = format!(
        "{} lines: {} added, {} invalid, {} duplicates, {} blank; {} suppressed",
        report.lines,
        report.added,
        report.invalid,
        report.duplicates,
        report.blank,
        report.suppressed
    );
    if let Err(e) = audit::record(&rt, &actor, "campaign.import", &c.id, &detail).await {
        return unavailable(&rt, l, &e);
    }
    let (nav, set) = s.nav(&rt, "campaigns");
    page(
        &rt,
        StatusCode::OK,
        view::created_page(l, &nav, &c, &report, &bad, bad_count),
        set,
    )
}

// ---------------------------------------------------------------------- one campaign

/// The four buttons' action paths of a campaign.
fn action_paths(id: &str) -> [String; 4] {
    ["start", "pause", "resume", "cancel"].map(|a| format!("{LIST}/{id}/{a}"))
}

async fn show(State(rt): State<Arc<AppState>>, s: SignedIn, Path(id): Path<String>) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    if campaign_path(&id).is_none() {
        return not_found(&rt, s.locale);
    }
    campaign_page(&rt, &s, &id, StatusCode::OK, None).await
}

/// A campaign's page; `error`: why the last button did nothing.
async fn campaign_page(
    rt: &AppState,
    s: &SignedIn,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let l = s.locale;
    let (c, n) = match campaigns::status(rt, id).await {
        Ok(x) => x,
        Err(CampaignError::NotFound(_)) => return not_found(rt, l),
        Err(e) => return unavailable(rt, l, &e),
    };
    let progress = match campaigns::progress(rt, &c, &n).await {
        Ok(p) => p,
        Err(e) => return unavailable(rt, l, &e),
    };
    let dropouts = match campaigns::dropouts(rt, id, DROPOUTS_SHOWN).await {
        Ok(d) => d,
        Err(e) => return unavailable(rt, l, &e),
    };
    let [a_start, a_pause, a_resume, a_cancel] = action_paths(id);
    let ([out, everywhere, start, pause, resume, cancel], set) = csrf_tokens(
        rt,
        &s.headers,
        [
            SIGN_OUT, EVERYWHERE, &a_start, &a_pause, &a_resume, &a_cancel,
        ],
    );
    let nav = Nav::new(l, &s.session.user, "campaigns", out, everywhere);
    let role = s.session.user.role;
    let can = |a: CampaignAction, needed: Role| role.allows(needed) && c.state.apply(a).is_ok();
    let buttons = Buttons {
        start: can(CampaignAction::Start, Role::SalesAgent).then_some(start),
        pause: can(CampaignAction::Pause, Role::SalesAgent).then_some(pause),
        resume: can(CampaignAction::Resume, Role::SalesAgent).then_some(resume),
        cancel: can(CampaignAction::Cancel, CANCEL_ROLE).then_some(cancel),
    };
    page(
        rt,
        status,
        view::campaign_page(
            l,
            &nav,
            &c,
            &n,
            &progress,
            &dropouts,
            &buttons,
            error.as_deref(),
            rt.clock.now(),
        ),
        set,
    )
}

/// Who may cancel a campaign for good: administrators, as in the API
/// (`POST /api/v1/campaigns/{id}/cancel`).
const CANCEL_ROLE: Role = Role::Admin;

async fn start(
    rt: State<Arc<AppState>>,
    s: SignedIn,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Response {
    act(rt, s, id, body, CampaignAction::Start).await
}
async fn pause(
    rt: State<Arc<AppState>>,
    s: SignedIn,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Response {
    act(rt, s, id, body, CampaignAction::Pause).await
}
async fn resume(
    rt: State<Arc<AppState>>,
    s: SignedIn,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Response {
    act(rt, s, id, body, CampaignAction::Resume).await
}
async fn cancel(
    rt: State<Arc<AppState>>,
    s: SignedIn,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Response {
    act(rt, s, id, body, CampaignAction::Cancel).await
}

/// A button of a campaign's page: the role, the id's shape, the CSRF token, then the
/// lifecycle (a button that no longer fits the state says why, 409); audited; a 303 back.
async fn act(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(id): Path<String>,
    body: axum::body::Bytes,
    action: CampaignAction,
) -> Response {
    let needed = if action == CampaignAction::Cancel {
        CANCEL_ROLE
    } else {
        Role::SalesAgent
    };
    if let Some(r) = s.require(&rt, needed) {
        return r;
    }
    let Some(back) = campaign_path(&id) else {
        return not_found(&rt, s.locale);
    };
    let path = format!("{back}/{}", action.as_str());
    if let Some(r) = s.csrf(&rt, &form_pairs(&body), &path) {
        return r;
    }
    let done = match action {
        CampaignAction::Start => campaigns::start(&rt, &id).await,
        CampaignAction::Pause => campaigns::pause(&rt, &id).await,
        CampaignAction::Resume => campaigns::resume(&rt, &id).await,
        _ => campaigns::cancel(&rt, &id).await,
    };
    match done {
        Ok(c) => {
            let what = format!("campaign.{}", action.as_str());
            if let Err(e) = audit::record(&rt, &s.actor(), &what, &c.id, c.state.as_str()).await {
                return unavailable(&rt, s.locale, &e);
            }
            see_other(&back, None)
        }
        Err(CampaignError::NotFound(_)) => not_found(&rt, s.locale),
        Err(e @ (CampaignError::WrongState { .. } | CampaignError::Offer(_))) => {
            let m = view::not_now(s.locale, &view::why_not(s.locale, &e));
            campaign_page(&rt, &s, &id, StatusCode::CONFLICT, Some(m)).await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

// ------------------------------------------------------------------------------ the report

/// The ledger as CSV (`campaign report`), an attachment, sent from a temporary file.
async fn report(State(rt): State<Arc<AppState>>, s: SignedIn, Path(id): Path<String>) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    if !campaigns::is_campaign_id(&id) {
        return not_found(&rt, s.locale);
    }
    let file = match campaigns::report_file(&rt, &id).await {
        Ok(f) => f,
        Err(CampaignError::NotFound(_)) => return not_found(&rt, s.locale),
        Err(e) => return unavailable(&rt, s.locale, &e),
    };
    let file = tokio::fs::File::from_std(file);
    let chunks = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut r = axum::body::Body::from_stream(chunks).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"campaign-{id}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
