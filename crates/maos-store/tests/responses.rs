//! The response-action repository, run once on SQLite (a temporary file) and once on
//! PostgreSQL (`MAOS_TEST_POSTGRES_URL`, a fresh schema per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use std::time::Duration;

use maos_store::{Change, ResponseActionRow, Store, StoreError};

on_both!(
    one_action_is_active_per_kind_and_target,
    only_the_first_writer_ends_an_action,
    history_counts_and_pages,
);

fn row(id: &str, target: &str, state: &str, created_at: i64) -> ResponseActionRow {
    ResponseActionRow {
        id: id.into(),
        action: "block_ip".into(),
        target: target.into(),
        state: state.into(),
        created_at,
        expires_at: created_at + 1000,
        ended_at: None,
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

async fn one_action_is_active_per_kind_and_target(store: Store) {
    let actions = store.response_actions();
    let mut changes = store.subscribe();
    actions
        .insert(&row("a1", "192.0.2.1/32", "active", 10))
        .await
        .unwrap();
    let change = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change, Change::Responses);

    let second = actions
        .insert(&row("a2", "192.0.2.1/32", "active", 11))
        .await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    // Another target, another kind, or a row not active: no conflict.
    actions
        .insert(&row("a3", "192.0.2.2/32", "active", 12))
        .await
        .unwrap();
    actions
        .insert(&row("a4", "192.0.2.1/32", "dry_run", 13))
        .await
        .unwrap();
    let mut other_kind = row("a5", "192.0.2.1/32", "active", 14);
    other_kind.action = "increase_monitoring".into();
    actions.insert(&other_kind).await.unwrap();

    let found = actions
        .active_for("block_ip", "192.0.2.1/32")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "a1");
    assert_eq!(found.body, "{\"id\":\"a1\"}");
    assert_eq!(actions.active().await.unwrap().len(), 3);
    assert!(actions.get("missing").await.unwrap().is_none());
}

async fn only_the_first_writer_ends_an_action(store: Store) {
    let actions = store.response_actions();
    actions
        .insert(&row("b1", "198.51.100.0/24", "active", 10))
        .await
        .unwrap();
    let mut ended = row("b1", "198.51.100.0/24", "expired", 10);
    ended.ended_at = Some(1010);
    assert!(actions.update(&ended, "active").await.unwrap());
    let mut undone = ended.clone();
    undone.state = "undone".into();
    assert!(!actions.update(&undone, "active").await.unwrap());
    let stored = actions.get("b1").await.unwrap().unwrap();
    assert_eq!(
        (stored.state.as_str(), stored.ended_at),
        ("expired", Some(1010))
    );
    // Once ended, the target is free for a new action.
    actions
        .insert(&row("b2", "198.51.100.0/24", "active", 2000))
        .await
        .unwrap();
}

async fn history_counts_and_pages(store: Store) {
    let actions = store.response_actions();
    for (i, state) in ["expired", "undone", "expired", "active"]
        .iter()
        .enumerate()
    {
        let at = 100 * i64::try_from(i).unwrap();
        actions
            .insert(&row(&format!("c{i}"), "203.0.113.5/32", state, at))
            .await
            .unwrap();
    }
    let counted =
        |since| actions.count_since("block_ip", "203.0.113.5/32", since, &["active", "expired"]);
    assert_eq!(counted(0).await.unwrap(), 3);
    assert_eq!(counted(150).await.unwrap(), 2);
    assert_eq!(
        actions
            .count_since("block_ip", "203.0.113.6/32", 0, &["expired"])
            .await
            .unwrap(),
        0
    );
    let page = actions.list(2, None).await.unwrap();
    let ids: Vec<_> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c3", "c2"]);
    let next = actions.list(2, Some(page[1].created_at)).await.unwrap();
    let ids: Vec<_> = next.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c0"]);
}
