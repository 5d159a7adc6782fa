//! The other systems' webhooks: `/api/v1/signups` (the sign-up system) and
//! `/api/v1/bounces` (the mail system).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::campaigns::BounceResult;
use crate::core::domain::{DomainName, Role, Timestamp};
use crate::core::offer::SignupReceipt;
use crate::offers;
use crate::web::api::formats::{AdvisorCodeText, DomainText};
use crate::web::error::{ApiResult, ErrorBody, bad};
use crate::web::{auth, parse_json};

/// A completed sign-up (`Signup`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Signup)]
pub struct SignupBody {
    /// The advisor code the customer signed up with (from the offer's sign-up link).
    #[schema(value_type = AdvisorCodeText)]
    advisor_code: String,
    #[schema(value_type = DomainText)]
    customer_domain: String,
    #[schema(format = DateTime, example = "2026-11-22T10:00:00Z")]
    completed_at: String,
}

/// Webhook of the sign-up system: a completed sign-up (advisor code, customer domain, time);
/// an advisor code that does not verify is refused (422, field advisor_code) and nothing is
/// recorded.
///
/// Needs a token with role `signups` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/signups",
    tag = "webhooks",
    request_body = SignupBody,
    security(("bearer" = ["signups"])),
    responses(
        (status = 201, description = "Recorded", body = SignupReceipt),
        (status = 200, description = "Known already (recorded before); nothing changed", body = SignupReceipt),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
        (status = 422, description = "The advisor code does not verify, or its offer does not exist", body = ErrorBody),
    )
)]
pub async fn signup_webhook(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    auth(&rt, &headers, Role::Signups).await?;
    let b: SignupBody = parse_json(&body)?;
    let domain = DomainName::parse(&b.customer_domain).map_err(|m| bad("customer_domain", m))?;
    let at = Timestamp::parse_rfc3339(&b.completed_at).map_err(|m| bad("completed_at", m))?;
    let r = offers::record_signup(&rt, &b.advisor_code, domain, at, "webhook").await?;
    let status = if r.recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r)).into_response())
}

/// What one bounce message did.
#[derive(Serialize, ToSchema)]
pub struct BounceReport {
    /// Per failed recipient: what was done, or `unmatched` (why nothing was).
    bounces: Vec<BounceResult>,
    /// How many matched no message we sent (and changed nothing).
    unmatched: usize,
}

/// Webhook of the mail system: one bounce message (message/rfc822 body, a delivery status
/// notification, at most 20 recipients). Only a bounce matching a message we sent
/// (Message-ID and that message's recipient) is acted on (hard: `bounced` and suppressed;
/// soft: counted); the others come back with `unmatched` (the reason) and change nothing.
///
/// Needs a token with role `bounces` (or `admin`).
#[utoipa::path(
    post,
    path = "/api/v1/bounces",
    tag = "webhooks",
    request_body(
        content = String,
        content_type = "message/rfc822",
        description = "The bounce message as received",
        example = "From: MAILER-DAEMON@mx.example\r\nTo: bounces@partnerflow.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; it@contoso.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m1@partnerflow.example>\r\nTo: it@contoso.example\r\n\r\n--b1--\r\n"
    ),
    security(("bearer" = ["bounces"])),
    responses(
        (status = 200, description = "What the bounce did", body = BounceReport),
        (status = 400, description = "Not a delivery status notification", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's role does not allow this", body = ErrorBody),
    )
)]
pub async fn bounce_webhook(
    State(rt): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<BounceReport>> {
    auth(&rt, &headers, Role::Bounces).await?;
    let results = crate::campaigns::ingest_bounce(&rt, &body, "bounce-webhook")
        .await
        .map_err(|e| match e {
            crate::campaigns::CampaignError::Invalid(m) => bad("body", m),
            e => e.into(),
        })?;
    // Bounces that match no message we sent changed nothing; say how many.
    let unmatched = results.iter().filter(|r| r.unmatched.is_some()).count();
    Ok(Json(BounceReport {
        bounces: results,
        unmatched,
    }))
}
