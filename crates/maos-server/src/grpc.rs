//! Envoy ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`), on its own port.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
    HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::auth::Credentials;
use crate::routes::forward_auth::{ForwardOutcome, ForwardQuery, identity_headers};
use crate::state::AppState;

/// The ext_authz service over the shared state.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    state: Arc<AppState>,
}

impl ExtAuthz {
    pub fn service(state: Arc<AppState>) -> AuthorizationServer<ExtAuthz> {
        AuthorizationServer::new(ExtAuthz { state })
    }
}

fn denied(
    code: HttpStatusCode,
    status: Status,
    body: String,
    challenge: Option<String>,
) -> CheckResponse {
    let mut http = DeniedHttpResponseBuilder::new();
    http.set_http_status(code);
    http.add_header(
        "content-type",
        "application/json",
        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
        false,
    );
    if let Some(challenge) = challenge {
        http.add_header(
            "www-authenticate",
            challenge,
            Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
            false,
        );
    }
    http.set_body(body);
    let mut response = CheckResponse::with_status(status);
    response.set_http_response(http);
    response
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let state = &self.state;
        let peer = request.remote_addr();
        if !peer.is_some_and(|p: SocketAddr| state.is_trusted_proxy(p.ip())) {
            tracing::warn!(peer = ?peer, "ext_authz.untrusted_peer");
            return Ok(Response::new(denied(
                HttpStatusCode::Forbidden,
                Status::permission_denied("untrusted peer"),
                json!({"error": {"code": "forbidden", "message": "untrusted peer"}}).to_string(),
                None,
            )));
        }

        let check = request.into_inner();
        let Some(http) = check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
        else {
            return Err(Status::invalid_argument(
                "no attributes.request.http in the check request",
            ));
        };
        let client_ip: Option<IpAddr> =
            envoy_types::ext_authz::v3::CheckRequestExt::get_client_address(&check)
                .and_then(|a| a.parse().ok());
        let authorization = http.headers.get("authorization").map(String::as_str);
        let host = if http.host.is_empty() {
            http.headers.get(":authority").map_or("", String::as_str)
        } else {
            http.host.as_str()
        };
        let query = ForwardQuery {
            method: &http.method,
            host,
            uri: &http.path,
            proto: if http.scheme.is_empty() {
                "http"
            } else {
                &http.scheme
            },
            client_ip,
            credentials: Credentials {
                authorization,
                ..Credentials::default()
            },
        };
        let outcome = match state.forward_decision_audited(&query, "envoy-grpc").await {
            Ok(outcome) => outcome,
            Err(error) => {
                return Ok(Response::new(denied(
                    HttpStatusCode::ServiceUnavailable,
                    Status::unavailable(error.message.clone()),
                    json!({"error": {"code": error.code, "message": error.message}}).to_string(),
                    None,
                )));
            }
        };
        let response = match outcome {
            ForwardOutcome::Allow(caller) => {
                let mut ok = OkHttpResponseBuilder::new();
                for (name, value) in identity_headers(&caller) {
                    ok.add_header(
                        name,
                        value,
                        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                        false,
                    );
                }
                let mut response = CheckResponse::with_status(Status::ok("allowed"));
                response.set_http_response(ok);
                response
            }
            ForwardOutcome::Unauthenticated { invalid } => {
                let error = crate::error::ApiError::unauthenticated(
                    &state.config.forward_auth.realm,
                    invalid,
                );
                denied(
                    HttpStatusCode::Unauthorized,
                    Status::unauthenticated(error.message.clone()),
                    json!({"error": {"code": error.code, "message": error.message}}).to_string(),
                    error.challenge().map(str::to_owned),
                )
            }
            ForwardOutcome::Deny { reason } => denied(
                HttpStatusCode::Forbidden,
                Status::permission_denied(reason.clone()),
                json!({"error": {"code": "forbidden", "message": reason}}).to_string(),
                None,
            ),
        };
        Ok(Response::new(response))
    }
}
