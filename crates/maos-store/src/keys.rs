//! The key service's stored records. The store keeps them as opaque text: the key service
//! serialises each `KeyRecord` (metadata and KEK-wrapped material only), authenticates it with a
//! MAC, and checks the MAC when it loads the row. The revision counter makes concurrent changes
//! of one key by two nodes conflict instead of overwriting each other.

use sqlx::Row;

use crate::{Change, Store, StoreError, now_millis, with_pool, write_tx};

/// One stored key record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKeyRecord {
    pub name: String,
    /// 1 for a new key, one more for every change.
    pub revision: i64,
    /// The serialised record, exactly as authenticated by `mac`.
    pub record: String,
    pub mac: String,
    pub updated_at: i64,
}

/// The repository of key records and key service settings.
#[derive(Debug)]
pub struct KeyRecords<'s> {
    store: &'s Store,
}

macro_rules! record_from_row {
    ($row:expr) => {
        StoredKeyRecord {
            name: $row.try_get("name")?,
            revision: $row.try_get("revision")?,
            record: $row.try_get("record")?,
            mac: $row.try_get("mac")?,
            updated_at: $row.try_get("updated_at")?,
        }
    };
}

impl<'s> KeyRecords<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Every stored record, by name.
    pub async fn list(&self) -> Result<Vec<StoredKeyRecord>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT name, revision, record, mac, updated_at FROM key_records ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(record_from_row!(row))).collect()
        })
    }

    pub async fn get(&self, name: &str) -> Result<Option<StoredKeyRecord>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query(
                "SELECT name, revision, record, mac, updated_at FROM key_records WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(record_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Stores `record` as revision `revision` of key `name`: a new row when `revision` is 1,
    /// otherwise only if the stored revision is `revision - 1`. [`StoreError::Conflict`] when
    /// another writer got there first. Announces [`Change::Key`] on commit.
    pub async fn save(
        &self,
        name: &str,
        revision: i64,
        record: &str,
        mac: &str,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let change = Change::Key {
            name: name.to_owned(),
        };
        let result: Result<u64, StoreError> = async {
            Ok(write_tx!(self.store, change, tx => {
                if revision == 1 {
                    sqlx::query(
                        "INSERT INTO key_records (name, revision, record, mac, updated_at) \
                         VALUES ($1, 1, $2, $3, $4)",
                    )
                    .bind(name)
                    .bind(record)
                    .bind(mac)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                } else {
                    sqlx::query(
                        "UPDATE key_records SET revision = $1, record = $2, mac = $3, \
                         updated_at = $4 WHERE name = $5 AND revision = $6",
                    )
                    .bind(revision)
                    .bind(record)
                    .bind(mac)
                    .bind(now)
                    .bind(name)
                    .bind(revision - 1)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                }
            }))
        }
        .await;
        match result {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::Conflict(format!(
                "key `{name}` was changed by another node; retry"
            ))),
            Err(e) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("key `{name}` exists")))
            }
            Err(e) => Err(e),
        }
    }

    /// A key service setting.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self.store, pool => {
            Ok(sqlx::query_scalar("SELECT value FROM key_service_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Stores a setting unless it exists, and returns the value in force (the first writer's
    /// when several nodes start at once).
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        write_tx!(self.store, Change::Other("key-settings".into()), tx => {
            sqlx::query(
                "INSERT INTO key_service_settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        });
        self.setting(name)
            .await?
            .ok_or_else(|| StoreError::corrupt("key service setting", format!("`{name}` vanished")))
    }
}
