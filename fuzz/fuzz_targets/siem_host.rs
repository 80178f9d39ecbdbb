//! Host tokens from log lines: addresses, bracketed IPv6 with ports, names. A parsed host
//! written back out parses to the same host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_siem::parse::host::{Host, parse_host, parse_host_port, parse_ip};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(ip) = parse_ip(token) {
        assert_eq!(
            parse_ip(&ip.to_string()),
            Some(ip),
            "an address does not round-trip"
        );
    }
    if let Some((host, _port)) = parse_host_port(token)
        && let Host::Ip(ip) = &host
    {
        assert_eq!(parse_ip(&ip.to_string()), Some(*ip));
    }
    if let Some(host) = parse_host(token)
        && let Host::Ip(ip) = host
    {
        assert_eq!(
            parse_host(&ip.to_string()),
            Some(Host::Ip(ip)),
            "a host does not round-trip"
        );
    }
});
