//! API tokens: bearer credentials that map to a principal. Only a SHA-256 hash of each token is
//! stored; tokens are 256-bit random values, so a fast unsalted hash cannot be brute-forced.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Change, Store, StoreError, now_millis, with_pool, write_tx};

/// The hex SHA-256 of a token, the form in which tokens are stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A stored token (without the token itself, which is never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: String,
    /// `type:id` of the principal the token authenticates as.
    pub principal: String,
    /// Roles the principal holds when it authenticates with this token, besides its bindings.
    pub roles: Vec<String>,
    pub description: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiToken {
    /// Usable at `now_ms`: not revoked and not expired.
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now_ms < expiry)
    }
}

/// A token to store.
#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub id: String,
    pub principal: String,
    pub roles: Vec<String>,
    pub description: String,
    pub token_hash: String,
    pub expires_at: Option<i64>,
}

/// The repository of API tokens.
#[derive(Debug)]
pub struct ApiTokens<'s> {
    store: &'s Store,
}

macro_rules! token_from_row {
    ($row:expr) => {{
        let roles: String = $row.try_get("roles")?;
        ApiToken {
            id: $row.try_get("id")?,
            principal: $row.try_get("principal")?,
            roles: serde_json::from_str(&roles)
                .map_err(|e| StoreError::corrupt("token roles", e))?,
            description: $row.try_get("description")?,
            token_hash: $row.try_get("token_hash")?,
            created_at: $row.try_get("created_at")?,
            expires_at: $row.try_get("expires_at")?,
            revoked_at: $row.try_get("revoked_at")?,
        }
    }};
}

const COLUMNS: &str =
    "id, principal, roles, description, token_hash, created_at, expires_at, revoked_at";

impl<'s> ApiTokens<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Stores a new token; [`StoreError::Conflict`] when the id or hash exists.
    pub async fn create(&self, new: NewApiToken) -> Result<ApiToken, StoreError> {
        let now = now_millis();
        let roles = serde_json::Value::from(new.roles.clone()).to_string();
        let result: Result<(), StoreError> = async {
            write_tx!(self.store, Change::Tokens, tx => {
                sqlx::query(
                    "INSERT INTO api_tokens \
                     (id, principal, roles, description, token_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&new.id)
                .bind(&new.principal)
                .bind(&roles)
                .bind(&new.description)
                .bind(&new.token_hash)
                .bind(now)
                .bind(new.expires_at)
                .execute(&mut *tx)
                .await?;
            });
            Ok(())
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!("token `{}` exists", new.id)));
            }
            other => other?,
        }
        tracing::info!(token.id = %new.id, principal.id = %new.principal, "token.created");
        Ok(ApiToken {
            id: new.id,
            principal: new.principal,
            roles: new.roles,
            description: new.description,
            token_hash: new.token_hash,
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
        })
    }

    /// Creates the token with this id, or replaces its hash, principal and roles (the
    /// bootstrap admin token, whose value may change between starts).
    pub async fn upsert(&self, new: NewApiToken) -> Result<(), StoreError> {
        let now = now_millis();
        let roles = serde_json::Value::from(new.roles.clone()).to_string();
        write_tx!(self.store, Change::Tokens, tx => {
            sqlx::query(
                "INSERT INTO api_tokens \
                 (id, principal, roles, description, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET principal = excluded.principal, \
                 roles = excluded.roles, description = excluded.description, \
                 token_hash = excluded.token_hash, expires_at = excluded.expires_at, \
                 revoked_at = NULL",
            )
            .bind(&new.id)
            .bind(&new.principal)
            .bind(&roles)
            .bind(&new.description)
            .bind(&new.token_hash)
            .bind(now)
            .bind(new.expires_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"));
            let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(token_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<ApiToken>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
            ));
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(|row| Ok(token_from_row!(row))).collect()
        })
    }

    /// The token with this hash, if it exists (valid or not).
    pub async fn find_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"
            ));
            let row = sqlx::query(sql).bind(token_hash).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(token_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Revokes the token; `false` when no unrevoked token has this id.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let now = now_millis();
        let revoked = write_tx!(self.store, Change::Tokens, tx => {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        if revoked > 0 {
            tracing::info!(token.id = %id, "token.revoked");
        }
        Ok(revoked > 0)
    }
}
