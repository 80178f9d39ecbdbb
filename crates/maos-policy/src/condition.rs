//! Conditions: attribute paths, operators and three-valued evaluation.
//!
//! A condition is true, false, or indeterminate. A missing attribute and a type mismatch
//! (`gt` on a string, `eq` between a string and a number) are indeterminate: they do not
//! compare, and indeterminate never grants.

use std::net::IpAddr;

use maos_core::Request;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::bundle::{Condition, ConditionTree, Operator};

/// The deepest a condition tree may nest (`all`/`any`/`not` levels).
pub const MAX_CONDITION_DEPTH: usize = 32;
/// Size limit of one compiled regular expression, in bytes.
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// The value of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truth {
    True,
    False,
    Indeterminate,
}

impl Truth {
    fn from_bool(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Indeterminate => Truth::Indeterminate,
        }
    }
}

/// One condition as evaluated, for explanations (the seed's `EvaluatedCondition`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluatedCondition {
    /// Where the condition sits: `conditions`, `target.subject`, `condition`...
    pub part: String,
    pub attribute: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub expected: Value,
    /// The request's value; absent when the request has no such attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    pub result: Truth,
}

/// Where in the request an attribute lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum AttributePath {
    SubjectType,
    SubjectId,
    SubjectProperty(Vec<String>),
    ResourceType,
    ResourceId,
    ResourceProperty(Vec<String>),
    ActionName,
    ActionProperty(Vec<String>),
    Context(Vec<String>),
}

const PATH_HELP: &str = "expected subject.type, subject.id, subject.properties.<key>, \
                         resource.type, resource.id, resource.properties.<key>, action.name, \
                         action.properties.<key> or context.<key>";

impl AttributePath {
    pub(crate) fn parse(text: &str) -> Result<AttributePath, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "attribute `{text}` has an empty segment; {PATH_HELP}"
            ));
        }
        let keys = |rest: &[&str]| -> Option<Vec<String>> {
            if rest.is_empty() {
                None
            } else {
                Some(rest.iter().map(|s| s.to_string()).collect())
            }
        };
        let path = match parts.as_slice() {
            ["subject", "type"] => Some(AttributePath::SubjectType),
            ["subject", "id"] => Some(AttributePath::SubjectId),
            ["subject", "properties", rest @ ..] => keys(rest).map(AttributePath::SubjectProperty),
            ["resource", "type"] => Some(AttributePath::ResourceType),
            ["resource", "id"] => Some(AttributePath::ResourceId),
            ["resource", "properties", rest @ ..] => {
                keys(rest).map(AttributePath::ResourceProperty)
            }
            ["action", "name"] => Some(AttributePath::ActionName),
            ["action", "properties", rest @ ..] => keys(rest).map(AttributePath::ActionProperty),
            ["context", rest @ ..] => keys(rest).map(AttributePath::Context),
            _ => None,
        };
        path.ok_or_else(|| format!("unknown attribute `{text}`; {PATH_HELP}"))
    }

    fn resolve<'r>(&self, request: &'r Request) -> Option<Actual<'r>> {
        match self {
            AttributePath::SubjectType => Some(Actual::Str(&request.subject.kind)),
            AttributePath::SubjectId => Some(Actual::Str(&request.subject.id)),
            AttributePath::SubjectProperty(keys) => lookup(&request.subject.properties, keys),
            AttributePath::ResourceType => Some(Actual::Str(&request.resource.kind)),
            AttributePath::ResourceId => Some(Actual::Str(&request.resource.id)),
            AttributePath::ResourceProperty(keys) => lookup(&request.resource.properties, keys),
            AttributePath::ActionName => Some(Actual::Str(&request.action.name)),
            AttributePath::ActionProperty(keys) => lookup(&request.action.properties, keys),
            AttributePath::Context(keys) => lookup(&request.context, keys),
        }
    }
}

fn lookup<'r>(map: &'r Map<String, Value>, keys: &[String]) -> Option<Actual<'r>> {
    let (first, rest) = keys.split_first()?;
    let mut value = map.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    // JSON null counts as absent.
    if value.is_null() {
        None
    } else {
        Some(Actual::Json(value))
    }
}

/// A request value, borrowed.
#[derive(Clone, Copy, Debug)]
enum Actual<'r> {
    Str(&'r str),
    Json(&'r Value),
}

impl Actual<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Actual::Str(s) => Some(s),
            Actual::Json(Value::String(s)) => Some(s),
            Actual::Json(_) => None,
        }
    }

    fn to_value(self) -> Value {
        match self {
            Actual::Str(s) => Value::String(s.to_string()),
            Actual::Json(v) => v.clone(),
        }
    }
}

/// Equality between values of the same JSON type; `None` when the types differ.
fn same_type_eq(actual: Actual<'_>, expected: &Value) -> Option<bool> {
    match (actual, expected) {
        (Actual::Str(a), Value::String(b)) => Some(a == b),
        (Actual::Str(_), _) => None,
        (Actual::Json(Value::String(a)), Value::String(b)) => Some(a == b),
        (Actual::Json(Value::Number(a)), Value::Number(b)) => Some(number_eq(a, b)),
        (Actual::Json(Value::Bool(a)), Value::Bool(b)) => Some(a == b),
        (Actual::Json(Value::Array(a)), Value::Array(b)) => Some(a == b),
        (Actual::Json(Value::Object(a)), Value::Object(b)) => Some(a == b),
        (Actual::Json(_), _) => None,
    }
}

fn number_eq(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), ..) => x == y,
        (.., Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// An IP network; IPv4-mapped IPv6 networks are kept as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Network {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Network {
    pub(crate) fn parse(text: &str) -> Result<Network, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => {
                let p: u8 = p
                    .parse()
                    .map_err(|_| format!("invalid CIDR `{text}`: bad prefix"))?;
                (a, Some(p))
            }
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR `{text}`: bad address"))?;
        let v4_mask = |p: u8| {
            if p == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(p))
            }
        };
        let v6_mask = |p: u8| {
            if p == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(p))
            }
        };
        match addr {
            IpAddr::V4(a) => {
                let p = prefix.unwrap_or(32);
                if p > 32 {
                    return Err(format!("invalid CIDR `{text}`: prefix longer than 32"));
                }
                let mask = v4_mask(p);
                Ok(Network::V4 {
                    net: u32::from(a) & mask,
                    mask,
                })
            }
            IpAddr::V6(a) => {
                let p = prefix.unwrap_or(128);
                if p > 128 {
                    return Err(format!("invalid CIDR `{text}`: prefix longer than 128"));
                }
                if let (Some(v4), true) = (a.to_ipv4_mapped(), p >= 96) {
                    let mask = v4_mask(p - 96);
                    return Ok(Network::V4 {
                        net: u32::from(v4) & mask,
                        mask,
                    });
                }
                let mask = v6_mask(p);
                Ok(Network::V6 {
                    net: u128::from(a) & mask,
                    mask,
                })
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self, ip) {
            (Network::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Network::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

/// The compiled test of a condition.
#[derive(Clone, Debug)]
enum Test {
    Eq(Value),
    Neq(Value),
    Gt(f64),
    Lt(f64),
    Gte(f64),
    Lte(f64),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Contains(Value),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    Exists(bool),
    Cidr(Vec<Network>),
}

/// A condition ready to evaluate.
#[derive(Clone, Debug)]
pub(crate) struct CompiledCondition {
    pub(crate) source: Condition,
    pub(crate) path: AttributePath,
    test: Test,
}

impl CompiledCondition {
    pub(crate) fn compile(condition: &Condition) -> Result<CompiledCondition, String> {
        let path = AttributePath::parse(&condition.attribute)?;
        let value = &condition.value;
        let op = condition.operator.as_str();
        let wants = |what: &str| format!("operator `{op}` needs {what} as `value`, got {value}");
        let number = || value.as_f64().ok_or_else(|| wants("a number"));
        let string = || {
            value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| wants("a string"))
        };
        let list = || match value {
            Value::Array(items) if !items.is_empty() => Ok(items.clone()),
            _ => Err(wants("a non-empty list")),
        };

        let test = match condition.operator {
            Operator::Eq | Operator::Neq if value.is_null() => return Err(wants("a value")),
            Operator::Eq => Test::Eq(value.clone()),
            Operator::Neq => Test::Neq(value.clone()),
            Operator::Gt => Test::Gt(number()?),
            Operator::Lt => Test::Lt(number()?),
            Operator::Gte => Test::Gte(number()?),
            Operator::Lte => Test::Lte(number()?),
            Operator::In => Test::In(list()?),
            Operator::NotIn => Test::NotIn(list()?),
            Operator::Contains => match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    Test::Contains(value.clone())
                }
                _ => return Err(wants("a string, number or boolean")),
            },
            Operator::StartsWith => Test::StartsWith(string()?),
            Operator::EndsWith => Test::EndsWith(string()?),
            Operator::Matches => {
                let source = string()?;
                let regex = RegexBuilder::new(&source)
                    .size_limit(MAX_REGEX_SIZE)
                    .dfa_size_limit(MAX_REGEX_SIZE)
                    .build()
                    .map_err(|e| {
                        let detail = e.to_string().replace('\n', " ");
                        format!("invalid regex `{source}`: {detail}")
                    })?;
                Test::Matches(regex)
            }
            Operator::Exists => match value {
                Value::Null => Test::Exists(true),
                Value::Bool(b) => Test::Exists(*b),
                _ => return Err(wants("`true`, `false` or nothing")),
            },
            Operator::Cidr => {
                let texts: Vec<&str> = match value {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(|v| v.as_str().ok_or_else(|| wants("a CIDR or a list of CIDRs")))
                        .collect::<Result<_, _>>()?,
                    _ => return Err(wants("a CIDR or a list of CIDRs")),
                };
                Test::Cidr(
                    texts
                        .into_iter()
                        .map(Network::parse)
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        Ok(CompiledCondition {
            source: condition.clone(),
            path,
            test,
        })
    }

    /// Evaluates the condition against a request.
    pub(crate) fn eval(&self, request: &Request) -> Truth {
        let actual = self.path.resolve(request);
        self.test(actual)
    }

    /// Evaluates and records the evaluation.
    pub(crate) fn eval_traced(
        &self,
        request: &Request,
        part: &str,
        trace: &mut Vec<EvaluatedCondition>,
    ) -> Truth {
        let actual = self.path.resolve(request);
        let result = self.test(actual);
        trace.push(EvaluatedCondition {
            part: part.to_string(),
            attribute: self.source.attribute.clone(),
            operator: self.source.operator,
            expected: self.source.value.clone(),
            actual: actual.map(Actual::to_value),
            result,
        });
        result
    }

    fn test(&self, actual: Option<Actual<'_>>) -> Truth {
        let Some(actual) = actual else {
            return match self.test {
                Test::Exists(want) => Truth::from_bool(!want),
                _ => Truth::Indeterminate,
            };
        };
        let compare = |f: &dyn Fn(f64) -> bool| match actual {
            Actual::Json(Value::Number(n)) => n
                .as_f64()
                .map_or(Truth::Indeterminate, |x| Truth::from_bool(f(x))),
            _ => Truth::Indeterminate,
        };
        let string_test = |f: &dyn Fn(&str) -> bool| match actual.as_str() {
            Some(s) => Truth::from_bool(f(s)),
            None => Truth::Indeterminate,
        };

        match &self.test {
            Test::Eq(v) => same_type_eq(actual, v).map_or(Truth::Indeterminate, Truth::from_bool),
            Test::Neq(v) => {
                same_type_eq(actual, v).map_or(Truth::Indeterminate, |eq| Truth::from_bool(!eq))
            }
            Test::Gt(bound) => compare(&|x| x > *bound),
            Test::Lt(bound) => compare(&|x| x < *bound),
            Test::Gte(bound) => compare(&|x| x >= *bound),
            Test::Lte(bound) => compare(&|x| x <= *bound),
            Test::In(list) => member(actual, list),
            Test::NotIn(list) => member(actual, list).not(),
            Test::Contains(needle) => match (actual, needle) {
                (Actual::Json(Value::Array(items)), _) => Truth::from_bool(
                    items
                        .iter()
                        .any(|item| same_type_eq(Actual::Json(item), needle) == Some(true)),
                ),
                (_, Value::String(n)) => string_test(&|s| s.contains(n.as_str())),
                _ => Truth::Indeterminate,
            },
            Test::StartsWith(prefix) => string_test(&|s| s.starts_with(prefix.as_str())),
            Test::EndsWith(suffix) => string_test(&|s| s.ends_with(suffix.as_str())),
            Test::Matches(regex) => string_test(&|s| regex.is_match(s)),
            Test::Exists(want) => Truth::from_bool(*want),
            Test::Cidr(networks) => match actual.as_str().map(str::parse::<IpAddr>) {
                Some(Ok(ip)) => Truth::from_bool(networks.iter().any(|n| n.contains(ip))),
                _ => Truth::Indeterminate,
            },
        }
    }

    /// For the policy index: the string values this condition requires (`eq` a string, or `in`
    /// a list of strings). A request whose attribute is a string outside them makes the
    /// condition false.
    pub(crate) fn required_strings(&self) -> Option<Vec<&str>> {
        match &self.test {
            Test::Eq(Value::String(s)) => Some(vec![s.as_str()]),
            Test::In(list) => list.iter().map(Value::as_str).collect(),
            _ => None,
        }
    }
}

impl AttributePath {
    /// The attribute's value when it is a string; `Err(())` when it is missing or another type.
    pub(crate) fn resolve_str<'r>(&self, request: &'r Request) -> Result<&'r str, ()> {
        match self.resolve(request) {
            Some(Actual::Str(s)) => Ok(s),
            Some(Actual::Json(Value::String(s))) => Ok(s),
            _ => Err(()),
        }
    }
}

fn member(actual: Actual<'_>, list: &[Value]) -> Truth {
    let mut comparable = false;
    for item in list {
        match same_type_eq(actual, item) {
            Some(true) => return Truth::True,
            Some(false) => comparable = true,
            None => {}
        }
    }
    if comparable {
        Truth::False
    } else {
        Truth::Indeterminate
    }
}

/// Evaluates a list of conditions that must all hold.
pub(crate) fn eval_all(
    conditions: &[CompiledCondition],
    request: &Request,
    mut trace: Option<(&str, &mut Vec<EvaluatedCondition>)>,
) -> Truth {
    let mut result = Truth::True;
    for condition in conditions {
        let truth = match trace.as_mut() {
            Some((part, sink)) => condition.eval_traced(request, part, sink),
            None => condition.eval(request),
        };
        match truth {
            Truth::False => return Truth::False,
            Truth::Indeterminate => result = Truth::Indeterminate,
            Truth::True => {}
        }
    }
    result
}

/// A compiled condition tree.
#[derive(Clone, Debug)]
pub(crate) enum CompiledTree {
    All(Vec<CompiledTree>),
    Any(Vec<CompiledTree>),
    Not(Box<CompiledTree>),
    Leaf(CompiledCondition),
}

impl CompiledTree {
    /// Compiles a tree; errors carry the path below `path`.
    pub(crate) fn compile(
        tree: &ConditionTree,
        path: &str,
        depth: usize,
        errors: &mut Vec<(String, String)>,
    ) -> Option<CompiledTree> {
        if depth > MAX_CONDITION_DEPTH {
            errors.push((
                path.to_string(),
                format!("condition nested deeper than {MAX_CONDITION_DEPTH} levels"),
            ));
            return None;
        }
        let list = |items: &[ConditionTree], key: &str, errors: &mut Vec<(String, String)>| {
            let compiled: Vec<Option<CompiledTree>> = items
                .iter()
                .enumerate()
                .map(|(i, t)| Self::compile(t, &format!("{path}.{key}[{i}]"), depth + 1, errors))
                .collect();
            compiled.into_iter().collect::<Option<Vec<_>>>()
        };
        match tree {
            ConditionTree::All(items) => list(items, "all", errors).map(CompiledTree::All),
            ConditionTree::Any(items) => list(items, "any", errors).map(CompiledTree::Any),
            ConditionTree::Not(inner) => {
                Self::compile(inner, &format!("{path}.not"), depth + 1, errors)
                    .map(|t| CompiledTree::Not(Box::new(t)))
            }
            ConditionTree::Match(c) => match CompiledCondition::compile(c) {
                Ok(c) => Some(CompiledTree::Leaf(c)),
                Err(message) => {
                    errors.push((path.to_string(), message));
                    None
                }
            },
        }
    }

    pub(crate) fn eval(
        &self,
        request: &Request,
        trace: &mut Option<&mut Vec<EvaluatedCondition>>,
    ) -> Truth {
        match self {
            CompiledTree::Leaf(c) => match trace.as_deref_mut() {
                Some(sink) => c.eval_traced(request, "condition", sink),
                None => c.eval(request),
            },
            CompiledTree::Not(inner) => inner.eval(request, trace).not(),
            CompiledTree::All(items) => {
                let mut result = Truth::True;
                for item in items {
                    match item.eval(request, trace) {
                        Truth::False => return Truth::False,
                        Truth::Indeterminate => result = Truth::Indeterminate,
                        Truth::True => {}
                    }
                }
                result
            }
            CompiledTree::Any(items) => {
                let mut result = Truth::False;
                for item in items {
                    match item.eval(request, trace) {
                        Truth::True => return Truth::True,
                        Truth::Indeterminate => result = Truth::Indeterminate,
                        Truth::False => {}
                    }
                }
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> Request {
        serde_json::from_value(json!({
            "subject": {"type": "user", "id": "alice",
                        "properties": {"department": "engineering", "level": 5,
                                       "groups": ["ops", "dev"], "manager": null,
                                       "address": {"city": "Oslo"}}},
            "resource": {"type": "document", "id": "design/api",
                         "properties": {"version": "v1.2"}},
            "action": {"name": "read"},
            "context": {"hour": 9, "ip": "10.1.2.3", "mapped": "::ffff:192.168.1.9",
                        "v6": "2001:db8::1", "flag": true}
        }))
        .unwrap()
    }

    fn eval(attribute: &str, operator: Operator, value: Value) -> Truth {
        let c = Condition {
            attribute: attribute.into(),
            operator,
            value,
        };
        CompiledCondition::compile(&c).unwrap().eval(&request())
    }

    fn compile_err(attribute: &str, operator: Operator, value: Value) -> String {
        let c = Condition {
            attribute: attribute.into(),
            operator,
            value,
        };
        CompiledCondition::compile(&c).unwrap_err()
    }

    use Operator::*;
    use Truth::{False as F, Indeterminate as I, True as T};

    #[test]
    fn equality_compares_same_types_only() {
        assert_eq!(
            eval("subject.properties.department", Eq, json!("engineering")),
            T
        );
        assert_eq!(
            eval("subject.properties.department", Neq, json!("engineering")),
            F
        );
        assert_eq!(eval("subject.properties.level", Eq, json!(5.0)), T);
        assert_eq!(eval("subject.properties.level", Eq, json!("5")), I);
        assert_eq!(eval("subject.properties.level", Neq, json!("5")), I);
        assert_eq!(eval("subject.type", Eq, json!("user")), T);
        assert_eq!(eval("context.flag", Eq, json!(true)), T);
    }

    #[test]
    fn literal_dots_in_values_are_literal() {
        assert_eq!(eval("resource.properties.version", Eq, json!("v1.2")), T);
        assert_eq!(eval("resource.properties.version", Eq, json!("v1x2")), F);
        assert_eq!(eval("resource.id", Eq, json!("design/api")), T);
    }

    #[test]
    fn ordering_needs_numbers() {
        assert_eq!(eval("context.hour", Gt, json!(8)), T);
        assert_eq!(eval("context.hour", Lt, json!(8)), F);
        assert_eq!(eval("context.hour", Gte, json!(9)), T);
        assert_eq!(eval("context.hour", Lte, json!(8.5)), F);
        assert_eq!(eval("subject.properties.department", Gt, json!(1)), I);
        assert!(compile_err("context.hour", Gt, json!("8")).contains("needs a number"));
    }

    #[test]
    fn missing_attribute_is_indeterminate() {
        assert_eq!(eval("context.missing", Eq, json!(1)), I);
        assert_eq!(eval("subject.properties.manager", Eq, json!("x")), I);
        assert_eq!(eval("context.missing", NotIn, json!([1])), I);
        assert_eq!(eval("context.missing", Exists, Value::Null), F);
        assert_eq!(eval("context.missing", Exists, json!(false)), T);
        assert_eq!(eval("context.hour", Exists, Value::Null), T);
    }

    #[test]
    fn membership_and_strings() {
        assert_eq!(eval("action.name", In, json!(["read", "list"])), T);
        assert_eq!(eval("action.name", In, json!(["write"])), F);
        assert_eq!(eval("action.name", In, json!([1, 2])), I);
        assert_eq!(eval("action.name", NotIn, json!(["write"])), T);
        assert_eq!(eval("subject.properties.groups", Contains, json!("ops")), T);
        assert_eq!(eval("subject.properties.groups", Contains, json!("hr")), F);
        assert_eq!(eval("resource.id", Contains, json!("/")), T);
        assert_eq!(eval("context.hour", Contains, json!("9")), I);
        assert_eq!(eval("resource.id", StartsWith, json!("design/")), T);
        assert_eq!(eval("resource.id", EndsWith, json!("/api")), T);
        assert_eq!(
            eval("subject.properties.address.city", Eq, json!("Oslo")),
            T
        );
        assert!(compile_err("action.name", In, json!([])).contains("non-empty list"));
    }

    #[test]
    fn regex_is_checked_at_load_and_linear_at_run() {
        assert_eq!(eval("resource.id", Matches, json!("^design/[a-z]+$")), T);
        assert_eq!(eval("resource.id", Matches, json!("^x")), F);
        assert_eq!(eval("context.hour", Matches, json!("9")), I);
        assert!(compile_err("resource.id", Matches, json!("(unclosed")).contains("invalid regex"));
        let huge = "(a|b|c|d|e)*".repeat(1000).repeat(20);
        assert!(compile_err("resource.id", Matches, json!(huge)).contains("invalid regex"));
    }

    #[test]
    fn cidr_counts_mapped_addresses_as_ipv4() {
        assert_eq!(eval("context.ip", Cidr, json!("10.0.0.0/8")), T);
        assert_eq!(eval("context.ip", Cidr, json!("10.1.2.3")), T);
        assert_eq!(
            eval("context.ip", Cidr, json!(["192.168.0.0/16", "11.0.0.0/8"])),
            F
        );
        assert_eq!(eval("context.mapped", Cidr, json!("192.168.0.0/16")), T);
        assert_eq!(eval("context.ip", Cidr, json!("::ffff:10.0.0.0/104")), T);
        assert_eq!(eval("context.v6", Cidr, json!("2001:db8::/32")), T);
        assert_eq!(eval("context.v6", Cidr, json!("10.0.0.0/8")), F);
        assert_eq!(eval("context.hour", Cidr, json!("10.0.0.0/8")), I);
        assert_eq!(eval("resource.id", Cidr, json!("0.0.0.0/0")), I);
        assert!(compile_err("context.ip", Cidr, json!("10.0.0.0/33")).contains("invalid CIDR"));
        assert!(compile_err("context.ip", Cidr, json!("10.0.0/8")).contains("invalid CIDR"));
    }

    #[test]
    fn attribute_paths_are_checked() {
        for bad in [
            "subject.name",
            "subject.properties",
            "context",
            "env.x",
            "a..b",
            "",
        ] {
            assert!(AttributePath::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            AttributePath::parse("context.geo.country").unwrap(),
            AttributePath::Context(vec!["geo".into(), "country".into()])
        );
    }

    #[test]
    fn deep_trees_are_refused() {
        let mut tree = ConditionTree::Match(Condition {
            attribute: "context.a".into(),
            operator: Eq,
            value: json!(1),
        });
        for _ in 0..(MAX_CONDITION_DEPTH + 1) {
            tree = ConditionTree::Not(Box::new(tree));
        }
        let mut errors = Vec::new();
        assert!(CompiledTree::compile(&tree, "policies[0].condition", 0, &mut errors).is_none());
        assert!(errors[0].1.contains("deeper than"));
    }

    #[test]
    fn three_valued_logic() {
        let leaf = |attribute: &str, value: Value| {
            ConditionTree::Match(Condition {
                attribute: attribute.into(),
                operator: Eq,
                value,
            })
        };
        let t = leaf("context.hour", json!(9));
        let f = leaf("context.hour", json!(10));
        let i = leaf("context.missing", json!(1));
        let run = |tree: ConditionTree| {
            let mut errors = Vec::new();
            CompiledTree::compile(&tree, "", 0, &mut errors)
                .unwrap()
                .eval(&request(), &mut None)
        };
        assert_eq!(run(ConditionTree::All(vec![t.clone(), i.clone()])), I);
        assert_eq!(run(ConditionTree::All(vec![i.clone(), f.clone()])), F);
        assert_eq!(run(ConditionTree::Any(vec![i.clone(), t.clone()])), T);
        assert_eq!(run(ConditionTree::Any(vec![i.clone(), f.clone()])), I);
        assert_eq!(run(ConditionTree::Not(Box::new(i))), I);
        assert_eq!(run(ConditionTree::Not(Box::new(f))), T);
        assert_eq!(run(ConditionTree::All(vec![])), T);
        assert_eq!(run(ConditionTree::Any(vec![])), F);
    }
}
