//! Customer search: by exact user name or exact domain.

use crate::app::AppState;
use crate::core::domain::{DomainName, EmailAddress};
use crate::core::offer::CustomerView;
use crate::store::CustomerQuery;

use super::*;

pub async fn search_customers(rt: &AppState, q: &str) -> Result<Vec<CustomerView>> {
    let q = q.trim();
    if q.is_empty() {
        return Err(invalid(
            "q",
            "give an exact user name (person@contoso.com) or domain (contoso.com)",
        ));
    }
    if q.contains(['*', '%', '?']) {
        return Err(invalid(
            "q",
            "wildcards are not supported: give the exact user name or domain",
        ));
    }
    if q.contains('@') {
        let e = EmailAddress::parse(q).map_err(|m| invalid("q", m))?;
        Ok(rt.store.search_customers(CustomerQuery::User(&e)).await?)
    } else {
        let d = DomainName::parse(q).map_err(|m| invalid("q", m))?;
        Ok(rt.store.search_customers(CustomerQuery::Domain(&d)).await?)
    }
}
