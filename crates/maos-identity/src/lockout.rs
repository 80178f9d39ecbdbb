//! Login lockout with exponential backoff, keyed on the normalised user name and on the client
//! address (IPv4 per address, IPv6 per /64, since one host usually owns a whole /64).
//!
//! After `free_attempts` failures a key is locked for `base_delay`, doubling with each further
//! failure up to `max_delay`. A key's failures are forgotten `forget_after` after its last
//! failure. Memory is bounded: at `max_entries`, forgotten entries are dropped first, then the
//! oldest tenth.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use maos_core::Clock;

/// What a lockout applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockoutKey {
    /// A normalised user name.
    User(String),
    /// An IPv4 address.
    Ipv4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    Ipv6Prefix([u8; 8]),
}

impl LockoutKey {
    pub fn for_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::Ipv4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Ipv4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(v6.octets().get(..8).unwrap_or(&[0u8; 8]));
                    Self::Ipv6Prefix(prefix)
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures per user name before the first lock.
    pub user_free_attempts: u32,
    /// Failures per address before the first lock (higher: many users may share a NAT).
    pub ip_free_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub forget_after: Duration,
    pub max_entries: usize,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            user_free_attempts: 5,
            ip_free_attempts: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(24 * 3600),
            max_entries: 100_000,
        }
    }
}

/// A refusal: the key is locked until `until`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("locked for {retry_after:?}")]
pub struct Locked {
    pub key: LockoutKey,
    pub until: SystemTime,
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: SystemTime,
    locked_until: Option<SystemTime>,
}

/// Tracks failures. Call [`LockoutTracker::check`] before verifying a password, then
/// [`LockoutTracker::record_failure`] or [`LockoutTracker::record_success`].
#[derive(Debug)]
pub struct LockoutTracker {
    policy: LockoutPolicy,
    entries: HashMap<LockoutKey, Entry>,
    clock: Arc<dyn Clock>,
}

impl LockoutTracker {
    pub fn new(policy: LockoutPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
            clock,
        }
    }

    /// Refuses if either the user name or the address is locked now. The user name must be
    /// normalised (see [`crate::password::normalize_user_name`]).
    pub fn check(&self, user: &str, ip: IpAddr) -> Result<(), Locked> {
        let now = self.clock.now();
        for key in [LockoutKey::User(user.to_owned()), LockoutKey::for_ip(ip)] {
            if let Some(until) = self.entries.get(&key).and_then(|e| e.locked_until)
                && let Ok(retry_after) = until.duration_since(now)
                && !retry_after.is_zero()
            {
                return Err(Locked {
                    key,
                    until,
                    retry_after,
                });
            }
        }
        Ok(())
    }

    /// Counts a failure against both keys; returns the longest lock it caused, if any.
    pub fn record_failure(&mut self, user: &str, ip: IpAddr) -> Option<Locked> {
        let now = self.clock.now();
        self.make_room(now);
        let mut longest: Option<Locked> = None;
        let keys = [
            (
                LockoutKey::User(user.to_owned()),
                self.policy.user_free_attempts,
            ),
            (LockoutKey::for_ip(ip), self.policy.ip_free_attempts),
        ];
        for (key, free) in keys {
            let forget_after = self.policy.forget_after;
            let entry = self.entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if now.duration_since(entry.last_failure).unwrap_or_default() >= forget_after {
                entry.failures = 0;
                entry.locked_until = None;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if entry.failures > free {
                let delay = backoff(&self.policy, entry.failures - free);
                let until = now + delay;
                entry.locked_until = Some(until);
                if longest.as_ref().is_none_or(|l| l.until < until) {
                    longest = Some(Locked {
                        key,
                        until,
                        retry_after: delay,
                    });
                }
            }
        }
        longest
    }

    /// Checks both keys, then counts the attempt as a failure before the password is
    /// verified, so that attempts made in parallel cannot exceed the allowance: a burst is
    /// refused once the counted attempts reach the lock, not when their verifications end.
    /// Follow it with [`LockoutTracker::attempt_succeeded`] or [`LockoutTracker::take_back`],
    /// or with nothing when the attempt failed.
    pub fn begin_attempt(&mut self, user: &str, ip: IpAddr) -> Result<(), Locked> {
        self.check(user, ip)?;
        let _ = self.record_failure(user, ip);
        Ok(())
    }

    /// The attempt [`LockoutTracker::begin_attempt`] counted succeeded: the user name's
    /// failures are cleared and the address's count loses that attempt.
    pub fn attempt_succeeded(&mut self, user: &str, ip: IpAddr) {
        self.record_success(user);
        self.uncount(LockoutKey::for_ip(ip), self.policy.ip_free_attempts);
    }

    /// The attempt [`LockoutTracker::begin_attempt`] counted proved nothing either way (a
    /// correct password still waiting for its second factor): both counts lose it.
    pub fn take_back(&mut self, user: &str, ip: IpAddr) {
        self.uncount(
            LockoutKey::User(user.to_owned()),
            self.policy.user_free_attempts,
        );
        self.uncount(LockoutKey::for_ip(ip), self.policy.ip_free_attempts);
    }

    fn uncount(&mut self, key: LockoutKey, free: u32) {
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.failures = entry.failures.saturating_sub(1);
            if entry.failures <= free {
                entry.locked_until = None;
            }
        }
    }

    /// A successful login clears the user name's failures. The address keeps its count: one
    /// success must not wash out a spray against other accounts from the same place.
    pub fn record_success(&mut self, user: &str) {
        self.entries.remove(&LockoutKey::User(user.to_owned()));
    }

    /// Lifts a lock (an administrator's decision).
    pub fn unlock(&mut self, key: &LockoutKey) -> bool {
        self.entries.remove(key).is_some()
    }

    pub fn failures(&self, key: &LockoutKey) -> u32 {
        self.entries.get(key).map_or(0, |e| e.failures)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: SystemTime) {
        if self.entries.len() + 2 <= self.policy.max_entries {
            return;
        }
        let forget_after = self.policy.forget_after;
        self.entries.retain(|_, e| {
            let idle = now.duration_since(e.last_failure).unwrap_or_default();
            let locked = e.locked_until.is_some_and(|until| until > now);
            idle < forget_after || locked
        });
        if self.entries.len() + 2 <= self.policy.max_entries {
            return;
        }
        let mut ages: Vec<(SystemTime, LockoutKey)> = self
            .entries
            .iter()
            .map(|(k, e)| (e.last_failure, k.clone()))
            .collect();
        ages.sort();
        let evict = (self.policy.max_entries / 10).max(2);
        for (_, key) in ages.into_iter().take(evict) {
            self.entries.remove(&key);
        }
    }
}

/// `base * 2^(n-1)`, capped, for the n-th failure past the free ones.
fn backoff(policy: &LockoutPolicy, over: u32) -> Duration {
    let exponent = over.saturating_sub(1).min(30);
    policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::ManualClock;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn tracker(clock: &Arc<ManualClock>) -> LockoutTracker {
        LockoutTracker::new(
            LockoutPolicy {
                ip_free_attempts: 8,
                ..LockoutPolicy::default()
            },
            clock.clone(),
        )
    }

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn backoff_doubles_and_caps() {
        let clock = ManualClock::at(10_000);
        let mut t = tracker(&clock);
        for _ in 0..5 {
            assert_eq!(t.record_failure("alice", IP), None);
        }
        let first = t.record_failure("alice", IP).unwrap();
        assert_eq!(first.retry_after, Duration::from_secs(1));
        assert!(
            t.check("alice", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
                .is_err()
        );

        clock.advance(Duration::from_secs(1));
        assert!(
            t.check("alice", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
                .is_ok()
        );
        assert_eq!(
            t.record_failure("alice", IP).unwrap().retry_after,
            Duration::from_secs(2)
        );
        assert_eq!(
            t.record_failure("alice", IP).unwrap().retry_after,
            Duration::from_secs(4)
        );
        for _ in 0..20 {
            t.record_failure("alice", IP);
        }
        let capped = t.record_failure("alice", IP).unwrap();
        assert_eq!(capped.retry_after, LockoutPolicy::default().max_delay);
    }

    #[test]
    fn address_lock_covers_other_users() {
        let clock = ManualClock::at(10_000);
        let mut t = tracker(&clock);
        for i in 0..8 {
            t.record_failure(&format!("user{i}"), IP);
        }
        assert!(t.check("someone-else", IP).is_ok());
        let locked = t.record_failure("user9", IP).unwrap();
        assert_eq!(locked.key, LockoutKey::Ipv4([192, 0, 2, 7]));
        assert!(t.check("someone-else", IP).is_err());
    }

    #[test]
    fn ipv6_is_keyed_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse::<Ipv6Addr>().unwrap().into();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse::<Ipv6Addr>().unwrap().into();
        let c: IpAddr = "2001:db8:1:3::1".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(LockoutKey::for_ip(a), LockoutKey::for_ip(b));
        assert_ne!(LockoutKey::for_ip(a), LockoutKey::for_ip(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(LockoutKey::for_ip(mapped), LockoutKey::for_ip(IP));
    }

    #[test]
    fn success_clears_the_user_and_failures_are_forgotten() {
        let clock = ManualClock::at(10_000);
        let mut t = tracker(&clock);
        for _ in 0..4 {
            t.record_failure("bob", IP);
        }
        t.record_success("bob");
        assert_eq!(t.failures(&LockoutKey::User("bob".into())), 0);
        assert_eq!(t.failures(&LockoutKey::for_ip(IP)), 4);
        clock.advance(LockoutPolicy::default().forget_after);
        t.record_failure("bob", IP);
        assert_eq!(t.failures(&LockoutKey::for_ip(IP)), 1);
    }

    #[test]
    fn attempts_are_counted_before_they_are_verified() {
        let clock = ManualClock::at(10_000);
        let mut t = tracker(&clock);
        // Six attempts in flight at once: the sixth is counted into a lock, the seventh refused.
        for _ in 0..6 {
            assert!(t.begin_attempt("carol", IP).is_ok());
        }
        assert!(t.begin_attempt("carol", IP).is_err());
        assert_eq!(t.failures(&LockoutKey::User("carol".into())), 6);
    }

    #[test]
    fn a_success_takes_back_its_own_count() {
        let clock = ManualClock::at(10_000);
        let mut t = tracker(&clock);
        t.begin_attempt("dave", IP).unwrap();
        t.begin_attempt("dave", IP).unwrap();
        t.attempt_succeeded("dave", IP);
        assert_eq!(t.failures(&LockoutKey::User("dave".into())), 0);
        assert_eq!(t.failures(&LockoutKey::for_ip(IP)), 1);
        t.begin_attempt("dave", IP).unwrap();
        t.take_back("dave", IP);
        assert_eq!(t.failures(&LockoutKey::User("dave".into())), 0);
        assert_eq!(t.failures(&LockoutKey::for_ip(IP)), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let clock = ManualClock::at(10_000);
        let policy = LockoutPolicy {
            max_entries: 100,
            ..LockoutPolicy::default()
        };
        let mut t = LockoutTracker::new(policy, clock.clone());
        for i in 0..1_000u32 {
            clock.advance(Duration::from_millis(10));
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            t.record_failure(&format!("u{i}"), ip);
            assert!(t.len() <= 100, "{} entries", t.len());
        }
        // The most recent failures survive eviction.
        assert_eq!(t.failures(&LockoutKey::User("u999".into())), 1);
    }
}
