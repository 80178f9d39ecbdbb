//! Client certificates as DER: the mapper reads the subject and alternative names of anything
//! a TLS peer sends without a panic, and a match names a field value that fits its rule.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maos_identity::certificate::{CertificateField, CertificateMapper, CertificateRule};

fn mapper() -> &'static CertificateMapper {
    static MAPPER: OnceLock<CertificateMapper> = OnceLock::new();
    MAPPER.get_or_init(|| {
        let rule = |field, pattern: &str, principal: &str| CertificateRule {
            field,
            pattern: pattern.to_owned(),
            principal: principal.to_owned(),
        };
        CertificateMapper::new(vec![
            rule(
                CertificateField::SanUri,
                "spiffe://maos.example/agent/*",
                "agent:{suffix}",
            ),
            rule(CertificateField::SanDns, "*", "agent:{value}"),
            rule(CertificateField::SanEmail, "*", "user:{value}"),
            rule(CertificateField::SubjectCn, "*", "user:{suffix}"),
        ])
        .expect("the rules are valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let mapper = mapper();
    if let Ok(found) = mapper.map_der(data) {
        assert!(found.rule < 4);
        if found.field == CertificateField::SanUri {
            assert!(found.value.starts_with("spiffe://maos.example/agent/"));
        }
    }
});
