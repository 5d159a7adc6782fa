//! The string formats the handlers parse, as OpenAPI schemas: a pattern (or the list of values)
//! that every string the document allows passes, so a request the document allows is one the
//! handler takes (the handlers parse with `core::domain`; these patterns are as strict or
//! stricter). Fields and path parameters name them with `value_type = …`.
//!
//! What a pattern cannot say — a signature that must verify, an offer that must exist and be
//! open, a time that must lie ahead — is answered 404/409/422 and documented on the operation.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::core::domain::ISO_3166_ALPHA2;

/// One DNS label: letters and digits, `-` inside, at most 63.
const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

/// A domain name of two labels or more.
pub fn domain_pattern() -> String {
    format!("(?:{LABEL}\\.)+{LABEL}")
}

/// An address's local part: a dot-atom (no leading, trailing or double dot) of at most 64
/// characters, of the characters `EmailAddress::parse` takes (no space, quotes, brackets,
/// `<>`, `,;`, `\`).
const LOCAL: &str =
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){0,2}";

/// A local part a customer search takes: as [`LOCAL`] without `*`, `%` and `?` (the search
/// refuses them as wildcards).
const LOCAL_SEARCH: &str =
    "[A-Za-z0-9!#$&'+/=^_`{|}~-]{1,32}(?:\\.[A-Za-z0-9!#$&'+/=^_`{|}~-]{1,15}){0,2}";

/// A free text a person typed: at least one visible character, no control characters.
const NAME: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

fn string(
    pattern: Option<String>,
    max: Option<usize>,
    description: &str,
    example: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(pattern)
        .min_length(Some(1))
        .max_length(max)
        .description(Some(description))
        .examples([example])
        .into()
}

macro_rules! format_schema {
    ($(#[$doc:meta])* $ty:ident as $name:literal => $schema:expr) => {
        $(#[$doc])*
        pub struct $ty;
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

format_schema!(
    /// `PF-` and 12 characters (A–Z without I and O, 2–9); any case.
    OfferIdText as "OfferId" => string(
        Some("^[Pp][Ff]-[A-HJ-NP-Za-hj-np-z2-9]{12}$".into()),
        Some(15),
        "An Offer ID: `PF-` and 12 characters of A–Z without I and O, and 2–9 (any case)",
        "PF-ABCDEFGHJKLM",
    )
);

format_schema!(
    /// An advisor code: key id, Offer ID, signature (43 characters of base64url).
    AdvisorCodeText as "AdvisorCode" => string(
        Some("^[A-Za-z0-9]{1,16}\\.PF-[A-HJ-NP-Z2-9]{12}\\.[A-Za-z0-9_-]{43}$".into()),
        Some(200),
        "An advisor code as the offer's link carries it: key id, Offer ID and signature, dot-separated (it must also verify: one of our offers)",
        "k1.PF-ABCDEFGHJKLM.Fph_yFaDt-4BjMjSvEQ-K6w4u-ANqXD4XMuFJJ6AShE",
    )
);

format_schema!(
    /// A partner location's id.
    LocationIdText as "LocationId" => string(
        Some(NAME.into()),
        Some(100),
        "A partner location's id (it must be one of the synced locations: `GET /api/v1/locations`)",
        "loc-berlin",
    )
);

format_schema!(
    /// A name in `workflows/` or an event of a workflow.
    WorkflowWordText as "WorkflowName" => string(
        Some("^[a-z][a-z0-9_]{0,63}$".into()),
        Some(64),
        "A workflow's name (`workflows/*.toml`) or one of its events",
        "trial_invitation",
    )
);

format_schema!(
    /// The `next` cursor of a page of offers.
    OfferCursorText as "OfferCursor" => string(
        Some("^-?[0-9]{1,15}~[Pp][Ff]-[A-HJ-NP-Za-hj-np-z2-9]{12}$".into()),
        Some(40),
        "The `next` value of the previous page",
        "1764547200000~PF-ABCDEFGHJKLM",
    )
);

format_schema!(
    /// A workflow instance's id.
    InstanceIdText as "InstanceId" => string(
        Some("^[A-Za-z0-9_-]{4,64}$".into()),
        Some(64),
        "A workflow instance's id (`in_` and 20 characters when made here)",
        "in_abcdefghjklmnpqrstu",
    )
);

format_schema!(
    /// A reseller's MPN ID.
    MpnIdText as "MpnId" => string(
        Some("^[0-9]{5,10}$".into()),
        Some(10),
        "A reseller's MPN ID (Microsoft Partner Network): 5 to 10 digits",
        "7654321",
    )
);

format_schema!(
    /// A customer's internet domain.
    DomainText as "DomainName" => string(
        Some(format!("^{}$", domain_pattern())),
        Some(253),
        "An internet domain name (exact; no wildcards), e.g. contoso.example",
        "contoso.example",
    )
);

format_schema!(
    /// An email address.
    EmailText as "EmailAddress" => ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .pattern(Some(format!("^{LOCAL}@{}$", domain_pattern())))
        .max_length(Some(254))
        .description(Some("An email address"))
        .examples(["it@contoso.example"])
        .into()
);

format_schema!(
    /// A customer search: an exact user name (email address) or an exact domain.
    CustomerQueryText as "CustomerQuery" => string(
        Some(format!("^(?:{LOCAL_SEARCH}@)?{}$", domain_pattern())),
        Some(253),
        "An exact user name (the admin's email address) or an exact domain; no wildcards",
        "contoso.example",
    )
);

format_schema!(
    /// A catalog product's id.
    ProductIdText as "ProductId" => string(
        Some("^[a-z0-9-]{1,64}$".into()),
        Some(64),
        "A catalog product id (a-z, 0-9 and -)",
        "m365-e3",
    )
);

format_schema!(
    /// An ISO 3166-1 alpha-2 country code that is assigned.
    CountryText as "Country" => ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(ISO_3166_ALPHA2))
        .description(Some("An assigned ISO 3166-1 alpha-2 country code, upper case"))
        .examples(["DE"])
        .into()
);

format_schema!(
    /// A name a person typed (campaign, organisation, reseller): 1 to 200 characters.
    NameText as "Name" => string(
        Some(NAME.into()),
        Some(200),
        "A name: at least one visible character, no control characters, at most 200",
        "Contoso Ltd",
    )
);

format_schema!(
    /// A date (`2026-11-22`, midnight UTC) or an RFC 3339 date-time.
    DateOrTimeText as "DateOrTime" => RefOr::T(Schema::AnyOf(
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .description(Some("A date (2026-11-22, midnight UTC) or an RFC 3339 date-time"))
            .build(),
    ))
);

format_schema!(
    /// An email template's name (a file stem in the templates folder).
    TemplateNameText as "TemplateName" => string(
        Some("^[A-Za-z0-9_-]{1,100}$".into()),
        Some(100),
        "An email template's name, e.g. trial_invitation (it must be one of the loaded templates, in every locale)",
        "trial_invitation",
    )
);

format_schema!(
    /// A duration that is not negative: digits and a unit.
    DurationText as "Duration" => string(
        Some("^\\+?[0-9]{1,9}(ms|s|m|h|d|w)$".into()),
        Some(12),
        "A duration, not negative: digits and a unit (ms, s, m, h, d, w), e.g. 3d; 0s: none",
        "3d",
    )
);

format_schema!(
    /// A campaign's recipient: the `email` column, and any other columns (lower-case names)
    /// as strings the templates may use.
    RecipientText as "Recipient" => ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .property("email", EmailText::schema())
        .required("email")
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some("^[a-z0-9_-]{1,100}$"))
                .build(),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some("^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"))
                .max_length(Some(1000)),
        ))
        .description(Some(
            "A recipient: `email` (required) and other columns, e.g. `name`, `company`, `locale` (de or en). A row whose values do not pass the import's checks is reported in `bad_rows` with its line, not refused with the request",
        ))
        .examples([serde_json::json!({ "email": "it@contoso.example", "name": "Dana Doe", "locale": "en" })])
        .into()
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{Country, DomainName, EmailAddress, MpnId, OfferId, ProductId};

    fn pattern_of(s: RefOr<Schema>) -> Option<String> {
        match s {
            RefOr::T(Schema::Object(o)) => o.pattern,
            _ => None,
        }
    }

    /// The examples the document shows are values the parsers take.
    #[test]
    fn examples_parse() {
        assert!(OfferId::parse("PF-ABCDEFGHJKLM").is_ok());
        assert!(MpnId::parse("7654321").is_ok());
        assert!(DomainName::parse("contoso.example").is_ok());
        assert!(EmailAddress::parse("it@contoso.example").is_ok());
        assert!(ProductId::parse("m365-e3").is_ok());
        assert!(ISO_3166_ALPHA2.iter().all(|c| Country::parse(c).is_ok()));
    }

    #[test]
    fn patterns_are_anchored() {
        for p in [
            pattern_of(OfferIdText::schema()),
            pattern_of(AdvisorCodeText::schema()),
            pattern_of(InstanceIdText::schema()),
            pattern_of(MpnIdText::schema()),
            pattern_of(DomainText::schema()),
            pattern_of(EmailText::schema()),
            pattern_of(CustomerQueryText::schema()),
            pattern_of(ProductIdText::schema()),
            pattern_of(NameText::schema()),
            pattern_of(LocationIdText::schema()),
            pattern_of(WorkflowWordText::schema()),
            pattern_of(OfferCursorText::schema()),
            pattern_of(DurationText::schema()),
            pattern_of(TemplateNameText::schema()),
        ] {
            let p = p.unwrap_or_default();
            assert!(p.starts_with('^') && p.ends_with('$'), "{p}");
        }
    }
}
