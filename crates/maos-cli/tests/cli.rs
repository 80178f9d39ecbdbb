//! The `maos` binary, run as a process: exit codes and output of `authz` and `policy`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn maos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maos"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn examples() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("examples/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

#[test]
fn policy_test_passes_on_the_examples() {
    let files = examples();
    let mut args = vec!["policy", "test"];
    args.extend(files.iter().map(String::as_str));
    let out = maos(&args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let last = text.lines().last().unwrap();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 30, "{last}");
    assert_eq!(last, format!("{passed} passed, 0 failed"));
    assert_eq!(text.lines().count(), passed + 1);
}

#[test]
fn policy_test_fails_with_a_failing_test() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.yaml");
    std::fs::write(
        &file,
        r#"
version: 1
tests:
  - { name: right, expect: deny,
      request: { subject: { type: user, id: a }, resource: { type: d, id: x }, action: { name: r } } }
  - { name: wrong, expect: allow,
      request: { subject: { type: user, id: a }, resource: { type: d, id: x }, action: { name: r } } }
"#,
    )
    .unwrap();
    let out = maos(&["policy", "test", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("wrong: expected allow, got deny"), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"));
}

#[test]
fn authz_check_prints_the_response() {
    let request = r#"{"subject":{"type":"user","id":"alice","properties":{"department":"engineering"}},
        "resource":{"type":"document","id":"design/api"},"action":{"name":"write"}}"#;
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/rbac.yaml",
        "--request",
        request,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let response: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(response["decision"], true);
    assert_eq!(response["determining"][0]["id"], "editor.permissions[0]");
    assert!(response.get("trace").is_none());

    // A deny is still exit 0; --explain adds the trace.
    let deny = request.replace("engineering", "sales");
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/rbac.yaml",
        "--request",
        &deny,
        "--explain",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let response: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(response["decision"], false);
    let rules = response["trace"]["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["conditions"][0]["actual"] == "sales")
    );
}

#[test]
fn authz_check_reads_request_files_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("r.json");
    std::fs::write(
        &one,
        r#"{"subject":{"type":"user","id":"bob"},"resource":{"type":"document","id":"design/api"},"action":{"name":"comment"}}"#,
    )
    .unwrap();
    let at = format!("@{}", one.display());
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/acl.yaml",
        "--request",
        &at,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"decision\": true"));

    let lines = dir.path().join("r.jsonl");
    let a = r#"{"subject":{"type":"user","id":"bob"},"resource":{"type":"document","id":"design/api"},"action":{"name":"read"}}"#;
    let b = r#"{"subject":{"type":"user","id":"carl"},"resource":{"type":"document","id":"design/api"},"action":{"name":"read"}}"#;
    std::fs::write(&lines, format!("{a}\n{b}\n")).unwrap();
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/acl.yaml",
        "--requests",
        lines.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let decisions: Vec<bool> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["decision"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(decisions, vec![true, false]);

    // A malformed line is reported with its line number; the others are still answered.
    std::fs::write(&lines, format!("{a}\n{{not json\n")).unwrap();
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/acl.yaml",
        "--requests",
        lines.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(
        stderr(&out).contains("r.jsonl:2: invalid request"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_exits_2() {
    let request = r#"{"subject":{"type":"user","id":"a"},"resource":{"type":"d","id":"x"},"action":{"name":"r"}}"#;
    // An invalid bundle: `file:line: message`.
    let invalid = "crates/maos-policy/tests/invalid/inheritance-cycle.yaml";
    let out = maos(&["authz", "check", "--policy", invalid, "--request", request]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{invalid}:5: roles[0].inherits: inheritance cycle: a -> b -> c -> a"
        )),
        "{}",
        stderr(&out)
    );
    // A malformed request, a missing file, a missing argument.
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/rbac.yaml",
        "--request",
        "{\"subject\":",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid request"));
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "nope.yaml",
        "--request",
        request,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope.yaml: cannot read"));
    let out = maos(&["authz", "check", "--policy", "examples/rbac.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    // An unknown field in the request is refused, not ignored.
    let spoof = request.replace("\"id\":\"a\"", "\"id\":\"a\",\"roles\":[\"admin\"]");
    let out = maos(&[
        "authz",
        "check",
        "--policy",
        "examples/rbac.yaml",
        "--request",
        &spoof,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn policy_validate_accepts_examples_and_rejects_every_invalid_case() {
    let files = examples();
    let mut args = vec!["policy", "validate"];
    args.extend(files.iter().map(String::as_str));
    let out = maos(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains(": valid ("))
            .count(),
        files.len()
    );

    let dir = root().join("crates/maos-policy/tests/invalid");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let expect = source
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap();
        let out = maos(&["policy", "validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        assert!(
            stderr(&out).contains(expect),
            "{}: {}",
            path.display(),
            stderr(&out)
        );
    }
}

#[test]
fn policy_analyze_finds_overlap_and_shadowing() {
    let out = maos(&["policy", "analyze", "examples/first-applicable.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("examples/first-applicable.yaml:7: warning[overlap]: policies[0]"),
        "{text}"
    );
    assert!(text.contains("warning[shadowed]: policies[3]"), "{text}");
    let out = maos(&[
        "policy",
        "analyze",
        "--json",
        "examples/first-applicable.yaml",
    ]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|f| f["finding"]["kind"] == "shadowed")
    );
}
