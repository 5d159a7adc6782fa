//! Test helpers: one app builder for every test (like production's), on a fresh SQLite file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use partnerflow::clock::ManualClock;
use partnerflow::config::Settings;
use partnerflow::domain::{InstanceId, Locale, Timestamp};
use partnerflow::jobs::Runtime;
use serde_json::{Value, json};

pub struct TestApp {
    pub rt: Arc<Runtime>,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
}

pub fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Environment for a test installation in `dir`, plus `extra` overrides.
pub fn test_env(dir: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PARTNERFLOW__DATABASE__URL".into(),
            format!("sqlite://{}", dir.join("pf.db").display()),
        ),
        (
            "PARTNERFLOW__EMAIL__OUTBOX_DIR".into(),
            dir.join("outbox").display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__DATA_DIR".into(),
            dir.display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__WORKFLOWS_DIR".into(),
            manifest("workflows").display().to_string(),
        ),
        (
            "PARTNERFLOW__APP__TEMPLATES_DIR".into(),
            manifest("email-templates").display().to_string(),
        ),
        (
            "PARTNERFLOW__SCHEDULES__LOCATION_SYNC__ENABLED".into(),
            "false".into(),
        ),
        (
            "PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED".into(),
            "false".into(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

pub const START: &str = "2026-11-01T09:00:00Z";

pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(None, &test_env(dir.path(), extra)).unwrap();
    let clock = ManualClock::new(Timestamp::parse_rfc3339(START).unwrap());
    let rt = partnerflow::app::build(settings, Some(Arc::new(clock.clone())), "test")
        .await
        .unwrap();
    TestApp { rt, clock, dir }
}

pub fn trial_data(n: usize) -> serde_json::Map<String, Value> {
    json!({
        "offer_id": format!("PF-TEST{n:06}"),
        "customer_email": format!("kunde{n}@contoso.example"),
        "customer_name": format!("Contoso {n} AG"),
        "product_name": "Microsoft 365 Business Premium",
        "link": format!("https://partnerflow.example/o/PF-TEST{n:06}"),
    })
    .as_object()
    .cloned()
    .unwrap()
}

impl TestApp {
    pub async fn invite(&self, n: usize) -> InstanceId {
        let id = self
            .rt
            .engine
            .start("trial_invitation", &trial_data(n), Some(Locale::De), "test")
            .await
            .unwrap();
        self.rt.engine.fire(&id, "send", "test").await.unwrap();
        id
    }
    pub async fn state(&self, id: &InstanceId) -> String {
        self.rt.store.instance(id).await.unwrap().state
    }
    pub fn outbox(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("outbox"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}
