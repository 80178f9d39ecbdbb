//! Input validation: body size, content type and a JSON Schema per route.

use serde_json::Value;

/// Why a request body was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// 413: declared or streamed body larger than the limit.
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// 415: content type not accepted by the route.
    #[error("content type `{0}` is not accepted here")]
    UnsupportedType(String),
    /// 400: body is not JSON.
    #[error("request body is not JSON: {0}")]
    NotJson(String),
    /// 400: body violates the route's schema.
    #[error("request body violates the schema at `{path}`: {message}")]
    Schema { path: String, message: String },
}

impl Invalid {
    pub fn status(&self) -> u16 {
        match self {
            Invalid::TooLarge { .. } => 413,
            Invalid::UnsupportedType(_) => 415,
            Invalid::NotJson(_) | Invalid::Schema { .. } => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Invalid::TooLarge { .. } => "payload_too_large",
            Invalid::UnsupportedType(_) => "unsupported_media_type",
            Invalid::NotJson(_) => "invalid_json",
            Invalid::Schema { .. } => "schema_violation",
        }
    }
}

/// The media type of a `Content-Type` value, lowercase, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A route's accepted media types (`type/subtype`, `type/*` or `*/*`). A request without a
/// body needs no content type; one with a body must name an accepted type.
pub fn check_content_type(
    accepted: &[String],
    content_type: Option<&str>,
    has_body: bool,
) -> Result<(), Invalid> {
    if accepted.is_empty() || !has_body {
        return Ok(());
    }
    let Some(given) = content_type.map(media_type) else {
        return Err(Invalid::UnsupportedType(String::new()));
    };
    let ok = accepted.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        pattern == "*/*"
            || pattern == given
            || pattern
                .strip_suffix("/*")
                .is_some_and(|kind| given.split('/').next() == Some(kind))
    });
    if ok {
        Ok(())
    } else {
        Err(Invalid::UnsupportedType(given))
    }
}

/// A declared `Content-Length` over the limit is refused before the body is read.
pub fn check_declared_length(limit: u64, declared: Option<u64>) -> Result<(), Invalid> {
    match declared {
        Some(len) if len > limit => Err(Invalid::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// Counts streamed body bytes (chunked bodies have no declared length).
#[derive(Debug)]
pub struct BodyBudget {
    limit: u64,
    seen: u64,
}

impl BodyBudget {
    pub fn new(limit: u64) -> Self {
        Self { limit, seen: 0 }
    }

    pub fn take(&mut self, chunk: usize) -> Result<(), Invalid> {
        self.seen = self
            .seen
            .saturating_add(u64::try_from(chunk).unwrap_or(u64::MAX));
        if self.seen > self.limit {
            Err(Invalid::TooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }
}

/// A compiled JSON Schema. Remote references are never fetched: a schema that needs one does
/// not compile.
#[derive(Debug)]
pub struct Schema {
    validator: jsonschema::Validator,
}

impl Schema {
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(|validator| Self { validator })
            .map_err(|e| format!("invalid JSON Schema: {e}"))
    }

    pub fn check(&self, body: &[u8]) -> Result<Value, Invalid> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| Invalid::NotJson(e.to_string()))?;
        if let Some(error) = self.validator.iter_errors(&value).next() {
            return Err(Invalid::Schema {
                path: error.instance_path().to_string(),
                message: error.to_string(),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_match_by_media_type() {
        let accepted = vec!["application/json".to_owned(), "text/*".to_owned()];
        assert!(
            check_content_type(&accepted, Some("application/json; charset=utf-8"), true).is_ok()
        );
        assert!(check_content_type(&accepted, Some("TEXT/plain"), true).is_ok());
        assert_eq!(
            check_content_type(&accepted, Some("application/xml"), true),
            Err(Invalid::UnsupportedType("application/xml".into()))
        );
        assert!(check_content_type(&accepted, None, true).is_err());
        assert!(check_content_type(&accepted, None, false).is_ok());
        assert!(check_content_type(&[], Some("x/y"), true).is_ok());
    }

    #[test]
    fn streamed_bodies_are_counted() {
        let mut budget = BodyBudget::new(10);
        assert!(budget.take(6).is_ok());
        assert!(budget.take(4).is_ok());
        assert_eq!(budget.take(1), Err(Invalid::TooLarge { limit: 10 }));
        assert!(check_declared_length(10, Some(11)).is_err());
        assert!(check_declared_length(10, Some(10)).is_ok());
    }

    #[test]
    fn schema_violations_are_reported_with_their_place() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "properties": {"amount": {"type": "integer", "minimum": 1}},
            "required": ["amount"],
            "additionalProperties": false
        }))
        .unwrap();
        assert!(schema.check(br#"{"amount": 5}"#).is_ok());
        let Err(Invalid::Schema { path, .. }) = schema.check(br#"{"amount": 0}"#) else {
            panic!("accepted");
        };
        assert_eq!(path, "/amount");
        assert!(matches!(schema.check(b"{"), Err(Invalid::NotJson(_))));
        assert!(schema.check(br#"{"amount": 1, "x": 2}"#).is_err());
    }

    #[test]
    fn remote_references_are_not_fetched() {
        let schema = json!({"$ref": "https://example.invalid/schema.json"});
        assert!(Schema::compile(&schema).is_err());
    }
}
