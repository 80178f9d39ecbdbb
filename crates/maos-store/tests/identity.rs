//! The identity repository, run once on SQLite (a temporary file) and once on PostgreSQL
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

use maos_store::{ApiKeyRow, Change, SigningKeyRow, Store, StoreError, TotpRow};
use serde_json::{Map, json};

on_both!(
    principals_round_trip_and_announce,
    passwords_and_totp_are_stored_per_principal,
    totp_steps_and_recovery_codes_are_used_once,
    api_keys_are_created_rotated_and_listed,
    a_new_signing_key_replaces_the_active_one,
    refresh_families_update_in_one_order,
    revocations_outlive_nothing,
    deleting_a_principal_removes_its_credentials,
);

async fn next_change(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no change announced")
        .unwrap()
}

fn attributes() -> Map<String, serde_json::Value> {
    json!({"department": "finance", "clearance": "secret"})
        .as_object()
        .unwrap()
        .clone()
}

async fn principals_round_trip_and_announce(store: Store) {
    let ids = store.identities();
    let mut rx = store.subscribe();
    let roles = vec!["reader".to_owned()];
    let created = ids
        .create_principal("user:alice", "active", &attributes(), &roles)
        .await
        .unwrap();
    assert_eq!(next_change(&mut rx).await, Change::Principals);
    assert_eq!(ids.principal("user:alice").await.unwrap(), Some(created));
    assert!(matches!(
        ids.create_principal("user:alice", "active", &Map::new(), &[])
            .await,
        Err(StoreError::Conflict(_))
    ));

    ids.update_principal("user:alice", "disabled", &Map::new(), &["writer".into()])
        .await
        .unwrap();
    let alice = ids.principal("user:alice").await.unwrap().unwrap();
    assert_eq!(alice.status, "disabled");
    assert_eq!(alice.roles, ["writer"]);
    assert!(alice.attributes.is_empty());
    assert!(matches!(
        ids.update_principal("user:nobody", "active", &Map::new(), &[])
            .await,
        Err(StoreError::NotFound { .. })
    ));

    ids.create_principal("agent:etl", "active", &Map::new(), &[])
        .await
        .unwrap();
    let listed: Vec<String> = ids
        .principals()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, ["agent:etl", "user:alice"]);
}

fn totp_row(principal: &str) -> TotpRow {
    TotpRow {
        principal: principal.into(),
        sealed_secret: "c2VhbGVk".into(),
        config: r#"{"algorithm":"sha1","digits":6,"period":30,"skew":1}"#.into(),
        confirmed: true,
        last_used_step: None,
        recovery_hashes: vec!["h1".into(), "h2".into()],
    }
}

async fn passwords_and_totp_are_stored_per_principal(store: Store) {
    let ids = store.identities();
    ids.create_principal("user:bob", "active", &Map::new(), &[])
        .await
        .unwrap();
    assert_eq!(ids.password_hash("user:bob").await.unwrap(), None);
    ids.set_password_hash("user:bob", "$argon2id$one")
        .await
        .unwrap();
    ids.set_password_hash("user:bob", "$argon2id$two")
        .await
        .unwrap();
    assert_eq!(
        ids.password_hash("user:bob").await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    assert!(matches!(
        ids.set_password_hash("user:nobody", "$argon2id$x").await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(ids.totp("user:bob").await.unwrap(), None);
    let mut row = totp_row("user:bob");
    row.confirmed = false;
    ids.put_totp(&row).await.unwrap();
    assert_eq!(ids.totp("user:bob").await.unwrap(), Some(row.clone()));
    row.confirmed = true;
    ids.put_totp(&row).await.unwrap();
    assert!(ids.totp("user:bob").await.unwrap().unwrap().confirmed);
    assert!(ids.delete_totp("user:bob").await.unwrap());
    assert!(!ids.delete_totp("user:bob").await.unwrap());
}

async fn totp_steps_and_recovery_codes_are_used_once(store: Store) {
    let ids = store.identities();
    ids.create_principal("user:carol", "active", &Map::new(), &[])
        .await
        .unwrap();
    ids.put_totp(&totp_row("user:carol")).await.unwrap();

    // Two logins that both read "never used" and matched step 100: only one records it.
    assert!(ids.use_totp_step("user:carol", None, 100).await.unwrap());
    assert!(!ids.use_totp_step("user:carol", None, 100).await.unwrap());
    assert!(
        !ids.use_totp_step("user:carol", Some(99), 101)
            .await
            .unwrap()
    );
    assert!(
        ids.use_totp_step("user:carol", Some(100), 101)
            .await
            .unwrap()
    );
    assert_eq!(
        ids.totp("user:carol")
            .await
            .unwrap()
            .unwrap()
            .last_used_step,
        Some(101)
    );

    let before = vec!["h1".to_owned(), "h2".to_owned()];
    let after = vec!["h2".to_owned()];
    assert!(
        ids.replace_recovery_hashes("user:carol", &before, &after)
            .await
            .unwrap()
    );
    // The same code redeemed concurrently: the stored list no longer matches.
    assert!(
        !ids.replace_recovery_hashes("user:carol", &before, &after)
            .await
            .unwrap()
    );
    assert_eq!(
        ids.totp("user:carol")
            .await
            .unwrap()
            .unwrap()
            .recovery_hashes,
        after
    );
}

fn key(id: &str, principal: &str, record: &str) -> ApiKeyRow {
    ApiKeyRow {
        id: id.into(),
        principal: principal.into(),
        record: record.into(),
    }
}

async fn api_keys_are_created_rotated_and_listed(store: Store) {
    let ids = store.identities();
    ids.create_principal("agent:etl", "active", &Map::new(), &[])
        .await
        .unwrap();
    ids.create_principal("agent:other", "active", &Map::new(), &[])
        .await
        .unwrap();
    let mut rx = store.subscribe();
    ids.create_api_key(&key("k1", "agent:etl", "{\"v\":1}"))
        .await
        .unwrap();
    // On PostgreSQL the principals' announcements may still be on their way: skip them.
    let mut change = next_change(&mut rx).await;
    while change == Change::Principals {
        change = next_change(&mut rx).await;
    }
    assert_eq!(change, Change::ApiKeys);
    assert!(matches!(
        ids.create_api_key(&key("k1", "agent:etl", "{}")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        ids.create_api_key(&key("k9", "agent:nobody", "{}")).await,
        Err(StoreError::NotFound { .. })
    ));
    ids.create_api_key(&key("k3", "agent:other", "{}"))
        .await
        .unwrap();

    ids.rotate_api_key(
        &key("k1", "agent:etl", "{\"v\":2}"),
        &key("k2", "agent:etl", "{\"v\":3}"),
    )
    .await
    .unwrap();
    assert_eq!(
        ids.api_key("k1").await.unwrap().unwrap().record,
        "{\"v\":2}"
    );
    let of_etl: Vec<String> = ids
        .api_keys(Some("agent:etl"))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(of_etl.len(), 2);
    assert!(of_etl.contains(&"k1".to_owned()) && of_etl.contains(&"k2".to_owned()));
    assert_eq!(ids.api_keys(None).await.unwrap().len(), 3);

    // A rotation of a key that does not exist stores nothing, not even the new key.
    assert!(
        ids.rotate_api_key(&key("kx", "agent:etl", "{}"), &key("ky", "agent:etl", "{}"))
            .await
            .is_err()
    );
    assert_eq!(ids.api_key("ky").await.unwrap(), None);

    ids.update_api_key(&key("k3", "agent:other", "{\"revoked\":true}"))
        .await
        .unwrap();
    assert!(matches!(
        ids.update_api_key(&key("k3", "agent:etl", "{}")).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn a_new_signing_key_replaces_the_active_one(store: Store) {
    let ids = store.identities();
    let row = |kid: &str, at: i64| SigningKeyRow {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        sealed_private: "wrapped".into(),
        created_at: at,
        replaced_at: None,
    };
    ids.add_signing_key(&row("a", 1000)).await.unwrap();
    ids.add_signing_key(&row("b", 2000)).await.unwrap();
    let keys = ids.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].replaced_at),
        ("a", Some(2000))
    );
    assert_eq!((keys[1].kid.as_str(), keys[1].replaced_at), ("b", None));

    assert_eq!(ids.retire_signing_keys(2000).await.unwrap(), 0);
    assert_eq!(ids.retire_signing_keys(2001).await.unwrap(), 1);
    let keys = ids.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "the active key is never retired");
    assert_eq!(keys[0].kid, "b");
}

async fn refresh_families_update_in_one_order(store: Store) {
    let ids = store.identities();
    let first = ids
        .update_refresh_families(|stored| {
            assert_eq!(stored, None);
            ("1".to_owned(), "first")
        })
        .await
        .unwrap();
    assert_eq!(first, "first");

    // Concurrent updates each see the previous one's result: no update is lost.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .identities()
                .update_refresh_families(|stored| {
                    let n: u32 = stored.unwrap().parse().unwrap();
                    ((n + 1).to_string(), ())
                })
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = ids
        .update_refresh_families(|stored| (stored.clone().unwrap(), stored))
        .await
        .unwrap();
    assert_eq!(last.as_deref(), Some("9"));
}

async fn revocations_outlive_nothing(store: Store) {
    let ids = store.identities();
    let mut rx = store.subscribe();
    ids.revoke_token("j1", 100).await.unwrap();
    assert_eq!(next_change(&mut rx).await, Change::Revocations);
    ids.revoke_token("j1", 100).await.unwrap();
    ids.revoke_token("j2", 200).await.unwrap();
    assert_eq!(
        ids.revocations(150).await.unwrap(),
        [("j2".to_owned(), 200)]
    );
    assert_eq!(ids.revocations(0).await.unwrap().len(), 2);
    assert_eq!(ids.purge_revocations(150).await.unwrap(), 1);
    assert_eq!(ids.revocations(0).await.unwrap().len(), 1);
}

async fn deleting_a_principal_removes_its_credentials(store: Store) {
    let ids = store.identities();
    ids.create_principal("agent:gone", "active", &Map::new(), &[])
        .await
        .unwrap();
    ids.set_password_hash("agent:gone", "$argon2id$x")
        .await
        .unwrap();
    ids.put_totp(&totp_row("agent:gone")).await.unwrap();
    ids.create_api_key(&key("kg", "agent:gone", "{}"))
        .await
        .unwrap();
    assert!(ids.delete_principal("agent:gone").await.unwrap());
    assert!(!ids.delete_principal("agent:gone").await.unwrap());
    assert_eq!(ids.principal("agent:gone").await.unwrap(), None);
    assert_eq!(ids.password_hash("agent:gone").await.unwrap(), None);
    assert_eq!(ids.totp("agent:gone").await.unwrap(), None);
    assert_eq!(ids.api_key("kg").await.unwrap(), None);
}
