//! The SIEM's tables: security events and the alerts raised over them.
//!
//! The server serializes events and alerts; this module stores the JSON text it is given with
//! indexed copies of the fields searches filter on, and hands the text back. Rows are ordered
//! by `seq`, the order they were stored in, which is also the cursor of a page.

use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// Rows per multi-row `INSERT` (SQLite allows at most 32,766 bound values per statement).
const INSERT_CHUNK: usize = 500;

/// One event to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub id: String,
    /// Microseconds since the Unix epoch.
    pub time: i64,
    pub source: String,
    pub event_type: String,
    /// 0 (info) .. 4 (critical).
    pub severity: i64,
    pub principal: Option<String>,
    /// The source IP address or host name as text.
    pub source_address: Option<String>,
    pub resource: Option<String>,
    pub correlation_id: Option<String>,
    /// The whole event as JSON.
    pub body: String,
}

/// A query over stored events: every given condition must hold; at most `limit` rows after
/// `after_seq`, in storing order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub event_type: Option<String>,
    /// Events at least this severe (0..4).
    pub min_severity: Option<i64>,
    pub principal: Option<String>,
    pub source_address: Option<String>,
    pub resource: Option<String>,
    pub source: Option<String>,
    pub correlation_id: Option<String>,
    /// Text the event's JSON contains (case-sensitive).
    pub text: Option<String>,
    /// Event time at or after, microseconds.
    pub since: Option<i64>,
    /// Event time before, microseconds.
    pub until: Option<i64>,
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// A stored event: its position and JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub body: String,
}

/// One alert to insert or update (by `id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub id: String,
    pub rule_id: String,
    pub severity: i64,
    /// Microseconds since the Unix epoch.
    pub first_seen: i64,
    pub last_seen: i64,
    pub hits: i64,
    pub source_address: Option<String>,
    pub principal: Option<String>,
    pub resource: Option<String>,
    pub correlation_id: Option<String>,
    /// The whole alert as JSON (without its acknowledgement, which has columns of its own).
    pub body: String,
}

/// A query over stored alerts, like [`EventQuery`]; the time range applies to `last_seen`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertQuery {
    pub rule_id: Option<String>,
    pub min_severity: Option<i64>,
    /// `open` or `acknowledged`.
    pub status: Option<String>,
    pub principal: Option<String>,
    pub source_address: Option<String>,
    pub resource: Option<String>,
    pub correlation_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// A stored alert with its acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAlert {
    pub seq: i64,
    pub body: String,
    pub status: String,
    pub acknowledged_by: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub acknowledged_at: Option<i64>,
}

/// The repository of security events.
#[derive(Debug)]
pub struct SiemEvents<'s> {
    store: &'s Store,
}

/// The repository of alerts.
#[derive(Debug)]
pub struct SiemAlerts<'s> {
    store: &'s Store,
}

/// Turns text into a `LIKE` pattern matching it anywhere, escaping `%`, `_` and `\`.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Runs `$body` with `$sql` bound to a new query builder of the store's backend, starting with
/// `$start`, and `$pool` to its pool.
macro_rules! with_builder {
    ($store:expr, $start:expr, $sql:ident, $pool:ident => $body:expr) => {
        match $store.backend() {
            Backend::Sqlite($pool) => {
                let mut $sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new($start);
                $body
            }
            Backend::Postgres { pool: $pool, .. } => {
                let mut $sql = sqlx::QueryBuilder::<sqlx::Postgres>::new($start);
                $body
            }
        }
    };
}

/// Adds ` AND column = value` for a given value.
macro_rules! push_eq {
    ($sql:expr, $column:literal, $value:expr) => {
        if let Some(value) = $value {
            $sql.push(concat!(" AND ", $column, " = "))
                .push_bind(value.clone());
        }
    };
}

/// Adds the `WHERE` conditions, order and limit of an [`EventQuery`].
macro_rules! push_event_conditions {
    ($sql:expr, $query:expr) => {{
        let query: &EventQuery = $query;
        $sql.push(" WHERE 1 = 1");
        push_eq!($sql, "event_type", &query.event_type);
        push_eq!($sql, "principal", &query.principal);
        push_eq!($sql, "source_address", &query.source_address);
        push_eq!($sql, "resource", &query.resource);
        push_eq!($sql, "source", &query.source);
        push_eq!($sql, "correlation_id", &query.correlation_id);
        if let Some(min) = query.min_severity {
            $sql.push(" AND severity >= ").push_bind(min);
        }
        if let Some(text) = &query.text {
            $sql.push(" AND event LIKE ")
                .push_bind(contains_pattern(text))
                .push(" ESCAPE '\\'");
        }
        if let Some(since) = query.since {
            $sql.push(" AND time >= ").push_bind(since);
        }
        if let Some(until) = query.until {
            $sql.push(" AND time < ").push_bind(until);
        }
        if let Some(after) = query.after_seq {
            $sql.push(" AND seq > ").push_bind(after);
        }
        $sql.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(query.limit));
    }};
}

/// Adds the `WHERE` conditions, order and limit of an [`AlertQuery`].
macro_rules! push_alert_conditions {
    ($sql:expr, $query:expr) => {{
        let query: &AlertQuery = $query;
        $sql.push(" WHERE 1 = 1");
        push_eq!($sql, "rule_id", &query.rule_id);
        push_eq!($sql, "status", &query.status);
        push_eq!($sql, "principal", &query.principal);
        push_eq!($sql, "source_address", &query.source_address);
        push_eq!($sql, "resource", &query.resource);
        push_eq!($sql, "correlation_id", &query.correlation_id);
        if let Some(min) = query.min_severity {
            $sql.push(" AND severity >= ").push_bind(min);
        }
        if let Some(since) = query.since {
            $sql.push(" AND last_seen >= ").push_bind(since);
        }
        if let Some(until) = query.until {
            $sql.push(" AND last_seen < ").push_bind(until);
        }
        if let Some(after) = query.after_seq {
            $sql.push(" AND seq > ").push_bind(after);
        }
        $sql.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(query.limit));
    }};
}

macro_rules! stored_event {
    ($row:expr) => {
        StoredEvent {
            seq: $row.try_get("seq")?,
            body: $row.try_get("event")?,
        }
    };
}

macro_rules! stored_alert {
    ($row:expr) => {
        StoredAlert {
            seq: $row.try_get("seq")?,
            body: $row.try_get("alert")?,
            status: $row.try_get("status")?,
            acknowledged_by: $row.try_get("acknowledged_by")?,
            acknowledged_at: $row.try_get("acknowledged_at")?,
        }
    };
}

const ALERT_COLUMNS: &str =
    "SELECT seq, alert, status, acknowledged_by, acknowledged_at FROM siem_alerts";

impl<'s> SiemEvents<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Stores events in one transaction, `received_at` (milliseconds) as their arrival time.
    /// An event whose id is already stored is skipped; answers how many were new.
    pub async fn insert(&self, events: &[EventRow], received_at: i64) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        macro_rules! insert_all {
            ($db:ty, $pool:expr) => {{
                let mut tx = $pool.begin().await?;
                let mut inserted = 0;
                for chunk in events.chunks(INSERT_CHUNK) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO siem_events (id, time, received_at, source, event_type, \
                         severity, principal, source_address, resource, correlation_id, event) ",
                    );
                    sql.push_values(chunk, |mut row, e| {
                        row.push_bind(e.id.clone())
                            .push_bind(e.time)
                            .push_bind(received_at)
                            .push_bind(e.source.clone())
                            .push_bind(e.event_type.clone())
                            .push_bind(e.severity)
                            .push_bind(e.principal.clone())
                            .push_bind(e.source_address.clone())
                            .push_bind(e.resource.clone())
                            .push_bind(e.correlation_id.clone())
                            .push_bind(e.body.clone());
                    });
                    sql.push(" ON CONFLICT (id) DO NOTHING");
                    inserted += sql.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                inserted
            }};
        }
        let inserted = match self.store.backend() {
            Backend::Sqlite(pool) => insert_all!(sqlx::Sqlite, pool),
            Backend::Postgres { pool, .. } => insert_all!(sqlx::Postgres, pool),
        };
        Ok(inserted)
    }

    /// Events matching `query`, in storing order.
    pub async fn search(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        with_builder!(self.store, "SELECT seq, event FROM siem_events", sql, pool => {
            push_event_conditions!(sql, query);
            let rows = sql.build().fetch_all(pool).await?;
            rows.iter().map(|row| Ok(stored_event!(row))).collect()
        })
    }

    /// The stored events among `ids`, in storing order.
    pub async fn by_ids(&self, ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let rows: Vec<StoredEvent> = with_builder!(
                self.store, "SELECT seq, event FROM siem_events WHERE id IN (", sql, pool => {
                let mut list = sql.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                sql.push(") ORDER BY seq");
                let rows = sql.build().fetch_all(pool).await?;
                rows.iter()
                    .map(|row| Ok(stored_event!(row)))
                    .collect::<Result<Vec<_>, StoreError>>()?
            });
            found.extend(rows);
        }
        found.sort_by_key(|e| e.seq);
        Ok(found)
    }

    /// Deletes events that arrived before `received_before` (milliseconds); answers how many.
    pub async fn delete_received_before(&self, received_before: i64) -> Result<u64, StoreError> {
        crate::with_pool!(self.store, pool => {
            Ok(sqlx::query("DELETE FROM siem_events WHERE received_at < $1")
                .bind(received_before)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// How many events are stored.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = crate::with_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM siem_events")
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

impl<'s> SiemAlerts<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Inserts new alerts and updates known ones (by id) in one transaction, `updated_at`
    /// (milliseconds) as their update time. An update keeps the acknowledgement.
    pub async fn upsert(&self, alerts: &[AlertRow], updated_at: i64) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        macro_rules! upsert_all {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                for a in alerts {
                    sqlx::query(
                        "INSERT INTO siem_alerts (id, rule_id, severity, first_seen, last_seen, \
                         hits, source_address, principal, resource, correlation_id, updated_at, \
                         alert) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                         ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, \
                         last_seen = excluded.last_seen, hits = excluded.hits, \
                         updated_at = excluded.updated_at, alert = excluded.alert",
                    )
                    .bind(&a.id)
                    .bind(&a.rule_id)
                    .bind(a.severity)
                    .bind(a.first_seen)
                    .bind(a.last_seen)
                    .bind(a.hits)
                    .bind(&a.source_address)
                    .bind(&a.principal)
                    .bind(&a.resource)
                    .bind(&a.correlation_id)
                    .bind(updated_at)
                    .bind(&a.body)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }};
        }
        match self.store.backend() {
            Backend::Sqlite(pool) => upsert_all!(pool),
            Backend::Postgres { pool, .. } => upsert_all!(pool),
        }
        Ok(())
    }

    /// Alerts matching `query`, in storing order.
    pub async fn search(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        with_builder!(self.store, ALERT_COLUMNS, sql, pool => {
            push_alert_conditions!(sql, query);
            let rows = sql.build().fetch_all(pool).await?;
            rows.iter().map(|row| Ok(stored_alert!(row))).collect()
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        crate::with_pool!(self.store, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("{ALERT_COLUMNS} WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            match row {
                Some(row) => Ok(Some(stored_alert!(row))),
                None => Ok(None),
            }
        })
    }

    /// Marks the alert acknowledged by `by` at `at` (milliseconds); `false` when there is no
    /// such alert. Acknowledging again keeps the first acknowledgement.
    pub async fn acknowledge(&self, id: &str, by: &str, at: i64) -> Result<bool, StoreError> {
        crate::with_pool!(self.store, pool => {
            sqlx::query(
                "UPDATE siem_alerts SET status = 'acknowledged', acknowledged_by = $1, \
                 acknowledged_at = $2 WHERE id = $3 AND status <> 'acknowledged'",
            )
            .bind(by)
            .bind(at)
            .bind(id)
            .execute(pool)
            .await?;
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT seq FROM siem_alerts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(exists.is_some())
        })
    }

    /// Deletes alerts not updated since `updated_before` (milliseconds); answers how many.
    pub async fn delete_updated_before(&self, updated_before: i64) -> Result<u64, StoreError> {
        crate::with_pool!(self.store, pool => {
            Ok(sqlx::query("DELETE FROM siem_alerts WHERE updated_at < $1")
                .bind(updated_before)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_escapes_like_wildcards() {
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
