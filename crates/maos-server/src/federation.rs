//! Federation: ID tokens of trusted external OIDC issuers accepted as bearer tokens.
//!
//! Each `[[identity.issuers]]` entry names an issuer, the audiences MAOS answers to, and where
//! its JWKS comes from: a URL (fetched in the background, cached for `cache_ttl_seconds`, and
//! fetched again early, at most every `min_refresh_seconds`, when a token names an unknown
//! `kid`) or a file (read at start and on the same schedule). Validation is
//! `maos_identity::federation`; keys named by a token (`jku`, `x5u`, `jwk`, `x5c`) are refused
//! there and never fetched.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use maos_core::Subject;
use maos_identity::TokenError;
use maos_identity::federation::{
    ClaimRoleRule, FederationError, FederationValidator, TrustedIssuer,
};
use maos_identity::jose::{Algorithm, JwkError, b64_decode};
use maos_identity::principal::PrincipalKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::auth::{AuthOutcome, Authenticator, Caller, Credentials, bearer};
use crate::mtls::{EventSender, emit_failure};

/// The largest ID token looked at, and the largest JWKS document read.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
const MAX_JWKS_BYTES: usize = 1024 * 1024;

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa]
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_kind() -> PrincipalKind {
    PrincipalKind::User
}
fn default_leeway() -> u64 {
    60
}
fn default_cache_ttl() -> u64 {
    3600
}
fn default_min_refresh() -> u64 {
    30
}

/// One trusted issuer, `[[identity.issuers]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` value.
    pub issuer: String,
    /// MAOS's client ids at that issuer; a token's `aud` must include one of them.
    pub audiences: Vec<String>,
    /// Where the JWKS document is fetched from (https; http only to a loopback address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Or a local copy of it, for offline use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// How long a fetched JWKS is used before it is fetched again.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_seconds: u64,
    /// The shortest time between two fetches, also when tokens name unknown keys.
    #[serde(default = "default_min_refresh")]
    pub min_refresh_seconds: u64,
    #[serde(default = "default_algorithms")]
    pub allowed_algorithms: Vec<Algorithm>,
    /// The claim naming the principal (`sub`, `email`, `preferred_username`...).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    #[serde(default = "default_kind")]
    pub principal_kind: PrincipalKind,
    /// Put before the claim value, to keep issuers' namespaces apart (`corp/`).
    #[serde(default)]
    pub principal_prefix: String,
    /// Claim values that grant roles.
    #[serde(default)]
    pub role_rules: Vec<ClaimRoleRule>,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

impl IssuerConfig {
    fn trusted(&self, audience: &str) -> TrustedIssuer {
        TrustedIssuer {
            issuer: self.issuer.clone(),
            audience: audience.to_owned(),
            allowed_algorithms: self.allowed_algorithms.clone(),
            subject_claim: self.subject_claim.clone(),
            principal_kind: self.principal_kind,
            principal_prefix: self.principal_prefix.clone(),
            role_rules: self.role_rules.clone(),
            leeway_seconds: self.leeway_seconds,
            max_age_seconds: self.max_age_seconds,
        }
    }

    /// Validators for every audience, from one JWKS document.
    fn validators(&self, jwks: &str) -> Result<Vec<FederationValidator>, FederationError> {
        self.audiences
            .iter()
            .map(|audience| FederationValidator::new(self.trusted(audience), jwks))
            .collect()
    }
}

/// Checks the issuers' configuration (run at configuration load).
pub fn validate_issuers(issuers: &[IssuerConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (index, issuer) in issuers.iter().enumerate() {
        let at = format!("identity.issuers[{index}]");
        if issuer.issuer.is_empty() {
            return Err(format!("{at}.issuer: must not be empty"));
        }
        if !seen.insert(issuer.issuer.as_str()) {
            return Err(format!(
                "{at}.issuer: `{}` is configured twice",
                issuer.issuer
            ));
        }
        if issuer.audiences.is_empty() || issuer.audiences.iter().any(String::is_empty) {
            return Err(format!("{at}.audiences: at least one, none empty"));
        }
        match (&issuer.jwks_url, &issuer.jwks_file) {
            (Some(url), None) => check_url(url).map_err(|e| format!("{at}.jwks_url: {e}"))?,
            (None, Some(_)) => {}
            _ => return Err(format!("{at}: exactly one of jwks_url and jwks_file")),
        }
        if issuer.cache_ttl_seconds == 0 {
            return Err(format!("{at}.cache_ttl_seconds: must be positive"));
        }
        // The library checks the rest (algorithms, HS256) the same way at start.
        issuer
            .trusted(issuer.audiences.first().map_or("", String::as_str))
            .allowed_algorithms
            .iter()
            .find(|a| a.is_symmetric())
            .map_or(Ok(()), |_| {
                Err(format!("{at}.allowed_algorithms: HS256 is never accepted"))
            })?;
    }
    Ok(())
}

/// https, or http to a loopback address (a JWKS over plain HTTP elsewhere could be swapped).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "`{url}`: http is allowed only to a loopback address"
                ))
            }
        }
        other => Err(format!("`{url}`: unsupported scheme `{other}`")),
    }
}

/// One issuer's validators and the state of its key refresh.
#[derive(Debug)]
pub struct Issuer {
    config: IssuerConfig,
    /// One validator per audience; empty until a JWKS was loaded.
    validators: ArcSwap<Vec<FederationValidator>>,
    /// Woken when a token names a key this issuer's set does not hold.
    unknown_key: Notify,
}

impl Issuer {
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// Whether a JWKS document was loaded.
    pub fn has_keys(&self) -> bool {
        !self.validators.load().is_empty()
    }

    fn install(&self, jwks: &str) -> Result<(), FederationError> {
        let validators = self.config.validators(jwks)?;
        self.validators.store(Arc::new(validators));
        Ok(())
    }

    async fn load(&self, client: &reqwest::Client) -> Result<(), String> {
        let text = match (&self.config.jwks_url, &self.config.jwks_file) {
            (Some(url), _) => fetch(client, url).await?,
            (None, Some(path)) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("`{}`: {e}", path.display()))?,
            (None, None) => return Err("no JWKS source".into()),
        };
        self.install(&text).map_err(|e| e.to_string())
    }

    /// Reloads the JWKS every `cache_ttl_seconds`, and early (rate limited) when a token
    /// named an unknown key. Runs until aborted.
    pub async fn refresh(self: Arc<Self>, client: reqwest::Client) {
        let ttl = Duration::from_secs(self.config.cache_ttl_seconds);
        let min_gap = Duration::from_secs(self.config.min_refresh_seconds);
        let mut last: Option<Instant> = None;
        loop {
            if let Some(at) = last {
                // A failed or stale load is retried after the shortest gap, not after the TTL.
                let wait = if self.has_keys() { ttl } else { min_gap };
                tokio::select! {
                    _ = tokio::time::sleep_until((at + wait).into()) => {}
                    _ = self.unknown_key.notified() => {
                        tokio::time::sleep_until((at + min_gap).into()).await;
                    }
                }
            }
            last = Some(Instant::now());
            match self.load(&client).await {
                Ok(()) => tracing::info!(issuer = %self.config.issuer, "federation.jwks_loaded"),
                Err(error) => {
                    tracing::warn!(issuer = %self.config.issuer, %error, "federation.jwks_failed")
                }
            }
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("`{url}`: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("`{url}`: HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("`{url}`: {e}"))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "`{url}`: the document exceeds {MAX_JWKS_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("`{url}`: not UTF-8"))
}

/// The configured issuers, keyed by `iss`.
#[derive(Debug, Default)]
pub struct Federation {
    issuers: HashMap<String, Arc<Issuer>>,
}

impl Federation {
    /// Sets the issuers up; JWKS files are read here, so that a broken file stops the start.
    /// URLs are fetched by [`Federation::spawn_refresh`].
    pub fn new(configs: &[IssuerConfig]) -> Result<Federation, String> {
        validate_issuers(configs)?;
        let mut issuers = HashMap::new();
        for config in configs {
            let issuer = Issuer {
                config: config.clone(),
                validators: ArcSwap::from_pointee(Vec::new()),
                unknown_key: Notify::new(),
            };
            // Checks the configuration against the library even before keys are loaded (an
            // empty key set is the one error expected here).
            match issuer.config.validators(r#"{"keys":[]}"#) {
                Ok(_) | Err(FederationError::Jwks(JwkError::Empty)) => {}
                Err(e) => return Err(format!("identity.issuers `{}`: {e}", config.issuer)),
            }
            if let Some(path) = &config.jwks_file {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("`{}`: {e}", path.display()))?;
                issuer
                    .install(&text)
                    .map_err(|e| format!("`{}`: {e}", path.display()))?;
            }
            issuers.insert(config.issuer.clone(), Arc::new(issuer));
        }
        Ok(Federation { issuers })
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    pub fn issuer(&self, iss: &str) -> Option<&Arc<Issuer>> {
        self.issuers.get(iss)
    }

    /// Fetches every URL issuer's JWKS once (so that a reachable issuer works as soon as the
    /// server answers), then starts the refresh tasks.
    pub async fn spawn_refresh(&self) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut tasks = Vec::new();
        for issuer in self.issuers.values() {
            if issuer.config.jwks_url.is_some()
                && let Err(error) = issuer.load(&client).await
            {
                // An unreachable issuer must not keep the server down; its tokens are
                // refused until the background task gets the keys.
                tracing::warn!(issuer = %issuer.config.issuer, %error, "federation.jwks_failed");
            }
            let issuer = issuer.clone();
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                // The first load happened above (or at construction, for files).
                tokio::time::sleep(Duration::from_secs(issuer.config.min_refresh_seconds)).await;
                issuer.refresh(client).await;
            }));
        }
        Ok(tasks)
    }
}

/// The `iss` of a compact JWT, read without verification only to choose the issuer.
fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let claims: Map<String, Value> = serde_json::from_slice(&b64_decode(payload)?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Authenticates bearer ID tokens of the configured issuers; answers `Missing` for anything
/// else (not a JWT, or another issuer's), so the rest of the chain decides.
#[derive(Debug)]
pub struct FederationAuthenticator {
    federation: Arc<Federation>,
    events: EventSender,
    /// Where refusals are audited.
    identity: Arc<crate::identity::IdentityService>,
}

impl FederationAuthenticator {
    pub fn new(
        federation: Arc<Federation>,
        events: EventSender,
        identity: Arc<crate::identity::IdentityService>,
    ) -> Self {
        FederationAuthenticator {
            federation,
            events,
            identity,
        }
    }

    fn refuse(&self, issuer: &str, reason: &str, message: String) -> AuthOutcome {
        tracing::info!(issuer, reason, %message, "federation.token_refused");
        let mut details = Map::new();
        details.insert("token.issuer".into(), Value::String(issuer.to_owned()));
        details.insert("error.message".into(), Value::String(message));
        emit_failure(&self.events, None, reason, details);
        self.identity.audit_rejection("federation", None, reason);
        AuthOutcome::Invalid
    }
}

impl Authenticator for FederationAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        let Some(token) = credentials.authorization.and_then(bearer) else {
            return AuthOutcome::Missing;
        };
        let Some(iss) = unverified_issuer(token) else {
            return AuthOutcome::Missing;
        };
        let Some(issuer) = self.federation.issuer(&iss) else {
            return AuthOutcome::Missing;
        };

        let validators = issuer.validators.load();
        if validators.is_empty() {
            issuer.unknown_key.notify_one();
            return self.refuse(&iss, "jwks_unavailable", "no keys loaded yet".into());
        }
        let now = SystemTime::now();
        let mut last_error = None;
        for validator in validators.iter() {
            match validator.validate(token, now, None) {
                Ok(identity) => {
                    let id = identity.principal;
                    tracing::debug!(principal.id = %id, issuer = %iss, "federation.authenticated");
                    return AuthOutcome::Authenticated(Arc::new(Caller {
                        subject: Subject::new(id.kind().prefix(), id.name()),
                        roles: identity.roles.into_iter().collect(),
                        credential: format!("oidc:{iss}"),
                    }));
                }
                // The next audience may be the one.
                Err(error @ FederationError::Token(TokenError::WrongAudience(_))) => {
                    last_error = Some(error);
                }
                Err(error) => {
                    last_error = Some(error);
                    break;
                }
            }
        }
        let Some(error) = last_error else {
            return self.refuse(&iss, "token_invalid", "no validator".into());
        };
        let reason = match &error {
            FederationError::Token(token_error) => {
                if matches!(token_error, TokenError::UnknownKey(_)) {
                    issuer.unknown_key.notify_one();
                }
                token_error.code()
            }
            FederationError::MissingSubject(_) => "missing_subject",
            FederationError::BadPrincipal(_) => "bad_principal",
            FederationError::AuthorizedParty => "authorized_party",
            _ => "token_invalid",
        };
        self.refuse(&iss, reason, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_read_from_the_payload_only_for_choosing() {
        let payload = maos_identity::jose::b64_encode(br#"{"iss":"https://idp.example"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.c2ln")).as_deref(),
            Some("https://idp.example")
        );
        assert_eq!(unverified_issuer("maos_0123"), None);
        assert_eq!(unverified_issuer(&format!("e30.{payload}.a.b")), None);
        assert_eq!(unverified_issuer("e30.!!!.c2ln"), None);
    }

    #[test]
    fn jwks_urls_must_be_https_except_on_loopback() {
        assert!(check_url("https://idp.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:9000/jwks").is_ok());
        assert!(check_url("http://[::1]:9000/jwks").is_ok());
        assert!(check_url("http://idp.example/jwks").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn issuer_configuration_is_checked() {
        let issuer = |extra: &str| -> IssuerConfig {
            toml::from_str(&format!(
                "issuer = \"https://idp.example\"\naudiences = [\"maos\"]\n{extra}"
            ))
            .unwrap()
        };
        assert!(validate_issuers(&[issuer("jwks_file = \"k.json\"")]).is_ok());
        assert!(validate_issuers(&[issuer("")]).is_err());
        assert!(
            validate_issuers(&[issuer("jwks_file = \"k\"\njwks_url = \"https://a/k\"")]).is_err()
        );
        assert!(
            validate_issuers(&[issuer(
                "jwks_file = \"k\"\nallowed_algorithms = [\"HS256\"]"
            )])
            .is_err()
        );
        let twice = issuer("jwks_file = \"k\"");
        assert!(validate_issuers(&[twice.clone(), twice]).is_err());
    }
}
