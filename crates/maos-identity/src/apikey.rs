//! API keys for agents: `maos_<lookup id>_<secret>`.
//!
//! The id (16 hex digits) finds the stored record; the secret (64 hex digits, 256 random bits)
//! is only ever stored as its SHA-256 hash, compared in constant time. A slow hash would add
//! nothing: the secret is random, not chosen by a person.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::jose::jwk::secrets_equal;
use crate::principal::{Principal, PrincipalId};
use crate::secret::{RandomError, SecretString, random_bytes};

/// The recognisable prefix (for secret scanners and log redaction).
pub const API_KEY_PREFIX: &str = "maos_";
const ID_HEX_LEN: usize = 16;
const SECRET_HEX_LEN: usize = 64;
/// Total length of a key: prefix, id, separator, secret.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + ID_HEX_LEN + 1 + SECRET_HEX_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    #[error("not a MAOS API key")]
    Malformed,
    #[error("the API key does not match")]
    Mismatch,
    #[error("the API key has been revoked")]
    Revoked,
    #[error("the API key has expired")]
    Expired,
    #[error("the API key was replaced and its grace period is over")]
    Superseded,
    #[error("the principal does not hold the scopes {0:?}")]
    ScopeNotHeld(Vec<String>),
    #[error("the principal is disabled")]
    PrincipalDisabled,
    #[error("the key belongs to another principal")]
    WrongPrincipal,
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A presented key, split into its lookup id and secret.
#[derive(Debug)]
pub struct ParsedApiKey {
    pub id: String,
    secret: SecretString,
}

impl ParsedApiKey {
    /// Parses without panicking on any input; only the exact format is accepted.
    pub fn parse(text: &str) -> Result<Self, ApiKeyError> {
        if text.len() != API_KEY_LEN || !text.is_ascii() {
            return Err(ApiKeyError::Malformed);
        }
        let rest = text
            .strip_prefix(API_KEY_PREFIX)
            .ok_or(ApiKeyError::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(ApiKeyError::Malformed)?;
        let lower_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if id.len() != ID_HEX_LEN
            || secret.len() != SECRET_HEX_LEN
            || !lower_hex(id)
            || !lower_hex(secret)
        {
            return Err(ApiKeyError::Malformed);
        }
        Ok(Self {
            id: id.to_owned(),
            secret: SecretString::new(secret),
        })
    }
}

/// Set when a key was rotated: the old key works until `grace_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supersession {
    pub by: String,
    pub grace_until: SystemTime,
}

/// What the server stores for a key. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub principal: PrincipalId,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    pub scopes: BTreeSet<String>,
    pub created_at: SystemTime,
    pub expires_at: Option<SystemTime>,
    pub revoked_at: Option<SystemTime>,
    pub superseded: Option<Supersession>,
}

/// A new key: the full text, shown once, and the record to store.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: SecretString,
    pub record: ApiKeyRecord,
}

/// Creates a key for `principal` with `scopes`, which must all be roles the principal holds.
pub fn create_api_key(
    principal: &Principal,
    scopes: BTreeSet<String>,
    ttl: Option<Duration>,
    now: SystemTime,
) -> Result<NewApiKey, ApiKeyError> {
    if !principal.is_active() {
        return Err(ApiKeyError::PrincipalDisabled);
    }
    let missing: Vec<String> = scopes.difference(&principal.roles).cloned().collect();
    if !missing.is_empty() {
        return Err(ApiKeyError::ScopeNotHeld(missing));
    }

    let id = hex(&random_bytes::<8>()?);
    let secret = hex(&random_bytes::<32>()?);
    let key = SecretString::new(format!("{API_KEY_PREFIX}{id}_{secret}"));
    let record = ApiKeyRecord {
        id,
        principal: principal.id.clone(),
        secret_hash: hash_secret(&secret),
        scopes,
        created_at: now,
        expires_at: ttl.map(|ttl| now + ttl),
        revoked_at: None,
        superseded: None,
    };
    Ok(NewApiKey { key, record })
}

impl ApiKeyRecord {
    /// Checks a presented key against this record (found by `presented.id`).
    pub fn verify(&self, presented: &ParsedApiKey, now: SystemTime) -> Result<(), ApiKeyError> {
        let hash = hash_secret(presented.secret.expose());
        if presented.id != self.id || !secrets_equal(hash.as_bytes(), self.secret_hash.as_bytes()) {
            return Err(ApiKeyError::Mismatch);
        }
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Err(ApiKeyError::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiKeyError::Expired);
        }
        if self
            .superseded
            .as_ref()
            .is_some_and(|s| s.grace_until <= now)
        {
            return Err(ApiKeyError::Superseded);
        }
        Ok(())
    }

    /// The scopes the key grants now: its own, limited to the roles the principal still holds.
    pub fn effective_scopes(&self, principal: &Principal) -> Result<BTreeSet<String>, ApiKeyError> {
        if principal.id != self.principal {
            return Err(ApiKeyError::WrongPrincipal);
        }
        if !principal.is_active() {
            return Err(ApiKeyError::PrincipalDisabled);
        }
        Ok(self
            .scopes
            .intersection(&principal.roles)
            .cloned()
            .collect())
    }

    /// Revokes the key at `now`.
    pub fn revoke(&mut self, now: SystemTime) {
        self.revoked_at.get_or_insert(now);
    }

    /// Replaces this key with a new one with the same scopes and lifetime. The old key keeps
    /// working for `grace` (never past its own expiry).
    pub fn rotate(
        &mut self,
        principal: &Principal,
        grace: Duration,
        now: SystemTime,
    ) -> Result<NewApiKey, ApiKeyError> {
        if principal.id != self.principal {
            return Err(ApiKeyError::WrongPrincipal);
        }
        let ttl = self
            .expires_at
            .map(|at| at.duration_since(self.created_at).unwrap_or_default());
        let new = create_api_key(principal, self.scopes.clone(), ttl, now)?;
        self.superseded = Some(Supersession {
            by: new.record.id.clone(),
            grace_until: now + grace,
        });
        Ok(new)
    }
}

fn hash_secret(secret: &str) -> String {
    hex(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn agent() -> Principal {
        Principal::new(PrincipalId::agent("etl").unwrap()).with_roles(["reader", "writer"])
    }

    fn scopes(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn create_parse_verify() {
        let new = create_api_key(&agent(), scopes(&["reader"]), None, at(T0)).unwrap();
        let text = new.key.expose();
        assert!(text.starts_with("maos_"));
        assert_eq!(text.len(), API_KEY_LEN);
        assert!(
            !format!("{:?}", new).contains(&text[22..]),
            "secret never printed"
        );
        let parsed = ParsedApiKey::parse(text).unwrap();
        assert_eq!(parsed.id, new.record.id);
        new.record.verify(&parsed, at(T0 + 1)).unwrap();

        let mut wrong = text.to_owned();
        wrong.replace_range(
            API_KEY_LEN - 1..,
            if text.ends_with('0') { "1" } else { "0" },
        );
        let wrong = ParsedApiKey::parse(&wrong).unwrap();
        assert_eq!(
            new.record.verify(&wrong, at(T0 + 1)),
            Err(ApiKeyError::Mismatch)
        );
    }

    #[test]
    fn scopes_must_be_held() {
        let err = create_api_key(&agent(), scopes(&["reader", "admin"]), None, at(T0)).unwrap_err();
        assert_eq!(err, ApiKeyError::ScopeNotHeld(vec!["admin".into()]));
        let mut p = agent();
        let new = create_api_key(&p, scopes(&["reader", "writer"]), None, at(T0)).unwrap();
        p.roles.remove("writer");
        assert_eq!(
            new.record.effective_scopes(&p).unwrap(),
            scopes(&["reader"])
        );
        p.disable();
        assert_eq!(
            new.record.effective_scopes(&p),
            Err(ApiKeyError::PrincipalDisabled)
        );
    }

    #[test]
    fn expiry_revocation_and_rotation_grace() {
        let p = agent();
        let mut old = create_api_key(
            &p,
            scopes(&["reader"]),
            Some(Duration::from_secs(3600)),
            at(T0),
        )
        .unwrap();
        let old_key = ParsedApiKey::parse(old.key.expose()).unwrap();
        assert_eq!(
            old.record.verify(&old_key, at(T0 + 3600)),
            Err(ApiKeyError::Expired)
        );

        let new = old
            .record
            .rotate(&p, Duration::from_secs(300), at(T0 + 100))
            .unwrap();
        let new_key = ParsedApiKey::parse(new.key.expose()).unwrap();
        assert!(
            old.record.verify(&old_key, at(T0 + 399)).is_ok(),
            "grace period"
        );
        assert_eq!(
            old.record.verify(&old_key, at(T0 + 400)),
            Err(ApiKeyError::Superseded)
        );
        assert!(new.record.verify(&new_key, at(T0 + 400)).is_ok());
        assert_eq!(new.record.expires_at, Some(at(T0 + 100 + 3600)));

        let mut new_record = new.record;
        new_record.revoke(at(T0 + 500));
        assert_eq!(
            new_record.verify(&new_key, at(T0 + 500)),
            Err(ApiKeyError::Revoked)
        );
    }

    #[test]
    fn parser_refuses_near_misses() {
        let good = format!("maos_{}_{}", "0".repeat(16), "a".repeat(64));
        assert!(ParsedApiKey::parse(&good).is_ok());
        for bad in [
            good.replace("maos_", "moas_"),
            good.to_uppercase(),
            format!("{good}0"),
            good[..good.len() - 1].to_owned(),
            format!("maos_{}_{}", "0".repeat(17), "a".repeat(63)),
            format!("maos_{}_{}", "g".repeat(16), "a".repeat(64)),
            format!("maos_{}é{}", "0".repeat(15), "a".repeat(64)),
            String::new(),
        ] {
            assert_eq!(
                ParsedApiKey::parse(&bad).unwrap_err(),
                ApiKeyError::Malformed,
                "{bad}"
            );
        }
    }
}
