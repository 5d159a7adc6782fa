//! The partner API's handlers, one file per resource. Each handler carries its
//! `#[utoipa::path]`: the OpenAPI document ([`super::openapi`]) is made from these and from
//! the body types the handlers deserialize and serialize.

pub mod campaigns;
pub mod catalog;
pub mod customers;
pub mod formats;
pub mod health;
pub mod instances;
pub mod offers;
pub mod resellers;
pub mod webhooks;

use serde::Serialize;
use utoipa::ToSchema;

/// An offer's kind (the handlers take the string and parse it; these are the values they
/// accept).
#[derive(Serialize, ToSchema)]
#[schema(as = OfferKind)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum OfferKindName {
    Trial,
    Purchase,
    DelegatedAdmin,
}

/// An optional `u32` written as any JSON number without a fraction (`60` or `60.0`: JSON
/// Schema's `integer` allows both, so the handler takes both).
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    whole
        .and_then(|w| u32::try_from(w).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("{n} is not a whole number from 0 to 4294967295"))
        })
}

/// An offer's lifecycle state, as the offer list filters by it.
#[derive(Serialize, ToSchema)]
#[schema(as = OfferState)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum OfferStateName {
    Created,
    Open,
    Expired,
    Withdrawn,
}

/// A language of pages and emails.
#[derive(Serialize, ToSchema)]
#[schema(as = Locale)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum LocaleName {
    De,
    En,
}

/// The delegated-admin role an offer asks for (`none`: none).
#[derive(Serialize, ToSchema)]
#[schema(as = DelegatedAdmin)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum DelegatedAdminName {
    None,
    Full,
    Limited,
}
