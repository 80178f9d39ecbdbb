//! The identity provider's HTTP API: principals, login, MFA, API keys, OAuth tokens, JWKS.
//!
//! Every administrative route is authorized by the engine against `maos:principals`,
//! `maos:principals/<id>` and so on; a principal manages its own MFA and API keys through
//! `maos:self/mfa` and `maos:self/apikeys`, which the default bundle grants to everybody.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maos_audit::{ActionName, Actor, Outcome, RecordDraft};
use maos_core::event::{SecurityEventType, Severity};
use maos_identity::apikey::{ApiKeyRecord, ParsedApiKey, create_api_key};
use maos_identity::password::normalize_user_name;
use maos_identity::token::{AccessGrant, RefreshError};
use maos_identity::totp::{
    RECOVERY_CODE_COUNT, TotpConfig, TotpError, TotpSecret, enroll, generate_recovery_codes,
    redeem_recovery_code, verify_totp,
};
use maos_identity::{Principal, PrincipalAttributes, PrincipalId, PrincipalStatus, SecretString};
use maos_store::{ApiKeyRow, StoreError, TotpRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{AuthOutcome, Caller};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::{
    ACCESS_TOKEN_TTL, CutoffScope, parse_scope, principal_columns, security_event, totp_context,
};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::state::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// How long a rotated API key keeps working unless the request says otherwise.
const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(3600);
/// The issuer named in TOTP enrolment URIs.
const TOTP_ISSUER: &str = "MAOS";

// Helpers.

fn parse_id(id: &str) -> ApiResult<PrincipalId> {
    id.parse()
        .map_err(|e| ApiError::bad_request("invalid_principal", format!("{e}")))
}

fn principal_json(principal: &Principal) -> Value {
    json!({
        "id": principal.id.to_string(),
        "status": principal.status,
        "attributes": principal.attributes,
        "roles": principal.roles,
    })
}

fn api_key_json(record: &ApiKeyRecord) -> Value {
    let seconds = |t: std::time::SystemTime| crate::identity::unix_seconds(t);
    json!({
        "id": record.id,
        "principal": record.principal.to_string(),
        "scopes": record.scopes,
        "created_at": seconds(record.created_at),
        "expires_at": record.expires_at.map(seconds),
        "revoked_at": record.revoked_at.map(seconds),
        "superseded_by": record.superseded.as_ref().map(|s| s.by.clone()),
        "grace_until": record.superseded.as_ref().map(|s| seconds(s.grace_until)),
    })
}

/// Adds a field to a JSON object (the bodies built here always are objects).
fn insert_field(body: &mut Value, name: &str, value: Value) {
    if let Some(map) = body.as_object_mut() {
        map.insert(name.to_owned(), value);
    }
}

fn store_error(error: StoreError) -> ApiError {
    ApiError::from(error)
}

fn identity_error(error: crate::identity::IdentityError) -> ApiError {
    match error {
        crate::identity::IdentityError::Store(error) => ApiError::from(error),
        other => ApiError::internal("identity", other),
    }
}

fn actor_of(principal: Option<&str>) -> Actor {
    principal
        .and_then(|p| Actor::parse(p).ok())
        .unwrap_or(Actor::System)
}

/// Stores one audit record; secrets never go in `details`.
async fn audit(
    state: &AppState,
    actor: Option<&str>,
    action: &str,
    resource: &str,
    result: Outcome,
    details: Value,
) -> ApiResult<()> {
    let action = ActionName::parse(action).map_err(|e| ApiError::internal("audit action", e))?;
    let mut draft = RecordDraft::new(
        maos_audit::Timestamp::now(),
        actor_of(actor),
        action,
        resource,
        result,
    );
    if let Value::Object(map) = details {
        draft.details = map;
    }
    state.audit(draft).await
}

fn emit(
    state: &AppState,
    event_type: SecurityEventType,
    severity: Severity,
    principal: Option<&str>,
    ip: Option<IpAddr>,
    action: &str,
    reason: Option<&str>,
) {
    let mut event = security_event(event_type, severity);
    event.principal = principal.map(str::to_owned);
    event.source_ip = ip;
    event
        .details
        .insert("event.action".into(), Value::from(action));
    if let Some(reason) = reason {
        event.details.insert("reason".into(), Value::from(reason));
    }
    state.emit(event);
}

/// Authenticates the caller (for self-service checks), then authorizes it on `resource`.
fn authorize(
    state: &AppState,
    headers: &CallerHeaders,
    resource: &str,
    action: &str,
) -> ApiResult<Arc<Caller>> {
    state.authorize_caller(&credentials(headers), resource, action)
}

/// For MFA and API keys: the caller acting on itself is checked against `maos:self/<area>`,
/// anybody else against `maos:principals/<id>/<area>`.
fn authorize_own(
    state: &AppState,
    headers: &CallerHeaders,
    id: &PrincipalId,
    area: &str,
    action: &str,
) -> ApiResult<Arc<Caller>> {
    let creds = credentials(headers);
    let is_self = match state.authenticator.authenticate(&creds) {
        AuthOutcome::Authenticated(caller) => caller.subject.qualified() == id.to_string(),
        AuthOutcome::Missing | AuthOutcome::Invalid => false,
    };
    let resource = if is_self {
        format!("self/{area}")
    } else {
        format!("principals/{id}/{area}")
    };
    let caller = state.authorize_caller(&creds, &resource, action)?;
    if !is_self && action != "read" {
        check_may_manage(state, &caller, id, None)?;
    }
    if is_self && area == "mfa" && action != "read" {
        check_full_credential(state, &caller, id)?;
    }
    Ok(caller)
}

/// A principal changes its own second factor (enrolment, removal, recovery codes) only with a
/// credential that grants everything it holds: a narrowed API key or token must not be a way
/// to take over the account's MFA, and with it the account.
fn check_full_credential(state: &AppState, caller: &Caller, id: &PrincipalId) -> ApiResult<()> {
    let held = crate::routes::admin::held_roles(state, caller);
    let stored = state
        .identity
        .principal(&id.to_string())
        .map(|p| p.roles.iter().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(role) = stored.iter().find(|role| !held.contains(role)) {
        return Err(ApiError::forbidden(format!(
            "the calling credential does not grant `{role}`: changing the second factor needs \
             a credential with all of the principal's roles (a login or an unnarrowed key)"
        )));
    }
    Ok(())
}

fn stored_principal(state: &AppState, id: &PrincipalId) -> ApiResult<Arc<Principal>> {
    state
        .identity
        .principal(&id.to_string())
        .ok_or_else(|| ApiError::not_found(format!("principal `{id}` not found")))
}

/// A caller that may not write the policy manages only principals whose roles it holds itself,
/// and grants only roles it holds: otherwise `write` on a principal would be a path to every
/// role (grant it to oneself, or set the password of someone who has it).
fn check_may_manage(
    state: &AppState,
    caller: &Caller,
    target: &PrincipalId,
    granted: Option<&BTreeSet<String>>,
) -> ApiResult<()> {
    if crate::routes::admin::may_write_policy(state, &caller.subject, &caller.roles) {
        return Ok(());
    }
    let held = crate::routes::admin::held_roles(state, caller);
    let who = caller.subject.qualified();
    if let Some(role) = granted
        .into_iter()
        .flatten()
        .find(|role| !held.contains(role))
    {
        return Err(ApiError::forbidden(format!(
            "`{who}` does not hold role `{role}` and so cannot grant it"
        )));
    }
    if who == target.to_string() {
        return Ok(());
    }
    let target_text = target.to_string();
    let mut target_roles: Vec<String> = state
        .identity
        .principal(&target_text)
        .map(|p| p.roles.iter().cloned().collect())
        .unwrap_or_default();
    for binding in &state.engine.load().point.bundle().bindings {
        if binding.subject == target_text {
            target_roles.extend(binding.roles.iter().cloned());
        }
    }
    // Roles carried by the target's `/v1/tokens` tokens count too: disabling or re-passwording
    // their holder is managing that power.
    target_roles.extend(state.tokens.roles_of(&target_text));
    if target_text == state.config.admin.principal {
        target_roles.push("the bootstrap administrator".into());
    }
    if let Some(role) = target_roles.iter().find(|role| !held.contains(role)) {
        return Err(ApiError::forbidden(format!(
            "`{target_text}` holds `{role}`, which `{who}` does not, so only a policy \
             administrator may manage it"
        )));
    }
    Ok(())
}

/// A principal acting on its own API keys hands a new or rotated key only roles its present
/// credential grants: a narrowed key or token must not mint a wider one.
fn check_self_scopes(
    state: &AppState,
    caller: &Caller,
    id: &PrincipalId,
    scopes: &BTreeSet<String>,
) -> ApiResult<()> {
    if caller.subject.qualified() != id.to_string() {
        return Ok(());
    }
    let held = crate::routes::admin::held_roles(state, caller);
    if let Some(role) = scopes.iter().find(|role| !held.contains(role)) {
        return Err(ApiError::forbidden(format!(
            "the calling credential does not grant `{role}`, so the key it creates cannot"
        )));
    }
    Ok(())
}

/// Disabling or deleting the principal the bootstrap admin token acts as would lock every
/// administrator out, with no way back through the API.
fn check_not_bootstrap_admin(state: &AppState, id: &PrincipalId) -> ApiResult<()> {
    if id.to_string() == state.config.admin.principal {
        return Err(ApiError::unprocessable(
            "admin_lockout",
            format!(
                "`{id}` is the bootstrap administrator (admin.principal): disabling or \
                 deleting it would lock every administrator out"
            ),
        ));
    }
    Ok(())
}

/// Stores a changed principal and reloads principals and API keys (whose scopes depend on it).
pub(crate) async fn save_principal(state: &AppState, principal: &Principal) -> ApiResult<()> {
    let (status, attributes, roles) = principal_columns(principal);
    state
        .identity
        .store()
        .identities()
        .update_principal(&principal.id.to_string(), &status, &attributes, &roles)
        .await
        .map_err(store_error)?;
    state
        .identity
        .reload_principals()
        .await
        .map_err(identity_error)?;
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)
}

fn lock_error<T>(_: std::sync::PoisonError<T>) -> ApiError {
    ApiError::internal("login", "the lockout table's lock was poisoned")
}

fn check_password_text(password: &str) -> ApiResult<SecretString> {
    if password.is_empty() || password.len() > 1024 {
        return Err(ApiError::bad_request(
            "invalid_password",
            "a password is 1 to 1024 bytes",
        ));
    }
    Ok(SecretString::new(password))
}

/// The Argon2id hash of a new password (computed off the async threads).
async fn hash_password(state: &AppState, password: SecretString) -> ApiResult<String> {
    let identity = state.identity.clone();
    tokio::task::spawn_blocking(move || identity.hasher.hash(&password))
        .await
        .map_err(|e| ApiError::internal("password hashing", e))?
        .map_err(|e| ApiError::internal("password hashing", e))
}

// Principals.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPrincipalBody {
    pub id: String,
    #[serde(default)]
    pub attributes: PrincipalAttributes,
    #[serde(default)]
    pub roles: BTreeSet<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// Every stored principal.
#[utoipa::path(get, path = "/v1/principals", tag = "identity",
    responses((status = 200, description = "the principals")), security(("bearer" = [])))]
pub async fn list_principals(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers, "principals", "read")?;
    let list: Vec<Value> = state
        .identity
        .principals()
        .iter()
        .map(|p| principal_json(p))
        .collect();
    Ok(Json(json!({ "principals": list })))
}

/// Creates a person (`user:`) or an agent (`agent:`), optionally with a password.
#[utoipa::path(post, path = "/v1/principals", tag = "identity",
    responses((status = 201, description = "created"), (status = 409, description = "exists")),
    security(("bearer" = [])))]
pub async fn create_principal(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(body): ApiJson<NewPrincipalBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = authorize(&state, &headers, "principals", "write")?;
    let mut id = parse_id(&body.id)?;
    // People log in by name: their id carries the normalised name, one account per spelling.
    if id.kind() == maos_identity::PrincipalKind::User {
        let name = normalize_user_name(id.name())
            .map_err(|e| ApiError::bad_request("invalid_principal", e.to_string()))?;
        id = parse_id(&format!("user:{name}"))?;
    }
    let password = body
        .password
        .as_deref()
        .map(check_password_text)
        .transpose()?;
    check_may_manage(&state, &caller, &id, Some(&body.roles))?;
    let mut principal = Principal::new(id.clone());
    principal.attributes = body.attributes;
    principal.roles = body.roles;
    let hash = match password {
        Some(password) => Some(hash_password(&state, password).await?),
        None => None,
    };

    let (status, attributes, roles) = principal_columns(&principal);
    let ids = state.identity.store().identities();
    ids.create_principal(&id.to_string(), &status, &attributes, &roles)
        .await
        .map_err(store_error)?;
    if let Some(hash) = hash {
        ids.set_password_hash(&id.to_string(), &hash)
            .await
            .map_err(store_error)?;
    }
    state
        .identity
        .reload_principals()
        .await
        .map_err(identity_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.principal.create",
        &id.to_string(),
        Outcome::Success,
        json!({"roles": principal.roles}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(principal_json(&principal))))
}

#[utoipa::path(get, path = "/v1/principals/{id}", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "the principal"), (status = 404, description = "not found")), tag = "identity", security(("bearer" = [])))]
pub async fn get_principal(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    authorize(&state, &headers, &format!("principals/{id}"), "read")?;
    let principal = stored_principal(&state, &id)?;
    let mfa = state
        .identity
        .store()
        .identities()
        .totp(&id.to_string())
        .await
        .map_err(store_error)?
        .is_some_and(|t| t.confirmed);
    let mut body = principal_json(&principal);
    insert_field(&mut body, "mfa", Value::Bool(mfa));
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePrincipalBody {
    #[serde(default)]
    pub attributes: Option<PrincipalAttributes>,
    #[serde(default)]
    pub roles: Option<BTreeSet<String>>,
}

/// Replaces a principal's attributes and/or roles.
#[utoipa::path(patch, path = "/v1/principals/{id}", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "updated")), tag = "identity", security(("bearer" = [])))]
pub async fn update_principal(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdatePrincipalBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let caller = authorize(&state, &headers, &format!("principals/{id}"), "write")?;
    let mut principal = Principal::clone(&*stored_principal(&state, &id)?);
    let added: Option<BTreeSet<String>> = body
        .roles
        .as_ref()
        .map(|roles| roles.difference(&principal.roles).cloned().collect());
    check_may_manage(&state, &caller, &id, added.as_ref())?;
    // Attributes feed the policies' conditions: setting one's own would be a way round them.
    if body.attributes.is_some()
        && caller.subject.qualified() == id.to_string()
        && !crate::routes::admin::may_write_policy(&state, &caller.subject, &caller.roles)
    {
        return Err(ApiError::forbidden(format!(
            "`{id}` may not change its own attributes; a policy administrator may"
        )));
    }
    if let Some(attributes) = body.attributes {
        principal.attributes = attributes;
    }
    if let Some(roles) = body.roles {
        principal.roles = roles;
    }
    save_principal(&state, &principal).await?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.principal.update",
        &id.to_string(),
        Outcome::Success,
        json!({"roles": principal.roles}),
    )
    .await?;
    Ok(Json(principal_json(&principal)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: BTreeSet<String>,
}

/// Replaces a principal's stored role bindings.
#[utoipa::path(put, path = "/v1/principals/{id}/roles", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "updated")), tag = "identity", security(("bearer" = [])))]
pub async fn put_roles(
    state: State<Arc<AppState>>,
    headers: CallerHeaders,
    id: ApiPath<String>,
    ApiJson(body): ApiJson<RolesBody>,
) -> ApiResult<Json<Value>> {
    update_principal(
        state,
        headers,
        id,
        ApiJson(UpdatePrincipalBody {
            attributes: None,
            roles: Some(body.roles),
        }),
    )
    .await
}

#[utoipa::path(delete, path = "/v1/principals/{id}", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 204, description = "deleted")), tag = "identity", security(("bearer" = [])))]
pub async fn delete_principal(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let caller = authorize(&state, &headers, &format!("principals/{id}"), "write")?;
    check_not_bootstrap_admin(&state, &id)?;
    check_may_manage(&state, &caller, &id, None)?;
    let deleted = state
        .identity
        .store()
        .identities()
        .delete_principal(&id.to_string())
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(ApiError::not_found(format!("principal `{id}` not found")));
    }
    revoke_refresh_of(&state, &id).await?;
    cut_off(&state, &id, CutoffScope::All).await?;
    state
        .identity
        .reload_principals()
        .await
        .map_err(identity_error)?;
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.principal.delete",
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored row of an API key record.
pub(crate) fn api_key_row(id: &PrincipalId, record: &ApiKeyRecord) -> ApiResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: record.id.clone(),
        principal: id.to_string(),
        record: serde_json::to_string(record)
            .map_err(|e| ApiError::internal("api key record", e))?,
    })
}

async fn revoke_api_keys_of(state: &AppState, id: &PrincipalId) -> ApiResult<()> {
    let now = state.identity.now();
    for key in state.identity.api_keys_of(id) {
        if key.revoked_at.is_some() {
            continue;
        }
        let mut record = ApiKeyRecord::clone(&key);
        record.revoke(now);
        state
            .identity
            .store()
            .identities()
            .update_api_key(&api_key_row(id, &record)?)
            .await
            .map_err(store_error)?;
    }
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)
}

async fn cut_off(state: &AppState, id: &PrincipalId, scope: CutoffScope) -> ApiResult<()> {
    state
        .identity
        .cut_off(&id.to_string(), scope)
        .await
        .map_err(identity_error)
}

pub(crate) async fn revoke_refresh_of(state: &AppState, id: &PrincipalId) -> ApiResult<usize> {
    let id = id.clone();
    state
        .identity
        .with_refresh_families(move |families| families.revoke_principal(&id))
        .await
        .map_err(identity_error)
}

async fn set_status(
    state: Arc<AppState>,
    headers: CallerHeaders,
    id: String,
    status: PrincipalStatus,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let caller = authorize(&state, &headers, &format!("principals/{id}"), "write")?;
    if status == PrincipalStatus::Disabled {
        check_not_bootstrap_admin(&state, &id)?;
    }
    check_may_manage(&state, &caller, &id, None)?;
    let mut principal = Principal::clone(&*stored_principal(&state, &id)?);
    principal.status = status;
    save_principal(&state, &principal).await?;
    let action = match status {
        PrincipalStatus::Active => "identity.principal.enable",
        PrincipalStatus::Disabled => {
            // Everything the account holds dies with it, so that enabling it again (after an
            // investigation, say) does not bring back stolen credentials: refresh tokens,
            // access tokens issued so far, API keys.
            revoke_refresh_of(&state, &id).await?;
            cut_off(&state, &id, CutoffScope::All).await?;
            revoke_api_keys_of(&state, &id).await?;
            // An automatic disable in force on it must not enable it again when it ends.
            state
                .responder
                .yield_disable_to(&id.to_string(), &caller.subject.qualified())
                .await?;
            "identity.principal.disable"
        }
    };
    audit(
        &state,
        Some(&caller.subject.qualified()),
        action,
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    Ok(Json(principal_json(&principal)))
}

/// Disables a principal: its tokens and API keys stop working at once.
#[utoipa::path(post, path = "/v1/principals/{id}/disable", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "disabled")), tag = "identity", security(("bearer" = [])))]
pub async fn disable_principal(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    set_status(state, headers, id, PrincipalStatus::Disabled).await
}

#[utoipa::path(post, path = "/v1/principals/{id}/enable", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "enabled")), tag = "identity", security(("bearer" = [])))]
pub async fn enable_principal(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    set_status(state, headers, id, PrincipalStatus::Active).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub password: String,
}

/// Sets a principal's password (its refresh tokens are revoked).
#[utoipa::path(put, path = "/v1/principals/{id}/password", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 204, description = "set")), tag = "identity", security(("bearer" = [])))]
pub async fn set_password(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let caller = authorize(&state, &headers, &format!("principals/{id}"), "write")?;
    check_may_manage(&state, &caller, &id, None)?;
    stored_principal(&state, &id)?;
    let hash = hash_password(&state, check_password_text(&body.password)?).await?;
    state
        .identity
        .store()
        .identities()
        .set_password_hash(&id.to_string(), &hash)
        .await
        .map_err(store_error)?;
    revoke_refresh_of(&state, &id).await?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.password.set",
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// Login.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub totp: Option<String>,
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// Why a login failed, with its HTTP answer.
#[derive(Debug)]
enum LoginFailure {
    Invalid,
    Locked(Duration),
    MfaRequired,
    MfaInvalid(&'static str),
    Disabled,
}

impl LoginFailure {
    fn reason(&self) -> &'static str {
        match self {
            LoginFailure::Invalid => "invalid_credentials",
            LoginFailure::Locked(_) => "locked_out",
            LoginFailure::MfaRequired => "mfa_required",
            LoginFailure::MfaInvalid(code) => code,
            LoginFailure::Disabled => "invalid_credentials",
        }
    }

    fn into_api_error(self) -> ApiError {
        match self {
            LoginFailure::Invalid | LoginFailure::Disabled => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid user name or password",
            ),
            LoginFailure::Locked(after) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "locked_out",
                format!(
                    "too many failed attempts; retry in {} s",
                    after.as_secs().max(1)
                ),
            )
            .with_details(json!({"retry_after": after.as_secs().max(1)})),
            LoginFailure::MfaRequired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "this account needs a TOTP code (`totp`) or a recovery code",
            ),
            LoginFailure::MfaInvalid(code) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                code,
                "the TOTP or recovery code is wrong or was already used",
            ),
        }
    }
}

/// What a successful login proved.
struct LoggedIn {
    principal: Arc<Principal>,
    amr: Vec<String>,
}

/// The longest user name given to normalisation: a valid one is at most 128 bytes after it,
/// and normalising a huge one would cost the server far more than the client.
const LONGEST_LOGIN_NAME: usize = 1024;

fn normalize(username: &str) -> Option<String> {
    if username.len() > LONGEST_LOGIN_NAME {
        return None;
    }
    normalize_user_name(username).ok()
}

/// Password, then the second factor when enrolled; lockout per user name and client address.
async fn password_login(
    state: &AppState,
    ip: IpAddr,
    username: &str,
    password: &str,
    totp: Option<&str>,
    recovery_code: Option<&str>,
) -> ApiResult<Result<LoggedIn, LoginFailure>> {
    let identity = state.identity.clone();
    // The stored hash is fetched for every name, known or not, so both cost the same.
    let normalized = normalize(username);
    let principal_id = normalized.as_ref().map(|name| format!("user:{name}"));
    let stored = match &principal_id {
        Some(id) => identity
            .store()
            .identities()
            .password_hash(id)
            .await
            .map_err(store_error)?,
        None => None,
    };
    let principal = principal_id
        .as_deref()
        .and_then(|id| identity.principal(id));

    // Lockout first (both the name and the address). The attempt is counted as a failure before
    // anything is verified, so a burst of parallel attempts cannot outrun the lock; a success
    // takes its count back. The lock is held only for the bookkeeping, never across the Argon2
    // computation, so logins run in parallel.
    let lockout_user = normalized.clone().unwrap_or_default();
    if let Err(locked) = identity
        .lockout
        .lock()
        .map_err(lock_error)?
        .begin_attempt(&lockout_user, ip)
    {
        return Ok(Err(LoginFailure::Locked(locked.retry_after)));
    }
    let password = SecretString::new(password);
    let checker = identity.clone();
    let (check, password) = tokio::task::spawn_blocking(move || {
        let check = checker.hasher.verify_or_dummy(&password, stored.as_deref());
        (check, password)
    })
    .await
    .map_err(|e| ApiError::internal("login", e))?;
    if !check.matched {
        // Already counted; a malformed name counts against the address only in effect.
        return Ok(Err(LoginFailure::Invalid));
    }
    let Some(principal) = principal else {
        return Ok(Err(LoginFailure::Invalid));
    };
    if !principal.is_active() {
        return Ok(Err(LoginFailure::Disabled));
    }
    let id = principal.id.to_string();
    if check.needs_rehash {
        // Stored with other Argon2 parameters: store a hash with the current ones.
        let rehasher = identity.clone();
        let rehashed = tokio::task::spawn_blocking(move || rehasher.hasher.hash(&password)).await;
        if let Ok(Ok(hash)) = rehashed {
            identity
                .store()
                .identities()
                .set_password_hash(&id, &hash)
                .await
                .map_err(store_error)?;
        }
    }

    // The second factor.
    let mut amr = vec!["pwd".to_owned()];
    let enrolment = identity
        .store()
        .identities()
        .totp(&id)
        .await
        .map_err(store_error)?
        .filter(|t| t.confirmed);
    if let Some(enrolment) = enrolment {
        let outcome = match (totp, recovery_code) {
            (Some(code), _) => check_totp(state, &enrolment, code).await?,
            (None, Some(code)) => check_recovery_code(state, &enrolment, code).await?,
            (None, None) => Err(LoginFailure::MfaRequired),
        };
        if let Err(failure) = outcome {
            // A wrong or replayed code stays counted against the name: the second factor
            // must not be open to guessing once the password is known. A missing code only
            // asks for one.
            if matches!(failure, LoginFailure::MfaRequired) {
                identity
                    .lockout
                    .lock()
                    .map_err(lock_error)?
                    .take_back(&lockout_user, ip);
            }
            return Ok(Err(failure));
        }
        amr.push(if totp.is_some() { "otp" } else { "rcode" }.to_owned());
        amr.push("mfa".to_owned());
    }
    identity
        .lockout
        .lock()
        .map_err(lock_error)?
        .attempt_succeeded(&lockout_user, ip);
    Ok(Ok(LoggedIn { principal, amr }))
}

async fn check_totp(
    state: &AppState,
    enrolment: &TotpRow,
    code: &str,
) -> ApiResult<Result<(), LoginFailure>> {
    let secret = state
        .identity
        .unseal(
            &enrolment.sealed_secret,
            &totp_context(&enrolment.principal),
        )
        .map_err(identity_error)?;
    let config: TotpConfig = serde_json::from_str(&enrolment.config)
        .map_err(|e| ApiError::internal("stored TOTP config", e))?;
    let last = enrolment.last_used_step.and_then(|s| u64::try_from(s).ok());
    let secret = TotpSecret::from_bytes(secret.expose().to_vec());
    match verify_totp(&secret, &config, code, state.identity.now(), last) {
        Ok(step) => {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            // Compare-and-set: of two logins with one code, only the first records it.
            let recorded = state
                .identity
                .store()
                .identities()
                .use_totp_step(&enrolment.principal, enrolment.last_used_step, step)
                .await
                .map_err(store_error)?;
            if recorded {
                Ok(Ok(()))
            } else {
                Ok(Err(LoginFailure::MfaInvalid("mfa_replayed")))
            }
        }
        Err(TotpError::Replayed) => Ok(Err(LoginFailure::MfaInvalid("mfa_replayed"))),
        Err(_) => Ok(Err(LoginFailure::MfaInvalid("mfa_invalid"))),
    }
}

async fn check_recovery_code(
    state: &AppState,
    enrolment: &TotpRow,
    code: &str,
) -> ApiResult<Result<(), LoginFailure>> {
    let mut remaining = enrolment.recovery_hashes.clone();
    if redeem_recovery_code(&mut remaining, code).is_err() {
        return Ok(Err(LoginFailure::MfaInvalid("mfa_invalid")));
    }
    let replaced = state
        .identity
        .store()
        .identities()
        .replace_recovery_hashes(&enrolment.principal, &enrolment.recovery_hashes, &remaining)
        .await
        .map_err(store_error)?;
    if replaced {
        Ok(Ok(()))
    } else {
        Ok(Err(LoginFailure::MfaInvalid("mfa_replayed")))
    }
}

/// Records a login attempt: a security event and an audit record.
async fn record_login(
    state: &AppState,
    username: &str,
    ip: IpAddr,
    outcome: &Result<LoggedIn, LoginFailure>,
    method: &str,
) -> ApiResult<()> {
    let principal = match outcome {
        Ok(done) => Some(done.principal.id.to_string()),
        Err(_) => normalize(username).map(|name| format!("user:{name}")),
    };
    let (event_type, severity, result, reason) = match outcome {
        Ok(_) => (
            SecurityEventType::AuthenticationSuccess,
            Severity::Info,
            Outcome::Success,
            None,
        ),
        Err(failure) => {
            let severity = match failure {
                LoginFailure::Locked(_) => Severity::Medium,
                _ => Severity::Low,
            };
            (
                SecurityEventType::AuthenticationFailure,
                severity,
                Outcome::Failure {
                    reason: failure.reason().to_owned(),
                },
                Some(failure.reason()),
            )
        }
    };
    let action = match outcome {
        Err(LoginFailure::Locked(_)) => "identity.login.locked",
        Err(LoginFailure::MfaInvalid(_)) => "identity.login.mfa_failure",
        _ => "identity.login",
    };
    emit(
        state,
        event_type,
        severity,
        principal.as_deref(),
        Some(ip),
        action,
        reason,
    );
    audit(
        state,
        principal.as_deref(),
        action,
        principal.as_deref().unwrap_or(""),
        result,
        json!({"source.ip": ip.to_string(), "method": method}),
    )
    .await
}

/// The token answer of a login: an access token and a refresh token.
async fn login_tokens(state: &AppState, done: &LoggedIn) -> ApiResult<Value> {
    let issued = state
        .identity
        .issue(&AccessGrant {
            subject: done.principal.id.clone(),
            scope: BTreeSet::new(),
            client_id: None,
            amr: done.amr.clone(),
        })
        .map_err(identity_error)?;
    let subject = done.principal.id.clone();
    let refresh = state
        .identity
        .with_refresh_families(move |families| families.issue(subject))
        .await
        .map_err(identity_error)?
        .map_err(|e| ApiError::internal("refresh token", e))?;
    Ok(json!({
        "access_token": issued.token.expose(),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL.as_secs(),
        "refresh_token": refresh.token.expose(),
    }))
}

/// Logs a person in with a password and, when enrolled, a TOTP or recovery code.
#[utoipa::path(post, path = "/v1/login", tag = "identity",
    responses((status = 200, description = "an access token and a refresh token"),
        (status = 401, description = "invalid_credentials, mfa_required, mfa_invalid, mfa_replayed"),
        (status = 429, description = "locked_out")))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<Value>> {
    let ip = peer.ip();
    let outcome = password_login(
        &state,
        ip,
        &body.username,
        &body.password,
        body.totp.as_deref(),
        body.recovery_code.as_deref(),
    )
    .await?;
    record_login(&state, &body.username, ip, &outcome, "login").await?;
    match outcome {
        Ok(done) => Ok(Json(login_tokens(&state, &done).await?)),
        Err(failure) => Err(failure.into_api_error()),
    }
}

// MFA.

/// Starts a TOTP enrolment: the seed and `otpauth://` URI, shown once. It takes effect when
/// confirmed with a first code.
#[utoipa::path(post, path = "/v1/principals/{id}/mfa", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 201, description = "seed and otpauth URI, shown once"), (status = 409, description = "already enrolled")), tag = "identity", security(("bearer" = [])))]
pub async fn enroll_mfa(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "mfa", "write")?;
    stored_principal(&state, &id)?;
    let existing = state
        .identity
        .store()
        .identities()
        .totp(&id.to_string())
        .await
        .map_err(store_error)?;
    if existing.is_some_and(|t| t.confirmed) {
        return Err(ApiError::conflict(
            "MFA is already enrolled; remove it first (DELETE .../mfa)",
        ));
    }
    let config = TotpConfig::default();
    let enrolment = enroll(TOTP_ISSUER, &id.to_string(), config)
        .map_err(|e| ApiError::internal("totp enrolment", e))?;
    let sealed = state
        .identity
        .seal(enrolment.secret.expose(), &totp_context(&id.to_string()))
        .map_err(identity_error)?;
    state
        .identity
        .store()
        .identities()
        .put_totp(&TotpRow {
            principal: id.to_string(),
            sealed_secret: sealed,
            config: serde_json::to_string(&config)
                .map_err(|e| ApiError::internal("totp config", e))?,
            confirmed: false,
            last_used_step: None,
            recovery_hashes: Vec::new(),
        })
        .await
        .map_err(store_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.mfa.enroll",
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "secret": enrolment.secret.to_base32().expose(),
            "otpauth_uri": enrolment.uri.expose(),
            "confirmed": false,
        })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    pub code: String,
}

/// Confirms an enrolment with a first code; answers the recovery codes, shown once.
#[utoipa::path(post, path = "/v1/principals/{id}/mfa/confirm", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "confirmed; recovery codes, shown once"), (status = 422, description = "mfa_invalid")), tag = "identity", security(("bearer" = [])))]
pub async fn confirm_mfa(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "mfa", "write")?;
    let ids = state.identity.store().identities();
    let Some(mut enrolment) = ids.totp(&id.to_string()).await.map_err(store_error)? else {
        return Err(ApiError::not_found("no MFA enrolment to confirm"));
    };
    if enrolment.confirmed {
        return Err(ApiError::conflict("MFA is already confirmed"));
    }
    let secret = state
        .identity
        .unseal(&enrolment.sealed_secret, &totp_context(&id.to_string()))
        .map_err(identity_error)?;
    let config: TotpConfig = serde_json::from_str(&enrolment.config)
        .map_err(|e| ApiError::internal("stored TOTP config", e))?;
    let secret = TotpSecret::from_bytes(secret.expose().to_vec());
    let step = match verify_totp(&secret, &config, &body.code, state.identity.now(), None) {
        Ok(step) => step,
        Err(error) => {
            emit(
                &state,
                SecurityEventType::AuthenticationFailure,
                Severity::Low,
                Some(&id.to_string()),
                None,
                "identity.mfa.confirm",
                Some("mfa_invalid"),
            );
            audit(
                &state,
                Some(&caller.subject.qualified()),
                "identity.mfa.confirm",
                &id.to_string(),
                Outcome::Failure {
                    reason: "mfa_invalid".into(),
                },
                json!({}),
            )
            .await?;
            return Err(ApiError::unprocessable("mfa_invalid", error.to_string()));
        }
    };
    let (codes, hashes) = generate_recovery_codes(RECOVERY_CODE_COUNT)
        .map_err(|e| ApiError::internal("recovery codes", e))?;
    enrolment.confirmed = true;
    // The confirming code is spent too.
    enrolment.last_used_step = i64::try_from(step).ok();
    enrolment.recovery_hashes = hashes;
    ids.put_totp(&enrolment).await.map_err(store_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.mfa.confirm",
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    let codes: Vec<&str> = codes.iter().map(|c| c.expose()).collect();
    Ok(Json(json!({"confirmed": true, "recovery_codes": codes})))
}

/// Removes the MFA enrolment.
#[utoipa::path(delete, path = "/v1/principals/{id}/mfa", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 204, description = "removed")), tag = "identity", security(("bearer" = [])))]
pub async fn delete_mfa(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "mfa", "write")?;
    let deleted = state
        .identity
        .store()
        .identities()
        .delete_totp(&id.to_string())
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(ApiError::not_found("no MFA enrolment"));
    }
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.mfa.remove",
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the recovery codes with new ones, shown once.
#[utoipa::path(post, path = "/v1/principals/{id}/mfa/recovery-codes", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "new recovery codes, shown once")), tag = "identity", security(("bearer" = [])))]
pub async fn new_recovery_codes(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "mfa", "write")?;
    let ids = state.identity.store().identities();
    let Some(mut enrolment) = ids
        .totp(&id.to_string())
        .await
        .map_err(store_error)?
        .filter(|t| t.confirmed)
    else {
        return Err(ApiError::not_found("no confirmed MFA enrolment"));
    };
    let (codes, hashes) = generate_recovery_codes(RECOVERY_CODE_COUNT)
        .map_err(|e| ApiError::internal("recovery codes", e))?;
    enrolment.recovery_hashes = hashes;
    ids.put_totp(&enrolment).await.map_err(store_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.mfa.recovery_codes",
        &id.to_string(),
        Outcome::Success,
        json!({}),
    )
    .await?;
    let codes: Vec<&str> = codes.iter().map(|c| c.expose()).collect();
    Ok(Json(json!({"recovery_codes": codes})))
}

// API keys.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    #[serde(default)]
    pub scopes: BTreeSet<String>,
    /// Lifetime in seconds; none: no expiry.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[utoipa::path(get, path = "/v1/principals/{id}/apikeys", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 200, description = "the keys, without secrets")), tag = "identity", security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    authorize_own(&state, &headers, &id, "apikeys", "read")?;
    let keys: Vec<Value> = state
        .identity
        .api_keys_of(&id)
        .iter()
        .map(|k| api_key_json(k))
        .collect();
    Ok(Json(json!({ "api_keys": keys })))
}

fn api_key_error(error: maos_identity::apikey::ApiKeyError) -> ApiError {
    use maos_identity::apikey::ApiKeyError;
    match error {
        ApiKeyError::ScopeNotHeld(missing) => ApiError::unprocessable(
            "scope_not_held",
            format!("the principal does not hold the roles {missing:?}"),
        ),
        ApiKeyError::PrincipalDisabled => {
            ApiError::unprocessable("principal_disabled", "the principal is disabled")
        }
        other => ApiError::internal("api key", other),
    }
}

/// Creates an API key; the key is in this answer only.
#[utoipa::path(post, path = "/v1/principals/{id}/apikeys", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`")), responses((status = 201, description = "the key, shown once"), (status = 422, description = "scope_not_held")), tag = "identity", security(("bearer" = [])))]
pub async fn create_api_key_route(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewApiKeyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "apikeys", "write")?;
    if body.ttl_seconds == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            "`ttl_seconds` is at least 1; leave it out for a key that does not expire",
        ));
    }
    check_self_scopes(&state, &caller, &id, &body.scopes)?;
    let principal = stored_principal(&state, &id)?;
    let new = create_api_key(
        &principal,
        body.scopes,
        body.ttl_seconds.map(Duration::from_secs),
        state.identity.now(),
    )
    .map_err(api_key_error)?;
    state
        .identity
        .store()
        .identities()
        .create_api_key(&api_key_row(&id, &new.record)?)
        .await
        .map_err(store_error)?;
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.apikey.create",
        &format!("apikey:{}", new.record.id),
        Outcome::Success,
        json!({"principal": id.to_string(), "scopes": new.record.scopes}),
    )
    .await?;
    let mut body = api_key_json(&new.record);
    insert_field(&mut body, "key", Value::from(new.key.expose()));
    Ok((StatusCode::CREATED, Json(body)))
}

fn own_key(state: &AppState, id: &PrincipalId, key: &str) -> ApiResult<ApiKeyRecord> {
    state
        .identity
        .api_key(key)
        .filter(|k| &k.principal == id)
        .map(|k| ApiKeyRecord::clone(&k))
        .ok_or_else(|| ApiError::not_found(format!("API key `{key}` not found")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the old key keeps working, in seconds (default 3600).
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// Replaces a key with a new one; the old key works for the grace period.
#[utoipa::path(post, path = "/v1/principals/{id}/apikeys/{key}/rotate", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`"), ("key" = String, Path, description = "the API key id")), request_body(content = String, description = "optional `{\"grace_seconds\": N}`", content_type = "application/json"), responses((status = 201, description = "the new key, shown once")), tag = "identity", security(("bearer" = [])))]
pub async fn rotate_api_key(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath((id, key)): ApiPath<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "apikeys", "write")?;
    let body: RotateBody = if body.is_empty() {
        RotateBody::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let principal = stored_principal(&state, &id)?;
    let mut old = own_key(&state, &id, &key)?;
    check_self_scopes(&state, &caller, &id, &old.scopes)?;
    if old.revoked_at.is_some() || old.superseded.is_some() {
        return Err(ApiError::conflict(format!(
            "API key `{key}` is revoked or already rotated"
        )));
    }
    let grace = body
        .grace_seconds
        .map_or(DEFAULT_ROTATION_GRACE, Duration::from_secs);
    let new = old
        .rotate(&principal, grace, state.identity.now())
        .map_err(api_key_error)?;
    state
        .identity
        .store()
        .identities()
        .rotate_api_key(&api_key_row(&id, &old)?, &api_key_row(&id, &new.record)?)
        .await
        .map_err(store_error)?;
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)?;
    emit(
        &state,
        SecurityEventType::AuthenticationSuccess,
        Severity::Info,
        Some(&id.to_string()),
        None,
        "identity.apikey.rotate",
        None,
    );
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.apikey.rotate",
        &format!("apikey:{key}"),
        Outcome::Success,
        json!({"principal": id.to_string(), "new_key": new.record.id, "grace_seconds": grace.as_secs()}),
    )
    .await?;
    let mut body = api_key_json(&new.record);
    insert_field(&mut body, "key", Value::from(new.key.expose()));
    Ok((StatusCode::CREATED, Json(body)))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/principals/{id}/apikeys/{key}", params(("id" = String, Path, description = "`user:<name>` or `agent:<name>`"), ("key" = String, Path, description = "the API key id")), responses((status = 204, description = "revoked")), tag = "identity", security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath((id, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let caller = authorize_own(&state, &headers, &id, "apikeys", "write")?;
    if caller.subject.qualified() == id.to_string() {
        check_full_credential(&state, &caller, &id)?;
    }
    let mut record = own_key(&state, &id, &key)?;
    record.revoke(state.identity.now());
    state
        .identity
        .store()
        .identities()
        .update_api_key(&api_key_row(&id, &record)?)
        .await
        .map_err(store_error)?;
    state
        .identity
        .reload_api_keys()
        .await
        .map_err(identity_error)?;
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.apikey.revoke",
        &format!("apikey:{key}"),
        Outcome::Success,
        json!({"principal": id.to_string()}),
    )
    .await?;
    // Access tokens do not name the key they were obtained with: all of the principal's
    // client-credentials tokens go, and its clients fetch new ones.
    cut_off(&state, &id, CutoffScope::ClientCredentials).await?;
    Ok(StatusCode::NO_CONTENT)
}

// OAuth 2.0.

/// An RFC 6749 section 5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"maos\""),
        );
    }
    response
}

fn oauth_ok(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    username: Option<String>,
    password: Option<String>,
    totp: Option<String>,
    refresh_token: Option<String>,
    token: Option<String>,
}

/// `client_id:client_secret` from an HTTP Basic header (RFC 6749 2.3.1: form-encoded parts).
fn basic_credentials(headers: &CallerHeaders) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
        pairs.into_iter().next().map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn parse_form(body: &[u8]) -> Option<TokenForm> {
    serde_urlencoded::from_bytes(body).ok()
}

fn malformed_form() -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded with each parameter once",
    )
}

/// The OAuth 2.0 token endpoint: `client_credentials` (agents, API key as the secret),
/// `password` (people, with `totp` when enrolled) and `refresh_token` (rotating).
#[utoipa::path(post, path = "/v1/oauth/token", tag = "identity",
    request_body(content = String, description = "RFC 6749 form parameters", content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "an access token"),
        (status = 400, description = "RFC 6749 error: invalid_request, invalid_grant, unsupported_grant_type, invalid_scope"),
        (status = 401, description = "RFC 6749 error: invalid_client")))]
pub async fn oauth_token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: CallerHeaders,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(form) = parse_form(&body) else {
        return Ok(malformed_form());
    };
    match form.grant_type.as_deref() {
        Some("client_credentials") => client_credentials(&state, &headers, form, peer.ip()).await,
        Some("password") => password_grant(&state, form, peer.ip()).await,
        Some("refresh_token") => refresh_grant(&state, form, peer.ip()).await,
        Some(_) => Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, password or refresh_token",
        )),
        None => Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is missing",
        )),
    }
}

async fn client_credentials(
    state: &AppState,
    headers: &CallerHeaders,
    form: TokenForm,
    ip: IpAddr,
) -> Result<Response, ApiError> {
    let (client_id, secret) = match (
        basic_credentials(headers),
        form.client_id,
        form.client_secret,
    ) {
        (Some(pair), None, None) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return Ok(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "authenticate with client_id and client_secret (one method only)",
            ));
        }
    };
    let Ok(parsed) = ParsedApiKey::parse(&secret) else {
        return refuse_client(state, &client_id, ip, "malformed_api_key").await;
    };
    let Some(record) = state.identity.api_key(&parsed.id) else {
        return refuse_client(state, &client_id, ip, "unknown_api_key").await;
    };
    if record.principal.to_string() != client_id {
        return refuse_client(state, &client_id, ip, "wrong_principal").await;
    }
    if record.verify(&parsed, state.identity.now()).is_err() {
        return refuse_client(state, &client_id, ip, "api_key_invalid").await;
    }
    let Some(principal) = state.identity.principal(&client_id) else {
        return refuse_client(state, &client_id, ip, "unknown_principal").await;
    };
    let Ok(granted) = record.effective_scopes(&principal) else {
        return refuse_client(state, &client_id, ip, "principal_disabled").await;
    };
    let scope = match form.scope.as_deref().map(parse_scope) {
        None => granted,
        Some(requested) if requested.is_subset(&granted) => requested,
        Some(_) => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "the requested scope exceeds the key's scopes",
            ));
        }
    };
    let issued = state
        .identity
        .issue(&AccessGrant {
            subject: principal.id.clone(),
            scope: scope.clone(),
            client_id: Some(client_id.clone()),
            amr: Vec::new(),
        })
        .map_err(identity_error)?;
    emit(
        state,
        SecurityEventType::AuthenticationSuccess,
        Severity::Info,
        Some(&client_id),
        Some(ip),
        "identity.oauth.client_credentials",
        None,
    );
    audit(
        state,
        Some(&client_id),
        "identity.oauth.client_credentials",
        &client_id,
        Outcome::Success,
        json!({"apikey": record.id, "scope": scope, "source.ip": ip.to_string()}),
    )
    .await?;
    let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
    Ok(oauth_ok(json!({
        "access_token": issued.token.expose(),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL.as_secs(),
        "scope": scope.join(" "),
    })))
}

/// A refused client authentication: event, audit record, RFC 6749 `invalid_client`.
async fn refuse_client(
    state: &AppState,
    client_id: &str,
    ip: IpAddr,
    reason: &'static str,
) -> Result<Response, ApiError> {
    emit(
        state,
        SecurityEventType::AuthenticationFailure,
        Severity::Low,
        Some(client_id),
        Some(ip),
        "identity.oauth.client_credentials",
        Some(reason),
    );
    audit(
        state,
        Some(client_id),
        "identity.oauth.client_credentials",
        client_id,
        Outcome::Failure {
            reason: reason.into(),
        },
        json!({"source.ip": ip.to_string()}),
    )
    .await?;
    Ok(oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    ))
}

async fn password_grant(
    state: &AppState,
    form: TokenForm,
    ip: IpAddr,
) -> Result<Response, ApiError> {
    let (Some(username), Some(password)) = (form.username, form.password) else {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "username and password are required",
        ));
    };
    let outcome =
        password_login(state, ip, &username, &password, form.totp.as_deref(), None).await?;
    record_login(state, &username, ip, &outcome, "oauth_password").await?;
    match outcome {
        Ok(done) => Ok(oauth_ok(login_tokens(state, &done).await?)),
        Err(LoginFailure::Locked(after)) => {
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_grant",
                "too many failed attempts; retry later",
            );
            if let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Ok(response)
        }
        Err(LoginFailure::MfaRequired) => Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "mfa_required: this account needs a TOTP code in `totp`",
        )),
        Err(_) => Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid user name, password or code",
        )),
    }
}

async fn refresh_grant(
    state: &AppState,
    form: TokenForm,
    ip: IpAddr,
) -> Result<Response, ApiError> {
    let Some(presented) = form.refresh_token else {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token is missing",
        ));
    };
    let rotated = state
        .identity
        .with_refresh_families(move |families| families.rotate(&presented))
        .await
        .map_err(identity_error)?;
    let rotated = match rotated {
        Ok(rotated) => rotated,
        Err(error) => {
            let reason = match &error {
                RefreshError::ReuseDetected { .. } => "refresh_reuse_detected",
                RefreshError::FamilyRevoked => "refresh_family_revoked",
                RefreshError::Expired => "refresh_expired",
                _ => "refresh_unknown",
            };
            let severity = if reason == "refresh_reuse_detected" {
                Severity::High
            } else {
                Severity::Low
            };
            emit(
                state,
                SecurityEventType::AuthenticationFailure,
                severity,
                None,
                Some(ip),
                "identity.oauth.refresh",
                Some(reason),
            );
            audit(
                state,
                None,
                "identity.oauth.refresh",
                "",
                Outcome::Failure {
                    reason: reason.into(),
                },
                json!({"source.ip": ip.to_string()}),
            )
            .await?;
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            ));
        }
    };
    let principal = state
        .identity
        .principal(&rotated.principal.to_string())
        .filter(|p| p.is_active());
    let Some(principal) = principal else {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the principal is disabled or gone",
        ));
    };
    let issued = state
        .identity
        .issue(&AccessGrant {
            subject: principal.id.clone(),
            scope: BTreeSet::new(),
            client_id: None,
            amr: Vec::new(),
        })
        .map_err(identity_error)?;
    Ok(oauth_ok(json!({
        "access_token": issued.token.expose(),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL.as_secs(),
        "refresh_token": rotated.token.expose(),
    })))
}

/// RFC 7009 revocation of an access token (by its `jti`, on every node) or a refresh token
/// (its whole family). Answers 200 for tokens it does not know, as the RFC asks.
#[utoipa::path(post, path = "/v1/oauth/revoke", tag = "identity",
    request_body(content = String, description = "RFC 7009 form: `token`", content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or not a valid token")))]
pub async fn oauth_revoke(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(form) = parse_form(&body) else {
        return Ok(malformed_form());
    };
    let Some(token) = form.token else {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        ));
    };
    if token.starts_with(maos_identity::token::refresh::REFRESH_TOKEN_PREFIX) {
        // Rotating a token finds its family; revoking the family then ends both tokens.
        let revoked = state
            .identity
            .with_refresh_families(move |families| match families.rotate(&token) {
                Ok(rotated) => families.revoke_family(&rotated.family),
                Err(_) => false,
            })
            .await
            .map_err(identity_error)?;
        if revoked {
            audit(
                &state,
                None,
                "identity.oauth.revoke",
                "",
                Outcome::Success,
                json!({"token_type": "refresh_token"}),
            )
            .await?;
        }
    } else if let Ok(claims) = state.identity.validate(&token) {
        state
            .identity
            .revoke_access_token(&claims)
            .await
            .map_err(identity_error)?;
        audit(
            &state,
            Some(&claims.subject.to_string()),
            "identity.oauth.revoke",
            &claims.subject.to_string(),
            Outcome::Success,
            json!({"token_type": "access_token", "jti": claims.jti}),
        )
        .await?;
    }
    Ok(oauth_ok(json!({})))
}

// Discovery and signing keys.

#[utoipa::path(get, path = "/.well-known/jwks.json", responses((status = 200, description = "the public signing keys")), tag = "identity")]
pub async fn jwks(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.identity.jwks())
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", responses((status = 200, description = "discovery")), tag = "identity")]
pub async fn openid_configuration(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(maos_identity::token::openid_configuration(
        &state.identity.issuer,
        &[maos_identity::token::SigningAlgorithm::EdDsa],
    ))
}

#[utoipa::path(get, path = "/v1/identity/signing-keys", responses((status = 200, description = "the signing keys and their states")), tag = "identity", security(("bearer" = [])))]
pub async fn list_signing_keys(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers, "identity/signing-keys", "read")?;
    Ok(Json(json!({"keys": state.identity.signing_key_states()})))
}

/// Makes a new signing key active; the previous one stays in the JWKS until its tokens expire.
#[utoipa::path(post, path = "/v1/identity/signing-keys/rotate", responses((status = 200, description = "the new active key")), tag = "identity", security(("bearer" = [])))]
pub async fn rotate_signing_key(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&state, &headers, "identity/signing-keys", "write")?;
    let kid = state
        .identity
        .rotate_signing_key()
        .await
        .map_err(identity_error)?;
    state
        .identity
        .reload_signing_keys()
        .await
        .map_err(identity_error)?;
    emit(
        &state,
        SecurityEventType::AuthenticationSuccess,
        Severity::Info,
        Some(&caller.subject.qualified()),
        None,
        "identity.signing_key.rotate",
        None,
    );
    audit(
        &state,
        Some(&caller.subject.qualified()),
        "identity.signing_key.rotate",
        &format!("signing-key:{kid}"),
        Outcome::Success,
        json!({"kid": kid}),
    )
    .await?;
    Ok(Json(
        json!({"active": kid, "keys": state.identity.signing_key_states()}),
    ))
}
