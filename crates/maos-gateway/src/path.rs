//! Request paths: one normal form for matching, and the exact bytes sent upstream.
//!
//! A path is decoded once and refused when a proxy or upstream could resolve it differently
//! from the route table. The upstream then receives [`encode`] of the decoded path, so the path
//! that was authorized is exactly the path forwarded.

/// The path of a request target, normalised for route matching: the query and fragment are
/// dropped and percent-escapes decoded exactly once. Paths that a proxy or upstream may resolve
/// differently from the route table are refused (`None`) instead of matched: encoded slashes
/// (decided before decoding), invalid escapes, control characters, invalid UTF-8, non-ASCII
/// characters (look-alikes such as `／`), path parameters (`;`), backslashes, empty segments
/// (`//`), `.` and `..` segments, and a `%` left after decoding (double encoding).
pub fn normalise(uri: &str) -> Option<String> {
    let raw = uri.split(['?', '#']).next().unwrap_or_default();
    if !raw.starts_with('/') || raw.to_ascii_lowercase().contains("%2f") {
        return None;
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut iter = raw.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hi = iter.next().and_then(hex_value)?;
            let lo = iter.next().and_then(hex_value)?;
            bytes.push(hi * 16 + lo);
        } else {
            bytes.push(b);
        }
    }
    let path = String::from_utf8(bytes).ok()?;
    let refused = path
        .chars()
        .any(|c| !c.is_ascii() || c.is_control() || matches!(c, ';' | '\\' | '%'))
        || path.contains("//")
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    (!refused).then_some(path)
}

/// The query of a request target (without `?` and fragment), if any.
pub fn query(uri: &str) -> Option<&str> {
    let before_fragment = uri.split('#').next().unwrap_or_default();
    before_fragment.split_once('?').map(|(_, q)| q)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The request-target form of a normalised path: every byte outside the unreserved set, `/` and
/// a few sub-delimiters is percent-encoded, so the upstream decodes it back to exactly the path
/// that was authorized (a decoded `?` or `#` cannot start a query or fragment upstream).
pub fn encode(path: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\''
            )
            || matches!(b, b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@');
        if plain {
            out.push(char::from(b));
        } else {
            out.push('%');
            for nibble in [b >> 4, b & 0x0f] {
                out.push(HEX.get(usize::from(nibble)).map_or('0', |h| char::from(*h)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ambiguous_paths_are_refused() {
        for path in [
            "/docs/../admin",
            "/docs/%2e%2e/admin",
            "/%2e%2e/admin",
            "/a%2Fb",
            "/admin%2f",
            "/a\\b",
            "\\admin",
            "/a//b",
            "//admin",
            "/./a",
            "/docs/%zz",
            "/docs/%4",
            "/docs/a%00",
            "/docs/a%0a",
            "/docs/%c0%ae%c0%ae/x",
            "/docs/a;b",
            "/admin;x",
            "/docs/%252e",
            "/docs/a%5cb",
            "/docs/a%ef%bc%8fb",
            "/docs/\u{e9}",
            "admin",
            "",
        ] {
            assert!(normalise(path).is_none(), "{path}");
        }
        assert_eq!(normalise("/docs/a.b/c?x=1#f").unwrap(), "/docs/a.b/c");
        assert_eq!(normalise("/docs/%73ecret").unwrap(), "/docs/secret");
        assert_eq!(normalise("/admin#x").unwrap(), "/admin");
        assert_eq!(normalise("/").unwrap(), "/");
    }

    #[test]
    fn queries_are_split_off() {
        assert_eq!(query("/a?x=1#f"), Some("x=1"));
        assert_eq!(query("/a#f?x=1"), None);
        assert_eq!(query("/a"), None);
    }

    #[test]
    fn encoding_keeps_decoded_delimiters_out_of_the_target() {
        assert_eq!(encode("/a b/c?d#e"), "/a%20b/c%3Fd%23e");
        assert_eq!(encode("/docs/a.b-c_d~e"), "/docs/a.b-c_d~e");
    }

    proptest! {
        /// A normalised path never contains anything that could be resolved again.
        #[test]
        fn normal_form_is_unambiguous(input in "[/a-z.%;\\\\?#0-9A-F]{0,24}") {
            if let Some(path) = normalise(&input) {
                prop_assert!(path.starts_with('/'));
                prop_assert!(!path.contains("//"));
                prop_assert!(!path.contains(['%', ';', '\\']));
                prop_assert!(path.split('/').all(|s| s != "." && s != ".."));
            }
        }

        /// What is sent upstream decodes to exactly the path that was authorized.
        #[test]
        fn encoded_path_normalises_to_itself(input in "/[ -~]{0,32}") {
            if let Some(path) = normalise(&input) {
                let sent = encode(&path);
                prop_assert_eq!(normalise(&sent), Some(path));
            }
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn any_input_is_handled(input in any::<String>()) {
            let _ = normalise(&input);
            let _ = query(&input);
        }
    }
}
