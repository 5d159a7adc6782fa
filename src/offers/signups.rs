//! Completed sign-ups reported by the sign-up system, and reconciling them with confirmed
//! acceptances.

use crate::app::AppState;
use crate::core::domain::{DomainName, OfferId, Span, Timestamp};
use crate::core::offer::SignupReceipt;
use crate::engine::EngineError;
use crate::store::{NewSignup, Record, StoreError};

use super::*;

/// Records a completed sign-up reported by the sign-up system (webhook or import). Its
/// advisor code must verify (an offer of ours, its MAC over the offer's location): a code
/// that does not is refused (`Invalid` on `advisor_code`) and nothing is recorded.
pub async fn record_signup(
    rt: &AppState,
    advisor_code: &str,
    domain: DomainName,
    completed_at: Timestamp,
    source: &str,
) -> Result<SignupReceipt> {
    let code = advisor_code.trim();
    if code.is_empty() || code.len() > 200 || code.chars().any(char::is_control) {
        return Err(invalid(
            "advisor_code",
            "is empty, too long or has control characters",
        ));
    }
    let offer_id = match resolve_code(rt, code).await {
        Ok(o) => o.offer.offer_id,
        Err(Resolve::Closed(o) | Resolve::LocationGone(o, _)) => o.offer.offer_id,
        Err(Resolve::NotFound(_)) => {
            return Err(invalid(
                "advisor_code",
                "does not verify: it is not a code of one of our offers",
            ));
        }
        Err(Resolve::Unavailable(e)) => return Err(e.into()),
    };
    let recorded = rt
        .store
        .insert_signup(
            &NewSignup {
                advisor_code: code.into(),
                offer_id: Some(offer_id.clone()),
                domain,
                completed_at,
                source: source.into(),
            },
            rt.clock.now(),
        )
        .await?;
    Ok(SignupReceipt { recorded, offer_id })
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Reconciled {
    pub completed: usize,
    pub abandoned: usize,
    pub unmatched: usize,
}

/// Matches reported sign-ups to confirmed acceptances (`submitted` → `completed`; a pending
/// delegated-admin request — only ever the one the confirmed customer granted — is approved,
/// since the tenant now exists). A sign-up dated before the acceptance matches nothing.
/// Marks acceptances
/// without a sign-up within `offers.signup_window` as `abandoned` (their pending requests
/// are cancelled). Idempotent: run it any number of times.
pub async fn reconcile_signups(rt: &AppState) -> Result<Reconciled> {
    let mut out = Reconciled::default();
    for s in rt.store.unmatched_signups(10_000).await? {
        let Some(offer) = s.offer_id.as_deref().and_then(|o| OfferId::parse(o).ok()) else {
            out.unmatched += 1;
            continue;
        };
        let Ok(domain) = DomainName::parse(&s.domain) else {
            out.unmatched += 1;
            continue;
        };
        // Only a confirmed acceptance (someone showed control of a mailbox at the domain)
        // is ever completed; unconfirmed ones are invisible here.
        let Some(a) = rt.store.acceptance_by_domain(&offer, &domain).await? else {
            out.unmatched += 1;
            continue;
        };
        // A sign-up completed before the acceptance was made is not its sign-up.
        if a.state != "submitted" || s.completed_at < a.acceptance.accepted_at {
            out.unmatched += 1;
            continue;
        }
        let mut c = rt
            .engine
            .plan_fire(&a.acceptance.instance_id, "complete", "reconcile")
            .await?;
        c.records.push(Record::SignupMatched {
            signup_id: s.id,
            acceptance: a.acceptance.instance_id.clone(),
        });
        let mut commits = vec![c];
        if let Some(rel) = &a.relationship
            && rel.state == "approval_pending"
        {
            commits.push(rt.engine.plan_fire(&rel.id, "approve", "reconcile").await?);
        }
        match rt.engine.commit_plan(&commits).await {
            Ok(()) => out.completed += 1,
            // Another node reconciled it meanwhile; the next run sees the outcome.
            Err(EngineError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let before = rt
        .clock
        .now()
        .plus(Span(-rt.settings.offers.signup_window.0));
    for id in rt.store.stale_acceptances(before, 10_000).await? {
        let Some(a) = rt.store.acceptance(&id).await? else {
            continue;
        };
        let mut commits = vec![rt.engine.plan_fire(&id, "abandon", "reconcile").await?];
        if let Some(rel) = &a.relationship
            && rel.state == "approval_pending"
        {
            commits.push(
                rt.engine
                    .plan_fire(&rel.id, "terminate", "reconcile")
                    .await?,
            );
        }
        match rt.engine.commit_plan(&commits).await {
            Ok(()) => out.abandoned += 1,
            Err(EngineError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
