//! Revoked access tokens, by `jti`, kept until the token would have expired anyway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use maos_core::Clock;

use super::claims::unix_seconds;

/// A set of revoked token ids. Entries leave the set once the token's `exp` (plus leeway) has
/// passed, since the validator refuses such tokens anyway; memory stays bounded by the number
/// of tokens revoked within one token lifetime.
#[derive(Debug, Clone)]
pub struct RevocationSet {
    entries: HashMap<String, i64>,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl RevocationSet {
    pub fn new(leeway: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: HashMap::new(),
            leeway,
            clock,
        }
    }

    /// Revokes the token `jti` whose `exp` is `expires_at` (Unix seconds).
    pub fn revoke(&mut self, jti: impl Into<String>, expires_at: i64) {
        self.purge();
        self.entries.insert(jti.into(), expires_at);
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.entries.contains_key(jti)
    }

    /// Drops entries for tokens that can no longer validate.
    pub fn purge(&mut self) {
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = unix_seconds(self.clock.now());
        self.entries
            .retain(|_, exp| exp.saturating_add(leeway) > now);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, for persisting: `(jti, exp)`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, i64)> {
        self.entries.iter().map(|(jti, exp)| (jti.as_str(), *exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::ManualClock;

    #[test]
    fn entries_expire_with_their_tokens() {
        let clock = ManualClock::at(1_000);
        let mut set = RevocationSet::new(Duration::from_secs(30), clock.clone());
        set.revoke("a", 1_100);
        assert!(set.is_revoked("a"));
        clock.advance(Duration::from_secs(129));
        set.purge();
        assert!(set.is_revoked("a"));
        clock.advance(Duration::from_secs(2));
        set.purge();
        assert!(!set.is_revoked("a"));
    }
}
