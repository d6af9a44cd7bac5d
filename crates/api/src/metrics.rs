//! Prometheus metrics: request counts and latencies by route and status. Routes are the matched
//! templates (`/v1/customers/{id}`), never the concrete URL, so no id or value becomes a label.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder (metrics has one global recorder).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then our handle just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Middleware recording one count and one latency sample per request.
pub async fn track(req: Request, next: Next) -> Response {
    let _ = handle();
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("steward_http_requests_total", &labels).increment(1);
    metrics::histogram!("steward_http_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    res
}
