//! `/v1/response/actions`: the automated responses over the admin API, authorized on
//! `maos:response` (`read` to list, `write` to act and undo).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use maos_core::event::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ActionKind, ActionRequest, Origin, OutcomeStatus, Target, parse_duration_value};
use crate::audited::request_id;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::state::AppState;

/// The admin API's resource for responses (`maos:response`).
const RESPONSE: &str = "response";

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// Filters of `GET /v1/response/actions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `active`, `expired`, `undone`, `dry_run` or `failed`.
    pub state: Option<String>,
    /// Actions created before this time (milliseconds since the epoch; the `next` of the
    /// previous page).
    pub before: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// A manual action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    /// `block_ip`, `disable_user`, `quarantine_resource`, `rotate_credentials`,
    /// `increase_monitoring`.
    pub action: String,
    pub target: String,
    /// `15m`, `2h`, or seconds; `[response] default_duration` when absent.
    #[serde(default)]
    pub duration: Option<Value>,
    #[serde(default)]
    pub dry_run: bool,
}

/// Active and past actions, newest first.
#[utoipa::path(get, path = "/v1/response/actions", tag = "response",
    params(("state" = Option<String>, Query, description = "only actions in this state"),
        ("before" = Option<i64>, Query, description = "created before (ms since the epoch)"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, description = "`{actions: [record], next}`")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    state.authorize_caller(&credentials(&headers), RESPONSE, "read")?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let records = state.responder.list(limit, query.before).await?;
    let next = (i64::try_from(records.len()).unwrap_or(i64::MAX) == limit)
        .then(|| records.last().map(|r| r.created_at))
        .flatten();
    let records: Vec<_> = records
        .into_iter()
        .filter(|r| query.state.as_deref().is_none_or(|s| r.state.as_str() == s))
        .collect();
    Ok(Json(json!({ "actions": records, "next": next })))
}

/// One action.
#[utoipa::path(get, path = "/v1/response/actions/{id}", tag = "response",
    params(("id" = String, Path, description = "the action's id")),
    responses((status = 200, description = "the record"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state.authorize_caller(&credentials(&headers), RESPONSE, "read")?;
    let record = state.responder.get(&id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "response action `{}` not found",
            super::quoted(&id)
        ))
    })?;
    Ok(Json(json!(record)))
}

/// Take an action by hand (or rehearse it with `dry_run`).
#[utoipa::path(post, path = "/v1/response/actions", tag = "response",
    request_body(content = String, description = "`{action, target, duration?, dry_run?}`", content_type = "application/json"),
    responses((status = 201, description = "taken: `{status, action, record, credentials?}`"),
        (status = 200, description = "already in force, or a dry run"),
        (status = 400, body = crate::openapi::ErrorDoc), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(body): ApiJson<NewAction>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let started = Timestamp::now();
    let caller = state.authorize_caller(&credentials(&headers), RESPONSE, "write")?;
    let action = super::ActionKind::parse(&body.action).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_action",
            format!(
                "`{}` is not one of block_ip, disable_user, quarantine_resource, \
                 rotate_credentials, increase_monitoring",
                super::quoted(&body.action)
            ),
        )
    })?;
    let target = Target::parse(action, &body.target)?;
    let duration = match &body.duration {
        None | Some(Value::Null) => state.responder.config().default_duration.0,
        Some(value) => parse_duration_value(value)?,
    };
    let request = ActionRequest {
        action,
        target,
        duration,
        dry_run: body.dry_run,
        origin: Origin {
            caller: Some(caller.subject.qualified()),
            request_id: request_id(&headers),
            ..Origin::default()
        },
        started,
        issue_credentials: action == ActionKind::RotateCredentials,
    };
    let outcome = state.responder.execute(request).await?;
    let status = match outcome.status {
        OutcomeStatus::Applied => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let mut body = json!(outcome);
    if !outcome.credentials.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        let keys: Vec<Value> = outcome
            .credentials
            .iter()
            .map(|(id, key)| json!({"id": id, "key": key.expose()}))
            .collect();
        map.insert("credentials".into(), Value::Array(keys));
    }
    Ok((status, Json(body)))
}

/// Undo an active action now.
#[utoipa::path(delete, path = "/v1/response/actions/{id}", tag = "response",
    params(("id" = String, Path, description = "the action's id")),
    responses((status = 200, description = "the ended record"), (status = 404, body = crate::openapi::ErrorDoc),
        (status = 409, description = "the action is not active", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn undo(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), RESPONSE, "write")?;
    let record = state
        .responder
        .undo(&id, &caller.subject.qualified(), request_id(&headers))
        .await?;
    Ok(Json(json!(record)))
}
