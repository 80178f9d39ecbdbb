//! What every store suite shares: a test runs once on SQLite (a temporary file) and once on
//! PostgreSQL (`MAOS_TEST_POSTGRES_URL`, a fresh schema per test).

use std::future::Future;

use maos_store::testing::{PostgresTestSchema, TestDatabaseError, postgres_required};
use maos_store::{Store, StoreOptions};

pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("maos.db").display());
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    test(store.clone()).await;
    store.close().await;
}

pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = match PostgresTestSchema::create().await {
        Ok(schema) => schema,
        Err(TestDatabaseError::NotConfigured) if !postgres_required() => {
            eprintln!("skipping a PostgreSQL store test: MAOS_TEST_POSTGRES_URL is not set");
            return;
        }
        Err(e) => panic!("PostgreSQL store tests need a database (CI=true): {e}"),
    };
    let store = Store::open(&schema.url, &StoreOptions::default())
        .await
        .unwrap();
    test(store.clone()).await;
    store.close().await;
    drop(store);
    schema.drop_schema().await.unwrap();
}

/// Declares each test once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { $crate::common::on_sqlite(super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { $crate::common::on_postgres(super::$name).await })*
        }
    };
}
