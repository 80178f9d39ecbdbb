//! TLS and client certificates over real loopback connections, with rcgen certificates.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN_TOKEN, APP_BUNDLE, TestServer};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `cn` with the given SANs: (certificate PEM, key PEM, certificate DER, key DER).
    fn leaf(&self, cn: &str, sans: Vec<SanType>) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        }
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn localhost() -> Vec<SanType> {
    vec![SanType::DnsName("localhost".try_into().unwrap())]
}

fn write_server_files(dir: &Path, server_ca: &Ca, client_ca: &Ca) -> Leaf {
    let leaf = server_ca.leaf("localhost", localhost());
    std::fs::write(dir.join("server.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &leaf.key_pem).unwrap();
    std::fs::write(dir.join("client-ca.pem"), client_ca.issuer.pem()).unwrap();
    leaf
}

/// A server with TLS, client certificates `client_auth`, and the rule
/// `CN=svc-*` → `agent:{suffix}` plus `e-mail *` → `user:{value}`.
async fn tls_server(files: &Path, client_auth: &str, server_ca: &Ca, client_ca: &Ca) -> TestServer {
    write_server_files(files, server_ca, client_ca);
    let tls = format!(
        "cert = {:?}\nkey = {:?}\nclient_ca = {:?}\nclient_auth = {client_auth:?}\nreload_seconds = 1\n",
        files.join("server.pem"),
        files.join("server.key"),
        files.join("client-ca.pem"),
    );
    let rules = r#"
[[certificate_rules]]
field = "subject_cn"
pattern = "svc-*"
principal = "agent:{suffix}"
[[certificate_rules]]
field = "subject_cn"
pattern = "admin"
principal = "user:admin"
"#;
    let identity: maos_server::config::IdentityConfig = toml::from_str(rules).unwrap();
    let mut server = TestServer::start_with(move |config| {
        config.server.tls = Some(toml::from_str(&tls).unwrap());
        config.identity = identity;
    })
    .await;
    server.base = server.base.replacen("http://", "https://", 1);
    server
}

fn client_config(
    server_ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&Leaf>,
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(server_ca.der()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    match identity {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

struct Answer {
    version: ProtocolVersion,
    peer_leaf: CertificateDer<'static>,
    status: u16,
    body: String,
}

/// One HTTP/1.1 request over a fresh TLS connection.
async fn request(
    addr: SocketAddr,
    config: ClientConfig,
    head: &str,
) -> Result<Answer, std::io::Error> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(format!("{head}Host: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await?;
    let (_, connection) = tls.get_ref();
    let version = connection.protocol_version().unwrap();
    let peer_leaf = connection.peer_certificates().unwrap()[0].clone();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    Ok(Answer {
        version,
        peer_leaf,
        status,
        body,
    })
}

fn addr(server: &TestServer) -> SocketAddr {
    server.server.as_ref().unwrap().http_addr
}

#[tokio::test]
async fn tls13_and_tls12_handshakes_succeed() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "none", &server_ca, &client_ca).await;
    for (version, expected) in [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let answer = request(
            addr(&server),
            client_config(&server_ca, &[version], None),
            "GET /healthz HTTP/1.1\r\n",
        )
        .await
        .unwrap();
        assert_eq!(answer.version, expected);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    server.stop().await;
}

/// rustls cannot speak TLS 1.1 or older, so the configuration is checked instead: only TLS 1.2
/// and 1.3, only AEAD suites, TLS 1.2 suites only with ECDHE.
#[test]
fn only_tls12_and_tls13_with_aead_ecdhe_suites_are_configured() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    write_server_files(files.path(), &server_ca, &client_ca);
    let config: maos_server::tls::TlsConfig = toml::from_str(&format!(
        "cert = {:?}\nkey = {:?}\n",
        files.path().join("server.pem"),
        files.path().join("server.key")
    ))
    .unwrap();
    let reloader = maos_server::tls::TlsReloader::new(config).unwrap();
    let current = reloader.current();
    let suites = &current.crypto_provider().cipher_suites;
    assert!(!suites.is_empty());
    for suite in suites {
        let version = suite.version().version;
        assert!(
            version == ProtocolVersion::TLSv1_2 || version == ProtocolVersion::TLSv1_3,
            "{suite:?}"
        );
        let name = format!("{:?}", suite.suite());
        assert!(
            name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"),
            "not AEAD: {name}"
        );
        if version == ProtocolVersion::TLSv1_2 {
            assert!(name.starts_with("TLS_ECDHE_"), "no forward secrecy: {name}");
        }
    }
}

#[tokio::test]
async fn certificate_is_reloaded_when_the_files_change() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "none", &server_ca, &client_ca).await;
    let get = || {
        request(
            addr(&server),
            client_config(&server_ca, &[&rustls::version::TLS13], None),
            "GET /healthz HTTP/1.1\r\n",
        )
    };
    let before = get().await.unwrap().peer_leaf;

    let renewed = server_ca.leaf("localhost", localhost());
    std::fs::write(files.path().join("server.key"), &renewed.key_pem).unwrap();
    std::fs::write(files.path().join("server.pem"), &renewed.cert_pem).unwrap();
    let mut seen = before.clone();
    for _ in 0..100 {
        // Between the two writes a check may see a mismatched pair; it keeps the old one.
        if let Ok(answer) = get().await {
            seen = answer.peer_leaf;
            if seen != before {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, renewed.cert, "the renewed certificate is not served");
    server.stop().await;
}

#[tokio::test]
async fn mtls_client_from_the_configured_ca_is_authenticated_as_the_mapped_principal() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "optional", &server_ca, &client_ca).await;
    let admin = client_ca.leaf("admin", vec![]);
    // The application bundle binds user:admin to maos-admin.
    let upload = format!(
        "POST /v1/policy/versions HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/yaml\r\nContent-Length: {}\r\n",
        APP_BUNDLE.len()
    );
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(
        &server_ca,
        &[&rustls::version::TLS13],
        None,
    )));
    let tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        format!("{upload}Host: localhost\r\nConnection: close\r\n\r\n{APP_BUNDLE}").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");

    // The certificate alone authenticates user:admin, whose stored roles allow the admin GET.
    let answer = request(
        addr(&server),
        client_config(&server_ca, &[&rustls::version::TLS13], Some(&admin)),
        "GET /v1/policy HTTP/1.1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Without a certificate (optional) the same request is unauthenticated.
    let answer = request(
        addr(&server),
        client_config(&server_ca, &[&rustls::version::TLS13], None),
        "GET /v1/policy HTTP/1.1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 401, "{}", answer.body);
    server.stop().await;
}

#[tokio::test]
async fn verified_certificate_that_no_rule_maps_is_401() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "required", &server_ca, &client_ca).await;
    let stranger = client_ca.leaf("nobody-we-know", vec![]);
    let answer = request(
        addr(&server),
        client_config(&server_ca, &[&rustls::version::TLS13], Some(&stranger)),
        "GET /v1/policy HTTP/1.1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.body.contains("\"error\""), "{}", answer.body);
    server.stop().await;
}

#[tokio::test]
async fn client_certificate_from_an_unknown_ca_fails_the_handshake_with_a_security_event() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "required", &server_ca, &client_ca).await;
    let mut events = server.server.as_ref().unwrap().state.events.subscribe();
    let forged = Ca::new("client CA").leaf("svc-ingest", vec![]);
    let result = request(
        addr(&server),
        client_config(&server_ca, &[&rustls::version::TLS13], Some(&forged)),
        "GET /healthz HTTP/1.1\r\n",
    )
    .await;
    assert!(
        result.is_err(),
        "a certificate from an unknown CA was accepted"
    );

    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("no security event for the refused handshake")
        .unwrap();
    assert_eq!(
        event.details.get("event.reason").and_then(|v| v.as_str()),
        Some("certificate_refused"),
        "{event:?}"
    );
    assert_eq!(event.source_ip, Some("127.0.0.1".parse().unwrap()));

    // Required: no certificate at all is refused as well.
    let result = request(
        addr(&server),
        client_config(&server_ca, &[&rustls::version::TLS13], None),
        "GET /healthz HTTP/1.1\r\n",
    )
    .await;
    assert!(
        result.is_err(),
        "a client without a certificate was accepted"
    );
    server.stop().await;
}

/// `maos config check` (`config::check_file`) validates `[server.tls]` and `[identity]`.
#[test]
fn config_check_validates_tls_and_identity_keys() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        let path = dir.path().join("maos.toml");
        std::fs::write(&path, text).unwrap();
        maos_server::config::check_file(&path).map_err(|e| e.to_string())
    };
    let valid = r#"
[server]
header_timeout_seconds = 5
[server.tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
client_auth = "required"
[[identity.certificate_rules]]
field = "san_uri"
pattern = "spiffe://maos.example/agent/*"
principal = "agent:{suffix}"
[[identity.issuers]]
issuer = "https://login.corp.example"
audiences = ["maos"]
jwks_file = "jwks.json"
"#;
    check(valid).unwrap();
    // The example file's keys are valid too.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maos.example.toml"),
    )
    .unwrap();
    check(&example).unwrap();

    for (broken, expected) in [
        (
            valid.replace("client_ca = \"ca.pem\"\n", ""),
            "server.tls.client_ca",
        ),
        (
            valid.replace("\"required\"", "\"sometimes\""),
            "maos.toml:8:",
        ),
        (
            valid.replace("header_timeout_seconds = 5", "header_timeout_seconds = 0"),
            "server.header_timeout_seconds",
        ),
        (
            valid.replace("agent/*\"", "*/agent\""),
            "identity.certificate_rules",
        ),
        (
            valid.replace("field = \"san_uri\"", "field = \"serial\""),
            "maos.toml:10:",
        ),
        (
            valid.replace(
                "jwks_file = \"jwks.json\"",
                "jwks_file = \"jwks.json\"\njwks_url = \"https://login.corp.example/jwks\"",
            ),
            "identity.issuers",
        ),
        (
            valid.replace(
                "jwks_file = \"jwks.json\"",
                "jwks_url = \"http://login.corp.example/jwks\"",
            ),
            "identity.issuers",
        ),
    ] {
        let error = check(&broken).expect_err(expected);
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

/// One HTTP/1.1 request with a JSON body over a fresh TLS connection; the answer's status.
async fn send_json(
    addr: SocketAddr,
    config: ClientConfig,
    head: &str,
    body: &str,
) -> (u16, String) {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let request = format!(
        "{head}Host: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A client certificate authenticated its principal without the principal's stored roles,
/// and the identity routes refused certificates outright ("a bearer token is required").
#[tokio::test]
async fn a_certificate_caller_has_its_stored_roles_on_every_route() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "optional", &server_ca, &client_ca).await;
    let tls13 = || client_config(&server_ca, &[&rustls::version::TLS13], None);
    let (status, text) = send_json(
        addr(&server),
        tls13(),
        &format!("POST /v1/principals HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"),
        r#"{"id":"agent:ops","roles":["maos-admin"]}"#,
    )
    .await;
    assert_eq!(status, 201, "{text}");

    let ops = client_ca.leaf("svc-ops", vec![]);
    let with_cert = || client_config(&server_ca, &[&rustls::version::TLS13], Some(&ops));
    // maos-admin is agent:ops's only through its stored binding.
    let answer = request(addr(&server), with_cert(), "GET /v1/policy HTTP/1.1\r\n")
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = request(
        addr(&server),
        with_cert(),
        "GET /v1/principals HTTP/1.1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Disabled, its certificate stops working like any other credential.
    let (status, text) = send_json(
        addr(&server),
        tls13(),
        &format!("POST /v1/principals/agent:ops/disable HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answer = request(
        addr(&server),
        with_cert(),
        "GET /v1/principals HTTP/1.1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 401, "{}", answer.body);
    server.stop().await;
}

/// A refused client certificate was only a security event and a log line, never audited.
#[tokio::test]
async fn a_refused_client_certificate_is_audited() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "optional", &server_ca, &client_ca).await;
    let stranger = client_ca.leaf("nobody-we-know", vec![]);
    let answer = request(
        addr(&server),
        client_config(&server_ca, &[&rustls::version::TLS13], Some(&stranger)),
        "GET /v1/policy HTTP/1.1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 401, "{}", answer.body);
    let mut audited = false;
    for _ in 0..50 {
        let answer = request(
            addr(&server),
            client_config(&server_ca, &[&rustls::version::TLS13], None),
            &format!(
                "GET /v1/audit?action=identity.token.reject HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
            ),
        )
        .await
        .unwrap();
        if answer.body.contains("certificate_unmapped") {
            audited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(audited, "no audit record of the refused certificate");
    server.stop().await;
}

/// testssl.sh rated the listener HIGH for "no cipher order": a TLS 1.2 client that prefers
/// ChaCha20 got it, although the server lists AES-256-GCM first.
#[tokio::test]
async fn the_server_chooses_the_cipher_suite_order() {
    let files = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = tls_server(files.path(), "none", &server_ca, &client_ca).await;

    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let server_first = provider
        .cipher_suites
        .iter()
        .find(|s| {
            s.version() == &rustls::version::TLS12
                && s.usable_for_signature_algorithm(rustls::SignatureAlgorithm::ECDSA)
        })
        .copied()
        .unwrap();
    // The client asks for the server's least preferred usable TLS 1.2 suite first.
    provider.cipher_suites.reverse();
    let mut roots = RootCertStore::empty();
    roots.add(server_ca.der()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let chosen = tls.get_ref().1.negotiated_cipher_suite().unwrap();
    assert_eq!(chosen.suite(), server_first.suite());
    server.stop().await;
}
