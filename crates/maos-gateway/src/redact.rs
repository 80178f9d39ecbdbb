//! Redaction of named fields in JSON responses.

use serde_json::Value;

/// The text that replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Replaces the value of every object member named in `fields` (at any depth, names compared
/// case-insensitively). Answers whether anything changed.
pub fn redact(value: &mut Value, fields: &[String]) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (key, item) in map.iter_mut() {
                if fields.iter().any(|f| f.eq_ignore_ascii_case(key)) {
                    *item = Value::String(REDACTED.into());
                    changed = true;
                } else {
                    changed |= redact(item, fields);
                }
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| redact(item, fields) | changed),
        _ => false,
    }
}

/// Redacts a JSON body; a body that is not JSON is returned unchanged (`None`).
pub fn redact_body(body: &[u8], fields: &[String]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if !redact(&mut value, fields) {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_fields_are_redacted_at_any_depth() {
        let mut value =
            json!({"user": {"name": "a", "SSN": "123"}, "list": [{"ssn": "4"}], "n": 1});
        assert!(redact(&mut value, &["ssn".into()]));
        assert_eq!(
            value,
            json!({"user": {"name": "a", "SSN": REDACTED}, "list": [{"ssn": REDACTED}], "n": 1})
        );
        assert!(redact_body(b"not json", &["ssn".into()]).is_none());
        assert!(redact_body(br#"{"a": 1}"#, &["ssn".into()]).is_none());
    }
}
