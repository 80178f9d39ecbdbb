//! Rate limits (GCRA, by governor) per client network, per principal and per route.
//!
//! Keyed state grows with the number of clients, so it is bounded: every few thousand checks
//! the keys whose state is back to fresh are dropped; when the table is still full after that,
//! requests are refused until it drains (fail closed) instead of memory growing further.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::firewall::client_net;

/// A rate: `requests` per `per_seconds`, with bursts of up to `burst` (default `requests`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    #[serde(default = "one")]
    pub per_seconds: u64,
    #[serde(default)]
    pub burst: Option<u32>,
}

fn one() -> u64 {
    1
}

impl Rate {
    fn quota(&self) -> Result<Quota, String> {
        let requests = NonZeroU32::new(self.requests)
            .ok_or_else(|| "rate limit `requests` must be at least 1".to_owned())?;
        let burst = match self.burst {
            Some(b) => NonZeroU32::new(b)
                .ok_or_else(|| "rate limit `burst` must be at least 1".to_owned())?,
            None => requests,
        };
        let period = Duration::from_secs(self.per_seconds)
            .checked_div(self.requests)
            .filter(|p| !p.is_zero())
            .ok_or_else(|| {
                format!(
                    "rate limit `{} per {}s` is not a rate",
                    self.requests, self.per_seconds
                )
            })?;
        let quota =
            Quota::with_period(period).ok_or_else(|| "rate limit period is zero".to_owned())?;
        Ok(quota.allow_burst(burst))
    }
}

/// Which limit refused a request, and when to come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    /// Whole seconds for `Retry-After`, at least 1.
    pub retry_after: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Client,
    Principal,
    Route,
    /// The key table is full of active clients.
    Capacity,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Client => "client",
            Scope::Principal => "principal",
            Scope::Route => "route",
            Scope::Capacity => "capacity",
        }
    }
}

/// Checks between evictions of idle keys.
const MAINTENANCE_EVERY: u64 = 4096;
/// Checks between evictions while the key table is full.
const MAINTENANCE_WHEN_FULL: u64 = 256;

#[derive(Debug)]
struct Keyed<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    max_keys: usize,
    checks: AtomicU64,
    full: AtomicBool,
}

impl<K: std::hash::Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Quota, max_keys: usize) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            max_keys,
            checks: AtomicU64::new(0),
            full: AtomicBool::new(false),
        }
    }

    fn check(&self, key: &K, scope: Scope) -> Result<(), Limited> {
        let count = self.checks.fetch_add(1, Ordering::Relaxed);
        // Eviction scans every key, so it runs every few thousand checks, and while the table
        // is full every few hundred: often enough to let clients back in soon, rarely enough
        // that a flood of new keys cannot make every request pay for a scan.
        let full = self.full.load(Ordering::Relaxed);
        if count.is_multiple_of(MAINTENANCE_EVERY)
            || (full && count.is_multiple_of(MAINTENANCE_WHEN_FULL))
        {
            self.maintain();
        }
        if self.full.load(Ordering::Relaxed) {
            return Err(Limited {
                scope: Scope::Capacity,
                retry_after: 1,
            });
        }
        self.limiter
            .check_key(key)
            .map(|_| ())
            .map_err(|not_until| Limited {
                scope,
                retry_after: retry_seconds(not_until.wait_time_from(self.limiter.clock().now())),
            })
    }

    fn maintain(&self) {
        if self.limiter.len() >= self.max_keys {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.full
            .store(self.limiter.len() >= self.max_keys, Ordering::Relaxed);
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

fn retry_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    if wait.subsec_nanos() > 0 || whole == 0 {
        whole + 1
    } else {
        whole
    }
}

/// The limits of one route, as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Per client address (IPv6 clients by /64).
    #[serde(default)]
    pub per_client: Option<Rate>,
    /// Per authenticated principal.
    #[serde(default)]
    pub per_principal: Option<Rate>,
    /// For the route as a whole.
    #[serde(default)]
    pub route: Option<Rate>,
    /// Keys kept per limiter before new clients are refused.
    #[serde(default)]
    pub max_keys: Option<usize>,
}

/// The live limiters of one route.
#[derive(Debug)]
pub struct RouteLimits {
    client: Option<Keyed<IpNet>>,
    principal: Option<Keyed<String>>,
    route: Option<DefaultDirectRateLimiter>,
}

pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

impl RouteLimits {
    pub fn new(config: &LimitsConfig) -> Result<Self, String> {
        let max_keys = config.max_keys.unwrap_or(DEFAULT_MAX_KEYS).max(1);
        Ok(Self {
            client: config
                .per_client
                .map(|r| r.quota().map(|q| Keyed::new(q, max_keys)))
                .transpose()?,
            principal: config
                .per_principal
                .map(|r| r.quota().map(|q| Keyed::new(q, max_keys)))
                .transpose()?,
            route: config
                .route
                .map(|r| r.quota().map(DefaultDirectRateLimiter::direct))
                .transpose()?,
        })
    }

    /// The client-address and route limits (before authentication).
    pub fn check_client(&self, ip: IpAddr) -> Result<(), Limited> {
        if let Some(client) = &self.client {
            client.check(&client_net(ip), Scope::Client)?;
        }
        if let Some(route) = &self.route {
            route.check().map_err(|not_until| Limited {
                scope: Scope::Route,
                retry_after: retry_seconds(not_until.wait_time_from(route.clock().now())),
            })?;
        }
        Ok(())
    }

    /// The principal limit (after authentication).
    pub fn check_principal(&self, principal: &str) -> Result<(), Limited> {
        match &self.principal {
            Some(limiter) => limiter.check(&principal.to_owned(), Scope::Principal),
            None => Ok(()),
        }
    }

    /// Keys held by the client limiter.
    pub fn client_keys(&self) -> usize {
        self.client.as_ref().map_or(0, Keyed::len)
    }
}

/// Watches each client's request rate against a generous quota, for anomaly detection: it
/// never refuses, it answers whether the client is over. Keys are bounded like the limits'.
#[derive(Debug)]
pub struct RateWatch {
    keyed: Keyed<IpNet>,
}

impl RateWatch {
    pub fn new(rate: Rate, max_keys: usize) -> Result<Self, String> {
        Ok(Self {
            keyed: Keyed::new(rate.quota()?, max_keys.max(1)),
        })
    }

    /// Counts one request of the client at `ip`; `true` when it is over the rate.
    pub fn exceeded(&self, ip: IpAddr) -> bool {
        self.keyed.check(&client_net(ip), Scope::Client).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rate(requests: u32, per_seconds: u64) -> Option<Rate> {
        Some(Rate {
            requests,
            per_seconds,
            burst: None,
        })
    }

    #[test]
    fn client_limit_refuses_the_request_over_the_burst_with_retry_after() {
        let limits = RouteLimits::new(&LimitsConfig {
            per_client: rate(2, 60),
            ..LimitsConfig::default()
        })
        .unwrap();
        assert!(limits.check_client(ip("192.0.2.1")).is_ok());
        assert!(limits.check_client(ip("::ffff:192.0.2.1")).is_ok());
        let refused = limits.check_client(ip("192.0.2.1")).unwrap_err();
        assert_eq!(refused.scope, Scope::Client);
        assert!(
            (1..=30).contains(&refused.retry_after),
            "{}",
            refused.retry_after
        );
        // Another client is not affected.
        assert!(limits.check_client(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limits = RouteLimits::new(&LimitsConfig {
            per_client: rate(1, 60),
            ..LimitsConfig::default()
        })
        .unwrap();
        assert!(limits.check_client(ip("2001:db8:0:1::1")).is_ok());
        assert!(limits.check_client(ip("2001:db8:0:1:ffff::2")).is_err());
        assert!(limits.check_client(ip("2001:db8:0:2::1")).is_ok());
    }

    #[test]
    fn principal_and_route_limits_apply() {
        let limits = RouteLimits::new(&LimitsConfig {
            per_principal: rate(1, 60),
            route: rate(3, 60),
            ..LimitsConfig::default()
        })
        .unwrap();
        assert!(limits.check_principal("user:alice").is_ok());
        assert_eq!(
            limits.check_principal("user:alice").unwrap_err().scope,
            Scope::Principal
        );
        assert!(limits.check_principal("user:bob").is_ok());
        for n in 0..3 {
            assert!(limits.check_client(ip(&format!("192.0.2.{n}"))).is_ok());
        }
        assert_eq!(
            limits.check_client(ip("192.0.2.9")).unwrap_err().scope,
            Scope::Route
        );
    }

    #[test]
    fn a_full_key_table_refuses_instead_of_growing() {
        let limits = RouteLimits::new(&LimitsConfig {
            per_client: rate(1, 3600),
            max_keys: Some(10),
            ..LimitsConfig::default()
        })
        .unwrap();
        let mut refused_for_capacity = 0;
        for n in 0..(MAINTENANCE_EVERY + 20) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n as u32));
            if let Err(l) = limits.check_client(addr)
                && l.scope == Scope::Capacity
            {
                refused_for_capacity += 1;
            }
        }
        assert!(refused_for_capacity > 0);
        assert!(limits.client_keys() <= MAINTENANCE_EVERY as usize + 1);
    }

    #[test]
    fn rate_watch_flags_clients_over_the_rate() {
        let watch = RateWatch::new(
            Rate {
                requests: 3,
                per_seconds: 60,
                burst: None,
            },
            100,
        )
        .unwrap();
        let flags: Vec<bool> = (0..5).map(|_| watch.exceeded(ip("192.0.2.1"))).collect();
        assert_eq!(flags, [false, false, false, true, true]);
        assert!(!watch.exceeded(ip("192.0.2.2")));
    }

    #[test]
    fn invalid_rates_are_refused() {
        assert!(
            Rate {
                requests: 0,
                per_seconds: 1,
                burst: None
            }
            .quota()
            .is_err()
        );
        assert!(
            Rate {
                requests: 5,
                per_seconds: 0,
                burst: None
            }
            .quota()
            .is_err()
        );
        assert!(
            Rate {
                requests: 5,
                per_seconds: 1,
                burst: Some(0)
            }
            .quota()
            .is_err()
        );
    }
}
