//! The secrets store over HTTP: `/v1/secrets/<path>` with versions, and the re-encryption job
//! at `/v1/secrets-rewrap`. Values are encrypted by the key service with the configured key and
//! associated data binding the path and version. Authorized against `maos:secrets/<path>`
//! (`read`, `write`, `delete`) and `maos:secrets` (`rewrap`, `read`); audited without values.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::routes::keys::{audited, service};
use crate::state::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// Longest secret path.
const MAX_PATH: usize = 512;

/// Checks a secret path: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none of them `.` or
/// `..`, at most 512 bytes in all.
pub fn check_path(path: &str) -> ApiResult<()> {
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if path.len() <= MAX_PATH && path.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_secret_path",
            format!(
                "invalid secret path `{}`: use `/`-separated segments of A-Z, a-z, 0-9, `.`, \
                 `_`, `-` (not `.` or `..`), at most {MAX_PATH} bytes",
                path.chars().take(200).collect::<String>()
            ),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecretBody {
    /// The secret value (UTF-8 text).
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    pub version: Option<i64>,
}

fn resource(path: &str) -> String {
    format!("maos:secrets/{path}")
}

/// Store a new version of a secret.
#[utoipa::path(put, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "secret path, `/`-separated")),
    request_body(content = String, description = "`{value}`", content_type = "application/json"),
    responses((status = 200, description = "`{path, version, created_at}`")), security(("bearer" = [])))]
pub async fn put_secret(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(path): ApiPath<String>,
    ApiJson(body): ApiJson<PutSecretBody>,
) -> ApiResult<Json<Value>> {
    check_path(&path)?;
    let caller =
        state.authorize_caller(&credentials(&headers), &format!("secrets/{path}"), "write")?;
    let keys = service(&state)?;
    let result = keys.put_secret(&path, body.value.as_bytes()).await;
    let secret = audited(
        &state,
        &caller,
        "secret.write",
        &resource(&path),
        result,
        |s| json!({"version": s.version, "key": s.key_name, "key_version": s.key_version}),
    )
    .await?;
    Ok(Json(json!({
        "path": secret.path,
        "version": secret.version,
        "created_at": secret.created_at,
    })))
}

/// Read the latest version of a secret, or `?version=`.
#[utoipa::path(get, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "secret path, `/`-separated"),
        ("version" = Option<i64>, Query, description = "a version; default the latest")),
    responses((status = 200, description = "`{path, version, value, versions, created_at, key_version}`"),
        (status = 404, description = "no such secret or version", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_secret(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(path): ApiPath<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> ApiResult<Json<Value>> {
    check_path(&path)?;
    let caller =
        state.authorize_caller(&credentials(&headers), &format!("secrets/{path}"), "read")?;
    let keys = service(&state)?;
    let result = keys.get_secret(&path, query.version).await;
    let (secret, plaintext) = audited(
        &state,
        &caller,
        "secret.read",
        &resource(&path),
        result,
        |(s, _)| json!({"version": s.version}),
    )
    .await?;
    let value = String::from_utf8(plaintext.expose().to_vec())
        .map_err(|_| ApiError::internal("stored secret", "value is not UTF-8"))?;
    let versions = state.store.secrets().versions(&path).await?;
    Ok(Json(json!({
        "path": secret.path,
        "version": secret.version,
        "value": value,
        "versions": versions,
        "created_at": secret.created_at,
        "key_version": secret.key_version,
    })))
}

/// Delete every version of a secret, or `?version=`.
#[utoipa::path(delete, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "secret path, `/`-separated"),
        ("version" = Option<i64>, Query, description = "one version; default all")),
    responses((status = 200, description = "`{deleted}`"),
        (status = 404, description = "no such secret or version", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn delete_secret(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(path): ApiPath<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> ApiResult<Json<Value>> {
    check_path(&path)?;
    let caller =
        state.authorize_caller(&credentials(&headers), &format!("secrets/{path}"), "delete")?;
    let result = match state.store.secrets().delete(&path, query.version).await {
        Ok(0) => Err(ApiError::not_found(format!("secret `{path}` not found"))),
        Ok(deleted) => Ok(deleted),
        Err(error) => Err(error.into()),
    };
    let deleted = audited(
        &state,
        &caller,
        "secret.delete",
        &resource(&path),
        result,
        |d| json!({"version": query.version, "deleted": d}),
    )
    .await?;
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressQuery {
    /// Include the result of every item.
    #[serde(default)]
    pub items: bool,
}

/// Start re-encrypting every secret to the latest version of the secrets key.
#[utoipa::path(post, path = "/v1/secrets-rewrap", tag = "secrets",
    responses((status = 202, description = "the job"),
        (status = 409, description = "a job is already running", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn start_rewrap(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = state.authorize_caller(&credentials(&headers), "secrets", "rewrap")?;
    let keys = service(&state)?;
    let result = keys.start_rewrap().await;
    let job = audited(&state, &caller, "secret.rewrap_start", "maos:secrets", result, |j| {
        json!({"job": j.id, "key": j.key_name, "target_version": j.target_version, "total": j.total})
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job }))))
}

/// The latest re-encryption job and its progress (`?items=true`: one result per item).
#[utoipa::path(get, path = "/v1/secrets-rewrap", tag = "secrets",
    params(("items" = Option<bool>, Query, description = "include per-item results")),
    responses((status = 200, description = "`{job, items?}`; `job` is null before the first")),
    security(("bearer" = [])))]
pub async fn rewrap_progress(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<ProgressQuery>,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), "secrets", "read")?;
    let job = state.store.secrets().latest_job().await?;
    let mut answer = json!({ "job": job });
    if let (true, Some(job), Some(object)) = (query.items, &job, answer.as_object_mut()) {
        let items = state.store.secrets().rewrap_results(job.id).await?;
        object.insert("items".into(), json!(items));
    }
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths() {
        for good in ["db", "app/db/password", "a.b_c-d/E9"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            ".",
            "a b",
            "a/%2e",
            &"x".repeat(513),
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
