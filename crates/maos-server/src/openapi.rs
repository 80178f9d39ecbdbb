//! The OpenAPI document, generated from the handlers' annotations, served at
//! `/v1/openapi.json`. The schemas below document the JSON shapes; the handlers use the
//! engine's own types.

#![allow(dead_code)]

use serde_json::{Map, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{admin, decisions, forward_auth, ops};

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
        crate::gateway::admin::list, crate::gateway::admin::add, crate::gateway::admin::remove,
    ),
    components(schemas(
        ErrorDoc, ErrorBodyDoc, RequestDoc, ResponseDoc, BatchRequestDoc, BatchResponseDoc,
        EvaluationDoc, EvaluationsRequestDoc, EvaluationsDoc, EntityDoc, ActionDoc
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
}
