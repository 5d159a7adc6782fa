//! The partner's identity (the `company` row, one at most) and every node's copy of it in
//! memory ([`CompanyCell`]). Until an administrator saves the portal's company page there is
//! no row and the configuration's `[partner]` values stand.

use std::sync::{Arc, RwLock};

use sqlx::Row;

use super::users::audit_insert;
use super::*;
use crate::core::config::PartnerSettings;
use crate::core::domain::{EmailAddress, Timestamp};

/// How often every node re-reads the row (an edit on another node shows within this time).
pub const COMPANY_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// The editable part of the identity, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyFields {
    pub name: String,
    pub legal_name: String,
    pub email: EmailAddress,
    pub phone: String,
    pub website: String,
}

impl CompanyFields {
    pub fn of(p: &PartnerSettings) -> CompanyFields {
        CompanyFields {
            name: p.name.clone(),
            legal_name: p.legal_name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            website: p.website.clone(),
        }
    }
}

/// A stored logo: its checked content type and its bytes.
#[derive(Debug, Clone)]
pub struct Logo {
    pub content_type: String,
    pub bytes: Arc<[u8]>,
    pub version: i64,
}

/// The identity as shown: the configuration with the stored fields over it, and the logo.
#[derive(Debug, Clone)]
pub struct Company {
    pub partner: Arc<PartnerSettings>,
    pub logo: Option<Logo>,
    /// Saved in the portal (else the configuration's values).
    pub stored: bool,
}

struct RowFields {
    fields: CompanyFields,
    logo_type: Option<String>,
    logo_version: i64,
}

impl Store {
    async fn company_row(&self) -> Result<Option<RowFields>> {
        let Some(r) = sqlx::query(
            "SELECT name, legal_name, email, phone, website, logo_type, logo_version FROM company WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let email: String = r.try_get(2)?;
        Ok(Some(RowFields {
            fields: CompanyFields {
                name: r.try_get(0)?,
                legal_name: r.try_get(1)?,
                email: EmailAddress::parse(&email)
                    .map_err(|e| StoreError::Corrupt(format!("company email: {e}")))?,
                phone: r.try_get(3)?,
                website: r.try_get(4)?,
            },
            logo_type: r.try_get(5)?,
            logo_version: r.try_get(6)?,
        }))
    }

    async fn company_logo(&self) -> Result<Option<(String, Vec<u8>, i64)>> {
        let Some(r) = sqlx::query("SELECT logo_type, logo, logo_version FROM company WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let t: Option<String> = r.try_get(0)?;
        let b: Option<Vec<u8>> = r.try_get(1)?;
        Ok(match (t, b) {
            (Some(t), Some(b)) => Some((t, b, r.try_get(2)?)),
            _ => None,
        })
    }

    /// Saves the identity's fields (the row made if missing) and its audit entry, in one
    /// transaction.
    pub async fn save_company(
        &self,
        f: &CompanyFields,
        at: Timestamp,
        by: &str,
        audit: &NewAudit,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO company (id, name, legal_name, email, phone, website, logo_version, updated_at, updated_by)
             VALUES (1, $1, $2, $3, $4, $5, 0, $6, $7)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, legal_name = excluded.legal_name,
               email = excluded.email, phone = excluded.phone, website = excluded.website,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(f.name.clone())
        .bind(f.legal_name.clone())
        .bind(f.email.as_str().to_string())
        .bind(f.phone.clone())
        .bind(f.website.clone())
        .bind(at.0)
        .bind(by.to_string())
        .execute(&mut *tx)
        .await?;
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or, with None, removes) the logo; a missing row is made with `fields` (the
    /// identity as shown). The logo's version goes up by one. With its audit entry, in one
    /// transaction.
    pub async fn save_company_logo(
        &self,
        fields: &CompanyFields,
        logo: Option<(&str, &[u8])>,
        at: Timestamp,
        by: &str,
        audit: &NewAudit,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO company (id, name, legal_name, email, phone, website, logo_type, logo, logo_version, updated_at, updated_by)
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, 1, $8, $9)
             ON CONFLICT (id) DO UPDATE SET logo_type = excluded.logo_type, logo = excluded.logo,
               logo_version = company.logo_version + 1,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(fields.name.clone())
        .bind(fields.legal_name.clone())
        .bind(fields.email.as_str().to_string())
        .bind(fields.phone.clone())
        .bind(fields.website.clone())
        .bind(logo.map(|(t, _)| t.to_string()))
        .bind(logo.map(|(_, b)| b.to_vec()))
        .bind(at.0)
        .bind(by.to_string())
        .execute(&mut *tx)
        .await?;
        audit_insert(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A node's copy of the identity: read without the database (a lock and a reference count),
/// replaced by [`CompanyCell::refresh`] (after an edit here at once; otherwise every
/// [`COMPANY_REFRESH`], see `app::build`).
pub struct CompanyCell {
    config: PartnerSettings,
    base: url::Url,
    current: RwLock<Arc<Company>>,
    /// One refresh at a time, so a slower, older read never replaces a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CompanyCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompanyCell").finish()
    }
}

impl CompanyCell {
    /// The configuration's identity, until the first refresh. `base`: `app.public_base_url`.
    pub fn new(config: &PartnerSettings, base: &url::Url) -> CompanyCell {
        CompanyCell {
            config: config.clone(),
            base: base.clone(),
            current: RwLock::new(Arc::new(Company {
                partner: Arc::new(config.clone()),
                logo: None,
                stored: false,
            })),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The identity as this node knows it now.
    pub fn get(&self) -> Arc<Company> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, c: Company) -> Arc<Company> {
        let c = Arc::new(c);
        match self.current.write() {
            Ok(mut g) => *g = c.clone(),
            Err(poisoned) => *poisoned.into_inner() = c.clone(),
        }
        c
    }

    /// Reads the row again (the logo's bytes only when its version changed) and replaces the
    /// copy.
    pub async fn refresh(&self, store: &Store) -> Result<Arc<Company>> {
        let _one = self.refreshing.lock().await;
        let old = self.get();
        let row = store.company_row().await?;
        let mut p = self.config.clone();
        let mut logo = None;
        let stored = row.is_some();
        if let Some(r) = row {
            let f = r.fields;
            p.name = f.name;
            p.legal_name = f.legal_name;
            p.email = f.email;
            p.phone = f.phone;
            p.website = f.website;
            if r.logo_type.is_some() {
                logo = match &old.logo {
                    Some(l) if l.version == r.logo_version => Some(l.clone()),
                    _ => store
                        .company_logo()
                        .await?
                        .map(|(content_type, bytes, version)| Logo {
                            content_type,
                            bytes: bytes.into(),
                            version,
                        }),
                };
            }
        }
        if let Some(l) = &logo {
            let path = format!("/partner/logo?v={}", l.version);
            let mut u = self.base.clone();
            if let Ok(mut segs) = u.path_segments_mut() {
                segs.pop_if_empty().extend(["partner", "logo"]);
            }
            u.set_query(Some(&format!("v={}", l.version)));
            p.logo_path = Some(path);
            p.logo_url = Some(u.to_string());
        }
        Ok(self.set(Company {
            partner: Arc::new(p),
            logo,
            stored,
        }))
    }
}
