//! The portal's offers section (to be built).

use std::sync::Arc;

use axum::Router;

use crate::app::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
