//! The gateway's parsers of untrusted input: request paths (normalisation must never panic,
//! and the encoded form sent upstream must normalise to the path that was authorized), route
//! matching, `X-Forwarded-For`, and the intrusion detector over a whole request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_gateway::detect::{Inspected, inspect};
use maos_gateway::path::{encode, normalise, query};
use maos_gateway::route::PathPattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = query(text);
    if let Some(path) = normalise(text) {
        let sent = encode(&path);
        assert_eq!(normalise(&sent).as_deref(), Some(path.as_str()));
        for pattern in ["/docs/{*rest}", "/a/{id}/b", "/"] {
            if let Ok(pattern) = PathPattern::parse(pattern) {
                let _ = pattern.matches(&path);
            }
        }
    }
    let _ = maos_gateway::forwarded::client_ip(
        std::net::IpAddr::from([10, 0, 0, 1]),
        [text],
        &["10.0.0.0/8"
            .parse()
            .unwrap_or_else(|_| ipnet::IpNet::default())],
    );
    let (head, body) = text.split_once('\n').unwrap_or((text, ""));
    let _ = inspect(&Inspected {
        target: head,
        headers: vec![("user-agent", head), ("x-note", body)],
        body: Some(body.as_bytes()),
        media_type: Some("application/json"),
    });
});
