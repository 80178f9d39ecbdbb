//! The verification context computed for every request and handed to the decision point:
//! network zone and reputation, device trust, behaviour against the principal's own baseline,
//! and a risk score (0 to 100) with the signals that raised it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::firewall::{CidrTable, canonical_ip};

/// Named CIDR zones (for example `internal`, `vpn`); addresses in none are `external`.
#[derive(Clone, Debug, Default)]
pub struct Zones {
    table: CidrTable<String>,
}

pub const EXTERNAL_ZONE: &str = "external";

impl Zones {
    pub fn new<'a>(zones: impl IntoIterator<Item = (&'a str, &'a [IpNet])>) -> Self {
        let mut table = CidrTable::new();
        for (name, nets) in zones {
            for net in nets {
                table.insert(*net, name.to_owned());
            }
        }
        Self { table }
    }

    pub fn zone(&self, ip: IpAddr) -> &str {
        self.table
            .lookup(ip)
            .map_or(EXTERNAL_ZONE, |(_, name)| name.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reputation {
    /// On the dynamic blocklist (seen when the route lets blocked clients through to policy).
    Blocklisted,
    /// Refused or flagged recently.
    Suspicious,
    Clean,
}

impl Reputation {
    pub fn as_str(self) -> &'static str {
        match self {
            Reputation::Blocklisted => "blocklisted",
            Reputation::Suspicious => "suspicious",
            Reputation::Clean => "clean",
        }
    }
}

/// How much each signal adds to the risk score (the sum is capped at 100).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskWeights {
    pub blocklisted: u32,
    pub suspicious: u32,
    pub external_network: u32,
    pub untrusted_device: u32,
    pub new_network: u32,
    pub unusual_hour: u32,
    pub rate_spike: u32,
    pub denial_burst: u32,
    pub intrusion: u32,
}

impl Default for RiskWeights {
    fn default() -> Self {
        Self {
            blocklisted: 60,
            suspicious: 30,
            external_network: 10,
            untrusted_device: 10,
            new_network: 20,
            unusual_hour: 15,
            rate_spike: 25,
            denial_burst: 30,
            intrusion: 40,
        }
    }
}

/// When a baseline is trusted enough to flag deviations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineSettings {
    /// Requests seen before deviations count (until then the principal is learning).
    pub learning_requests: u64,
    /// A minute with more than `rate_factor` times the usual per-minute rate (and at least
    /// `rate_floor` requests) is a spike.
    pub rate_factor: u32,
    pub rate_floor: u32,
    /// Denials within a minute that make a burst.
    pub denial_burst: u32,
    /// Principals remembered; the least recently seen are forgotten beyond this.
    pub max_principals: usize,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self {
            learning_requests: 50,
            rate_factor: 5,
            rate_floor: 30,
            denial_burst: 5,
            max_principals: 100_000,
        }
    }
}

/// One principal's usual traffic.
#[derive(Clone, Debug, Default)]
struct Baseline {
    requests: u64,
    networks: HashSet<IpNet>,
    hours: [u64; 24],
    /// Requests in `minute`, and the mean per active minute before it.
    minute: u64,
    minute_count: u32,
    minutes_seen: u64,
    mean_per_minute: f64,
    denials: VecDeque<u64>,
    last_seen: u64,
}

/// Networks a principal is remembered from (beyond this, no new network is learned).
const MAX_NETWORKS: usize = 256;

/// Deviations of one request from its principal's baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Behavior {
    pub learning: bool,
    pub new_network: bool,
    pub unusual_hour: bool,
    pub rate_spike: bool,
    pub denial_burst: bool,
}

/// All principals' baselines. The server holds it behind a lock; every method is short.
#[derive(Debug, Default)]
pub struct Baselines {
    settings: BaselineSettings,
    principals: HashMap<String, Baseline>,
}

/// The network a behaviour baseline remembers: /24 for IPv4, /48 for IPv6.
fn behaviour_net(ip: IpAddr) -> IpNet {
    let ip = canonical_ip(ip);
    let len = if ip.is_ipv4() { 24 } else { 48 };
    IpNet::new(ip, len).map_or(IpNet::from(ip), |n| n.trunc())
}

impl Baselines {
    pub fn new(settings: BaselineSettings) -> Self {
        Self {
            settings,
            principals: HashMap::new(),
        }
    }

    /// Compares a request with the principal's baseline, then learns from it.
    /// `now` is unix seconds.
    pub fn observe(&mut self, principal: &str, ip: IpAddr, now: u64) -> Behavior {
        self.bound(now);
        let settings = self.settings;
        let entry = self.principals.entry(principal.to_owned()).or_default();
        let net = behaviour_net(ip);
        let hour = usize::try_from((now / 3600) % 24).unwrap_or_default();
        let minute = now / 60;

        // Roll the per-minute rate.
        if entry.minute != minute {
            if entry.minute_count > 0 {
                let n = entry.minutes_seen as f64;
                entry.mean_per_minute =
                    (entry.mean_per_minute * n + f64::from(entry.minute_count)) / (n + 1.0);
                entry.minutes_seen += 1;
            }
            entry.minute = minute;
            entry.minute_count = 0;
        }
        entry.minute_count = entry.minute_count.saturating_add(1);
        while entry
            .denials
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= 60)
        {
            entry.denials.pop_front();
        }

        let learning = entry.requests < settings.learning_requests;
        let hour_share = entry.hours.get(hour).copied().unwrap_or_default();
        let behavior = Behavior {
            learning,
            new_network: !learning && !entry.networks.contains(&net),
            // An hour holding under 2% of the principal's past requests is unusual.
            unusual_hour: !learning && hour_share.saturating_mul(50) < entry.requests,
            rate_spike: !learning
                && entry.minute_count >= settings.rate_floor
                && f64::from(entry.minute_count)
                    > entry.mean_per_minute.max(1.0) * f64::from(settings.rate_factor),
            denial_burst: entry.denials.len()
                >= usize::try_from(settings.denial_burst).unwrap_or(usize::MAX),
        };

        entry.requests += 1;
        if entry.networks.len() < MAX_NETWORKS {
            entry.networks.insert(net);
        }
        if let Some(h) = entry.hours.get_mut(hour) {
            *h += 1;
        }
        entry.last_seen = now;
        behavior
    }

    /// Records a refused request of the principal.
    pub fn record_denial(&mut self, principal: &str, now: u64) {
        if let Some(entry) = self.principals.get_mut(principal) {
            entry.denials.push_back(now);
            while entry.denials.len() > 1000 {
                entry.denials.pop_front();
            }
        }
    }

    fn bound(&mut self, now: u64) {
        if self.principals.len() < self.settings.max_principals {
            return;
        }
        // Forget principals idle for a day, then, if needed, everyone idle for an hour.
        for idle in [86_400, 3_600, 0] {
            self.principals
                .retain(|_, b| now.saturating_sub(b.last_seen) < idle);
            if self.principals.len() < self.settings.max_principals {
                return;
            }
        }
    }
}

/// Everything the risk score is computed from.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub zone: &'a str,
    pub reputation: Reputation,
    /// `None` when no device registry applies (anonymous routes).
    pub device_trusted: Option<bool>,
    pub behavior: Behavior,
    /// The intrusion detector's anomaly score (0 when detection is off).
    pub anomaly_score: u32,
}

/// The verification context: what the engine sees under `context`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verification {
    pub zone: String,
    pub reputation: Reputation,
    pub device_trusted: bool,
    pub behavior: Behavior,
    pub score: u32,
    pub signals: Vec<&'static str>,
}

impl Verification {
    pub fn assess(inputs: &Inputs<'_>, weights: &RiskWeights) -> Self {
        let mut signals = Vec::new();
        let mut score = 0u32;
        let mut raise = |on: bool, signal: &'static str, weight: u32| {
            if on && weight > 0 {
                signals.push(signal);
                score = score.saturating_add(weight);
            }
        };
        raise(
            inputs.reputation == Reputation::Blocklisted,
            "blocklisted",
            weights.blocklisted,
        );
        raise(
            inputs.reputation == Reputation::Suspicious,
            "suspicious",
            weights.suspicious,
        );
        raise(
            inputs.zone == EXTERNAL_ZONE,
            "external_network",
            weights.external_network,
        );
        raise(
            inputs.device_trusted == Some(false),
            "untrusted_device",
            weights.untrusted_device,
        );
        raise(
            inputs.behavior.new_network,
            "new_network",
            weights.new_network,
        );
        raise(
            inputs.behavior.unusual_hour,
            "unusual_hour",
            weights.unusual_hour,
        );
        raise(inputs.behavior.rate_spike, "rate_spike", weights.rate_spike);
        raise(
            inputs.behavior.denial_burst,
            "denial_burst",
            weights.denial_burst,
        );
        raise(inputs.anomaly_score > 0, "intrusion", weights.intrusion);
        Self {
            zone: inputs.zone.to_owned(),
            reputation: inputs.reputation,
            device_trusted: inputs.device_trusted.unwrap_or(false),
            behavior: inputs.behavior,
            score: score.min(100),
            signals,
        }
    }

    /// The members added to the request's context: `network`, `device`, `behavior`, `risk`.
    pub fn context(&self) -> [(&'static str, Value); 4] {
        let b = &self.behavior;
        let deviations: Vec<&str> = [
            (b.new_network, "new_network"),
            (b.unusual_hour, "unusual_hour"),
            (b.rate_spike, "rate_spike"),
            (b.denial_burst, "denial_burst"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        [
            (
                "network",
                json!({"zone": self.zone, "reputation": self.reputation.as_str()}),
            ),
            ("device", json!({"trusted": self.device_trusted})),
            (
                "behavior",
                json!({
                    "learning": b.learning,
                    "new_network": b.new_network,
                    "unusual_hour": b.unusual_hour,
                    "rate_spike": b.rate_spike,
                    "denial_burst": b.denial_burst,
                    "deviations": deviations,
                }),
            ),
            (
                "risk",
                json!({"score": self.score, "signals": self.signals}),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn clean<'a>(zone: &'a str) -> Inputs<'a> {
        Inputs {
            zone,
            reputation: Reputation::Clean,
            device_trusted: Some(true),
            behavior: Behavior::default(),
            anomaly_score: 0,
        }
    }

    #[test]
    fn zones_take_the_most_specific_network() {
        let internal: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let vpn: Vec<IpNet> = vec!["10.8.0.0/16".parse().unwrap()];
        let zones = Zones::new([("internal", internal.as_slice()), ("vpn", vpn.as_slice())]);
        assert_eq!(zones.zone(ip("10.1.1.1")), "internal");
        assert_eq!(zones.zone(ip("::ffff:10.8.1.1")), "vpn");
        assert_eq!(zones.zone(ip("192.0.2.1")), EXTERNAL_ZONE);
    }

    #[test]
    fn each_signal_moves_the_score() {
        let weights = RiskWeights::default();
        let base = Verification::assess(&clean("internal"), &weights);
        assert_eq!((base.score, base.signals.len()), (0, 0));

        let mut cases: Vec<(Inputs<'_>, &str)> = vec![
            (
                Inputs {
                    reputation: Reputation::Blocklisted,
                    ..clean("internal")
                },
                "blocklisted",
            ),
            (
                Inputs {
                    reputation: Reputation::Suspicious,
                    ..clean("internal")
                },
                "suspicious",
            ),
        ];
        cases.push((clean(EXTERNAL_ZONE), "external_network"));
        cases.push((
            Inputs {
                device_trusted: Some(false),
                ..clean("internal")
            },
            "untrusted_device",
        ));
        for (flag, name) in ["new_network", "unusual_hour", "rate_spike", "denial_burst"]
            .iter()
            .enumerate()
        {
            let behavior = Behavior {
                new_network: flag == 0,
                unusual_hour: flag == 1,
                rate_spike: flag == 2,
                denial_burst: flag == 3,
                learning: false,
            };
            cases.push((
                Inputs {
                    behavior,
                    ..clean("internal")
                },
                name,
            ));
        }
        cases.push((
            Inputs {
                anomaly_score: 5,
                ..clean("internal")
            },
            "intrusion",
        ));
        for (inputs, signal) in cases {
            let v = Verification::assess(&inputs, &weights);
            assert!(v.score > 0, "{signal}");
            assert_eq!(v.signals, vec![signal]);
        }

        let all = Inputs {
            reputation: Reputation::Blocklisted,
            anomaly_score: 10,
            ..clean(EXTERNAL_ZONE)
        };
        assert_eq!(Verification::assess(&all, &weights).score, 100);
    }

    #[test]
    fn baselines_flag_new_networks_hours_rates_and_denials() {
        let settings = BaselineSettings {
            learning_requests: 10,
            rate_factor: 3,
            rate_floor: 5,
            denial_burst: 3,
            max_principals: 10,
        };
        let mut baselines = Baselines::new(settings);
        let day = 86_400 * 100;
        let nine = day + 9 * 3600;
        // One request a minute from the office at 09:xx, learning.
        for m in 0..20 {
            let b = baselines.observe("user:alice", ip("192.0.2.10"), nine + m * 60);
            assert_eq!(b.learning, m < 10);
            assert!(!b.new_network && !b.unusual_hour && !b.rate_spike);
        }
        // Another network.
        assert!(
            baselines
                .observe("user:alice", ip("198.51.100.1"), nine + 20 * 60)
                .new_network
        );
        // 03:00 is unusual.
        assert!(
            baselines
                .observe("user:alice", ip("192.0.2.10"), day + 3 * 3600)
                .unusual_hour
        );
        // Many requests within one minute.
        let burst_minute = nine + 30 * 60;
        let spikes: Vec<bool> = (0..6)
            .map(|i| {
                baselines
                    .observe("user:alice", ip("192.0.2.10"), burst_minute + i)
                    .rate_spike
            })
            .collect();
        assert!(!spikes[0] && spikes[5], "{spikes:?}");
        // A burst of denials.
        for i in 0..3 {
            baselines.record_denial("user:alice", burst_minute + i);
        }
        assert!(
            baselines
                .observe("user:alice", ip("192.0.2.10"), burst_minute + 10)
                .denial_burst
        );
        assert!(
            !baselines
                .observe("user:alice", ip("192.0.2.10"), burst_minute + 120)
                .denial_burst
        );
    }

    #[test]
    fn context_has_the_documented_shape() {
        let v = Verification::assess(&clean(EXTERNAL_ZONE), &RiskWeights::default());
        let context: serde_json::Map<String, Value> = v
            .context()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(context["network"]["zone"], "external");
        assert_eq!(context["network"]["reputation"], "clean");
        assert_eq!(context["device"]["trusted"], true);
        assert_eq!(context["risk"]["score"], 10);
        assert_eq!(context["risk"]["signals"][0], "external_network");
    }
}
