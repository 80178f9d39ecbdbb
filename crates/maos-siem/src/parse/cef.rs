//! ArcSight Common Event Format: `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|ext`,
//! alone or after a syslog header.

use std::collections::BTreeMap;

/// Why a line is not CEF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CefError {
    #[error("no `CEF:` header in `{0}`")]
    NoHeader(String),
    #[error("CEF header has fewer than seven fields: `{0}`")]
    ShortHeader(String),
}

/// One CEF record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CefRecord {
    pub version: String,
    pub vendor: String,
    pub product: String,
    pub device_version: String,
    pub signature_id: String,
    pub name: String,
    /// 0-10, or Low/Medium/High/Very-High as given.
    pub severity: String,
    pub extensions: BTreeMap<String, String>,
    /// Whatever preceded `CEF:` (a syslog header), trimmed.
    pub prefix: String,
}

impl CefRecord {
    /// Severity on CEF's 0-10 scale (named levels mapped to 3, 6, 8, 10).
    pub fn severity_number(&self) -> Option<u8> {
        match self.severity.to_ascii_lowercase().as_str() {
            "unknown" => None,
            "low" => Some(3),
            "medium" => Some(6),
            "high" => Some(8),
            "very-high" => Some(10),
            n => n.parse().ok().filter(|v| *v <= 10),
        }
    }
}

/// Parse a CEF line.
pub fn parse_cef(line: &str) -> Result<CefRecord, CefError> {
    let start = line
        .find("CEF:")
        .ok_or_else(|| CefError::NoHeader(line.to_owned()))?;
    let prefix = line.get(..start).unwrap_or("").trim().to_owned();
    let body = line.get(start + 4..).unwrap_or("");

    // Seven pipe-separated header fields; `\|` and `\\` are escapes.
    let mut fields = Vec::with_capacity(7);
    let mut current = String::new();
    let mut chars = body.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('|' | '\\'))) => current.push(e),
                Some((_, e)) => {
                    current.push('\\');
                    current.push(e);
                }
                None => current.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut current));
                if fields.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            other => current.push(other),
        }
    }
    let ext = match ext_start {
        Some(i) => body.get(i..).unwrap_or(""),
        None if fields.len() == 6 => {
            // The extension may be absent without a trailing pipe.
            fields.push(std::mem::take(&mut current));
            ""
        }
        None => return Err(CefError::ShortHeader(line.to_owned())),
    };
    let mut it = fields.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok(CefRecord {
        version: next(),
        vendor: next(),
        product: next(),
        device_version: next(),
        signature_id: next(),
        name: next(),
        severity: next(),
        extensions: parse_extensions(ext),
        prefix,
    })
}

/// `key=value key2=value with spaces`: a value runs to the next ` key=`; `\=`, `\\`, `\n`
/// and `\r` are escapes.
fn parse_extensions(ext: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let bytes = ext.as_bytes();
    // Positions of unescaped `=` with a key (alphanumerics, `_`, `.`, `[`, `]`) before it.
    let mut keys: Vec<(usize, usize, usize)> = Vec::new(); // (key start, eq, value start)
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(b'=') => {
                let mut k = i;
                while k > 0
                    && bytes.get(k - 1).is_some_and(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'-')
                    })
                {
                    k -= 1;
                }
                let at_boundary = k == 0 || bytes.get(k - 1) == Some(&b' ');
                if k < i && at_boundary {
                    keys.push((k, i, i + 1));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    for (n, &(k, eq, v)) in keys.iter().enumerate() {
        let end = keys
            .get(n + 1)
            .map_or(ext.len(), |next| next.0.saturating_sub(1));
        let (Some(key), Some(raw)) = (ext.get(k..eq), ext.get(v..end.max(v))) else {
            continue;
        };
        out.insert(key.to_owned(), unescape(raw.trim_end()));
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(e @ ('=' | '\\' | '|')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_extensions() {
        let r = parse_cef(
            "Sep 19 08:26:10 host CEF:0|Security|threatmanager|1.0|100|worm \\| stopped|10|\
             src=10.0.0.1 dst=2.1.2.2 spt=1232 msg=Detected a threat. No action needed a\\=b suser=bob",
        )
        .unwrap();
        assert_eq!(r.vendor, "Security");
        assert_eq!(r.name, "worm | stopped");
        assert_eq!(r.severity_number(), Some(10));
        assert_eq!(r.prefix, "Sep 19 08:26:10 host");
        assert_eq!(r.extensions["src"], "10.0.0.1");
        assert_eq!(
            r.extensions["msg"],
            "Detected a threat. No action needed a=b"
        );
        assert_eq!(r.extensions["suser"], "bob");
        assert!(parse_cef("CEF:0|a|b").is_err());
        assert!(parse_cef("nothing here").is_err());
        let r = parse_cef("CEF:0|a|b|c|d|e|Low").unwrap();
        assert!(r.extensions.is_empty());
        assert_eq!(r.severity_number(), Some(3));
    }
}
