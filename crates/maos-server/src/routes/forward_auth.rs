//! Forward authentication for reverse proxies: nginx `auth_request`, Traefik ForwardAuth, Envoy
//! ext_authz over HTTP (and, in `grpc.rs`, over gRPC).
//!
//! The proxy asks about the request it is about to forward. The answer is exactly 200 (allow,
//! with identity headers), 401 with `WWW-Authenticate` (no or bad credentials) or 403 (denied,
//! including requests no configured route covers). Headers describing the original request are
//! believed only from `forward_auth.trusted_proxies`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use maos_core::{Action, Request, Resource};
use maos_policy::DecisionOptions;
use serde_json::{Map, Value, json};

use maos_gateway::path::normalise as normalise_path;
pub use maos_gateway::route::{PathPattern, ResourceTemplate};

use crate::auth::{AuthOutcome, Caller, Credentials};
use crate::config::RouteConfig;
use crate::state::{AppState, decision_label};

/// The configured routes, in order.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<RouteConfig>,
}

impl RouteTable {
    pub fn new(routes: &[RouteConfig]) -> Self {
        Self {
            routes: routes.to_vec(),
        }
    }

    /// The resource and action of the first route matching the request.
    pub fn resolve(&self, method: &str, host: &str, path: &str) -> Option<(Resource, String)> {
        let host = strip_port(host);
        self.routes.iter().find_map(|route| {
            if route.method != "*" && !route.method.eq_ignore_ascii_case(method) {
                return None;
            }
            if !route.host.is_empty() && !route.host.eq_ignore_ascii_case(host) {
                return None;
            }
            let captures = route.path.matches(path)?;
            Some((route.resource.render(&captures), route.action.clone()))
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h.trim_start_matches('['));
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A method as the proxy reports it must be an uppercase HTTP token (`GET`, `POST`, ...).
fn valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// What a proxy asks about.
#[derive(Debug)]
pub struct ForwardQuery<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// Path and query as sent by the client.
    pub uri: &'a str,
    pub proto: &'a str,
    pub client_ip: Option<IpAddr>,
    pub credentials: Credentials<'a>,
}

/// The answer, before it is shaped for one proxy protocol.
#[derive(Debug)]
pub enum ForwardOutcome {
    Allow(Arc<Caller>),
    Unauthenticated { invalid: bool },
    Deny { reason: String },
}

/// What a forward-auth decision was about, for its audit record.
#[derive(Debug, Default)]
pub struct ForwardFacts {
    pub caller: Option<Arc<Caller>>,
    /// The path without query, once it was found unambiguous.
    pub path: Option<String>,
    /// `type:id` and action of the route that covered the request.
    pub resource: Option<String>,
    pub action: Option<String>,
}

impl AppState {
    /// Decides a proxied request: authenticate, map the route, ask the engine.
    pub fn forward_decision(&self, query: &ForwardQuery<'_>) -> ForwardOutcome {
        self.forward_decision_with_facts(query).0
    }

    /// [`Self::forward_decision`], and what the decision was about.
    pub fn forward_decision_with_facts(
        &self,
        query: &ForwardQuery<'_>,
    ) -> (ForwardOutcome, ForwardFacts) {
        let mut facts = ForwardFacts::default();
        let caller = match self.authenticator.authenticate(&query.credentials) {
            AuthOutcome::Authenticated(caller) => caller,
            AuthOutcome::Missing => {
                return (ForwardOutcome::Unauthenticated { invalid: false }, facts);
            }
            AuthOutcome::Invalid => {
                return (ForwardOutcome::Unauthenticated { invalid: true }, facts);
            }
        };
        facts.caller = Some(caller.clone());
        let deny = |reason: &str| ForwardOutcome::Deny {
            reason: reason.into(),
        };
        if !valid_method(query.method) {
            return (deny("missing or invalid method"), facts);
        }
        let Some(path) = normalise_path(query.uri) else {
            return (deny("ambiguous path"), facts);
        };
        facts.path = Some(path.clone());
        let Some((resource, action)) = self.routes.resolve(query.method, query.host, &path) else {
            return (deny("no route covers this request"), facts);
        };
        facts.resource = Some(resource.qualified());
        facts.action = Some(action.clone());

        let mut context = Map::new();
        context.insert("method".into(), Value::String(query.method.to_owned()));
        context.insert("path".into(), Value::String(path));
        context.insert("host".into(), Value::String(query.host.to_owned()));
        context.insert("proto".into(), Value::String(query.proto.to_owned()));
        if let Some(ip) = query.client_ip {
            context.insert("ip".into(), Value::String(ip.to_string()));
        }
        let request = Request {
            subject: caller.subject.clone(),
            resource,
            action: Action::new(action),
            context,
        };
        let options = DecisionOptions {
            extra_roles: caller.roles.clone(),
            explain: false,
        };
        let response = self.decide_as_caller(request, &options);
        tracing::debug!(
            principal.id = %caller.subject.qualified(),
            decision = decision_label(response.decision),
            "forward_auth.decided"
        );
        let outcome = if response.decision {
            ForwardOutcome::Allow(caller)
        } else {
            ForwardOutcome::Deny {
                reason: response
                    .reasons
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "denied".into()),
            }
        };
        (outcome, facts)
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.config
            .forward_auth
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&ip))
    }
}

/// The identity headers of an allowed request.
pub fn identity_headers(caller: &Caller) -> [(&'static str, String); 3] {
    [
        ("x-maos-subject", caller.subject.qualified()),
        ("x-maos-subject-type", caller.subject.kind.clone()),
        ("x-maos-subject-id", caller.subject.id.clone()),
    ]
}

fn outcome_response(state: &AppState, outcome: ForwardOutcome) -> Response {
    match outcome {
        ForwardOutcome::Allow(caller) => {
            let mut response = StatusCode::OK.into_response();
            for (name, value) in identity_headers(&caller) {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response
                        .headers_mut()
                        .insert(HeaderName::from_static(name), value);
                }
            }
            response
        }
        ForwardOutcome::Unauthenticated { invalid } => {
            crate::error::ApiError::unauthenticated(&state.config.forward_auth.realm, invalid)
                .into_response()
        }
        ForwardOutcome::Deny { reason } => {
            let body = json!({"error": {"code": "forbidden", "message": reason}}).to_string();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::FORBIDDEN;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

/// The single-valued headers that describe the original request. `X-Forwarded-For` is not
/// among them: its instances are one list, walked by [`client_ip`].
const SINGLE_VALUED: [&str; 8] = [
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "host",
];

/// A denial when one of the headers describing the original request comes twice: which copy a
/// proxy acted on is unknowable, so neither is believed (as with two `Authorization` headers).
fn repeated_header(headers: &HeaderMap) -> Option<ForwardOutcome> {
    let name = SINGLE_VALUED
        .iter()
        .find(|name| headers.get_all(**name).iter().nth(1).is_some())?;
    Some(ForwardOutcome::Deny {
        reason: format!("ambiguous request: `{name}` is given more than once"),
    })
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The client address when the peer is a trusted proxy. `X-Forwarded-For` (every instance,
/// comma-separated, in order) is walked from the right, skipping `trusted_proxies`: the first
/// untrusted address is the client (the leftmost entries are whatever the client sent); when all
/// are trusted, the leftmost. An entry that is not an address ends the walk with no address.
/// `X-Real-IP` is believed only without `X-Forwarded-For`; with neither, the peer.
fn client_ip(state: &AppState, headers: &HeaderMap, peer: IpAddr, trusted: bool) -> Option<IpAddr> {
    if !trusted {
        return Some(peer);
    }
    let mut forwarded = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return None;
        };
        forwarded.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()));
    }
    if headers.contains_key("x-forwarded-for") {
        let mut client = None;
        for entry in forwarded.iter().rev() {
            let ip: IpAddr = entry.parse().ok()?;
            client = Some(ip);
            if !state.is_trusted_proxy(ip) {
                break;
            }
        }
        return client;
    }
    match headers.get("x-real-ip") {
        Some(value) => value.to_str().ok().and_then(|v| v.trim().parse().ok()),
        None => Some(peer),
    }
}

/// Decides, records the decision, and shapes the answer; 503 when it cannot be recorded.
async fn audited_response(state: &AppState, query: &ForwardQuery<'_>, proxy: &str) -> Response {
    match state.forward_decision_audited(query, proxy).await {
        Ok(outcome) => outcome_response(state, outcome),
        Err(error) => error.into_response(),
    }
}

fn untrusted(state: &AppState, peer: SocketAddr) -> Response {
    tracing::warn!(peer = %peer, "forward_auth.untrusted_peer");
    outcome_response(
        state,
        ForwardOutcome::Deny {
            reason: "forwarded headers from an untrusted peer".into(),
        },
    )
}

/// nginx `auth_request`: the original request in `X-Original-Method` and `X-Original-URI`.
#[utoipa::path(get, path = "/v1/forward-auth/nginx", tag = "forward-auth",
    responses((status = 200, description = "allow; identity in `X-Maos-Subject*`"),
        (status = 401, description = "no or invalid credentials, with `WWW-Authenticate`"),
        (status = 403, description = "denied")))]
pub async fn nginx(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !state.is_trusted_proxy(peer.ip()) {
        return untrusted(&state, peer);
    }
    if let Some(refused) = repeated_header(&headers) {
        return outcome_response(&state, refused);
    }
    let Some(uri) = header_str(&headers, "x-original-uri") else {
        return outcome_response(
            &state,
            ForwardOutcome::Deny {
                reason: "no X-Original-URI header".into(),
            },
        );
    };
    let query = ForwardQuery {
        method: header_str(&headers, "x-original-method").unwrap_or_default(),
        host: header_str(&headers, "x-forwarded-host")
            .or_else(|| header_str(&headers, "host"))
            .unwrap_or_default(),
        uri,
        proto: header_str(&headers, "x-forwarded-proto").unwrap_or("http"),
        client_ip: client_ip(&state, &headers, peer.ip(), true),
        credentials: crate::routes::decisions::header_credentials(&headers),
    };
    audited_response(&state, &query, "nginx").await
}

/// Traefik ForwardAuth: `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`.
#[utoipa::path(get, path = "/v1/forward-auth/traefik", tag = "forward-auth",
    responses((status = 200, description = "allow; identity in `X-Maos-Subject*`"),
        (status = 401, description = "no or invalid credentials, with `WWW-Authenticate`"),
        (status = 403, description = "denied")))]
pub async fn traefik(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !state.is_trusted_proxy(peer.ip()) {
        return untrusted(&state, peer);
    }
    if let Some(refused) = repeated_header(&headers) {
        return outcome_response(&state, refused);
    }
    let Some(uri) = header_str(&headers, "x-forwarded-uri") else {
        return outcome_response(
            &state,
            ForwardOutcome::Deny {
                reason: "no X-Forwarded-Uri header".into(),
            },
        );
    };
    let query = ForwardQuery {
        method: header_str(&headers, "x-forwarded-method").unwrap_or_default(),
        host: header_str(&headers, "x-forwarded-host").unwrap_or_default(),
        uri,
        proto: header_str(&headers, "x-forwarded-proto").unwrap_or("http"),
        client_ip: client_ip(&state, &headers, peer.ip(), true),
        credentials: crate::routes::decisions::header_credentials(&headers),
    };
    audited_response(&state, &query, "traefik").await
}

/// The prefix under which Envoy's HTTP ext_authz appends the original path.
pub const ENVOY_PREFIX: &str = "/v1/forward-auth/envoy";

/// Envoy ext_authz over HTTP: the original method, and the original path after the prefix.
pub async fn envoy(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let trusted = state.is_trusted_proxy(peer.ip());
    if !trusted {
        return untrusted(&state, peer);
    }
    if let Some(refused) = repeated_header(&headers) {
        return outcome_response(&state, refused);
    }
    let full = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let original = full.strip_prefix(ENVOY_PREFIX).unwrap_or(full);
    let original = if original.is_empty() || original.starts_with('?') {
        format!("/{original}")
    } else {
        original.to_owned()
    };
    let query = ForwardQuery {
        method: method.as_str(),
        host: header_str(&headers, "host").unwrap_or_default(),
        uri: &original,
        proto: header_str(&headers, "x-forwarded-proto").unwrap_or("http"),
        client_ip: client_ip(&state, &headers, peer.ip(), trusted),
        credentials: crate::routes::decisions::header_credentials(&headers),
    };
    audited_response(&state, &query, "envoy").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str, resource: &str, action: &str) -> RouteConfig {
        toml::from_str(&format!(
            "method = \"{method}\"\npath = \"{path}\"\nresource = \"{resource}\"\naction = \"{action}\""
        ))
        .unwrap()
    }

    #[test]
    fn routes_map_method_and_path_to_resource_and_action() {
        let table = RouteTable::new(&[
            route("GET", "/docs/{id}", "document:{id}", "read"),
            route("*", "/files/{*path}", "file:{path}", "access"),
            route("DELETE", "/docs/{id}", "document:{id}", "delete"),
            route("GET", "/", "site:home", "view"),
        ]);
        let (resource, action) = table
            .resolve("GET", "example.com:8080", "/docs/42")
            .unwrap();
        assert_eq!(
            (resource.qualified().as_str(), action.as_str()),
            ("document:42", "read")
        );
        let (resource, _) = table.resolve("PUT", "h", "/files/a/b/c.txt").unwrap();
        assert_eq!(resource.qualified(), "file:a/b/c.txt");
        assert_eq!(
            table.resolve("DELETE", "h", "/docs/42").unwrap().1,
            "delete"
        );
        assert_eq!(
            table.resolve("GET", "h", "/").unwrap().0.qualified(),
            "site:home"
        );

        // A pattern never matches a longer or shorter path.
        assert!(table.resolve("GET", "h", "/docs/42/extra").is_none());
        assert!(table.resolve("GET", "h", "/docs").is_none());
        assert!(table.resolve("GET", "h", "/docs/").is_none());
        assert!(table.resolve("GET", "h", "/files").is_none());
        assert!(table.resolve("POST", "h", "/docs/42").is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(PathPattern::parse("docs").is_err());
        assert!(PathPattern::parse("/a/{*rest}/b").is_err());
        assert!(PathPattern::parse("/a/x{id}").is_err());
        assert!(PathPattern::parse("/a//b").is_err());
        assert!(ResourceTemplate::parse("{id}").is_err());
        assert!(ResourceTemplate::parse("doc:{id").is_err());
        assert!(ResourceTemplate::parse("doc:{id}").is_ok());
    }

    #[test]
    fn methods_are_uppercase_tokens() {
        for ok in ["GET", "POST", "PROPFIND", "M-SEARCH"] {
            assert!(valid_method(ok), "{ok}");
        }
        for bad in ["", "get", "Get", "G ET", "GET\t"] {
            assert!(!valid_method(bad), "{bad}");
        }
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("example.com:443"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }
}
