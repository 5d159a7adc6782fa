//! What the engine returns about a workflow instance: its history, its email ledger, its
//! timers and the detail the API and `partnerflow instances show` render. Pure data, built
//! by the store from rows.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::domain::{InstanceId, Timestamp};

/// One transition of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = HistoryEntry)]
pub struct HistoryRow {
    pub seq: i64,
    #[schema(example = "send")]
    pub event: String,
    /// None: the instance's creation.
    pub from: Option<String>,
    pub to: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
}

/// One email of an instance, as the ledger has it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = EmailLedgerEntry)]
pub struct EmailRow {
    pub message_id: String,
    pub template: String,
    pub locale: String,
    pub role: String,
    pub recipient: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub reply: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<Timestamp>,
}

/// The result of a successful transition (`Engine::fire`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transitioned {
    #[schema(value_type = String)]
    pub instance: InstanceId,
    pub from: String,
    pub to: String,
    /// The instance's version after the transition.
    pub version: i64,
}

/// A pending or past timer of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimerView {
    pub name: Option<String>,
    pub event: Option<String>,
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub run_at: Timestamp,
}

/// A workflow instance with its history, emails and timers (`Engine::detail`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceDetail {
    #[schema(value_type = String)]
    pub id: InstanceId,
    pub workflow: String,
    pub state: String,
    pub version: i64,
    pub locale: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub final_at: Option<Timestamp>,
    pub history: Vec<HistoryRow>,
    pub emails: Vec<EmailRow>,
    pub timers: Vec<TimerView>,
}
