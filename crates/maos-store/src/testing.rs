//! Helpers for tests that need a database of their own (used by this crate's and the server's
//! test suites).

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "MAOS_TEST_POSTGRES_URL";

/// Why there is no PostgreSQL database for a test.
#[derive(Debug, thiserror::Error)]
pub enum TestDatabaseError {
    #[error("{POSTGRES_URL_VAR} is not set")]
    NotConfigured,
    #[error("cannot prepare a test schema on {url}: {source}")]
    Setup { url: String, source: sqlx::Error },
}

/// A fresh, empty schema on the test PostgreSQL server, and a URL whose connections use it.
#[derive(Debug)]
pub struct PostgresTestSchema {
    pub url: String,
    pub schema: String,
    base_url: String,
}

impl PostgresTestSchema {
    /// Creates a schema with a name unique to this process and call, so parallel tests and
    /// reruns never share tables.
    pub async fn create() -> Result<PostgresTestSchema, TestDatabaseError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base_url =
            std::env::var(POSTGRES_URL_VAR).map_err(|_| TestDatabaseError::NotConfigured)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let schema = format!(
            "maos_t_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let setup = |source| TestDatabaseError::Setup {
            url: crate::redact_url(&base_url),
            source,
        };

        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&base_url)
            .await
            .map_err(setup)?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .map_err(setup)?;
        conn.close().await.map_err(setup)?;

        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options[search_path]={schema}");
        Ok(PostgresTestSchema {
            url,
            schema,
            base_url,
        })
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) -> Result<(), TestDatabaseError> {
        let setup = |source| TestDatabaseError::Setup {
            url: crate::redact_url(&self.base_url),
            source,
        };
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.base_url)
            .await
            .map_err(setup)?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&mut conn)
        .await
        .map_err(setup)?;
        conn.close().await.map_err(setup)?;
        Ok(())
    }
}

/// Whether PostgreSQL tests must run: under CI a missing database is a failure, elsewhere the
/// tests print a notice and pass.
pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
