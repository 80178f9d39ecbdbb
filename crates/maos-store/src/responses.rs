//! Automated response actions: what was blocked, disabled, quarantined, rotated or watched, by
//! which trigger, until when, and how it ended. The server keeps the whole record as JSON in
//! `body`; the columns beside it are what queries filter on. A partial unique index allows one
//! `active` row per action and target, so two nodes reacting to the same attack at once take
//! one action between them.

use sqlx::Row;

use crate::{Change, Store, StoreError, with_pool, write_tx};

/// One stored response action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseActionRow {
    pub id: String,
    /// `block_ip`, `disable_user`, ...
    pub action: String,
    /// The canonical target (`203.0.113.7/32`, `user:alice`, `document:x`, `key:payments`).
    pub target: String,
    /// `active`, `expired`, `undone`, `dry_run`, `failed`, `done`.
    pub state: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// The server's record of the action, as JSON.
    pub body: String,
}

/// The repository of response actions.
#[derive(Debug)]
pub struct ResponseActions<'s> {
    store: &'s Store,
}

const COLUMNS: &str = "id, action, target, state, created_at, expires_at, ended_at, body";

macro_rules! action_from_row {
    ($row:expr) => {{
        ResponseActionRow {
            id: $row.try_get("id")?,
            action: $row.try_get("action")?,
            target: $row.try_get("target")?,
            state: $row.try_get("state")?,
            created_at: $row.try_get("created_at")?,
            expires_at: $row.try_get("expires_at")?,
            ended_at: $row.try_get("ended_at")?,
            body: $row.try_get("body")?,
        }
    }};
}

impl<'s> ResponseActions<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Stores a new action. An `active` row for the same action and target already in place is
    /// a [`StoreError::Conflict`]: the caller answers with that one instead.
    pub async fn insert(&self, row: &ResponseActionRow) -> Result<(), StoreError> {
        let result: Result<(), StoreError> = async {
            write_tx!(self.store, Change::Responses, tx => {
                sqlx::query(
                    "INSERT INTO response_actions \
                     (id, action, target, state, created_at, expires_at, ended_at, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&row.id)
                .bind(&row.action)
                .bind(&row.target)
                .bind(&row.state)
                .bind(row.created_at)
                .bind(row.expires_at)
                .bind(row.ended_at)
                .bind(&row.body)
                .execute(&mut *tx)
                .await?;
            });
            Ok(())
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(format!(
                "`{}` on `{}` is already active",
                row.action, row.target
            ))),
            other => other,
        }
    }

    /// Replaces the row's state, expiry, end and body, if its state is still `expected`;
    /// `false` when another writer changed it first (so only one node undoes an action).
    pub async fn update(
        &self,
        row: &ResponseActionRow,
        expected: &str,
    ) -> Result<bool, StoreError> {
        let changed = write_tx!(self.store, Change::Responses, tx => {
            sqlx::query(
                "UPDATE response_actions SET state = $1, expires_at = $2, ended_at = $3, \
                 body = $4 WHERE id = $5 AND state = $6",
            )
            .bind(&row.state)
            .bind(row.expires_at)
            .bind(row.ended_at)
            .bind(&row.body)
            .bind(&row.id)
            .bind(expected)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    pub async fn get(&self, id: &str) -> Result<Option<ResponseActionRow>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM response_actions WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(action_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The `active` row of this action and target, expired or not.
    pub async fn active_for(
        &self,
        action: &str,
        target: &str,
    ) -> Result<Option<ResponseActionRow>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM response_actions \
                 WHERE action = $1 AND target = $2 AND state = 'active'"
            )))
            .bind(action)
            .bind(target)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(action_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Every `active` row, oldest first.
    pub async fn active(&self) -> Result<Vec<ResponseActionRow>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM response_actions WHERE state = 'active' \
                 ORDER BY created_at, id"
            )))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(action_from_row!(row))).collect()
        })
    }

    /// The newest rows first, at most `limit`, created before `before` (milliseconds) when
    /// given.
    pub async fn list(
        &self,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<ResponseActionRow>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM response_actions WHERE created_at < $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            )))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(action_from_row!(row))).collect()
        })
    }

    /// How many rows of this action and target in one of `states` were created at or after
    /// `since` (milliseconds): the history behind escalating bans.
    pub async fn count_since(
        &self,
        action: &str,
        target: &str,
        since: i64,
        states: &[&str],
    ) -> Result<i64, StoreError> {
        let rows = with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT state FROM response_actions \
                 WHERE action = $1 AND target = $2 AND created_at >= $3",
            )
            .bind(action)
            .bind(target)
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| row.try_get::<String, _>("state"))
                .collect::<Result<Vec<String>, sqlx::Error>>()?
        });
        let count = rows.iter().filter(|s| states.contains(&s.as_str())).count();
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }
}
