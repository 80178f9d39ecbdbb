//! The decision APIs: `/v1/authorize`, `/v1/authorize/batch`, and OpenID AuthZEN 1.0.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use maos_core::{Action, Request, Resource, Subject};
use maos_policy::{DecisionOptions, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::audited::{DecisionApi, request_id};
use crate::auth::Credentials;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::tls::ClientCertificate;

/// The decision APIs' own resource in the default bundle.
const DECISIONS: &str = "decisions";

/// The caller's credentials: the `Authorization` header and the connection's verified client
/// certificate.
pub fn credentials(headers: &CallerHeaders) -> Credentials<'_> {
    Credentials {
        client_certificate: headers.client_certificate.as_ref().map(|c| c.der()),
        ..header_credentials(&headers.headers)
    }
}

/// The `Authorization` header alone. Forward-auth uses this: there the connection is the
/// proxy's, and its certificate says nothing about the user whose request is asked about.
pub fn header_credentials(headers: &HeaderMap) -> Credentials<'_> {
    Credentials {
        authorization: authorization(headers),
        ..Credentials::default()
    }
}

/// The one `Authorization` header. Two of them, or one that is not visible ASCII, are
/// presented but unusable: `Some("")`, which no authenticator accepts, so the caller gets 401
/// `invalid_token` instead of one of the values being picked.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some("");
    }
    Some(first.to_str().unwrap_or(""))
}

/// A handler's view of the caller: the request headers and, over TLS, the client certificate
/// the handshake verified (see [`crate::tls::ClientCertificate`]).
#[derive(Debug)]
pub struct CallerHeaders {
    pub headers: HeaderMap,
    pub client_certificate: Option<ClientCertificate>,
}

impl std::ops::Deref for CallerHeaders {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        &self.headers
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CallerHeaders {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerHeaders {
            headers: parts.headers.clone(),
            client_certificate: parts.extensions.get::<ClientCertificate>().cloned(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeQuery {
    /// Add a trace of every role, rule and condition considered.
    #[serde(default)]
    pub explain: bool,
}

/// Decide one request.
#[utoipa::path(
    post, path = "/v1/authorize", tag = "decisions",
    params(("explain" = Option<bool>, Query, description = "include a trace")),
    request_body(content = crate::openapi::RequestDoc, description = "an AuthZEN-shaped request"),
    responses(
        (status = 200, description = "the decision", body = crate::openapi::ResponseDoc),
        (status = 400, description = "malformed request", body = crate::openapi::ErrorDoc),
        (status = 401, description = "no or invalid bearer token", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not ask for decisions", body = crate::openapi::ErrorDoc),
        (status = 503, description = "the decision could not be recorded in the audit log (`audit_unavailable`)", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<AuthorizeQuery>,
    ApiJson(request): ApiJson<Request>,
) -> Result<Json<Response>, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), DECISIONS, "query")?;
    let options = DecisionOptions {
        extra_roles: Vec::new(),
        explain: query.explain,
    };
    let id = request_id(&headers);
    let response = state
        .decide_audited(
            &caller,
            request,
            &options,
            DecisionApi::Authorize,
            id.as_deref(),
        )
        .await?;
    Ok(Json(response))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub requests: Vec<Request>,
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub responses: Vec<Response>,
}

/// Decide several requests, answered in order.
#[utoipa::path(
    post, path = "/v1/authorize/batch", tag = "decisions",
    params(("explain" = Option<bool>, Query, description = "include traces")),
    request_body(content = crate::openapi::BatchRequestDoc),
    responses(
        (status = 200, description = "one response per request, in order", body = crate::openapi::BatchResponseDoc),
        (status = 400, description = "malformed request, or more than `server.max_batch` requests", body = crate::openapi::ErrorDoc),
        (status = 401, description = "no or invalid bearer token", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not ask for decisions", body = crate::openapi::ErrorDoc),
        (status = 503, description = "the decision could not be recorded in the audit log (`audit_unavailable`)", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub async fn authorize_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<AuthorizeQuery>,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), DECISIONS, "query")?;
    check_batch_size(&state, batch.requests.len())?;
    let options = DecisionOptions {
        extra_roles: Vec::new(),
        explain: query.explain,
    };
    let id = request_id(&headers);
    let responses = state
        .decide_all_audited(
            &caller,
            batch.requests,
            &options,
            DecisionApi::AuthorizeBatch,
            id.as_deref(),
            |_| false,
        )
        .await?;
    Ok(Json(BatchResponse { responses }))
}

fn check_batch_size(state: &AppState, len: usize) -> Result<(), ApiError> {
    let max = state.config.server.max_batch;
    if len > max {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{len} requests in one batch; at most {max} are accepted"),
        ));
    }
    Ok(())
}

/// An AuthZEN evaluation: the same shape as the engine's request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    pub subject: Subject,
    pub resource: Resource,
    pub action: Action,
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// An AuthZEN evaluation answer: the decision, and why in `context`.
#[derive(Debug, Serialize)]
pub struct EvaluationResponse {
    pub decision: bool,
    pub context: Value,
}

impl From<Response> for EvaluationResponse {
    fn from(response: Response) -> Self {
        EvaluationResponse {
            decision: response.decision,
            context: json!({
                "determining": response.determining,
                "obligations": response.obligations,
                "reasons": response.reasons,
            }),
        }
    }
}

/// AuthZEN 1.0 access evaluation.
#[utoipa::path(
    post, path = "/access/v1/evaluation", tag = "authzen",
    request_body(content = crate::openapi::RequestDoc),
    responses(
        (status = 200, description = "the decision", body = crate::openapi::EvaluationDoc),
        (status = 400, description = "malformed request", body = crate::openapi::ErrorDoc),
        (status = 401, description = "no or invalid bearer token", body = crate::openapi::ErrorDoc),
        (status = 503, description = "the decision could not be recorded in the audit log (`audit_unavailable`)", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub async fn evaluation(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(evaluation): ApiJson<Evaluation>,
) -> Result<Json<EvaluationResponse>, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), DECISIONS, "query")?;
    let request = Request {
        subject: evaluation.subject,
        resource: evaluation.resource,
        action: evaluation.action,
        context: evaluation.context,
    };
    let id = request_id(&headers);
    let response = state
        .decide_audited(
            &caller,
            request,
            &DecisionOptions::default(),
            DecisionApi::AuthzenEvaluation,
            id.as_deref(),
        )
        .await?;
    Ok(Json(response.into()))
}

/// One item of an AuthZEN evaluations request; missing parts come from the top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialEvaluation {
    pub subject: Option<Subject>,
    pub resource: Option<Resource>,
    pub action: Option<Action>,
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationsRequest {
    pub subject: Option<Subject>,
    pub resource: Option<Resource>,
    pub action: Option<Action>,
    pub context: Option<Map<String, Value>>,
    #[serde(default)]
    pub evaluations: Vec<PartialEvaluation>,
    #[serde(default)]
    pub options: EvaluationsOptions,
}

#[derive(Debug, Default, Deserialize)]
pub struct EvaluationsOptions {
    #[serde(default)]
    pub evaluations_semantic: Semantic,
    /// Other options are accepted and ignored, as AuthZEN asks.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// AuthZEN 1.0 access evaluations (batch).
#[utoipa::path(
    post, path = "/access/v1/evaluations", tag = "authzen",
    request_body(content = crate::openapi::EvaluationsRequestDoc),
    responses(
        (status = 200, description = "`{\"evaluations\": [...]}`, or one decision when the request has no `evaluations`", body = crate::openapi::EvaluationsDoc),
        (status = 400, description = "malformed request or missing subject/resource/action", body = crate::openapi::ErrorDoc),
        (status = 401, description = "no or invalid bearer token", body = crate::openapi::ErrorDoc),
        (status = 503, description = "the decision could not be recorded in the audit log (`audit_unavailable`)", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub async fn evaluations(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(body): ApiJson<EvaluationsRequest>,
) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), DECISIONS, "query")?;
    let semantic = body.options.evaluations_semantic;
    let id = request_id(&headers);

    // Without `evaluations`, this is a single evaluation (AuthZEN's backwards compatibility).
    if body.evaluations.is_empty() {
        let request = complete(&body, &PartialEvaluation::default(), 0)?;
        let response = state
            .decide_audited(
                &caller,
                request,
                &DecisionOptions::default(),
                DecisionApi::AuthzenEvaluations,
                id.as_deref(),
            )
            .await?;
        let answer: EvaluationResponse = response.into();
        return Ok(Json(json!(answer)));
    }

    check_batch_size(&state, body.evaluations.len())?;
    // Every item is checked before any is decided: a malformed item fails the whole call.
    let requests = body
        .evaluations
        .iter()
        .enumerate()
        .map(|(i, item)| complete(&body, item, i))
        .collect::<Result<Vec<_>, _>>()?;
    let stop = |response: &Response| match semantic {
        Semantic::ExecuteAll => false,
        Semantic::DenyOnFirstDeny => !response.decision,
        Semantic::PermitOnFirstPermit => response.decision,
    };
    let responses = state
        .decide_all_audited(
            &caller,
            requests,
            &DecisionOptions::default(),
            DecisionApi::AuthzenEvaluations,
            id.as_deref(),
            stop,
        )
        .await?;
    let answers: Vec<EvaluationResponse> = responses.into_iter().map(Into::into).collect();
    Ok(Json(json!({ "evaluations": answers })))
}

fn complete(
    top: &EvaluationsRequest,
    item: &PartialEvaluation,
    index: usize,
) -> Result<Request, ApiError> {
    let missing = |what: &str| {
        ApiError::bad_request(
            "invalid_request",
            format!("evaluations[{index}]: no `{what}` in the item or at the top level"),
        )
    };
    Ok(Request {
        subject: item
            .subject
            .clone()
            .or_else(|| top.subject.clone())
            .ok_or_else(|| missing("subject"))?,
        resource: item
            .resource
            .clone()
            .or_else(|| top.resource.clone())
            .ok_or_else(|| missing("resource"))?,
        action: item
            .action
            .clone()
            .or_else(|| top.action.clone())
            .ok_or_else(|| missing("action"))?,
        context: item
            .context
            .clone()
            .or_else(|| top.context.clone())
            .unwrap_or_default(),
    })
}

/// AuthZEN policy decision point metadata.
#[utoipa::path(
    get, path = "/.well-known/authzen-configuration", tag = "authzen",
    responses((status = 200, description = "the PDP's endpoints"))
)]
pub async fn authzen_configuration(State(state): State<Arc<AppState>>) -> Json<Value> {
    let base = state.public_base_url();
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
}
