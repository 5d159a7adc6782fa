//! `/portal/workflows` (administrators): every workflow drawn from the definition the engine
//! runs, with its instances per state (`Engine::state_counts`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::app::AppState;
use crate::core::diagram;
use crate::core::domain::Role;
use crate::web::pages::page;

use super::view::workflows::{WorkflowView, workflows_page};
use super::{SignedIn, unavailable};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/portal/workflows", get(show))
}

async fn show(State(rt): State<Arc<AppState>>, s: SignedIn) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let mut shown = Vec::with_capacity(rt.engine.defs.len());
    for d in rt.engine.defs.values() {
        let counts = match rt.engine.state_counts(&d.name).await {
            Ok(c) => c,
            Err(e) => return unavailable(&rt, s.locale, &e),
        };
        shown.push(WorkflowView {
            name: d.name.clone(),
            description: d.description.clone(),
            diagram: diagram::layout(d),
            counts,
        });
    }
    let (nav, set) = s.nav(&rt, "workflows");
    page(
        &rt,
        StatusCode::OK,
        workflows_page(s.locale, &nav, &shown),
        set,
    )
}
