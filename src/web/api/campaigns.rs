//! `/api/v1/campaigns`: one offer to many recipients — create, add recipients, start, pause,
//! resume, cancel, status.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::campaigns::{BadRow, ImportReport};
use crate::core::campaign::{CampaignRow, RecipientCounts};
use crate::core::domain::{Role, Timestamp};
use crate::web::api::formats::{
    DurationText, NameText, OfferIdText, RecipientText, TemplateNameText,
};
use crate::web::error::{ApiResult, ErrorBody, bad};
use crate::web::{auth, parse_json, parse_offer_id};

/// A new campaign (`NewCampaign`), a draft until started.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewCampaign)]
pub struct CampaignBody {
    /// An open offer's Offer ID.
    #[schema(value_type = OfferIdText)]
    offer_id: String,
    #[schema(value_type = NameText, example = "Spring trial")]
    name: String,
    /// An email template; default: the offer kind's invitation template.
    #[schema(value_type = Option<TemplateNameText>)]
    template: Option<String>,
    /// Overall cap, messages per minute.
    #[schema(minimum = 1, maximum = 4294967295_i64, example = 60)]
    #[serde(default, deserialize_with = "super::whole_number")]
    max_per_minute: Option<u32>,
    /// Follow-up delay for those who have not accepted, e.g. `3d`.
    #[schema(value_type = Option<DurationText>)]
    reminder_after: Option<String>,
    /// Default: `invitation_reminder`.
    #[schema(value_type = Option<TemplateNameText>)]
    reminder_template: Option<String>,
}

/// Create a campaign (draft) for an open offer: name, optional template, max_per_minute,
/// reminder_after (e.g. "3d"), reminder_template.
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    request_body = CampaignBody,
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 201, description = "The campaign, a draft", body = CampaignRow),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No offer with this Offer ID", body = ErrorBody),
        (status = 409, description = "The offer is expired or withdrawn", body = ErrorBody),
        (status = 422, description = "A field's value is not acceptable (template, max_per_minute, …)", body = ErrorBody),
    )
)]
pub async fn create_campaign(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let actor = auth(&rt, &headers, Role::SalesAgent).await?;
    let b: CampaignBody = parse_json(&body)?;
    let offer = parse_offer_id(&b.offer_id)?;
    let reminder_after = b
        .reminder_after
        .as_deref()
        .map(|r| {
            r.parse::<crate::core::domain::Span>()
                .map_err(|m| bad("reminder_after", m))
        })
        .transpose()?;
    let c = crate::campaigns::create(
        &rt,
        &offer,
        crate::campaigns::NewCampaign {
            name: b.name,
            template: b.template,
            max_per_minute: b.max_per_minute,
            reminder_after,
            reminder_template: b.reminder_template,
        },
        &actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct CampaignList {
    campaigns: Vec<CampaignRow>,
}

/// List campaigns.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The campaigns", body = CampaignList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
    )
)]
pub async fn list_campaigns(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<CampaignList>> {
    auth(&rt, &headers, Role::Viewer).await?;
    Ok(Json(CampaignList {
        campaigns: crate::campaigns::list(&rt).await?,
    }))
}

/// A campaign (its row's fields) with its recipient counts.
#[derive(Serialize, ToSchema)]
pub struct CampaignStatus {
    /// The campaign's fields: id, offer_id, name, template, state, pause_reason, ….
    #[serde(flatten)]
    campaign: CampaignRow,
    /// Delivery (sent, reminded) and where each recipient is (pending … awaiting, accepted,
    /// expired).
    counts: RecipientCounts,
    /// Running with nothing to send now: when the last scheduled reminder is due.
    #[schema(value_type = Option<String>, format = DateTime)]
    waiting_for_reminders_until: Option<Timestamp>,
}

fn campaign_status(c: CampaignRow, n: RecipientCounts) -> CampaignStatus {
    CampaignStatus {
        waiting_for_reminders_until: crate::campaigns::waiting_for_reminders(&c, &n),
        campaign: c,
        counts: n,
    }
}

/// A campaign: state, pause reason, recipient counts (as `campaign status`: delivery — sent,
/// reminded — and where each recipient is — pending … awaiting, accepted, expired), and
/// waiting_for_reminders_until when only scheduled reminders are left.
///
/// Needs a token with role `viewer` (or `admin`).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The campaign", body = CampaignStatus),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
    )
)]
pub async fn show_campaign(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignStatus>> {
    auth(&rt, &headers, Role::Viewer).await?;
    let (c, n) = crate::campaigns::status(&rt, &id).await?;
    Ok(Json(campaign_status(c, n)))
}

/// Recipients as JSON (`Recipients`); each takes the CSV rows' checks, and `recipients[0]` is
/// reported as line 2.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Recipients)]
pub struct RecipientsBody {
    /// Each an object of columns: `email` (required), `name`, `company`, `locale`, ….
    #[schema(value_type = Vec<RecipientText>)]
    recipients: Vec<Map<String, Value>>,
}

/// What adding recipients did.
#[derive(Serialize, ToSchema)]
pub struct RecipientsReport {
    /// Counts: added, duplicates, suppressed, refused.
    report: ImportReport,
    /// Each refused row (line, reason); at most 1000.
    bad_rows: Vec<BadRow>,
}

/// Add recipients: a CSV body (text/csv, header row, `email` required) or JSON
/// {"recipients": [{"email", "name", "company", "locale", …}]}; answers with counts and each
/// bad row (line, reason).
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/recipients",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    request_body(content(
        (RecipientsBody = "application/json"),
        (String = "text/csv", example = "email,name\nit@contoso.example,Dana Doe\n"),
    )),
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 200, description = "Counts and the refused rows", body = RecipientsReport),
        (status = 400, description = "Malformed JSON body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "The campaign does not take recipients now", body = ErrorBody),
        (status = 422, description = "The file or its header cannot be read", body = ErrorBody),
    )
)]
pub async fn add_recipients(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    auth(&rt, &headers, Role::SalesAgent).await?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut bad_rows = Vec::new();
    let keep = |b: BadRow| {
        if bad_rows.len() < 1000 {
            bad_rows.push(b);
        }
    };
    let report = if is_json {
        // JSON rows take the CSV rows' checks; recipients[0] is line 2.
        let b: RecipientsBody = parse_json(&body)?;
        let rows = crate::campaigns::JsonRecipients::new(b.recipients)?;
        crate::campaigns::import(&rt, &id, rows, keep).await?
    } else {
        crate::campaigns::import_csv(&rt, &id, body.as_ref(), keep).await?
    };
    Ok((StatusCode::OK, Json(RecipientsReport { report, bad_rows })).into_response())
}

async fn campaign_action(
    rt: Arc<AppState>,
    headers: HeaderMap,
    id: String,
    needed: Role,
    what: &str,
) -> ApiResult<Json<CampaignStatus>> {
    auth(&rt, &headers, needed).await?;
    let c = match what {
        "start" => crate::campaigns::start(&rt, &id).await?,
        "pause" => crate::campaigns::pause(&rt, &id).await?,
        "resume" => crate::campaigns::resume(&rt, &id).await?,
        _ => crate::campaigns::cancel(&rt, &id).await?,
    };
    let n = crate::campaigns::counts(&rt, &c.id).await?;
    Ok(Json(campaign_status(c, n)))
}

/// Start sending a draft campaign.
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/start",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 200, description = "The campaign, running", body = CampaignStatus),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "Not a draft, or its offer is closed", body = ErrorBody),
    )
)]
pub async fn campaign_start(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignStatus>> {
    campaign_action(rt, headers, id, Role::SalesAgent, "start").await
}

/// Pause a running campaign.
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/pause",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 200, description = "The campaign, paused", body = CampaignStatus),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "Not running", body = ErrorBody),
    )
)]
pub async fn campaign_pause(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignStatus>> {
    campaign_action(rt, headers, id, Role::SalesAgent, "pause").await
}

/// Resume a paused campaign where it stopped.
///
/// Needs a token with role `sales_agent` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/resume",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    security(("bearer" = ["sales_agent"])),
    responses(
        (status = 200, description = "The campaign, running", body = CampaignStatus),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "Not paused, or its offer is closed", body = ErrorBody),
    )
)]
pub async fn campaign_resume(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignStatus>> {
    campaign_action(rt, headers, id, Role::SalesAgent, "resume").await
}

/// Cancel a campaign for good.
///
/// Needs a token with role `admin`.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/cancel",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The campaign, cancelled", body = CampaignStatus),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "Finished or cancelled already", body = ErrorBody),
    )
)]
pub async fn campaign_cancel(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignStatus>> {
    campaign_action(rt, headers, id, Role::Admin, "cancel").await
}
