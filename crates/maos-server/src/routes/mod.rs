//! The HTTP routes.

pub mod admin;
pub mod audit;
pub mod decisions;
pub mod forward_auth;
pub mod identity;
pub mod keys;
pub mod ops;
pub mod secrets;
pub mod siem;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};

use crate::auth::AuthOutcome;
use crate::error::{self, ApiError};
use crate::state::AppState;

/// The whole HTTP API.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.server.max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(state.config.server.body_timeout_seconds);
    // Everything that needs a caller: credentials are checked before the body is read, so
    // nobody unauthenticated can make the server parse a body.
    let authenticated = Router::new()
        .route("/v1/authorize", post(decisions::authorize))
        .route("/v1/authorize/batch", post(decisions::authorize_batch))
        .route("/access/v1/evaluation", post(decisions::evaluation))
        .route("/access/v1/evaluations", post(decisions::evaluations))
        .route("/v1/policy", get(admin::active_policy))
        .route(
            "/v1/policy/versions",
            get(admin::list_versions).post(admin::upload_version),
        )
        .route("/v1/policy/versions/{id}", get(admin::get_version))
        .route(
            "/v1/policy/versions/{id}/activate",
            post(admin::activate_version),
        )
        .route("/v1/policy/rollback", post(admin::rollback))
        .route("/v1/policy/roles", get(admin::list_roles))
        .route(
            "/v1/policy/roles/{name}",
            get(admin::get_role)
                .put(admin::put_role)
                .delete(admin::delete_role),
        )
        .route("/v1/policy/bindings", get(admin::list_bindings))
        .route(
            "/v1/policy/bindings/{subject}",
            get(admin::get_binding)
                .put(admin::put_binding)
                .delete(admin::delete_binding),
        )
        .route("/v1/policy/policies", get(admin::list_policies))
        .route(
            "/v1/policy/policies/{id}",
            get(admin::get_policy)
                .put(admin::put_policy)
                .delete(admin::delete_policy),
        )
        .route("/v1/resources", get(admin::list_resources))
        .route(
            "/v1/resources/{type}/{*id}",
            get(admin::get_resource)
                .put(admin::put_resource)
                .delete(admin::delete_resource),
        )
        .route(
            "/v1/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route(
            "/v1/tokens/{id}",
            axum::routing::delete(admin::revoke_token),
        )
        .route("/v1/audit", get(audit::list_records))
        .route(
            "/v1/principals",
            get(identity::list_principals).post(identity::create_principal),
        )
        .route(
            "/v1/principals/{id}",
            get(identity::get_principal)
                .patch(identity::update_principal)
                .delete(identity::delete_principal),
        )
        .route(
            "/v1/principals/{id}/disable",
            post(identity::disable_principal),
        )
        .route(
            "/v1/principals/{id}/enable",
            post(identity::enable_principal),
        )
        .route("/v1/principals/{id}/password", put(identity::set_password))
        .route("/v1/principals/{id}/roles", put(identity::put_roles))
        .route(
            "/v1/principals/{id}/mfa",
            post(identity::enroll_mfa).delete(identity::delete_mfa),
        )
        .route(
            "/v1/principals/{id}/mfa/confirm",
            post(identity::confirm_mfa),
        )
        .route(
            "/v1/principals/{id}/mfa/recovery-codes",
            post(identity::new_recovery_codes),
        )
        .route(
            "/v1/principals/{id}/apikeys",
            get(identity::list_api_keys).post(identity::create_api_key_route),
        )
        .route(
            "/v1/principals/{id}/apikeys/{key}",
            axum::routing::delete(identity::revoke_api_key),
        )
        .route(
            "/v1/principals/{id}/apikeys/{key}/rotate",
            post(identity::rotate_api_key),
        )
        .route(
            "/v1/identity/signing-keys",
            get(identity::list_signing_keys),
        )
        .route(
            "/v1/identity/signing-keys/rotate",
            post(identity::rotate_signing_key),
        )
        .route("/v1/keys", get(keys::list_keys).post(keys::create_key))
        .route("/v1/keys/{name}", get(keys::get_key))
        .route("/v1/keys/{name}/rotate", post(keys::rotate))
        .route("/v1/keys/{name}/config", post(keys::configure))
        .route("/v1/keys/{name}/enable", post(keys::enable))
        .route("/v1/keys/{name}/disable", post(keys::disable))
        .route(
            "/v1/keys/{name}/schedule-deletion",
            post(keys::schedule_deletion),
        )
        .route(
            "/v1/keys/{name}/cancel-deletion",
            post(keys::cancel_deletion),
        )
        .route("/v1/keys/{name}/revoke", post(keys::revoke))
        .route(
            "/v1/keys/{name}/versions/{version}/revoke",
            post(keys::revoke_version),
        )
        .route("/v1/keys/{name}/export", post(keys::export))
        .route("/v1/keys/{name}/encrypt", post(keys::encrypt))
        .route("/v1/keys/{name}/decrypt", post(keys::decrypt))
        .route("/v1/keys/{name}/rewrap", post(keys::rewrap))
        .route("/v1/keys/{name}/datakey", post(keys::datakey))
        .route("/v1/keys/{name}/derive", post(keys::derive))
        .route("/v1/keys/{name}/sign", post(keys::sign))
        .route("/v1/keys/{name}/verify", post(keys::verify))
        .route("/v1/keys/{name}/hmac", post(keys::hmac))
        .route("/v1/keys/{name}/verify-hmac", post(keys::verify_hmac))
        .route("/v1/keys/{name}/encrypt/batch", post(keys::encrypt_batch))
        .route("/v1/keys/{name}/decrypt/batch", post(keys::decrypt_batch))
        .route("/v1/keys/{name}/rewrap/batch", post(keys::rewrap_batch))
        .route("/v1/keys/{name}/sign/batch", post(keys::sign_batch))
        .route("/v1/keys/{name}/verify/batch", post(keys::verify_batch))
        .route("/v1/keys/{name}/hmac/batch", post(keys::hmac_batch))
        .route(
            "/v1/keys/{name}/verify-hmac/batch",
            post(keys::verify_hmac_batch),
        )
        .route(
            "/v1/secrets-rewrap",
            get(secrets::rewrap_progress).post(secrets::start_rewrap),
        )
        .route(
            "/v1/secrets/{*path}",
            get(secrets::get_secret)
                .put(secrets::put_secret)
                .delete(secrets::delete_secret),
        )
        .route(
            "/v1/blocklist",
            get(crate::gateway::admin::list).post(crate::gateway::admin::add),
        )
        .route(
            "/v1/blocklist/{*network}",
            axum::routing::delete(crate::gateway::admin::remove),
        )
        .route(
            "/v1/events",
            get(siem::search_events).post(siem::ingest_events),
        )
        .route("/v1/events/export", get(siem::export_events))
        .route("/v1/alerts", get(siem::list_alerts))
        .route("/v1/alerts/{id}", get(siem::get_alert))
        .route("/v1/alerts/{id}/acknowledge", post(siem::acknowledge_alert))
        .route(
            "/v1/response/actions",
            get(crate::response::routes::list).post(crate::response::routes::create),
        )
        .route(
            "/v1/response/actions/{id}",
            get(crate::response::routes::get).delete(crate::response::routes::undo),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate_first,
        ));
    Router::new()
        .merge(authenticated)
        .route("/v1/login", post(identity::login))
        .route("/v1/oauth/token", post(identity::oauth_token))
        .route("/v1/oauth/revoke", post(identity::oauth_revoke))
        .route("/.well-known/jwks.json", get(identity::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route(
            "/.well-known/authzen-configuration",
            get(decisions::authzen_configuration),
        )
        .route("/v1/forward-auth/nginx", any(forward_auth::nginx))
        .route("/v1/forward-auth/traefik", any(forward_auth::traefik))
        .route(forward_auth::ENVOY_PREFIX, any(forward_auth::envoy))
        // `{*path}` never matches an empty tail; the bare prefix with a slash is still a
        // forward-auth question (and answers 403 like any uncovered path).
        .route(
            &format!("{}/", forward_auth::ENVOY_PREFIX),
            any(forward_auth::envoy),
        )
        .route(
            &format!("{}/{{*path}}", forward_auth::ENVOY_PREFIX),
            any(forward_auth::envoy),
        )
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            crate::extract::refuse_declared_oversize,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .with_state(state)
}

/// Answers 401 before the handler (and its body extractor) runs when the request carries no
/// usable credentials; authorization stays with the handler, which knows what is asked.
async fn authenticate_first(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let credentials = crate::auth::Credentials {
        client_certificate: request
            .extensions()
            .get::<crate::tls::ClientCertificate>()
            .map(|c| c.der()),
        ..decisions::header_credentials(request.headers())
    };
    match state.authenticator.authenticate(&credentials) {
        AuthOutcome::Authenticated(_) => next.run(request).await,
        AuthOutcome::Missing => {
            ApiError::unauthenticated(&state.config.forward_auth.realm, false).into_response()
        }
        AuthOutcome::Invalid => {
            ApiError::unauthenticated(&state.config.forward_auth.realm, true).into_response()
        }
    }
}

async fn openapi() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi::document(),
    )
}
