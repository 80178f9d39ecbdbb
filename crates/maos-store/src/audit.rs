//! The audit log's tables: sealed records, signed checkpoints, and the one-row chain state.
//!
//! `maos-audit` seals records and makes checkpoints; this module only stores what it produced.
//! An append is one transaction that locks the chain state row (`SELECT ... FOR UPDATE` on
//! PostgreSQL, the write lock of `BEGIN IMMEDIATE` on SQLite), hands the stored state to the
//! caller, and writes the records, checkpoints and new state the caller returns. Several nodes
//! on one PostgreSQL database therefore append to one chain in turn, each going on from the
//! state the previous one committed.
//!
//! Records and checkpoints are stored as their JSON text, not `jsonb`, so that the bytes that
//! were hashed come back unchanged.

use maos_audit::{AuditRecord, ChainState, Checkpoint, OutcomeStatus};
use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// Rows per multi-row `INSERT` (SQLite allows at most 32,766 bound values per statement).
const INSERT_CHUNK: usize = 1000;

/// What one append transaction writes: records in chain order, the checkpoints made with them,
/// and the chain state after them.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditAppend {
    pub records: Vec<AuditRecord>,
    pub checkpoints: Vec<Checkpoint>,
    pub state: ChainState,
}

/// A query over stored records: every given condition must hold. Records come in chain order,
/// after `after_seq` when given, at most `limit` of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// An action name, or a family ending in `.*` (`policy.*`).
    pub action: Option<String>,
    pub resource: Option<String>,
    pub status: Option<OutcomeStatus>,
    pub request_id: Option<String>,
    /// Records at or after this time, in milliseconds since the Unix epoch.
    pub since_ms: Option<u64>,
    /// Records before this time.
    pub until_ms: Option<u64>,
    pub after_seq: Option<u64>,
    pub limit: u32,
}

/// The audit log's repository.
#[derive(Debug)]
pub struct AuditLog<'s> {
    store: &'s Store,
}

/// The text stored in the `status` column.
pub fn status_name(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Success => "success",
        OutcomeStatus::Failure => "failure",
        OutcomeStatus::Denied => "denied",
    }
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::corrupt(what, format!("{value} is out of range")))
}

fn parse_state(text: Option<String>) -> Result<ChainState, StoreError> {
    match text {
        None => Ok(ChainState::genesis()),
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| StoreError::corrupt("audit chain state", e))
        }
    }
}

/// Turns `a.b.*` into the SQL `LIKE` pattern `a.b.%`, escaping `%`, `_` and `\` in the prefix.
fn family_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(".%");
    pattern
}

/// Writes `$append` inside the open transaction `$tx` (once per backend).
macro_rules! write_append {
    ($db:ty, $tx:expr, $append:expr) => {{
        let append: &AuditAppend = $append;
        for chunk in append.records.chunks(INSERT_CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for record in chunk {
                let text = serde_json::to_string(record)
                    .map_err(|e| StoreError::corrupt("audit record", e))?;
                rows.push((
                    to_i64(record.seq, "audit record seq")?,
                    to_i64(record.time.unix_millis(), "audit record time")?,
                    record.actor.to_string(),
                    status_name(record.result.status()),
                    text,
                    record,
                ));
            }
            let mut insert = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO audit_records \
                 (seq, time, actor, action, resource, status, request_id, record) ",
            );
            insert.push_values(rows, |mut row, (seq, time, actor, status, text, record)| {
                row.push_bind(seq)
                    .push_bind(time)
                    .push_bind(actor)
                    .push_bind(record.action.as_str().to_owned())
                    .push_bind(record.resource.clone())
                    .push_bind(status)
                    .push_bind(record.request_id.clone())
                    .push_bind(text);
            });
            insert.build().execute(&mut *$tx).await?;
        }
        for checkpoint in &append.checkpoints {
            let text = serde_json::to_string(checkpoint)
                .map_err(|e| StoreError::corrupt("audit checkpoint", e))?;
            sqlx::query(
                "INSERT INTO audit_checkpoints (idx, time, tree_size, checkpoint) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(to_i64(checkpoint.index, "audit checkpoint index")?)
            .bind(to_i64(
                checkpoint.time.unix_millis(),
                "audit checkpoint time",
            )?)
            .bind(to_i64(checkpoint.tree_size, "audit checkpoint tree size")?)
            .bind(text)
            .execute(&mut *$tx)
            .await?;
        }
        let state = serde_json::to_string(&append.state)
            .map_err(|e| StoreError::corrupt("audit chain state", e))?;
        sqlx::query("UPDATE audit_chain SET state = $1 WHERE id = 1")
            .bind(state)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Adds the `WHERE` conditions of `$query` to the builder `$sql`.
macro_rules! push_conditions {
    ($sql:expr, $query:expr) => {{
        let query: &AuditQuery = $query;
        $sql.push(" WHERE 1 = 1");
        if let Some(actor) = &query.actor {
            $sql.push(" AND actor = ").push_bind(actor.clone());
        }
        match query.action.as_deref() {
            Some(action) => match action.strip_suffix(".*") {
                Some(prefix) => {
                    $sql.push(" AND action LIKE ")
                        .push_bind(family_pattern(prefix))
                        .push(" ESCAPE '\\'");
                }
                None => {
                    $sql.push(" AND action = ").push_bind(action.to_owned());
                }
            },
            None => {}
        }
        if let Some(resource) = &query.resource {
            $sql.push(" AND resource = ").push_bind(resource.clone());
        }
        if let Some(status) = query.status {
            $sql.push(" AND status = ").push_bind(status_name(status));
        }
        if let Some(id) = &query.request_id {
            $sql.push(" AND request_id = ").push_bind(id.clone());
        }
        if let Some(since) = query.since_ms {
            $sql.push(" AND time >= ")
                .push_bind(to_i64(since, "query time")?);
        }
        if let Some(until) = query.until_ms {
            $sql.push(" AND time < ")
                .push_bind(to_i64(until, "query time")?);
        }
        if let Some(after) = query.after_seq {
            $sql.push(" AND seq > ")
                .push_bind(to_i64(after, "query cursor")?);
        }
        $sql.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(query.limit));
    }};
}

impl<'s> AuditLog<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Appends in one transaction: locks the chain, calls `seal` with the stored state (the
    /// genesis state before the first record), and writes what it returns. If `seal` fails or
    /// any write fails, nothing is written. Returns what was written.
    pub async fn append<E: std::fmt::Display>(
        &self,
        seal: impl FnOnce(ChainState) -> Result<AuditAppend, E>,
    ) -> Result<AuditAppend, StoreError> {
        let sealed = |state: Option<String>| -> Result<AuditAppend, StoreError> {
            let state = parse_state(state)?;
            seal(state).map_err(|e| StoreError::AuditChain(e.to_string()))
        };
        match self.store.backend() {
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let state: Option<String> =
                    sqlx::query_scalar("SELECT state FROM audit_chain WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let append = sealed(state)?;
                write_append!(sqlx::Sqlite, tx, &append);
                tx.commit().await?;
                Ok(append)
            }
            Backend::Postgres { pool, .. } => {
                let mut tx = pool.begin().await?;
                let state: Option<String> =
                    sqlx::query_scalar("SELECT state FROM audit_chain WHERE id = 1 FOR UPDATE")
                        .fetch_one(&mut *tx)
                        .await?;
                let append = sealed(state)?;
                write_append!(sqlx::Postgres, tx, &append);
                tx.commit().await?;
                Ok(append)
            }
        }
    }

    /// The stored chain state (genesis when nothing was appended yet).
    pub async fn state(&self) -> Result<ChainState, StoreError> {
        let state: Option<String> = crate::with_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT state FROM audit_chain WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        parse_state(state)
    }

    /// Records matching `query`, in chain order.
    pub async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<String> = match self.store.backend() {
            Backend::Sqlite(pool) => {
                let mut sql =
                    sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT record FROM audit_records");
                push_conditions!(sql, query);
                sql.build()
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|row| row.try_get("record"))
                    .collect::<Result<_, _>>()?
            }
            Backend::Postgres { pool, .. } => {
                let mut sql =
                    sqlx::QueryBuilder::<sqlx::Postgres>::new("SELECT record FROM audit_records");
                push_conditions!(sql, query);
                sql.build()
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|row| row.try_get("record"))
                    .collect::<Result<_, _>>()?
            }
        };
        rows.iter()
            .map(|text| {
                serde_json::from_str(text).map_err(|e| StoreError::corrupt("audit record", e))
            })
            .collect()
    }

    /// Up to `limit` stored records as text, ordered by their `seq` column, after `after` when
    /// given: the raw material of verification, which must see damaged rows too.
    pub async fn raw_records(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        crate::with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT seq, record FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after.unwrap_or(i64::MIN))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get("seq")?, row.try_get("record")?)))
                .collect()
        })
    }

    /// Every checkpoint, in index order.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let texts: Vec<String> = crate::with_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT checkpoint FROM audit_checkpoints ORDER BY idx")
                .fetch_all(pool)
                .await?
        });
        texts
            .iter()
            .map(|text| {
                serde_json::from_str(text).map_err(|e| StoreError::corrupt("audit checkpoint", e))
            })
            .collect()
    }

    /// How many records are stored.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = crate::with_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_records")
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_families_escape_like_wildcards() {
        assert_eq!(family_pattern("policy"), "policy.%");
        assert_eq!(family_pattern("a_b%"), "a\\_b\\%.%");
    }
}
