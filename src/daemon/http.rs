//! `/healthz` (the process answers), `/readyz` (start-up done, store working, workers making
//! progress, every source polled recently — 503 with the failing checks otherwise) and
//! `/metrics` (Prometheus text format), on loopback unless configured otherwise.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::stages::health::Health;
use crate::store::Store;

#[derive(Clone)]
pub struct HttpState {
    pub health: Arc<Health>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub stall_limit: Duration,
    pub metrics: PrometheusHandle,
}

/// The process's Prometheus recorder, installed on first use. A process has one metrics
/// recorder; a second daemon in the same process (tests) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a library user's): then our
            // metrics go to theirs and /metrics shows none.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<HttpState>) -> Response {
    let store_ok = s.store.check().map_err(|e| e.to_string());
    let r = s.health.readiness(s.clock.now(), s.stall_limit, store_ok);
    let status = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(r)).into_response()
}

async fn metrics(State(s): State<HttpState>) -> Response {
    s.metrics.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render()).into_response()
}

pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves until `stop` is cancelled.
pub async fn serve(listener: tokio::net::TcpListener, state: HttpState, stop: CancellationToken) {
    let app = router(state);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await {
        tracing::error!("the HTTP listener failed: {e}");
    }
}
