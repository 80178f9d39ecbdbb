//! The server's configuration: a TOML file, then `MAOS_*` environment overrides, then command
//! line flags. Every key is documented in `maos.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::routes::forward_auth::{PathPattern, ResourceTemplate};

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub grpc: GrpcConfig,
    pub forward_auth: ForwardAuthConfig,
    pub audit: crate::audit_log::AuditConfig,
    pub keys: KeysConfig,
    pub secrets: SecretsConfig,
    pub identity: IdentityConfig,
    pub gateway: crate::gateway::config::GatewayConfig,
    pub siem: crate::siem::config::SiemConfig,
    /// Automated response: action limits and playbooks (docs/response.md).
    pub response: crate::response::ResponseConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Where the embedded database lives.
    pub data_dir: PathBuf,
    /// The externally visible base URL, for discovery documents; empty: from the `Host` header.
    pub public_url: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most requests in one batch call.
    pub max_batch: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// How long a client may take to send a request body; slower bodies are cut off with 408
    /// so that a slow sender cannot hold a connection open indefinitely.
    pub body_timeout_seconds: u64,
    /// How long a client may take to send a request's header; a connection whose header is
    /// unfinished after this is closed (it would otherwise stay open and delay shutdown).
    pub header_timeout_seconds: u64,
    /// TLS for the HTTP listener; absent: plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./maos-data"),
            public_url: String::new(),
            max_body_bytes: 1024 * 1024,
            max_batch: 1000,
            shutdown_grace_seconds: 10,
            body_timeout_seconds: 10,
            header_timeout_seconds: 10,
            tls: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://PATH` or `postgres://...`; empty: `maos.db` in the data directory.
    pub url: String,
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `maos_server=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The principal (`type:id`) the bootstrap admin token authenticates as.
    pub principal: String,
    /// Roles the bootstrap token carries; a policy change that would take `write` on
    /// `maos:policy` away from this principal is refused.
    pub roles: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            principal: "user:admin".into(),
            roles: vec!["maos-admin".into()],
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address of the Envoy ext_authz gRPC service; absent: not started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthConfig {
    /// Peers whose forwarded headers (`X-Original-*`, `X-Forwarded-*`) are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The realm named in `WWW-Authenticate`.
    pub realm: String,
    /// Method + path pattern → resource and action, first match wins; no match denies.
    pub routes: Vec<RouteConfig>,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: vec![
                IpNet::V4(ipnet::Ipv4Net::from(std::net::Ipv4Addr::LOCALHOST)),
                IpNet::V6(ipnet::Ipv6Net::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
            realm: "maos".into(),
            routes: Vec::new(),
        }
    }
}

/// Where the root key-encryption key (KEK) lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KekProviderKind {
    /// A 32-byte key file, created with mode 0600 on first start.
    #[default]
    File,
    /// A non-extractable AES key inside a PKCS#11 token.
    Pkcs11,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub kek_provider: KekProviderKind,
    /// The wrapping mechanism for new wraps: `aes-gcm` or `aes-key-wrap-pad`.
    pub kek_mechanism: maos_crypto::KekMechanism,
    /// The KEK file; empty: `kek` in the data directory.
    pub kek_file: PathBuf,
    /// The PKCS#11 module.
    pub pkcs11_module: PathBuf,
    /// The label of the initialised token.
    pub pkcs11_token_label: String,
    /// The token's user PIN (better set through `MAOS_KEYS_PKCS11_PIN`).
    pub pkcs11_pin: String,
    /// The label of the KEK object in the token; generated there when missing.
    pub pkcs11_kek_label: String,
    /// How often keys due for rotation are rotated and keys past their deletion window
    /// destroyed.
    pub rotation_check_seconds: u64,
}

impl std::fmt::Debug for KeysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysConfig")
            .field("kek_provider", &self.kek_provider)
            .field("kek_mechanism", &self.kek_mechanism)
            .field("kek_file", &self.kek_file)
            .field("pkcs11_module", &self.pkcs11_module)
            .field("pkcs11_token_label", &self.pkcs11_token_label)
            .field("pkcs11_pin", &"[redacted]")
            .field("pkcs11_kek_label", &self.pkcs11_kek_label)
            .field("rotation_check_seconds", &self.rotation_check_seconds)
            .finish()
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            kek_provider: KekProviderKind::File,
            kek_mechanism: maos_crypto::KekMechanism::AesGcm,
            kek_file: PathBuf::new(),
            pkcs11_module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            pkcs11_token_label: "maos".into(),
            pkcs11_pin: String::new(),
            pkcs11_kek_label: "maos-kek".into(),
            rotation_check_seconds: 60,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The key of the key service that encrypts secrets; created on first start if missing.
    pub key: String,
    /// Secrets re-encrypted per transaction by the rewrap job.
    pub rewrap_chunk: u32,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            key: "maos-secrets".into(),
            rewrap_chunk: 100,
        }
    }
}

/// `[identity]`: how client certificates and external ID tokens become principals.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Client certificate subject/SAN → principal, first match wins (needs `server.tls`).
    pub certificate_rules: Vec<maos_identity::certificate::CertificateRule>,
    /// Trusted external OIDC issuers whose ID tokens are accepted as bearer tokens.
    pub issuers: Vec<crate::federation::IssuerConfig>,
}

/// One forward-auth route.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, try_from = "RawRoute", into = "RawRoute")]
pub struct RouteConfig {
    /// An HTTP method, or `*` for any.
    pub method: String,
    /// Only requests for this host (without port); empty: any host.
    pub host: String,
    pub path: PathPattern,
    pub resource: ResourceTemplate,
    pub action: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default = "any_method")]
    method: String,
    #[serde(default)]
    host: String,
    path: String,
    resource: String,
    action: String,
}

fn any_method() -> String {
    "*".into()
}

impl TryFrom<RawRoute> for RouteConfig {
    type Error = String;

    fn try_from(raw: RawRoute) -> Result<Self, Self::Error> {
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
        Ok(RouteConfig {
            method,
            host: raw.host,
            path,
            resource,
            action: raw.action,
        })
    }
}

impl From<RouteConfig> for RawRoute {
    fn from(route: RouteConfig) -> Self {
        RawRoute {
            method: route.method,
            host: route.host,
            path: route.path.as_str().to_owned(),
            resource: route.resource.as_str().to_owned(),
            action: route.action,
        }
    }
}

/// A configuration problem, located in its file where possible.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Unlocated { file: String, message: String },
}

/// Environment variables that override keys, `MAOS_<SECTION>_<KEY>`.
const ENV_KEYS: &[(&str, &str, EnvKind)] = &[
    ("server", "listen", EnvKind::Text),
    ("server", "data_dir", EnvKind::Text),
    ("server", "public_url", EnvKind::Text),
    ("server", "max_body_bytes", EnvKind::Integer),
    ("server", "max_batch", EnvKind::Integer),
    ("server", "shutdown_grace_seconds", EnvKind::Integer),
    ("server", "body_timeout_seconds", EnvKind::Integer),
    ("server", "header_timeout_seconds", EnvKind::Integer),
    ("storage", "url", EnvKind::Text),
    ("storage", "max_connections", EnvKind::Integer),
    ("log", "level", EnvKind::Text),
    ("log", "format", EnvKind::Text),
    ("admin", "principal", EnvKind::Text),
    ("admin", "roles", EnvKind::List),
    ("grpc", "listen", EnvKind::Text),
    ("forward_auth", "trusted_proxies", EnvKind::List),
    ("forward_auth", "realm", EnvKind::Text),
    ("audit", "checkpoint_every_records", EnvKind::Integer),
    ("audit", "checkpoint_every_seconds", EnvKind::Integer),
    ("audit", "decisions", EnvKind::Text),
    ("audit", "queue", EnvKind::Integer),
    ("audit", "max_batch", EnvKind::Integer),
    ("audit", "signing_key_file", EnvKind::Text),
    ("audit", "redaction_key_file", EnvKind::Text),
    ("keys", "kek_provider", EnvKind::Text),
    ("keys", "kek_file", EnvKind::Text),
    ("keys", "pkcs11_module", EnvKind::Text),
    ("keys", "pkcs11_token_label", EnvKind::Text),
    ("keys", "pkcs11_pin", EnvKind::Text),
    ("keys", "pkcs11_kek_label", EnvKind::Text),
    ("keys", "kek_mechanism", EnvKind::Text),
    ("keys", "rotation_check_seconds", EnvKind::Integer),
    ("secrets", "key", EnvKind::Text),
    ("secrets", "rewrap_chunk", EnvKind::Integer),
    ("siem", "rules_dir", EnvKind::Text),
    ("siem", "retention_days", EnvKind::Integer),
    ("siem", "suppression_seconds", EnvKind::Integer),
    ("siem", "max_batch", EnvKind::Integer),
];

#[derive(Clone, Copy)]
enum EnvKind {
    Text,
    Integer,
    List,
}

/// The environment variable overriding `section.key`.
pub fn env_name(section: &str, key: &str) -> String {
    format!(
        "MAOS_{}_{}",
        section.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    )
}

impl Config {
    /// Reads `file` (when given), applies `MAOS_*` overrides from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (name, source) = match file {
            Some(path) => {
                let name = path.display().to_string();
                let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    file: name.clone(),
                    source,
                })?;
                (name, source)
            }
            None => ("(defaults)".to_owned(), String::new()),
        };
        Self::from_toml(&name, &source, env)
    }

    /// Reads configuration text (`name` is where it came from, for errors), applies `MAOS_*`
    /// overrides from `env`, and validates: [`Config::load`] without the file system.
    pub fn from_toml(
        name: &str,
        source: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let name = name.to_owned();
        // Deserialize the file alone first, so that errors point into it.
        if let Err(e) = toml::from_str::<Config>(source) {
            return Err(locate_route_error(&name, source)
                .unwrap_or_else(|| located(&name, source, e.span(), e.message())));
        }
        let mut table: toml::Table =
            toml::from_str(source).map_err(|e| located(&name, source, e.span(), e.message()))?;

        for (section, key, kind) in ENV_KEYS {
            let var = env_name(section, key);
            let Some(value) = env(&var) else { continue };
            let value = match kind {
                EnvKind::Text => toml::Value::String(value),
                EnvKind::Integer => toml::Value::Integer(value.trim().parse().map_err(|_| {
                    ConfigError::Unlocated {
                        file: var.clone(),
                        message: format!("`{value}` is not an integer"),
                    }
                })?),
                EnvKind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| toml::Value::String(item.to_owned()))
                        .collect(),
                ),
            };
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(section_table) = entry {
                section_table.insert(key.to_string(), value);
            }
        }

        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Unlocated {
                    file: format!("{name} with MAOS_* overrides"),
                    message: e.message().to_owned(),
                })?;
        config
            .validate()
            .map_err(|message| ConfigError::Unlocated {
                file: name,
                message,
            })?;
        Ok(config)
    }

    /// Checks what types cannot: the storage URL's scheme.
    fn validate(&self) -> Result<(), String> {
        let url = &self.storage.url;
        if !url.is_empty()
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres:")
            && !url.starts_with("postgresql:")
        {
            return Err(format!(
                "storage.url: `{}` is neither sqlite: nor postgres:",
                maos_store::redact_url(url)
            ));
        }
        if self.server.max_body_bytes == 0 {
            return Err("server.max_body_bytes: must be positive".into());
        }
        if self.server.body_timeout_seconds == 0 {
            return Err("server.body_timeout_seconds: must be positive".into());
        }
        self.audit.validate()?;
        if self.keys.rotation_check_seconds == 0 {
            return Err("keys.rotation_check_seconds: must be positive".into());
        }
        if self.secrets.rewrap_chunk == 0 {
            return Err("secrets.rewrap_chunk: must be positive".into());
        }
        if self.server.header_timeout_seconds == 0 {
            return Err("server.header_timeout_seconds: must be positive".into());
        }
        if let Some(tls) = &self.server.tls {
            tls.validate()?;
        }
        maos_identity::certificate::CertificateMapper::new(self.identity.certificate_rules.clone())
            .map_err(|e| format!("identity.certificate_rules: {e}"))?;
        crate::federation::validate_issuers(&self.identity.issuers)?;
        self.gateway.validate()?;
        self.siem.validate()?;
        self.response.validate()?;
        Ok(())
    }

    /// The base URL this server names in metadata documents: `server.public_url`, or when
    /// that is empty the address it listens on (`bound`, loopback for a wildcard address).
    /// Never taken from a request's `Host` header, which the client chooses.
    pub fn public_base_url(&self, bound: std::net::SocketAddr) -> String {
        let configured = self.server.public_url.trim_end_matches('/');
        if !configured.is_empty() {
            return configured.to_owned();
        }
        let listen = bound;
        let ip = match listen.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            }
            ip => ip,
        };
        let scheme = if self.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!(
            "{scheme}://{}",
            std::net::SocketAddr::new(ip, listen.port())
        )
    }

    /// The KEK file, defaulting to `kek` in the data directory.
    pub fn kek_file(&self) -> PathBuf {
        if self.keys.kek_file.as_os_str().is_empty() {
            self.server.data_dir.join("kek")
        } else {
            self.keys.kek_file.clone()
        }
    }

    /// The storage URL, defaulting to a SQLite file in the data directory.
    pub fn storage_url(&self) -> String {
        if self.storage.url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("maos.db").display()
            )
        } else {
            self.storage.url.clone()
        }
    }
}

/// The error of the first `[[forward_auth.routes]]` table that does not deserialize, at the
/// line of its header. toml places errors raised inside an element of an array of tables at the
/// array's first element, which would blame the wrong route.
fn locate_route_error(file: &str, source: &str) -> Option<ConfigError> {
    let table: toml::Table = toml::from_str(source).ok()?;
    let routes = table.get("forward_auth")?.get("routes")?.as_array()?;
    let (index, message) = routes.iter().enumerate().find_map(|(index, route)| {
        route
            .clone()
            .try_into::<RouteConfig>()
            .err()
            .map(|e| (index, e.message().to_owned()))
    })?;
    let (line_index, line) = source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim() == "[[forward_auth.routes]]")
        .nth(index)?;
    Some(ConfigError::Invalid {
        file: file.to_owned(),
        line: line_index + 1,
        column: line.len() - line.trim_start().len() + 1,
        message: format!("route {}: {message}", index + 1),
    })
}

fn located(
    file: &str,
    source: &str,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> ConfigError {
    match span {
        Some(span) => {
            let before = source.get(..span.start).unwrap_or(source);
            let line = before.matches('\n').count() + 1;
            let column = before
                .rfind('\n')
                .map_or(before.len(), |nl| before.len() - nl - 1)
                + 1;
            ConfigError::Invalid {
                file: file.to_owned(),
                line,
                column,
                message: message.to_owned(),
            }
        }
        None => ConfigError::Unlocated {
            file: file.to_owned(),
            message: message.to_owned(),
        },
    }
}

/// `maos config check FILE`: the configuration the file gives (without environment
/// overrides), or where it is wrong.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    Config::load(Some(path), |_| None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_without_a_file() {
        let config = Config::load(None, |_| None).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert!(config.storage_url().ends_with("maos-data/maos.db"));
        assert!(config.grpc.listen.is_none());
    }

    #[test]
    fn text_reads_like_a_file() {
        let text = "[server]\nlisten = \"127.0.0.1:9090\"\nmax_batch = \"many\"\n";
        let from_text = Config::from_toml("maos.toml", text, |_| None).unwrap_err();
        let from_file = check_file(write(text).path()).unwrap_err();
        assert!(
            matches!(from_text, ConfigError::Invalid { line: 3, .. }),
            "{from_text}"
        );
        assert!(
            matches!(from_file, ConfigError::Invalid { line: 3, .. }),
            "{from_file}"
        );

        let text = "[server]\nlisten = \"127.0.0.1:9090\"\n";
        let env = |name: &str| (name == "MAOS_SERVER_MAX_BATCH").then(|| "7".to_owned());
        let config = Config::from_toml("maos.toml", text, env).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:9090");
        assert_eq!(config.server.max_batch, 7);
    }

    #[test]
    fn errors_name_the_line() {
        let file = write("[server]\nlisten = \"127.0.0.1:8080\"\nmax_batch = \"many\"\n");
        let err = check_file(file.path()).unwrap_err();
        match err {
            ConfigError::Invalid { line, .. } => assert_eq!(line, 3, "{err}"),
            other => panic!("{other}"),
        }
        let file = write("[server]\nlisen = \"x\"\n");
        assert!(matches!(
            check_file(file.path()),
            Err(ConfigError::Invalid { line: 2, .. })
        ));
        let file = write(
            "[forward_auth]\n\n[[forward_auth.routes]]\npath = \"/a/{id}\"\nresource = \"doc:{other}\"\naction = \"read\"\n",
        );
        let err = check_file(file.path()).unwrap_err();
        assert!(err.to_string().contains("does not capture"), "{err}");
        assert!(
            matches!(err, ConfigError::Invalid { line: 3..=6, .. }),
            "{err}"
        );
    }

    /// `maos config check` blamed the first route for a mistake in the third.
    #[test]
    fn bad_route_is_reported_at_its_own_line() {
        let route = |path: &str, resource: &str| {
            format!(
                "[[forward_auth.routes]]\nmethod = \"GET\"\npath = \"{path}\"\n\
                 resource = \"{resource}\"\naction = \"read\"\n\n"
            )
        };
        let text = format!(
            "[forward_auth]\n\n{}{}{}",
            route("/a/{id}", "doc:{id}"),
            route("/b/{id}", "doc:{id}"),
            route("/c/{id}", "doc:{other}"),
        );
        let file = write(&text);
        let err = check_file(file.path()).unwrap_err();
        match &err {
            ConfigError::Invalid { line, message, .. } => {
                assert_eq!(*line, 15, "{err}");
                assert!(message.starts_with("route 3:"), "{err}");
                assert!(message.contains("does not capture"), "{err}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_gateway_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway.toml");
        let config = check_file(&path).unwrap();
        assert_eq!(config.gateway.routes.len(), 1);
        assert_eq!(config.gateway.routes[0].rules.len(), 2);
        // A rule whose schema needs a remote reference is refused at load.
        let file = write(
            "[[gateway.routes]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\n\
             upstream = \"http://127.0.0.1:1\"\n[[gateway.routes.rules]]\npath = \"/x\"\n\
             resource = \"x:y\"\naction = \"read\"\n\
             schema = { \"$ref\" = \"https://example.invalid/s.json\" }\n",
        );
        assert!(check_file(file.path()).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = write("[server]\nlisten = \"127.0.0.1:1\"\n[storage]\nmax_connections = 3\n");
        let config = Config::load(Some(file.path()), |name| match name {
            "MAOS_SERVER_LISTEN" => Some("127.0.0.1:9".into()),
            "MAOS_FORWARD_AUTH_TRUSTED_PROXIES" => Some("10.0.0.0/8, ::1/128".into()),
            "MAOS_STORAGE_MAX_CONNECTIONS" => Some("5".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.server.listen.port(), 9);
        assert_eq!(config.storage.max_connections, 5);
        assert_eq!(config.forward_auth.trusted_proxies.len(), 2);
        let bad = Config::load(None, |name| {
            (name == "MAOS_SERVER_MAX_BATCH").then(|| "lots".to_owned())
        });
        assert!(bad.is_err());
    }

    #[test]
    fn the_example_file_is_valid_and_complete() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maos.example.toml");
        let config = check_file(&path).unwrap();
        assert!(!config.forward_auth.routes.is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        for (section, key, _) in ENV_KEYS {
            assert!(text.contains(&format!("[{section}]")), "{section} missing");
            assert!(
                text.contains(&format!("{key} =")),
                "{section}.{key} missing"
            );
            assert!(
                text.contains(&env_name(section, key)),
                "{} undocumented",
                env_name(section, key)
            );
        }
    }
}
