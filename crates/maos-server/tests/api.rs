//! The HTTP APIs of a real server on an ephemeral port, over SQLite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{ADMIN_TOKEN, APP_BUNDLE, TestServer, request};
use serde_json::{Value, json};

async fn versions(server: &TestServer) -> Vec<Value> {
    let body: Value = server
        .get("/v1/policy/versions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["versions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let server = TestServer::start().await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["policy_version"].as_i64().is_some());

    let openapi: Value = server
        .client
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/authorize"]["post"].is_object());
    assert!(openapi["paths"]["/access/v1/evaluation"]["post"].is_object());
    assert!(openapi["components"]["securitySchemes"]["bearer"].is_object());

    // One decision, then the metrics show it.
    server
        .decide(request("user:admin", "maos:policy", "read"))
        .await;
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("maos_decisions_total"), "{text}");
    assert!(text.contains("maos_http_requests_total"), "{text}");
    assert!(
        text.contains("maos_http_request_duration_seconds_bucket"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_default_bundle_protects_the_admin_api() {
    let server = TestServer::start().await;

    // No token: 401 with a challenge. A wrong token: 401 invalid_token.
    let anonymous = server
        .client
        .get(server.url("/v1/policy"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let wrong = server
        .client
        .get(server.url("/v1/policy"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // The admin reads the default bundle.
    let active: Value = server
        .get("/v1/policy")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        active["bundle"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "maos-admin")
    );
    assert_eq!(active["version"]["author"], "maos");

    // A token without roles is authenticated but not authorized; a PEP token may ask for
    // decisions but not administer.
    let nobody = server.token_for("user:nobody", &[]).await;
    let denied = server
        .client
        .get(server.url("/v1/policy"))
        .bearer_auth(&nobody)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let pep = server.token_for("service:proxy", &["maos-pep"]).await;
    let asked = server
        .client
        .post(server.url("/v1/authorize"))
        .bearer_auth(&pep)
        .json(&request("user:x", "document:y", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let admin = server
        .client
        .get(server.url("/v1/tokens"))
        .bearer_auth(&pep)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 403);
    let refused = server
        .client
        .post(server.url("/v1/authorize"))
        .bearer_auth(&nobody)
        .json(&request("user:x", "document:y", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // Tokens are listed without secrets and can be revoked.
    let tokens: Value = server
        .get("/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = tokens["tokens"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|t| t.get("token").is_none() && t.get("token_hash").is_none())
    );
    let pep_id = list
        .iter()
        .find(|t| t["principal"] == "service:proxy")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = server
        .delete(&format!("/v1/tokens/{pep_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let after = server
        .client
        .post(server.url("/v1/authorize"))
        .bearer_auth(&pep)
        .json(&request("user:x", "document:y", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "a revoked token is refused at once");
    server.stop().await;
}

#[tokio::test]
async fn uploads_are_validated_and_tested_before_anything_changes() {
    let server = TestServer::start().await;
    let before = versions(&server).await.len();

    // Invalid bundle: an unknown role in a binding.
    let invalid = "version: 1\nbindings:\n  - { subject: \"user:a\", roles: [\"ghost\"] }\n";
    let response = server
        .post("/v1/policy/versions")
        .body(invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_bundle");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("ghost"),
        "{body}"
    );

    // A bundle whose own test fails.
    let failing = APP_BUNDLE.replace("expect: deny", "expect: allow");
    let response = server
        .post("/v1/policy/versions")
        .body(failing)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bundle_tests_failed");
    assert_eq!(body["error"]["details"]["tests"][1]["passed"], false);

    // A bundle that would lock the admin out.
    let lockout = APP_BUNDLE.replace(
        "permissions: [{ resource: \"maos:**\"",
        "permissions: [{ resource: \"maos:decisions\"",
    );
    let response = server
        .post("/v1/policy/versions")
        .body(lockout)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "admin_lockout", "{body}");

    // A dry run reports the tests and stores nothing.
    let response = server
        .post("/v1/policy/versions?dry_run=true")
        .body(APP_BUNDLE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["valid"], true);
    assert_eq!(body["tests"].as_array().unwrap().len(), 2);

    assert_eq!(
        versions(&server).await.len(),
        before,
        "refused uploads changed nothing"
    );
    assert!(
        !server
            .decide(request("user:bob", "document:a", "read"))
            .await
    );

    // The real upload takes effect at once.
    let body = server.upload(APP_BUNDLE).await;
    assert_eq!(body["version"]["active"], true);
    assert!(
        server
            .decide(request("user:bob", "document:a", "read"))
            .await
    );
    assert_eq!(versions(&server).await.len(), before + 1);
    server.stop().await;
}

#[tokio::test]
async fn versions_activate_and_roll_back() {
    let server = TestServer::start().await;
    let default_id = versions(&server).await[0]["id"].as_i64().unwrap();
    let app = server.upload(APP_BUNDLE).await;
    let app_id = app["version"]["id"].as_i64().unwrap();
    assert!(
        server
            .decide(request("user:bob", "document:a", "read"))
            .await
    );

    let got: Value = server
        .get(&format!("/v1/policy/versions/{app_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["bundle"]["policies"][0]["id"], "quarantine");

    let activated = server
        .post(&format!("/v1/policy/versions/{default_id}/activate"))
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);
    assert!(
        !server
            .decide(request("user:bob", "document:a", "read"))
            .await
    );

    let rolled: Value = server
        .post("/v1/policy/rollback")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rolled["version"]["id"], app_id);
    assert!(
        server
            .decide(request("user:bob", "document:a", "read"))
            .await
    );

    let missing = server
        .post("/v1/policy/versions/9999/activate")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn roles_bindings_and_policies_are_edited_as_new_versions() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let start = versions(&server).await.len();
    assert!(
        !server
            .decide(request("user:carol", "report:q1", "read"))
            .await
    );

    let role = json!({"permissions": [{"resource": "report:*", "actions": ["read"]}]});
    let response = server
        .put("/v1/policy/roles/analyst")
        .json(&role)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .put("/v1/policy/bindings/user:carol")
        .json(&json!({"roles": ["analyst"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        server
            .decide(request("user:carol", "report:q1", "read"))
            .await
    );
    let role: Value = server
        .get("/v1/policy/roles/analyst")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(role["permissions"][0]["resource"], "report:*");
    let binding: Value = server
        .get("/v1/policy/bindings/user:carol")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(binding["roles"], json!(["analyst"]));

    // A deny policy, then its removal.
    let policy = json!({
        "effect": "deny",
        "target": {"subject": [{"attribute": "subject.id", "operator": "eq", "value": "carol"}]}
    });
    let response = server
        .put("/v1/policy/policies/no-carol")
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(
        !server
            .decide(request("user:carol", "report:q1", "read"))
            .await
    );
    let listed: Value = server
        .get("/v1/policy/policies")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["policies"].as_array().unwrap().len(), 2);
    let response = server
        .delete("/v1/policy/policies/no-carol")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        server
            .decide(request("user:carol", "report:q1", "read"))
            .await
    );

    // Deleting a role still bound is refused by validation and changes nothing.
    let response = server
        .delete("/v1/policy/roles/analyst")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert!(
        server
            .decide(request("user:carol", "report:q1", "read"))
            .await
    );
    let response = server
        .delete("/v1/policy/bindings/user:carol")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .delete("/v1/policy/roles/analyst")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !server
            .decide(request("user:carol", "report:q1", "read"))
            .await
    );

    // A name in the body that contradicts the path is refused.
    let response = server
        .put("/v1/policy/roles/x")
        .json(&json!({"name": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server.get("/v1/policy/roles/ghost").send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = server
        .delete("/v1/policy/policies/ghost")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    assert_eq!(versions(&server).await.len(), start + 6);
    server.stop().await;
}

#[tokio::test]
async fn stored_resource_attributes_win_over_the_request() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let mut claim = request("user:alice", "document:plans/2027", "write");
    claim["resource"]["properties"] = json!({"owner": "alice"});
    assert!(
        server.decide(claim.clone()).await,
        "unregistered: the request's attribute counts"
    );

    let response = server
        .put("/v1/resources/document/plans/2027")
        .json(&json!({"attributes": {"owner": "carol", "classification": "secret"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!server.decide(claim.clone()).await, "the stored owner wins");

    let got: Value = server
        .get("/v1/resources/document/plans/2027")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["attributes"]["owner"], "carol");
    let listed: Value = server
        .get("/v1/resources")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["resources"].as_array().unwrap().len(), 1);

    // Quarantine by attribute: every action denied.
    server
        .put("/v1/resources/document/q")
        .json(&json!({"attributes": {"quarantined": true}}))
        .send()
        .await
        .unwrap();
    assert!(
        !server
            .decide(request("user:bob", "document:q", "read"))
            .await
    );

    let response = server
        .delete("/v1/resources/document/plans/2027")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(server.decide(claim).await);
    let response = server
        .delete("/v1/resources/document/plans/2027")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn batch_explain_and_authzen() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;

    let batch = json!({"requests": [
        request("user:bob", "document:a", "read"),
        request("user:bob", "document:a", "write"),
    ]});
    let body: Value = server
        .post("/v1/authorize/batch")
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decisions: Vec<bool> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_bool().unwrap())
        .collect();
    assert_eq!(decisions, [true, false]);

    let explained: Value = server
        .post("/v1/authorize?explain=true")
        .json(&request("user:bob", "document:a", "read"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(explained["trace"].is_object(), "{explained}");
    assert!(!explained["determining"].as_array().unwrap().is_empty());

    let single: Value = server
        .post("/access/v1/evaluation")
        .json(&request("user:bob", "document:a", "read"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(single["decision"], true);

    let many = json!({
        "subject": {"type": "user", "id": "bob"},
        "action": {"name": "read"},
        "evaluations": [
            {"resource": {"type": "document", "id": "a"}},
            {"resource": {"type": "document", "id": "b"}, "action": {"name": "write"}},
            {"resource": {"type": "document", "id": "c"}}
        ]
    });
    let body: Value = server
        .post("/access/v1/evaluations")
        .json(&many)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decisions: Vec<bool> = body["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_bool().unwrap())
        .collect();
    assert_eq!(decisions, [true, false, true]);

    let mut short = many.clone();
    short["options"] = json!({"evaluations_semantic": "deny_on_first_deny"});
    let body: Value = server
        .post("/access/v1/evaluations")
        .json(&short)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["evaluations"].as_array().unwrap().len(), 2);

    let incomplete = json!({"evaluations": [{"resource": {"type": "document", "id": "a"}}]});
    let response = server
        .post("/access/v1/evaluations")
        .json(&incomplete)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let config: Value = server
        .client
        .get(server.url("/.well-known/authzen-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["access_evaluation_endpoint"],
        format!("{}/access/v1/evaluation", server.base)
    );

    let too_many = json!({"requests": vec![request("user:a", "d:b", "read"); 101]});
    let response = server
        .post("/v1/authorize/batch")
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    server.stop().await;
}

async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn bad_input_gets_4xx_with_the_error_shape() {
    let server = TestServer::start().await;
    let before = versions(&server).await.len();

    let malformed = server
        .post("/v1/authorize")
        .header("content-type", "application/json")
        .body("{\"subject\": ")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 400, "malformed_json").await;

    let mut unknown = request("user:a", "d:b", "read");
    unknown["subject"]["roles"] = json!(["maos-admin"]);
    let response = server
        .post("/v1/authorize")
        .json(&unknown)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_request").await;
    let mut unknown = request("user:a", "d:b", "read");
    unknown["extra"] = json!(1);
    let response = server
        .post("/v1/authorize")
        .json(&unknown)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_request").await;

    let huge = "x".repeat(100 * 1024);
    let response = server
        .post("/v1/authorize")
        .header("content-type", "application/json")
        .body(format!("{{\"pad\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;
    let response = server
        .post("/v1/policy/versions")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;

    let response = server.get("/v1/nothing-here").send().await.unwrap();
    expect_error(response, 404, "not_found").await;
    let response = server
        .client
        .delete(server.url("/v1/authorize"))
        .send()
        .await
        .unwrap();
    expect_error(response, 405, "method_not_allowed").await;
    let response = server.get("/v1/policy/versions/abc").send().await.unwrap();
    expect_error(response, 400, "bad_path").await;
    let response = server.get("/v1/resources?limit=lots").send().await.unwrap();
    expect_error(response, 400, "bad_query").await;
    let response = server
        .post("/v1/authorize")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    let response = server
        .put("/v1/policy/roles/r")
        .json(&json!({"permissions": 3}))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_request").await;
    let response = server
        .post("/v1/policy/versions")
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_encoding").await;
    let response = server
        .post("/v1/policy/versions")
        .body("{not yaml: [")
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "invalid_bundle").await;
    let response = server
        .post("/v1/tokens")
        .json(&json!({"principal": "nobody"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_request").await;

    assert_eq!(
        versions(&server).await.len(),
        before,
        "no bad request changed anything"
    );
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still serving"
    );
    let _ = ADMIN_TOKEN;
    server.stop().await;
}

#[tokio::test]
async fn forward_auth_for_nginx_traefik_and_envoy() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let bob = server.token_for("user:bob", &[]).await;
    let client = &server.client;

    // nginx auth_request
    let allowed = client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", "/docs/reports/q1?x=1")
        .header("x-original-method", "GET")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-maos-subject"], "user:bob");
    let denied = client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", "/docs/reports/q1")
        .header("x-original-method", "PUT")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let anonymous = client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", "/docs/reports/q1")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let unrouted = client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", "/admin")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(unrouted.status(), 403);
    let traversal = client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", "/docs/../admin")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 403);

    // Traefik ForwardAuth
    let allowed = client
        .get(server.url("/v1/forward-auth/traefik"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "docs.example.com")
        .header("x-forwarded-uri", "/docs/a")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-maos-subject-id"], "bob");

    // Envoy ext_authz over HTTP: the original method and path after the prefix.
    let allowed = client
        .get(server.url("/v1/forward-auth/envoy/docs/a"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let denied = client
        .put(server.url("/v1/forward-auth/envoy/docs/a"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_not_believed() {
    let server = TestServer::start_with(|config| {
        config.forward_auth.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let response = server
        .get("/v1/forward-auth/nginx")
        .header("x-original-uri", "/docs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .get("/v1/forward-auth/envoy/docs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn data_and_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let first = maos_server::start(config.clone(), None).await.unwrap();
    let generated = first
        .generated_admin_token
        .clone()
        .expect("a token is generated on first start");
    assert!(generated.starts_with("maos_") && generated.len() > 60);
    let base = format!("http://{}", first.http_addr);
    let client = reqwest::Client::new();
    let uploaded = client
        .post(format!("{base}/v1/policy/versions"))
        .bearer_auth(&generated)
        .body(APP_BUNDLE)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    first.shutdown().await;

    let second = maos_server::start(config, None).await.unwrap();
    assert!(second.generated_admin_token.is_none(), "shown once only");
    let base = format!("http://{}", second.http_addr);
    let decision: Value = client
        .post(format!("{base}/v1/authorize"))
        .bearer_auth(&generated)
        .json(&request("user:bob", "document:a", "read"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        decision["decision"], true,
        "the uploaded bundle is still active"
    );
    second.shutdown().await;
}

#[tokio::test]
async fn bundles_without_the_admin_roles_get_them() {
    let server = TestServer::start().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rbac.yaml");
    let bundle = std::fs::read_to_string(path).unwrap();
    assert!(!bundle.contains("maos-admin"));
    server.upload(&bundle).await;
    let active: Value = server
        .get("/v1/policy")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles = active["bundle"]["roles"].as_array().unwrap();
    assert!(roles.iter().any(|r| r["name"] == "maos-admin"));
    assert!(roles.iter().any(|r| r["name"] == "maos-pep"));
    let tests = active["bundle"]["tests"].as_array().unwrap();
    assert!(!tests.is_empty(), "the example's own tests are kept");
    server.stop().await;
}

/// nginx `auth_request` for `uri`, as bob, with method GET.
async fn nginx_status(server: &TestServer, token: &str, uri: &str) -> u16 {
    server
        .client
        .get(server.url("/v1/forward-auth/nginx"))
        .header("x-original-uri", uri)
        .header("x-original-method", "GET")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn percent_encoded_path_cannot_bypass_deny() {
    let server = TestServer::start().await;
    let bundle = format!(
        "{APP_BUNDLE}acls:\n  - resource: \"document:secret\"\n    entries:\n      - {{ subject: \"user:bob\", actions: [\"*\"], effect: deny }}\n"
    );
    server.upload(&bundle).await;
    let bob = server.token_for("user:bob", &[]).await;

    assert_eq!(nginx_status(&server, &bob, "/docs/public").await, 200);
    assert_eq!(nginx_status(&server, &bob, "/docs/secret").await, 403);
    // Matching uses the decoded path, so an escape neither bypasses a deny nor breaks an allow.
    assert_eq!(nginx_status(&server, &bob, "/docs/%73ecret").await, 403);
    assert_eq!(
        nginx_status(&server, &bob, "/docs/%73ecret?x=1#f").await,
        403
    );
    assert_eq!(
        nginx_status(&server, &bob, "/docs/%70ublic?x=%2f").await,
        200
    );
    for ambiguous in [
        "/docs/%zz",
        "/docs/%4",
        "/docs/secret%00",
        "/docs/secret%0a",
        "/docs/%c0%ae%c0%ae/secret",
        "/docs/secret;x=1",
        "/docs/secret%3bx",
        "/docs/a\\secret",
        "/docs/a%5csecret",
        "/docs//secret",
        "/docs/./secret",
        "/docs/a/%2e%2e/secret",
        "/docs/%252e%252e/secret",
        "/docs/%2573ecret",
        "/docs/a%2fsecret",
        "/docs/a%2Fsecret",
        "/docs/a%ef%bc%8fsecret",
    ] {
        assert_eq!(
            nginx_status(&server, &bob, ambiguous).await,
            403,
            "{ambiguous}"
        );
    }

    let traefik = server
        .client
        .get(server.url("/v1/forward-auth/traefik"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/docs/%73ecret")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(traefik.status(), 403);
    let envoy = server
        .client
        .get(server.url("/v1/forward-auth/envoy/docs/%73ecret"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy.status(), 403);
    let envoy = server
        .client
        .get(server.url("/v1/forward-auth/envoy/docs/%70ublic"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn leftmost_forwarded_for_is_not_trusted() {
    let server = TestServer::start().await;
    let bundle = APP_BUNDLE.replace(
        "policies:\n",
        "policies:\n  - id: blocked-network\n    effect: deny\n    target:\n      environment: [{ attribute: context.ip, operator: exists }]\n    condition: { attribute: context.ip, operator: cidr, value: \"203.0.113.0/24\" }\n",
    );
    server.upload(&bundle).await;
    let bob = server.token_for("user:bob", &[]).await;
    // The test client connects from 127.0.0.1, a trusted proxy by default.
    let status = |forwarded: Vec<(&'static str, &'static str)>| {
        let mut request = server
            .client
            .get(server.url("/v1/forward-auth/nginx"))
            .header("x-original-uri", "/docs/a")
            .header("x-original-method", "GET")
            .bearer_auth(&bob);
        for (name, value) in forwarded {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };

    // The client in the blocked network prepends an address of its choice.
    assert_eq!(
        status(vec![("x-forwarded-for", "198.51.100.7, 203.0.113.9")]).await,
        403
    );
    // Trusted proxies on the right are skipped; every header instance counts, in order.
    assert_eq!(
        status(vec![
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9, 127.0.0.1"),
        ])
        .await,
        403
    );
    // X-Real-IP is not believed over X-Forwarded-For.
    assert_eq!(
        status(vec![
            ("x-real-ip", "198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9"),
        ])
        .await,
        403
    );
    assert_eq!(status(vec![("x-real-ip", "203.0.113.9")]).await, 403);
    // The rightmost untrusted address is the client.
    assert_eq!(
        status(vec![(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 127.0.0.1"
        )])
        .await,
        200
    );
    assert_eq!(status(vec![("x-real-ip", "198.51.100.7")]).await, 200);
    assert_eq!(status(vec![]).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn missing_forwarded_method_is_denied() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let bob = server.token_for("user:bob", &[]).await;
    for (header, uri_header) in [
        ("x-original-method", "x-original-uri"),
        ("x-forwarded-method", "x-forwarded-uri"),
    ] {
        let endpoint = if header == "x-original-method" {
            "/v1/forward-auth/nginx"
        } else {
            "/v1/forward-auth/traefik"
        };
        let missing = server
            .client
            .get(server.url(endpoint))
            .header(uri_header, "/docs/a")
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 403, "{endpoint} without {header}");
        for method in ["", "get", "Get", "G ET"] {
            let response = server
                .client
                .get(server.url(endpoint))
                .header(uri_header, "/docs/a")
                .header(header, method)
                .bearer_auth(&bob)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{endpoint} {header}: {method:?}");
        }
        let allowed = server
            .client
            .get(server.url(endpoint))
            .header(uri_header, "/docs/a")
            .header(header, "GET")
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{endpoint}");
    }
    server.stop().await;
}

#[tokio::test]
async fn envoy_empty_path_is_forbidden() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let bob = server.token_for("user:bob", &[]).await;
    for path in ["/v1/forward-auth/envoy/", "/v1/forward-auth/envoy"] {
        let response = server
            .client
            .get(server.url(path))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    server.stop().await;
}

/// A client that sends headers and then trickles its body held the connection forever.
#[tokio::test]
async fn slow_request_body_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(|config| config.server.body_timeout_seconds = 1).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/authorize HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server still holds the connection after 10 s"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    server.stop().await;
}

/// A client that never finished its request header held the connection forever, and SIGTERM
/// waited the whole grace period for it.
#[tokio::test]
async fn slow_request_header_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(|config| {
        config.server.header_timeout_seconds = 1;
        config.server.shutdown_grace_seconds = 30;
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nX-Partial: ").as_bytes())
        .await
        .unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server still holds a connection with an unfinished header after 10 s"
    );

    // A second unfinished header is open while the server stops: the stop does not wait for
    // the 30 s grace period.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the unfinished header");
}
