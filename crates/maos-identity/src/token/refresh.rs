//! Rotating opaque refresh tokens grouped in families (OAuth 2.0 Security BCP 4.14).
//!
//! Each use of a refresh token replaces it with a new one in the same family. Presenting a
//! token that was already replaced means two parties hold it, so the whole family is revoked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use maos_core::Clock;
use serde::{Deserialize, Serialize};

use crate::jose::b64_encode;
use crate::principal::PrincipalId;
use crate::secret::{RandomError, SecretString, random_bytes};

/// Prefix of refresh tokens, so that leaked ones are recognisable.
pub const REFRESH_TOKEN_PREFIX: &str = "maosrt_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    #[error("unknown refresh token")]
    Unknown,
    #[error("refresh token reused after rotation; family `{family}` revoked")]
    ReuseDetected { family: String },
    #[error("the refresh token's family is revoked")]
    FamilyRevoked,
    #[error("the refresh token has expired")]
    Expired,
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Lifetimes of refresh tokens.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// How long one refresh token may wait before use.
    pub idle_ttl: Duration,
    /// How long a family lives from its first login, however often it is rotated.
    pub family_ttl: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            idle_ttl: Duration::from_secs(14 * 24 * 3600),
            family_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// One refresh-token family: a login and its successive rotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub id: String,
    pub principal: PrincipalId,
    pub created_at: SystemTime,
    pub revoked: bool,
    /// Hash of the one token that may be used next.
    pub current: String,
    pub current_expires_at: SystemTime,
}

/// The outcome of a successful rotation.
#[derive(Debug)]
pub struct RotatedRefresh {
    pub token: SecretString,
    pub family: String,
    pub principal: PrincipalId,
}

/// The state machine of refresh-token families. Only hashes of tokens are kept.
#[derive(Debug, Clone)]
pub struct RefreshFamilies {
    policy: RefreshPolicy,
    families: HashMap<String, Family>,
    /// Hash of every token ever issued (current or replaced) → family id.
    by_hash: HashMap<String, String>,
    clock: Arc<dyn Clock>,
}

impl RefreshFamilies {
    pub fn new(policy: RefreshPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            families: HashMap::new(),
            by_hash: HashMap::new(),
            clock,
        }
    }

    /// Starts a family at login and returns its first token.
    pub fn issue(&mut self, principal: PrincipalId) -> Result<RotatedRefresh, RefreshError> {
        let now = self.clock.now();
        let family_id = b64_encode(&random_bytes::<16>()?);
        let (token, hash) = new_token()?;
        self.by_hash.insert(hash.clone(), family_id.clone());
        self.families.insert(
            family_id.clone(),
            Family {
                id: family_id.clone(),
                principal: principal.clone(),
                created_at: now,
                revoked: false,
                current: hash,
                current_expires_at: now + self.policy.idle_ttl,
            },
        );
        Ok(RotatedRefresh {
            token,
            family: family_id,
            principal,
        })
    }

    /// Uses a refresh token: returns its replacement, or refuses. A replaced token revokes
    /// its family.
    pub fn rotate(&mut self, presented: &str) -> Result<RotatedRefresh, RefreshError> {
        let now = self.clock.now();
        let hash = hash_token(presented);
        let family_id = self
            .by_hash
            .get(&hash)
            .cloned()
            .ok_or(RefreshError::Unknown)?;
        let family = self
            .families
            .get_mut(&family_id)
            .ok_or(RefreshError::Unknown)?;

        if family.revoked {
            return Err(RefreshError::FamilyRevoked);
        }
        if family.current != hash {
            family.revoked = true;
            return Err(RefreshError::ReuseDetected { family: family_id });
        }
        if now >= family.current_expires_at || now >= family.created_at + self.policy.family_ttl {
            return Err(RefreshError::Expired);
        }

        let (token, new_hash) = new_token()?;
        family.current = new_hash.clone();
        family.current_expires_at = now + self.policy.idle_ttl;
        let principal = family.principal.clone();
        self.by_hash.insert(new_hash, family_id.clone());
        Ok(RotatedRefresh {
            token,
            family: family_id,
            principal,
        })
    }

    /// Revokes a family (logout).
    pub fn revoke_family(&mut self, family: &str) -> bool {
        match self.families.get_mut(family) {
            Some(f) => {
                f.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Revokes every family of a principal (disabling, password change). Returns how many.
    pub fn revoke_principal(&mut self, principal: &PrincipalId) -> usize {
        let mut count = 0;
        for family in self
            .families
            .values_mut()
            .filter(|f| &f.principal == principal && !f.revoked)
        {
            family.revoked = true;
            count += 1;
        }
        count
    }

    /// Forgets families past their lifetime, with all their token hashes.
    pub fn purge(&mut self) {
        let now = self.clock.now();
        let family_ttl = self.policy.family_ttl;
        self.families.retain(|_, f| now < f.created_at + family_ttl);
        let families = &self.families;
        self.by_hash.retain(|_, id| families.contains_key(id));
    }

    pub fn family(&self, id: &str) -> Option<&Family> {
        self.families.get(id)
    }

    /// The whole state, for persisting. Holds hashes only.
    pub fn snapshot(&self) -> RefreshSnapshot {
        RefreshSnapshot {
            families: self.families.values().cloned().collect(),
            token_hashes: self
                .by_hash
                .iter()
                .map(|(h, f)| (h.clone(), f.clone()))
                .collect(),
        }
    }

    /// Restores a persisted state.
    pub fn restore(
        policy: RefreshPolicy,
        snapshot: RefreshSnapshot,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            policy,
            families: snapshot
                .families
                .into_iter()
                .map(|f| (f.id.clone(), f))
                .collect(),
            by_hash: snapshot.token_hashes.into_iter().collect(),
            clock,
        }
    }
}

/// The persisted form of [`RefreshFamilies`]: families, and every issued token's hash (current
/// or replaced) with its family, which is what makes reuse detectable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RefreshSnapshot {
    pub families: Vec<Family>,
    pub token_hashes: Vec<(String, String)>,
}

fn new_token() -> Result<(SecretString, String), RandomError> {
    let token = format!(
        "{REFRESH_TOKEN_PREFIX}{}",
        b64_encode(&random_bytes::<32>()?)
    );
    let hash = hash_token(&token);
    Ok((SecretString::new(token), hash))
}

/// SHA-256 suffices: the token carries 256 random bits, so there is nothing to brute-force.
fn hash_token(token: &str) -> String {
    b64_encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::ManualClock;

    fn families(clock: &Arc<ManualClock>) -> RefreshFamilies {
        RefreshFamilies::new(RefreshPolicy::default(), clock.clone())
    }

    #[test]
    fn rotation_chain() {
        let clock = ManualClock::at(1_000);
        let mut f = families(&clock);
        let alice = PrincipalId::user("alice").unwrap();
        let first = f.issue(alice.clone()).unwrap();
        let second = f.rotate(first.token.expose()).unwrap();
        assert_eq!(second.principal, alice);
        assert_eq!(second.family, first.family);
        let third = f.rotate(second.token.expose()).unwrap();
        assert_ne!(third.token.expose(), second.token.expose());
    }

    #[test]
    fn reuse_of_a_rotated_token_revokes_the_family() {
        let clock = ManualClock::at(1_000);
        let mut f = families(&clock);
        let first = f.issue(PrincipalId::user("alice").unwrap()).unwrap();
        let second = f.rotate(first.token.expose()).unwrap();

        let reuse = f.rotate(first.token.expose());
        assert_eq!(
            reuse.unwrap_err(),
            RefreshError::ReuseDetected {
                family: first.family.clone()
            }
        );
        // The legitimate holder's newer token is dead too.
        assert_eq!(
            f.rotate(second.token.expose()).unwrap_err(),
            RefreshError::FamilyRevoked
        );
        assert!(f.family(&first.family).unwrap().revoked);
    }

    #[test]
    fn reuse_is_still_detected_after_a_restore() {
        let clock = ManualClock::at(1_000);
        let mut f = families(&clock);
        let first = f.issue(PrincipalId::user("alice").unwrap()).unwrap();
        let second = f.rotate(first.token.expose()).unwrap();
        let text = serde_json::to_string(&f.snapshot()).unwrap();
        assert!(!text.contains(first.token.expose()) && !text.contains(second.token.expose()));

        let snapshot: RefreshSnapshot = serde_json::from_str(&text).unwrap();
        let mut restored =
            RefreshFamilies::restore(RefreshPolicy::default(), snapshot, clock.clone());
        assert!(matches!(
            restored.rotate(first.token.expose()),
            Err(RefreshError::ReuseDetected { .. })
        ));
        assert_eq!(
            restored.rotate(second.token.expose()).unwrap_err(),
            RefreshError::FamilyRevoked
        );
    }

    #[test]
    fn expiry_and_unknown_tokens() {
        let clock = ManualClock::at(1_000);
        let mut f = families(&clock);
        let first = f.issue(PrincipalId::user("bob").unwrap()).unwrap();
        assert_eq!(f.rotate("maosrt_nope").unwrap_err(), RefreshError::Unknown);
        clock.advance(RefreshPolicy::default().idle_ttl);
        assert_eq!(
            f.rotate(first.token.expose()).unwrap_err(),
            RefreshError::Expired
        );
    }

    #[test]
    fn revoking_a_principal_revokes_all_its_families() {
        let clock = ManualClock::at(1_000);
        let mut f = families(&clock);
        let bob = PrincipalId::user("bob").unwrap();
        let a = f.issue(bob.clone()).unwrap();
        let b = f.issue(bob.clone()).unwrap();
        assert_eq!(f.revoke_principal(&bob), 2);
        assert_eq!(
            f.rotate(a.token.expose()).unwrap_err(),
            RefreshError::FamilyRevoked
        );
        assert_eq!(
            f.rotate(b.token.expose()).unwrap_err(),
            RefreshError::FamilyRevoked
        );
    }
}
