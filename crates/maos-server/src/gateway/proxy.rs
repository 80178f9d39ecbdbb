//! Talking to the upstream: its address, the headers that cross the gateway in each direction,
//! and the HTTP client.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The protected service: `http://host:port`.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl Upstream {
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|_| format!("upstream `{text}` is not a URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!("upstream `{text}` must be an http:// URL"));
        }
        let path_is_root = uri.path_and_query().is_none_or(|pq| pq.as_str() == "/");
        let Some(authority) = uri.authority().filter(|_| path_is_root) else {
            return Err(format!(
                "upstream `{text}` must be `http://host:port` without a path"
            ));
        };
        Ok(Upstream {
            scheme: Scheme::HTTP,
            authority: authority.clone(),
        })
    }

    /// The URI of `target` (an encoded path and query) on the upstream.
    pub fn uri(&self, target: &str) -> Result<http::Uri, http::Error> {
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(target)
            .build()
    }
}

pub type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build(connector)
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers a client must not be able to set for the upstream: the gateway writes them itself.
const GATEWAY_WRITTEN: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-client-cert",
    "x-ssl-client-cert",
];

/// The prefix of identity headers; any copy a client sends is removed.
pub const IDENTITY_PREFIX: &str = "x-maos-";

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// The request headers as the upstream receives them: hop-by-hop, gateway-written and identity
/// headers from the client removed, then the gateway's own added.
pub fn upstream_headers(
    mut headers: HeaderMap,
    client_ip: std::net::IpAddr,
    proto: &'static str,
    identity: &[(&'static str, String)],
) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    headers.remove(http::header::CONTENT_LENGTH);
    for name in GATEWAY_WRITTEN {
        headers.remove(*name);
    }
    let client_copies: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(IDENTITY_PREFIX))
        .cloned()
        .collect();
    for name in client_copies {
        headers.remove(name);
    }
    if let Ok(value) = HeaderValue::from_str(&client_ip.to_string()) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    for (name, value) in identity {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_plain_http_origins() {
        assert!(Upstream::parse("http://127.0.0.1:9000").is_ok());
        assert!(Upstream::parse("http://127.0.0.1:9000/").is_ok());
        assert!(Upstream::parse("https://127.0.0.1:9000").is_err());
        assert!(Upstream::parse("http://127.0.0.1:9000/api").is_err());
        assert!(Upstream::parse("not a url").is_err());
        let upstream = Upstream::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            upstream.uri("/a%20b?x=1").unwrap().to_string(),
            "http://127.0.0.1:9000/a%20b?x=1"
        );
    }

    #[test]
    fn client_copies_of_gateway_headers_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert("x-maos-subject", HeaderValue::from_static("user:admin"));
        headers.insert("X-Maos-Anything", HeaderValue::from_static("1"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.insert("connection", HeaderValue::from_static("close, x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("s"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let out = upstream_headers(
            headers,
            "192.0.2.1".parse().unwrap(),
            "https",
            &[("x-maos-subject", "user:alice".into())],
        );
        assert_eq!(out["x-maos-subject"], "user:alice");
        assert!(out.get("x-maos-anything").is_none());
        assert_eq!(out["x-forwarded-for"], "192.0.2.1");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert!(out.get("x-secret").is_none() && out.get("connection").is_none());
        assert_eq!(out["accept"], "*/*");
    }
}
