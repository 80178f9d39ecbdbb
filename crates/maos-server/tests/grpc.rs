//! Envoy ext_authz over gRPC, called with a tonic client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;

use common::{APP_BUNDLE, TestServer};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};

fn check(method: &str, path: &str, token: Option<&str>) -> CheckRequest {
    let mut headers = HashMap::new();
    if let Some(token) = token {
        headers.insert("authorization".to_owned(), format!("Bearer {token}"));
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    host: "docs.example.com".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn ext_authz_check_allows_denies_and_challenges() {
    let server = TestServer::start_with(|config| {
        config.grpc.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    server.upload(APP_BUNDLE).await;
    let bob = server.token_for("user:bob", &[]).await;
    let grpc = server.server.as_ref().unwrap().grpc_addr.unwrap();
    let mut client = AuthorizationClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();

    let allowed = client
        .check(check("GET", "/docs/a?x=1", Some(&bob)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(allowed.status.as_ref().unwrap().code, 0);
    let Some(HttpResponse::OkResponse(ok)) = allowed.http_response else {
        panic!("{allowed:?}")
    };
    let subject = ok
        .headers
        .iter()
        .find_map(|h| h.header.as_ref().filter(|h| h.key == "x-maos-subject"));
    assert_eq!(subject.unwrap().value, "user:bob");

    let denied = client
        .check(check("PUT", "/docs/a", Some(&bob)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(denied.status.as_ref().unwrap().code, 7, "PERMISSION_DENIED");
    let Some(HttpResponse::DeniedResponse(denied)) = denied.http_response else {
        panic!()
    };
    assert_eq!(denied.status.unwrap().code, 403);

    let anonymous = client
        .check(check("GET", "/docs/a", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        anonymous.status.as_ref().unwrap().code,
        16,
        "UNAUTHENTICATED"
    );
    let Some(HttpResponse::DeniedResponse(denied)) = anonymous.http_response else {
        panic!()
    };
    assert_eq!(denied.status.unwrap().code, 401);
    assert!(denied.headers.iter().any(|h| {
        h.header
            .as_ref()
            .is_some_and(|h| h.key == "www-authenticate")
    }));

    let malformed = client.check(CheckRequest::default()).await;
    assert_eq!(malformed.unwrap_err().code(), tonic::Code::InvalidArgument);
    server.stop().await;
}
