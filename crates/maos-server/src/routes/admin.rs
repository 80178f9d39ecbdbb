//! The admin API: policy versions, roles, bindings and policies; registered resources; API
//! tokens. Every call is authorized by the engine itself against `maos:<area>`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use maos_policy::{Binding, Bundle, Policy, Role};
use maos_store::{NewApiToken, ResourceRecord, hash_token};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::audited::AdminChange;
use crate::auth::{Caller, generate_token};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::state::{AppState, invalid_bundle, parse_stored};

const POLICY: &str = "policy";
const RESOURCES: &str = "resources";
const TOKENS: &str = "tokens";

type ApiResult<T> = Result<T, ApiError>;

/// The active bundle and its version.
#[utoipa::path(get, path = "/v1/policy", tag = "policy",
    responses((status = 200, description = "`{version, bundle}`")), security(("bearer" = [])))]
pub async fn active_policy(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    let engine = state.engine.load();
    Ok(Json(
        json!({ "version": engine.version, "bundle": engine.point.bundle() }),
    ))
}

/// Every stored version, newest first.
#[utoipa::path(get, path = "/v1/policy/versions", tag = "policy",
    responses((status = 200, description = "`{versions: [...]}`")), security(("bearer" = [])))]
pub async fn list_versions(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    let versions = state.store.policy_versions().list().await?;
    Ok(Json(json!({ "versions": versions })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub comment: String,
}

/// Upload a bundle (YAML or JSON body): validated, its tests run, then stored and activated.
#[utoipa::path(post, path = "/v1/policy/versions", tag = "policy",
    params(
        ("dry_run" = Option<bool>, Query, description = "validate and test only"),
        ("comment" = Option<String>, Query, description = "stored with the version"),
    ),
    request_body(content = String, description = "the bundle, YAML or JSON", content_type = "application/yaml"),
    responses(
        (status = 201, description = "stored and active: `{version, tests}`"),
        (status = 200, description = "dry run: `{dry_run, valid, tests}`"),
        (status = 422, description = "invalid bundle, failing tests, or admin lockout; nothing changed", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn upload_version(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let body = body?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_encoding", "the bundle must be UTF-8"))?;
    let bundle = Bundle::parse(text, "upload").map_err(invalid_bundle)?;

    if query.dry_run {
        let (_, tests) = state.check_candidate(state.with_system_roles(bundle))?;
        return Ok((
            StatusCode::OK,
            Json(json!({ "dry_run": true, "valid": true, "tests": tests })),
        ));
    }
    let change = AdminChange::new(&caller, &headers, "policy.publish", "maos:policy")
        .with_detail("comment", query.comment.as_str());
    let author = caller.subject.qualified();
    let install = state.install(bundle, &author, &query.comment, None);
    let (version, tests) = state.audited_change(change, install).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "version": version.summary, "tests": tests })),
    ))
}

/// One stored version with its bundle.
#[utoipa::path(get, path = "/v1/policy/versions/{id}", tag = "policy",
    params(("id" = i64, Path)),
    responses((status = 200, description = "`{version, bundle}`"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_version(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    let version = state
        .store
        .policy_versions()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("policy version `{id}` not found")))?;
    let bundle = parse_stored(&version)?;
    Ok(Json(
        json!({ "version": version.summary, "bundle": bundle }),
    ))
}

/// Make a stored version the active one (after checking it again).
#[utoipa::path(post, path = "/v1/policy/versions/{id}/activate", tag = "policy",
    params(("id" = i64, Path)),
    responses((status = 200, description = "`{version}`"), (status = 404, body = crate::openapi::ErrorDoc),
        (status = 422, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn activate_version(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let versions = state.store.policy_versions();
    let version = versions
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("policy version `{id}` not found")))?;
    state.check_stored(&version)?;
    let change = AdminChange::new(
        &caller,
        &headers,
        "policy.activate",
        format!("policy_version:{id}"),
    );
    let version = state
        .audited_change(change, async {
            let version = versions.activate(id, &caller.subject.qualified()).await?;
            state.reload_policy().await?;
            Ok(version)
        })
        .await?;
    Ok(Json(json!({ "version": version.summary })))
}

/// Undo the latest activation.
#[utoipa::path(post, path = "/v1/policy/rollback", tag = "policy",
    responses((status = 200, description = "`{version}` now active"), (status = 409, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let versions = state.store.policy_versions();
    // The version rolled back to must pass the same checks as one activated by id: it may be
    // one that would lock the administrator out.
    let target = versions.rollback_target().await?;
    if let Some(id) = target {
        let version = versions
            .get(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("policy version `{id}` not found")))?;
        state.check_stored(&version)?;
    }
    let change = AdminChange::new(&caller, &headers, "policy.rollback", "maos:policy")
        .with_detail("to_version", json!(target));
    let version = state
        .audited_change(change, async {
            let version = versions
                .rollback_to(&caller.subject.qualified(), target)
                .await?;
            state.reload_policy().await?;
            Ok(version)
        })
        .await?;
    Ok(Json(json!({ "version": version.summary })))
}

/// A JSON object body with `key` filled from the path when missing; a different value is an
/// error.
fn with_key<T: serde::de::DeserializeOwned>(
    body: Map<String, Value>,
    key: &str,
    value: &str,
) -> ApiResult<T> {
    let mut body = body;
    match body.get(key) {
        Some(Value::String(given)) if given != value => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("`{key}` is `{given}` in the body but `{value}` in the path"),
            ));
        }
        Some(_) => {}
        None => {
            body.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))
}

fn edited(version: maos_store::PolicyVersionSummary, key: &str, value: Value) -> Json<Value> {
    Json(json!({ "version": version, key: value }))
}

// ---- roles

#[utoipa::path(get, path = "/v1/policy/roles", tag = "policy",
    responses((status = 200, description = "`{roles: [...]}`")), security(("bearer" = [])))]
pub async fn list_roles(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    Ok(Json(
        json!({ "roles": state.engine.load().point.bundle().roles }),
    ))
}

#[utoipa::path(get, path = "/v1/policy/roles/{name}", tag = "policy", params(("name" = String, Path)),
    responses((status = 200, description = "the role"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_role(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Role>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    let engine = state.engine.load();
    engine
        .point
        .bundle()
        .roles
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("role `{name}` not found")))
}

/// Create or replace a role (a new active bundle version).
#[utoipa::path(put, path = "/v1/policy/roles/{name}", tag = "policy", params(("name" = String, Path)),
    request_body(content = Object, description = "the role as in a bundle; `name` may be left out"),
    responses((status = 200, description = "`{version, role}`"), (status = 422, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn put_role(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let role: Role = with_key(body, "name", &name)?;
    let comment = format!("put role {name}");
    let change = AdminChange::new(&caller, &headers, "policy.role.put", format!("role:{name}"));
    let author = caller.subject.qualified();
    let edit = state.edit_bundle(&author, &comment, |bundle| {
        match bundle.roles.iter_mut().find(|r| r.name == role.name) {
            Some(existing) => *existing = role.clone(),
            None => bundle.roles.push(role.clone()),
        }
        Ok(())
    });
    let (version, ()) = state.audited_change(change, edit).await?;
    Ok(edited(version, "role", json!(role)))
}

#[utoipa::path(delete, path = "/v1/policy/roles/{name}", tag = "policy", params(("name" = String, Path)),
    responses((status = 200, description = "`{version}`"), (status = 404, body = crate::openapi::ErrorDoc),
        (status = 422, description = "still referenced", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn delete_role(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let comment = format!("delete role {name}");
    let change = AdminChange::new(
        &caller,
        &headers,
        "policy.role.delete",
        format!("role:{name}"),
    );
    let author = caller.subject.qualified();
    let edit = state.edit_bundle(&author, &comment, |bundle| {
        let before = bundle.roles.len();
        bundle.roles.retain(|r| r.name != name);
        if bundle.roles.len() == before {
            return Err(ApiError::not_found(format!("role `{name}` not found")));
        }
        Ok(())
    });
    let (version, ()) = state.audited_change(change, edit).await?;
    Ok(Json(json!({ "version": version })))
}

// ---- bindings

#[utoipa::path(get, path = "/v1/policy/bindings", tag = "policy",
    responses((status = 200, description = "`{bindings: [...]}`")), security(("bearer" = [])))]
pub async fn list_bindings(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    Ok(Json(
        json!({ "bindings": state.engine.load().point.bundle().bindings }),
    ))
}

fn roles_of(bundle: &Bundle, subject: &str) -> Vec<String> {
    let mut roles: Vec<String> = bundle
        .bindings
        .iter()
        .filter(|b| b.subject == subject)
        .flat_map(|b| b.roles.iter().cloned())
        .collect();
    roles.dedup();
    roles
}

#[utoipa::path(get, path = "/v1/policy/bindings/{subject}", tag = "policy", params(("subject" = String, Path, description = "`type:id`")),
    responses((status = 200, description = "`{subject, roles}`"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_binding(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(subject): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    let roles = roles_of(state.engine.load().point.bundle(), &subject);
    if roles.is_empty() {
        return Err(ApiError::not_found(format!("no binding for `{subject}`")));
    }
    Ok(Json(json!({ "subject": subject, "roles": roles })))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BindingBody {
    pub roles: Vec<String>,
}

/// Give a subject exactly these roles (a new active bundle version).
#[utoipa::path(put, path = "/v1/policy/bindings/{subject}", tag = "policy", params(("subject" = String, Path)),
    request_body(content = Object, description = "`{\"roles\": [...]}`"),
    responses((status = 200, description = "`{version, binding}`"), (status = 422, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn put_binding(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(subject): ApiPath<String>,
    ApiJson(body): ApiJson<BindingBody>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let binding = Binding {
        subject: subject.clone(),
        roles: body.roles,
    };
    let comment = format!("put binding {subject}");
    let change = AdminChange::new(
        &caller,
        &headers,
        "policy.binding.put",
        format!("binding:{subject}"),
    )
    .with_detail("roles", json!(binding.roles));
    let author = caller.subject.qualified();
    let edit = state.edit_bundle(&author, &comment, |bundle| {
        bundle.bindings.retain(|b| b.subject != binding.subject);
        bundle.bindings.push(binding.clone());
        Ok(())
    });
    let (version, ()) = state.audited_change(change, edit).await?;
    Ok(edited(version, "binding", json!(binding)))
}

#[utoipa::path(delete, path = "/v1/policy/bindings/{subject}", tag = "policy", params(("subject" = String, Path)),
    responses((status = 200, description = "`{version}`"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn delete_binding(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(subject): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let comment = format!("delete binding {subject}");
    let change = AdminChange::new(
        &caller,
        &headers,
        "policy.binding.delete",
        format!("binding:{subject}"),
    );
    let author = caller.subject.qualified();
    let edit = state.edit_bundle(&author, &comment, |bundle| {
        let before = bundle.bindings.len();
        bundle.bindings.retain(|b| b.subject != subject);
        if bundle.bindings.len() == before {
            return Err(ApiError::not_found(format!("no binding for `{subject}`")));
        }
        Ok(())
    });
    let (version, ()) = state.audited_change(change, edit).await?;
    Ok(Json(json!({ "version": version })))
}

// ---- policies

#[utoipa::path(get, path = "/v1/policy/policies", tag = "policy",
    responses((status = 200, description = "`{policies: [...]}`")), security(("bearer" = [])))]
pub async fn list_policies(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    Ok(Json(
        json!({ "policies": state.engine.load().point.bundle().policies }),
    ))
}

#[utoipa::path(get, path = "/v1/policy/policies/{id}", tag = "policy", params(("id" = String, Path)),
    responses((status = 200, description = "the policy"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_policy(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Policy>> {
    state.authorize_caller(&credentials(&headers), POLICY, "read")?;
    let engine = state.engine.load();
    engine
        .point
        .bundle()
        .policies
        .iter()
        .find(|p| p.id == id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("policy `{id}` not found")))
}

/// Create or replace an ABAC policy (a new active bundle version).
#[utoipa::path(put, path = "/v1/policy/policies/{id}", tag = "policy", params(("id" = String, Path)),
    request_body(content = Object, description = "the policy as in a bundle; `id` may be left out"),
    responses((status = 200, description = "`{version, policy}`"), (status = 422, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn put_policy(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let policy: Policy = with_key(body, "id", &id)?;
    let comment = format!("put policy {id}");
    let change = AdminChange::new(
        &caller,
        &headers,
        "policy.policy.put",
        format!("policy:{id}"),
    );
    let author = caller.subject.qualified();
    let edit = state.edit_bundle(&author, &comment, |bundle| {
        match bundle.policies.iter_mut().find(|p| p.id == policy.id) {
            Some(existing) => *existing = policy.clone(),
            None => bundle.policies.push(policy.clone()),
        }
        Ok(())
    });
    let (version, ()) = state.audited_change(change, edit).await?;
    Ok(edited(version, "policy", json!(policy)))
}

#[utoipa::path(delete, path = "/v1/policy/policies/{id}", tag = "policy", params(("id" = String, Path)),
    responses((status = 200, description = "`{version}`"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn delete_policy(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), POLICY, "write")?;
    let comment = format!("delete policy {id}");
    let change = AdminChange::new(
        &caller,
        &headers,
        "policy.policy.delete",
        format!("policy:{id}"),
    );
    let author = caller.subject.qualified();
    let edit = state.edit_bundle(&author, &comment, |bundle| {
        let before = bundle.policies.len();
        bundle.policies.retain(|p| p.id != id);
        if bundle.policies.len() == before {
            return Err(ApiError::not_found(format!("policy `{id}` not found")));
        }
        Ok(())
    });
    let (version, ()) = state.audited_change(change, edit).await?;
    Ok(Json(json!({ "version": version })))
}

// ---- resources

fn resource_json(record: &ResourceRecord) -> Value {
    json!({
        "type": record.kind,
        "id": record.id,
        "attributes": record.attributes,
        "updated_at": record.updated_at,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceListQuery {
    /// Continue after this `type:id` (the `next` of the previous page).
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/resources", tag = "resources",
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "`{resources: [...], next}`")), security(("bearer" = [])))]
pub async fn list_resources(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<ResourceListQuery>,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), RESOURCES, "read")?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let after = match &query.after {
        Some(after) => Some(
            after
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("bad_query", "`after` must be `type:id`"))?,
        ),
        None => None,
    };
    let page = state.store.resources().list(after, limit).await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|r| format!("{}:{}", r.kind, r.id)))
        .flatten();
    Ok(Json(json!({
        "resources": page.iter().map(resource_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

#[utoipa::path(get, path = "/v1/resources/{type}/{id}", tag = "resources",
    params(("type" = String, Path), ("id" = String, Path, description = "may contain `/`")),
    responses((status = 200, description = "`{type, id, attributes, updated_at}`"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_resource(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), RESOURCES, "read")?;
    let record = state
        .store
        .resources()
        .get(&kind, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource `{kind}:{id}` not registered")))?;
    Ok(Json(resource_json(&record)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    pub attributes: Map<String, Value>,
}

/// Register a resource or replace its attributes. They override what requests supply.
#[utoipa::path(put, path = "/v1/resources/{type}/{id}", tag = "resources",
    params(("type" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "`{\"attributes\": {...}}`"),
    responses((status = 200, description = "the stored resource")), security(("bearer" = [])))]
pub async fn put_resource(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), RESOURCES, "write")?;
    if kind.is_empty() || id.is_empty() {
        return Err(ApiError::bad_request(
            "bad_path",
            "resource type and id must not be empty",
        ));
    }
    if kind.contains(':') {
        // `type:id` is how patterns and cursors split a resource: a `:` in the type would make
        // `doc:x` + `a` and `doc` + `x:a` the same resource.
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("resource type `{kind}` must not contain `:`"),
        ));
    }
    let change = AdminChange::new(&caller, &headers, "resource.put", format!("{kind}:{id}"));
    let record = state
        .audited_change(change, async {
            let record = state
                .store
                .resources()
                .put(&kind, &id, &body.attributes)
                .await?;
            state.reload_resource(&kind, &id).await?;
            Ok(record)
        })
        .await?;
    Ok(Json(resource_json(&record)))
}

#[utoipa::path(delete, path = "/v1/resources/{type}/{id}", tag = "resources",
    params(("type" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "removed"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn delete_resource(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let caller = state.authorize_caller(&credentials(&headers), RESOURCES, "write")?;
    let change = AdminChange::new(&caller, &headers, "resource.delete", format!("{kind}:{id}"));
    state
        .audited_change(change, async {
            if !state.store.resources().delete(&kind, &id).await? {
                return Err(ApiError::not_found(format!(
                    "resource `{kind}:{id}` not registered"
                )));
            }
            state.reload_resource(&kind, &id).await?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tokens

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, description = "`{tokens: [...]}` without secrets")), security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    state.authorize_caller(&credentials(&headers), TOKENS, "read")?;
    Ok(Json(
        json!({ "tokens": state.store.api_tokens().list().await? }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// `type:id`
    pub principal: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub expires_in_seconds: Option<u64>,
}

/// The principal kinds a token may stand for.
const TOKEN_PRINCIPAL_KINDS: [&str; 3] = ["user", "agent", "service"];

/// The longest lifetime a token may be given: ten years.
const MAX_TOKEN_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// Refuses a token for a principal that is not `user:`, `agent:` or `service:`, with a role
/// the policy in force does not define, or that would be expired when created.
fn check_new_token(state: &AppState, body: &NewTokenBody) -> ApiResult<()> {
    let valid_principal = body.principal.split_once(':').is_some_and(|(kind, id)| {
        TOKEN_PRINCIPAL_KINDS.contains(&kind)
            && !id.is_empty()
            && !id.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if !valid_principal {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "`principal` must be `user:<id>`, `agent:<id>` or `service:<id>`, not `{}`",
                body.principal
            ),
        ));
    }
    let engine = state.engine.load();
    let defined = &engine.point.bundle().roles;
    if let Some(unknown) = body
        .roles
        .iter()
        .find(|role| !defined.iter().any(|r| &r.name == *role))
    {
        return Err(ApiError::unprocessable(
            "unknown_role",
            format!("role `{unknown}` is not defined by the policy in force"),
        ));
    }
    if let Some(seconds) = body.expires_in_seconds
        && !(1..=MAX_TOKEN_SECONDS).contains(&seconds)
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`expires_in_seconds` must be between 1 and {MAX_TOKEN_SECONDS}"),
        ));
    }
    Ok(())
}

/// Whether `subject` with `extra_roles` may write the policy, i.e. holds full admin rights:
/// whoever may edit the policy could grant themselves any role anyway.
pub(crate) fn may_write_policy(
    state: &AppState,
    subject: &maos_core::Subject,
    extra_roles: &[String],
) -> bool {
    let request = maos_core::Request {
        subject: subject.clone(),
        resource: maos_core::Resource::new("maos", POLICY),
        action: maos_core::Action::new("write"),
        context: Map::new(),
    };
    let options = maos_policy::DecisionOptions {
        extra_roles: extra_roles.to_vec(),
        explain: false,
    };
    state
        .engine
        .load()
        .point
        .decide_with(&request, &options)
        .decision
}

/// The roles `caller` holds: those its credential carries and those the policy in force binds
/// to its principal.
pub(crate) fn held_roles(state: &AppState, caller: &Caller) -> Vec<String> {
    let principal = caller.subject.qualified();
    let engine = state.engine.load();
    let mut roles = caller.roles.clone();
    for binding in &engine.point.bundle().bindings {
        if binding.subject == principal {
            roles.extend(binding.roles.iter().cloned());
        }
    }
    roles
}

/// A caller that may manage tokens but not write the policy can only issue tokens for itself,
/// with roles it holds: otherwise `maos:tokens` write would be a path to every role and every
/// principal.
fn check_delegation(state: &AppState, caller: &Caller, body: &NewTokenBody) -> ApiResult<()> {
    if may_write_policy(state, &caller.subject, &caller.roles) {
        return Ok(());
    }
    let principal = caller.subject.qualified();
    if body.principal != principal {
        return Err(ApiError::forbidden(format!(
            "only a policy administrator may issue tokens for another principal; \
             `{principal}` may issue tokens for itself"
        )));
    }
    let held = held_roles(state, caller);
    if let Some(role) = body.roles.iter().find(|role| !held.contains(role)) {
        return Err(ApiError::forbidden(format!(
            "`{principal}` does not hold role `{role}` and so cannot grant it"
        )));
    }
    Ok(())
}

/// Refuses a revocation that the caller may not make or that would leave nobody able to
/// administer the policy with a token.
///
/// Without policy rights a caller may revoke only its own principal's tokens. Nobody may revoke
/// the last active token that can write the policy: that would lock every administrator out,
/// the bootstrap token included (it comes back only when `MAOS_ADMIN_TOKEN` is set at start).
async fn check_revocation(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let tokens = state.store.api_tokens().list().await?;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    let active = |t: &&maos_store::ApiToken| {
        t.revoked_at.is_none() && t.expires_at.is_none_or(|at| at > now)
    };
    let Some(target) = tokens.iter().filter(active).find(|t| t.id == id) else {
        // Unknown or already revoked: the caller gets the store's 404.
        return Ok(());
    };
    if !may_write_policy(state, &caller.subject, &caller.roles)
        && target.principal != caller.subject.qualified()
    {
        return Err(ApiError::forbidden(format!(
            "only a policy administrator may revoke tokens of another principal (`{}`)",
            target.principal
        )));
    }
    let is_admin = |t: &maos_store::ApiToken| {
        t.principal.split_once(':').is_some_and(|(kind, name)| {
            may_write_policy(state, &maos_core::Subject::new(kind, name), &t.roles)
        })
    };
    if is_admin(target)
        && !tokens
            .iter()
            .filter(active)
            .any(|t| t.id != id && is_admin(t))
    {
        return Err(ApiError::unprocessable(
            "admin_lockout",
            "this is the last active token that can administer the policy; create another \
             before revoking it",
        ));
    }
    Ok(())
}

/// Create an API token; the token is in this answer only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    request_body(content = Object, description = "`{principal, roles?, description?, expires_in_seconds?}`"),
    responses((status = 201, description = "`{id, token, principal, roles, ...}`")), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = state.authorize_caller(&credentials(&headers), TOKENS, "write")?;
    check_new_token(&state, &body)?;
    check_delegation(&state, &caller, &body)?;
    let (id, token) = generate_token().map_err(|e| ApiError::internal("token generation", e))?;
    let expires_at = match body.expires_in_seconds {
        Some(seconds) => {
            let now = i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(i64::MAX);
            Some(
                now.saturating_add(
                    i64::try_from(seconds)
                        .unwrap_or(i64::MAX)
                        .saturating_mul(1000),
                ),
            )
        }
        None => None,
    };
    // The token itself goes into the record only as its HMAC (`maos audit hash TOKEN`).
    let change = AdminChange::new(&caller, &headers, "token.create", format!("token:{id}"))
        .with_detail("principal", body.principal.as_str())
        .with_detail("roles", json!(body.roles))
        .with_detail("expires_at", json!(expires_at))
        .with_detail("token", state.audit_sink.redact(&token));
    let stored = state
        .audited_change(change, async {
            let stored = state
                .store
                .api_tokens()
                .create(NewApiToken {
                    id,
                    principal: body.principal,
                    roles: body.roles,
                    description: body.description,
                    token_hash: hash_token(&token),
                    expires_at,
                })
                .await?;
            state.reload_tokens().await?;
            Ok(stored)
        })
        .await?;
    let mut answer = json!(stored);
    if let Some(object) = answer.as_object_mut() {
        object.insert("token".into(), Value::String(token));
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let caller = state.authorize_caller(&credentials(&headers), TOKENS, "write")?;
    check_revocation(&state, &caller, &id).await?;
    let change = AdminChange::new(&caller, &headers, "token.revoke", format!("token:{id}"));
    state
        .audited_change(change, async {
            if !state.store.api_tokens().revoke(&id).await? {
                return Err(ApiError::not_found(format!("no active token `{id}`")));
            }
            state.reload_tokens().await?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
