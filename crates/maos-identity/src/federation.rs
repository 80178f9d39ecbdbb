//! Federation: ID tokens from trusted external OIDC issuers, mapped to MAOS principals.
//!
//! The server fetches and caches each issuer's JWKS (or reads it from a file); this module
//! takes the document as text, keeps the RSA, EC (P-256) and OKP (Ed25519) signing keys and
//! validates ID tokens with the same strict JWS path as MAOS's own tokens.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jose::{
    Algorithm, JwkError, JwsPolicy, KeySet, KeySetOptions, TokenError, verify_compact,
};
use crate::principal::{PrincipalId, PrincipalIdError, PrincipalKind};
use crate::token::{ClaimRules, ValidatedClaims, validate_claims};

fn default_subject_claim() -> String {
    "sub".to_owned()
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa]
}

fn default_leeway() -> u64 {
    60
}

fn default_kind() -> PrincipalKind {
    PrincipalKind::User
}

/// Grants `roles` when the claim `claim` equals `value` (or, for an array claim such as
/// `groups`, contains it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRoleRule {
    pub claim: String,
    pub value: String,
    pub roles: Vec<String>,
}

/// A trusted external issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The exact `iss` value.
    pub issuer: String,
    /// MAOS's client id at that issuer: the expected `aud`.
    pub audience: String,
    /// Algorithms accepted from this issuer: RS256, PS256, ES256, EdDSA. Never HS256.
    #[serde(default = "default_algorithms")]
    pub allowed_algorithms: Vec<Algorithm>,
    /// The claim whose value names the principal (`sub`, `email`, `preferred_username`...).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    #[serde(default = "default_kind")]
    pub principal_kind: PrincipalKind,
    /// Put before the claim value, to keep issuers' namespaces apart (`corp/`).
    #[serde(default)]
    pub principal_prefix: String,
    #[serde(default)]
    pub role_rules: Vec<ClaimRoleRule>,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Refuse ID tokens issued longer ago than this, if set.
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    #[error("issuer configuration: {0}")]
    Config(String),
    #[error("the issuer's JWKS: {0}")]
    Jwks(#[from] JwkError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the claim `{0}` naming the principal is missing or not a string")]
    MissingSubject(String),
    #[error("the mapped principal id is invalid: {0}")]
    BadPrincipal(#[from] PrincipalIdError),
    #[error("the nonce does not match")]
    NonceMismatch,
    #[error("several audiences and `azp` is not MAOS's client id")]
    AuthorizedParty,
}

/// An external identity after validation and mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedIdentity {
    pub principal: PrincipalId,
    /// Roles granted by the rules. The server decides how they combine with stored bindings.
    pub roles: BTreeSet<String>,
    pub claims: ValidatedClaims,
}

/// Validates one issuer's ID tokens.
#[derive(Debug, Clone)]
pub struct FederationValidator {
    config: TrustedIssuer,
    keys: KeySet,
    policy: JwsPolicy,
}

impl FederationValidator {
    /// Checks the configuration and reads the issuer's JWKS document. Keys MAOS cannot use
    /// are left out (see [`KeySet::skipped`]); symmetric keys are never accepted.
    pub fn new(config: TrustedIssuer, jwks_json: &str) -> Result<Self, FederationError> {
        if config.allowed_algorithms.is_empty() {
            return Err(FederationError::Config("no allowed algorithms".into()));
        }
        if config.allowed_algorithms.iter().any(|a| a.is_symmetric()) {
            return Err(FederationError::Config(
                "HS256 is never accepted from an external issuer".into(),
            ));
        }
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err(FederationError::Config(
                "issuer and audience are required".into(),
            ));
        }
        let keys = KeySet::from_jwks_json(
            jwks_json,
            KeySetOptions {
                allow_symmetric: false,
                skip_unusable: true,
            },
        )?;
        let policy = JwsPolicy {
            allowed_algorithms: config.allowed_algorithms.clone(),
            ..JwsPolicy::default()
        };
        Ok(Self {
            config,
            keys,
            policy,
        })
    }

    pub fn config(&self) -> &TrustedIssuer {
        &self.config
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Replaces the keys after the server refreshed the JWKS document.
    pub fn update_jwks(&mut self, jwks_json: &str) -> Result<(), FederationError> {
        self.keys = KeySet::from_jwks_json(
            jwks_json,
            KeySetOptions {
                allow_symmetric: false,
                skip_unusable: true,
            },
        )?;
        Ok(())
    }

    /// Validates an ID token and maps it. `nonce` is the value sent in the authentication
    /// request, when there was one.
    pub fn validate(
        &self,
        id_token: &str,
        now: SystemTime,
        nonce: Option<&str>,
    ) -> Result<FederatedIdentity, FederationError> {
        let verified = verify_compact(id_token, &self.keys, &self.policy)?;
        let rules = ClaimRules {
            issuer: self.config.issuer.clone(),
            audience: self.config.audience.clone(),
            leeway: Duration::from_secs(self.config.leeway_seconds),
            max_age: self.config.max_age_seconds.map(Duration::from_secs),
        };
        let claims = validate_claims(&verified.payload, &rules, now)?;

        // OIDC Core 3.1.3.7: with several audiences, `azp` must name us.
        if claims.aud.len() > 1 && claims.string("azp") != Some(self.config.audience.as_str()) {
            return Err(FederationError::AuthorizedParty);
        }
        if let Some(expected) = nonce
            && claims.string("nonce") != Some(expected)
        {
            return Err(FederationError::NonceMismatch);
        }

        let subject = claims
            .string(&self.config.subject_claim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| FederationError::MissingSubject(self.config.subject_claim.clone()))?;
        let principal = PrincipalId::new(
            self.config.principal_kind,
            format!("{}{subject}", self.config.principal_prefix),
        )?;

        let mut roles = BTreeSet::new();
        for rule in &self.config.role_rules {
            let granted = match claims.all.get(&rule.claim) {
                Some(Value::String(s)) => *s == rule.value,
                Some(Value::Array(list)) => {
                    list.iter().any(|v| v.as_str() == Some(rule.value.as_str()))
                }
                Some(Value::Bool(b)) => b.to_string() == rule.value,
                _ => false,
            };
            if granted {
                roles.extend(rule.roles.iter().cloned());
            }
        }
        Ok(FederatedIdentity {
            principal,
            roles,
            claims,
        })
    }
}
