//! Real nginx with `auth_request` in front of a small upstream, asking this server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::Duration;

use common::{APP_BUNDLE, TestServer};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const NGINX: &str = "/usr/sbin/nginx";

/// The nginx process, killed when the test ends.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An upstream that answers every request with its path.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let subject = request
                            .headers()
                            .get("x-maos-subject")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned();
                        let body = format!(
                            "upstream {} {} as {subject}",
                            request.method(),
                            request.uri().path()
                        );
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    },
                );
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nginx(dir: &std::path::Path, port: u16, maos: SocketAddr, upstream: SocketAddr) -> Nginx {
    let prefix = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_maos;
            auth_request_set $maos_subject $upstream_http_x_maos_subject;
            proxy_set_header X-Maos-Subject $maos_subject;
            proxy_pass http://{upstream};
        }}
        location = /_maos {{
            internal;
            proxy_pass http://{maos}/v1/forward-auth/nginx;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(NGINX)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {NGINX} (.ci/setup installs nginx): {e}"));
    Nginx(child)
}

#[tokio::test]
async fn nginx_auth_request_allows_and_denies_through_maos() {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "{NGINX} is missing; .ci/setup installs Debian's nginx"
    );
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let bob = server.token_for("user:bob", &[]).await;

    let upstream = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nginx = start_nginx(
        dir.path(),
        port,
        server.server.as_ref().unwrap().http_addr,
        upstream,
    );

    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    // Wait for nginx to listen.
    let mut ready = false;
    for _ in 0..100 {
        if client.get(url("/docs/x")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = || std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(ready, "nginx did not start: {}", log());

    // Allowed: bob reads a document; the upstream sees the identity header from MAOS.
    let allowed = client
        .get(url("/docs/reports/q1"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200, "{}", log());
    assert_eq!(
        allowed.text().await.unwrap(),
        "upstream GET /docs/reports/q1 as user:bob"
    );

    // Denied: bob may not write.
    let denied = client
        .put(url("/docs/reports/q1"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);

    // Unauthenticated: 401 from nginx.
    let anonymous = client.get(url("/docs/reports/q1")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}
