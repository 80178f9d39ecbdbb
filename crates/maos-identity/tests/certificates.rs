//! Client-certificate mapping with real certificates made by rcgen and signed by a test CA.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use maos_identity::PrincipalId;
use maos_identity::certificate::{
    CertificateError, CertificateField, CertificateMapper, CertificateRule,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "MAOS test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str, sans: Vec<SanType>) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, ca).unwrap().der().to_vec()
}

fn rule(field: CertificateField, pattern: &str, principal: &str) -> CertificateRule {
    CertificateRule {
        field,
        pattern: pattern.into(),
        principal: principal.into(),
    }
}

fn mapper() -> CertificateMapper {
    CertificateMapper::new(vec![
        rule(
            CertificateField::SanUri,
            "spiffe://maos.example/agent/*",
            "agent:{suffix}",
        ),
        rule(CertificateField::SanEmail, "*", "user:{value}"),
        rule(
            CertificateField::SanDns,
            "ingest.maos.example",
            "agent:ingest",
        ),
        rule(CertificateField::SubjectCn, "svc-*", "agent:{suffix}"),
    ])
    .unwrap()
}

#[test]
fn spiffe_uri_maps_to_an_agent() {
    let ca = ca();
    let der = leaf(
        &ca,
        "ignored",
        vec![SanType::URI(
            "spiffe://maos.example/agent/billing-reconciler"
                .try_into()
                .unwrap(),
        )],
    );
    let found = mapper().map_der(&der).unwrap();
    assert_eq!(
        found.principal,
        PrincipalId::agent("billing-reconciler").unwrap()
    );
    assert_eq!(found.field, CertificateField::SanUri);
    assert_eq!(found.rule, 0);
}

#[test]
fn email_dns_and_common_name_rules() {
    let ca = ca();
    let der = leaf(
        &ca,
        "Alice",
        vec![SanType::Rfc822Name(
            "alice@maos.example".try_into().unwrap(),
        )],
    );
    assert_eq!(
        mapper().map_der(&der).unwrap().principal,
        PrincipalId::user("alice@maos.example").unwrap()
    );

    let der = leaf(
        &ca,
        "x",
        vec![SanType::DnsName("ingest.maos.example".try_into().unwrap())],
    );
    assert_eq!(
        mapper().map_der(&der).unwrap().principal,
        PrincipalId::agent("ingest").unwrap()
    );

    let der = leaf(&ca, "svc-backup", vec![]);
    let found = mapper().map_der(&der).unwrap();
    assert_eq!(found.principal, PrincipalId::agent("backup").unwrap());
    assert_eq!(found.field, CertificateField::SubjectCn);
}

#[test]
fn rule_order_decides_and_unmatched_certificates_are_refused() {
    let ca = ca();
    // Both a SPIFFE id and a matching CN: the first rule in the list wins.
    let der = leaf(
        &ca,
        "svc-other",
        vec![SanType::URI(
            "spiffe://maos.example/agent/first".try_into().unwrap(),
        )],
    );
    assert_eq!(
        mapper().map_der(&der).unwrap().principal,
        PrincipalId::agent("first").unwrap()
    );

    // A SPIFFE id from another trust domain and an unknown DNS name match nothing.
    let der = leaf(
        &ca,
        "web",
        vec![
            SanType::URI("spiffe://evil.example/agent/first".try_into().unwrap()),
            SanType::DnsName("ingest.evil.example".try_into().unwrap()),
        ],
    );
    assert_eq!(mapper().map_der(&der), Err(CertificateError::NoMatch));

    // A prefix rule never matches the bare prefix.
    let der = leaf(&ca, "svc-", vec![]);
    assert_eq!(mapper().map_der(&der), Err(CertificateError::NoMatch));
}

#[test]
fn a_value_that_makes_a_bad_principal_id_is_an_error() {
    let ca = ca();
    let der = leaf(&ca, "svc-two words", vec![]);
    assert!(matches!(
        mapper().map_der(&der),
        Err(CertificateError::BadPrincipal { rule: 3, .. })
    ));
}

#[test]
fn the_ca_certificate_itself_maps_to_nothing() {
    let ca = ca();
    assert_eq!(mapper().map_der(ca.der()), Err(CertificateError::NoMatch));
    let mut truncated = ca.der().to_vec();
    truncated.truncate(truncated.len() / 2);
    assert_eq!(
        mapper().map_der(&truncated),
        Err(CertificateError::Unparsable)
    );
}
