//! Bundle text from an untrusted source: parsing, validation, compilation, analysis and a few
//! decisions must never panic, and a bundle that parses must survive its canonical JSON form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_core::Request;
use maos_policy::{Bundle, DecisionOptions, DecisionPoint, analyze, analyze_source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // Line lookups and analysis run on the raw text too.
    let _ = analyze_source(text, "fuzz.yaml");

    let Ok(bundle) = Bundle::parse(text, "fuzz.yaml") else {
        return;
    };
    let _ = analyze(&bundle);

    let json = bundle.to_json();
    if let Err(errors) = Bundle::parse(&json, "fuzz.json") {
        panic!("the canonical JSON form of a parsed bundle does not parse: {errors}\n{json}");
    }

    let Ok(point) = DecisionPoint::compile(bundle) else {
        return;
    };
    let _ = point.run_tests();
    let explain = DecisionOptions {
        explain: true,
        extra_roles: Vec::new(),
    };
    for test in &point.bundle().tests {
        let fast = point.decide(&test.request);
        let slow = point.decide_with(&test.request, &explain);
        assert_eq!(
            fast.decision, slow.decision,
            "indexed and explained paths disagree"
        );
    }
    let request = Request::default();
    let _ = point.decide(&request);
});
