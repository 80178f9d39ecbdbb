//! The policy bundle: the file format, as written by people and stored by the server.
//!
//! These types mirror the YAML/JSON format field for field. They are checked by
//! [`crate::DecisionPoint::compile`]; holding a `Bundle` says nothing about its validity.

use maos_core::Request;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{LoadError, LoadErrors};
use crate::locate::LineIndex;

/// A whole bundle: roles, bindings, ACLs, ABAC policies and the bundle's own tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub version: u32,
    #[serde(default)]
    pub combining: Combining,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<Acl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<BundleTest>,
}

/// How the results of the applicable rules combine into one decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Combining {
    #[default]
    DenyOverrides,
    PermitOverrides,
    FirstApplicable,
    DenyUnlessPermit,
    PermitUnlessDeny,
}

impl Combining {
    pub fn as_str(self) -> &'static str {
        match self {
            Combining::DenyOverrides => "deny-overrides",
            Combining::PermitOverrides => "permit-overrides",
            Combining::FirstApplicable => "first-applicable",
            Combining::DenyUnlessPermit => "deny-unless-permit",
            Combining::PermitUnlessDeny => "permit-unless-deny",
        }
    }
}

/// A named set of permissions, possibly inheriting other roles' permissions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherits: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
}

/// A grant: the actions on the resources matching `resource`, when all `conditions` hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub resource: String,
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A rule about who may hold a role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Constraint {
    /// Static separation of duty: nobody holds this role and any of `roles`.
    MutuallyExclusive { roles: Vec<String> },
    /// At most `value` subjects are bound to this role directly.
    MaxMembers { value: u64 },
}

/// One comparison of an attribute of the request with a value from the bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub attribute: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
}

/// The comparison a [`Condition`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Lt,
    Gte,
    Lte,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Exists,
    Cidr,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Neq => "neq",
            Operator::Gt => "gt",
            Operator::Lt => "lt",
            Operator::Gte => "gte",
            Operator::Lte => "lte",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Contains => "contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::Matches => "matches",
            Operator::Exists => "exists",
            Operator::Cidr => "cidr",
        }
    }
}

/// A boolean tree of conditions: `all`, `any`, `not`, or a single comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionNode", into = "ConditionNode")]
pub enum ConditionTree {
    All(Vec<ConditionTree>),
    Any(Vec<ConditionTree>),
    Not(Box<ConditionTree>),
    Match(Condition),
}

/// The written form of a [`ConditionTree`] node: exactly one of its shapes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<Vec<ConditionTree>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<Vec<ConditionTree>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not: Option<Box<ConditionTree>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<Operator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

impl TryFrom<ConditionNode> for ConditionTree {
    type Error = String;

    fn try_from(node: ConditionNode) -> Result<Self, Self::Error> {
        let shape_error = || {
            "a condition is exactly one of `all: [...]`, `any: [...]`, `not: {...}` or \
             `{attribute, operator, value}`"
                .to_string()
        };
        match node {
            ConditionNode {
                all: Some(list),
                any: None,
                not: None,
                attribute: None,
                operator: None,
                value: None,
            } => Ok(ConditionTree::All(list)),
            ConditionNode {
                all: None,
                any: Some(list),
                not: None,
                attribute: None,
                operator: None,
                value: None,
            } => Ok(ConditionTree::Any(list)),
            ConditionNode {
                all: None,
                any: None,
                not: Some(inner),
                attribute: None,
                operator: None,
                value: None,
            } => Ok(ConditionTree::Not(inner)),
            ConditionNode {
                all: None,
                any: None,
                not: None,
                attribute: Some(attribute),
                operator: Some(operator),
                value,
            } => Ok(ConditionTree::Match(Condition {
                attribute,
                operator,
                value: value.unwrap_or(Value::Null),
            })),
            ConditionNode {
                attribute: Some(_),
                operator: None,
                ..
            } => Err("a condition with `attribute` needs an `operator`".to_string()),
            _ => Err(shape_error()),
        }
    }
}

impl From<ConditionTree> for ConditionNode {
    fn from(tree: ConditionTree) -> Self {
        let empty = ConditionNode {
            all: None,
            any: None,
            not: None,
            attribute: None,
            operator: None,
            value: None,
        };
        match tree {
            ConditionTree::All(list) => ConditionNode {
                all: Some(list),
                ..empty
            },
            ConditionTree::Any(list) => ConditionNode {
                any: Some(list),
                ..empty
            },
            ConditionTree::Not(inner) => ConditionNode {
                not: Some(inner),
                ..empty
            },
            ConditionTree::Match(c) => ConditionNode {
                attribute: Some(c.attribute),
                operator: Some(c.operator),
                value: if c.value.is_null() {
                    None
                } else {
                    Some(c.value)
                },
                ..empty
            },
        }
    }
}

/// Gives subjects (`type:id`) roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub subject: String,
    pub roles: Vec<String>,
}

/// An access control list attached to the resources matching `resource`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    pub resource: String,
    pub entries: Vec<AclEntry>,
}

/// One line of an ACL: a subject (`type:id` or `role:name`), its actions and the effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    pub subject: String,
    pub actions: Vec<String>,
    #[serde(default)]
    pub effect: Effect,
}

/// What a rule says when it applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    #[default]
    Permit,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Permit => "permit",
            Effect::Deny => "deny",
        }
    }
}

/// An ABAC policy (an XACML rule): target, optional condition, effect and obligations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub effect: Effect,
    #[serde(default, skip_serializing_if = "Target::is_empty")]
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionTree>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<Obligation>,
}

/// Which requests a policy is about. Every selector must match; a missing category matches all.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<Condition>,
}

impl Target {
    pub fn is_empty(&self) -> bool {
        self.subject.is_empty()
            && self.resource.is_empty()
            && self.action.is_empty()
            && self.environment.is_empty()
    }

    /// The selectors with the name of their category and their index in it, in written order.
    pub fn selectors(&self) -> impl Iterator<Item = (&'static str, usize, &Condition)> {
        tagged("subject", &self.subject)
            .chain(tagged("resource", &self.resource))
            .chain(tagged("action", &self.action))
            .chain(tagged("environment", &self.environment))
    }
}

fn tagged<'a>(
    category: &'static str,
    list: &'a [Condition],
) -> impl Iterator<Item = (&'static str, usize, &'a Condition)> {
    list.iter().enumerate().map(move |(i, c)| (category, i, c))
}

/// Something the enforcement point must do along with the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obligation {
    pub id: String,
    pub on: Effect,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

/// A test shipped with the bundle: a request and the expected decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleTest {
    pub name: String,
    pub request: Request,
    pub expect: Expect,
}

/// The decision a [`BundleTest`] expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Allow,
    Deny,
}

impl Expect {
    pub fn as_bool(self) -> bool {
        matches!(self, Expect::Allow)
    }
}

impl Bundle {
    /// Reads a bundle from YAML or JSON text. `origin` names the source in messages.
    ///
    /// This checks the structure only (field names, types, operator and kind names); the
    /// meaning is checked by [`crate::DecisionPoint::compile`].
    pub fn parse(source: &str, origin: &str) -> Result<Bundle, LoadErrors> {
        let body = source.strip_prefix('\u{feff}').unwrap_or(source);
        if let Some(line) = too_deep(body) {
            return Err(LoadErrors::from(LoadError::new(
                origin,
                "",
                Some(line),
                &format!("the document is nested deeper than {MAX_NESTING} levels"),
            )));
        }
        let result = if body.trim_start().starts_with('{') {
            parse_json(body)
        } else {
            parse_yaml(body)
        };
        result.map_err(|(path, line, message)| {
            // A path without a line: look the line up in the source.
            let line = line.or_else(|| {
                if path.is_empty() {
                    None
                } else {
                    LineIndex::new(source).line_of(&path)
                }
            });
            LoadErrors::from(LoadError::new(origin, &path, line, &message))
        })
    }

    /// The canonical JSON form. [`Bundle::parse`] reads it back to an equal bundle.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map has string keys.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// How deeply a bundle document may nest (mappings and sequences, block or flow), as estimated
/// by [`too_deep`]. Well below the parsers' own limit of 128, so that parsing stays within
/// small thread stacks.
pub const MAX_NESTING: usize = 64;

/// The line where the document nests deeper than [`MAX_NESTING`], if it does. A single pass
/// over the bytes that over-estimates: flow brackets outside quotes and comments, plus twice
/// the number of open block indentation levels (a sequence may sit at its key's indentation),
/// plus `- ` markers. Block scalars (`|`, `>`) are skipped.
fn too_deep(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    let mut quote: Option<u8> = None;
    // Inside a block scalar: lines indented more than this belong to it.
    let mut block_scalar: Option<usize> = None;
    let mut line_done = usize::MAX;
    let at = |k: usize| bytes.get(k).copied();

    while i < bytes.len() {
        // A line start outside quotes: indentation, block scalars, block nesting.
        if (i == 0 || at(i - 1) == Some(b'\n')) && quote.is_none() && line_done != i {
            line_done = i;
            let indent = bytes
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| **b == b' ')
                .count();
            let rest = bytes.get(i + indent..).unwrap_or_default();
            let blank = matches!(rest.first(), None | Some(b'\n' | b'\r' | b'#'));
            if let Some(limit) = block_scalar {
                if blank || indent > limit {
                    i += indent;
                    while i < bytes.len() && at(i) != Some(b'\n') {
                        i += 1;
                    }
                    continue;
                }
                block_scalar = None;
            }
            if flow == 0 && !blank {
                while indents.last().is_some_and(|&top| top >= indent) {
                    indents.pop();
                }
                indents.push(indent);
                let dashes = rest.chunks(2).take_while(|c| *c == b"- ").count();
                if 2 * indents.len() + dashes > MAX_NESTING {
                    return Some(line);
                }
                // A block scalar indicator at the end of the line.
                let line_end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
                let end = std::str::from_utf8(rest.get(..line_end).unwrap_or_default())
                    .unwrap_or_default();
                let end = end.split(" #").next().unwrap_or_default().trim_end();
                let indicator =
                    end.trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
                if indicator.ends_with(": |")
                    || indicator.ends_with(": >")
                    || indicator == "|"
                    || indicator == ">"
                    || indicator.ends_with("- |")
                    || indicator.ends_with("- >")
                {
                    block_scalar = Some(indent);
                }
            }
            i += indent;
            continue;
        }

        let Some(b) = at(i) else { break };
        let after_space = i == 0
            || matches!(
                at(i - 1),
                Some(b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b':')
            );
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    if q == b'\'' && at(i + 1) == Some(b'\'') {
                        i += 1;
                    } else {
                        quote = None;
                    }
                }
            }
            None => match b {
                b'"' | b'\'' if after_space => quote = Some(b),
                b'#' if after_space => {
                    while i + 1 < bytes.len() && at(i + 1) != Some(b'\n') {
                        i += 1;
                    }
                }
                b'{' | b'[' => {
                    flow += 1;
                    if flow + 2 * indents.len() > MAX_NESTING {
                        return Some(line);
                    }
                }
                b'}' | b']' => flow = flow.saturating_sub(1),
                _ => {}
            },
        }
        if b == b'\n' {
            line += 1;
        }
        i += 1;
    }
    None
}

type ParseFailure = (String, Option<usize>, String);

fn parse_json(source: &str) -> Result<Bundle, ParseFailure> {
    let mut de = serde_json::Deserializer::from_str(source);
    let bundle: Bundle = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        let inner = e.into_inner();
        let line = if inner.line() == 0 {
            None
        } else {
            Some(inner.line())
        };
        (path, line, strip_location(&inner.to_string()))
    })?;
    de.end().map_err(|e| {
        (
            String::new(),
            Some(e.line()),
            strip_location(&e.to_string()),
        )
    })?;
    Ok(bundle)
}

fn parse_yaml(source: &str) -> Result<Bundle, ParseFailure> {
    let de = yaml_serde::Deserializer::from_str(source);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        let message = strip_location(&inner.to_string());
        // yaml_serde starts its messages with the path it knows, which is reported separately.
        let message = match message.split_once(": ") {
            Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => {
                rest.to_string()
            }
            _ => message,
        };
        (path, line, message)
    })
}

/// serde_path_to_error writes `.` for the root; messages use an empty path there.
fn clean_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

/// Both parsers append "at line N column M"; the line is reported separately.
fn strip_location(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(at) => message.get(..at).unwrap_or(message),
        None => message,
    };
    message.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
version: 1
combining: deny-overrides
roles:
  - name: viewer
    description: read-only access
    permissions:
      - resource: "document:*"
        actions: ["read"]
  - name: editor
    inherits: ["viewer"]
    permissions:
      - resource: "document:**"
        actions: ["write", "delete"]
        conditions:
          - { attribute: subject.properties.department, operator: eq, value: engineering }
    constraints:
      - { kind: mutually_exclusive, roles: ["viewer"] }
      - { kind: max_members, value: 10 }
bindings:
  - subject: "user:alice"
    roles: ["editor"]
acls:
  - resource: "document:design/api"
    entries:
      - { subject: "user:bob", actions: ["read", "comment"] }
      - { subject: "role:contractor", actions: ["*"], effect: deny }
policies:
  - id: deny-secrets-after-hours
    effect: deny
    target:
      subject:     [ { attribute: subject.type, operator: eq, value: agent } ]
      action:      [ { attribute: action.name, operator: in, value: [read, list] } ]
    condition:
      any:
        - { attribute: context.hour, operator: lt, value: 8 }
        - not: { attribute: context.hour, operator: lt, value: 18 }
    obligations:
      - { id: notify-security, on: deny, params: { channel: soc } }
tests:
  - name: alice edits design docs
    request: { subject: { type: user, id: alice, properties: { department: engineering } },
               resource: { type: document, id: design/api }, action: { name: write } }
    expect: allow
"#;

    #[test]
    fn issue_format_parses_and_round_trips_through_json() {
        let bundle = Bundle::parse(SAMPLE, "sample.yaml").unwrap();
        assert_eq!(bundle.roles.len(), 2);
        assert_eq!(bundle.acls[0].entries[0].effect, Effect::Permit);
        assert_eq!(bundle.acls[0].entries[1].effect, Effect::Deny);
        assert_eq!(bundle.policies[0].obligations[0].on, Effect::Deny);
        assert!(
            matches!(bundle.policies[0].condition, Some(ConditionTree::Any(ref v)) if v.len() == 2)
        );
        let json = bundle.to_json();
        let again = Bundle::parse(&json, "sample.json").unwrap();
        assert_eq!(again, bundle);
    }

    #[test]
    fn unknown_fields_are_rejected_with_path_and_line() {
        let source = "version: 1\nroles:\n  - name: a\n    permisions: []\n";
        let errors = Bundle::parse(source, "b.yaml").unwrap_err();
        let e = &errors.errors[0];
        assert_eq!(e.path, "roles[0].permisions");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("permisions"), "{}", e.message);
    }

    #[test]
    fn unknown_operator_is_named() {
        let source = "version: 1\nroles:\n  - name: a\n    permissions:\n      - resource: x\n        \
                      actions: [read]\n        conditions:\n          - { attribute: context.a, operator: like, value: 1 }\n";
        let errors = Bundle::parse(source, "b.yaml").unwrap_err();
        let e = &errors.errors[0];
        assert!(e.message.contains("like"), "{}", e.message);
        assert!(
            e.path.starts_with("roles[0].permissions[0].conditions[0]"),
            "{}",
            e.path
        );
        assert_eq!(e.line, Some(8));
    }

    #[test]
    fn json_errors_carry_lines() {
        let source = "{\n \"version\": 1,\n \"combining\": \"most-specific\"\n}";
        let errors = Bundle::parse(source, "b.json").unwrap_err();
        let e = &errors.errors[0];
        assert_eq!(e.path, "combining");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("most-specific"));
    }

    #[test]
    fn json_lines_count_leading_blank_lines_and_a_bom() {
        let source = "\u{feff}\n\n{\n \"version\": 1,\n \"rolez\": []\n}";
        let errors = Bundle::parse(source, "b.json").unwrap_err();
        assert_eq!(errors.errors[0].line, Some(5), "{errors}");
    }

    #[test]
    fn nesting_estimate() {
        assert_eq!(too_deep(SAMPLE), None);
        assert_eq!(too_deep(&"[".repeat(MAX_NESTING + 1)), Some(1));
        assert_eq!(
            too_deep(&format!("a:\n{}", "[".repeat(MAX_NESTING))),
            Some(2)
        );
        // Brackets in quotes, comments and block scalars do not count.
        let quoted = format!(
            "a: \"{}\"\nb: '{}'\n# {}\n",
            "[".repeat(99),
            "{".repeat(99),
            "[".repeat(99)
        );
        assert_eq!(too_deep(&quoted), None);
        let block = format!("a: |\n  {}\n  more\nb: 1\n", "[".repeat(99));
        assert_eq!(too_deep(&block), None);
        assert_eq!(too_deep("description: bob's [docs\nx: 1\n"), None);
        // Deep block nesting.
        let mut deep = String::new();
        for level in 0..40 {
            deep.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        assert!(too_deep(&deep).is_some());
        // Pretty JSON nests by brackets, not by indentation.
        let json =
            serde_json::to_string_pretty(&serde_json::json!({"a": {"b": {"c": [1, 2]}}})).unwrap();
        assert_eq!(too_deep(&json), None);
    }

    #[test]
    fn condition_node_with_two_shapes_is_rejected() {
        let source = "version: 1\npolicies:\n  - id: p\n    effect: deny\n    condition:\n      \
                      all: []\n      any: []\n";
        let errors = Bundle::parse(source, "b.yaml").unwrap_err();
        assert!(errors.to_string().contains("exactly one of"), "{errors}");
    }
}
