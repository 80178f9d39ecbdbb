//! Export and import as JSON lines: round trips, errors with line numbers, and property tests
//! that no input panics the reader and that any single change to an export is detected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::io::Cursor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use maos_audit::jsonl::{self, LineProblem, LogLine, LogReader};
use maos_audit::{
    ActionName, Actor, AuditChain, AuditRecord, AuditRedactor, Checkpoint, CheckpointPolicy,
    CheckpointSigningKey, Outcome, RecordDraft, RedactionKey, TamperKind, Timestamp, VerifyingKey,
    verify,
};
use proptest::prelude::*;
use serde_json::json;

struct Export {
    records: Vec<AuditRecord>,
    checkpoints: Vec<Checkpoint>,
    public: VerifyingKey,
    text: String,
}

/// A small log of 11 records with checkpoints at 4 and 8 and a final one at 11, as a server
/// writes it on shutdown.
fn export() -> &'static Export {
    static EXPORT: OnceLock<Export> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let key = Arc::new(CheckpointSigningKey::generate().unwrap());
        let policy = CheckpointPolicy {
            every_records: 4,
            every: Duration::from_secs(3600),
        };
        let mut chain = AuditChain::genesis(policy, key.clone());
        let redactor = AuditRedactor::new(&RedactionKey::generate().unwrap());
        let mut records = Vec::new();
        let mut checkpoints = Vec::new();
        for at in 0..10u64 {
            let draft = RecordDraft::new(
                Timestamp::from_unix_millis(1_800_000_000_000 + at * 1000).unwrap(),
                if at % 4 == 0 {
                    Actor::System
                } else {
                    Actor::principal("agent", "a-1").unwrap()
                },
                ActionName::parse("secret.read").unwrap(),
                format!("secret:db/password-{at}"),
                if at % 2 == 0 {
                    Outcome::Success
                } else {
                    Outcome::denied("no \"grant\"")
                },
            )
            .with_detail("token", redactor.redact("tok_123"))
            .with_detail("ratio", 0.1 * at as f64)
            .with_detail("tags", json!(["é", null, true, {"k": -3}]));
            let draft = if at % 3 == 0 {
                draft.with_request_id(format!("r{at}"))
            } else {
                draft
            };
            let sealed = chain.seal(draft).unwrap();
            records.push(sealed.record);
            checkpoints.extend(sealed.checkpoint);
        }
        let last = chain.seal(RecordDraft::new(
            Timestamp::from_unix_millis(1_800_000_020_000).unwrap(),
            Actor::System,
            ActionName::parse("server.stop").unwrap(),
            "",
            Outcome::Success,
        ));
        let last = last.unwrap();
        assert!(last.checkpoint.is_none());
        records.push(last.record);
        let shutdown = Timestamp::from_unix_millis(1_800_000_020_001).unwrap();
        checkpoints.extend(chain.checkpoint_now(shutdown).unwrap());
        assert_eq!(
            checkpoints.iter().map(|c| c.tree_size).collect::<Vec<_>>(),
            [4, 8, 11]
        );

        let mut out = Vec::new();
        jsonl::write_log(&mut out, &records, &checkpoints).unwrap();
        Export {
            records,
            checkpoints,
            public: key.verifying_key(),
            text: String::from_utf8(out).unwrap(),
        }
    })
}

#[test]
fn an_export_reads_back_and_verifies() {
    let export = export();
    let lines: Vec<&str> = export.text.lines().collect();
    assert_eq!(lines.len(), 14);
    assert!(
        lines[0].starts_with(r#"{"type":"record","seq":0,"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[4].starts_with(r#"{"type":"checkpoint","index":0,"#),
        "{}",
        lines[4]
    );
    assert!(!export.text.contains("tok_123"));

    let (records, checkpoints) = jsonl::read_log(Cursor::new(&export.text)).unwrap();
    assert_eq!(records, export.records);
    assert_eq!(checkpoints, export.checkpoints);

    let text = export.text.as_bytes();
    let report = jsonl::verify_export(text, text, &export.public, |_| {}).unwrap();
    assert_eq!(
        (report.records, report.checkpoints, report.unsigned_tail()),
        (11, 3, 0)
    );
}

#[test]
fn bad_lines_are_errors_with_their_line_number() {
    let export = export();
    let mut lines: Vec<String> = export.text.lines().map(str::to_owned).collect();
    lines[6] = r#"{"type":"record","seq":"five"}"#.to_owned();
    lines.insert(2, String::new());
    lines.insert(9, r#"{"type":"comment","text":"hi"}"#.to_owned());
    let text = lines.join("\n") + "\n";
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n{\"type\":\"record\"");

    let items: Vec<_> = LogReader::new(Cursor::new(bytes)).collect();
    let errors: Vec<(u64, String)> = items
        .iter()
        .filter_map(|item| item.as_ref().err())
        .map(|e| (e.line, e.to_string()))
        .collect();
    let numbers: Vec<u64> = errors.iter().map(|(line, _)| *line).collect();
    // Line 3 is blank and skipped; 8 and 10 are bad JSON lines, 17 is not UTF-8, 18 is cut off.
    assert_eq!(numbers, [8, 10, 17, 18], "{errors:?}");
    assert!(errors[0].1.starts_with("line 8: "), "{}", errors[0].1);
    assert_eq!(items.iter().filter(|item| item.is_ok()).count(), 13);
}

#[test]
fn overlong_lines_are_refused_and_reading_goes_on() {
    let export = export();
    let first = export.text.lines().next().unwrap();
    let long = format!("{}\n{}\n", "x".repeat(jsonl::MAX_LINE_LEN + 10), first);
    let items: Vec<_> = LogReader::new(Cursor::new(long)).collect();
    assert_eq!(items.len(), 2);
    let error = items[0].as_ref().unwrap_err();
    assert_eq!(error.line, 1);
    assert!(matches!(error.problem, LineProblem::TooLong));
    assert!(matches!(items[1], Ok(LogLine::Record(_))));
}

#[test]
fn a_verification_reading_a_broken_line_stops_there() {
    let export = export();
    let mut lines: Vec<&str> = export.text.lines().collect();
    lines[7] = "{";
    let text = lines.join("\n");
    let error =
        jsonl::verify_export(text.as_bytes(), text.as_bytes(), &export.public, |_| {}).unwrap_err();
    assert!(error.to_string().contains("line 8"), "{error}");
}

/// One change to an export.
#[derive(Clone, Debug)]
enum Change {
    Replace { line: usize, at: usize, with: char },
    Insert { line: usize, at: usize, with: char },
    Remove { line: usize, at: usize },
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn apply(text: &str, change: &Change) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let count = lines.len();
    let edit_chars = |line: &mut String, edit: &dyn Fn(&mut Vec<char>, usize), at: usize| {
        let mut chars: Vec<char> = line.chars().collect();
        let at = at % (chars.len() + 1);
        edit(&mut chars, at);
        *line = chars.into_iter().collect();
    };
    match *change {
        Change::Replace { line, at, with } => edit_chars(
            &mut lines[line % count],
            &|chars, at| {
                let at = at.min(chars.len() - 1);
                chars[at] = with;
            },
            at,
        ),
        Change::Insert { line, at, with } => edit_chars(
            &mut lines[line % count],
            &|chars, at| chars.insert(at, with),
            at,
        ),
        Change::Remove { line, at } => edit_chars(
            &mut lines[line % count],
            &|chars, at| {
                chars.remove(at.min(chars.len() - 1));
            },
            at,
        ),
        Change::DeleteLine(line) => {
            lines.remove(line % count);
        }
        Change::DuplicateLine(line) => {
            let copy = lines[line % count].clone();
            lines.insert(line % count, copy);
        }
        Change::SwapLines(a, b) => lines.swap(a % count, b % count),
    }
    lines.join("\n") + "\n"
}

fn change() -> impl Strategy<Value = Change> {
    let line = 0usize..64;
    let at = 0usize..4096;
    // Printable ASCII and a few others; whitespace between tokens is allowed to change nothing.
    let with = prop_oneof![
        (0x20u8..0x7f).prop_map(char::from),
        Just('é'),
        Just('\u{0}')
    ];
    prop_oneof![
        (line.clone(), at.clone(), with.clone()).prop_map(|(line, at, with)| Change::Replace {
            line,
            at,
            with
        }),
        (line.clone(), at.clone(), with).prop_map(|(line, at, with)| Change::Insert {
            line,
            at,
            with
        }),
        (line.clone(), at).prop_map(|(line, at)| Change::Remove { line, at }),
        line.clone().prop_map(Change::DeleteLine),
        line.clone().prop_map(Change::DuplicateLine),
        (line.clone(), line).prop_map(|(a, b)| Change::SwapLines(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_single_change_to_an_export_is_detected(change in change()) {
        let export = export();
        let changed = apply(&export.text, &change);
        let Ok((records, checkpoints)) = jsonl::read_log(Cursor::new(&changed)) else {
            return Ok(()); // refused when read: detected
        };
        let stream = records.iter().cloned().map(Ok::<_, Infallible>);
        let Ok(report) = verify(stream, &checkpoints, &export.public, |_| {}) else {
            return Ok(()); // refused by verification: detected
        };

        // Nothing was detected: the change must have left the log's meaning as it was (such as
        // swapping a checkpoint line with a record line, or adding a space between tokens)...
        if records == export.records && checkpoints == export.checkpoints {
            return Ok(());
        }
        // ...or it deleted the newest checkpoint, which nothing inside the log can show. The
        // report then says that records are not covered by a signature.
        prop_assert_eq!(&records, &export.records, "undetected change {:?}", change);
        prop_assert_eq!(&checkpoints[..], &export.checkpoints[..2], "undetected change {:?}", change);
        prop_assert_eq!(report.unsigned_tail(), 3);
    }

    #[test]
    fn arbitrary_lines_never_panic(lines in prop::collection::vec(".{0,200}", 0..8)) {
        let text = lines.join("\n");
        for (at, line) in lines.iter().enumerate() {
            let _ = jsonl::parse_line(line, at as u64 + 1);
        }
        let _ = jsonl::read_log(Cursor::new(&text));
        let stream = jsonl::records(Cursor::new(&text));
        let _ = verify(stream, &[], &export().public, |_| {});
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let count = LogReader::new(Cursor::new(&bytes)).count();
        prop_assert!(count <= bytes.len() + 1);
    }

    #[test]
    fn damaged_real_lines_never_panic(change in change(), second in change()) {
        // Two changes make lines that are nearly valid, which reach deeper into the parser.
        let text = apply(&apply(&export().text, &change), &second);
        for (at, line) in text.lines().enumerate() {
            let _ = jsonl::parse_line(line, at as u64 + 1);
        }
        let bytes = text.as_bytes();
        let _ = jsonl::verify_export(bytes, bytes, &export().public, |_| {});
    }
}

#[test]
fn a_detected_change_names_its_kind() {
    // Spot checks that go through the text form: a changed letter, a deleted line.
    let export = export();
    let changed = export
        .text
        .replacen("secret:db/password-5", "secret:db/password-6", 1);
    let bytes = changed.as_bytes();
    let error = jsonl::verify_export(bytes, bytes, &export.public, |_| {}).unwrap_err();
    assert_eq!(
        error.tamper().map(|t| (t.kind(), t.seq())),
        Some((TamperKind::Modified, Some(5)))
    );

    let lines: Vec<&str> = export
        .text
        .lines()
        .filter(|l| !l.contains(r#""seq":9,"#))
        .collect();
    let changed = lines.join("\n");
    let bytes = changed.as_bytes();
    let error = jsonl::verify_export(bytes, bytes, &export.public, |_| {}).unwrap_err();
    assert_eq!(
        error.tamper().map(|t| (t.kind(), t.seq())),
        Some((TamperKind::Deleted, Some(9)))
    );
}

#[test]
fn lines_in_another_member_order_read_the_same_and_unknown_members_are_refused() {
    let export = export();
    let line = export.text.lines().next().unwrap();
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    let mut members: Vec<(String, serde_json::Value)> =
        value.as_object().unwrap().clone().into_iter().collect();
    members.reverse();
    let reordered = serde_json::Value::Object(members.into_iter().collect()).to_string();
    assert!(!reordered.starts_with(r#"{"type""#));
    let parsed = jsonl::parse_line(&reordered, 1).unwrap();
    assert_eq!(parsed, LogLine::Record(export.records[0].clone()));

    for bad in [
        line.replacen(r#""seq":0,"#, r#""seq":0,"note":1,"#, 1),
        reordered.replacen('{', r#"{"note":1,"#, 1),
        line.replacen(
            r#"{"type":"record","#,
            r#"{"type":"record","type":"record","#,
            1,
        ),
        line.replacen(r#""record""#, r#""checkpoint""#, 1),
        line.replacen(r#""record""#, r#""Record""#, 1),
    ] {
        assert!(jsonl::parse_line(&bad, 1).is_err(), "accepted {bad}");
    }
}

#[test]
fn a_broken_record_line_is_reported_by_the_record_pass() {
    let export = export();
    let mut lines: Vec<String> = export.text.lines().map(str::to_owned).collect();
    lines[2] = r#"{"type":"record","seq":2}"#.to_owned();
    let text = lines.join("\n");
    // The checkpoint pass skips record lines unread...
    assert_eq!(
        jsonl::checkpoints(text.as_bytes()).unwrap(),
        export.checkpoints
    );
    // ...and the record pass stops at this one, naming its line.
    let error =
        jsonl::verify_export(text.as_bytes(), text.as_bytes(), &export.public, |_| {}).unwrap_err();
    assert!(error.to_string().contains("line 3"), "{error}");
    assert!(error.tamper().is_none());
}
