//! The client address of a request: the peer, or, when the peer is a trusted proxy, the address
//! the proxies recorded in `X-Forwarded-For`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::firewall::canonical_ip;

/// An `X-Forwarded-For` entry from a trusted proxy that is not an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`X-Forwarded-For` entry `{0}` is not an IP address")]
pub struct BadForwardedFor(pub String);

/// Whether `ip` is one of the configured proxies (IPv4-mapped addresses count as IPv4).
pub fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client address. Headers are ignored unless the peer is trusted. From a trusted peer the
/// `X-Forwarded-For` values (all instances, in order) are walked from the right, skipping
/// trusted proxies: the first untrusted address is the client, since everything left of it was
/// written by the client itself. When every entry is trusted, the leftmost is the client.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Result<IpAddr, BadForwardedFor> {
    let peer = canonical_ip(peer);
    if !is_trusted(trusted, peer) {
        return Ok(peer);
    }
    let entries: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let ip: IpAddr = entry
            .parse()
            .map_err(|_| BadForwardedFor(entry.chars().take(64).collect()))?;
        client = canonical_ip(ip);
        if !is_trusted(trusted, client) {
            break;
        }
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn untrusted_peers_cannot_name_a_client() {
        let got = client_ip(ip("203.0.113.9"), ["192.0.2.1"], &proxies()).unwrap();
        assert_eq!(got, ip("203.0.113.9"));
        // Not even garbage is looked at.
        assert!(client_ip(ip("203.0.113.9"), ["nonsense"], &proxies()).is_ok());
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let got = client_ip(
            ip("10.0.0.1"),
            ["6.6.6.6, 192.0.2.7", "10.0.0.2"],
            &proxies(),
        );
        assert_eq!(got.unwrap(), ip("192.0.2.7"));
        let got = client_ip(ip("10.0.0.1"), ["10.9.9.9, 10.0.0.2"], &proxies());
        assert_eq!(got.unwrap(), ip("10.9.9.9"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), [], &proxies()).unwrap(),
            ip("10.0.0.1")
        );
        let got = client_ip(ip("::ffff:10.0.0.1"), ["::ffff:192.0.2.8"], &proxies());
        assert_eq!(got.unwrap(), ip("192.0.2.8"));
    }

    #[test]
    fn garbage_from_a_trusted_proxy_is_an_error() {
        assert!(client_ip(ip("10.0.0.1"), ["1.2.3.4, unknown"], &proxies()).is_err());
    }
}
