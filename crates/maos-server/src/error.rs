//! The one place where failures become HTTP responses: `{"error":{"code","message"}}`.
//!
//! Client mistakes are 4xx with a stable `code`; anything else is a 500 whose detail goes to the
//! log only.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maos_store::StoreError;
use serde_json::{Value, json};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Rarely present, so kept out of line to keep `Result<_, ApiError>` small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    details: Option<Value>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.extra.get_or_insert_with(Box::default).details = Some(details);
        self
    }

    /// The `WWW-Authenticate` challenge of a 401.
    pub fn challenge(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.challenge.as_deref())
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A 401 with a bearer challenge; `invalid` marks a presented but unusable token.
    pub fn unauthenticated(realm: &str, invalid: bool) -> Self {
        let (message, challenge) = if invalid {
            (
                "the bearer token is invalid, expired or revoked",
                format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
            )
        } else {
            (
                "a bearer token is required",
                format!("Bearer realm=\"{realm}\""),
            )
        };
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message);
        error.extra.get_or_insert_with(Box::default).challenge = Some(challenge);
        error
    }

    /// A server-side failure: the client learns nothing about it, the log learns everything.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, context, "server.internal_error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|e| *e).unwrap_or_default();
        let mut error = json!({"code": self.code, "message": self.message});
        // A 429 whose details say when to come back says it in `Retry-After` too.
        let retry_after = extra
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after"))
            .and_then(Value::as_u64)
            .filter(|_| self.status == StatusCode::TOO_MANY_REQUESTS);
        if let (Some(details), Some(object)) = (extra.details, error.as_object_mut()) {
            object.insert("details".into(), details);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = extra.challenge
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what, id } => {
                ApiError::not_found(format!("{what} `{id}` not found"))
            }
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::NothingToRollBack => {
                ApiError::conflict("nothing to roll back to: no earlier activation")
            }
            other => ApiError::internal("store", other),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if is_body_timeout(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive within the configured time",
            )
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the configured limit",
            )
        } else {
            ApiError::bad_request("bad_body", rejection.body_text())
        }
    }
}

/// Whether reading the body stopped because `server.body_timeout_seconds` ran out.
fn is_body_timeout(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("bad_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("bad_query", rejection.body_text())
    }
}

/// Answer for paths no route serves.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Answer for a route that exists without this method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept this method",
    )
}
