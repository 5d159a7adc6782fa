//! One builder for production and tests: settings → templates → workflows → store → engine
//! → runtime. Everything that can be wrong with the configuration is found here, at start.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::email::{Templates, Transport};
use crate::engine::Engine;
use crate::jobs::Runtime;
use crate::store::Store;
use crate::workflow::{self, Definition};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
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
) -> Result<Arc<Runtime>, StartError> {
    let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(SystemClock));
    // An installation from before private modes: its data folder is made private too.
    if settings.app.data_dir.is_dir()
        && let Err(e) = crate::files::private_dir(&settings.app.data_dir)
    {
        tracing::warn!(error = %e, dir = %settings.app.data_dir.display(), "cannot make the data folder private (0700)");
    }
    let (templates, defs) = load_definitions(&settings)?;
    let schedules = crate::schedule::from_settings(&settings).map_err(StartError::Schedules)?;
    let transport = Transport::from_settings(&settings.email)
        .map_err(|e| StartError::Templates(e.to_string()))?;
    let catalog =
        crate::catalog::Catalog::load(&settings.app.catalog).map_err(StartError::Catalog)?;
    let (keys, warning) = crate::links::KeyRing::load(&settings.links, &settings.app.data_dir)
        .map_err(StartError::Keys)?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let store = Store::connect(&settings.database).await?;
    let engine = Arc::new(Engine::new(defs, store.clone(), clock.clone(), &settings));
    Ok(Arc::new(Runtime {
        engine,
        store,
        templates,
        transport,
        settings,
        schedules,
        clock,
        node: crate::jobs::node_name(role),
        catalog: Arc::new(catalog),
        keys: Arc::new(keys),
    }))
}
