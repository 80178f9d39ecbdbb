//! `/v1/blocklist`: the gateway's dynamic blocklist over the admin API, authorized on
//! `maos:blocklist` (`read`, `write`). Every change is audited before it answers and reaches
//! every gateway listener (and, on PostgreSQL, every node) through the store's change
//! notifications.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ipnet::IpNet;
use maos_audit::{ActionName, Actor, Outcome, RecordDraft, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::now_seconds;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::state::AppState;

const BLOCKLIST: &str = "blocklist";

/// The longest block the API accepts: one year.
const MAX_SECONDS: u64 = 366 * 86_400;

/// A block to add.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    /// An address or network (`192.0.2.7`, `2001:db8::/64`).
    pub network: String,
    /// How long the block lasts.
    pub seconds: u64,
    #[serde(default)]
    pub reason: String,
}

/// The network in canonical form (`::ffff:192.0.2.0/120` is `192.0.2.0/24`, host bits
/// cleared), so that one network has one entry.
fn parse_network(text: &str) -> Result<IpNet, ApiError> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_network",
                format!(
                    "`{}` is not an IP address or network",
                    text.chars().take(64).collect::<String>()
                ),
            )
        })?;
    Ok(maos_gateway::firewall::canonical_net(net))
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    network: &IpNet,
    details: Value,
) -> Result<(), ApiError> {
    let actor = Actor::principal(&caller.subject.kind, &caller.subject.id).unwrap_or(Actor::System);
    let action = ActionName::parse(action).map_err(|e| ApiError::internal("audit action", e))?;
    let mut draft = RecordDraft::new(
        Timestamp::now(),
        actor,
        action,
        format!("blocklist:{network}"),
        Outcome::Success,
    );
    if let Value::Object(map) = details {
        draft.details = map;
    }
    state.audit(draft).await
}

/// The blocks in force.
#[utoipa::path(get, path = "/v1/blocklist", tag = "gateway",
    responses((status = 200, description = "`{blocks: [{network, until, reason, created_by, created_at}]}`")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> Result<Json<Value>, ApiError> {
    state.authorize_caller(&credentials(&headers), BLOCKLIST, "read")?;
    let now = i64::try_from(now_seconds()).unwrap_or(i64::MAX);
    let blocks = state.store.blocklist().live(now).await?;
    Ok(Json(json!({ "blocks": blocks })))
}

/// Block a network for `seconds` (replacing an entry for the same network).
#[utoipa::path(post, path = "/v1/blocklist", tag = "gateway",
    request_body(content = String, description = "`{network, seconds, reason?}`", content_type = "application/json"),
    responses((status = 201, description = "the entry"), (status = 400, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(block): ApiJson<NewBlock>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), BLOCKLIST, "write")?;
    let network = parse_network(&block.network)?;
    if block.seconds == 0 || block.seconds > MAX_SECONDS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`seconds` must be between 1 and {MAX_SECONDS}"),
        ));
    }
    if block.reason.len() > 1024 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`reason` is longer than 1024 bytes",
        ));
    }
    let until = now_seconds().saturating_add(block.seconds);
    let until = i64::try_from(until).unwrap_or(i64::MAX);
    audit(
        &state,
        &caller,
        "gateway.blocklist.add",
        &network,
        json!({"until": until, "reason": block.reason}),
    )
    .await?;
    let record = state
        .store
        .blocklist()
        .put(
            &network.to_string(),
            until,
            &block.reason,
            &caller.subject.qualified(),
        )
        .await?;
    state.reload_blocklist().await?;
    Ok((StatusCode::CREATED, Json(json!(record))))
}

/// Lift the block of a network (`/v1/blocklist/192.0.2.0/24`).
#[utoipa::path(delete, path = "/v1/blocklist/{network}", tag = "gateway",
    params(("network" = String, Path, description = "the network as listed, `a.b.c.d/len`")),
    responses((status = 204), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(network): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), BLOCKLIST, "write")?;
    let network = parse_network(&network)?;
    audit(
        &state,
        &caller,
        "gateway.blocklist.remove",
        &network,
        json!({}),
    )
    .await?;
    if !state.store.blocklist().remove(&network.to_string()).await? {
        return Err(ApiError::not_found(format!("`{network}` is not blocked")));
    }
    state.reload_blocklist().await?;
    Ok(StatusCode::NO_CONTENT)
}
