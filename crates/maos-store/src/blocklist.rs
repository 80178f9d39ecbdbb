//! The gateway's dynamic blocklist: networks (`192.0.2.0/24`, `2001:db8::/64`) refused until a
//! time. The network is stored in its canonical text form, so adding the same network again
//! replaces its entry instead of adding a second one.

use serde::Serialize;
use sqlx::Row;

use crate::{Change, Store, StoreError, now_millis, with_pool, write_tx};

/// One entry of the blocklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockRecord {
    /// The network in CIDR notation.
    pub network: String,
    /// Unix seconds after which the entry no longer applies.
    pub until: i64,
    pub reason: String,
    /// Who added it: a principal `type:id`, or `system` for automated responses.
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// The repository of blocklist entries.
#[derive(Debug)]
pub struct Blocklist<'s> {
    store: &'s Store,
}

macro_rules! block_from_row {
    ($row:expr) => {{
        BlockRecord {
            network: $row.try_get("network")?,
            until: $row.try_get("blocked_until")?,
            reason: $row.try_get("reason")?,
            created_by: $row.try_get("created_by")?,
            created_at: $row.try_get("created_at")?,
        }
    }};
}

impl<'s> Blocklist<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Adds the network, or replaces its entry (a later `until` or another reason).
    pub async fn put(
        &self,
        network: &str,
        until: i64,
        reason: &str,
        created_by: &str,
    ) -> Result<BlockRecord, StoreError> {
        let now = now_millis();
        write_tx!(self.store, Change::Blocklist, tx => {
            sqlx::query(
                "INSERT INTO gateway_blocklist (network, blocked_until, reason, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (network) DO UPDATE SET blocked_until = excluded.blocked_until, \
                 reason = excluded.reason, created_by = excluded.created_by, \
                 created_at = excluded.created_at",
            )
            .bind(network)
            .bind(until)
            .bind(reason)
            .bind(created_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        tracing::info!(network, until, "blocklist.added");
        Ok(BlockRecord {
            network: network.to_owned(),
            until,
            reason: reason.to_owned(),
            created_by: created_by.to_owned(),
            created_at: now,
        })
    }

    /// Entries still in force at `now` (unix seconds), ordered by network.
    pub async fn live(&self, now: i64) -> Result<Vec<BlockRecord>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT network, blocked_until, reason, created_by, created_at FROM gateway_blocklist \
                 WHERE blocked_until > $1 ORDER BY network",
            )
            .bind(now)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(block_from_row!(row))).collect()
        })
    }

    /// Removes the network's entry; `false` when there was none.
    pub async fn remove(&self, network: &str) -> Result<bool, StoreError> {
        let removed = write_tx!(self.store, Change::Blocklist, tx => {
            sqlx::query("DELETE FROM gateway_blocklist WHERE network = $1")
                .bind(network)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if removed > 0 {
            tracing::info!(network, "blocklist.removed");
        }
        Ok(removed > 0)
    }

    /// Deletes entries that expired before `now` (unix seconds); answers how many.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        with_pool!(self.store, pool => {
            Ok(sqlx::query("DELETE FROM gateway_blocklist WHERE blocked_until <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }
}
