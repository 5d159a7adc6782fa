//! The process: serves the web router and (unless told not to) runs the workers, the schedule
//! ticker and the campaign sender, until `shutdown` resolves; then stops accepting, lets
//! requests and jobs in flight finish, and returns. One function for `partnerflow serve` and
//! for tests. With a metrics listener (`http.metrics_bind`), it serves `web::metrics_router`
//! there too; `partnerflow worker` serves that alone ([`serve_metrics`]).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::app::AppState;

/// What [`serve`] runs beside the web router.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Run the job workers, schedules and campaign sender in this process too
    /// (`serve --no-workers` leaves them to `worker` processes).
    pub workers: bool,
    /// Serve `/metrics` without a token (and `/readyz`, `/healthz`) on this listener too: the
    /// one [`bind_metrics`] made of `http.metrics_bind`.
    pub metrics: Option<TcpListener>,
}

/// The listener of `http.metrics_bind`, None when it is empty (not served separately).
pub async fn bind_metrics(
    settings: &crate::core::config::Settings,
) -> std::io::Result<Option<TcpListener>> {
    match settings.http.metrics_bind {
        Some(addr) => TcpListener::bind(addr).await.map(Some),
        None => Ok(None),
    }
}

/// Serves `web::metrics_router` on `listener` until `shutdown`.
pub async fn serve_metrics(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    crate::web::serve(
        listener,
        crate::web::metrics_router(state.clone()),
        state.settings.http.header_read_timeout.as_std(),
        shutdown,
    )
    .await
}

/// Serves `state`'s router on `listener` (and its workers, per `opts`) until `shutdown`.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let workers = opts.workers.then(|| {
        tokio::spawn(crate::jobs::run_workers(
            state.clone(),
            stopped(stop_rx.clone()),
        ))
    });
    let metrics = opts
        .metrics
        .map(|l| tokio::spawn(serve_metrics(state.clone(), l, stopped(stop_rx.clone()))));
    let server = tokio::spawn(crate::web::serve(
        listener,
        crate::web::router(state.clone()),
        state.settings.http.header_read_timeout.as_std(),
        stopped(stop_rx),
    ));
    shutdown.await;
    tracing::info!("shutting down: finishing requests and jobs in flight");
    let _ = stop_tx.send(true);
    let _ = server.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    if let Some(w) = workers {
        match w.await {
            Ok(Err(e)) => tracing::error!(error = %e, "workers stopped with an error"),
            Err(e) => tracing::error!(error = %e, "workers panicked"),
            Ok(Ok(())) => {}
        }
    }
}
