//! The application's state and its one builder, for production and tests: settings →
//! templates → workflows → catalog → keys → store → engine → [`AppState`]. Everything that can
//! be wrong with the configuration is found here, at start. Features (`offers`, `campaigns`),
//! `jobs`, `web` and `cli` take an `&AppState`; this module imports none of them.
//!
//! - [`ops`] — what operators see: the Prometheus recorder and scrape, readiness.

pub mod ops;

use std::sync::Arc;

use crate::core::clock::{Clock, SystemClock};
use crate::core::config::Settings;
use crate::core::schedule::ScheduleDef;
use crate::core::workflow::{self, Definition};
use crate::email::{Templates, Transport};
use crate::engine::Engine;
use crate::store::Store;

/// Everything a request, a job or a command needs: made once by [`build`], shared as
/// `Arc<AppState>` by the web handlers, the workers and the CLI.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub store: Store,
    pub templates: Arc<Templates>,
    pub transport: Transport,
    pub settings: Settings,
    pub schedules: Vec<ScheduleDef>,
    pub clock: Arc<dyn Clock>,
    /// Unique per process start: lease owner and log field.
    pub node: String,
    /// The machine it runs on (in `node`, and in its heartbeat).
    pub host: String,
    /// The product catalog (config/catalog.toml), checked at start.
    pub catalog: Arc<crate::core::catalog::Catalog>,
    /// Keys that sign and verify advisor codes and page links.
    pub keys: Arc<crate::core::links::KeyRing>,
    /// The process-wide Prometheus recorder's handle (see [`ops`]).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// When this node started, and when its workers last claimed a job (ms since the epoch,
    /// 0: never): what its heartbeat reports (`jobs::run_workers`).
    pub started: crate::core::domain::Timestamp,
    pub last_claim: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("node", &self.node)
            .finish()
    }
}

/// This machine's host name (`local` when it has none).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "local".into())
}

/// A node's name, unique per process start: `role-HOST-PID-random`.
pub fn node_name(role: &str, host: &str) -> String {
    format!(
        "{role}-{host}-{}-{}",
        std::process::id(),
        crate::core::domain::random_base32(6).to_ascii_lowercase()
    )
}

impl AppState {
    /// The one way an email leaves (see [`crate::email::Mailer::deliver`]).
    pub fn mailer(&self) -> crate::email::Mailer<'_> {
        crate::email::Mailer {
            templates: &self.templates,
            transport: &self.transport,
            partner: self.company().partner.clone(),
            from: &self.settings.email.from_address,
        }
    }

    /// The partner's identity as shown to customers (`[partner]` with the portal's company
    /// page over it): this node's copy, no database read (see `store::CompanyCell`).
    pub fn company(&self) -> Arc<crate::store::Company> {
        self.engine.company.get()
    }

    /// A link to one of our pages: `app.public_base_url` and the path `segments` (each
    /// percent-encoded as one segment).
    pub fn public_link(&self, segments: &[&str]) -> String {
        let mut u = self.settings.app.public_base_url.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().extend(segments);
        }
        u.to_string()
    }

    /// Spends one hit of a shared rate limit, `limit` per `window` under `key` (counted in the
    /// database, so it holds across every node; the window's arithmetic is
    /// `core::rate::FixedWindow`). False when the limit is spent.
    pub async fn rate_hit(
        &self,
        key: &str,
        window: crate::core::domain::Span,
        limit: u32,
    ) -> Result<bool, crate::store::StoreError> {
        let taken = self
            .store
            .rate_hit(key, window, limit, self.clock.now())
            .await?;
        if !taken {
            let limiter = crate::core::metric_names::limiter(key);
            metrics::counter!(crate::core::metric_names::RATE_LIMITED, "limiter" => limiter)
                .increment(1);
        }
        Ok(taken)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::core::config::ConfigError),
    #[error("email templates:\n{0}")]
    Templates(String),
    #[error("workflows:\n{0}")]
    Workflows(String),
    #[error("{0}")]
    Schedules(String),
    #[error("catalog:\n{0}")]
    Catalog(String),
    #[error("link keys: {0}")]
    Keys(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Loads and checks templates and workflows (what `partnerflow check` runs).
pub fn load_definitions(
    settings: &Settings,
) -> Result<
    (
        Arc<Templates>,
        std::collections::BTreeMap<String, Definition>,
    ),
    StartError,
> {
    let templates = Templates::load(&settings.app.templates_dir)
        .map_err(|e| StartError::Templates(e.to_string()))?;
    let overrides = settings
        .workflows
        .iter()
        .map(|(k, v)| (k.clone(), v.durations.clone()))
        .collect();
    let defs = workflow::compile_dir(&settings.app.workflows_dir, &overrides, &templates).map_err(
        |errs| {
            StartError::Workflows(
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        },
    )?;
    Ok((Arc::new(templates), defs))
}

/// Builds the whole runtime. `clock` is injected (tests pass a manual one).
pub async fn build(
    settings: Settings,
    clock: Option<Arc<dyn Clock>>,
    role: &str,
) -> Result<Arc<AppState>, StartError> {
    let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(SystemClock));
    // An installation from before private modes: its data folder is made private too.
    if settings.app.data_dir.is_dir()
        && let Err(e) = crate::core::files::private_dir(&settings.app.data_dir)
    {
        tracing::warn!(error = %e, dir = %settings.app.data_dir.display(), "cannot make the data folder private (0700)");
    }
    let (templates, defs) = load_definitions(&settings)?;
    let schedules =
        crate::core::schedule::from_settings(&settings).map_err(StartError::Schedules)?;
    let transport = Transport::from_settings(&settings.email)
        .map_err(|e| StartError::Templates(e.to_string()))?;
    let catalog =
        crate::core::catalog::Catalog::load(&settings.app.catalog).map_err(StartError::Catalog)?;
    let (keys, warning) =
        crate::core::links::KeyRing::load(&settings.links, &settings.app.data_dir)
            .map_err(StartError::Keys)?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let store = Store::connect(&settings.database).await?;
    let engine = Arc::new(Engine::new(defs, store.clone(), clock.clone(), &settings));
    engine.company.refresh(&store).await?;
    let started = clock.now();
    let host = host_name();
    let rt = Arc::new(AppState {
        engine,
        store,
        templates,
        transport,
        settings,
        schedules,
        clock,
        node: node_name(role, &host),
        host,
        catalog: Arc::new(catalog),
        keys: Arc::new(keys),
        metrics: ops::install(),
        started,
        last_claim: std::sync::atomic::AtomicI64::new(0),
    });
    keep_company_fresh(&rt);
    Ok(rt)
}

/// Every node re-reads the partner's identity every `store::COMPANY_REFRESH` (30 s), so an
/// edit made on another node shows here within that time; ends with the state.
fn keep_company_fresh(rt: &Arc<AppState>) {
    let weak = Arc::downgrade(rt);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::store::COMPANY_REFRESH).await;
            let Some(rt) = weak.upgrade() else { break };
            if let Err(e) = rt.engine.company.refresh(&rt.store).await {
                tracing::warn!(error = %e, "the partner's identity could not be re-read; keeping the last one");
            }
        }
    });
}
