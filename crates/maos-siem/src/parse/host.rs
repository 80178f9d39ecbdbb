//! Remote host tokens as logs write them: IPv4, IPv6 (bare, bracketed, with a port),
//! IPv4-mapped IPv6, and host names kept as given.

use std::net::{IpAddr, Ipv6Addr};

use serde::Serialize;

/// The remote end named by a log line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Host {
    /// An address; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is stored as the IPv4 address.
    Ip(IpAddr),
    /// A name (or anything that is not a valid address), exactly as the log wrote it.
    Name(String),
}

impl Host {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::Name(_) => None,
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// Parse an address, unmapping IPv4-mapped IPv6.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.parse().ok()?;
    Some(ip.to_canonical())
}

/// Parse one host token, which may carry a port: `1.2.3.4`, `1.2.3.4:22`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:22`, `::ffff:1.2.3.4`, `example.com`, `example.com:80`.
///
/// A bare IPv6 address never loses its last group to a "port": `2001:db8::1:22` is the
/// address, because only brackets make an IPv6 port unambiguous.
pub fn parse_host_port(token: &str) -> Option<(Host, Option<u16>)> {
    if token.is_empty() {
        return None;
    }

    if let Some(inner) = token.strip_prefix('[') {
        let (addr, after) = inner.split_once(']')?;
        let ip: Ipv6Addr = addr.parse().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((Host::Ip(IpAddr::V6(ip).to_canonical()), port));
    }

    if let Some(ip) = parse_ip(token) {
        return Some((Host::Ip(ip), None));
    }

    // One colon: host or IPv4 followed by a port.
    if token.matches(':').count() == 1
        && let Some((host, port)) = token.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
        && !host.is_empty()
    {
        let host = match parse_ip(host) {
            Some(ip) => Host::Ip(ip),
            None => Host::Name(host.to_owned()),
        };
        return Some((host, Some(port)));
    }

    Some((Host::Name(token.to_owned()), None))
}

/// Parse a host token without a port.
pub fn parse_host(token: &str) -> Option<Host> {
    if token.is_empty() {
        return None;
    }
    if let Some(inner) = token.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
        && let Some(ip) = parse_ip(inner)
    {
        return Some(Host::Ip(ip));
    }
    Some(match parse_ip(token) {
        Some(ip) => Host::Ip(ip),
        None => Host::Name(token.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    #[test]
    fn host_forms() {
        assert_eq!(parse_host_port("1.2.3.4"), Some((ip("1.2.3.4"), None)));
        assert_eq!(
            parse_host_port("1.2.3.4:22"),
            Some((ip("1.2.3.4"), Some(22)))
        );
        assert_eq!(
            parse_host_port("2001:db8::1"),
            Some((ip("2001:db8::1"), None))
        );
        assert_eq!(
            parse_host_port("2001:db8::1:22"),
            Some((ip("2001:db8::1:22"), None))
        );
        assert_eq!(
            parse_host_port("[2001:db8::1]:22"),
            Some((ip("2001:db8::1"), Some(22)))
        );
        assert_eq!(
            parse_host_port("[2001:db8::1]"),
            Some((ip("2001:db8::1"), None))
        );
        assert_eq!(
            parse_host_port("::ffff:1.2.3.4"),
            Some((ip("1.2.3.4"), None))
        );
        assert_eq!(
            parse_host_port("[::ffff:1.2.3.4]:80"),
            Some((ip("1.2.3.4"), Some(80)))
        );
        assert_eq!(
            parse_host_port("example.com:8080"),
            Some((Host::Name("example.com".into()), Some(8080)))
        );
        assert_eq!(
            parse_host("192.030.0.6"),
            Some(Host::Name("192.030.0.6".into()))
        );
        assert_eq!(parse_host_port("[2001:db8::1]:x"), None);
        assert_eq!(parse_host_port(""), None);
    }
}
