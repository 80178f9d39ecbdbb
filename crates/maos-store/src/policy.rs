//! Policy bundle versions and which one is active.
//!
//! A version is immutable once stored: its source is the bundle as JSON. Activations are
//! recorded in order; activating pushes, rolling back marks the latest activation undone and
//! re-activates the version of the one before it.

use serde::Serialize;
use sqlx::Row;

use crate::{Change, Store, StoreError, now_millis, with_pool, write_tx};

/// A stored bundle version without its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyVersionSummary {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub author: String,
    pub comment: String,
    pub active: bool,
}

/// A stored bundle version with its source (the bundle as JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    pub summary: PolicyVersionSummary,
    pub source: String,
}

/// A version to store.
#[derive(Clone, Debug)]
pub struct NewPolicyVersion {
    pub author: String,
    pub comment: String,
    pub source: String,
    /// Make it the active version in the same transaction.
    pub activate: bool,
    /// When set, the change is refused with [`StoreError::Conflict`] unless this is still the
    /// active version id (`Some(None)`: no version is active). Read-modify-write callers pass the
    /// version they modified so that two concurrent edits cannot lose one of them.
    pub expected_active: Option<Option<i64>>,
}

/// The repository of policy bundle versions.
#[derive(Debug)]
pub struct PolicyVersions<'s> {
    store: &'s Store,
}

macro_rules! summary_from_row {
    ($row:expr) => {
        PolicyVersionSummary {
            id: $row.try_get("id")?,
            created_at: $row.try_get("created_at")?,
            author: $row.try_get("author")?,
            comment: $row.try_get("comment")?,
            active: $row.try_get("active")?,
        }
    };
}

/// The id of the active version, read inside a transaction.
macro_rules! active_id {
    ($tx:expr) => {{
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM policy_versions WHERE active")
            .fetch_optional(&mut *$tx)
            .await?;
        id
    }};
}

/// Makes `$id` the only active version inside the transaction `$tx`.
macro_rules! set_active {
    ($tx:expr, $id:expr) => {{
        sqlx::query("UPDATE policy_versions SET active = FALSE WHERE active AND id <> $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("UPDATE policy_versions SET active = TRUE WHERE id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Serialises writers of the policy tables across PostgreSQL nodes for the transaction's life
/// (SQLite's `BEGIN IMMEDIATE` already does this).
macro_rules! lock_policy {
    ($store:expr, $tx:expr) => {
        if $store.kind() == crate::BackendKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7201001)")
                .execute(&mut *$tx)
                .await?;
        }
    };
}

impl<'s> PolicyVersions<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Stores a new version, and activates it when asked, in one transaction.
    pub async fn create(&self, new: NewPolicyVersion) -> Result<PolicyVersion, StoreError> {
        let now = now_millis();
        let change = if new.activate {
            Change::Policy
        } else {
            Change::Other("versions".into())
        };
        let store = self.store;
        let id = write_tx!(store, change, tx => {
            lock_policy!(store, tx);
            if let Some(expected) = new.expected_active {
                let current = active_id!(tx);
                if current != expected {
                    return Err(StoreError::Conflict(format!(
                        "the active policy version changed (expected {}, found {}); retry",
                        describe(expected),
                        describe(current)
                    )));
                }
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO policy_versions (created_at, author, comment, source, active) \
                 VALUES ($1, $2, $3, $4, FALSE) RETURNING id",
            )
            .bind(now)
            .bind(&new.author)
            .bind(&new.comment)
            .bind(&new.source)
            .fetch_one(&mut *tx)
            .await?;
            if new.activate {
                set_active!(tx, id);
                sqlx::query(
                    "INSERT INTO policy_activations (version_id, activated_at, author) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(now)
                .bind(&new.author)
                .execute(&mut *tx)
                .await?;
            }
            id
        });
        tracing::info!(
            policy.version = id,
            activated = new.activate,
            "policy.version.stored"
        );
        Ok(PolicyVersion {
            summary: PolicyVersionSummary {
                id,
                created_at: now,
                author: new.author,
                comment: new.comment,
                active: new.activate,
            },
            source: new.source,
        })
    }

    /// Every version, newest first.
    pub async fn list(&self) -> Result<Vec<PolicyVersionSummary>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT id, created_at, author, comment, active FROM policy_versions \
                 ORDER BY id DESC",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(summary_from_row!(row))).collect()
        })
    }

    pub async fn get(&self, id: i64) -> Result<Option<PolicyVersion>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query(
                "SELECT id, created_at, author, comment, active, source \
                 FROM policy_versions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(PolicyVersion {
                    summary: summary_from_row!(row),
                    source: row.try_get("source")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// The active version, if any version was ever activated.
    pub async fn active(&self) -> Result<Option<PolicyVersion>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query(
                "SELECT id, created_at, author, comment, active, source \
                 FROM policy_versions WHERE active",
            )
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(PolicyVersion {
                    summary: summary_from_row!(row),
                    source: row.try_get("source")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Makes version `id` the active one.
    pub async fn activate(&self, id: i64, author: &str) -> Result<PolicyVersion, StoreError> {
        let now = now_millis();
        let store = self.store;
        write_tx!(store, Change::Policy, tx => {
            lock_policy!(store, tx);
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM policy_versions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound { what: "policy version", id: id.to_string() });
            }
            set_active!(tx, id);
            sqlx::query(
                "INSERT INTO policy_activations (version_id, activated_at, author) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(now)
            .bind(author)
            .execute(&mut *tx)
            .await?;
        });
        tracing::info!(policy.version = id, author, "policy.version.activated");
        self.get(id).await?.ok_or_else(|| StoreError::NotFound {
            what: "policy version",
            id: id.to_string(),
        })
    }

    /// Undoes the latest activation: the version active before it becomes active again.
    pub async fn rollback(&self, author: &str) -> Result<PolicyVersion, StoreError> {
        self.rollback_to(author, None).await
    }

    /// The version a rollback would activate now, if there is one.
    pub async fn rollback_target(&self) -> Result<Option<i64>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT version_id FROM policy_activations WHERE NOT undone \
                 ORDER BY id DESC LIMIT 2",
            )
            .fetch_all(pool)
            .await?;
            match rows.get(1) {
                Some(row) => Ok(Some(row.try_get("version_id")?)),
                None => Ok(None),
            }
        })
    }

    /// Undoes the latest activation. With `expected`, the rollback is refused with
    /// [`StoreError::Conflict`] unless it would activate that version (the one the caller
    /// checked).
    pub async fn rollback_to(
        &self,
        author: &str,
        expected: Option<i64>,
    ) -> Result<PolicyVersion, StoreError> {
        let store = self.store;
        let id = write_tx!(store, Change::Policy, tx => {
            lock_policy!(store, tx);
            let rows = sqlx::query(
                "SELECT id, version_id FROM policy_activations WHERE NOT undone \
                 ORDER BY id DESC LIMIT 2",
            )
            .fetch_all(&mut *tx)
            .await?;
            let mut ids = Vec::with_capacity(2);
            for row in &rows {
                let activation: i64 = row.try_get("id")?;
                let version: i64 = row.try_get("version_id")?;
                ids.push((activation, version));
            }
            let (latest, previous) = match ids.as_slice() {
                [latest, previous] => (*latest, *previous),
                _ => return Err(StoreError::NothingToRollBack),
            };
            if let Some(expected) = expected
                && expected != previous.1
            {
                return Err(StoreError::Conflict(format!(
                    "a rollback would now activate version {}, not {expected}",
                    previous.1
                )));
            }
            sqlx::query("UPDATE policy_activations SET undone = TRUE WHERE id = $1")
                .bind(latest.0)
                .execute(&mut *tx)
                .await?;
            set_active!(tx, previous.1);
            previous.1
        });
        tracing::info!(policy.version = id, author, "policy.version.rolled_back");
        self.get(id).await?.ok_or_else(|| StoreError::NotFound {
            what: "policy version",
            id: id.to_string(),
        })
    }
}

fn describe(id: Option<i64>) -> String {
    match id {
        Some(id) => format!("version {id}"),
        None => "none".to_owned(),
    }
}
