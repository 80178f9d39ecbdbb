//! Starting real servers for the integration tests.

#![allow(dead_code)]

use maos_server::config::RouteConfig;
use maos_server::{Config, RunningServer};
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "maos_test_admin_token_0123456789abcdef";

/// A bundle used by several tests: the admin roles, an editor/reader pair, a quarantine policy.
pub const APP_BUNDLE: &str = r#"
version: 1
roles:
  - name: maos-admin
    permissions: [{ resource: "maos:**", actions: ["*"] }]
  - name: maos-pep
    permissions: [{ resource: "maos:decisions", actions: ["query"] }]
  - name: reader
    permissions:
      - { resource: "document:**", actions: ["read"] }
  - name: editor
    inherits: ["reader"]
    permissions:
      - resource: "document:**"
        actions: ["write"]
        conditions:
          - { attribute: resource.properties.owner, operator: eq, value: alice }
bindings:
  - { subject: "user:admin", roles: ["maos-admin"] }
  - { subject: "user:alice", roles: ["editor"] }
  - { subject: "user:bob", roles: ["reader"] }
policies:
  - id: quarantine
    effect: deny
    target:
      resource: [{ attribute: resource.properties.quarantined, operator: exists }]
    condition: { attribute: resource.properties.quarantined, operator: eq, value: true }
tests:
  - name: bob reads documents
    request: { subject: { type: user, id: bob }, resource: { type: document, id: a }, action: { name: read } }
    expect: allow
  - name: bob does not write
    request: { subject: { type: user, id: bob }, resource: { type: document, id: a }, action: { name: write } }
    expect: deny
"#;

pub fn routes() -> Vec<RouteConfig> {
    toml::from_str::<toml::Table>(
        r#"
[[r]]
method = "GET"
path = "/docs/{*path}"
resource = "document:{path}"
action = "read"
[[r]]
method = "PUT"
path = "/docs/{*path}"
resource = "document:{path}"
action = "write"
"#,
    )
    .unwrap()
    .remove("r")
    .unwrap()
    .try_into()
    .unwrap()
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.to_path_buf();
    config.server.max_body_bytes = 64 * 1024;
    config.server.shutdown_grace_seconds = 2;
    config.server.max_batch = 100;
    config.forward_auth.routes = routes();
    config
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let server = maos_server::start(config, Some(ADMIN_TOKEN.into()))
            .await
            .unwrap();
        let base = format!("http://{}", server.http_addr);
        TestServer {
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    /// Uploads a bundle and expects it to become active.
    pub async fn upload(&self, bundle: &str) -> Value {
        let response = self
            .post("/v1/policy/versions")
            .body(bundle.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Creates an API token for `principal` and returns it.
    pub async fn token_for(&self, principal: &str, roles: &[&str]) -> String {
        let response = self
            .post("/v1/tokens")
            .json(&serde_json::json!({"principal": principal, "roles": roles}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn decide(&self, request: Value) -> bool {
        let response = self
            .post("/v1/authorize")
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["decision"].as_bool().unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

pub fn request(subject: &str, resource: &str, action: &str) -> Value {
    let (st, si) = subject.split_once(':').unwrap();
    let (rt, ri) = resource.split_once(':').unwrap();
    serde_json::json!({
        "subject": {"type": st, "id": si},
        "resource": {"type": rt, "id": ri},
        "action": {"name": action},
    })
}
