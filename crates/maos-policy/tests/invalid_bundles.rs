//! Every file in tests/invalid/ is a bundle that breaks one rule of validation. Its first line
//! says `# expect: <text the error must contain>`, and optionally the second `# line: N`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use maos_policy::DecisionPoint;

#[test]
fn each_invalid_bundle_is_rejected_with_a_message_naming_the_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the invalid cases, found {}",
        files.len()
    );

    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let expect = source
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: no `# expect:` line"));
        let line = source
            .lines()
            .find_map(|l| l.strip_prefix("# line: "))
            .map(|n| n.trim().parse::<usize>().unwrap());

        let errors = match DecisionPoint::load(&source, &name) {
            Ok(_) => panic!("{name}: accepted"),
            Err(errors) => errors,
        };
        let matching = errors.errors.iter().find(|e| e.message.contains(expect));
        let Some(error) = matching else {
            panic!("{name}: no error contains {expect:?}; got:\n{errors}");
        };
        if let Some(line) = line {
            assert_eq!(error.line, Some(line), "{name}: wrong line in {error}");
        }
        assert!(error.to_string().starts_with(&name), "{name}: {error}");
    }
}
