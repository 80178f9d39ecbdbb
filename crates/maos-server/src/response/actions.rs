//! The effect of each action, and its undoing, over the parts of MAOS that enforce it.

use std::time::{Duration, SystemTime};

use maos_identity::apikey::ApiKeyRecord;
use maos_identity::{Principal, PrincipalId, PrincipalStatus, SecretString};
use serde_json::{Map, Value, json};

use super::{ActionKind, ActionRecord, ActionRequest, ActionState, Responder, Target, now_millis};
use crate::error::ApiError;
use crate::routes::identity::{api_key_row, revoke_refresh_of, save_principal};
use crate::state::AppState;

fn identity_error(error: crate::identity::IdentityError) -> ApiError {
    match error {
        crate::identity::IdentityError::Store(error) => ApiError::from(error),
        other => ApiError::internal("identity", other),
    }
}

fn unix_seconds_now() -> i64 {
    now_millis().div_euclid(1000)
}

/// The unix second at which a block of `duration` from now ends, rounded up so that a block
/// never lasts less than asked.
fn block_until(duration: Duration) -> i64 {
    let end = now_millis().saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
    end.saturating_add(999).div_euclid(1000)
}

fn principal_of(state: &AppState, id: &PrincipalId) -> Result<std::sync::Arc<Principal>, ApiError> {
    state
        .identity
        .principal(&id.to_string())
        .ok_or_else(|| ApiError::not_found(format!("principal `{id}` not found")))
}

/// The keys of the principal that still authenticate (or would, within a rotation's grace).
fn live_keys(state: &AppState, id: &PrincipalId) -> Vec<std::sync::Arc<ApiKeyRecord>> {
    let now = state.identity.now();
    state
        .identity
        .api_keys_of(id)
        .into_iter()
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now))
        .filter(|k| k.superseded.as_ref().is_none_or(|s| s.grace_until > now))
        .collect()
}

/// Checks the action can be taken and describes what it would do.
pub(super) async fn plan(
    state: &AppState,
    request: &ActionRequest,
    duration: Duration,
) -> Result<Map<String, Value>, ApiError> {
    let mut plan = Map::new();
    match (&request.action, &request.target) {
        (ActionKind::BlockIp, Target::Network(net)) => {
            plan.insert("network".into(), json!(net.to_string()));
            plan.insert("seconds".into(), json!(duration.as_secs_f64()));
            plan.insert("until".into(), json!(block_until(duration)));
            let existing = state
                .store
                .blocklist()
                .live(unix_seconds_now())
                .await?
                .into_iter()
                .find(|b| b.network == net.to_string());
            if let Some(existing) = existing {
                plan.insert("existing_until".into(), json!(existing.until));
            }
        }
        (ActionKind::DisableUser, Target::Principal(id)) => {
            if id.to_string() == state.config.admin.principal {
                return Err(ApiError::unprocessable(
                    "admin_lockout",
                    format!(
                        "`{id}` is the configured admin principal and is never disabled by a response"
                    ),
                ));
            }
            let principal = principal_of(state, id)?;
            plan.insert("principal".into(), json!(id.to_string()));
            plan.insert("was_active".into(), json!(principal.is_active()));
        }
        (ActionKind::QuarantineResource, Target::Resource { kind, id }) => {
            plan.insert("resource".into(), json!(format!("{kind}:{id}")));
        }
        (ActionKind::RotateCredentials, Target::Principal(id)) => {
            let principal = principal_of(state, id)?;
            let keys: Vec<String> = live_keys(state, id).iter().map(|k| k.id.clone()).collect();
            plan.insert("principal".into(), json!(id.to_string()));
            plan.insert("api_keys".into(), json!(keys));
            plan.insert(
                "replace".into(),
                json!(request.issue_credentials && principal.is_active()),
            );
        }
        (ActionKind::RotateCredentials, Target::Key(name)) => {
            let keys = state
                .keys
                .get()
                .ok_or_else(|| ApiError::internal("response", "the key service is not started"))?;
            keys.check_usable(name)?;
            let metadata = keys
                .ring()
                .metadata(name)
                .map_err(|_| ApiError::not_found(format!("key `{name}` not found")))?;
            plan.insert("key".into(), json!(name));
            plan.insert("version".into(), json!(metadata.latest_version));
        }
        (ActionKind::IncreaseMonitoring, _) => {
            plan.insert("level".into(), json!("elevated"));
        }
        (action, target) => {
            return Err(ApiError::bad_request(
                "invalid_target",
                format!(
                    "`{}` does not apply to `{}`",
                    action.as_str(),
                    target.canonical()
                ),
            ));
        }
    }
    Ok(plan)
}

/// Puts the action in force. Returns replacement API keys when a rotation issued them.
pub(super) async fn apply(
    responder: &Responder,
    state: &AppState,
    request: &ActionRequest,
    record: &mut ActionRecord,
) -> Result<Vec<(String, SecretString)>, ApiError> {
    let mut credentials = Vec::new();
    match &request.target {
        Target::Network(net) if request.action == ActionKind::BlockIp => {
            block(state, record, &net.to_string(), request).await?;
        }
        Target::Principal(id) if request.action == ActionKind::DisableUser => {
            let was_active = set_status(state, id, PrincipalStatus::Disabled).await?;
            // Access tokens and API keys are refused at once (authentication checks the
            // status); refresh tokens are revoked so that no new access token is minted.
            let families = revoke_refresh_of(state, id).await?;
            record.effect.insert("was_active".into(), json!(was_active));
            record
                .effect
                .insert("refresh_families_revoked".into(), json!(families));
            record.applied = true;
        }
        Target::Principal(id) if request.action == ActionKind::RotateCredentials => {
            credentials = rotate_principal(state, record, id, request.issue_credentials).await?;
            record.applied = true;
        }
        Target::Key(name) => {
            let keys = state
                .keys
                .get()
                .ok_or_else(|| ApiError::internal("response", "the key service is not started"))?;
            let metadata = keys.rotate(name).await?;
            record
                .effect
                .insert("version".into(), json!(metadata.latest_version));
            record.applied = true;
        }
        Target::Resource { .. } | Target::Network(_) | Target::Principal(_) => {
            // Quarantine and monitoring: in force once the registry sees the applied row.
            record.applied = true;
            let stored = state
                .store
                .response_actions()
                .update(&record.to_row()?, ActionState::Active.as_str())
                .await?;
            if !stored {
                return Err(ApiError::conflict("the action ended before it was applied"));
            }
            responder.reload(&state.store).await?;
        }
    }
    Ok(credentials)
}

/// Writes the block (keeping a longer one already there) and swaps in the new blocklist.
async fn block(
    state: &AppState,
    record: &mut ActionRecord,
    network: &str,
    request: &ActionRequest,
) -> Result<(), ApiError> {
    let duration = Duration::from_millis(
        u64::try_from(record.expires_at.saturating_sub(record.created_at)).unwrap_or_default(),
    );
    let until = block_until(duration);
    let blocklist = state.store.blocklist();
    let existing = blocklist
        .live(unix_seconds_now())
        .await?
        .into_iter()
        .find(|b| b.network == network);
    if let Some(existing) = &existing
        && existing.until >= until
    {
        record.effect.insert("installed".into(), json!(false));
        record.effect.insert("until".into(), json!(existing.until));
        record.applied = true;
        return Ok(());
    }
    let why = request
        .origin
        .rule_title
        .clone()
        .or_else(|| {
            request
                .origin
                .caller
                .as_ref()
                .map(|c| format!("asked by {c}"))
        })
        .unwrap_or_else(|| "automated response".into());
    let reason = format!("response {}: {why}", record.id);
    blocklist
        .put(network, until, &reason, &format!("response:{}", record.id))
        .await?;
    state.reload_blocklist().await?;
    record.effect.insert("installed".into(), json!(true));
    record.effect.insert("until".into(), json!(until));
    if let Some(previous) = existing {
        record.effect.insert(
            "previous".into(),
            json!({"until": previous.until, "reason": previous.reason, "created_by": previous.created_by}),
        );
    }
    record.applied = true;
    Ok(())
}

/// Sets the principal's status; answers whether it was active before.
async fn set_status(
    state: &AppState,
    id: &PrincipalId,
    status: PrincipalStatus,
) -> Result<bool, ApiError> {
    let current = principal_of(state, id)?;
    let was_active = current.is_active();
    if current.status == status {
        return Ok(was_active);
    }
    let mut principal = Principal::clone(&current);
    principal.status = status;
    save_principal(state, &principal).await?;
    Ok(was_active)
}

/// Replaces (for an API caller) or revokes every live API key of the principal, without a
/// grace period, and revokes its refresh tokens.
async fn rotate_principal(
    state: &AppState,
    record: &mut ActionRecord,
    id: &PrincipalId,
    replace: bool,
) -> Result<Vec<(String, SecretString)>, ApiError> {
    let principal = principal_of(state, id)?;
    let now: SystemTime = state.identity.now();
    let identities = state.identity.store().identities();
    let mut revoked = Vec::new();
    let mut issued = Vec::new();
    let mut credentials = Vec::new();
    for key in live_keys(state, id) {
        let mut old = ApiKeyRecord::clone(&key);
        if replace && principal.is_active() && old.superseded.is_none() {
            match old.rotate(&principal, Duration::ZERO, now) {
                Ok(new) => {
                    identities
                        .rotate_api_key(&api_key_row(id, &old)?, &api_key_row(id, &new.record)?)
                        .await?;
                    revoked.push(old.id.clone());
                    issued.push(new.record.id.clone());
                    credentials.push((new.record.id.clone(), new.key));
                    continue;
                }
                Err(error) => {
                    // A key whose scopes the principal no longer holds cannot be replaced.
                    tracing::info!(apikey = %old.id, %error, "response.rotation_revokes_only");
                    old = ApiKeyRecord::clone(&key);
                }
            }
        }
        old.revoke(now);
        identities.update_api_key(&api_key_row(id, &old)?).await?;
        revoked.push(old.id.clone());
    }
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)?;
    let families = revoke_refresh_of(state, id).await?;
    record
        .effect
        .insert("revoked_api_keys".into(), json!(revoked));
    record.effect.insert("new_api_keys".into(), json!(issued));
    record
        .effect
        .insert("refresh_families_revoked".into(), json!(families));
    Ok(credentials)
}

/// Undoes what [`apply`] did, where it can be undone.
pub(super) async fn undo(state: &AppState, record: &ActionRecord) -> Result<(), ApiError> {
    match (
        record.action,
        super::Target::parse(record.action, &record.target)?,
    ) {
        (ActionKind::BlockIp, Target::Network(net)) => {
            if record.effect.get("installed") != Some(&json!(true)) {
                return Ok(());
            }
            let network = net.to_string();
            let blocklist = state.store.blocklist();
            let now = unix_seconds_now();
            let current = blocklist
                .live(now)
                .await?
                .into_iter()
                .find(|b| b.network == network);
            // Lifted only if the entry is still this action's: a block written since (by an
            // administrator or another action) stays.
            let ours = format!("response:{}", record.id);
            if current.as_ref().is_some_and(|b| b.created_by == ours) {
                let previous = record.effect.get("previous").and_then(|p| {
                    Some((
                        p.get("until")?.as_i64()?,
                        p.get("reason")?.as_str()?.to_owned(),
                        p.get("created_by")?.as_str()?.to_owned(),
                    ))
                });
                match previous {
                    Some((until, reason, by)) if until > now => {
                        blocklist.put(&network, until, &reason, &by).await?;
                    }
                    _ => {
                        blocklist.remove(&network).await?;
                    }
                }
                state.reload_blocklist().await?;
            }
            Ok(())
        }
        (ActionKind::DisableUser, Target::Principal(id)) => {
            if record.effect.get("was_active") == Some(&json!(true)) {
                match set_status(state, &id, PrincipalStatus::Active).await {
                    // Deleted since: nothing to re-enable.
                    Err(error) if error.status == axum::http::StatusCode::NOT_FOUND => {}
                    other => {
                        other?;
                    }
                }
            }
            Ok(())
        }
        // Rotated credentials stay rotated: restoring a key thought compromised would undo
        // the protection, so ending the action only ends its deduplication window.
        (ActionKind::RotateCredentials, _) => Ok(()),
        // The registry is rebuilt from the active actions when one ends.
        (ActionKind::QuarantineResource | ActionKind::IncreaseMonitoring, _) => Ok(()),
        _ => Ok(()),
    }
}
