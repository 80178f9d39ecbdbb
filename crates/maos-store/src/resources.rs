//! Registered resources and their attributes.
//!
//! The server merges these attributes over the ones a request supplies (stored ones win), so a
//! caller cannot lie about the owner or classification of what it asks for.

use serde_json::{Map, Value};
use sqlx::Row;

use crate::{Change, Store, StoreError, now_millis, with_pool, write_tx};

/// One registered resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceRecord {
    /// The `type` of the resource (`document` in `document:design/api`).
    pub kind: String,
    pub id: String,
    pub attributes: Map<String, Value>,
    /// Milliseconds since the Unix epoch.
    pub updated_at: i64,
}

/// The repository of registered resources.
#[derive(Debug)]
pub struct Resources<'s> {
    store: &'s Store,
}

macro_rules! record_from_row {
    ($row:expr) => {{
        let attributes: String = $row.try_get("attributes")?;
        ResourceRecord {
            kind: $row.try_get("kind")?,
            id: $row.try_get("id")?,
            attributes: parse_attributes(&attributes)?,
            updated_at: $row.try_get("updated_at")?,
        }
    }};
}

fn parse_attributes(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt("resource attributes", e))
}

impl<'s> Resources<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Registers the resource or replaces its attributes.
    pub async fn put(
        &self,
        kind: &str,
        id: &str,
        attributes: &Map<String, Value>,
    ) -> Result<ResourceRecord, StoreError> {
        let now = now_millis();
        let text = Value::Object(attributes.clone()).to_string();
        let change = Change::Resource {
            kind: kind.to_owned(),
            id: id.to_owned(),
        };
        write_tx!(self.store, change, tx => {
            sqlx::query(
                "INSERT INTO resources (kind, id, attributes, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, id) DO UPDATE \
                 SET attributes = excluded.attributes, updated_at = excluded.updated_at",
            )
            .bind(kind)
            .bind(id)
            .bind(&text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(ResourceRecord {
            kind: kind.to_owned(),
            id: id.to_owned(),
            attributes: attributes.clone(),
            updated_at: now,
        })
    }

    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<ResourceRecord>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query(
                "SELECT kind, id, attributes, updated_at FROM resources WHERE kind = $1 AND id = $2",
            )
            .bind(kind)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(record_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Removes the resource; `false` when it was not registered.
    pub async fn delete(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let change = Change::Resource {
            kind: kind.to_owned(),
            id: id.to_owned(),
        };
        let deleted = write_tx!(self.store, change, tx => {
            sqlx::query("DELETE FROM resources WHERE kind = $1 AND id = $2")
                .bind(kind)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Registered resources in `(kind, id)` order, `limit` at a time, after the given key.
    pub async fn list(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<ResourceRecord>, StoreError> {
        let (after_kind, after_id) = after.unwrap_or(("", ""));
        let first_page = after.is_none();
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT kind, id, attributes, updated_at FROM resources \
                 WHERE $1 OR kind > $2 OR (kind = $2 AND id > $3) \
                 ORDER BY kind, id LIMIT $4",
            )
            .bind(first_page)
            .bind(after_kind)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(record_from_row!(row))).collect()
        })
    }

    /// Every registered resource, for filling an in-memory cache.
    pub async fn all(&self) -> Result<Vec<ResourceRecord>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query("SELECT kind, id, attributes, updated_at FROM resources")
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| Ok(record_from_row!(row))).collect()
        })
    }
}
