//! Keeping secrets out of audit records.
//!
//! A secret or token is replaced by `hmac:<hex>`, the HMAC-SHA256 of its bytes under a key that
//! belongs to the deployment. The same value always gives the same form, so records about one
//! token can be found again (`maos audit hash VALUE`) by whoever holds the key, while the log
//! itself does not reveal the value or allow guessing it offline.

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Prefix of a redacted value.
pub const REDACTED_PREFIX: &str = "hmac:";

/// Length of a redaction key in bytes.
pub const REDACTION_KEY_LEN: usize = 32;

/// The per-deployment HMAC key. Zeroized on drop; `Debug` prints `[redacted]`. The server keeps
/// it wrapped by the key service.
pub struct RedactionKey(Zeroizing<[u8; REDACTION_KEY_LEN]>);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactionKeyError {
    #[error("the system random generator failed")]
    Random,
    #[error("a redaction key is {REDACTION_KEY_LEN} bytes, got {0}")]
    Length(usize),
}

impl RedactionKey {
    pub fn generate() -> Result<Self, RedactionKeyError> {
        let mut bytes = Zeroizing::new([0u8; REDACTION_KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| RedactionKeyError::Random)?;
        Ok(RedactionKey(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RedactionKeyError> {
        let mut key = Zeroizing::new([0u8; REDACTION_KEY_LEN]);
        if bytes.len() != REDACTION_KEY_LEN {
            return Err(RedactionKeyError::Length(bytes.len()));
        }
        key.copy_from_slice(bytes);
        Ok(RedactionKey(key))
    }

    /// The raw key, for wrapping by the key service.
    pub fn as_bytes(&self) -> &[u8; REDACTION_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for RedactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Turns secret values into their `hmac:<hex>` form.
pub struct AuditRedactor {
    key: hmac::Key,
}

impl AuditRedactor {
    pub fn new(key: &RedactionKey) -> Self {
        AuditRedactor {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()),
        }
    }

    /// `hmac:` followed by the lowercase hex HMAC-SHA256 of the value's UTF-8 bytes. This is
    /// also the form to search records for when the value is known.
    pub fn redact(&self, value: &str) -> String {
        self.redact_bytes(value.as_bytes())
    }

    pub fn redact_bytes(&self, value: &[u8]) -> String {
        let tag = hmac::sign(&self.key, value);
        format!("{REDACTED_PREFIX}{}", hex::encode(tag.as_ref()))
    }

    /// Whether `form` is the redacted form of `value`, compared in constant time.
    pub fn matches(&self, form: &str, value: &str) -> bool {
        let Some(hex_tag) = form.strip_prefix(REDACTED_PREFIX) else {
            return false;
        };
        let Ok(tag) = hex::decode(hex_tag) else {
            return false;
        };
        hmac::verify(&self.key, value.as_bytes(), &tag).is_ok()
    }

    /// Replaces, anywhere in `details`, every value stored under one of `names` by its redacted
    /// form: strings directly, other values by their JSON text. Returns how many were replaced.
    pub fn redact_fields(&self, details: &mut Map<String, Value>, names: &[&str]) -> usize {
        let mut replaced = 0;
        for (name, value) in details.iter_mut() {
            if names.contains(&name.as_str()) {
                if !matches!(value, Value::String(text) if is_redacted(text)) {
                    *value = Value::String(self.redact_value(value));
                    replaced += 1;
                }
            } else {
                replaced += self.redact_nested(value, names);
            }
        }
        replaced
    }

    fn redact_nested(&self, value: &mut Value, names: &[&str]) -> usize {
        match value {
            Value::Object(members) => self.redact_fields(members, names),
            Value::Array(items) => items
                .iter_mut()
                .map(|item| self.redact_nested(item, names))
                .sum(),
            _ => 0,
        }
    }

    fn redact_value(&self, value: &Value) -> String {
        match value {
            Value::String(text) => self.redact(text),
            other => self.redact(&other.to_string()),
        }
    }
}

impl fmt::Debug for AuditRedactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditRedactor([redacted])")
    }
}

/// Whether `text` has the `hmac:<64 lowercase hex>` form.
pub fn is_redacted(text: &str) -> bool {
    text.strip_prefix(REDACTED_PREFIX).is_some_and(|tag| {
        tag.len() == 64
            && tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_answer_from_rfc_4231_test_case_2() {
        // RFC 4231 case 2 uses the 4-byte key "Jefe"; a redaction key is 32 bytes, so check the
        // HMAC primitive itself through the same aws-lc-rs call and the form around it.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let redactor = AuditRedactor { key };
        assert_eq!(
            redactor.redact("what do ya want for nothing?"),
            "hmac:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn same_value_same_form_other_key_other_form() {
        let key = RedactionKey::generate().unwrap();
        let redactor = AuditRedactor::new(&key);
        let form = redactor.redact("tok_live_123");
        assert!(is_redacted(&form));
        assert!(!form.contains("tok_live_123"));
        assert_eq!(
            form,
            AuditRedactor::new(&RedactionKey::from_bytes(key.as_bytes()).unwrap())
                .redact("tok_live_123")
        );
        assert_ne!(form, redactor.redact("tok_live_124"));
        assert_ne!(
            form,
            AuditRedactor::new(&RedactionKey::generate().unwrap()).redact("tok_live_123")
        );
        assert!(redactor.matches(&form, "tok_live_123"));
        assert!(!redactor.matches(&form, "tok_live_124"));
        assert!(!redactor.matches("hmac:zz", "tok_live_123"));
        assert!(!redactor.matches("tok_live_123", "tok_live_123"));
    }

    #[test]
    fn named_fields_are_redacted_at_any_depth() {
        let redactor = AuditRedactor::new(&RedactionKey::generate().unwrap());
        let mut details = json!({
            "token": "abc",
            "user": "alice",
            "headers": [{"authorization": "Bearer xyz"}, {"accept": "*/*"}],
            "nested": {"password": 1234, "token": redactor.redact("already")},
        });
        let members = details.as_object_mut().unwrap();
        let replaced = redactor.redact_fields(members, &["token", "authorization", "password"]);
        assert_eq!(replaced, 3);
        assert_eq!(details["token"], json!(redactor.redact("abc")));
        assert_eq!(details["user"], json!("alice"));
        assert_eq!(
            details["headers"][0]["authorization"],
            json!(redactor.redact("Bearer xyz"))
        );
        assert_eq!(
            details["nested"]["password"],
            json!(redactor.redact("1234"))
        );
        assert_eq!(
            details["nested"]["token"],
            json!(redactor.redact("already"))
        );
        assert!(!details.to_string().contains("xyz"));
    }

    #[test]
    fn keys_do_not_print() {
        let key = RedactionKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert_eq!(
            format!("{:?}", AuditRedactor::new(&key)),
            "AuditRedactor([redacted])"
        );
        assert_eq!(
            RedactionKey::from_bytes(&[0; 31]).err(),
            Some(RedactionKeyError::Length(31))
        );
    }
}
