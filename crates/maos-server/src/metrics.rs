//! Prometheus metrics: one process-wide recorder (several servers in one test process share
//! it), request counts and latency histograms per route, decisions by result.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds, fine below a millisecond where decisions live.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

/// Installs the recorder once; later calls reuse it.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("maos_http_request_duration_seconds".into()),
                    BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("maos_response_enforcement_seconds".into()),
                    BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    metrics::describe_counter!(
                        "maos_http_requests_total",
                        "HTTP requests by route, method and status"
                    );
                    metrics::describe_histogram!(
                        "maos_http_request_duration_seconds",
                        metrics::Unit::Seconds,
                        "HTTP request latency by route"
                    );
                    metrics::describe_histogram!(
                        "maos_response_enforcement_seconds",
                        metrics::Unit::Seconds,
                        "time from the detection of a threat to the enforcement of a response action, by action"
                    );
                    metrics::describe_counter!(
                        "maos_response_actions_total",
                        "response actions taken or rehearsed, by action and status"
                    );
                    metrics::describe_counter!(
                        "maos_decisions_total",
                        "authorization decisions by result"
                    );
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics.recorder_not_installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Drains histogram samples into buckets; run periodically.
pub fn upkeep() {
    if let Some(handle) = install() {
        handle.run_upkeep();
    }
}

pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Counts and times every routed request.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("maos_http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "maos_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    response
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
