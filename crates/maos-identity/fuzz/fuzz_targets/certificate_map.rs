//! Arbitrary bytes as a client certificate.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maos_identity::certificate::{CertificateField, CertificateMapper, CertificateRule};

fn mapper() -> &'static CertificateMapper {
    static MAPPER: OnceLock<CertificateMapper> = OnceLock::new();
    MAPPER.get_or_init(|| {
        CertificateMapper::new(vec![
            CertificateRule {
                field: CertificateField::SanUri,
                pattern: "spiffe://maos.example/agent/*".into(),
                principal: "agent:{suffix}".into(),
            },
            CertificateRule {
                field: CertificateField::SubjectCn,
                pattern: "*".into(),
                principal: "user:{value}".into(),
            },
        ])
        .unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = mapper().map_der(data);
});
