//! Reseller partnerships (indirect provider): requests, associations, removal.

use serde_json::{Map, json};

use crate::app::AppState;
use crate::core::domain::{DomainName, EmailAddress, InstanceId, MpnId};
use crate::core::links::Purpose;
use crate::core::offer::{ResellerRow, ResellerView};
use crate::engine::EngineError;
use crate::store::{CustomerQuery, Record};

use super::*;

/// An indirect provider's partnership request to a reseller, mailed with a link personal to
/// this request. A reseller whose earlier partnership ended may be asked again.
pub async fn request_reseller(
    rt: &AppState,
    mpn: MpnId,
    name: String,
    email: EmailAddress,
    actor: &str,
) -> Result<ResellerView> {
    if let Some(r) = rt.store.reseller(&mpn).await?
        && !rt
            .engine
            .definition("reseller_partnership")?
            .is_final(&r.state)
    {
        return Err(OfferError::Conflict(format!(
            "reseller {mpn} already has a partnership ({})",
            r.state
        )));
    }
    let id = InstanceId::generate();
    let token = rt.keys.sign(Purpose::Reseller, id.as_str(), &[]);
    let link = link_for(rt, "p", &token);
    let mut d = Map::new();
    d.insert("reseller_email".into(), json!(email));
    d.insert("reseller_name".into(), json!(name));
    d.insert("mpn_id".into(), json!(mpn));
    d.insert("link".into(), json!(link));
    let (mut c, _) =
        rt.engine
            .plan_start(&id, "reseller_partnership", &d, None, actor, &["send"])?;
    c[0].records.push(Record::Reseller(ResellerRow {
        mpn_id: mpn.clone(),
        instance_id: id,
        name,
        email,
        created_at: rt.clock.now(),
    }));
    rt.engine.commit_plan(&c).await?;
    reseller(rt, &mpn).await
}

/// Every reseller partnership, oldest first.
pub async fn resellers(rt: &AppState) -> Result<Vec<ResellerView>> {
    Ok(rt.store.resellers().await?)
}

pub async fn reseller(rt: &AppState, mpn: &MpnId) -> Result<ResellerView> {
    rt.store
        .reseller(mpn)
        .await?
        .ok_or_else(|| OfferError::NotFound(format!("reseller {mpn}")))
}

/// Whom a reseller is associated with: a customer (by domain) or an accepted offer.
#[derive(Debug, Clone)]
pub enum ResellerTarget {
    Customer(DomainName),
    Acceptance(InstanceId),
}

pub async fn associate_reseller(
    rt: &AppState,
    mpn: &MpnId,
    target: ResellerTarget,
    support_contact: bool,
) -> Result<ResellerView> {
    let r = reseller(rt, mpn).await?;
    if r.state != "active" {
        return Err(OfferError::Conflict(format!(
            "reseller {mpn}'s partnership is {}: it must be accepted (active) first",
            r.state
        )));
    }
    let (domain, acceptance_id) = match target {
        ResellerTarget::Customer(d) => {
            let found = rt.store.search_customers(CustomerQuery::Domain(&d)).await?;
            // A customer who accepted an offer, not only one who was invited.
            if found.iter().all(|c| c.acceptances.is_empty()) {
                return Err(OfferError::NotFound(format!("customer {d}")));
            }
            (d, None)
        }
        ResellerTarget::Acceptance(id) => {
            let a = rt
                .store
                .acceptance(&id)
                .await?
                .ok_or_else(|| OfferError::NotFound(format!("acceptance {id}")))?;
            (a.acceptance.domain, Some(id))
        }
    };
    rt.store
        .write_records(
            &[Record::ResellerCustomer {
                mpn_id: mpn.clone(),
                domain,
                acceptance_id,
                support_contact,
            }],
            rt.clock.now(),
        )
        .await?;
    reseller(rt, mpn).await
}

/// Ends a reseller partnership; its customers and their associations stay.
pub async fn remove_reseller(rt: &AppState, mpn: &MpnId, actor: &str) -> Result<ResellerView> {
    let r = reseller(rt, mpn).await?;
    let event = if r.state == "active" {
        "remove"
    } else {
        "withdraw"
    };
    rt.engine
        .fire(&r.reseller.instance_id, event, actor)
        .await?;
    reseller(rt, mpn).await
}

/// The reseller request a personal page link (`/p/{token}`) stands for. None for a link that
/// does not verify, or one a later request for the same reseller replaced (one answer for all).
pub async fn reseller_of_link(rt: &AppState, token: &str) -> Option<ResellerView> {
    let id = resolve_page_token(rt, Purpose::Reseller, token)?;
    let r = rt.store.reseller_by_instance(&id).await.ok()??;
    (r.reseller.instance_id == id).then_some(r)
}

/// Whether a reseller request's page still takes an answer (`request_sent`), and whether the
/// partnership stands (`request_sent` or `active`: the page is shown, not gone).
pub fn reseller_request_open(r: &ResellerView) -> (bool, bool) {
    let open = r.state == "request_sent";
    (open, open || r.state == "active")
}

/// The reseller accepts the partnership request on its page: true when it is (or already
/// was) active, false when it can no longer be (ended, or replaced meanwhile).
pub async fn accept_reseller_request(rt: &AppState, r: &ResellerView) -> Result<bool> {
    match r.state.as_str() {
        "active" => Ok(true),
        "request_sent" => match rt
            .engine
            .fire(&r.reseller.instance_id, "accept", "reseller")
            .await
        {
            Ok(_) => Ok(true),
            Err(EngineError::Rejected(_)) => Ok(false),
            Err(e) => Err(e.into()),
        },
        _ => Ok(false),
    }
}
