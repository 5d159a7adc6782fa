//! The partner's product catalog (`config/catalog.toml`), checked at start: every error names
//! the file and the line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::core::domain::{Country, ProductId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProductKind {
    Trial,
    Paid,
}

/// A product of the catalog: what may be offered, where, within which licence limits.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    #[schema(value_type = String, example = "m365-e3")]
    pub id: ProductId,
    pub name: String,
    pub kind: ProductKind,
    pub min_licences: u32,
    pub max_licences: u32,
    /// The usage countries it is sold in (ISO 3166-1 alpha-2).
    #[schema(value_type = Vec<String>, example = json!(["DE", "AT"]))]
    pub countries: BTreeSet<Country>,
}

impl Product {
    pub fn sold_in(&self, c: Country) -> bool {
        self.countries.contains(&c)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    products: BTreeMap<ProductId, Product>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    product: Vec<Spanned<RawProduct>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    id: String,
    name: String,
    kind: ProductKind,
    min_licences: i64,
    max_licences: i64,
    countries: Vec<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses a catalog; all errors at once, each `file:line: message`.
    pub fn parse(file: &str, text: &str) -> Result<Catalog, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            format!("{file}:{line}: {}", e.message())
        })?;
        let mut errors = Vec::new();
        let mut products = BTreeMap::new();
        for p in &raw.product {
            let line = line_of(text, p.span().start);
            let r = p.get_ref();
            let mut err =
                |m: String| errors.push(format!("{file}:{line}: product `{}`: {m}", r.id));
            let id = match ProductId::parse(&r.id) {
                Ok(id) => id,
                Err(m) => {
                    err(m);
                    continue;
                }
            };
            if r.name.trim().is_empty() {
                err("name is empty".into());
            }
            if r.min_licences < 1 || r.max_licences < r.min_licences || r.max_licences > 1_000_000 {
                err(format!(
                    "licence limits {}..{} must satisfy 1 <= min_licences <= max_licences <= 1000000",
                    r.min_licences, r.max_licences
                ));
                continue;
            }
            let mut countries = BTreeSet::new();
            for c in &r.countries {
                match Country::parse(c) {
                    Ok(c) => {
                        countries.insert(c);
                    }
                    Err(m) => err(format!("countries: {m}")),
                }
            }
            if r.countries.is_empty() {
                err("countries is empty: the product could never be offered".into());
            }
            if products.contains_key(&id) {
                err("is listed twice".into());
                continue;
            }
            products.insert(
                id.clone(),
                Product {
                    id,
                    name: r.name.trim().to_string(),
                    kind: r.kind,
                    min_licences: r.min_licences as u32,
                    max_licences: r.max_licences as u32,
                    countries,
                },
            );
        }
        if errors.is_empty() {
            Ok(Catalog { products })
        } else {
            Err(errors.join("\n"))
        }
    }

    pub fn get(&self, id: &ProductId) -> Option<&Product> {
        self.products.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Product> {
        self.products.values()
    }

    /// Products available in `country`, trial and paid.
    pub fn in_country(&self, country: Country) -> Vec<&Product> {
        self.products
            .values()
            .filter(|p| p.sold_in(country))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalog_loads() {
        let c = Catalog::load(Path::new("config/catalog.toml")).unwrap();
        let de = Country::parse("DE").unwrap();
        assert!(
            c.in_country(de)
                .iter()
                .any(|p| p.kind == ProductKind::Trial)
        );
        assert!(c.in_country(de).iter().any(|p| p.kind == ProductKind::Paid));
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "[[product]]\nid = \"a\"\nname = \"A\"\nkind = \"paid\"\nmin_licences = 5\nmax_licences = 2\ncountries = [\"DE\"]\n\n[[product]]\nid = \"Bad Id\"\nname = \"B\"\nkind = \"trial\"\nmin_licences = 1\nmax_licences = 2\ncountries = [\"DEU\"]\n";
        let e = Catalog::parse("cat.toml", text).unwrap_err();
        assert!(
            e.contains("cat.toml:1: product `a`: licence limits 5..2"),
            "{e}"
        );
        assert!(e.contains("cat.toml:9: product `Bad Id`"), "{e}");
        let e =
            Catalog::parse("cat.toml", "[[product]]\nid = \"a\"\nkind = \"gratis\"\n").unwrap_err();
        assert!(e.starts_with("cat.toml:"), "{e}");
    }
}
