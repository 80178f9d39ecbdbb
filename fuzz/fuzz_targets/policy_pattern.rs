//! Resource patterns from policy bundles (`docs/**`, `orders/*/items`), checked against
//! request resources: compiling never panics, and the analysis helpers are sound: `covers`
//! and `may_overlap` never claim what matching contradicts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_policy::Pattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Three parts: two patterns and a resource.
    let mut parts = text.splitn(3, '\n');
    let (Some(a), Some(b), Some(resource)) = (parts.next(), parts.next(), parts.next()) else {
        if let Ok(pattern) = Pattern::new(text) {
            assert!(!pattern.is_exact() || pattern.matches(text));
        }
        return;
    };
    let (Ok(a), Ok(b)) = (Pattern::new(a), Pattern::new(b)) else {
        return;
    };

    for pattern in [&a, &b] {
        if pattern.is_exact() {
            assert!(
                pattern.matches(pattern.as_str()),
                "an exact pattern misses itself"
            );
        }
        if pattern.matches(resource) {
            assert!(
                resource.starts_with(pattern.literal_prefix()),
                "match without the prefix"
            );
            assert!(
                resource.ends_with(pattern.literal_suffix()),
                "match without the suffix"
            );
        }
    }
    let (in_a, in_b) = (a.matches(resource), b.matches(resource));
    if a.covers(&b) && in_b {
        assert!(
            in_a,
            "`{}` covers `{}` but misses `{resource}`",
            a.as_str(),
            b.as_str()
        );
    }
    if in_a && in_b {
        assert!(
            a.may_overlap(&b),
            "`{}` and `{}` both match `{resource}`",
            a.as_str(),
            b.as_str()
        );
    }
});
