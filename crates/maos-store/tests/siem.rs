//! The SIEM's events and alerts, run once on SQLite (a temporary file) and once on PostgreSQL
//! (`MAOS_TEST_POSTGRES_URL`, a fresh schema per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use maos_store::{AlertQuery, AlertRow, EventQuery, EventRow, Store};

on_both!(
    events_are_stored_once_and_found_by_every_filter,
    events_page_by_cursor_and_time_range,
    retention_deletes_events_and_alerts_by_age,
    alerts_update_in_place_and_keep_their_acknowledgement,
);

fn event(n: u32, ip: &str, user: Option<&str>, severity: i64) -> EventRow {
    EventRow {
        id: format!("ev-{n}"),
        time: 1_800_000_000_000_000 + i64::from(n) * 1_000_000,
        source: if n.is_multiple_of(2) {
            "identity"
        } else {
            "sshd"
        }
        .into(),
        event_type: "authentication_failure".into(),
        severity,
        principal: user.map(str::to_owned),
        source_address: Some(ip.to_owned()),
        resource: Some(format!("/v1/login/{n}")),
        correlation_id: Some(format!("corr-{ip}")),
        body: format!(r#"{{"id":"ev-{n}","details":{{"note":"try 100%_{n}"}}}}"#),
    }
}

fn ids(found: &[maos_store::StoredEvent]) -> Vec<String> {
    found
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.body).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn events_are_stored_once_and_found_by_every_filter(store: Store) {
    let events = store.siem_events();
    let batch: Vec<EventRow> = (0..10)
        .map(|n: u32| {
            let ip = if n < 6 { "192.0.2.7" } else { "2001:db8::1" };
            let user = n.is_multiple_of(3).then_some("user:alice");
            event(n, ip, user, i64::from(n % 5))
        })
        .collect();
    assert_eq!(events.insert(&batch, 1000).await.unwrap(), 10);
    // The same ids again: nothing new.
    assert_eq!(events.insert(&batch[..3], 1000).await.unwrap(), 0);
    assert_eq!(events.count().await.unwrap(), 10);

    let query = |f: fn(&mut EventQuery)| {
        let mut q = EventQuery {
            limit: 100,
            ..EventQuery::default()
        };
        f(&mut q);
        q
    };
    let found = events
        .search(&query(|q| q.source_address = Some("2001:db8::1".into())))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-6", "ev-7", "ev-8", "ev-9"]);
    let found = events
        .search(&query(|q| q.principal = Some("user:alice".into())))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-0", "ev-3", "ev-6", "ev-9"]);
    let found = events
        .search(&query(|q| q.min_severity = Some(4)))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-4", "ev-9"]);
    let found = events
        .search(&query(|q| q.source = Some("sshd".into())))
        .await
        .unwrap();
    assert_eq!(found.len(), 5);
    let found = events
        .search(&query(|q| q.resource = Some("/v1/login/2".into())))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-2"]);
    let found = events
        .search(&query(|q| q.correlation_id = Some("corr-192.0.2.7".into())))
        .await
        .unwrap();
    assert_eq!(found.len(), 6);
    let found = events
        .search(&query(|q| {
            q.event_type = Some("authentication_success".into())
        }))
        .await
        .unwrap();
    assert!(found.is_empty());
    // Free text: `%` and `_` are literal.
    let found = events
        .search(&query(|q| q.text = Some("100%_7".into())))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-7"]);
    let found = events
        .search(&query(|q| q.text = Some("100%%".into())))
        .await
        .unwrap();
    assert!(found.is_empty());

    let found = events
        .by_ids(&["ev-8".into(), "ev-1".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-1", "ev-8"]);
}

async fn events_page_by_cursor_and_time_range(store: Store) {
    let events = store.siem_events();
    let batch: Vec<EventRow> = (0..1200).map(|n| event(n, "192.0.2.1", None, 2)).collect();
    assert_eq!(events.insert(&batch, 1).await.unwrap(), 1200);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = events
            .search(&EventQuery {
                after_seq: after,
                limit: 500,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| e.seq);
        seen.extend(ids(&page));
    }
    assert_eq!(seen.len(), 1200);
    assert_eq!(seen[0], "ev-0");
    assert_eq!(seen[1199], "ev-1199");

    let base = 1_800_000_000_000_000;
    let found = events
        .search(&EventQuery {
            since: Some(base + 10_000_000),
            until: Some(base + 13_000_000),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&found), ["ev-10", "ev-11", "ev-12"]);
}

fn alert(id: &str, hits: i64, last_seen: i64) -> AlertRow {
    AlertRow {
        id: id.into(),
        rule_id: "rule-1".into(),
        severity: 3,
        first_seen: 1,
        last_seen,
        hits,
        source_address: Some("192.0.2.7".into()),
        principal: None,
        resource: None,
        correlation_id: Some("corr-1".into()),
        body: format!(r#"{{"id":"{id}","count":{hits}}}"#),
    }
}

async fn retention_deletes_events_and_alerts_by_age(store: Store) {
    let events = store.siem_events();
    events
        .insert(&[event(1, "192.0.2.1", None, 1)], 1_000)
        .await
        .unwrap();
    events
        .insert(&[event(2, "192.0.2.1", None, 1)], 5_000)
        .await
        .unwrap();
    assert_eq!(events.delete_received_before(5_000).await.unwrap(), 1);
    assert_eq!(events.count().await.unwrap(), 1);

    let alerts = store.siem_alerts();
    alerts
        .upsert(&[alert("a-old", 1, 10)], 1_000)
        .await
        .unwrap();
    alerts
        .upsert(&[alert("a-new", 1, 10)], 9_000)
        .await
        .unwrap();
    assert_eq!(alerts.delete_updated_before(5_000).await.unwrap(), 1);
    assert!(alerts.get("a-old").await.unwrap().is_none());
    assert!(alerts.get("a-new").await.unwrap().is_some());
}

async fn alerts_update_in_place_and_keep_their_acknowledgement(store: Store) {
    let alerts = store.siem_alerts();
    alerts
        .upsert(&[alert("a1", 1, 100), alert("a2", 1, 100)], 1)
        .await
        .unwrap();
    assert!(alerts.acknowledge("a1", "user:admin", 42).await.unwrap());
    assert!(!alerts.acknowledge("nope", "user:admin", 42).await.unwrap());
    alerts.upsert(&[alert("a1", 5, 900)], 2).await.unwrap();

    let a1 = alerts.get("a1").await.unwrap().unwrap();
    assert_eq!(a1.status, "acknowledged");
    assert_eq!(a1.acknowledged_by.as_deref(), Some("user:admin"));
    assert_eq!(a1.acknowledged_at, Some(42));
    assert!(a1.body.contains(r#""count":5"#), "{}", a1.body);

    let open = alerts
        .search(&AlertQuery {
            status: Some("open".into()),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert!(open[0].body.contains("a2"));
    let recent = alerts
        .search(&AlertQuery {
            since: Some(500),
            min_severity: Some(3),
            source_address: Some("192.0.2.7".into()),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert!(recent[0].body.contains("a1"));
}
