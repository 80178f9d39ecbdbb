//! The identity provider end to end: a real server on an ephemeral port over a real SQLite
//! file, talked to over HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{APP_BUNDLE, TestServer};
use maos_identity::totp::{TotpConfig, TotpSecret, totp_at};
use serde_json::{Value, json};

/// RFC 4648 base32 without padding, as the enrolment answers the seed.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn code_at(secret: &str, offset_seconds: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secret = TotpSecret::from_bytes(base32_decode(secret));
    totp_at(
        &secret,
        &TotpConfig::default(),
        (now + offset_seconds) as u64,
    )
    .unwrap()
    .expose()
    .to_owned()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn create(server: &TestServer, body: Value) {
    let (status, answer) = json_of(
        server
            .post("/v1/principals")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

async fn login(server: &TestServer, body: Value) -> (u16, Value) {
    json_of(
        server
            .client
            .post(server.url("/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn oauth(server: &TestServer, form: &str) -> (u16, Value) {
    json_of(
        server
            .client
            .post(server.url("/v1/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn authorize_as(server: &TestServer, token: &str, request: Value) -> (u16, Value) {
    json_of(
        server
            .client
            .post(server.url("/v1/authorize"))
            .bearer_auth(token)
            .json(&request)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn forward_auth(server: &TestServer, token: &str, path: &str) -> reqwest::Response {
    server
        .client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", path)
        .header("x-original-method", "GET")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn password_and_totp_login_gives_a_token_that_is_authorized_by_stored_roles() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(
        &server,
        json!({"id": "user:Carol", "password": "correct horse battery", "roles": ["maos-pep", "reader"],
               "attributes": {"department": "finance"}}),
    )
    .await;
    create(
        &server,
        json!({"id": "user:dave", "password": "another passphrase"}),
    )
    .await;

    // MFA enrolment by the admin, confirmed with a first code.
    let (status, enrolment) = json_of(
        server
            .post("/v1/principals/user:carol/mfa")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (status, confirmed) = json_of(
        server
            .post("/v1/principals/user:carol/mfa/confirm")
            .json(&json!({"code": code_at(&secret, 0)}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);

    // The password alone is not enough any more.
    let (status, body) = login(
        &server,
        json!({"username": "CAROL", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("mfa_required"))
    );

    // The next step's code (one step of skew) is accepted once; replayed, it is refused.
    let code = code_at(&secret, 30);
    let (status, tokens) = login(
        &server,
        json!({"username": "carol", "password": "correct horse battery", "totp": code}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, body) = login(
        &server,
        json!({"username": "carol", "password": "correct horse battery", "totp": code}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("mfa_replayed"))
    );

    // A recovery code works once.
    let recovery = confirmed["recovery_codes"][0].as_str().unwrap();
    let with_recovery = json!({"username": "carol", "password": "correct horse battery", "recovery_code": recovery});
    assert_eq!(login(&server, with_recovery.clone()).await.0, 200);
    assert_eq!(login(&server, with_recovery).await.0, 401);

    // The token is a JWT accepted by the decision API (carol holds maos-pep)...
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let request = json!({"subject": {"type": "user", "id": "carol"},
                         "resource": {"type": "document", "id": "a"}, "action": {"name": "read"}});
    let (status, decision) = authorize_as(&server, token, request).await;
    assert_eq!(status, 200, "{decision}");
    // ...and the subject's stored role `reader` decides, though the request names no role.
    assert_eq!(decision["decision"], true, "{decision}");

    // Dave has no role on the decision API: denied.
    let (status, dave) = login(
        &server,
        json!({"username": "dave", "password": "another passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{dave}");
    let request = json!({"subject": {"type": "user", "id": "dave"},
                         "resource": {"type": "document", "id": "a"}, "action": {"name": "read"}});
    let (status, _) = authorize_as(
        &server,
        dave["access_token"].as_str().unwrap(),
        request.clone(),
    )
    .await;
    assert_eq!(status, 403);
    // And dave as a subject has no stored role to read documents.
    let (_, decision) = authorize_as(&server, token, request).await;
    assert_eq!(decision["decision"], false);

    // Unknown user and wrong password get the same answer.
    let unknown = login(&server, json!({"username": "nobody", "password": "x"})).await;
    let wrong = login(&server, json!({"username": "dave", "password": "x"})).await;
    assert_eq!(unknown.0, 401);
    assert_eq!(unknown, wrong);
    server.stop().await;
}

#[tokio::test]
async fn an_agent_gets_a_token_with_client_credentials_and_passes_forward_auth() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(&server, json!({"id": "agent:etl", "roles": ["reader"], "attributes": {"purpose": "nightly export"}})).await;

    // Scopes must be roles the agent holds.
    let (status, refused) = json_of(
        server
            .post("/v1/principals/agent:etl/apikeys")
            .json(&json!({"scopes": ["editor"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("scope_not_held"))
    );

    let (status, key) = json_of(
        server
            .post("/v1/principals/agent:etl/apikeys")
            .json(&json!({"scopes": ["reader"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let api_key = key["key"].as_str().unwrap().to_owned();
    assert!(api_key.starts_with("maos_") && api_key.len() == 86);
    // Shown once: listing never shows it.
    let (_, listed) = json_of(
        server
            .get("/v1/principals/agent:etl/apikeys")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!listed.to_string().contains(&api_key[22..]));

    let (status, token) = oauth(
        &server,
        &format!("grant_type=client_credentials&client_id=agent:etl&client_secret={api_key}"),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], "reader");
    let access = token["access_token"].as_str().unwrap();

    let allowed = forward_auth(&server, access, "/docs/reports/q1").await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-maos-subject"], "agent:etl");
    // The API key itself works as a bearer credential too.
    assert_eq!(
        forward_auth(&server, &api_key, "/docs/a").await.status(),
        200
    );

    // A wrong secret is an RFC 6749 invalid_client.
    let mut wrong = api_key.clone();
    wrong.replace_range(85.., if api_key.ends_with('0') { "1" } else { "0" });
    let (status, error) = oauth(
        &server,
        &format!("grant_type=client_credentials&client_id=agent:etl&client_secret={wrong}"),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, error) = oauth(&server, "grant_type=magic").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    // Rotation: the old key keeps working during its grace period, the new one works.
    let (status, rotated) = json_of(
        server
            .post(&format!(
                "/v1/principals/agent:etl/apikeys/{}/rotate",
                key["id"].as_str().unwrap()
            ))
            .json(&json!({"grace_seconds": 600}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap();
    assert_eq!(
        forward_auth(&server, new_key, "/docs/a").await.status(),
        200
    );
    assert_eq!(
        forward_auth(&server, &api_key, "/docs/a").await.status(),
        200
    );

    // Revocation takes effect at once.
    let revoked = server
        .delete(&format!(
            "/v1/principals/agent:etl/apikeys/{}",
            rotated["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        forward_auth(&server, new_key, "/docs/a").await.status(),
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:erin", "password": "erin's passphrase", "roles": ["maos-pep"]}),
    )
    .await;
    let (status, first) = oauth(
        &server,
        "grant_type=password&username=erin&password=erin%27s+passphrase",
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();

    let (status, second) = oauth(
        &server,
        &format!("grant_type=refresh_token&refresh_token={r1}"),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);

    // r1 presented again: copied. The whole family goes, r2 included.
    let (status, error) = oauth(
        &server,
        &format!("grant_type=refresh_token&refresh_token={r1}"),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = oauth(
        &server,
        &format!("grant_type=refresh_token&refresh_token={r2}"),
    )
    .await;
    assert_eq!(status, 400);

    // Revoking an access token (RFC 7009) stops it at once.
    let access = second["access_token"].as_str().unwrap();
    let request = common::request("user:erin", "document:a", "read");
    assert_eq!(authorize_as(&server, access, request.clone()).await.0, 200);
    let revoked = server
        .client
        .post(server.url("/v1/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(authorize_as(&server, access, request).await.0, 401);
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_principal_loses_its_tokens_and_api_keys_at_once() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(
        &server,
        json!({"id": "agent:bot", "roles": ["reader", "maos-pep"], "password": "bot passphrase"}),
    )
    .await;
    let (_, key) = json_of(
        server
            .post("/v1/principals/agent:bot/apikeys")
            .json(&json!({"scopes": ["reader"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let api_key = key["key"].as_str().unwrap().to_owned();
    let (status, token) = oauth(
        &server,
        &format!("grant_type=client_credentials&client_id=agent:bot&client_secret={api_key}"),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        forward_auth(&server, &access, "/docs/a").await.status(),
        200
    );
    assert_eq!(
        forward_auth(&server, &api_key, "/docs/a").await.status(),
        200
    );

    let disabled = server
        .post("/v1/principals/agent:bot/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    assert_eq!(
        forward_auth(&server, &access, "/docs/a").await.status(),
        401
    );
    assert_eq!(
        forward_auth(&server, &api_key, "/docs/a").await.status(),
        401
    );
    let (status, _) = oauth(
        &server,
        &format!("grant_type=client_credentials&client_id=agent:bot&client_secret={api_key}"),
    )
    .await;
    assert_eq!(status, 401);

    // Enabling the principal again does not bring back what it held before (see
    // re_enabling_a_principal_does_not_bring_back_its_old_credentials).
    let enabled = server
        .post("/v1/principals/agent:bot/enable")
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    assert_eq!(
        forward_auth(&server, &access, "/docs/a").await.status(),
        401
    );
    assert_eq!(
        forward_auth(&server, &api_key, "/docs/a").await.status(),
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_user_name_out() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:frank", "password": "frank's passphrase"}),
    )
    .await;
    // Five failures are free; the sixth locks the name for a second, doubling from there.
    for _ in 0..6 {
        let (status, body) =
            login(&server, json!({"username": "frank", "password": "guess"})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    // Locked now, even with the right password; the answer says so and for how long.
    let (status, body) = login(
        &server,
        json!({"username": "FRANK", "password": "frank's passphrase"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("locked_out")),
        "{body}"
    );
    assert!(body["error"]["details"]["retry_after"].as_u64().unwrap() >= 1);
    server.stop().await;
}

#[tokio::test]
async fn discovery_documents_and_signing_key_rotation_with_overlap() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:gina", "password": "gina's passphrase", "roles": ["maos-pep"]}),
    )
    .await;
    let (_, config) = json_of(
        server
            .client
            .get(server.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        config["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with("/.well-known/jwks.json")
    );
    let (_, jwks) = json_of(
        server
            .client
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(jwks["keys"][0].get("d").is_none(), "no private member");

    let (_, before) = login(
        &server,
        json!({"username": "gina", "password": "gina's passphrase"}),
    )
    .await;
    let old_token = before["access_token"].as_str().unwrap().to_owned();
    let mut events = server.server.as_ref().unwrap().state.events.subscribe();
    let (status, rotated) = json_of(
        server
            .post("/v1/identity/signing-keys/rotate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let (_, jwks) = json_of(
        server
            .client
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the old key stays for its tokens"
    );

    // Tokens of the old key still work; new tokens are signed by the new key.
    let request = common::request("user:gina", "document:a", "read");
    assert_eq!(
        authorize_as(&server, &old_token, request.clone()).await.0,
        200
    );
    let (_, after) = login(
        &server,
        json!({"username": "gina", "password": "gina's passphrase"}),
    )
    .await;
    let new_token = after["access_token"].as_str().unwrap();
    assert_eq!(authorize_as(&server, new_token, request).await.0, 200);
    assert_ne!(
        old_token.split('.').next(),
        new_token.split('.').next(),
        "another kid"
    );

    // The rotation is refused to a caller without the permission.
    let (status, _) = json_of(
        server
            .client
            .post(server.url("/v1/identity/signing-keys/rotate"))
            .bearer_auth(new_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    let _ = Duration::from_secs(0);
    // The rotation is a security event.
    let mut actions = Vec::new();
    while let Ok(event) = events.try_recv() {
        actions.extend(
            event
                .details
                .get("event.action")
                .and_then(|a| a.as_str())
                .map(str::to_owned),
        );
    }
    assert!(
        actions.iter().any(|a| a == "identity.signing_key.rotate"),
        "{actions:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_principal_manages_its_own_api_keys_but_not_others() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:hana", "password": "hana's passphrase", "roles": ["maos-pep"]}),
    )
    .await;
    create(&server, json!({"id": "agent:other", "roles": []})).await;
    let (_, tokens) = login(
        &server,
        json!({"username": "hana", "password": "hana's passphrase"}),
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap();
    let own = server
        .client
        .post(server.url("/v1/principals/user:hana/apikeys"))
        .bearer_auth(token)
        .json(&json!({"scopes": ["maos-pep"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    let others = server
        .client
        .post(server.url("/v1/principals/agent:other/apikeys"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(others.status(), 403);
    let list = server
        .client
        .get(server.url("/v1/principals"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 403);
    server.stop().await;
}

/// Regression: forward-auth added the principal's stored roles to an API key's scopes, so a key
/// scoped to `reader` could write with its owner's `editor` role.
#[tokio::test]
async fn api_key_scopes_are_not_widened_by_stored_roles() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(
        &server,
        json!({"id": "agent:sync", "roles": ["reader", "editor"]}),
    )
    .await;
    let (status, key) = json_of(
        server
            .post("/v1/principals/agent:sync/apikeys")
            .json(&json!({"scopes": ["reader"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let api_key = key["key"].as_str().unwrap();
    let put = |credential: String| {
        let server = &server;
        async move {
            server
                .client
                .get(server.url("/v1/forward-auth/nginx"))
                .header("x-original-uri", "/docs/a")
                .header("x-original-method", "PUT")
                .bearer_auth(credential)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // editor may write documents owned by alice.
    let stored = server
        .put("/v1/resources/document/a")
        .json(&json!({"attributes": {"owner": "alice"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    let (status, full) = json_of(
        server
            .post("/v1/principals/agent:sync/apikeys")
            .json(&json!({"scopes": ["reader", "editor"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{full}");
    assert_eq!(put(full["key"].as_str().unwrap().to_owned()).await, 200);

    // The reader-scoped key reads, and may not write.
    assert_eq!(
        forward_auth(&server, api_key, "/docs/a").await.status(),
        200
    );
    assert_eq!(put(api_key.to_owned()).await, 403);
    server.stop().await;
}

/// Requests never carry roles: the decision APIs look the subject up, add its stored roles and
/// deny a disabled principal whatever the policies say.
#[tokio::test]
async fn the_decision_apis_use_stored_roles_and_deny_a_disabled_subject() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(
        &server,
        json!({"id": "user:erin", "roles": ["reader"], "attributes": {"department": "finance"}}),
    )
    .await;
    let request = common::request("user:erin", "document:a", "read");
    assert!(server.decide(request.clone()).await);

    // AuthZEN sees the same principal.
    let evaluation = json!({"subject": {"type": "user", "id": "erin"},
        "resource": {"type": "document", "id": "a"}, "action": {"name": "read"}});
    let (status, answer) = json_of(
        server
            .post("/access/v1/evaluation")
            .json(&evaluation)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer["decision"].as_bool()), (200, Some(true)));

    let disabled = server
        .post("/v1/principals/user:erin/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    assert!(!server.decide(request.clone()).await);
    let (_, answer) = json_of(
        server
            .post("/access/v1/evaluation")
            .json(&evaluation)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["decision"], false);

    let enabled = server
        .post("/v1/principals/user:erin/enable")
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    assert!(server.decide(request).await);
    server.stop().await;
}

// Regressions found by a first-time user's review.

async fn new_api_key(
    server: &TestServer,
    bearer: &str,
    principal: &str,
    body: Value,
) -> (u16, Value) {
    json_of(
        server
            .client
            .post(server.url(&format!("/v1/principals/{principal}/apikeys")))
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// An API key with no scopes (or a token narrowed by `scope`) could create a new key for its
/// principal with every role the principal holds, and rotate a wider key to get its secret.
#[tokio::test]
async fn a_narrowed_api_key_cannot_mint_or_rotate_a_wider_one() {
    // The default bundle lets every principal manage its own keys (`maos:self/apikeys`).
    let server = TestServer::start().await;
    create(&server, json!({"id": "agent:etl", "roles": ["maos-pep"]})).await;
    let (_, narrow) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "agent:etl",
        json!({"scopes": []}),
    )
    .await;
    let narrow = narrow["key"].as_str().unwrap().to_owned();
    let (_, wide) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "agent:etl",
        json!({"scopes": ["maos-pep"]}),
    )
    .await;
    let wide_id = wide["id"].as_str().unwrap().to_owned();

    let (status, body) = new_api_key(
        &server,
        &narrow,
        "agent:etl",
        json!({"scopes": ["maos-pep"]}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not grant `maos-pep`"),
        "{body}"
    );
    let rotated = server
        .client
        .post(server.url(&format!(
            "/v1/principals/agent:etl/apikeys/{wide_id}/rotate"
        )))
        .bearer_auth(&narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 403);

    // What the key grants, it may pass on.
    let (status, body) = new_api_key(&server, &narrow, "agent:etl", json!({"scopes": []})).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}

async fn enrol_totp(server: &TestServer, principal: &str) -> String {
    let (status, enrolment) = json_of(
        server
            .post(&format!("/v1/principals/{principal}/mfa"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let (status, confirmed) = json_of(
        server
            .post(&format!("/v1/principals/{principal}/mfa/confirm"))
            .json(&json!({"code": code_at(&secret, 0)}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    secret
}

/// A correct password reset the user name's failures, so wrong TOTP codes never locked the
/// account and the second factor could be guessed without limit.
#[tokio::test]
async fn wrong_totp_codes_count_towards_the_lockout() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:dave", "password": "dave passphrase"}),
    )
    .await;
    let secret = enrol_totp(&server, "user:dave").await;
    let wrong = format!(
        "{:06}",
        (code_at(&secret, 0).parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let mut codes = Vec::new();
    for _ in 0..7 {
        let (status, body) = login(
            &server,
            json!({"username": "dave", "password": "dave passphrase", "totp": wrong}),
        )
        .await;
        codes.push((
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        ));
    }
    assert!(
        codes
            .iter()
            .any(|(status, code)| *status == 429 && code == "locked_out"),
        "{codes:?}"
    );
    server.stop().await;
}

/// Logins sent in parallel were all checked against the lockout before any failure was
/// counted: 60 at once got dozens of guesses instead of the allowance.
#[tokio::test]
async fn parallel_logins_cannot_outrun_the_lockout() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:gina", "password": "gina passphrase"}),
    )
    .await;
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..30 {
        let client = server.client.clone();
        let url = server.url("/v1/login");
        attempts.spawn(async move {
            client
                .post(url)
                .json(&json!({"username": "gina", "password": format!("guess {i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = attempts.join_all().await;
    let verified = statuses.iter().filter(|s| **s == 401).count();
    // Five failures are free and the sixth locks: no more than six reach the password check.
    assert!(
        verified <= 6,
        "{verified} attempts were verified: {statuses:?}"
    );
    assert_eq!(
        verified + statuses.iter().filter(|s| **s == 429).count(),
        30
    );
    server.stop().await;
}

/// `write` on principals let a delegated administrator grant itself `maos-admin` and set
/// the password of a principal with more rights.
#[tokio::test]
async fn a_principal_administrator_cannot_grant_roles_it_lacks_or_manage_stronger_principals() {
    let server = TestServer::start().await;
    let helpdesk = "version: 1\ncombining: deny-overrides\nroles:\n  - name: helpdesk\n    permissions:\n      - { resource: \"maos:principals/user:*\", actions: [read, write] }\n";
    server.upload(helpdesk).await;
    create(
        &server,
        json!({"id": "user:hd", "password": "helpdesk passphrase", "roles": ["helpdesk"]}),
    )
    .await;
    create(
        &server,
        json!({"id": "user:boss", "password": "boss passphrase", "roles": ["maos-admin"]}),
    )
    .await;
    create(
        &server,
        json!({"id": "user:temp", "password": "temp passphrase"}),
    )
    .await;
    let (status, tokens) = login(
        &server,
        json!({"username": "hd", "password": "helpdesk passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let as_hd = |method: reqwest::Method, path: &str| {
        server
            .client
            .request(method, server.url(path))
            .bearer_auth(&token)
    };

    let grant = as_hd(reqwest::Method::PUT, "/v1/principals/user:hd/roles")
        .json(&json!({"roles": ["helpdesk", "maos-admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 403);
    let password = as_hd(reqwest::Method::PUT, "/v1/principals/user:boss/password")
        .json(&json!({"password": "pwned pwned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(password.status(), 403);
    // Nor a principal whose power is in a `/v1/tokens` token rather than in stored roles.
    server.token_for("user:ops", &["maos-admin"]).await;
    create(&server, json!({"id": "user:ops"})).await;
    let disable = as_hd(reqwest::Method::POST, "/v1/principals/user:ops/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 403);
    // Nor its own attributes, which the policies' conditions read.
    let attributes = as_hd(reqwest::Method::PATCH, "/v1/principals/user:hd")
        .json(&json!({"attributes": {"department": "security"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(attributes.status(), 403);
    let disable = as_hd(reqwest::Method::POST, "/v1/principals/user:boss/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 403);

    // A principal with no more rights than the helpdesk is still its to manage.
    let password = as_hd(reqwest::Method::PUT, "/v1/principals/user:temp/password")
        .json(&json!({"password": "new temp passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(password.status(), 204);
    server.stop().await;
}

/// Disabling the principal the bootstrap admin token acts as locked every administrator out,
/// with no way back through the API.
#[tokio::test]
async fn the_bootstrap_admin_principal_cannot_be_disabled_or_deleted() {
    let server = TestServer::start().await;
    create(&server, json!({"id": "user:admin"})).await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/principals/user:admin/disable"),
        (reqwest::Method::DELETE, "/v1/principals/user:admin"),
    ] {
        let (status, body) = json_of(
            server
                .client
                .request(method, server.url(path))
                .bearer_auth(common::ADMIN_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("admin_lockout")),
            "{body}"
        );
    }
    let still_admin = server.get("/v1/policy/versions").send().await.unwrap();
    assert_eq!(still_admin.status(), 200);
    server.stop().await;
}

/// Access tokens outlived the API key they came from, and a disabled, enabled or deleted and
/// re-created principal got its old tokens and keys back.
#[tokio::test]
async fn re_enabling_a_principal_does_not_bring_back_its_old_credentials() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(
        &server,
        json!({"id": "agent:etl", "roles": ["reader", "maos-pep"]}),
    )
    .await;
    let client_token = |key: String| {
        let server = &server;
        async move {
            let (status, token) = oauth(
                server,
                &format!("grant_type=client_credentials&client_id=agent:etl&client_secret={key}"),
            )
            .await;
            assert_eq!(status, 200, "{token}");
            token["access_token"].as_str().unwrap().to_owned()
        }
    };

    // A revoked key takes the tokens obtained with it along.
    let (_, key) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "agent:etl",
        json!({"scopes": ["reader"]}),
    )
    .await;
    let (key_id, key) = (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap().to_owned(),
    );
    let token = client_token(key.clone()).await;
    assert_eq!(forward_auth(&server, &token, "/docs/a").await.status(), 200);
    let revoked = server
        .delete(&format!("/v1/principals/agent:etl/apikeys/{key_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(forward_auth(&server, &token, "/docs/a").await.status(), 401);

    // Deleted and created again under the same id: the old token is not the new principal's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, key) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "agent:etl",
        json!({"scopes": ["reader"]}),
    )
    .await;
    let token = client_token(key["key"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        server
            .delete("/v1/principals/agent:etl")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    create(
        &server,
        json!({"id": "agent:etl", "roles": ["reader", "maos-pep"]}),
    )
    .await;
    assert_eq!(forward_auth(&server, &token, "/docs/a").await.status(), 401);

    // New credentials issued after the cut-off work (a second later: the cut-off refuses
    // tokens of its own second).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, key) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "agent:etl",
        json!({"scopes": ["reader"]}),
    )
    .await;
    let token = client_token(key["key"].as_str().unwrap().to_owned()).await;
    assert_eq!(forward_auth(&server, &token, "/docs/a").await.status(), 200);
    server.stop().await;
}

/// Bearer values that were neither a MAOS token nor an API key (a wrong admin token, say) were
/// refused without an audit record, so guessing left no trace.
#[tokio::test]
async fn unrecognised_bearer_values_are_audited() {
    let server = TestServer::start().await;
    let refused = server
        .client
        .get(server.url("/v1/policy/versions"))
        .bearer_auth("maos_not-the-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let mut found = false;
    for _ in 0..50 {
        let (_, records) = json_of(
            server
                .get("/v1/audit?action=identity.token.reject")
                .send()
                .await
                .unwrap(),
        )
        .await;
        if records.to_string().contains("unknown_credential") {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "no audit record of the refused bearer value");
    server.stop().await;
}

/// A locked-out login said when to come back only in its body, not in `Retry-After`; an API
/// key with `ttl_seconds: 0` was created already expired.
#[tokio::test]
async fn lockout_answers_carry_retry_after_and_zero_lifetime_keys_are_refused() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:hank", "password": "hank passphrase"}),
    )
    .await;
    let mut last = None;
    for _ in 0..7 {
        last = Some(
            server
                .client
                .post(server.url("/v1/login"))
                .json(&json!({"username": "hank", "password": "guess"}))
                .send()
                .await
                .unwrap(),
        );
    }
    let locked = last.unwrap();
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);

    create(&server, json!({"id": "agent:tmp"})).await;
    let (status, body) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "agent:tmp",
        json!({"scopes": [], "ttl_seconds": 0}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_ttl")),
        "{body}"
    );
    server.stop().await;
}

/// A scope-free API key could enrol, remove or renew the recovery codes of its principal's
/// second factor, and so take the account over with the password.
#[tokio::test]
async fn a_narrowed_api_key_cannot_take_over_the_second_factor() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"id": "user:mia", "password": "mia passphrase", "roles": ["maos-pep"]}),
    )
    .await;
    let (_, narrow) = new_api_key(
        &server,
        common::ADMIN_TOKEN,
        "user:mia",
        json!({"scopes": []}),
    )
    .await;
    let narrow = narrow["key"].as_str().unwrap().to_owned();
    let as_narrow = |method: reqwest::Method, path: &str| {
        server
            .client
            .request(method, server.url(path))
            .bearer_auth(&narrow)
    };
    for (method, path) in [
        (reqwest::Method::POST, "/v1/principals/user:mia/mfa"),
        (
            reqwest::Method::POST,
            "/v1/principals/user:mia/mfa/recovery-codes",
        ),
        (reqwest::Method::DELETE, "/v1/principals/user:mia/mfa"),
    ] {
        let answer = as_narrow(method, path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{path}");
    }
    // A login grants all of mia's roles: it may enrol.
    let (status, tokens) = login(
        &server,
        json!({"username": "mia", "password": "mia passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let enrol = server
        .client
        .post(server.url("/v1/principals/user:mia/mfa"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(enrol.status(), 201);
    server.stop().await;
}
