//! `/portal`: the overview, the first page after signing in.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::app::AppState;
use crate::core::domain::Role;
use crate::web::pages::page;

use super::{SignedIn, view};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/portal", get(overview))
}

async fn overview(State(rt): State<Arc<AppState>>, s: SignedIn) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let (nav, set) = s.nav(&rt, "overview");
    page(
        &rt,
        StatusCode::OK,
        view::overview_page(s.locale, &nav, &s.session.user.name),
        set,
    )
}
