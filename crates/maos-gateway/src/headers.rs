//! Response headers: security headers per route, and headers that describe the upstream
//! (`Server`, `X-Powered-By`) removed.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// Security headers of a route. Each is set on every response (replacing the upstream's);
/// an empty string leaves the header out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityHeaders {
    pub strict_transport_security: String,
    pub content_security_policy: String,
    pub x_content_type_options: String,
    pub x_frame_options: String,
    pub referrer_policy: String,
    pub permissions_policy: String,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self {
            strict_transport_security: "max-age=31536000; includeSubDomains".into(),
            content_security_policy: "default-src 'none'; frame-ancestors 'none'".into(),
            x_content_type_options: "nosniff".into(),
            x_frame_options: "DENY".into(),
            referrer_policy: "no-referrer".into(),
            permissions_policy: "camera=(), microphone=(), geolocation=()".into(),
        }
    }
}

/// Headers describing the upstream's software.
const REVEALING: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
];

impl SecurityHeaders {
    fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            ("strict-transport-security", &self.strict_transport_security),
            ("content-security-policy", &self.content_security_policy),
            ("x-content-type-options", &self.x_content_type_options),
            ("x-frame-options", &self.x_frame_options),
            ("referrer-policy", &self.referrer_policy),
            ("permissions-policy", &self.permissions_policy),
        ]
    }

    /// Refuses values that are not valid header values (checked at configuration load).
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in self.pairs() {
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for `{name}`"))?;
        }
        Ok(())
    }

    /// Sets the security headers on a response and removes revealing ones. HSTS is sent only
    /// over TLS, where it means something.
    pub fn apply(&self, headers: &mut HeaderMap, tls: bool) {
        for name in REVEALING {
            headers.remove(*name);
        }
        for (name, value) in self.pairs() {
            if name == "strict-transport-security" && !tls {
                headers.remove(name);
                continue;
            }
            let name = HeaderName::from_static(name);
            match HeaderValue::from_str(value) {
                Ok(value) if !value.is_empty() => {
                    headers.insert(name, value);
                }
                _ => {
                    headers.remove(name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_set_and_server_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("server", HeaderValue::from_static("nginx/1.2"));
        headers.insert("x-powered-by", HeaderValue::from_static("PHP/5"));
        headers.insert("x-frame-options", HeaderValue::from_static("ALLOWALL"));
        let config = SecurityHeaders {
            referrer_policy: String::new(),
            ..SecurityHeaders::default()
        };
        config.apply(&mut headers, true);
        assert!(headers.get("server").is_none());
        assert!(headers.get("x-powered-by").is_none());
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.get("referrer-policy").is_none());
        assert!(headers.contains_key("strict-transport-security"));

        let mut plain = HeaderMap::new();
        config.apply(&mut plain, false);
        assert!(plain.get("strict-transport-security").is_none());
    }
}
