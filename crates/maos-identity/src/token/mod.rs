//! MAOS access tokens: signing with rotating keys, JWKS, discovery, validation, revocation.
//!
//! Access tokens are JWS compact tokens with `typ: at+jwt` (RFC 9068), signed with Ed25519
//! (`EdDSA`) or P-256 (`ES256`) keys that MAOS manages. Each key has a `kid` (its RFC 7638
//! thumbprint); after a rotation the previous key keeps validating until it is retired.

pub mod claims;
pub mod refresh;
pub mod revocation;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use maos_core::Clock;
use serde_json::{Value, json};

pub use claims::{ClaimRules, ValidatedClaims, unix_seconds, validate_claims};
pub use refresh::{
    Family, RefreshError, RefreshFamilies, RefreshPolicy, RefreshSnapshot, RotatedRefresh,
};
pub use revocation::RevocationSet;

use crate::jose::{
    Algorithm, JwsPolicy, KeySet, TokenError, VerificationKey, b64_encode, verify_compact,
};
use crate::principal::PrincipalId;
use crate::secret::{RandomError, SecretBytes, SecretString, random_bytes};

/// The `typ` header of MAOS access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The algorithms MAOS signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SigningAlgorithm {
    #[serde(rename = "EdDSA")]
    EdDsa,
    #[serde(rename = "ES256")]
    Es256,
}

impl SigningAlgorithm {
    pub fn jose(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDsa,
            Self::Es256 => Algorithm::Es256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    #[error("no active signing key")]
    NoActiveKey,
    #[error("no signing key `{0}`")]
    UnknownKey(String),
    #[error("the active key `{0}` cannot be retired; rotate first")]
    RetiringActiveKey(String),
    #[error("the private key is not a valid PKCS#8 document for {0:?}")]
    InvalidPrivateKey(SigningAlgorithm),
    #[error("signing failed")]
    Signing,
    #[error(transparent)]
    Random(#[from] RandomError),
}

enum KeyPairKind {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKeyState {
    /// Signs new tokens (exactly one key at a time).
    Active,
    /// Replaced since the given time; still validates tokens it signed.
    Validating { since: SystemTime },
}

struct SigningKey {
    kid: String,
    algorithm: SigningAlgorithm,
    pair: KeyPairKind,
    state: SigningKeyState,
    verification: VerificationKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .field("private", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    fn from_pkcs8(
        algorithm: SigningAlgorithm,
        pkcs8: &[u8],
        state: SigningKeyState,
    ) -> Result<Self, SignerError> {
        let invalid = |_| SignerError::InvalidPrivateKey(algorithm);
        let (pair, verification) = match algorithm {
            SigningAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(invalid)?;
                let public: [u8; 32] = pair
                    .public_key()
                    .as_ref()
                    .try_into()
                    .map_err(|_| SignerError::InvalidPrivateKey(algorithm))?;
                let key = VerificationKey::ed25519(String::new(), public)
                    .map_err(|_| SignerError::InvalidPrivateKey(algorithm))?;
                (KeyPairKind::Ed25519(pair), key)
            }
            SigningAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(invalid)?;
                let point = pair.public_key().as_ref();
                let (x, y) = match (point.get(1..33), point.get(33..65)) {
                    (Some(x), Some(y)) if point.len() == 65 => (x, y),
                    _ => return Err(SignerError::InvalidPrivateKey(algorithm)),
                };
                let x: [u8; 32] = x
                    .try_into()
                    .map_err(|_| SignerError::InvalidPrivateKey(algorithm))?;
                let y: [u8; 32] = y
                    .try_into()
                    .map_err(|_| SignerError::InvalidPrivateKey(algorithm))?;
                let key = VerificationKey::p256(String::new(), x, y)
                    .map_err(|_| SignerError::InvalidPrivateKey(algorithm))?;
                (KeyPairKind::P256(pair), key)
            }
        };
        let kid = thumbprint(&verification);
        let verification = VerificationKey {
            kid: kid.clone(),
            alg: Some(algorithm.jose()),
            ..verification
        };
        Ok(Self {
            kid,
            algorithm,
            pair,
            state,
            verification,
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.pair {
            KeyPairKind::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            KeyPairKind::P256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignerError::Signing),
        }
    }
}

/// The RFC 7638 JWK thumbprint, base64url, used as the key id.
fn thumbprint(key: &VerificationKey) -> String {
    // Required members only, in lexicographic order, no whitespace.
    let canonical = match key.to_public_jwk() {
        Some(jwk) => {
            let get = |name: &str| {
                jwk.get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            match get("kty").as_str() {
                "OKP" => format!(
                    r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                    get("crv"),
                    get("x")
                ),
                "EC" => format!(
                    r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                    get("crv"),
                    get("x"),
                    get("y")
                ),
                _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, get("e"), get("n")),
            }
        }
        None => String::new(),
    };
    b64_encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

/// Settings for the tokens a signer issues.
#[derive(Debug, Clone)]
pub struct SignerConfig {
    /// The `iss` claim: MAOS's issuer URL.
    pub issuer: String,
    /// The `aud` claim of access tokens.
    pub audience: String,
    /// Lifetime of access tokens; keep it short (minutes).
    pub access_token_ttl: Duration,
}

/// What an access token asserts. Roles are not in it: the server looks them up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    pub subject: PrincipalId,
    /// Scopes granted (for API keys and client credentials, a subset of the roles).
    pub scope: BTreeSet<String>,
    /// The OAuth client, for client-credential grants.
    pub client_id: Option<String>,
    /// Authentication methods used (RFC 8176 values such as `pwd`, `otp`, `mtls`).
    pub amr: Vec<String>,
}

/// A freshly signed access token.
#[derive(Debug)]
pub struct IssuedAccessToken {
    pub token: SecretString,
    pub jti: String,
    pub kid: String,
    pub expires_at: SystemTime,
}

/// Signs access tokens and manages the signing keys' rotation.
#[derive(Debug)]
pub struct TokenSigner {
    config: SignerConfig,
    keys: Vec<SigningKey>,
    clock: Arc<dyn Clock>,
}

impl TokenSigner {
    /// A signer without keys; add one with [`TokenSigner::rotate`] or [`TokenSigner::add_key`].
    pub fn new(config: SignerConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            keys: Vec::new(),
            clock,
        }
    }

    pub fn config(&self) -> &SignerConfig {
        &self.config
    }

    /// Generates a key and makes it the active one. The previous active key keeps validating.
    /// Returns the new key's id and its PKCS#8 document for storage.
    pub fn rotate(
        &mut self,
        algorithm: SigningAlgorithm,
    ) -> Result<(String, SecretBytes), SignerError> {
        let pkcs8 = match algorithm {
            SigningAlgorithm::EdDsa => Ed25519KeyPair::generate()
                .and_then(|pair| pair.to_pkcs8())
                .map_err(|_| RandomError)?,
            SigningAlgorithm::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(|_| RandomError)?,
        };
        let pkcs8 = SecretBytes::new(pkcs8.as_ref().to_vec());
        let kid = self.add_key(algorithm, &pkcs8, SigningKeyState::Active)?;
        Ok((kid, pkcs8))
    }

    /// Adds a stored key (after a restart). [`SigningKeyState::Active`] makes it the signing
    /// key and demotes the previous one; a validating key keeps the time it was replaced, so
    /// [`TokenSigner::retire_replaced_before`] still retires it on schedule.
    pub fn add_key(
        &mut self,
        algorithm: SigningAlgorithm,
        pkcs8: &SecretBytes,
        state: SigningKeyState,
    ) -> Result<String, SignerError> {
        let now = self.clock.now();
        let key = SigningKey::from_pkcs8(algorithm, pkcs8.expose(), state)?;
        let kid = key.kid.clone();
        if state == SigningKeyState::Active {
            for other in &mut self.keys {
                if other.state == SigningKeyState::Active {
                    other.state = SigningKeyState::Validating { since: now };
                }
            }
        }
        self.keys.retain(|k| k.kid != kid);
        self.keys.push(key);
        Ok(kid)
    }

    /// Removes a validating key: tokens it signed stop validating.
    pub fn retire(&mut self, kid: &str) -> Result<(), SignerError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| SignerError::UnknownKey(kid.to_owned()))?;
        if key.state == SigningKeyState::Active {
            return Err(SignerError::RetiringActiveKey(kid.to_owned()));
        }
        self.keys.retain(|k| k.kid != kid);
        Ok(())
    }

    /// Retires the keys replaced more than `overlap` ago; returns their ids. An overlap of at
    /// least the access-token lifetime lets every token signed by the old key run out.
    pub fn retire_replaced_before(&mut self, overlap: Duration) -> Vec<String> {
        let now = self.clock.now();
        let mut retired = Vec::new();
        self.keys.retain(|k| match k.state {
            SigningKeyState::Validating { since } if since + overlap <= now => {
                retired.push(k.kid.clone());
                false
            }
            SigningKeyState::Active | SigningKeyState::Validating { .. } => true,
        });
        retired
    }

    pub fn active_kid(&self) -> Option<&str> {
        self.active().map(|k| k.kid.as_str())
    }

    /// Each key with its state, for the admin API and the audit of rotations.
    pub fn key_states(&self) -> Vec<(String, SigningAlgorithm, SigningKeyState)> {
        self.keys
            .iter()
            .map(|k| (k.kid.clone(), k.algorithm, k.state))
            .collect()
    }

    fn active(&self) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.state == SigningKeyState::Active)
    }

    /// Signs an access token for the grant.
    pub fn issue(&self, grant: &AccessGrant) -> Result<IssuedAccessToken, SignerError> {
        let key = self.active().ok_or(SignerError::NoActiveKey)?;
        let now = self.clock.now();
        let expires_at = now + self.config.access_token_ttl;
        let jti = b64_encode(&random_bytes::<16>()?);

        let header =
            json!({"alg": key.algorithm.jose().as_str(), "kid": key.kid, "typ": ACCESS_TOKEN_TYPE});
        let mut claims = json!({
            "iss": self.config.issuer,
            "sub": grant.subject.to_string(),
            "aud": self.config.audience,
            "iat": unix_seconds(now),
            "nbf": unix_seconds(now),
            "exp": unix_seconds(expires_at),
            "jti": jti,
        });
        if let Some(object) = claims.as_object_mut() {
            if !grant.scope.is_empty() {
                let scope: Vec<&str> = grant.scope.iter().map(String::as_str).collect();
                object.insert("scope".into(), Value::String(scope.join(" ")));
            }
            if let Some(client_id) = &grant.client_id {
                object.insert("client_id".into(), Value::String(client_id.clone()));
            }
            if !grant.amr.is_empty() {
                object.insert("amr".into(), json!(grant.amr));
            }
        }

        let signing_input = format!(
            "{}.{}",
            b64_encode(header.to_string().as_bytes()),
            b64_encode(claims.to_string().as_bytes())
        );
        let signature = key.sign(signing_input.as_bytes())?;
        let token = format!("{signing_input}.{}", b64_encode(&signature));
        Ok(IssuedAccessToken {
            token: SecretString::new(token),
            jti,
            kid: key.kid.clone(),
            expires_at,
        })
    }

    /// The keys that validate MAOS tokens now (active and replaced-but-not-retired).
    pub fn key_set(&self) -> KeySet {
        // Thumbprints of distinct keys never collide, so this cannot fail; an empty set stays empty.
        KeySet::new(self.keys.iter().map(|k| k.verification.clone()).collect()).unwrap_or_default()
    }

    /// The `/.well-known/jwks.json` document.
    pub fn jwks(&self) -> Value {
        self.key_set().to_jwks()
    }

    /// A validator over the current keys; build a new one after each rotation.
    pub fn validator(&self, leeway: Duration) -> AccessTokenValidator {
        AccessTokenValidator::new(
            self.key_set(),
            ClaimRules {
                issuer: self.config.issuer.clone(),
                audience: self.config.audience.clone(),
                leeway,
                max_age: None,
            },
            Arc::clone(&self.clock),
        )
    }
}

/// The `/.well-known/openid-configuration` document for MAOS as an issuer.
pub fn openid_configuration(issuer: &str, algorithms: &[SigningAlgorithm]) -> Value {
    let base = issuer.trim_end_matches('/');
    let algs: Vec<&str> = algorithms.iter().map(|a| a.jose().as_str()).collect();
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/v1/oauth/token"),
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        // MAOS issues access tokens, not OpenID Connect ID tokens: the algorithms its tokens
        // are signed with are named under a MAOS key (RFC 8414 has none for access tokens).
        "maos_access_token_signing_alg_values_supported": algs,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "amr"],
    })
}

/// An access token's content after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenClaims {
    pub subject: PrincipalId,
    pub scope: BTreeSet<String>,
    pub client_id: Option<String>,
    pub amr: Vec<String>,
    pub jti: String,
    pub kid: String,
    pub expires_at: i64,
    /// `iat`, when the token carries it (MAOS's own tokens always do).
    pub issued_at: Option<i64>,
}

/// Validates MAOS access tokens: signature with a MAOS key, `typ`, claims, revocation.
#[derive(Debug, Clone)]
pub struct AccessTokenValidator {
    keys: KeySet,
    policy: JwsPolicy,
    rules: ClaimRules,
    clock: Arc<dyn Clock>,
}

impl AccessTokenValidator {
    pub fn new(keys: KeySet, rules: ClaimRules, clock: Arc<dyn Clock>) -> Self {
        let policy = JwsPolicy {
            allowed_algorithms: vec![Algorithm::EdDsa, Algorithm::Es256],
            expected_type: Some(ACCESS_TOKEN_TYPE.to_owned()),
            ..JwsPolicy::default()
        };
        Self {
            keys,
            policy,
            rules,
            clock,
        }
    }

    /// Changes the JWS policy (size limit); `typ` and algorithms stay MAOS's.
    pub fn with_max_token_len(mut self, max: usize) -> Self {
        self.policy.max_token_len = max;
        self
    }

    pub fn validate(
        &self,
        token: &str,
        revoked: &RevocationSet,
    ) -> Result<AccessTokenClaims, TokenError> {
        let verified = verify_compact(token, &self.keys, &self.policy)?;
        let claims = validate_claims(&verified.payload, &self.rules, self.clock.now())?;

        let jti = claims.jti.clone().ok_or(TokenError::MissingClaim("jti"))?;
        if revoked.is_revoked(&jti) {
            return Err(TokenError::Revoked);
        }
        let subject = claims
            .sub
            .as_deref()
            .ok_or(TokenError::MissingClaim("sub"))?
            .parse::<PrincipalId>()
            .map_err(|_| TokenError::ClaimType("sub"))?;
        let scope = match claims.all.get("scope") {
            None => BTreeSet::new(),
            Some(Value::String(s)) => s
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(_) => return Err(TokenError::ClaimType("scope")),
        };
        let client_id = match claims.all.get("client_id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(TokenError::ClaimType("client_id")),
        };
        let amr = match claims.all.get("amr") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or(TokenError::ClaimType("amr"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(TokenError::ClaimType("amr")),
        };
        Ok(AccessTokenClaims {
            subject,
            scope,
            client_id,
            amr,
            jti,
            kid: verified.kid,
            expires_at: claims.exp,
            issued_at: claims.iat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn signer(clock: &Arc<ManualClock>) -> TokenSigner {
        TokenSigner::new(
            SignerConfig {
                issuer: "https://maos.example".into(),
                audience: "maos".into(),
                access_token_ttl: Duration::from_secs(300),
            },
            clock.clone(),
        )
    }

    fn grant() -> AccessGrant {
        AccessGrant {
            subject: PrincipalId::agent("etl").unwrap(),
            scope: BTreeSet::new(),
            client_id: Some("etl".into()),
            amr: vec![],
        }
    }

    #[test]
    fn jwks_lists_public_keys_only() {
        let clock = ManualClock::at(1_800_000_000);
        let mut s = signer(&clock);
        assert!(matches!(s.issue(&grant()), Err(SignerError::NoActiveKey)));
        let (ed, _) = s.rotate(SigningAlgorithm::EdDsa).unwrap();
        let (ec, _) = s.rotate(SigningAlgorithm::Es256).unwrap();
        let jwks = s.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kid"], ed.as_str());
        assert_eq!(keys[0]["kty"], "OKP");
        assert_eq!(keys[0]["alg"], "EdDSA");
        assert_eq!(keys[1]["kid"], ec.as_str());
        assert_eq!(keys[1]["crv"], "P-256");
        assert!(keys.iter().all(|k| k.get("d").is_none()));
        // The JWKS reads back into an equivalent key set.
        let back = KeySet::from_jwks_json(&jwks.to_string(), crate::jose::KeySetOptions::default())
            .unwrap();
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn keys_survive_a_restart_with_their_state() {
        let clock = ManualClock::at(1_800_000_000);
        let mut s = signer(&clock);
        let (old_kid, old_pkcs8) = s.rotate(SigningAlgorithm::Es256).unwrap();
        let old_token = s.issue(&grant()).unwrap();
        let (new_kid, new_pkcs8) = s.rotate(SigningAlgorithm::EdDsa).unwrap();
        let states = s.key_states();
        let replaced = states.iter().find(|(kid, _, _)| *kid == old_kid).unwrap().2;

        let mut restarted = signer(&clock);
        restarted
            .add_key(SigningAlgorithm::Es256, &old_pkcs8, replaced)
            .unwrap();
        restarted
            .add_key(SigningAlgorithm::EdDsa, &new_pkcs8, SigningKeyState::Active)
            .unwrap();
        assert_eq!(restarted.active_kid(), Some(new_kid.as_str()));
        let revoked = RevocationSet::new(Duration::from_secs(30), clock.clone());
        let claims = restarted
            .validator(Duration::from_secs(30))
            .validate(old_token.token.expose(), &revoked)
            .unwrap();
        assert_eq!(claims.kid, old_kid);
        assert_eq!(claims.client_id.as_deref(), Some("etl"));

        clock.advance(Duration::from_secs(300));
        assert_eq!(
            restarted.retire_replaced_before(Duration::from_secs(300)),
            vec![old_kid]
        );
        assert!(matches!(
            restarted.add_key(
                SigningAlgorithm::EdDsa,
                &SecretBytes::new(vec![1, 2, 3]),
                SigningKeyState::Active
            ),
            Err(SignerError::InvalidPrivateKey(SigningAlgorithm::EdDsa))
        ));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let clock = ManualClock::at(1_800_000_000);
        let mut s = signer(&clock);
        let (_, pkcs8) = s.rotate(SigningAlgorithm::Es256).unwrap();
        let issued = s.issue(&grant()).unwrap();
        let printed = format!("{issued:?} {s:?} {pkcs8:?}");
        assert!(!printed.contains(issued.token.expose()));
        assert!(printed.contains("[redacted]"));
        let signature = issued.token.expose().rsplit('.').next().unwrap().to_owned();
        assert!(!printed.contains(&signature));
    }

    #[test]
    fn discovery_document() {
        let doc = openid_configuration(
            "https://maos.example/",
            &[SigningAlgorithm::EdDsa, SigningAlgorithm::Es256],
        );
        assert_eq!(doc["issuer"], "https://maos.example/");
        assert_eq!(
            doc["jwks_uri"],
            "https://maos.example/.well-known/jwks.json"
        );
        assert_eq!(doc["token_endpoint"], "https://maos.example/v1/oauth/token");
        assert_eq!(
            doc["maos_access_token_signing_alg_values_supported"],
            serde_json::json!(["EdDSA", "ES256"])
        );
        // Nothing is advertised that MAOS does not do.
        assert!(doc.get("id_token_signing_alg_values_supported").is_none());
        assert!(!doc.to_string().contains("tls_client_auth"));
    }
}
