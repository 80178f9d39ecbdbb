//! The firewall: static allow and deny lists of CIDRs, and the dynamic blocklist that automated
//! responses write to. Lookups take the longest matching prefix; IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`) are matched as the IPv4 address they carry.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// The address as the firewall sees it: IPv4-mapped IPv6 becomes IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A network as the firewall sees it: an IPv4-mapped IPv6 network (`::ffff:0:0/96` and longer)
/// becomes the IPv4 network it covers; the host bits are cleared.
pub fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(mapped) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped.trunc());
    }
    net.trunc()
}

/// The network a client is accounted under: its IPv4 address, or the /64 of its IPv6 address
/// (one subscriber usually holds a whole /64).
pub fn client_net(ip: IpAddr) -> IpNet {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => {
            Ipv6Net::new(v6, 64).map_or(IpNet::V6(Ipv6Net::from(v6)), |n| IpNet::V6(n.trunc()))
        }
    }
}

/// A longest-prefix table from networks to values.
#[derive(Clone, Debug)]
pub struct CidrTable<T> {
    v4: BTreeMap<u8, HashMap<Ipv4Addr, (Ipv4Net, T)>>,
    v6: BTreeMap<u8, HashMap<Ipv6Addr, (Ipv6Net, T)>>,
    len: usize,
}

impl<T> Default for CidrTable<T> {
    fn default() -> Self {
        Self {
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> CidrTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the value of `net`.
    pub fn insert(&mut self, net: IpNet, value: T) {
        let replaced = match canonical_net(net) {
            IpNet::V4(n) => self
                .v4
                .entry(n.prefix_len())
                .or_default()
                .insert(n.network(), (n, value))
                .is_some(),
            IpNet::V6(n) => self
                .v6
                .entry(n.prefix_len())
                .or_default()
                .insert(n.network(), (n, value))
                .is_some(),
        };
        if !replaced {
            self.len += 1;
        }
    }

    pub fn remove(&mut self, net: IpNet) -> Option<T> {
        let removed = match canonical_net(net) {
            IpNet::V4(n) => self
                .v4
                .get_mut(&n.prefix_len())
                .and_then(|m| m.remove(&n.network()))
                .map(|(_, v)| v),
            IpNet::V6(n) => self
                .v6
                .get_mut(&n.prefix_len())
                .and_then(|m| m.remove(&n.network()))
                .map(|(_, v)| v),
        };
        removed.inspect(|_| self.len -= 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most specific network containing `ip`, with its value.
    pub fn lookup(&self, ip: IpAddr) -> Option<(IpNet, &T)> {
        self.lookup_where(ip, |_| true)
    }

    /// The most specific network containing `ip` whose value passes `keep`.
    pub fn lookup_where(&self, ip: IpAddr, keep: impl Fn(&T) -> bool) -> Option<(IpNet, &T)> {
        match canonical_ip(ip) {
            IpAddr::V4(ip) => self.v4.iter().rev().find_map(|(len, nets)| {
                let key = Ipv4Net::new(ip, *len).ok()?.network();
                let (net, value) = nets.get(&key).filter(|(_, v)| keep(v))?;
                Some((IpNet::V4(*net), value))
            }),
            IpAddr::V6(ip) => self.v6.iter().rev().find_map(|(len, nets)| {
                let key = Ipv6Net::new(ip, *len).ok()?.network();
                let (net, value) = nets.get(&key).filter(|(_, v)| keep(v))?;
                Some((IpNet::V6(*net), value))
            }),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &T)> {
        let v4 = self
            .v4
            .values()
            .flat_map(|m| m.values().map(|(n, v)| (IpNet::V4(*n), v)));
        let v6 = self
            .v6
            .values()
            .flat_map(|m| m.values().map(|(n, v)| (IpNet::V6(*n), v)));
        v4.chain(v6)
    }
}

/// A static firewall rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Allow,
    Deny,
}

/// One entry of the dynamic blocklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub net: IpNet,
    /// Unix seconds after which the block no longer applies.
    pub until: u64,
    pub reason: String,
}

/// Why the firewall refused an address.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A static deny rule is the most specific match.
    Denied { net: IpNet },
    /// Allow rules exist and none covers the address.
    NotAllowed,
    /// A live entry of the dynamic blocklist covers the address.
    Blocked {
        net: IpNet,
        until: u64,
        reason: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Denied { net } => write!(f, "address in denied network `{net}`"),
            Refusal::NotAllowed => f.write_str("address in no allowed network"),
            Refusal::Blocked { net, reason, .. } => {
                write!(f, "address in blocked network `{net}`: {reason}")
            }
        }
    }
}

/// Static rules: the most specific rule wins; with no matching rule, an address passes only
/// when no allow rule exists at all.
#[derive(Clone, Debug, Default)]
pub struct StaticRules {
    table: CidrTable<Rule>,
    any_allow: bool,
}

impl StaticRules {
    pub fn new(allow: &[IpNet], deny: &[IpNet]) -> Self {
        let mut table = CidrTable::new();
        for net in allow {
            table.insert(*net, Rule::Allow);
        }
        // Deny is inserted last: a network listed in both is denied.
        for net in deny {
            table.insert(*net, Rule::Deny);
        }
        Self {
            table,
            any_allow: !allow.is_empty(),
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.table.lookup(ip) {
            Some((_, Rule::Allow)) => Ok(()),
            Some((net, Rule::Deny)) => Err(Refusal::Denied { net }),
            None if self.any_allow => Err(Refusal::NotAllowed),
            None => Ok(()),
        }
    }
}

/// The dynamic blocklist at one moment: a snapshot the request path reads without locks.
#[derive(Clone, Debug, Default)]
pub struct Blocklist {
    table: CidrTable<Block>,
}

impl Blocklist {
    pub fn new(blocks: impl IntoIterator<Item = Block>) -> Self {
        let mut table = CidrTable::new();
        for block in blocks {
            let net = canonical_net(block.net);
            table.insert(net, Block { net, ..block });
        }
        Self { table }
    }

    /// The most specific live block covering `ip` at `now` (unix seconds).
    pub fn check(&self, ip: IpAddr, now: u64) -> Result<(), Refusal> {
        match self.table.lookup_where(ip, |block| block.until > now) {
            Some((net, block)) => Err(Refusal::Blocked {
                net,
                until: block.until,
                reason: block.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &Block> {
        self.table.iter().map(|(_, block)| block)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The firewall step: dynamic blocks first (an automated response overrides a static allow),
/// then the static rules.
pub fn check(
    rules: &StaticRules,
    blocklist: &Blocklist,
    ip: IpAddr,
    now: u64,
) -> Result<(), Refusal> {
    blocklist.check(ip, now)?;
    rules.check(ip)
}

/// Escalating bans for repeat offenders: the n-th ban of the same network within `memory`
/// seconds lasts `base * 2^(n-1)`, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub base_seconds: u64,
    pub max_seconds: u64,
    pub memory_seconds: u64,
}

impl Default for Escalation {
    fn default() -> Self {
        Self {
            base_seconds: 60,
            max_seconds: 86_400,
            memory_seconds: 86_400,
        }
    }
}

/// Past offences per client network, bounded in size.
#[derive(Clone, Debug, Default)]
pub struct Offenders {
    seen: HashMap<IpNet, (u32, u64)>,
}

/// Offender networks kept before the oldest are forgotten.
const MAX_OFFENDERS: usize = 100_000;

impl Offenders {
    /// Records one more offence of the client at `ip` and answers the network to block and for
    /// how many seconds.
    pub fn offend(&mut self, ip: IpAddr, now: u64, policy: &Escalation) -> (IpNet, u64) {
        let net = client_net(ip);
        if self.seen.len() >= MAX_OFFENDERS && !self.seen.contains_key(&net) {
            let horizon = now.saturating_sub(policy.memory_seconds);
            self.seen.retain(|_, (_, last)| *last > horizon);
            if self.seen.len() >= MAX_OFFENDERS {
                self.seen.clear();
            }
        }
        let entry = self.seen.entry(net).or_insert((0, now));
        if now.saturating_sub(entry.1) > policy.memory_seconds {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(40);
        let seconds = policy
            .base_seconds
            .saturating_mul(1u64 << doublings)
            .min(policy.max_seconds);
        (net, seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let rules = StaticRules::new(
            &[net("10.0.0.0/8"), net("10.1.2.0/24")],
            &[net("10.1.0.0/16")],
        );
        assert_eq!(rules.check(ip("10.9.9.9")), Ok(()));
        assert!(matches!(
            rules.check(ip("10.1.9.9")),
            Err(Refusal::Denied { .. })
        ));
        assert_eq!(rules.check(ip("10.1.2.3")), Ok(()));
        assert_eq!(rules.check(ip("192.0.2.1")), Err(Refusal::NotAllowed));
    }

    #[test]
    fn mapped_ipv6_is_matched_as_ipv4() {
        let rules = StaticRules::new(&[], &[net("192.0.2.0/24")]);
        assert!(rules.check(ip("::ffff:192.0.2.7")).is_err());
        assert!(rules.check(ip("::ffff:c000:207")).is_err());
        assert!(rules.check(ip("::ffff:198.51.100.1")).is_ok());
        // A rule written in mapped form covers plain IPv4.
        let rules = StaticRules::new(&[], &[net("::ffff:198.51.100.0/120")]);
        assert!(rules.check(ip("198.51.100.9")).is_err());
    }

    #[test]
    fn blocks_expire_and_override_allow() {
        let rules = StaticRules::new(&[net("0.0.0.0/0")], &[]);
        let list = Blocklist::new([Block {
            net: net("203.0.113.0/24"),
            until: 100,
            reason: "scanner".into(),
        }]);
        assert!(check(&rules, &list, ip("203.0.113.5"), 99).is_err());
        assert!(check(&rules, &list, ip("203.0.113.5"), 100).is_ok());
    }

    #[test]
    fn expired_specific_block_falls_back_to_a_live_wider_one() {
        let list = Blocklist::new([
            Block {
                net: net("2001:db8::/32"),
                until: 500,
                reason: "wide".into(),
            },
            Block {
                net: net("2001:db8::/64"),
                until: 10,
                reason: "narrow".into(),
            },
        ]);
        let Err(Refusal::Blocked { reason, .. }) = list.check(ip("2001:db8::1"), 20) else {
            panic!("not blocked");
        };
        assert_eq!(reason, "wide");
    }

    #[test]
    fn ipv6_offenders_are_banned_by_64_with_escalation() {
        let mut offenders = Offenders::default();
        let policy = Escalation {
            base_seconds: 10,
            max_seconds: 35,
            memory_seconds: 1000,
        };
        let (n, first) = offenders.offend(ip("2001:db8:1:2:aaaa::1"), 0, &policy);
        assert_eq!(n, net("2001:db8:1:2::/64"));
        assert_eq!(first, 10);
        let (_, second) = offenders.offend(ip("2001:db8:1:2:bbbb::9"), 5, &policy);
        assert_eq!(second, 20);
        let (_, third) = offenders.offend(ip("2001:db8:1:2::3"), 6, &policy);
        assert_eq!(third, 35);
        // Forgotten after the memory window.
        let (_, later) = offenders.offend(ip("2001:db8:1:2::3"), 2000, &policy);
        assert_eq!(later, 10);
        let (v4, _) = offenders.offend(ip("::ffff:192.0.2.1"), 0, &policy);
        assert_eq!(v4, net("192.0.2.1/32"));
    }

    proptest! {
        /// The table answers the same as a linear scan for the most specific containing network.
        #[test]
        fn table_matches_linear_scan(
            nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..24),
            probes in proptest::collection::vec(any::<u32>(), 1..16),
        ) {
            let nets: Vec<IpNet> = nets
                .into_iter()
                .map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
                .collect();
            let mut table = CidrTable::new();
            for (i, n) in nets.iter().enumerate() {
                table.insert(*n, i);
            }
            for p in probes {
                let addr = IpAddr::V4(Ipv4Addr::from(p));
                let expected = nets
                    .iter()
                    .filter(|n| n.contains(&addr))
                    .max_by_key(|n| n.prefix_len())
                    .copied();
                prop_assert_eq!(table.lookup(addr).map(|(n, _)| n), expected);
                // The mapped form answers the same.
                let mapped = IpAddr::V6(Ipv4Addr::from(p).to_ipv6_mapped());
                prop_assert_eq!(table.lookup(mapped).map(|(n, _)| n), expected);
            }
        }

        #[test]
        fn ipv6_table_matches_linear_scan(
            nets in proptest::collection::vec((any::<u128>(), 0u8..=128), 0..24),
            probes in proptest::collection::vec(any::<u128>(), 1..16),
        ) {
            let nets: Vec<IpNet> = nets
                .into_iter()
                .map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
                .map(canonical_net)
                .collect();
            let mut table = CidrTable::new();
            for n in &nets {
                table.insert(*n, ());
            }
            for p in probes {
                let addr = canonical_ip(IpAddr::V6(Ipv6Addr::from(p)));
                let expected = nets
                    .iter()
                    .filter(|n| n.contains(&addr))
                    .max_by_key(|n| n.prefix_len())
                    .copied();
                prop_assert_eq!(table.lookup(addr).map(|(n, _)| n), expected);
            }
        }
    }
}
