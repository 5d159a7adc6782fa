//! What the partner portal's customer and reseller pages read: one customer by domain with
//! its invitations' delivery and its relationships' reminders, and the resellers a page at a
//! time.

use crate::app::AppState;
use crate::core::customer::{CustomerDetail, InvitationDelivery, RelationshipDetail, ResellerPage};
use crate::core::domain::{DomainName, InstanceId, MpnId};
use crate::store::CustomerQuery;

use super::*;

/// How many invitations a customer's page shows (the newest).
pub const CUSTOMER_INVITATIONS_SHOWN: usize = 100;

/// One customer by exact domain (accepted or invited); None when there is none.
pub async fn customer_detail(rt: &AppState, d: &DomainName) -> Result<Option<CustomerDetail>> {
    let found = rt.store.search_customers(CustomerQuery::Domain(d)).await?;
    let Some(customer) = found.into_iter().find(|c| c.domain == d.as_str()) else {
        return Ok(None);
    };
    let total = customer.invitations.len();
    let mut invitations = Vec::new();
    for v in customer
        .invitations
        .iter()
        .rev()
        .take(CUSTOMER_INVITATIONS_SHOWN)
    {
        invitations.push(InvitationDelivery {
            emails: rt.store.emails_of(&v.invitation.instance_id).await?,
            invitation: v.clone(),
        });
    }
    let mut relationships = Vec::new();
    for a in &customer.acceptances {
        let Some(rel) = &a.relationship else { continue };
        let detail = rt.engine.detail(&rel.id).await?;
        relationships.push(RelationshipDetail {
            acceptance_id: a.acceptance.instance_id.as_str().to_string(),
            relationship: rel.clone(),
            reminders_sent: detail
                .emails
                .into_iter()
                .filter(|e| e.template == "admin_expiry_reminder")
                .collect(),
            reminders_due: detail
                .timers
                .into_iter()
                .filter(|t| {
                    t.state == "scheduled"
                        && t.name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("reminder") || n == "end")
                })
                .collect(),
        });
    }
    let mut reseller_names: Vec<(String, Option<String>)> = Vec::new();
    for r in &customer.resellers {
        if reseller_names.iter().any(|(m, _)| *m == r.mpn_id) {
            continue;
        }
        let name = match MpnId::parse(&r.mpn_id) {
            Ok(m) => rt.store.reseller(&m).await?.map(|v| v.reseller.name),
            Err(_) => None,
        };
        reseller_names.push((r.mpn_id.clone(), name));
    }
    Ok(Some(CustomerDetail {
        more_invitations: total.saturating_sub(CUSTOMER_INVITATIONS_SHOWN),
        customer,
        invitations,
        relationships,
        reseller_names,
    }))
}

/// Reseller partnerships by MPN ID, `limit` at a time after the cursor `after` (the `next`
/// of the previous page; a malformed one is refused as field `cursor`).
pub async fn resellers_page(
    rt: &AppState,
    after: Option<&str>,
    limit: i64,
) -> Result<ResellerPage> {
    let after = after
        .map(|a| MpnId::parse(a).map_err(|m| invalid("cursor", m)))
        .transpose()?;
    let limit = limit.clamp(1, 500);
    let mut ids = rt
        .store
        .reseller_ids_after(after.as_ref(), limit + 1)
        .await?;
    let next = if ids.len() as i64 > limit {
        ids.truncate(limit as usize);
        ids.last().map(|m| m.as_str().to_string())
    } else {
        None
    };
    let mut resellers = Vec::new();
    for m in &ids {
        if let Some(r) = rt.store.reseller(m).await? {
            resellers.push(r);
        }
    }
    Ok(ResellerPage { resellers, next })
}

/// An acceptance id as the associate form gives it (field `acceptance_id`).
pub fn parse_acceptance_id(s: &str) -> Result<InstanceId> {
    InstanceId::parse(s.trim()).map_err(|m| invalid("acceptance_id", m))
}
