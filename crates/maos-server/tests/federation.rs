//! ID tokens of trusted external OIDC issuers over HTTP: one issuer whose JWKS is a local file,
//! one whose JWKS a small axum server on loopback serves; tokens signed with real Ed25519 keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use common::{APP_BUNDLE, TestServer};
use maos_identity::jose::b64_encode;
use serde_json::{Value, json};

const FILE_ISSUER: &str = "https://offline-idp.example";
const URL_ISSUER: &str = "https://login.corp.example";
const AUDIENCE: &str = "maos";

struct Idp {
    issuer: &'static str,
    kid: &'static str,
    key: Ed25519KeyPair,
}

impl Idp {
    fn new(issuer: &'static str, kid: &'static str) -> Idp {
        Idp {
            issuer,
            kid,
            key: Ed25519KeyPair::generate().unwrap(),
        }
    }

    fn jwks(&self) -> String {
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "use": "sig",
            "x": b64_encode(self.key.public_key().as_ref())}]})
        .to_string()
    }

    fn claims(&self, sub: &str, groups: &[&str]) -> Value {
        let now = now();
        json!({"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "groups": groups,
            "iat": now, "exp": now + 300})
    }

    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64_encode(header.to_string().as_bytes()),
            b64_encode(claims.to_string().as_bytes())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64_encode(signature.as_ref()))
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(
            &json!({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Serves `jwks` at `/jwks` on a loopback port.
async fn jwks_server(jwks: String) -> String {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks")
}

struct Fixture {
    server: TestServer,
    file_idp: Idp,
    url_idp: Idp,
    _files: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let files = tempfile::tempdir().unwrap();
    let file_idp = Idp::new(FILE_ISSUER, "offline-1");
    let url_idp = Idp::new(URL_ISSUER, "corp-1");
    let jwks_file = files.path().join("jwks.json");
    std::fs::write(&jwks_file, file_idp.jwks()).unwrap();
    let jwks_url = jwks_server(url_idp.jwks()).await;
    let identity = format!(
        r#"
[[issuers]]
issuer = "{FILE_ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = {jwks_file:?}
allowed_algorithms = ["EdDSA"]
role_rules = [{{ claim = "groups", value = "maos-admins", roles = ["maos-admin"] }}]

[[issuers]]
issuer = "{URL_ISSUER}"
audiences = ["other-client", "{AUDIENCE}"]
jwks_url = "{jwks_url}"
allowed_algorithms = ["EdDSA"]
role_rules = [{{ claim = "groups", value = "maos-admins", roles = ["maos-admin"] }}]
"#
    );
    let identity: maos_server::config::IdentityConfig = toml::from_str(&identity).unwrap();
    let server = TestServer::start_with(move |config| config.identity = identity).await;
    // user:admin is bound to maos-admin, user:bob only to reader.
    server.upload(APP_BUNDLE).await;
    Fixture {
        server,
        file_idp,
        url_idp,
        _files: files,
    }
}

async fn admin_get(server: &TestServer, token: &str) -> (u16, Value) {
    let response = server
        .client
        .get(server.url("/v1/policy"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn id_tokens_are_mapped_to_the_principal_and_claim_roles() {
    let f = fixture().await;
    for idp in [&f.file_idp, &f.url_idp] {
        // The principal's stored binding (user:admin → maos-admin) applies.
        let token = idp.sign(&idp.claims("admin", &[]));
        let (status, body) = admin_get(&f.server, &token).await;
        assert_eq!(status, 200, "{}: {body}", idp.issuer);
        // user:bob is only a reader: authenticated, not authorized.
        let token = idp.sign(&idp.claims("bob", &[]));
        let (status, body) = admin_get(&f.server, &token).await;
        assert_eq!(status, 403, "{}: {body}", idp.issuer);
        // The groups claim grants maos-admin.
        let token = idp.sign(&idp.claims("bob", &["staff", "maos-admins"]));
        let (status, body) = admin_get(&f.server, &token).await;
        assert_eq!(status, 200, "{}: {body}", idp.issuer);
    }
    f.server.stop().await;
}

#[tokio::test]
async fn bad_id_tokens_are_401() {
    let f = fixture().await;
    for idp in [&f.file_idp, &f.url_idp] {
        let good = idp.claims("admin", &["maos-admins"]);
        let mut cases = Vec::new();

        let mut claims = good.clone();
        claims["aud"] = json!("someone-else");
        cases.push(("wrong aud", idp.sign(&claims)));

        let mut claims = good.clone();
        claims["iss"] = json!("https://evil.example");
        cases.push(("wrong iss", idp.sign(&claims)));

        let mut claims = good.clone();
        claims["iat"] = json!(now() - 7200);
        claims["exp"] = json!(now() - 3600);
        cases.push(("expired", idp.sign(&claims)));

        cases.push((
            "unknown kid",
            idp.sign_with(&json!({"alg": "EdDSA", "kid": "not-published"}), &good),
        ));

        // Signed by another key under the published kid.
        let other = Idp::new(idp.issuer, idp.kid);
        cases.push(("foreign key", other.sign(&good)));

        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "kid": idp.kid});
            let unsigned = format!(
                "{}.{}.",
                b64_encode(header.to_string().as_bytes()),
                b64_encode(good.to_string().as_bytes())
            );
            cases.push(("alg none", unsigned));
        }

        for (what, token) in cases {
            let (status, body) = admin_get(&f.server, &token).await;
            assert_eq!(status, 401, "{} {what}: {body}", idp.issuer);
            assert!(body["error"]["code"].is_string(), "{what}: {body}");
        }
        // The good token still works, so the refusals above were about the token.
        let (status, body) = admin_get(&f.server, &idp.sign(&good)).await;
        assert_eq!(status, 200, "{}: {body}", idp.issuer);
    }
    f.server.stop().await;
}

/// Checking an issuer's configuration with an empty key set failed with "no usable key", so no
/// server with `[[identity.issuers]]` could start.
#[tokio::test]
async fn server_with_federated_issuers_starts() {
    let f = fixture().await;
    assert!(
        !f.server
            .server
            .as_ref()
            .unwrap()
            .state
            .federation
            .is_empty()
    );
    f.server.stop().await;
}

/// Waits (up to 5 s) for an `identity.token.reject` audit record mentioning `needle`.
async fn rejection_audited(server: &TestServer, needle: &str) -> bool {
    for _ in 0..50 {
        let text = server
            .get("/v1/audit?action=identity.token.reject")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains(needle) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Refused ID tokens of trusted issuers were only logged, never audited.
#[tokio::test]
async fn refused_federated_tokens_are_audited() {
    let f = fixture().await;
    let mut claims = f.file_idp.claims("admin", &[]);
    claims["aud"] = json!("someone-else");
    let (status, _) = admin_get(&f.server, &f.file_idp.sign(&claims)).await;
    assert_eq!(status, 401);
    assert!(
        rejection_audited(&f.server, "federation").await,
        "no audit record of the refused federated token"
    );
    f.server.stop().await;
}
