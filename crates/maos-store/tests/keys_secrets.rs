//! The key records and secrets repositories, run once on SQLite (a temporary file) and once on
//! PostgreSQL (`MAOS_TEST_POSTGRES_URL`, a fresh schema per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use maos_store::{RewrapJobState, RewrapOutcome, SecretVersion, Store, StoreError};

on_both!(
    key_records_are_revisioned,
    key_service_settings_keep_the_first_value,
    secrets_have_versions,
    rewrap_job_commits_chunks_and_resumes,
    rewrap_chunk_is_all_or_nothing,
    only_one_rewrap_job_runs,
);

async fn key_records_are_revisioned(store: Store) {
    let keys = store.key_records();
    assert!(keys.list().await.unwrap().is_empty());
    assert!(keys.get("payments").await.unwrap().is_none());

    keys.save("payments", 1, "{\"v\":1}", "mac1").await.unwrap();
    let again = keys.save("payments", 1, "{\"v\":1}", "mac1").await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    keys.save("payments", 2, "{\"v\":2}", "mac2").await.unwrap();
    // A writer that read revision 1 and now stores revision 2 lost the race.
    let stale = keys.save("payments", 2, "{\"v\":\"stale\"}", "macx").await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    // Skipping a revision is refused as well.
    let skipped = keys.save("payments", 5, "{}", "m").await;
    assert!(
        matches!(skipped, Err(StoreError::Conflict(_))),
        "{skipped:?}"
    );

    let stored = keys.get("payments").await.unwrap().unwrap();
    assert_eq!(stored.revision, 2);
    assert_eq!(stored.record, "{\"v\":2}");
    assert_eq!(stored.mac, "mac2");

    keys.save("audit", 1, "{}", "m").await.unwrap();
    let names: Vec<String> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["audit", "payments"]);
}

async fn key_service_settings_keep_the_first_value(store: Store) {
    let keys = store.key_records();
    assert!(keys.setting("record_mac_key").await.unwrap().is_none());
    let first = keys.setting_or_insert("record_mac_key", "A").await.unwrap();
    let second = keys.setting_or_insert("record_mac_key", "B").await.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("A", "A"));
    assert_eq!(keys.setting("record_mac_key").await.unwrap().unwrap(), "A");
}

fn secret(path: &str, version: i64, key_version: i64) -> SecretVersion {
    SecretVersion {
        path: path.into(),
        version,
        key_name: "maos-secrets".into(),
        key_version,
        ciphertext: format!("maos:v{key_version}:{path}-{version}"),
        created_at: 1,
    }
}

async fn secrets_have_versions(store: Store) {
    let secrets = store.secrets();
    assert_eq!(secrets.next_version("app/db").await.unwrap(), 1);
    secrets.insert(&secret("app/db", 1, 1)).await.unwrap();
    let taken = secrets.insert(&secret("app/db", 1, 1)).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(secrets.next_version("app/db").await.unwrap(), 2);
    secrets.insert(&secret("app/db", 2, 1)).await.unwrap();
    secrets.insert(&secret("app/other", 1, 1)).await.unwrap();

    assert_eq!(
        secrets.get("app/db", None).await.unwrap().unwrap().version,
        2
    );
    assert_eq!(
        secrets.get("app/db", Some(1)).await.unwrap().unwrap(),
        secret("app/db", 1, 1)
    );
    assert!(secrets.get("app/db", Some(3)).await.unwrap().is_none());
    assert!(secrets.get("app", None).await.unwrap().is_none());
    assert_eq!(secrets.versions("app/db").await.unwrap(), [1, 2]);

    assert_eq!(secrets.delete("app/db", Some(1)).await.unwrap(), 1);
    assert_eq!(secrets.delete("app/db", Some(1)).await.unwrap(), 0);
    assert_eq!(secrets.versions("app/db").await.unwrap(), [2]);
    assert_eq!(secrets.delete("app/db", None).await.unwrap(), 1);
    assert!(secrets.get("app/db", None).await.unwrap().is_none());
    assert_eq!(secrets.versions("app/other").await.unwrap(), [1]);
}

/// Re-encrypts like the key service would: key version 1 to 2, failing paths with `bad`.
fn rewrap(items: Vec<SecretVersion>) -> Vec<(SecretVersion, RewrapOutcome)> {
    items
        .into_iter()
        .map(|secret| {
            let outcome = if secret.path.contains("bad") {
                RewrapOutcome::Failed {
                    reason: "decryption failed".into(),
                }
            } else if secret.key_version >= 2 {
                RewrapOutcome::Current
            } else {
                RewrapOutcome::Rewrapped {
                    ciphertext: format!("maos:v2:{}-{}", secret.path, secret.version),
                    to_version: 2,
                }
            };
            (secret, outcome)
        })
        .collect()
}

async fn rewrap_job_commits_chunks_and_resumes(store: Store) {
    let secrets = store.secrets();
    for (path, version, key_version) in [
        ("a", 1, 1),
        ("a", 2, 1),
        ("b/bad", 1, 1),
        ("c", 1, 2),
        ("d", 1, 1),
    ] {
        secrets
            .insert(&secret(path, version, key_version))
            .await
            .unwrap();
    }
    let job = secrets.start_rewrap_job("maos-secrets", 2).await.unwrap();
    assert_eq!(
        (job.total, job.done, job.state),
        (5, 0, RewrapJobState::Running)
    );

    // First chunk: two items; then "the process stops".
    let chunk = secrets.next_rewrap_items(&job, 2).await.unwrap();
    let job = secrets
        .commit_rewrap_chunk(job.id, &rewrap(chunk))
        .await
        .unwrap();
    assert_eq!((job.done, job.failed), (2, 0));
    assert_eq!(job.cursor_path.as_deref(), Some("a"));
    assert_eq!(job.cursor_version, Some(2));

    // A secret deleted between reading and committing is reported, not resurrected.
    let resumed = secrets.latest_job().await.unwrap().unwrap();
    assert_eq!(resumed, job);
    let chunk = secrets.next_rewrap_items(&resumed, 10).await.unwrap();
    let paths: Vec<&str> = chunk.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["b/bad", "c", "d"], "resumes after the cursor");
    secrets.delete("d", None).await.unwrap();
    let job = secrets
        .commit_rewrap_chunk(job.id, &rewrap(chunk))
        .await
        .unwrap();
    assert_eq!((job.done, job.failed), (5, 1));
    assert!(
        secrets
            .next_rewrap_items(&job, 10)
            .await
            .unwrap()
            .is_empty()
    );
    secrets.finish_rewrap_job(job.id).await.unwrap();
    let job = secrets.job(job.id).await.unwrap().unwrap();
    assert_eq!(job.state, RewrapJobState::Done);
    assert!(job.finished_at.is_some());

    assert_eq!(
        secrets.get("a", Some(1)).await.unwrap().unwrap().ciphertext,
        "maos:v2:a-1"
    );
    assert_eq!(
        secrets
            .get("a", Some(2))
            .await
            .unwrap()
            .unwrap()
            .key_version,
        2
    );
    assert_eq!(
        secrets
            .get("b/bad", None)
            .await
            .unwrap()
            .unwrap()
            .ciphertext,
        "maos:v1:b/bad-1",
        "a failed item keeps its ciphertext"
    );
    assert!(secrets.get("d", None).await.unwrap().is_none());

    let results = secrets.rewrap_results(job.id).await.unwrap();
    let summary: Vec<(&str, i64, &RewrapOutcome)> = results
        .iter()
        .map(|r| (r.path.as_str(), r.version, &r.outcome))
        .collect();
    assert_eq!(summary.len(), 5);
    assert!(matches!(
        summary[0],
        ("a", 1, RewrapOutcome::Rewrapped { to_version: 2, .. })
    ));
    assert!(
        matches!(summary[2], ("b/bad", 1, RewrapOutcome::Failed { reason }) if reason == "decryption failed")
    );
    assert!(matches!(summary[3], ("c", 1, RewrapOutcome::Current)));
    assert!(matches!(summary[4], ("d", 1, RewrapOutcome::Gone)));
}

async fn rewrap_chunk_is_all_or_nothing(store: Store) {
    let secrets = store.secrets();
    secrets.insert(&secret("x", 1, 1)).await.unwrap();
    secrets.insert(&secret("y", 1, 1)).await.unwrap();
    let job = secrets.start_rewrap_job("maos-secrets", 2).await.unwrap();
    let chunk = secrets.next_rewrap_items(&job, 1).await.unwrap();
    secrets
        .commit_rewrap_chunk(job.id, &rewrap(chunk.clone()))
        .await
        .unwrap();

    // Committing an item twice (two workers on one job) fails as a whole: the second
    // worker's new ciphertext for `y` is not stored and the cursor does not move.
    let mut twice = chunk;
    twice.insert(0, secret("y", 1, 1));
    twice.swap(0, 1);
    let doubled = secrets.commit_rewrap_chunk(job.id, &rewrap(twice)).await;
    assert!(doubled.is_err(), "{doubled:?}");
    let job = secrets.job(job.id).await.unwrap().unwrap();
    assert_eq!((job.done, job.cursor_path.as_deref()), (1, Some("x")));
    assert_eq!(
        secrets.get("y", None).await.unwrap().unwrap().key_version,
        1
    );
}

async fn only_one_rewrap_job_runs(store: Store) {
    let secrets = store.secrets();
    let first = secrets.start_rewrap_job("maos-secrets", 2).await.unwrap();
    let second = secrets.start_rewrap_job("maos-secrets", 3).await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    secrets.finish_rewrap_job(first.id).await.unwrap();
    let third = secrets.start_rewrap_job("maos-secrets", 3).await.unwrap();
    assert!(third.id > first.id);
    assert_eq!(secrets.latest_job().await.unwrap().unwrap().id, third.id);
}
