//! Intrusion detection: SQL injection and XSS (libinjection's algorithms, by libinjectionrs),
//! path traversal and scanner signatures, scored in the manner of the OWASP Core Rule Set: each
//! finding adds its severity's points and a request at or over the threshold is an intrusion.

use serde::{Deserialize, Serialize};

/// What the route does with a request scored at or over the threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// No inspection.
    #[default]
    Off,
    /// Inspect and report, never refuse.
    Detect,
    /// Inspect and refuse with 403.
    Block,
}

/// CRS severities and their points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Notice,
}

impl Severity {
    pub fn points(self) -> u32 {
        match self {
            Severity::Critical => 5,
            Severity::Error => 4,
            Severity::Warning => 3,
            Severity::Notice => 2,
        }
    }
}

/// The CRS default inbound anomaly threshold.
pub const DEFAULT_THRESHOLD: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    SqlInjection,
    Xss,
    PathTraversal,
    Scanner,
    /// The client sends far more requests than the route's anomaly rate.
    RateAnomaly,
}

/// One finding: what, where, how severe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// `query:<name>`, `body`, `body:<field>`, `header:<name>`, `path`.
    pub location: String,
    pub severity: Severity,
    /// The libinjection fingerprint or matched signature.
    pub evidence: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub score: u32,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_intrusion(&self, threshold: u32) -> bool {
        self.score >= threshold
    }

    fn add(&mut self, kind: Kind, location: &str, severity: Severity, evidence: impl Into<String>) {
        self.score = self.score.saturating_add(severity.points());
        self.findings.push(Finding {
            kind,
            location: location.to_owned(),
            severity,
            evidence: evidence.into(),
        });
    }

    /// Adds the finding of a client over the route's anomaly rate (a CRS warning: alone it
    /// stays under the default threshold, with any other finding it crosses it).
    pub fn add_rate_anomaly(&mut self, evidence: &str) {
        self.add(Kind::RateAnomaly, "client", Severity::Warning, evidence);
    }

    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .findings
            .iter()
            .map(|f| format!("{:?} in {}", f.kind, f.location))
            .collect();
        format!("anomaly score {}: {}", self.score, parts.join(", "))
    }
}

/// User agents of well-known attack and scanning tools (lowercase substrings).
const SCANNERS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "dirbuster",
    "gobuster",
    "wpscan",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "havij",
    "netsparker",
    "arachni",
    "skipfish",
    "whatweb",
    "wfuzz",
    "ffuf",
    "jaeles",
    "burpcollaborator",
    "commix",
    "zmeu",
];

/// Traversal forms after one decoding (lowercase substrings).
const TRAVERSAL: &[&str] = &[
    "../",
    "..\\",
    "/..",
    "\\..",
    "%2e%2e",
    "%252e",
    "..%2f",
    "..%5c",
    "%c0%ae",
    "/etc/passwd",
    "/etc/shadow",
    "c:\\windows",
    "/proc/self/",
];

/// The parts of a request the detector reads.
#[derive(Debug, Default)]
pub struct Inspected<'a> {
    /// The raw request target (path and query as received).
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Option<&'a [u8]>,
    /// The body's media type, to pick form or JSON field extraction.
    pub media_type: Option<&'a str>,
}

/// Headers never inspected: credentials and those the gateway itself reads strictly.
const SKIPPED_HEADERS: &[&str] = &["authorization", "content-length", "host", "content-type"];

/// Inspects one request.
pub fn inspect(request: &Inspected<'_>) -> Report {
    let mut report = Report::default();

    let (raw_path, raw_query) = match request.target.split_once('?') {
        Some((p, q)) => (p, Some(q.split('#').next().unwrap_or_default())),
        None => (request.target, None),
    };
    traversal(&mut report, "path", &url_decode(raw_path, false));

    if let Some(query) = raw_query {
        for (name, value) in form_pairs(query) {
            let location = format!("query:{name}");
            injection(&mut report, &location, &value);
            traversal(&mut report, &location, &value);
        }
    }

    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if SKIPPED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if name == "user-agent" {
            let agent = value.to_ascii_lowercase();
            if let Some(tool) = SCANNERS.iter().find(|s| agent.contains(*s)) {
                report.add(
                    Kind::Scanner,
                    "header:user-agent",
                    Severity::Critical,
                    *tool,
                );
            }
        }
        injection(&mut report, &format!("header:{name}"), value);
    }

    if let Some(body) = request.body {
        body_fields(&mut report, body, request.media_type.unwrap_or_default());
    }
    report
}

fn body_fields(report: &mut Report, body: &[u8], media_type: &str) {
    if media_type == "application/x-www-form-urlencoded" {
        let text = String::from_utf8_lossy(body);
        for (name, value) in form_pairs(&text) {
            injection(report, &format!("body:{name}"), &value);
        }
    } else if media_type == "application/json" || media_type.ends_with("+json") {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) => json_strings(report, &value, ""),
            Err(_) => injection(report, "body", &String::from_utf8_lossy(body)),
        }
    } else {
        injection(report, "body", &String::from_utf8_lossy(body));
    }
}

fn json_strings(report: &mut Report, value: &serde_json::Value, at: &str) {
    match value {
        serde_json::Value::String(s) => injection(report, &format!("body:{at}"), s),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_strings(report, item, &format!("{at}/{i}"));
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                injection(report, &format!("body:{at}/{key}#key"), key);
                json_strings(report, item, &format!("{at}/{key}"));
            }
        }
        _ => {}
    }
}

fn injection(report: &mut Report, location: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let sqli = libinjectionrs::detect_sqli(value.as_bytes());
    if sqli.is_injection() {
        let evidence = sqli
            .fingerprint
            .map(|f| f.as_str().to_owned())
            .unwrap_or_default();
        report.add(Kind::SqlInjection, location, Severity::Critical, evidence);
    }
    if libinjectionrs::detect_xss(value.as_bytes()).is_injection() {
        report.add(Kind::Xss, location, Severity::Critical, "xss");
    }
}

fn traversal(report: &mut Report, location: &str, value: &str) {
    let lower = value.to_ascii_lowercase();
    if let Some(sign) = TRAVERSAL.iter().find(|t| lower.contains(*t)) {
        report.add(Kind::PathTraversal, location, Severity::Critical, *sign);
    }
}

/// `name=value` pairs of a query or form body, decoded once (`+` is a space).
pub fn form_pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (url_decode(name, true), url_decode(value, true))
    })
}

/// Percent-decoding, lossy: invalid escapes stay as written, invalid UTF-8 is replaced.
pub fn url_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| {
                let hi = char::from(*bytes.get(i + 1)?).to_digit(16)?;
                let lo = char::from(*bytes.get(i + 2)?).to_digit(16)?;
                u8::try_from(hi * 16 + lo).ok()
            })
            .flatten();
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(if plus_is_space && b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(t: &str) -> Report {
        inspect(&Inspected {
            target: t,
            ..Inspected::default()
        })
    }

    #[test]
    fn known_sql_injections_are_found() {
        for payload in [
            "/items?id=1%27%20OR%20%271%27%3D%271",
            "/items?id=1+UNION+SELECT+password+FROM+users--",
            "/items?q=1%3B%20DROP%20TABLE%20users",
            "/items?id=-1'+or+1=1--+",
        ] {
            let report = target(payload);
            assert!(
                report.findings.iter().any(|f| f.kind == Kind::SqlInjection),
                "{payload}: {report:?}"
            );
            assert!(report.is_intrusion(DEFAULT_THRESHOLD));
        }
    }

    #[test]
    fn known_xss_is_found() {
        for payload in [
            "/p?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "/p?q=<img src=x onerror=alert(1)>",
            "/p?q=%22%3E%3Csvg%20onload%3Dalert(1)%3E",
        ] {
            let report = target(payload);
            assert!(
                report.findings.iter().any(|f| f.kind == Kind::Xss),
                "{payload}: {report:?}"
            );
        }
    }

    #[test]
    fn ordinary_requests_score_zero() {
        for t in [
            "/items?id=42",
            "/search?q=rust+security+gateway&page=2",
            "/users/o%27brien",
            "/docs/a.b/c",
            "/search?q=it%27s+fine",
        ] {
            assert_eq!(target(t).score, 0, "{t}: {:?}", target(t));
        }
        let report = inspect(&Inspected {
            target: "/orders",
            headers: vec![
                ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
                ("Accept", "*/*"),
            ],
            body: Some(br#"{"item": "book", "note": "deliver after 5pm, ring twice"}"#),
            media_type: Some("application/json"),
        });
        assert_eq!(report.score, 0, "{report:?}");
    }

    #[test]
    fn bodies_headers_and_agents_are_inspected() {
        let report = inspect(&Inspected {
            target: "/orders",
            headers: vec![
                ("User-Agent", "sqlmap/1.7"),
                ("X-Note", "<script>alert(1)</script>"),
            ],
            body: Some(br#"{"filter": "1' OR '1'='1"}"#),
            media_type: Some("application/json"),
        });
        let kinds: Vec<Kind> = report.findings.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&Kind::Scanner), "{report:?}");
        assert!(kinds.contains(&Kind::Xss), "{report:?}");
        assert!(kinds.contains(&Kind::SqlInjection), "{report:?}");
        assert_eq!(report.score, 15);
    }

    #[test]
    fn traversal_in_values_is_found() {
        let report = target("/download?file=..%2F..%2Fetc%2Fpasswd");
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.kind == Kind::PathTraversal)
        );
    }

    #[test]
    fn decoding_is_lossy_not_panicking() {
        assert_eq!(url_decode("%41%4", false), "A%4");
        assert_eq!(url_decode("a+b%2", true), "a b%2");
        assert_eq!(url_decode("%ff", false), "\u{fffd}");
    }
}
