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
