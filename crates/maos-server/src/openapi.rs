//! The OpenAPI document, generated from the handlers' annotations, served at
//! `/v1/openapi.json`. The schemas below document the JSON shapes; the handlers use the
//! engine's own types.

#![allow(dead_code)]

use serde_json::{Map, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::audit as audit_routes;
use crate::routes::{admin, decisions, forward_auth, identity, ops};

/// `{"error": {"code", "message", "details"?}}`
#[derive(Debug, ToSchema)]
pub struct ErrorDoc {
    error: ErrorBodyDoc,
}

#[derive(Debug, ToSchema)]
pub struct ErrorBodyDoc {
    /// Stable machine-readable code, e.g. `malformed_json`, `unauthenticated`.
    code: String,
    message: String,
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
}

#[derive(Debug, ToSchema)]
pub struct EntityDoc {
    #[schema(rename = "type")]
    kind: String,
    id: String,
    #[schema(value_type = Option<Object>)]
    properties: Option<Map<String, Value>>,
}

#[derive(Debug, ToSchema)]
pub struct ActionDoc {
    name: String,
    #[schema(value_type = Option<Object>)]
    properties: Option<Map<String, Value>>,
}

/// An authorization request (OpenID AuthZEN 1.0 shape). Unknown fields are refused.
#[derive(Debug, ToSchema)]
pub struct RequestDoc {
    subject: EntityDoc,
    resource: EntityDoc,
    action: ActionDoc,
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
}

/// The engine's answer.
#[derive(Debug, ToSchema)]
pub struct ResponseDoc {
    decision: bool,
    #[schema(value_type = Vec<Object>)]
    determining: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    obligations: Vec<Value>,
    reasons: Vec<String>,
    #[schema(value_type = Option<Object>)]
    trace: Option<Value>,
}

#[derive(Debug, ToSchema)]
pub struct BatchRequestDoc {
    requests: Vec<RequestDoc>,
}

#[derive(Debug, ToSchema)]
pub struct BatchResponseDoc {
    responses: Vec<ResponseDoc>,
}

#[derive(Debug, ToSchema)]
pub struct EvaluationDoc {
    decision: bool,
    #[schema(value_type = Object)]
    context: Value,
}

#[derive(Debug, ToSchema)]
pub struct EvaluationsRequestDoc {
    subject: Option<EntityDoc>,
    resource: Option<EntityDoc>,
    action: Option<ActionDoc>,
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
    #[schema(value_type = Vec<Object>)]
    evaluations: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    options: Option<Value>,
}

#[derive(Debug, ToSchema)]
pub struct EvaluationsDoc {
    evaluations: Vec<EvaluationDoc>,
}

/// One audit record (docs/audit.md, "Record format").
#[derive(Debug, ToSchema)]
pub struct AuditRecordDoc {
    seq: u64,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`
    time: String,
    /// `type:id` or `system`
    actor: String,
    action: String,
    resource: String,
    /// `{"status": "success"}`, or `failure`/`denied` with a `reason`
    #[schema(value_type = Object)]
    result: Value,
    request_id: Option<String>,
    #[schema(value_type = Object)]
    details: Map<String, Value>,
    prev_hash: String,
    hash: String,
}

/// A page of `GET /v1/audit`.
#[derive(Debug, ToSchema)]
pub struct AuditPageDoc {
    records: Vec<AuditRecordDoc>,
    /// The `after` of the next page; `null` on the last page.
    next: Option<u64>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "MAOS Security", description = "Decision, AuthZEN, forward-auth and admin APIs"),
    paths(
        decisions::authorize, decisions::authorize_batch, decisions::evaluation,
        decisions::evaluations, decisions::authzen_configuration,
        forward_auth::nginx, forward_auth::traefik,
        admin::active_policy, admin::list_versions, admin::upload_version, admin::get_version,
        admin::activate_version, admin::rollback,
        admin::list_roles, admin::get_role, admin::put_role, admin::delete_role,
        admin::list_bindings, admin::get_binding, admin::put_binding, admin::delete_binding,
        admin::list_policies, admin::get_policy, admin::put_policy, admin::delete_policy,
        admin::list_resources, admin::get_resource, admin::put_resource, admin::delete_resource,
        admin::list_tokens, admin::create_token, admin::revoke_token,
        ops::healthz, ops::readyz, ops::metrics,
        audit_routes::list_records,
        identity::list_principals, identity::create_principal, identity::get_principal,
        identity::update_principal, identity::put_roles, identity::delete_principal,
        identity::disable_principal, identity::enable_principal, identity::set_password,
        identity::enroll_mfa, identity::confirm_mfa, identity::delete_mfa,
        identity::new_recovery_codes, identity::list_api_keys, identity::create_api_key_route,
        identity::rotate_api_key, identity::revoke_api_key, identity::login,
        identity::oauth_token, identity::oauth_revoke, identity::jwks,
        identity::openid_configuration, identity::list_signing_keys,
        identity::rotate_signing_key,
        crate::gateway::admin::list, crate::gateway::admin::add, crate::gateway::admin::remove,
        crate::routes::siem::ingest_events, crate::routes::siem::search_events,
        crate::routes::siem::export_events, crate::routes::siem::list_alerts,
        crate::routes::siem::get_alert, crate::routes::siem::acknowledge_alert,
        crate::response::routes::list, crate::response::routes::get,
        crate::response::routes::create, crate::response::routes::undo,
    ),
    components(schemas(
        ErrorDoc, ErrorBodyDoc, RequestDoc, ResponseDoc, BatchRequestDoc, BatchResponseDoc,
        EvaluationDoc, EvaluationsRequestDoc, EvaluationsDoc, EntityDoc, ActionDoc,
        AuditRecordDoc, AuditPageDoc
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    let mut document = ApiDoc::openapi();
    document.merge(<crate::routes::keys::KeysApiDoc as OpenApi>::openapi());
    document.to_json().unwrap_or_else(|_| "{}".to_owned())
}
