//! What the server records: every decision it answers and every admin change, each through
//! [`AppState::audit`] so that an operation whose record cannot be committed is refused with
//! 503 `audit_unavailable` (docs/audit.md lists the actions and their fields).
//!
//! * Decisions are recorded after the engine decided and before the answer leaves: a client
//!   never sees a decision that is not in the log. A batch is recorded in one group, adjacent in
//!   the chain.
//! * Admin changes are recorded before they are applied: nothing changes unless its record is
//!   durable. If applying then fails, a second record with the same request id and the result
//!   `failure` follows.

use std::future::Future;

use axum::http::HeaderMap;
use maos_audit::{Outcome, RecordDraft};
use maos_core::Request;
use maos_policy::{DecisionOptions, Response};
use serde_json::{Map, Value, json};

use crate::audit_log::{DecisionAudit, draft};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::forward_auth::{ForwardOutcome, ForwardQuery};
use crate::state::AppState;

/// The actor of records about requests that carried no usable credentials.
pub const ANONYMOUS: &str = "anonymous:-";

/// The longest `X-Request-Id` taken over into records.
const MAX_REQUEST_ID: usize = 128;

/// The request id a client or proxy sent in `X-Request-Id`, when it is short and printable.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-request-id")?.to_str().ok()?.trim();
    let usable = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value.bytes().all(|b| b.is_ascii_graphic());
    usable.then(|| value.to_owned())
}

/// Where a decision was asked for, recorded as `details.api`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionApi {
    Authorize,
    AuthorizeBatch,
    AuthzenEvaluation,
    AuthzenEvaluations,
}

impl DecisionApi {
    fn as_str(self) -> &'static str {
        match self {
            DecisionApi::Authorize => "authorize",
            DecisionApi::AuthorizeBatch => "authorize.batch",
            DecisionApi::AuthzenEvaluation => "authzen.evaluation",
            DecisionApi::AuthzenEvaluations => "authzen.evaluations",
        }
    }
}

/// The facts of one decision a record keeps (the request's context stays out: it may carry
/// anything the caller sent).
struct DecisionFacts {
    subject: String,
    resource: String,
    action: String,
}

impl DecisionFacts {
    fn of(request: &Request) -> Self {
        DecisionFacts {
            subject: request.subject.qualified(),
            resource: request.resource.qualified(),
            action: request.action.name.clone(),
        }
    }
}

/// An admin change about to be applied.
#[derive(Debug)]
pub struct AdminChange {
    pub caller: String,
    /// `policy.publish`, `token.create`, ...
    pub action: &'static str,
    pub resource: String,
    pub request_id: Option<String>,
    pub details: Map<String, Value>,
}

impl AdminChange {
    pub fn new(
        caller: &Caller,
        headers: &HeaderMap,
        action: &'static str,
        resource: impl Into<String>,
    ) -> Self {
        AdminChange {
            caller: caller.subject.qualified(),
            action,
            resource: resource.into(),
            request_id: request_id(headers),
            details: Map::new(),
        }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    fn draft(&self, result: Outcome) -> Result<RecordDraft, ApiError> {
        draft(
            &self.caller,
            self.action,
            self.resource.clone(),
            result,
            self.request_id.as_deref(),
            self.details.clone(),
        )
        .map_err(|e| ApiError::internal("audit record", e))
    }
}

impl AppState {
    fn records_decision(&self, decision: bool) -> bool {
        match self.config.audit.decisions {
            DecisionAudit::All => true,
            DecisionAudit::Deny => !decision,
            DecisionAudit::None => false,
        }
    }

    fn decision_draft(
        &self,
        caller: &Caller,
        facts: DecisionFacts,
        response: &Response,
        api: DecisionApi,
        request_id: Option<&str>,
        index: Option<usize>,
    ) -> Result<RecordDraft, ApiError> {
        let mut details = Map::new();
        details.insert("api".into(), json!(api.as_str()));
        details.insert("subject".into(), json!(facts.subject));
        details.insert("action".into(), json!(facts.action));
        if let Some(version) = &self.engine.load().version {
            details.insert("policy_version".into(), json!(version.id));
        }
        if !response.determining.is_empty() {
            details.insert("determining".into(), json!(response.determining));
        }
        if let Some(index) = index {
            details.insert("index".into(), json!(index));
        }
        let result = if response.decision {
            Outcome::Success
        } else {
            Outcome::denied(
                response
                    .reasons
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "denied".into()),
            )
        };
        draft(
            &caller.subject.qualified(),
            "authz.decide",
            facts.resource,
            result,
            request_id,
            details,
        )
        .map_err(|e| ApiError::internal("audit record", e))
    }

    /// Decides one request and records the decision before returning it.
    pub async fn decide_audited(
        &self,
        caller: &Caller,
        request: Request,
        options: &DecisionOptions,
        api: DecisionApi,
        request_id: Option<&str>,
    ) -> Result<Response, ApiError> {
        let facts = DecisionFacts::of(&request);
        let response = self.decide(request, options);
        if self.records_decision(response.decision) {
            let draft = self.decision_draft(caller, facts, &response, api, request_id, None)?;
            self.audit(draft).await?;
        }
        Ok(response)
    }

    /// Decides requests in order until `stop` says so, and records every decision made, in one
    /// group, before returning them.
    pub async fn decide_all_audited(
        &self,
        caller: &Caller,
        requests: Vec<Request>,
        options: &DecisionOptions,
        api: DecisionApi,
        request_id: Option<&str>,
        stop: impl Fn(&Response) -> bool,
    ) -> Result<Vec<Response>, ApiError> {
        let mut responses = Vec::with_capacity(requests.len());
        let mut drafts = Vec::new();
        for (index, request) in requests.into_iter().enumerate() {
            let facts = DecisionFacts::of(&request);
            let response = self.decide(request, options);
            if self.records_decision(response.decision) {
                drafts.push(self.decision_draft(
                    caller,
                    facts,
                    &response,
                    api,
                    request_id,
                    Some(index),
                )?);
            }
            let done = stop(&response);
            responses.push(response);
            if done {
                break;
            }
        }
        if !drafts.is_empty() {
            self.audit_all(drafts).await?;
        }
        Ok(responses)
    }

    /// Decides a proxied request ([`AppState::forward_decision`]) and records the decision
    /// before it is answered. `proxy` names the integration (`nginx`, `envoy-grpc`, ...).
    pub async fn forward_decision_audited(
        &self,
        query: &ForwardQuery<'_>,
        proxy: &str,
    ) -> Result<ForwardOutcome, ApiError> {
        let (outcome, facts) = self.forward_decision_with_facts(query);
        let (actor, result) = match &outcome {
            ForwardOutcome::Allow(caller) => (caller.subject.qualified(), Outcome::Success),
            ForwardOutcome::Deny { reason } => (
                facts
                    .caller
                    .as_ref()
                    .map_or_else(|| ANONYMOUS.to_owned(), |c| c.subject.qualified()),
                Outcome::denied(reason.clone()),
            ),
            ForwardOutcome::Unauthenticated { invalid } => (
                ANONYMOUS.to_owned(),
                Outcome::denied(if *invalid {
                    "invalid credentials"
                } else {
                    "no credentials"
                }),
            ),
        };
        let allowed = matches!(outcome, ForwardOutcome::Allow(_));
        if !self.records_decision(allowed) {
            return Ok(outcome);
        }

        let mut details = Map::new();
        details.insert("api".into(), json!(format!("forward_auth.{proxy}")));
        details.insert("method".into(), json!(query.method));
        details.insert("host".into(), json!(query.host));
        if let Some(path) = &facts.path {
            details.insert("path".into(), json!(path));
        }
        if let Some(action) = &facts.action {
            details.insert("action".into(), json!(action));
        }
        if let Some(ip) = query.client_ip {
            details.insert("ip".into(), json!(ip.to_string()));
        }
        // A credential that did not authenticate is kept only as its HMAC, so that records of
        // a leaked or guessed token can be found with `maos audit hash`.
        if let ForwardOutcome::Unauthenticated { invalid: true } = outcome
            && let Some(presented) = query.credentials.authorization
        {
            let token = presented
                .strip_prefix("Bearer ")
                .unwrap_or(presented)
                .trim();
            details.insert("credential".into(), json!(self.audit_sink.redact(token)));
        }
        let draft = draft(
            &actor,
            "authz.forward",
            facts.resource.unwrap_or_default(),
            result,
            None,
            details,
        )
        .map_err(|e| ApiError::internal("audit record", e))?;
        self.audit(draft).await?;
        Ok(outcome)
    }

    /// Stores several records as one group; refused like [`AppState::audit`].
    pub async fn audit_all(&self, drafts: Vec<RecordDraft>) -> Result<(), ApiError> {
        self.audit_sink
            .append_all(drafts)
            .await
            .map_err(|error| audit_unavailable(&error))
    }

    /// Records `change`, then applies it; a failure to apply is recorded too (best effort: the
    /// client hears of the failure either way).
    pub async fn audited_change<T>(
        &self,
        change: AdminChange,
        apply: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        self.audit(change.draft(Outcome::Success)?).await?;
        match apply.await {
            Ok(value) => Ok(value),
            Err(error) => {
                let failed = change.draft(Outcome::failure(error.code))?;
                if self.audit(failed).await.is_err() {
                    tracing::error!(
                        audit.action = change.action,
                        audit.resource = %change.resource,
                        "audit.failure_unrecorded"
                    );
                }
                Err(error)
            }
        }
    }
}

/// The 503 of an operation refused because its record could not be written.
pub fn audit_unavailable(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "audit.append_failed");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        "the audit log cannot be written; the operation was refused",
    )
}
