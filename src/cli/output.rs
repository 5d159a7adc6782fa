//! What every command group shares: the CLI's error type and how results are printed.

use std::path::PathBuf;

use serde_json::Value;

use crate::app;
use crate::core::instance::HistoryRow;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Start(#[from] app::StartError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Offer(#[from] crate::offers::OfferError),
    #[error(transparent)]
    Portal(#[from] crate::portal::PortalError),
    #[error("{0}")]
    Other(String),
}

/// An optional value as the CLI prints it: `-` for none.
pub(crate) fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// An instance's history rows, a line each; `widths` of the event, from and to columns.
pub(crate) fn print_history(rows: &[HistoryRow], widths: (usize, usize, usize)) {
    let (we, wf, wt) = widths;
    println!("history:");
    for h in rows {
        println!(
            "  #{} {}  {:<we$} {:>wf$} → {:<wt$} by {}",
            h.seq,
            h.at,
            h.event,
            h.from.as_deref().unwrap_or("·"),
            h.to,
            h.actor
        );
    }
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) fn read_json_file(path: &PathBuf) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::Other(format!(
            "{}:{}:{}: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}
