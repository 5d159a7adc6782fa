//! The partner overview's figures (the portal's first page and `bench portal`): lifecycles
//! by state, the next relationship ends, running campaigns, and the funnel of a period per
//! offer kind, filtered by kind and location. Also records an offer link's first open, the
//! funnel's "opened" stage.

use crate::app::AppState;
use crate::core::offer::OfferRow;
use crate::core::overview::{FunnelFilter, Overview};
use crate::store::StoreError;

/// Relationship ends and running campaigns shown.
const SHOWN: i64 = 5;

/// The overview for `filter` (the funnel only is filtered; the rest is the whole business).
pub async fn overview(rt: &AppState, filter: &FunnelFilter) -> Result<Overview, StoreError> {
    // Independent reads, at once (each on a connection of its own).
    let (states, expiries, campaigns, funnel) = tokio::try_join!(
        rt.store.overview_states(),
        rt.store.next_relationship_ends(SHOWN),
        rt.store.running_campaign_progress(SHOWN),
        rt.store.funnel(filter),
    )?;
    let funnel = funnel
        .into_iter()
        .filter(|(k, _)| filter.kind.is_none_or(|f| f == *k))
        .collect();
    Ok(Overview {
        states,
        expiries,
        campaigns,
        funnel,
    })
}

/// Notes that an offer's page was shown (the first time only; a failure is logged, never the
/// customer's problem).
pub async fn record_open(rt: &AppState, offer: &OfferRow) {
    if let Err(e) = rt
        .store
        .record_offer_open(
            offer.offer_id.as_str(),
            offer.kind,
            &offer.location_id,
            rt.clock.now(),
        )
        .await
    {
        tracing::warn!(error = %e, "overview: an offer's first open was not recorded");
    }
}
