//! Prometheus metrics: request counts and latencies by route and status. Routes are the matched
//! templates (`/v1/customers/{id}`), never the concrete URL, so no id or value becomes a label.
//!
//! This sits on every request, so labels are `&'static str` (no allocation per request): route
//! templates and purpose keys are interned — both come from small sets fixed by the code and the
//! purpose registry, never from the request.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: a bucketed histogram costs O(1) memory, unlike a summary.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 1.0,
];

/// The process-wide recorder (metrics has one global recorder). The first call also starts the
/// upkeep thread that drains recorded samples into the histograms, so memory stays bounded
/// whether or not anybody scrapes `/metrics`.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(&LATENCY_BUCKETS) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then our handle just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

/// A `&'static str` for a string from a small, code-bounded set.
pub fn intern(s: &str) -> &'static str {
    static SET: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let set = SET.get_or_init(Default::default);
    if let Some(found) = set.read().ok().and_then(|g| g.get(s).copied()) {
        return found;
    }
    let Ok(mut w) = set.write() else {
        return "unknown";
    };
    if let Some(found) = w.get(s).copied() {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    w.insert(leaked);
    leaked
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_label(code: u16) -> &'static str {
    match code {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        c if c < 300 => "2xx",
        c if c < 500 => "4xx",
        _ => "5xx",
    }
}

/// Middleware recording one count and one latency sample per request.
pub async fn track(req: Request, next: Next) -> Response {
    let _ = handle();
    let start = Instant::now();
    // Only matched templates are interned; anything else is one label, so a client cannot grow
    // the set.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| intern(m.as_str()))
        .unwrap_or("unmatched");
    let method = method_label(req.method());
    let res = next.run(req).await;
    // Anonymous survey answers are neither counted nor logged: a counter scraped often enough,
    // or a log line's time, would link an answer to the token's recorded issue.
    if route == ANONYMOUS_ROUTE {
        return res;
    }
    let status = status_label(res.status().as_u16());
    metrics::counter!("steward_http_requests_total", "method" => method, "route" => route, "status" => status).increment(1);
    metrics::histogram!("steward_http_request_duration_seconds", "method" => method, "route" => route).record(start.elapsed().as_secs_f64());
    // An access log line with the route template, never the URL (ids and query stay out).
    tracing::debug!(
        method,
        route,
        status,
        micros = start.elapsed().as_micros() as u64,
        "request"
    );
    res
}

/// The route whose requests leave no log line.
const ANONYMOUS_ROUTE: &str = "/v1/surveys/{id}/responses";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_one_copy() {
        let a = intern(&String::from("/v1/x"));
        let b = intern("/v1/x");
        assert!(std::ptr::eq(a, b));
        assert_eq!(status_label(418), "4xx");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
