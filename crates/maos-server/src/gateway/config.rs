//! The `[gateway]` section: trusted proxies, zones, risk weights, and one `[[gateway.routes]]`
//! table per listener that proxies to an upstream service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use maos_gateway::context::{BaselineSettings, RiskWeights};
use maos_gateway::detect::{DEFAULT_THRESHOLD, Mode};
use maos_gateway::headers::SecurityHeaders;
use maos_gateway::ratelimit::{LimitsConfig, Rate};
use maos_gateway::route::{PathPattern, ResourceTemplate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the gateway listeners share.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Peers whose `X-Forwarded-For` is believed (load balancers in front of the gateway).
    pub trusted_proxies: Vec<IpNet>,
    /// Named network zones (`internal = ["10.0.0.0/8"]`); addresses in none are `external`.
    pub zones: BTreeMap<String, Vec<IpNet>>,
    /// Points each risk signal adds to `context.risk.score`.
    pub risk: RiskWeights,
    /// When a principal's baseline is trusted enough to flag deviations.
    pub baseline: BaselineSettings,
    /// A request scored at or above this is a security event (`suspicious_activity`).
    pub high_risk_score: Option<u32>,
    /// Seconds a client counts as `suspicious` after a refusal or a finding.
    pub suspicious_seconds: Option<u64>,
    pub routes: Vec<GatewayRoute>,
}

/// The default of [`GatewayConfig::high_risk_score`].
pub const DEFAULT_HIGH_RISK: u32 = 70;
/// The default of [`GatewayConfig::suspicious_seconds`].
pub const DEFAULT_SUSPICIOUS_SECONDS: u64 = 600;

/// One listener and the upstream it protects.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoute {
    /// A name for logs and events.
    pub name: String,
    pub listen: SocketAddr,
    /// `http://host:port` of the protected service.
    pub upstream: String,
    /// TLS termination; absent: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Static firewall: with any `allow`, only covered clients pass; the most specific rule wins.
    #[serde(default)]
    pub allow: Vec<IpNet>,
    #[serde(default)]
    pub deny: Vec<IpNet>,
    /// What a client on the dynamic blocklist meets: `refuse` (403) or `score` (it goes on to
    /// the policy with `context.network.reputation = "blocklisted"`).
    #[serde(default)]
    pub blocklisted: BlocklistedMode,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub authentication: AuthenticationMode,
    /// Largest request body, in bytes (chunked bodies are counted as they arrive).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Media types a request body may have (`application/json`, `text/*`); empty: any.
    #[serde(default)]
    pub content_types: Vec<String>,
    #[serde(default)]
    pub detection: DetectionConfig,
    #[serde(default)]
    pub headers: SecurityHeaders,
    /// JSON members whose values are replaced by `[redacted]` in responses, at any depth.
    #[serde(default)]
    pub redact: Vec<String>,
    /// Seconds the upstream may take to answer.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_seconds: u64,
    /// Method + path pattern → resource and action; first match wins, no match is denied.
    pub rules: Vec<GatewayRule>,
}

fn default_max_body() -> u64 {
    1024 * 1024
}

fn default_upstream_timeout() -> u64 {
    30
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlocklistedMode {
    #[default]
    Refuse,
    Score,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthenticationMode {
    /// No credentials: 401.
    #[default]
    Required,
    /// No credentials: the policy decides for the subject `anonymous:anonymous`.
    Optional,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    pub mode: Mode,
    /// Anomaly score at which a request is an intrusion (CRS default 5).
    pub threshold: u32,
    /// A client over this rate adds a rate-anomaly finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly_rate: Option<Rate>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            threshold: DEFAULT_THRESHOLD,
            anomaly_rate: None,
        }
    }
}

/// Whether clients present certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    Off,
    Optional,
    Required,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain and private key; reloaded when the files change.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to (needed for `client_auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// One rule of a gateway route.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, try_from = "RawRule", into = "RawRule")]
pub struct GatewayRule {
    /// An HTTP method, or `*` for any.
    pub method: String,
    pub path: PathPattern,
    pub resource: ResourceTemplate,
    pub action: String,
    /// A JSON Schema the request body must satisfy (no remote `$ref`).
    pub schema: Option<Value>,
    /// Media types for this rule, replacing the route's.
    pub content_types: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default = "any_method")]
    method: String,
    path: String,
    resource: String,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_types: Option<Vec<String>>,
}

fn any_method() -> String {
    "*".into()
}

impl TryFrom<RawRule> for GatewayRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, Self::Error> {
        let method = raw.method.to_ascii_uppercase();
        if method != "*" && (method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(format!("invalid method `{}`", raw.method));
        }
        let path = PathPattern::parse(&raw.path)?;
        let resource = ResourceTemplate::parse(&raw.resource)?;
        for name in resource.placeholders() {
            if !path.captures().any(|c| c == name) {
                return Err(format!(
                    "resource `{}` uses `{{{name}}}`, which path `{}` does not capture",
                    raw.resource, raw.path
                ));
            }
        }
        if raw.action.is_empty() {
            return Err("empty action".into());
        }
        if let Some(schema) = &raw.schema {
            maos_gateway::validate::Schema::compile(schema)?;
        }
        Ok(GatewayRule {
            method,
            path,
            resource,
            action: raw.action,
            schema: raw.schema,
            content_types: raw.content_types,
        })
    }
}

impl From<GatewayRule> for RawRule {
    fn from(rule: GatewayRule) -> Self {
        RawRule {
            method: rule.method,
            path: rule.path.as_str().to_owned(),
            resource: rule.resource.as_str().to_owned(),
            action: rule.action,
            schema: rule.schema,
            content_types: rule.content_types,
        }
    }
}

impl GatewayConfig {
    /// Checks what types cannot; the message names the route.
    pub fn validate(&self) -> Result<(), String> {
        let mut listens = std::collections::HashSet::new();
        for route in &self.routes {
            let at = |message: String| format!("gateway route `{}`: {message}", route.name);
            if route.name.is_empty() {
                return Err("gateway route: empty name".into());
            }
            if route.listen.port() != 0 && !listens.insert(route.listen) {
                return Err(at(format!("listen address {} is used twice", route.listen)));
            }
            super::proxy::Upstream::parse(&route.upstream).map_err(at)?;
            maos_gateway::ratelimit::RouteLimits::new(&route.limits).map_err(at)?;
            if let Some(rate) = route.detection.anomaly_rate {
                maos_gateway::ratelimit::RateWatch::new(rate, 1).map_err(at)?;
            }
            route.headers.validate().map_err(at)?;
            if route.max_body_bytes == 0 {
                return Err(at("max_body_bytes must be positive".into()));
            }
            if route.rules.is_empty() {
                return Err(at("no rules: every request would be denied".into()));
            }
            if let Some(tls) = &route.tls
                && tls.client_auth != ClientAuth::Off
                && tls.client_ca.is_none()
            {
                return Err(at("tls.client_auth needs tls.client_ca".into()));
            }
        }
        Ok(())
    }
}
