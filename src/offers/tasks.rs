//! The built-in scheduled tasks: `location_sync` and `reconcile`.

use crate::app::AppState;
use crate::core::domain::Span;
use crate::core::offer::Location;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    id: String,
    name: String,
    country: String,
    partner_id: String,
}

/// Parses a locations document; every bad entry is named by its index.
pub fn parse_locations(source: &str, text: &str) -> Result<Vec<Location>, String> {
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("{source}: not a JSON array: {e}"))?;
    let mut out = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let r: RawLocation =
            serde_json::from_value(v).map_err(|e| format!("{source}: entry {i}: {e}"))?;
        let country = r.country.trim().to_ascii_uppercase();
        if r.id.trim().is_empty()
            || country.len() != 2
            || !country.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(format!(
                "{source}: entry {i}: needs a non-empty id and a two-letter country code"
            ));
        }
        out.push(Location {
            id: r.id.trim().into(),
            name: r.name.trim().into(),
            country,
            partner_id: r.partner_id.trim().into(),
        });
    }
    Ok(out)
}

async fn fetch_source(source: &str) -> Result<String, String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let url = source.to_string();
        tokio::task::spawn_blocking(move || {
            ureq::get(&url)
                .call()
                .map_err(|e| format!("{url}: {e}"))?
                .body_mut()
                .read_to_string()
                .map_err(|e| format!("{url}: {e}"))
        })
        .await
        .map_err(|e| e.to_string())?
    } else {
        tokio::fs::read_to_string(source)
            .await
            .map_err(|e| format!("{source}: {e}"))
    }
}

/// Reads partner locations from the configured source and upserts them. A location is
/// selectable once a sync has seen it; one that this (successful) sync no longer lists is
/// unavailable from now on, and the partner is told once (a `location_notice`, started in the
/// transaction that marks it removed).
pub async fn location_sync(rt: &AppState) -> Result<String, String> {
    let source = &rt.settings.schedules.location_sync.source;
    let text = fetch_source(source).await?;
    let locs = parse_locations(source, &text)?;
    let now = rt.clock.now();
    let (new, updated) = rt
        .store
        .upsert_locations(&locs, now)
        .await
        .map_err(|e| e.to_string())?;
    let mut removed = 0;
    for l in rt
        .store
        .unlisted_locations(now)
        .await
        .map_err(|e| e.to_string())?
    {
        let open = rt
            .store
            .offers(&crate::core::offer::OfferFilter {
                state: Some("open".into()),
                location_id: Some(l.id.clone()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut d = serde_json::Map::new();
        d.insert("location_id".into(), serde_json::json!(l.id));
        d.insert("location_name".into(), serde_json::json!(l.name));
        d.insert("removed_at".into(), serde_json::json!(now.to_rfc3339()));
        d.insert(
            "open_offers".into(),
            serde_json::json!(
                open.iter()
                    .map(|o| o.offer.offer_id.as_str())
                    .collect::<Vec<_>>()
            ),
        );
        let id = crate::core::domain::InstanceId::generate();
        let (mut c, _) = rt
            .engine
            .plan_start(
                &id,
                "location_notice",
                &d,
                None,
                "location_sync",
                &["remove"],
            )
            .map_err(|e| e.to_string())?;
        c[0].records.push(crate::store::Record::LocationRemoved {
            location_id: l.id.clone(),
            notice: id,
        });
        match rt.engine.commit_plan(&c).await {
            Ok(()) => {
                removed += 1;
                tracing::warn!(location = %l.id, open_offers = open.len(), "location no longer listed by the source: unavailable from now on");
            }
            // Another node's sync marked it first: the partner is told once.
            Err(crate::engine::EngineError::Store(crate::store::StoreError::Conflict(_))) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(format!(
        "{} locations: {new} new, {updated} updated, {removed} no longer listed (unavailable)",
        locs.len()
    ))
}

/// Finds jobs stuck past their lease and overdue timers, re-enqueues them, logs the repair.
pub async fn reconcile(rt: &AppState) -> Result<String, String> {
    let now = rt.clock.now();
    let stuck_before = now.plus(Span(-rt.settings.schedules.reconcile.stuck_after.0));
    let (repaired, overdue) = rt
        .store
        .repair(now, stuck_before)
        .await
        .map_err(|e| e.to_string())?;
    for j in &repaired {
        tracing::warn!(job = j.id, kind = %j.kind, subject = %j.subject, "re-enqueued a stuck job");
    }
    if overdue > 0 {
        tracing::warn!(
            overdue,
            "jobs overdue by more than stuck_after: are workers running?"
        );
    }
    let r = crate::offers::reconcile_signups(rt)
        .await
        .map_err(|e| e.to_string())?;
    if r.unmatched > 0 {
        tracing::warn!(
            unmatched = r.unmatched,
            "reported sign-ups that match no acceptance (see `partnerflow offer show`)"
        );
    }
    Ok(format!(
        "re-enqueued {} stuck jobs; {overdue} overdue; sign-ups: {} acceptances completed, {} abandoned, {} sign-ups unmatched",
        repaired.len(),
        r.completed,
        r.abandoned,
        r.unmatched
    ))
}
