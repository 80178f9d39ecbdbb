//! Persistence for MAOS Security.
//!
//! One [`Store`] per process, over one of two backends: SQLite (the embedded default, one file in
//! the data directory) or PostgreSQL (several server nodes on one database). The same SQL runs on
//! both; where the dialects differ the migrations live in one folder per backend
//! (`migrations/sqlite`, `migrations/postgres`) and are embedded in the binary and applied at
//! start.
//!
//! Every change is also announced as a [`Change`]: on PostgreSQL with `NOTIFY` inside the
//! changing transaction (so it is delivered only when the change is committed, to every node
//! listening), on SQLite through an in-process broadcast after the commit. Subscribers keep their
//! in-memory copies (the compiled policy, resource attributes, tokens) fresh from these.
//!
//! Adding a table: add `NNNN_name.sql` to both migration folders with the next number and a
//! line to [`migrations`]; never edit a migration that has shipped.

mod audit;
mod audit_writer;
mod blocklist;
mod change;
mod error;
mod identity;
mod keys;
mod policy;
mod resources;
mod responses;
mod secrets;
mod siem;
pub mod testing;
mod tokens;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use audit::{AuditAppend, AuditLog, AuditQuery, status_name};
pub use audit_writer::{AuditWriteError, AuditWriter, AuditWriterOptions, Receipt};
pub use blocklist::{BlockRecord, Blocklist};
pub use change::Change;
pub use error::StoreError;
pub use identity::{ApiKeyRow, Identities, PrincipalRow, SigningKeyRow, TotpRow};
pub use keys::{KeyRecords, StoredKeyRecord};
pub use policy::{NewPolicyVersion, PolicyVersion, PolicyVersionSummary, PolicyVersions};
pub use resources::{ResourceRecord, Resources};
pub use responses::{ResponseActionRow, ResponseActions};
pub use secrets::{RewrapItem, RewrapJob, RewrapJobState, RewrapOutcome, SecretVersion, Secrets};
pub use siem::{
    AlertQuery, AlertRow, EventQuery, EventRow, SiemAlerts, SiemEvents, StoredAlert, StoredEvent,
};
pub use tokens::{ApiToken, ApiTokens, NewApiToken, hash_token};

/// How many changes a slow subscriber may fall behind before it is told to resynchronise.
const CHANGE_BUFFER: usize = 1024;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Upper bound on pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection (and, on SQLite, for a busy database).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres { pool: PgPool, channel: String },
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    changes: broadcast::Sender<Change>,
    listener: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
        }
    }
}

/// The handle to persistent state. Cheap to clone; all clones share one pool.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Runs `$body` with `$pool` bound to the backend's pool, once per backend, so that the same
/// SQL text is written once and type-checked against both drivers.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.backend() {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres { pool: $pool, .. } => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs `$body` inside a write transaction bound to `$tx`, once per backend, then commits and
/// announces `$change`. On SQLite the transaction takes the write lock up front (`BEGIN
/// IMMEDIATE`) so that two writers queue instead of failing half-way; on PostgreSQL the change
/// is announced with `pg_notify` inside the transaction, so listeners hear of it only on commit.
macro_rules! write_tx {
    ($store:expr, $change:expr, $tx:ident => $body:expr) => {{
        let change: $crate::Change = $change;
        match $store.backend() {
            $crate::Backend::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let value = $body;
                $tx.commit().await?;
                $store.announce_local(change);
                value
            }
            $crate::Backend::Postgres { pool, channel } => {
                let mut $tx = pool.begin().await?;
                let value = $body;
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel.as_str())
                    .bind(change.to_payload())
                    .execute(&mut *$tx)
                    .await?;
                $tx.commit().await?;
                value
            }
        }
    }};
}
pub(crate) use write_tx;

impl Store {
    /// Opens the database named by `url` (`sqlite://PATH` or `postgres://...`), creating a
    /// SQLite file if missing, applies pending migrations, and on PostgreSQL starts listening for
    /// changes made by other nodes before returning, so no change made after `open` is missed.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);

        let (backend, listener) = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))?
                .create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(options.acquire_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            migrations(BackendKind::Sqlite).run(&pool).await?;
            (Backend::Sqlite(pool), None)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact_url(url))))?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            migrations(BackendKind::Postgres).run(&pool).await?;

            // NOTIFY channels are per database while our tables are per schema: name the channel
            // after the schema so that stores in different schemas of one database stay apart.
            let schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&pool)
                .await?;
            let channel = change::channel_for_schema(&schema);

            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            let task = tokio::spawn(change::forward_notifications(listener, changes.clone()));
            (Backend::Postgres { pool, channel }, Some(task))
        } else {
            return Err(StoreError::InvalidUrl(format!(
                "`{}` is neither a sqlite: nor a postgres: URL",
                redact_url(url)
            )));
        };

        tracing::debug!(backend = backend_kind(&backend).as_str(), "store.opened");
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                changes,
                listener,
            }),
        })
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    pub fn kind(&self) -> BackendKind {
        backend_kind(&self.inner.backend)
    }

    /// Changes made from now on, by this process or (on PostgreSQL) any other node.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// Announces a change to in-process subscribers (SQLite; PostgreSQL delivers its own).
    pub(crate) fn announce_local(&self, change: Change) {
        // No subscriber is not an error: nobody caches anything yet.
        let _ = self.inner.changes.send(change);
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn policy_versions(&self) -> PolicyVersions<'_> {
        PolicyVersions::new(self)
    }

    pub fn resources(&self) -> Resources<'_> {
        Resources::new(self)
    }

    pub fn api_tokens(&self) -> ApiTokens<'_> {
        ApiTokens::new(self)
    }

    pub fn audit_log(&self) -> AuditLog<'_> {
        AuditLog::new(self)
    }

    pub fn identities(&self) -> Identities<'_> {
        Identities::new(self)
    }

    pub fn key_records(&self) -> KeyRecords<'_> {
        KeyRecords::new(self)
    }

    pub fn secrets(&self) -> Secrets<'_> {
        Secrets::new(self)
    }

    /// The gateway's dynamic blocklist.
    pub fn blocklist(&self) -> Blocklist<'_> {
        Blocklist::new(self)
    }

    /// The SIEM's security events.
    pub fn siem_events(&self) -> SiemEvents<'_> {
        SiemEvents::new(self)
    }

    /// The SIEM's alerts.
    pub fn siem_alerts(&self) -> SiemAlerts<'_> {
        SiemAlerts::new(self)
    }

    /// Automated response actions, active and past.
    pub fn response_actions(&self) -> ResponseActions<'_> {
        ResponseActions::new(self)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        // The listener holds a pooled connection until it stops.
        if let Some(task) = &self.inner.listener {
            task.abort();
        }
        match self.backend() {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres { pool, .. } => pool.close().await,
        }
    }
}

fn backend_kind(backend: &Backend) -> BackendKind {
    match backend {
        Backend::Sqlite(_) => BackendKind::Sqlite,
        Backend::Postgres { .. } => BackendKind::Postgres,
    }
}

/// The embedded migrations of one backend.
pub fn migrations(kind: BackendKind) -> Migrator {
    let files: &[(i64, &str, &'static str)] = match kind {
        BackendKind::Sqlite => &[
            (
                1,
                "policy resources tokens",
                include_str!("../migrations/sqlite/0001_policy_resources_tokens.sql"),
            ),
            (
                2,
                "audit",
                include_str!("../migrations/sqlite/0002_audit.sql"),
            ),
            (
                3,
                "keys secrets",
                include_str!("../migrations/sqlite/0003_keys_secrets.sql"),
            ),
            (
                4,
                "identity",
                include_str!("../migrations/sqlite/0004_identity.sql"),
            ),
            (
                6,
                "gateway blocklist",
                include_str!("../migrations/sqlite/0006_gateway_blocklist.sql"),
            ),
            (
                7,
                "siem",
                include_str!("../migrations/sqlite/0007_siem.sql"),
            ),
            (
                8,
                "response",
                include_str!("../migrations/sqlite/0008_response.sql"),
            ),
        ],
        BackendKind::Postgres => &[
            (
                1,
                "policy resources tokens",
                include_str!("../migrations/postgres/0001_policy_resources_tokens.sql"),
            ),
            (
                2,
                "audit",
                include_str!("../migrations/postgres/0002_audit.sql"),
            ),
            (
                3,
                "keys secrets",
                include_str!("../migrations/postgres/0003_keys_secrets.sql"),
            ),
            (
                4,
                "identity",
                include_str!("../migrations/postgres/0004_identity.sql"),
            ),
            (
                6,
                "gateway blocklist",
                include_str!("../migrations/postgres/0006_gateway_blocklist.sql"),
            ),
            (
                7,
                "siem",
                include_str!("../migrations/postgres/0007_siem.sql"),
            ),
            (
                8,
                "response",
                include_str!("../migrations/postgres/0008_response.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Milliseconds since the Unix epoch, the one time format stored by both backends.
pub(crate) fn now_millis() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// The URL without its password, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = url.get(scheme_end + 3..at).unwrap_or_default();
            match credentials.split_once(':') {
                Some((user, _)) => format!(
                    "{}{user}:[redacted]{}",
                    url.get(..scheme_end + 3).unwrap_or_default(),
                    url.get(at..).unwrap_or_default()
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:[redacted]@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let sqlite: Vec<i64> = migrations(BackendKind::Sqlite)
            .iter()
            .map(|m| m.version)
            .collect();
        let pg: Vec<i64> = migrations(BackendKind::Postgres)
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(sqlite, pg);
    }
}
