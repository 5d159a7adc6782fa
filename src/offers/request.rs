//! Requests as both edges hand them in (the partner API's query strings and bodies, the CLI's
//! flags): plain text parsed once into the services' typed values, a failure naming its field.
//! The API answers a [`FieldError`] with 400 `invalid_request`; the CLI prints it.

use super::*;

/// A malformed value of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// `2026-11-22` (midnight UTC) or an RFC 3339 date-time.
pub fn parse_time_or_date(s: &str) -> Result<Timestamp, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let dt = d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
        return dt
            .map(Timestamp::from_datetime)
            .ok_or_else(|| format!("`{s}` is not a date"));
    }
    Timestamp::parse_rfc3339(s)
        .map_err(|_| format!("`{s}` is neither a date (2026-11-22) nor an RFC 3339 date-time"))
}

/// A partner location's id as given: trimmed, 1 to 100 characters.
pub fn parse_location_id(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 100 {
        return Err("is empty or longer than 100 characters".into());
    }
    if t.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(t.to_string())
}

/// Offer list filters from `get(key)` (a query string's pairs or the CLI's flags): `state`,
/// `kind`, `location`, `created_from`, `created_to`, `limit` (1–1000, default 100) and
/// `before` (the `next` cursor of the previous page).
pub fn parse_filter<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<OfferFilter, FieldError> {
    let get = |k: &str| get(k).map(str::trim).filter(|s| !s.is_empty());
    let time = |k: &str| -> Result<Option<Timestamp>, FieldError> {
        get(k)
            .map(|s| parse_time_or_date(s).map_err(|e| field(k, e)))
            .transpose()
    };
    let limit = match get("limit") {
        None => 100,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| field("limit", "a number from 1 to 1000"))?,
    };
    let before = match get("before") {
        None => None,
        Some(c) => {
            let cursor = || field("before", "use the `next` value of the previous page");
            let (t, id) = c.split_once('~').ok_or_else(cursor)?;
            let t = t.parse::<i64>().map_err(|_| cursor())?;
            Some((
                Timestamp(t),
                OfferId::parse(id).map_err(|m| field("offer_id", m))?,
            ))
        }
    };
    let state = get("state").map(str::to_string);
    if let Some(s) = &state
        && !["created", "open", "expired", "withdrawn"].contains(&s.as_str())
    {
        return Err(field("state", "one of open, expired, withdrawn, created"));
    }
    Ok(OfferFilter {
        state,
        kind: get("kind")
            .map(OfferKind::parse)
            .transpose()
            .map_err(|m| field("kind", m))?,
        location_id: get("location")
            .map(parse_location_id)
            .transpose()
            .map_err(|m| field("location", m))?,
        created_from: time("created_from")?,
        created_to: time("created_to")?,
        created_by: None,
        before,
        limit,
    })
}

/// The `before` cursor of the page after `list` (None when `list` is the last page).
pub fn next_page(list: &[OfferView], limit: i64) -> Option<String> {
    (list.len() as i64 == limit)
        .then(|| {
            list.last()
                .map(|o| format!("{}~{}", o.offer.created_at.0, o.offer.offer_id))
        })
        .flatten()
}
