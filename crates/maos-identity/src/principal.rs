//! Principals: people (`user:`) and the agents and services of a multi-agent system (`agent:`).
//!
//! These are plain serde types the server persists. Requests never carry their own roles; the
//! server looks the principal up and hands its stored attributes and roles to the engine.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest principal name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Agent,
}

impl PrincipalKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
        }
    }
}

/// `user:<name>` or `agent:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId {
    kind: PrincipalKind,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrincipalIdError {
    #[error("principal id `{0}` does not start with `user:` or `agent:`")]
    UnknownKind(String),
    #[error("principal name is empty")]
    Empty,
    #[error("principal name is longer than {MAX_NAME_LEN} bytes")]
    TooLong,
    #[error("principal name `{0}` contains whitespace or control characters")]
    BadCharacter(String),
}

impl PrincipalId {
    pub fn new(kind: PrincipalKind, name: impl Into<String>) -> Result<Self, PrincipalIdError> {
        let name = name.into();
        if name.is_empty() {
            return Err(PrincipalIdError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(PrincipalIdError::TooLong);
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PrincipalIdError::BadCharacter(name));
        }
        Ok(Self { kind, name })
    }

    pub fn user(name: impl Into<String>) -> Result<Self, PrincipalIdError> {
        Self::new(PrincipalKind::User, name)
    }

    pub fn agent(name: impl Into<String>) -> Result<Self, PrincipalIdError> {
        Self::new(PrincipalKind::Agent, name)
    }

    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.name)
    }
}

impl FromStr for PrincipalId {
    type Err = PrincipalIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = s.strip_prefix("user:") {
            Self::user(name)
        } else if let Some(name) = s.strip_prefix("agent:") {
            Self::agent(name)
        } else {
            Err(PrincipalIdError::UnknownKind(s.to_owned()))
        }
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = PrincipalIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<PrincipalId> for String {
    fn from(id: PrincipalId) -> Self {
        id.to_string()
    }
}

/// Whether a principal may authenticate. Disabling is also an automated response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalStatus {
    #[default]
    Active,
    Disabled,
}

/// Attributes policies read. Agents have an owner and a purpose; people a department and a
/// clearance. All optional so that one shape serves both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<String>,
    /// The person or team responsible for an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<PrincipalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// A stored principal with its role bindings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: PrincipalId,
    #[serde(default)]
    pub status: PrincipalStatus,
    #[serde(default)]
    pub attributes: PrincipalAttributes,
    #[serde(default)]
    pub roles: BTreeSet<String>,
}

impl Principal {
    pub fn new(id: PrincipalId) -> Self {
        Self {
            id,
            status: PrincipalStatus::Active,
            attributes: PrincipalAttributes::default(),
            roles: BTreeSet::new(),
        }
    }

    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    pub fn is_active(&self) -> bool {
        self.status == PrincipalStatus::Active
    }

    pub fn disable(&mut self) {
        self.status = PrincipalStatus::Disabled;
    }

    pub fn enable(&mut self) {
        self.status = PrincipalStatus::Active;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id: PrincipalId = "agent:billing/reconciler".parse().unwrap();
        assert_eq!(id.kind(), PrincipalKind::Agent);
        assert_eq!(id.to_string(), "agent:billing/reconciler");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"agent:billing/reconciler\"");
        assert!("service:x".parse::<PrincipalId>().is_err());
        assert!("user:".parse::<PrincipalId>().is_err());
        assert!("user:a b".parse::<PrincipalId>().is_err());
    }

    #[test]
    fn principal_serde_shape() {
        let mut p = Principal::new(PrincipalId::agent("etl-1").unwrap()).with_roles(["reader"]);
        p.attributes.owner = Some(PrincipalId::user("alice").unwrap());
        p.attributes.purpose = Some("nightly export".into());
        let text = serde_json::to_string(&p).unwrap();
        let back: Principal = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert!(text.contains("\"status\":\"active\""));
    }
}
