//! The store's test suite, run once on SQLite (a temporary file) and once on PostgreSQL
//! (`MAOS_TEST_POSTGRES_URL`, a fresh schema per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use std::time::Duration;

use maos_store::testing::{PostgresTestSchema, TestDatabaseError, postgres_required};
use maos_store::{
    Change, NewApiToken, NewPolicyVersion, Store, StoreError, StoreOptions, hash_token,
};
use serde_json::{Map, json};

on_both!(
    a_new_store_is_empty,
    versions_are_stored_and_activated_atomically,
    rollback_undoes_activations_in_order,
    stale_read_modify_write_is_refused,
    activating_an_unknown_version_changes_nothing,
    resources_round_trip_and_page,
    tokens_are_stored_hashed_and_revocable,
    changes_are_announced_after_commit,
    blocklist_entries_expire_and_are_replaced,
);

fn bundle(n: u32) -> String {
    json!({"version": 1, "roles": [{"name": format!("r{n}"), "permissions": []}]}).to_string()
}

fn new_version(n: u32, activate: bool) -> NewPolicyVersion {
    NewPolicyVersion {
        author: "user:admin".into(),
        comment: format!("v{n}"),
        source: bundle(n),
        activate,
        expected_active: None,
    }
}

async fn a_new_store_is_empty(store: Store) {
    assert!(store.policy_versions().active().await.unwrap().is_none());
    assert!(store.policy_versions().list().await.unwrap().is_empty());
    assert!(store.api_tokens().list().await.unwrap().is_empty());
    store.ping().await.unwrap();
}

async fn versions_are_stored_and_activated_atomically(store: Store) {
    let versions = store.policy_versions();
    let v1 = versions.create(new_version(1, true)).await.unwrap();
    let v2 = versions.create(new_version(2, false)).await.unwrap();
    assert!(v2.summary.id > v1.summary.id);

    let active = versions.active().await.unwrap().unwrap();
    assert_eq!(active.summary.id, v1.summary.id);
    assert_eq!(active.source, bundle(1));

    versions
        .activate(v2.summary.id, "user:admin")
        .await
        .unwrap();
    let listed = versions.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, v2.summary.id, "newest first");
    assert_eq!(
        listed.iter().filter(|v| v.active).count(),
        1,
        "exactly one active"
    );
    assert!(listed[0].active);
    assert_eq!(
        versions.get(v1.summary.id).await.unwrap().unwrap().source,
        bundle(1)
    );
    assert!(versions.get(9999).await.unwrap().is_none());
}

async fn rollback_undoes_activations_in_order(store: Store) {
    let versions = store.policy_versions();
    assert!(matches!(
        versions.rollback("a").await,
        Err(StoreError::NothingToRollBack)
    ));

    let v1 = versions
        .create(new_version(1, true))
        .await
        .unwrap()
        .summary
        .id;
    let v2 = versions
        .create(new_version(2, true))
        .await
        .unwrap()
        .summary
        .id;
    let v3 = versions
        .create(new_version(3, true))
        .await
        .unwrap()
        .summary
        .id;
    versions.activate(v1, "a").await.unwrap();

    // Undo stack: v1 (re-activated) -> v3 -> v2 -> v1 -> nothing.
    assert_eq!(versions.rollback("a").await.unwrap().summary.id, v3);
    assert_eq!(versions.rollback("a").await.unwrap().summary.id, v2);
    assert_eq!(versions.rollback("a").await.unwrap().summary.id, v1);
    assert!(matches!(
        versions.rollback("a").await,
        Err(StoreError::NothingToRollBack)
    ));
    assert_eq!(versions.active().await.unwrap().unwrap().summary.id, v1);
}

async fn stale_read_modify_write_is_refused(store: Store) {
    let versions = store.policy_versions();
    let mut first = new_version(1, true);
    first.expected_active = Some(None);
    let v1 = versions.create(first).await.unwrap().summary.id;

    let mut stale = new_version(2, true);
    stale.expected_active = Some(None);
    let refused = versions.create(stale).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        versions.list().await.unwrap().len(),
        1,
        "refused change stored nothing"
    );

    let mut fresh = new_version(2, true);
    fresh.expected_active = Some(Some(v1));
    versions.create(fresh).await.unwrap();
    assert_eq!(versions.list().await.unwrap().len(), 2);
}

async fn activating_an_unknown_version_changes_nothing(store: Store) {
    let versions = store.policy_versions();
    let v1 = versions
        .create(new_version(1, true))
        .await
        .unwrap()
        .summary
        .id;
    let missing = versions.activate(v1 + 100, "a").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(versions.active().await.unwrap().unwrap().summary.id, v1);
}

async fn resources_round_trip_and_page(store: Store) {
    let resources = store.resources();
    let mut attributes = Map::new();
    attributes.insert("owner".into(), json!("alice"));
    attributes.insert("classification".into(), json!({"level": 3}));
    resources
        .put("document", "design/api", &attributes)
        .await
        .unwrap();
    let got = resources
        .get("document", "design/api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.attributes, attributes);

    attributes.insert("quarantined".into(), json!(true));
    resources
        .put("document", "design/api", &attributes)
        .await
        .unwrap();
    assert_eq!(
        resources
            .get("document", "design/api")
            .await
            .unwrap()
            .unwrap()
            .attributes["quarantined"],
        json!(true)
    );

    for i in 0..5 {
        resources
            .put("file", &format!("f{i}"), &Map::new())
            .await
            .unwrap();
    }
    let page1 = resources.list(None, 4).await.unwrap();
    assert_eq!(page1.len(), 4);
    assert_eq!(
        (page1[0].kind.as_str(), page1[0].id.as_str()),
        ("document", "design/api")
    );
    let last = page1.last().unwrap();
    let page2 = resources
        .list(Some((&last.kind, &last.id)), 4)
        .await
        .unwrap();
    let ids: Vec<_> = page2.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["f3", "f4"]);
    assert_eq!(resources.all().await.unwrap().len(), 6);

    assert!(resources.delete("file", "f0").await.unwrap());
    assert!(!resources.delete("file", "f0").await.unwrap());
    assert!(resources.get("file", "f0").await.unwrap().is_none());
}

async fn tokens_are_stored_hashed_and_revocable(store: Store) {
    let tokens = store.api_tokens();
    let secret = "maos_0123456789abcdef";
    let hash = hash_token(secret);
    assert_eq!(hash.len(), 64);
    assert_ne!(hash, secret);
    let new = NewApiToken {
        id: "t1".into(),
        principal: "agent:builder".into(),
        roles: vec!["maos-pep".into()],
        description: "ci".into(),
        token_hash: hash.clone(),
        expires_at: None,
    };
    tokens.create(new.clone()).await.unwrap();
    let duplicate = tokens.create(new.clone()).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );

    let found = tokens.find_by_hash(&hash).await.unwrap().unwrap();
    assert_eq!(found.principal, "agent:builder");
    assert_eq!(found.roles, ["maos-pep"]);
    assert!(found.is_valid_at(0));
    assert!(
        tokens
            .find_by_hash(&hash_token("other"))
            .await
            .unwrap()
            .is_none()
    );

    assert!(tokens.revoke("t1").await.unwrap());
    assert!(!tokens.revoke("t1").await.unwrap());
    assert!(!tokens.get("t1").await.unwrap().unwrap().is_valid_at(0));

    // The bootstrap token is replaced in place, and un-revoked.
    let mut boot = new.clone();
    boot.id = "bootstrap".into();
    boot.token_hash = hash_token("one");
    tokens.upsert(boot.clone()).await.unwrap();
    boot.token_hash = hash_token("two");
    tokens.upsert(boot).await.unwrap();
    assert!(
        tokens
            .find_by_hash(&hash_token("one"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        tokens
            .find_by_hash(&hash_token("two"))
            .await
            .unwrap()
            .unwrap()
            .id,
        "bootstrap"
    );
    assert_eq!(tokens.list().await.unwrap().len(), 2);
}

async fn blocklist_entries_expire_and_are_replaced(store: Store) {
    let blocklist = store.blocklist();
    let mut changes = store.subscribe();
    blocklist
        .put("192.0.2.0/24", 100, "scanner", "system")
        .await
        .unwrap();
    assert_eq!(next_change(&mut changes).await, Change::Blocklist);
    blocklist
        .put("2001:db8::/64", 50, "flood", "user:admin")
        .await
        .unwrap();
    // The same network again replaces its entry.
    blocklist
        .put("192.0.2.0/24", 200, "scanner again", "system")
        .await
        .unwrap();
    let live = blocklist.live(60).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].until, live[0].reason.as_str()),
        (200, "scanner again")
    );
    assert_eq!(blocklist.live(0).await.unwrap().len(), 2);
    assert_eq!(blocklist.purge_expired(60).await.unwrap(), 1);
    assert!(blocklist.remove("192.0.2.0/24").await.unwrap());
    assert!(!blocklist.remove("192.0.2.0/24").await.unwrap());
    assert!(blocklist.live(0).await.unwrap().is_empty());
}

async fn next_change(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("change announced within 2 s")
        .unwrap()
}

async fn changes_are_announced_after_commit(store: Store) {
    let mut rx = store.subscribe();
    store
        .policy_versions()
        .create(new_version(1, true))
        .await
        .unwrap();
    assert_eq!(next_change(&mut rx).await, Change::Policy);

    store
        .resources()
        .put("document", "a/b", &Map::new())
        .await
        .unwrap();
    assert_eq!(
        next_change(&mut rx).await,
        Change::Resource {
            kind: "document".into(),
            id: "a/b".into()
        }
    );

    // A refused change announces nothing.
    let mut stale = new_version(2, true);
    stale.expected_active = Some(None);
    assert!(store.policy_versions().create(stale).await.is_err());
    store.api_tokens().revoke("none").await.unwrap();
    assert_eq!(
        next_change(&mut rx).await,
        Change::Tokens,
        "the refused change was announced"
    );
}

/// Two stores on one PostgreSQL schema stand for two nodes: a change on one is heard by the
/// other.
#[tokio::test]
async fn postgres_changes_reach_other_nodes() {
    let schema = match PostgresTestSchema::create().await {
        Ok(schema) => schema,
        Err(TestDatabaseError::NotConfigured) if !postgres_required() => {
            eprintln!("skipping PostgreSQL store test: MAOS_TEST_POSTGRES_URL is not set");
            return;
        }
        Err(e) => panic!("PostgreSQL store tests need a database (CI=true): {e}"),
    };
    let a = Store::open(&schema.url, &StoreOptions::default())
        .await
        .unwrap();
    let b = Store::open(&schema.url, &StoreOptions::default())
        .await
        .unwrap();
    let mut heard = b.subscribe();
    let started = std::time::Instant::now();
    a.policy_versions()
        .create(new_version(1, true))
        .await
        .unwrap();
    assert_eq!(next_change(&mut heard).await, Change::Policy);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        b.policy_versions().active().await.unwrap().unwrap().source,
        bundle(1)
    );
    a.close().await;
    b.close().await;
    drop((a, b));
    schema.drop_schema().await.unwrap();
}
