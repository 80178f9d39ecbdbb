//! The server's audit records over real HTTP and a real SQLite file: what decisions and admin
//! changes record, failing closed when the log cannot be written, and `GET /v1/audit`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{APP_BUNDLE, TestServer, request};
use maos_store::AuditQuery;
use serde_json::{Value, json};
use sqlx::Connection;

/// Stored records matching `filters` (`key=value&...` of actor, action, resource, request_id).
async fn records(server: &TestServer, filters: &str) -> Vec<Value> {
    let mut query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    for pair in filters.split('&') {
        let (key, value) = pair.split_once('=').unwrap();
        let value = Some(value.to_owned());
        match key {
            "actor" => query.actor = value,
            "action" => query.action = value,
            "resource" => query.resource = value,
            "request_id" => query.request_id = value,
            "limit" => {}
            other => panic!("no filter {other}"),
        }
    }
    let state = &server.server.as_ref().unwrap().state;
    let found = state.store.audit_log().query(&query).await.unwrap();
    found
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// Runs SQL on the server's database file from a connection of its own.
async fn sql(server: &TestServer, statement: &str) {
    let url = format!("sqlite://{}", server.dir.path().join("maos.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn every_decision_is_recorded_before_it_is_answered() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;

    let response = server
        .post("/v1/authorize")
        .header("x-request-id", "req-single")
        .json(&request("user:bob", "document:a", "write"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let found = records(&server, "request_id=req-single").await;
    assert_eq!(found.len(), 1);
    let record = &found[0];
    assert_eq!(record["action"], "authz.decide");
    assert_eq!(record["actor"], "user:admin");
    assert_eq!(record["resource"], "document:a");
    assert_eq!(record["result"]["status"], "denied");
    assert_eq!(record["details"]["subject"], "user:bob");
    assert_eq!(record["details"]["action"], "write");
    assert_eq!(record["details"]["api"], "authorize");

    // A batch: one record per item, adjacent in the chain.
    let response = server
        .post("/v1/authorize/batch")
        .header("x-request-id", "req-batch")
        .json(&json!({"requests": [
            request("user:bob", "document:a", "read"),
            request("user:bob", "document:b", "write"),
            request("user:alice", "document:c", "read"),
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let batch = records(&server, "request_id=req-batch").await;
    let seqs: Vec<u64> = batch.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(seqs[1], seqs[0] + 1);
    assert_eq!(seqs[2], seqs[0] + 2);
    let results: Vec<&str> = batch
        .iter()
        .map(|r| r["result"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["success", "denied", "success"]);
    assert_eq!(batch[1]["details"]["index"], 1);

    // AuthZEN: the single form and the batch form stopping at the first deny.
    let response = server
        .post("/access/v1/evaluation")
        .header("x-request-id", "req-authzen")
        .json(&request("user:alice", "document:a", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .post("/access/v1/evaluations")
        .header("x-request-id", "req-authzen-batch")
        .json(&json!({
            "subject": {"type": "user", "id": "bob"},
            "action": {"name": "write"},
            "evaluations": [
                {"resource": {"type": "document", "id": "x"}},
                {"resource": {"type": "document", "id": "y"}},
            ],
            "options": {"evaluations_semantic": "deny_on_first_deny"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(records(&server, "request_id=req-authzen").await.len(), 1);
    let authzen = records(&server, "request_id=req-authzen-batch").await;
    assert_eq!(authzen.len(), 1, "only the evaluation made is recorded");
    assert_eq!(authzen[0]["details"]["api"], "authzen.evaluations");
    server.stop().await;
}

#[tokio::test]
async fn forward_auth_decisions_are_recorded_with_hashed_bad_credentials() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let bob = server.token_for("user:bob", &[]).await;

    let ask = |token: &str| {
        server
            .client
            .get(server.url("/v1/forward-auth/nginx"))
            .header("x-original-uri", "/docs/plan?secret=1")
            .header("x-original-method", "GET")
            .bearer_auth(token)
            .send()
    };
    assert_eq!(ask(&bob).await.unwrap().status(), 200);
    assert_eq!(ask("not-a-real-token").await.unwrap().status(), 401);

    let found = records(&server, "action=authz.forward").await;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["actor"], "user:bob");
    assert_eq!(found[0]["resource"], "document:plan");
    assert_eq!(found[0]["details"]["path"], "/docs/plan", "no query string");
    assert_eq!(found[1]["actor"], "anonymous:-");
    assert_eq!(found[1]["result"]["status"], "denied");
    let credential = found[1]["details"]["credential"].as_str().unwrap();
    assert!(maos_audit::is_redacted(credential), "{credential}");
    let text = serde_json::to_string(&found).unwrap();
    assert!(!text.contains("not-a-real-token"));
    assert!(!text.contains(&bob));
    server.stop().await;
}

#[tokio::test]
async fn admin_changes_are_recorded_and_tokens_only_as_their_hmac() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let token = server.token_for("service:pep", &["maos-pep"]).await;
    let response = server
        .put("/v1/policy/roles/auditor")
        .json(&json!({"permissions": [{"resource": "maos:audit", "actions": ["read"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .put("/v1/policy/roles/broken")
        .json(&json!({"permissions": [], "inherits": ["no-such-role"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);

    let publish = records(&server, "action=policy.publish").await;
    assert_eq!(publish.len(), 1);
    assert_eq!(publish[0]["actor"], "user:admin");

    let created = records(&server, "action=token.create").await;
    assert_eq!(created.len(), 1);
    let form = created[0]["details"]["token"].as_str().unwrap();
    assert!(maos_audit::is_redacted(form));
    let all = serde_json::to_string(&records(&server, "limit=1000").await).unwrap();
    assert!(!all.contains(&token), "a token is in the log in plaintext");
    assert!(!all.contains(common::ADMIN_TOKEN));

    // The redaction key in the data directory reproduces the form (`maos audit hash`).
    let key = std::fs::read(server.dir.path().join("audit-redaction.key")).unwrap();
    let redactor =
        maos_audit::AuditRedactor::new(&maos_audit::RedactionKey::from_bytes(&key).unwrap());
    assert_eq!(form, redactor.redact(&token));

    // A change that fails after its record was written is followed by a failure record.
    let broken = records(&server, "resource=role:broken").await;
    let results: Vec<&str> = broken
        .iter()
        .map(|r| r["result"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["success", "failure"]);
    assert_eq!(records(&server, "action=policy.*").await.len(), 4);
    server.stop().await;
}

#[tokio::test]
async fn operations_are_refused_with_503_while_the_log_cannot_be_written() {
    let server = TestServer::start().await;
    // Make the audit table refuse writes, as a read-only or failing database would.
    sql(
        &server,
        "CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_records \
         BEGIN SELECT RAISE(ABORT, 'audit table is read-only'); END",
    )
    .await;

    let response = server
        .post("/v1/authorize")
        .json(&request("user:admin", "maos:policy", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable");

    // An admin change is refused before it is applied: the token does not exist.
    let response = server
        .post("/v1/tokens")
        .json(&json!({"principal": "service:ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let tokens: Value = server
        .get("/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!tokens.to_string().contains("service:ghost"), "{tokens}");

    // Once the log can be written again, so can everything else.
    sql(&server, "DROP TRIGGER audit_read_only").await;
    assert!(
        server
            .decide(request("user:admin", "maos:policy", "read"))
            .await
    );
    server.stop().await;
}

#[tokio::test]
async fn a_closed_database_refuses_decisions() {
    let server = TestServer::start().await;
    server.server.as_ref().unwrap().state.store.close().await;
    let response = server
        .post("/v1/authorize")
        .json(&request("user:admin", "maos:policy", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable");
}

/// Records through `GET /v1/audit?{query}`.
async fn api_records(server: &TestServer, query: &str) -> Vec<Value> {
    let response = server
        .get(&format!("/v1/audit?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["records"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_query_api_filters_pages_and_is_protected() {
    let records = api_records;
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    for n in 0..5 {
        let subject = if n % 2 == 0 { "user:bob" } else { "user:alice" };
        server
            .post("/v1/authorize")
            .header("x-request-id", format!("q-{n}"))
            .json(&request(subject, &format!("document:q{n}"), "write"))
            .send()
            .await
            .unwrap();
    }

    let decisions = records(&server, "action=authz.decide").await;
    assert_eq!(decisions.len(), 5);
    let denied = records(&server, "action=authz.decide&result=denied").await;
    assert_eq!(denied.len(), 5, "nobody owns these documents");
    assert_eq!(
        records(&server, "resource=document:q3").await[0]["request_id"],
        "q-3"
    );
    assert_eq!(records(&server, "actor=system").await.len(), 0);

    // Time window around the decisions.
    let first = decisions[0]["time"].as_str().unwrap();
    let after_all = "9999-01-01T00:00:00.000Z";
    assert_eq!(
        records(
            &server,
            &format!("action=authz.decide&since={first}&until={after_all}")
        )
        .await
        .len(),
        5
    );
    assert!(
        records(&server, &format!("action=authz.decide&until={first}"))
            .await
            .is_empty()
    );

    // Paging with `next`.
    let page: Value = server
        .get("/v1/audit?action=authz.decide&limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    let next = page["next"].as_u64().unwrap();
    assert_eq!(next, decisions[1]["seq"].as_u64().unwrap());
    let rest = records(&server, &format!("action=authz.decide&after={next}")).await;
    assert_eq!(rest.len(), 3);
    let last: Value = server
        .get(&format!("/v1/audit?action=authz.decide&after={next}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["next"], Value::Null);

    // Malformed filters are 400s naming the filter.
    for bad in [
        "since=yesterday",
        "result=maybe",
        "limit=0",
        "actor=Bob",
        "action=policy",
        "colour=red",
    ] {
        let response = server
            .get(&format!("/v1/audit?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_query", "{bad}");
    }

    // Reading the log takes `read` on `maos:audit`.
    let pep = server.token_for("service:pep", &["maos-pep"]).await;
    let response = server
        .client
        .get(server.url("/v1/audit"))
        .bearer_auth(&pep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .client
        .get(server.url("/v1/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Documented in OpenAPI.
    let doc: Value = server
        .client
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/audit"]["get"].is_object());
    server.stop().await;
}
