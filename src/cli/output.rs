//! What every command group shares: the CLI's error type and how results are printed.

use std::path::PathBuf;

use serde_json::Value;

use crate::app;

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

/// A value from a JSON view as text: strings bare, `-` for none.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// An instance's history rows (`seq`, `at`, `event`, `from`, `to`, `actor`), a line each;
/// `widths` of the event, from and to columns.
pub(crate) fn print_history(rows: &Value, widths: (usize, usize, usize)) {
    let (we, wf, wt) = widths;
    println!("history:");
    for h in rows.as_array().into_iter().flatten() {
        println!(
            "  #{:<3} {}  {:<we$} {:>wf$} → {:<wt$} by {}",
            h["seq"],
            time_text(&h["at"]),
            value_text(&h["event"]),
            h["from"].as_str().unwrap_or("·"),
            value_text(&h["to"]),
            value_text(&h["actor"])
        );
    }
}

/// A time from a JSON view (RFC 3339, or milliseconds) as the CLI prints times; `-` if none.
pub(crate) fn time_text(v: &Value) -> String {
    use crate::core::domain::Timestamp;
    match v {
        Value::String(s) => Timestamp::parse_rfc3339(s)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| s.clone()),
        v => v
            .as_i64()
            .map(|x| Timestamp(x).to_string())
            .unwrap_or_else(|| "-".into()),
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
