//! Liveness, readiness and metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{status: ok}`")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The server can answer: a policy is loaded and the database responds.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => {
            let version = state.engine.load().version.as_ref().map(|v| v.id);
            Json(json!({"status": "ready", "policy_version": version})).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "readyz.store_unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "storage unreachable"})),
            )
                .into_response()
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics() -> Response {
    let body = crate::metrics::render();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
