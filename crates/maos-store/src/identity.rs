//! The identity provider's state: principals, password hashes, TOTP enrolments, API keys,
//! token signing keys, refresh-token families and revoked access tokens.
//!
//! The store keeps the identity core's own serde forms (JSON text) and never interprets
//! secrets: passwords arrive hashed, API keys as records holding a hash, TOTP seeds and signing
//! keys already wrapped by the caller's key-encryption key.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

use crate::{BackendKind, Change, Store, StoreError, now_millis, with_pool, write_tx};

/// A stored principal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrincipalRow {
    /// `user:<name>` or `agent:<name>`.
    pub id: String,
    /// `active` or `disabled`.
    pub status: String,
    /// The attributes object, as the identity core serialises it.
    pub attributes: Map<String, Value>,
    /// Stored role bindings.
    pub roles: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A TOTP enrolment. The seed is wrapped by the caller; recovery codes are hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRow {
    pub principal: String,
    pub sealed_secret: String,
    /// The identity core's `TotpConfig` as JSON.
    pub config: String,
    /// Set once the user proved the seed with a first code.
    pub confirmed: bool,
    /// The time step of the last accepted code (replay refusal).
    pub last_used_step: Option<i64>,
    pub recovery_hashes: Vec<String>,
}

/// A stored API key: the identity core's `ApiKeyRecord` as JSON (it holds no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub principal: String,
    pub record: String,
}

/// A token signing key, its private half wrapped by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    pub sealed_private: String,
    pub created_at: i64,
    /// When a newer key replaced it; `None` for the active key.
    pub replaced_at: Option<i64>,
}

/// The identity repository.
#[derive(Debug)]
pub struct Identities<'s> {
    store: &'s Store,
}

macro_rules! principal_from_row {
    ($row:expr) => {{
        let attributes: String = $row.try_get("attributes")?;
        let roles: String = $row.try_get("roles")?;
        PrincipalRow {
            id: $row.try_get("id")?,
            status: $row.try_get("status")?,
            attributes: serde_json::from_str(&attributes)
                .map_err(|e| StoreError::corrupt("principal attributes", e))?,
            roles: serde_json::from_str(&roles)
                .map_err(|e| StoreError::corrupt("principal roles", e))?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    }};
}

macro_rules! totp_from_row {
    ($row:expr) => {{
        let hashes: String = $row.try_get("recovery_hashes")?;
        TotpRow {
            principal: $row.try_get("principal")?,
            sealed_secret: $row.try_get("sealed_secret")?,
            config: $row.try_get("config")?,
            confirmed: $row.try_get("confirmed")?,
            last_used_step: $row.try_get("last_used_step")?,
            recovery_hashes: serde_json::from_str(&hashes)
                .map_err(|e| StoreError::corrupt("recovery code hashes", e))?,
        }
    }};
}

const PRINCIPAL_COLUMNS: &str = "id, status, attributes, roles, created_at, updated_at";
const TOTP_COLUMNS: &str =
    "principal, sealed_secret, config, confirmed, last_used_step, recovery_hashes";

fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn not_found(what: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_owned(),
    }
}

impl<'s> Identities<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    // Principals.

    /// Stores a new principal; [`StoreError::Conflict`] when the id exists.
    pub async fn create_principal(
        &self,
        id: &str,
        status: &str,
        attributes: &Map<String, Value>,
        roles: &[String],
    ) -> Result<PrincipalRow, StoreError> {
        let now = now_millis();
        let result: Result<(), StoreError> = async {
            write_tx!(self.store, Change::Principals, tx => {
                sqlx::query(
                    "INSERT INTO principals (id, status, attributes, roles, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(id)
                .bind(status)
                .bind(json_text(attributes))
                .bind(json_text(&roles))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            });
            Ok(())
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!("principal `{id}` exists")));
            }
            other => other?,
        }
        tracing::info!(principal.id = %id, "principal.created");
        Ok(PrincipalRow {
            id: id.to_owned(),
            status: status.to_owned(),
            attributes: attributes.clone(),
            roles: roles.to_vec(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Replaces a principal's status, attributes and roles.
    pub async fn update_principal(
        &self,
        id: &str,
        status: &str,
        attributes: &Map<String, Value>,
        roles: &[String],
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let changed = write_tx!(self.store, Change::Principals, tx => {
            sqlx::query(
                "UPDATE principals SET status = $1, attributes = $2, roles = $3, updated_at = $4 \
                 WHERE id = $5",
            )
            .bind(status)
            .bind(json_text(attributes))
            .bind(json_text(&roles))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(not_found("principal", id));
        }
        tracing::info!(principal.id = %id, principal.status = %status, "principal.updated");
        Ok(())
    }

    /// Deletes a principal with its credentials; `false` when it did not exist.
    pub async fn delete_principal(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = write_tx!(self.store, Change::Principals, tx => {
            // Explicit deletes, so the result does not depend on foreign-key enforcement.
            // Subscribers reload API keys on a principal change as well.
            for table in ["principal_passwords", "principal_totp"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE principal = $1"
                )))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM principal_api_keys WHERE principal = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM principals WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if deleted > 0 {
            tracing::info!(principal.id = %id, "principal.deleted");
        }
        Ok(deleted > 0)
    }

    pub async fn principal(&self, id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE id = $1"
            ));
            let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(principal_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Every principal, by id.
    pub async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY id"
            ));
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(|row| Ok(principal_from_row!(row))).collect()
        })
    }

    // Passwords.

    /// Stores a principal's password hash (a PHC string), replacing any earlier one.
    pub async fn set_password_hash(&self, principal: &str, hash: &str) -> Result<(), StoreError> {
        let now = now_millis();
        let result: Result<(), StoreError> = async {
            write_tx!(self.store, Change::Principals, tx => {
                sqlx::query(
                    "INSERT INTO principal_passwords (principal, hash, updated_at) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (principal) DO UPDATE SET hash = excluded.hash, \
                     updated_at = excluded.updated_at",
                )
                .bind(principal)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            });
            Ok(())
        }
        .await;
        match result {
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_foreign_key_violation() => {
                Err(not_found("principal", principal))
            }
            other => other,
        }
    }

    pub async fn password_hash(&self, principal: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self.store, pool => {
            Ok(sqlx::query_scalar("SELECT hash FROM principal_passwords WHERE principal = $1")
                .bind(principal)
                .fetch_optional(pool)
                .await?)
        })
    }

    // TOTP.

    /// Stores an enrolment (confirmed or not), replacing any earlier one.
    pub async fn put_totp(&self, totp: &TotpRow) -> Result<(), StoreError> {
        let now = now_millis();
        write_tx!(self.store, Change::Principals, tx => {
            sqlx::query(
                "INSERT INTO principal_totp (principal, sealed_secret, config, confirmed, \
                 last_used_step, recovery_hashes, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (principal) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                 config = excluded.config, confirmed = excluded.confirmed, \
                 last_used_step = excluded.last_used_step, \
                 recovery_hashes = excluded.recovery_hashes, updated_at = excluded.updated_at",
            )
            .bind(&totp.principal)
            .bind(&totp.sealed_secret)
            .bind(&totp.config)
            .bind(totp.confirmed)
            .bind(totp.last_used_step)
            .bind(json_text(&totp.recovery_hashes))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    pub async fn totp(&self, principal: &str) -> Result<Option<TotpRow>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {TOTP_COLUMNS} FROM principal_totp WHERE principal = $1"
            ));
            let row = sqlx::query(sql).bind(principal).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(totp_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Records the step of an accepted code, only if the stored step is still `expected`:
    /// of two concurrent logins with the same code, one wins and the other is a replay.
    /// `false` when another use came first.
    pub async fn use_totp_step(
        &self,
        principal: &str,
        expected: Option<i64>,
        step: i64,
    ) -> Result<bool, StoreError> {
        let changed = write_tx!(self.store, Change::Principals, tx => {
            sqlx::query(
                "UPDATE principal_totp SET last_used_step = $1, updated_at = $2 \
                 WHERE principal = $3 AND confirmed \
                 AND (last_used_step = $4 OR (last_used_step IS NULL AND $5))",
            )
            .bind(step)
            .bind(now_millis())
            .bind(principal)
            .bind(expected.unwrap_or(0))
            .bind(expected.is_none())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Replaces the recovery code hashes, only if they are still `expected` (each code works
    /// once even under concurrent use). `false` when they changed meanwhile.
    pub async fn replace_recovery_hashes(
        &self,
        principal: &str,
        expected: &[String],
        hashes: &[String],
    ) -> Result<bool, StoreError> {
        let changed = write_tx!(self.store, Change::Principals, tx => {
            sqlx::query(
                "UPDATE principal_totp SET recovery_hashes = $1, updated_at = $2 \
                 WHERE principal = $3 AND recovery_hashes = $4",
            )
            .bind(json_text(&hashes))
            .bind(now_millis())
            .bind(principal)
            .bind(json_text(&expected))
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    pub async fn delete_totp(&self, principal: &str) -> Result<bool, StoreError> {
        let deleted = write_tx!(self.store, Change::Principals, tx => {
            sqlx::query("DELETE FROM principal_totp WHERE principal = $1")
                .bind(principal)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    // API keys.

    /// Stores a new key record; [`StoreError::Conflict`] when the id exists.
    pub async fn create_api_key(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        let result: Result<(), StoreError> = async {
            write_tx!(self.store, Change::ApiKeys, tx => {
                sqlx::query(
                    "INSERT INTO principal_api_keys (id, principal, record, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&key.id)
                .bind(&key.principal)
                .bind(&key.record)
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
            });
            Ok(())
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("API key `{}` exists", key.id)))
            }
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_foreign_key_violation() => {
                Err(not_found("principal", &key.principal))
            }
            other => other,
        }
    }

    /// Stores a rotation: the old key's updated record and the new key, in one transaction.
    pub async fn rotate_api_key(&self, old: &ApiKeyRow, new: &ApiKeyRow) -> Result<(), StoreError> {
        write_tx!(self.store, Change::ApiKeys, tx => {
            let changed = sqlx::query("UPDATE principal_api_keys SET record = $1 WHERE id = $2")
                .bind(&old.record)
                .bind(&old.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(not_found("API key", &old.id));
            }
            sqlx::query(
                "INSERT INTO principal_api_keys (id, principal, record, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&new.id)
            .bind(&new.principal)
            .bind(&new.record)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Replaces a key's record (revocation).
    pub async fn update_api_key(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        let changed = write_tx!(self.store, Change::ApiKeys, tx => {
            sqlx::query("UPDATE principal_api_keys SET record = $1 WHERE id = $2 AND principal = $3")
                .bind(&key.record)
                .bind(&key.id)
                .bind(&key.principal)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Err(not_found("API key", &key.id));
        }
        Ok(())
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        with_pool!(self.store, pool => {
            let row = sqlx::query("SELECT id, principal, record FROM principal_api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            match row {
                Some(row) => Ok(Some(ApiKeyRow {
                    id: row.try_get("id")?,
                    principal: row.try_get("principal")?,
                    record: row.try_get("record")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Every key (revoked ones included), or those of one principal, oldest first.
    pub async fn api_keys(&self, principal: Option<&str>) -> Result<Vec<ApiKeyRow>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT id, principal, record FROM principal_api_keys \
                 WHERE $1 IS NULL OR principal = $1 ORDER BY created_at, id",
            )
            .bind(principal)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ApiKeyRow {
                        id: row.try_get("id")?,
                        principal: row.try_get("principal")?,
                        record: row.try_get("record")?,
                    })
                })
                .collect()
        })
    }

    // Signing keys.

    /// Stores a new active signing key and marks the previous active one replaced, at once.
    pub async fn add_signing_key(&self, key: &SigningKeyRow) -> Result<(), StoreError> {
        write_tx!(self.store, Change::SigningKeys, tx => {
            sqlx::query("UPDATE token_signing_keys SET replaced_at = $1 WHERE replaced_at IS NULL")
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO token_signing_keys (kid, algorithm, sealed_private, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.sealed_private)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        });
        tracing::info!(key.id = %key.kid, key.algorithm = %key.algorithm, "signing_key.added");
        Ok(())
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT kid, algorithm, sealed_private, created_at, replaced_at \
                 FROM token_signing_keys ORDER BY created_at, kid",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(SigningKeyRow {
                        kid: row.try_get("kid")?,
                        algorithm: row.try_get("algorithm")?,
                        sealed_private: row.try_get("sealed_private")?,
                        created_at: row.try_get("created_at")?,
                        replaced_at: row.try_get("replaced_at")?,
                    })
                })
                .collect()
        })
    }

    /// Deletes replaced keys replaced before `before` (their tokens have all expired).
    pub async fn retire_signing_keys(&self, before: i64) -> Result<u64, StoreError> {
        let retired = write_tx!(self.store, Change::SigningKeys, tx => {
            sqlx::query("DELETE FROM token_signing_keys WHERE replaced_at IS NOT NULL AND replaced_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(retired)
    }

    // Refresh-token families.

    /// Reads the refresh state, lets `update` change it, and stores the result, with every
    /// other writer (on any node) held off in between: rotation and reuse detection then see
    /// one order of events. `update` gets the stored snapshot (`None` at first) and returns
    /// the new one and its answer.
    pub async fn update_refresh_families<T>(
        &self,
        update: impl FnOnce(Option<String>) -> (String, T),
    ) -> Result<T, StoreError> {
        let select = match self.store.kind() {
            BackendKind::Sqlite => "SELECT snapshot FROM refresh_families WHERE id = 1",
            BackendKind::Postgres => {
                "SELECT snapshot FROM refresh_families WHERE id = 1 FOR UPDATE"
            }
        };
        let now = now_millis();
        let answer = write_tx!(self.store, Change::RefreshFamilies, tx => {
            if self.store.kind() == BackendKind::Postgres {
                // Two first writers cannot both insert: create the row, then lock it.
                sqlx::query(
                    "INSERT INTO refresh_families (id, snapshot, updated_at) VALUES (1, '', $1) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let stored: Option<String> = sqlx::query_scalar(select)
                .fetch_optional(&mut *tx)
                .await?;
            let (snapshot, answer) = update(stored.filter(|s| !s.is_empty()));
            sqlx::query(
                "INSERT INTO refresh_families (id, snapshot, updated_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, \
                 updated_at = excluded.updated_at",
            )
            .bind(&snapshot)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            answer
        });
        Ok(answer)
    }

    // Revocations.

    /// Revokes an access token by `jti` until `expires_at` (Unix seconds).
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        write_tx!(self.store, Change::Revocations, tx => {
            sqlx::query(
                "INSERT INTO token_revocations (jti, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Revoked tokens that have not expired at `now` (Unix seconds), as `(jti, expires_at)`.
    pub async fn revocations(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT jti, expires_at FROM token_revocations WHERE expires_at >= $1 ORDER BY jti",
            )
            .bind(now)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get("jti")?, row.try_get("expires_at")?)))
                .collect()
        })
    }

    /// Forgets revocations of tokens that expired before `before` (Unix seconds).
    pub async fn purge_revocations(&self, before: i64) -> Result<u64, StoreError> {
        with_pool!(self.store, pool => {
            Ok(sqlx::query("DELETE FROM token_revocations WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }
}
