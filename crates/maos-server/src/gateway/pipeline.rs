//! One request through the gateway, step by step:
//!
//! firewall → rate limits (client, route) → authentication → rate limit (principal) → path
//! normalisation and rule → body size → intrusion detection → verification context →
//! authorization → content type and schema → upstream → security headers and redaction.
//!
//! Every refusal answers `{"error":{"code","message"}}` and is a [`SecurityEvent`] with the
//! reason. Detection runs before authorization so that its anomaly score can raise the risk the
//! policy sees.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use maos_core::event::{SecurityEvent, SecurityEventType, Severity, Timestamp};
use maos_core::{Action, Subject};
use maos_gateway::context::{Inputs, Reputation, Verification};
use maos_gateway::detect::{Inspected, Mode, inspect};
use maos_gateway::firewall::Refusal as FirewallRefusal;
use maos_gateway::validate::{BodyBudget, Invalid, check_content_type, check_declared_length};
use maos_gateway::{firewall, forwarded, path, redact};
use maos_policy::DecisionOptions;
use serde_json::{Map, Value, json};

use super::config::{AuthenticationMode, BlocklistedMode};
use super::{Listener, now_seconds, proxy};
use crate::auth::{AuthOutcome, Caller, Credentials};

pub type Body = BoxBody<Bytes, hyper::Error>;

/// What the connection tells about every request on it.
#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    /// The DER of the client certificate the TLS handshake verified.
    pub certificate: Option<Arc<Vec<u8>>>,
}

/// A refused request: the answer and the event.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    event: SecurityEventType,
    severity: Severity,
    /// Whether the client counts as suspicious afterwards.
    suspect: bool,
    headers: Vec<(header::HeaderName, String)>,
    details: Map<String, Value>,
}

impl Refusal {
    fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        event: SecurityEventType,
    ) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            event,
            severity: Severity::Low,
            suspect: false,
            headers: Vec::new(),
            details: Map::new(),
        }
    }

    fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    fn suspect(mut self) -> Self {
        self.suspect = true;
        self
    }

    fn header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn detail(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    fn invalid(invalid: &Invalid) -> Self {
        let status = StatusCode::from_u16(invalid.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Refusal::new(
            status,
            invalid.code(),
            invalid.to_string(),
            SecurityEventType::PolicyViolation,
        )
    }
}

/// Facts about the request gathered so far, for events.
#[derive(Debug, Default)]
struct Facts {
    client_ip: Option<IpAddr>,
    principal: Option<String>,
    resource: Option<String>,
    method: String,
    path: String,
}

/// Serves one request; never fails (refusals are responses).
pub async fn handle(
    listener: Arc<Listener>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let mut facts = Facts {
        method: request.method().as_str().to_owned(),
        path: request
            .uri()
            .path_and_query()
            .map_or_else(String::new, |pq| pq.as_str().chars().take(512).collect()),
        ..Facts::default()
    };
    let response = match pass(&listener, &connection, request, &mut facts).await {
        Ok(response) => response,
        Err(refusal) => listener.refuse(refusal, &facts),
    };
    Ok(response)
}

/// The pipeline proper.
async fn pass(
    listener: &Listener,
    connection: &Connection,
    request: Request<Incoming>,
    facts: &mut Facts,
) -> Result<Response<Body>, Refusal> {
    let shared = &listener.shared;
    let route = &listener.route;
    let now = now_seconds();
    let (parts, body) = request.into_parts();

    // The client: the peer, or from a trusted proxy the address it forwarded.
    let forwarded_for = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let client_ip = forwarded::client_ip(
        connection.peer.ip(),
        forwarded_for,
        &shared.config.trusted_proxies,
    )
    .map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_forwarded_for",
            error.to_string(),
            SecurityEventType::SuspiciousActivity,
        )
    })?;
    facts.client_ip = Some(client_ip);

    // Firewall: the dynamic blocklist, then the route's static rules.
    let mut reputation = if shared.is_suspect(client_ip, now) {
        Reputation::Suspicious
    } else {
        Reputation::Clean
    };
    let blocklist = listener.state.blocklist.load();
    match firewall::check(&listener.firewall, &blocklist, client_ip, now) {
        Ok(()) => {}
        Err(FirewallRefusal::Blocked { .. }) if route.blocklisted == BlocklistedMode::Score => {
            reputation = Reputation::Blocklisted;
            listener
                .firewall
                .check(client_ip)
                .map_err(firewall_refusal)?;
        }
        Err(refusal) => return Err(firewall_refusal(refusal)),
    }

    // Rate limits that need no identity.
    listener
        .limits
        .check_client(client_ip)
        .map_err(rate_limited)?;

    // Authentication.
    let mut authorizations = parts.headers.get_all(header::AUTHORIZATION).iter();
    let authorization = authorizations.next();
    if authorizations.next().is_some() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "duplicate_authorization",
            "more than one Authorization header",
            SecurityEventType::SuspiciousActivity,
        )
        .suspect());
    }
    let credentials = Credentials {
        authorization: authorization.and_then(|v| v.to_str().ok()),
        client_certificate: connection.certificate.as_deref().map(Vec::as_slice),
    };
    let realm = &listener.state.config.forward_auth.realm;
    let caller = match listener.state.authenticator.authenticate(&credentials) {
        AuthOutcome::Authenticated(caller) => caller,
        AuthOutcome::Missing if route.authentication == AuthenticationMode::Optional => {
            Arc::new(Caller {
                subject: Subject::new("anonymous", "anonymous"),
                roles: Vec::new(),
                credential: String::new(),
            })
        }
        outcome => {
            let invalid = outcome == AuthOutcome::Invalid;
            let challenge = if invalid {
                format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
            } else {
                format!("Bearer realm=\"{realm}\"")
            };
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                if invalid {
                    "the credentials are invalid, expired or revoked"
                } else {
                    "credentials are required"
                },
                SecurityEventType::AuthenticationFailure,
            )
            .header(header::WWW_AUTHENTICATE, challenge));
        }
    };
    let principal = caller.subject.qualified();
    facts.principal = Some(principal.clone());
    listener
        .limits
        .check_principal(&principal)
        .map_err(rate_limited)?;

    // The path that is authorized is the path that is forwarded.
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let Some(normal_path) = path::normalise(target) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "ambiguous_path",
            "the path is ambiguous (encoded slash, dot segment, `;`, `\\`, `//` or a bad escape)",
            SecurityEventType::IntrusionAttempt,
        )
        .severity(Severity::Medium)
        .suspect());
    };
    facts.path = normal_path.clone();
    let Some((rule, captures)) = listener.resolve(parts.method.as_str(), &normal_path) else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "no_route",
            "no rule of this gateway covers the request",
            SecurityEventType::AuthorizationFailure,
        ));
    };
    let mut resource = rule.resource.render(&captures);
    facts.resource = Some(resource.qualified());

    // The body, bounded: a declared length over the limit is refused unread, a chunked body
    // as soon as it passes the limit.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    check_declared_length(route.max_body_bytes, declared).map_err(|e| Refusal::invalid(&e))?;
    let body = read_body(body, route.max_body_bytes, body_timeout(listener)).await?;

    // Intrusion detection.
    let mut anomaly_score = 0;
    if route.detection.mode != Mode::Off {
        let media_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(maos_gateway::validate::media_type);
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let mut report = inspect(&Inspected {
            target,
            headers,
            body: (!body.is_empty()).then_some(body.as_ref()),
            media_type: media_type.as_deref(),
        });
        if listener
            .anomaly
            .as_ref()
            .is_some_and(|watch| watch.exceeded(client_ip))
        {
            report.add_rate_anomaly("over the route's anomaly rate");
        }
        anomaly_score = report.score;
        if report.is_intrusion(route.detection.threshold) {
            let findings = serde_json::to_value(&report.findings).unwrap_or_default();
            let refusal = Refusal::new(
                StatusCode::FORBIDDEN,
                "intrusion_detected",
                report.summary(),
                SecurityEventType::IntrusionAttempt,
            )
            .severity(Severity::High)
            .suspect()
            .detail("anomaly_score", json!(report.score))
            .detail("findings", findings);
            if route.detection.mode == Mode::Block {
                shared.record_denial(&principal, now);
                return Err(refusal);
            }
            // Detect-only: report, remember the client, and go on.
            listener.emit(&refusal, facts, "detected");
            shared.suspect(client_ip, now);
        }
    }

    // Continuous verification: what the policy sees under `context`.
    let anonymous = caller.subject.kind == "anonymous";
    let behavior = if anonymous {
        maos_gateway::context::Behavior::default()
    } else {
        shared.observe(&principal, client_ip, now)
    };
    let verification = Verification::assess(
        &Inputs {
            zone: shared.zones.zone(client_ip),
            reputation,
            device_trusted: (!anonymous).then_some(connection.certificate.is_some()),
            behavior,
            anomaly_score,
        },
        &shared.config.risk,
    );
    if verification.score >= shared.high_risk_score() {
        let high = Refusal::new(
            StatusCode::OK,
            "high_risk",
            format!(
                "risk score {} ({})",
                verification.score,
                verification.signals.join(", ")
            ),
            SecurityEventType::SuspiciousActivity,
        )
        .severity(Severity::Medium)
        .detail(
            "risk",
            json!({"score": verification.score, "signals": verification.signals}),
        );
        listener.emit(&high, facts, "observed");
    }
    let mut context = Map::new();
    context.insert("method".into(), json!(parts.method.as_str()));
    context.insert("path".into(), json!(normal_path));
    context.insert("ip".into(), json!(client_ip.to_string()));
    context.insert(
        "proto".into(),
        json!(if listener.terminator.is_tls() {
            "https"
        } else {
            "http"
        }),
    );
    context.insert("route".into(), json!(route.name));
    // Watched by an `increase_monitoring` response: policies may hold the client to stricter
    // rules (lower risk thresholds, fewer resources) while it lasts.
    let watched = listener.state.responder.watched(
        Some(client_ip),
        Some(&principal),
        Some(&resource.qualified()),
    );
    if !watched.is_empty() {
        context.insert(
            "monitoring".into(),
            json!({"level": "elevated", "targets": watched}),
        );
    }
    for (key, value) in verification.context() {
        context.insert(key.into(), value);
    }

    // Authorization by the engine.
    resource
        .properties
        .insert("path".into(), json!(normal_path));
    let request = maos_core::Request {
        subject: caller.subject.clone(),
        resource,
        action: Action::new(rule.action.as_str()),
        context,
    };
    let options = DecisionOptions {
        extra_roles: caller.roles.clone(),
        explain: false,
    };
    let decision = listener.state.decide(request, &options);
    if !decision.decision {
        shared.record_denial(&principal, now);
        let reason = decision
            .reasons
            .first()
            .cloned()
            .unwrap_or_else(|| "denied".into());
        let step_up = decision
            .obligations
            .iter()
            .any(|o| o.id == "step_up" || o.id == "mfa");
        let risk = json!({"score": verification.score, "signals": verification.signals});
        if step_up {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "step_up_required",
                format!("a fresh multi-factor authentication is required: {reason}"),
                SecurityEventType::AuthorizationFailure,
            )
            .severity(Severity::Medium)
            .header(
                header::WWW_AUTHENTICATE,
                format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_user_authentication\", \
                     error_description=\"step-up required\", max_age=\"0\""
                ),
            )
            .detail("risk", risk));
        }
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            reason,
            SecurityEventType::AuthorizationFailure,
        )
        .detail("risk", risk));
    }

    // A watched client, principal or resource (an `increase_monitoring` response): the
    // request is logged in full.
    if let Some(monitor) = decision.obligations.iter().find(|o| o.id == "monitor") {
        listener.log_monitored(&parts, facts, target, body.len(), &monitor.params);
    }

    // Input validation of what the rule accepts.
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let accepted = rule.content_types.as_ref().unwrap_or(&route.content_types);
    check_content_type(accepted, content_type, !body.is_empty())
        .map_err(|e| Refusal::invalid(&e))?;
    if let Some(schema) = &rule.schema {
        schema.check(&body).map_err(|e| Refusal::invalid(&e))?;
    }

    // Upstream, with the normalised path and the original query.
    let mut upstream_target = path::encode(&normal_path);
    if let Some(query) = path::query(target) {
        upstream_target.push('?');
        upstream_target.push_str(query);
    }
    let identity = identity_headers(&caller, verification.score);
    let proto = if listener.terminator.is_tls() {
        "https"
    } else {
        "http"
    };
    let mut upstream_request = Request::new(Full::new(body));
    *upstream_request.method_mut() = parts.method.clone();
    *upstream_request.uri_mut() = listener
        .upstream
        .uri(&upstream_target)
        .map_err(|e| bad_gateway(&e.to_string()))?;
    *upstream_request.headers_mut() =
        proxy::upstream_headers(parts.headers, client_ip, proto, &identity);
    let timeout = Duration::from_secs(route.upstream_timeout_seconds.max(1));
    let response = tokio::time::timeout(timeout, listener.client.request(upstream_request))
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the upstream did not answer in time",
                SecurityEventType::SuspiciousActivity,
            )
        })?
        .map_err(|e| bad_gateway(&e.to_string()))?;

    finish(listener, response).await
}

/// The upstream's response with the route's headers applied and named JSON fields redacted.
async fn finish(
    listener: &Listener,
    response: Response<Incoming>,
) -> Result<Response<Body>, Refusal> {
    let route = &listener.route;
    let (mut parts, body) = response.into_parts();
    proxy::strip_hop_by_hop(&mut parts.headers);
    route
        .headers
        .apply(&mut parts.headers, listener.terminator.is_tls());
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(maos_gateway::validate::media_type)
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
    if route.redact.is_empty() || !is_json {
        return Ok(Response::from_parts(parts, body.boxed()));
    }
    // Redaction needs the whole document; one too large to hold is refused, not leaked.
    let collected = Limited::new(body, MAX_REDACTED_BODY)
        .collect()
        .await
        .map_err(|_| bad_gateway("the upstream's JSON response is too large to redact"))?
        .to_bytes();
    let bytes = match redact::redact_body(&collected, &route.redact) {
        Some(redacted) => Bytes::from(redacted),
        None => collected,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, full(bytes)))
}

/// The largest JSON response redaction holds in memory.
const MAX_REDACTED_BODY: usize = 8 * 1024 * 1024;

fn body_timeout(listener: &Listener) -> Duration {
    Duration::from_secs(listener.state.config.server.body_timeout_seconds.max(1))
}

async fn read_body(body: Incoming, limit: u64, timeout: Duration) -> Result<Bytes, Refusal> {
    let read = async {
        let mut budget = BodyBudget::new(limit);
        let mut body = body;
        let mut buffer = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("the request body could not be read: {e}"),
                    SecurityEventType::SuspiciousActivity,
                )
            })?;
            if let Ok(data) = frame.into_data() {
                budget.take(data.len()).map_err(|e| Refusal::invalid(&e))?;
                buffer.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buffer))
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive within the configured time",
            SecurityEventType::SuspiciousActivity,
        )
    })?
}

fn firewall_refusal(refusal: FirewallRefusal) -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "firewall_denied",
        refusal.to_string(),
        SecurityEventType::AuthorizationFailure,
    )
    .severity(Severity::Medium)
}

fn rate_limited(limited: maos_gateway::ratelimit::Limited) -> Refusal {
    Refusal::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests ({} limit)", limited.scope.as_str()),
        SecurityEventType::SuspiciousActivity,
    )
    .suspect()
    .header(header::RETRY_AFTER, limited.retry_after.to_string())
    .detail("limit", json!(limited.scope.as_str()))
}

fn bad_gateway(detail: &str) -> Refusal {
    tracing::warn!(error = %detail, "gateway.upstream_failed");
    Refusal::new(
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        "the upstream service failed",
        SecurityEventType::SuspiciousActivity,
    )
}

/// Identity headers for the upstream.
fn identity_headers(caller: &Caller, risk: u32) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&'static str, String)> =
        crate::routes::forward_auth::identity_headers(caller).into();
    headers.push(("x-maos-risk-score", risk.to_string()));
    headers
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

impl Listener {
    /// Answers a refusal, emits its event and remembers the client when it misbehaved.
    fn refuse(&self, refusal: Refusal, facts: &Facts) -> Response<Body> {
        let now = now_seconds();
        if refusal.suspect
            && let Some(ip) = facts.client_ip
        {
            self.shared.suspect(ip, now);
        }
        self.emit(&refusal, facts, "refused");

        let body = json!({"error": {"code": refusal.code, "message": refusal.message}});
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = refusal.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &refusal.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), value);
            }
        }
        self.route.headers.apply(headers, self.terminator.is_tls());
        response
    }

    /// The full record of a request whose client, principal or resource is watched: every
    /// header (credentials and cookies as their length only), the target with its query, the
    /// body's size; as a security event and a log line.
    fn log_monitored(
        &self,
        parts: &http::request::Parts,
        facts: &Facts,
        target: &str,
        body_bytes: usize,
        params: &Map<String, Value>,
    ) {
        let headers: Map<String, Value> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = match name.as_str() {
                    "authorization" | "proxy-authorization" | "cookie" | "x-api-key" => {
                        format!("[redacted, {} bytes]", value.len())
                    }
                    _ => String::from_utf8_lossy(value.as_bytes()).into_owned(),
                };
                (name.as_str().to_owned(), json!(shown))
            })
            .collect();
        let mut event = SecurityEvent::new(
            event_id(),
            Timestamp::now(),
            "gateway",
            SecurityEventType::DataAccess,
            Severity::Info,
        );
        event.principal = facts.principal.clone();
        event.source_ip = facts.client_ip;
        event.resource = facts.resource.clone();
        event.tags.push("maos.monitored".into());
        let details = &mut event.details;
        details.insert("gateway.route".into(), json!(self.route.name));
        details.insert("gateway.outcome".into(), json!("monitored"));
        details.insert("http.request.method".into(), json!(facts.method));
        details.insert("url.path".into(), json!(facts.path));
        details.insert("url.original".into(), json!(target));
        details.insert("http.version".into(), json!(format!("{:?}", parts.version)));
        details.insert(
            "http.request.headers".into(),
            Value::Object(headers.clone()),
        );
        details.insert("http.request.body.bytes".into(), json!(body_bytes));
        details.insert("monitoring".into(), Value::Object(params.clone()));
        tracing::info!(
            gateway.route = %self.route.name,
            client.ip = ?facts.client_ip,
            principal.id = ?facts.principal,
            resource = ?facts.resource,
            method = %facts.method,
            target,
            headers = %serde_json::Value::Object(headers),
            body_bytes,
            "gateway.request.monitored"
        );
        self.state.emit(event);
    }

    /// The security event of a refusal (or of a finding that did not refuse).
    fn emit(&self, refusal: &Refusal, facts: &Facts, outcome: &str) {
        let mut event = SecurityEvent::new(
            event_id(),
            Timestamp::now(),
            "gateway",
            refusal.event,
            refusal.severity,
        );
        event.principal = facts.principal.clone();
        event.source_ip = facts.client_ip;
        event.resource = facts.resource.clone();
        let details = &mut event.details;
        details.insert("reason".into(), json!(refusal.code));
        details.insert("message".into(), json!(refusal.message));
        details.insert("gateway.route".into(), json!(self.route.name));
        details.insert("gateway.outcome".into(), json!(outcome));
        details.insert("http.request.method".into(), json!(facts.method));
        details.insert("url.path".into(), json!(facts.path));
        details.insert(
            "http.response.status_code".into(),
            json!(refusal.status.as_u16()),
        );
        for (key, value) in &refusal.details {
            details.insert(key.clone(), value.clone());
        }
        tracing::info!(
            gateway.route = %self.route.name,
            reason = refusal.code,
            status = refusal.status.as_u16(),
            client.ip = ?facts.client_ip,
            principal.id = ?facts.principal,
            outcome,
            "gateway.refused"
        );
        self.state.emit(event);
    }
}

/// A random UUID (version 4) for an event.
fn event_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: a time-based id is still unique enough for an event.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_be_bytes();
    }
    if let Some(b) = bytes.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = bytes.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}
