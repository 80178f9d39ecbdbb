//! The authorization request, in the OpenID AuthZEN 1.0 shape.
//!
//! `{subject: {type, id, properties?}, resource: {type, id, properties?},
//!   action: {name, properties?}, context?}`

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who asks: a person (`user`), an agent (`agent`), a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// What is asked for, named `type:id` by policies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// What the subject wants to do to the resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub name: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// One authorization question.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub subject: Subject,
    pub resource: Resource,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
}

impl Subject {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            properties: Map::new(),
        }
    }

    /// The `type:id` form that bindings and ACL entries name.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

impl Resource {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            properties: Map::new(),
        }
    }

    /// The `type:id` form that resource patterns match.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

impl Action {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            properties: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authzen_shape_round_trips() {
        let json = r#"{"subject":{"type":"user","id":"alice","properties":{"department":"eng"}},
            "resource":{"type":"document","id":"design/api"},"action":{"name":"read"},
            "context":{"hour":9}}"#;
        let request: Request = serde_json::from_str(json).unwrap();
        assert_eq!(request.subject.qualified(), "user:alice");
        assert_eq!(request.resource.qualified(), "document:design/api");
        assert_eq!(request.context["hour"], 9);
        let back: Request =
            serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = r#"{"subject":{"type":"user","id":"a","roles":["admin"]},
            "resource":{"type":"d","id":"x"},"action":{"name":"read"}}"#;
        assert!(serde_json::from_str::<Request>(json).is_err());
    }
}
