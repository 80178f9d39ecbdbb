//! One audit record, its canonical bytes and its hash.

use std::fmt;
use std::io::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::time::Timestamp;

/// Version tag that opens the canonical bytes of every record. A new layout gets a new tag, so
/// bytes of one layout can never be read as another.
const RECORD_TAG: &[u8] = b"maos.audit.record.v1";

/// How deep `details` may nest. Deeper values are refused when a record is sealed, which keeps
/// the canonical encoder's recursion bounded (the JSON parser stops at 128 anyway).
pub const MAX_DETAILS_DEPTH: usize = 64;

/// Who did it: a principal named `type:id`, or the system itself (background jobs, automated
/// responses, start-up).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    System,
    Principal { kind: String, id: String },
}

/// An actor text that is neither `system` nor `type:id` with a non-empty `[a-z0-9_-]` type and a
/// non-empty id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("actor `{0}` is neither `system` nor `type:id`")]
pub struct ActorParseError(String);

impl Actor {
    /// A principal actor; fails on the same inputs as parsing `kind:id`.
    pub fn principal(kind: &str, id: &str) -> Result<Self, ActorParseError> {
        Self::parse(&format!("{kind}:{id}"))
    }

    pub fn parse(text: &str) -> Result<Self, ActorParseError> {
        if text == "system" {
            return Ok(Actor::System);
        }
        let error = || ActorParseError(text.chars().take(200).collect());
        let (kind, id) = text.split_once(':').ok_or_else(error)?;
        let kind_ok = !kind.is_empty()
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !kind_ok || id.is_empty() || id.chars().any(char::is_control) {
            return Err(error());
        }
        Ok(Actor::Principal {
            kind: kind.to_owned(),
            id: id.to_owned(),
        })
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Principal { kind, id } => write!(f, "{kind}:{id}"),
        }
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actor({self})")
    }
}

impl std::str::FromStr for Actor {
    type Err = ActorParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// What was done, as a dotted name: at least two segments of `[a-z0-9_-]`, such as
/// `policy.activate`, `authz.decide`, `key.encrypt` or `auth.login`; at most 128 bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionName(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("action `{0}` is not a dotted name such as `auth.login` (segments of a-z, 0-9, `_`, `-`)")]
pub struct ActionParseError(String);

impl ActionName {
    pub fn parse(text: &str) -> Result<Self, ActionParseError> {
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        if text.len() > 128 || !text.contains('.') || !text.split('.').all(segment_ok) {
            return Err(ActionParseError(text.chars().take(200).collect()));
        }
        Ok(ActionName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionName({})", self.0)
    }
}

impl std::str::FromStr for ActionName {
    type Err = ActionParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

macro_rules! text_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$type>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_serde!(Actor);
text_serde!(ActionName);

/// How the operation ended. A refusal by policy is `Denied`; an operation that was allowed but
/// did not complete is `Failure`.
///
/// Written as `{"status":"success"}`, `{"status":"failure","reason":"..."}` or
/// `{"status":"denied","reason":"..."}`; any other member is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OutcomeForm", into = "OutcomeForm")]
pub enum Outcome {
    Success,
    Failure { reason: String },
    Denied { reason: String },
}

/// The status part of an [`Outcome`], for filtering and for an indexed column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Success,
    Failure,
    Denied,
}

/// The JSON form of [`Outcome`]; a flat struct so that unknown members are refused for every
/// status.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeForm {
    status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl TryFrom<OutcomeForm> for Outcome {
    type Error = &'static str;

    fn try_from(form: OutcomeForm) -> Result<Self, Self::Error> {
        match (form.status, form.reason) {
            (OutcomeStatus::Success, None) => Ok(Outcome::Success),
            (OutcomeStatus::Failure, Some(reason)) => Ok(Outcome::Failure { reason }),
            (OutcomeStatus::Denied, Some(reason)) => Ok(Outcome::Denied { reason }),
            (OutcomeStatus::Success, Some(_)) => Err("a `success` result has no reason"),
            (_, None) => Err("a `failure` or `denied` result needs a reason"),
        }
    }
}

impl From<Outcome> for OutcomeForm {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => OutcomeForm {
                status: OutcomeStatus::Success,
                reason: None,
            },
            Outcome::Failure { reason } => OutcomeForm {
                status: OutcomeStatus::Failure,
                reason: Some(reason),
            },
            Outcome::Denied { reason } => OutcomeForm {
                status: OutcomeStatus::Denied,
                reason: Some(reason),
            },
        }
    }
}

impl Outcome {
    pub fn failure(reason: impl Into<String>) -> Self {
        Outcome::Failure {
            reason: reason.into(),
        }
    }

    pub fn denied(reason: impl Into<String>) -> Self {
        Outcome::Denied {
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> OutcomeStatus {
        match self {
            Outcome::Success => OutcomeStatus::Success,
            Outcome::Failure { .. } => OutcomeStatus::Failure,
            Outcome::Denied { .. } => OutcomeStatus::Denied,
        }
    }

    /// The reason of a failure or denial.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Success => None,
            Outcome::Failure { reason } | Outcome::Denied { reason } => Some(reason),
        }
    }
}

/// A record before it joins the chain: everything but its sequence number and hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordDraft {
    pub time: Timestamp,
    pub actor: Actor,
    pub action: ActionName,
    /// The resource acted on, usually `type:id`; empty when there is none.
    pub resource: String,
    pub result: Outcome,
    pub request_id: Option<String>,
    /// Further facts as a JSON object. Secrets and tokens go in only through
    /// [`AuditRedactor`](crate::AuditRedactor).
    pub details: Map<String, Value>,
}

impl RecordDraft {
    pub fn new(
        time: Timestamp,
        actor: Actor,
        action: ActionName,
        resource: impl Into<String>,
        result: Outcome,
    ) -> Self {
        RecordDraft {
            time,
            actor,
            action,
            resource: resource.into(),
            result,
            request_id: None,
            details: Map::new(),
        }
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// One entry of the audit chain, as stored and exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 0 (the genesis record) without gaps.
    pub seq: u64,
    pub time: Timestamp,
    pub actor: Actor,
    pub action: ActionName,
    pub resource: String,
    pub result: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub details: Map<String, Value>,
    /// `hash` of the record with `seq - 1`; all zeros for the genesis record.
    pub prev_hash: Digest,
    /// SHA-256 of this record's canonical bytes.
    pub hash: Digest,
}

/// `details` nests deeper than [`MAX_DETAILS_DEPTH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record details nest deeper than {MAX_DETAILS_DEPTH} levels")]
pub struct DetailsTooDeep;

impl AuditRecord {
    /// Seals `draft` as the record that follows `head`. The caller advances its head to
    /// [`ChainHead::after`]; [`AuditChain`](crate::AuditChain) does that and the checkpoints.
    pub fn seal(head: &ChainHead, draft: RecordDraft) -> Result<AuditRecord, DetailsTooDeep> {
        let mut record = AuditRecord {
            seq: head.next_seq,
            time: draft.time,
            actor: draft.actor,
            action: draft.action,
            resource: draft.resource,
            result: draft.result,
            request_id: draft.request_id,
            details: draft.details,
            prev_hash: head.last_hash,
            hash: Digest::ZERO,
        };
        record.hash = record.compute_hash()?;
        Ok(record)
    }

    /// The bytes the hash covers: every field but `hash`, in the order and encoding described in
    /// docs/audit.md.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, DetailsTooDeep> {
        let mut out = Vec::with_capacity(256);
        put_bytes(&mut out, RECORD_TAG);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time.unix_millis().to_be_bytes());
        match &self.actor {
            Actor::System => put_bytes(&mut out, b"system"),
            Actor::Principal { kind, id } => {
                let length = kind.len() + 1 + id.len();
                out.extend_from_slice(&(length as u64).to_be_bytes());
                out.extend_from_slice(kind.as_bytes());
                out.push(b':');
                out.extend_from_slice(id.as_bytes());
            }
        }
        put_bytes(&mut out, self.action.as_str().as_bytes());
        put_bytes(&mut out, self.resource.as_bytes());
        match &self.result {
            Outcome::Success => out.push(0),
            Outcome::Failure { reason } => {
                out.push(1);
                put_bytes(&mut out, reason.as_bytes());
            }
            Outcome::Denied { reason } => {
                out.push(2);
                put_bytes(&mut out, reason.as_bytes());
            }
        }
        match &self.request_id {
            None => out.push(0),
            Some(id) => {
                out.push(1);
                put_bytes(&mut out, id.as_bytes());
            }
        }

        // The details' canonical JSON goes straight into the output; its length, which has to
        // come first, is filled in afterwards.
        let length_at = out.len();
        out.extend_from_slice(&[0; 8]);
        write_canonical_object(&mut out, &self.details, 1)?;
        let length = (out.len() - length_at - 8) as u64;
        if let Some(slot) = out.get_mut(length_at..length_at + 8) {
            slot.copy_from_slice(&length.to_be_bytes());
        }

        out.extend_from_slice(self.prev_hash.as_bytes());
        Ok(out)
    }

    /// SHA-256 of [`canonical_bytes`](Self::canonical_bytes).
    pub fn compute_hash(&self) -> Result<Digest, DetailsTooDeep> {
        Ok(Digest::of(&self.canonical_bytes()?))
    }

    /// Whether `hash` matches the content.
    pub fn is_intact(&self) -> bool {
        self.compute_hash().is_ok_and(|hash| hash == self.hash)
    }

    /// The head of a chain whose last record is this one.
    pub fn head_after(&self) -> ChainHead {
        ChainHead {
            next_seq: self.seq.saturating_add(1),
            last_hash: self.hash,
        }
    }
}

/// Where the chain stands: the sequence number the next record gets and the hash it links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub next_seq: u64,
    pub last_hash: Digest,
}

impl ChainHead {
    /// The head of an empty chain: the genesis record gets sequence number 0 and links to the
    /// all-zero hash.
    pub const GENESIS: ChainHead = ChainHead {
        next_seq: 0,
        last_hash: Digest::ZERO,
    };
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Canonical JSON: object members sorted by the UTF-8 bytes of their keys, no whitespace,
/// strings and numbers exactly as serde_json writes them.
fn write_canonical(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), DetailsTooDeep> {
    if depth > MAX_DETAILS_DEPTH {
        return Err(DetailsTooDeep);
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{number}");
        }
        Value::String(text) => write_json_string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                write_canonical(out, item, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(members) => write_canonical_object(out, members, depth)?,
    }
    Ok(())
}

fn write_canonical_object(
    out: &mut Vec<u8>,
    members: &Map<String, Value>,
    depth: usize,
) -> Result<(), DetailsTooDeep> {
    if depth > MAX_DETAILS_DEPTH {
        return Err(DetailsTooDeep);
    }
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (at, (key, value)) in sorted.into_iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        write_json_string(out, key);
        out.push(b':');
        write_canonical(out, value, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// Escapes `"`, `\` and control characters as serde_json does; everything else is written as
/// its UTF-8 bytes.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn draft() -> RecordDraft {
        RecordDraft::new(
            Timestamp::parse("2026-12-03T16:51:05.123Z").unwrap(),
            Actor::principal("user", "alice").unwrap(),
            ActionName::parse("auth.login").unwrap(),
            "session:s-1",
            Outcome::Success,
        )
        .with_request_id("req-1")
        .with_detail("ip", "192.0.2.7")
        .with_detail("mfa", json!({"method": "totp", "ok": true}))
    }

    #[test]
    fn actor_forms() {
        assert_eq!(Actor::parse("system").unwrap(), Actor::System);
        let alice = Actor::parse("user:alice:admin").unwrap();
        assert_eq!(
            alice,
            Actor::Principal {
                kind: "user".into(),
                id: "alice:admin".into()
            }
        );
        assert_eq!(alice.to_string(), "user:alice:admin");
        for bad in [
            "",
            "user",
            "user:",
            ":alice",
            "User:alice",
            "us er:a",
            "user:a\nb",
            "System",
        ] {
            assert!(Actor::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn action_names_are_dotted() {
        for good in [
            "policy.activate",
            "authz.decide",
            "key.encrypt",
            "auth.login",
            "a.b-c.d_1",
        ] {
            assert_eq!(ActionName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "login",
            "auth..login",
            ".auth",
            "auth.",
            "Auth.login",
            "auth login.x",
            "",
        ] {
            assert!(ActionName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(ActionName::parse(&format!("a.{}", "b".repeat(127))).is_err());
    }

    #[test]
    fn sealing_links_to_the_head_and_hashes_the_content() {
        let genesis = AuditRecord::seal(&ChainHead::GENESIS, draft()).unwrap();
        assert_eq!(genesis.seq, 0);
        assert_eq!(genesis.prev_hash, Digest::ZERO);
        assert!(genesis.is_intact());
        assert_eq!(
            genesis.hash,
            Digest::of(&genesis.canonical_bytes().unwrap())
        );

        let second = AuditRecord::seal(&genesis.head_after(), draft()).unwrap();
        assert_eq!(second.seq, 1);
        assert_eq!(second.prev_hash, genesis.hash);
        assert_ne!(second.hash, genesis.hash);
    }

    #[test]
    fn every_field_changes_the_hash() {
        let record = AuditRecord::seal(&ChainHead::GENESIS, draft()).unwrap();
        type Edit = Box<dyn Fn(&mut AuditRecord)>;
        let edits: Vec<Edit> = vec![
            Box::new(|r| r.seq = 1),
            Box::new(|r| r.time = Timestamp::from_unix_millis(r.time.unix_millis() + 1).unwrap()),
            Box::new(|r| r.actor = Actor::System),
            Box::new(|r| r.actor = Actor::principal("user", "alicf").unwrap()),
            Box::new(|r| r.action = ActionName::parse("auth.logout").unwrap()),
            Box::new(|r| r.resource.push('x')),
            Box::new(|r| r.result = Outcome::denied("")),
            Box::new(|r| r.result = Outcome::failure("")),
            Box::new(|r| r.request_id = None),
            Box::new(|r| r.request_id = Some(String::new())),
            Box::new(|r| {
                r.details.insert("ip".into(), json!("192.0.2.8"));
            }),
            Box::new(|r| {
                r.details.insert("extra".into(), Value::Null);
            }),
            Box::new(|r| r.details["mfa"]["ok"] = json!(false)),
            Box::new(|r| r.prev_hash = Digest::of(b"other")),
        ];
        let original = record.canonical_bytes().unwrap();
        for (at, edit) in edits.iter().enumerate() {
            let mut changed = record.clone();
            edit(&mut changed);
            assert_ne!(
                changed.canonical_bytes().unwrap(),
                original,
                "edit {at} kept the bytes"
            );
            assert!(!changed.is_intact(), "edit {at} kept the hash");
        }
    }

    /// The layout of docs/audit.md, computed independently (Python's hashlib and struct, json
    /// with sorted keys) for this record. A change of the canonical form fails here.
    #[test]
    fn canonical_hash_matches_the_documented_layout() {
        let draft = RecordDraft::new(
            Timestamp::parse("2026-12-03T16:51:05.123Z").unwrap(),
            Actor::principal("user", "alice").unwrap(),
            ActionName::parse("auth.login").unwrap(),
            "session:s-1",
            Outcome::denied("bad password"),
        )
        .with_request_id("req-1")
        .with_detail("n", 2)
        .with_detail("ip", "192.0.2.7")
        .with_detail("tags", json!(["a\n", true, null, 1.5]));
        let head = ChainHead {
            next_seq: 1,
            last_hash: Digest::from_bytes([0x11; 32]),
        };
        let record = AuditRecord::seal(&head, draft).unwrap();
        assert_eq!(
            hex::encode(record.canonical_bytes().unwrap()),
            "00000000000000146d616f732e61756469742e7265636f72642e76310000000000000001000001a23c\
             d11523000000000000000a757365723a616c696365000000000000000a617574682e6c6f67696e0000\
             00000000000b73657373696f6e3a732d3102000000000000000c6261642070617373776f7264010000\
             0000000000057265712d3100000000000000357b226970223a223139322e302e322e37222c226e223a\
             322c2274616773223a5b22615c6e222c747275652c6e756c6c2c312e355d7d11111111111111111111\
             11111111111111111111111111111111111111111111"
        );
        assert_eq!(
            record.hash.to_hex(),
            "78f97d61b984beb98afb2c3bd8623e060fb257664affc304a2ce5d352d48fe94"
        );
    }

    #[test]
    fn field_boundaries_cannot_shift() {
        // The same characters split differently between resource and request id must hash
        // differently: lengths prefix every field.
        let mut a = AuditRecord::seal(&ChainHead::GENESIS, draft()).unwrap();
        let mut b = a.clone();
        a.resource = "ab".into();
        a.request_id = Some("c".into());
        b.resource = "a".into();
        b.request_id = Some("bc".into());
        assert_ne!(a.compute_hash(), b.compute_hash());
    }

    #[test]
    fn details_order_does_not_matter_but_content_does() {
        let mut a = AuditRecord::seal(&ChainHead::GENESIS, draft()).unwrap();
        let mut b = a.clone();
        a.details = serde_json::from_str(r#"{"x":1,"y":{"b":2,"a":[1,"é\n"]}}"#).unwrap();
        b.details = serde_json::from_str(r#"{"y":{"a":[1,"é\n"],"b":2},"x":1}"#).unwrap();
        assert_eq!(a.compute_hash(), b.compute_hash());
        b.details = serde_json::from_str(r#"{"y":{"a":["é\n",1],"b":2},"x":1}"#).unwrap();
        assert_ne!(a.compute_hash(), b.compute_hash());
    }

    #[test]
    fn overly_deep_details_are_refused() {
        let mut value = json!(1);
        for _ in 0..MAX_DETAILS_DEPTH {
            value = json!([value]);
        }
        let deep = draft().with_detail("deep", value);
        assert_eq!(
            AuditRecord::seal(&ChainHead::GENESIS, deep),
            Err(DetailsTooDeep)
        );
    }

    #[test]
    fn json_form_round_trips_and_refuses_unknown_fields() {
        let record = AuditRecord::seal(&ChainHead::GENESIS, draft()).unwrap();
        let text = serde_json::to_string(&record).unwrap();
        let back: AuditRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        assert!(back.is_intact());
        let extra = text.replacen("{", r#"{"note":"x","#, 1);
        assert!(serde_json::from_str::<AuditRecord>(&extra).is_err());
        let denied = Outcome::denied("policy p-7");
        assert_eq!(
            serde_json::to_string(&denied).unwrap(),
            r#"{"status":"denied","reason":"policy p-7"}"#
        );
        for bad in [
            r#"{"status":"success","reason":"x"}"#,
            r#"{"status":"denied"}"#,
            r#"{"status":"denied","reason":"x","why":"y"}"#,
            r#"{"status":"ok"}"#,
        ] {
            assert!(
                serde_json::from_str::<Outcome>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_json_is_valid_json_and_survives_a_json_round_trip(value in json_value()) {
            let record = AuditRecord::seal(&ChainHead::GENESIS, draft().with_detail("v", value.clone())).unwrap();
            let mut canonical = Vec::new();
            write_canonical(&mut canonical, &value, 1).unwrap();
            let parsed: Value = serde_json::from_slice(&canonical).unwrap();
            prop_assert_eq!(&parsed, &value);

            let text = serde_json::to_string(&record).unwrap();
            let back: AuditRecord = serde_json::from_str(&text).unwrap();
            prop_assert!(back.is_intact());
        }
    }
}
