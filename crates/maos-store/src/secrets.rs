//! The secrets store: versions of secrets, each encrypted by the key service (the store sees
//! ciphertexts only), and the jobs that re-encrypt them to the latest key version.
//!
//! A job walks the secrets of its key in `(path, version)` order. Each chunk of results is
//! committed in one transaction together with the new ciphertexts and the job's cursor, so a
//! server that stops at any point resumes after the last committed item and never handles an
//! item twice.

use serde::Serialize;
use sqlx::Row;

use crate::{Change, Store, StoreError, now_millis, with_pool, write_tx};

/// One stored version of a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretVersion {
    pub path: String,
    pub version: i64,
    pub key_name: String,
    pub key_version: i64,
    /// `maos:v<n>:<base64>`, bound to the path and version by its associated data.
    #[serde(skip)]
    pub ciphertext: String,
    pub created_at: i64,
}

/// Where a re-encryption job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RewrapJobState {
    Running,
    Done,
}

impl RewrapJobState {
    fn as_str(self) -> &'static str {
        match self {
            RewrapJobState::Running => "running",
            RewrapJobState::Done => "done",
        }
    }
}

/// A re-encryption job and its progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RewrapJob {
    pub id: i64,
    pub key_name: String,
    /// The key version every secret is moved to.
    pub target_version: i64,
    pub state: RewrapJobState,
    /// Secret versions of the key when the job started.
    pub total: i64,
    /// Items handled (re-encrypted, already current, or failed).
    pub done: i64,
    pub failed: i64,
    pub cursor_path: Option<String>,
    pub cursor_version: Option<i64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RewrapOutcome {
    /// Re-encrypted: the new ciphertext replaces the old one.
    Rewrapped {
        #[serde(skip)]
        ciphertext: String,
        to_version: i64,
    },
    /// Already at the target version (or newer).
    Current,
    /// Deleted while the job ran; nothing to re-encrypt.
    Gone,
    /// Could not be re-encrypted; the reason names no secret material.
    Failed { reason: String },
}

/// One handled item of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RewrapItem {
    pub path: String,
    pub version: i64,
    pub from_version: i64,
    #[serde(flatten)]
    pub outcome: RewrapOutcome,
}

/// The repository of secrets and re-encryption jobs.
#[derive(Debug)]
pub struct Secrets<'s> {
    store: &'s Store,
}

const SECRET_COLUMNS: &str = "path, version, key_name, key_version, ciphertext, created_at";
const JOB_COLUMNS: &str = "id, key_name, target_version, state, total, done, failed, \
                           cursor_path, cursor_version, started_at, finished_at";

macro_rules! secret_from_row {
    ($row:expr) => {
        SecretVersion {
            path: $row.try_get("path")?,
            version: $row.try_get("version")?,
            key_name: $row.try_get("key_name")?,
            key_version: $row.try_get("key_version")?,
            ciphertext: $row.try_get("ciphertext")?,
            created_at: $row.try_get("created_at")?,
        }
    };
}

macro_rules! job_from_row {
    ($row:expr) => {{
        let state: String = $row.try_get("state")?;
        RewrapJob {
            id: $row.try_get("id")?,
            key_name: $row.try_get("key_name")?,
            target_version: $row.try_get("target_version")?,
            state: match state.as_str() {
                "running" => RewrapJobState::Running,
                "done" => RewrapJobState::Done,
                other => return Err(StoreError::corrupt("rewrap job state", other)),
            },
            total: $row.try_get("total")?,
            done: $row.try_get("done")?,
            failed: $row.try_get("failed")?,
            cursor_path: $row.try_get("cursor_path")?,
            cursor_version: $row.try_get("cursor_version")?,
            started_at: $row.try_get("started_at")?,
            finished_at: $row.try_get("finished_at")?,
        }
    }};
}

fn secrets_change() -> Change {
    Change::Other("secrets".into())
}

impl<'s> Secrets<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// The version a new value of `path` gets: one more than the highest stored.
    pub async fn next_version(&self, path: &str) -> Result<i64, StoreError> {
        let highest: Option<i64> = with_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT MAX(version) FROM secrets WHERE path = $1")
                .bind(path)
                .fetch_one(pool)
                .await?
        });
        Ok(highest.unwrap_or(0) + 1)
    }

    /// Stores a new version; [`StoreError::Conflict`] when another writer stored this version
    /// first (encrypt again with the next version and retry).
    pub async fn insert(&self, secret: &SecretVersion) -> Result<(), StoreError> {
        let result: Result<(), StoreError> = async {
            write_tx!(self.store, secrets_change(), tx => {
                sqlx::query(
                    "INSERT INTO secrets \
                     (path, version, key_name, key_version, ciphertext, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&secret.path)
                .bind(secret.version)
                .bind(&secret.key_name)
                .bind(secret.key_version)
                .bind(&secret.ciphertext)
                .bind(secret.created_at)
                .execute(&mut *tx)
                .await?;
            });
            Ok(())
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(format!(
                "version {} of secret `{}` exists",
                secret.version, secret.path
            ))),
            other => other,
        }
    }

    /// One version of a secret, or the latest when `version` is `None`.
    pub async fn get(
        &self,
        path: &str,
        version: Option<i64>,
    ) -> Result<Option<SecretVersion>, StoreError> {
        with_pool!(self.store, pool => {
            let row = match version {
                Some(version) => {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {SECRET_COLUMNS} FROM secrets WHERE path = $1 AND version = $2"
                    ));
                    sqlx::query(sql).bind(path).bind(version).fetch_optional(pool).await?
                }
                None => {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {SECRET_COLUMNS} FROM secrets WHERE path = $1 \
                         ORDER BY version DESC LIMIT 1"
                    ));
                    sqlx::query(sql).bind(path).fetch_optional(pool).await?
                }
            };
            match row {
                Some(row) => Ok(Some(secret_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The stored versions of a secret, oldest first.
    pub async fn versions(&self, path: &str) -> Result<Vec<i64>, StoreError> {
        with_pool!(self.store, pool => {
            Ok(sqlx::query_scalar("SELECT version FROM secrets WHERE path = $1 ORDER BY version")
                .bind(path)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Deletes one version, or every version when `version` is `None`; how many were deleted.
    pub async fn delete(&self, path: &str, version: Option<i64>) -> Result<u64, StoreError> {
        Ok(write_tx!(self.store, secrets_change(), tx => {
            match version {
                Some(version) => sqlx::query("DELETE FROM secrets WHERE path = $1 AND version = $2")
                    .bind(path)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                None => sqlx::query("DELETE FROM secrets WHERE path = $1")
                    .bind(path)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
            }
        }))
    }

    // -- re-encryption jobs ----------------------------------------------------------------

    /// Starts a job moving every secret of `key_name` to `target_version`;
    /// [`StoreError::Conflict`] while another job runs.
    pub async fn start_rewrap_job(
        &self,
        key_name: &str,
        target_version: i64,
    ) -> Result<RewrapJob, StoreError> {
        let now = now_millis();
        let result: Result<i64, StoreError> = async {
            Ok(write_tx!(self.store, secrets_change(), tx => {
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE key_name = $1")
                        .bind(key_name)
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query_scalar(
                    "INSERT INTO secret_rewrap_jobs \
                     (key_name, target_version, state, total, started_at) \
                     VALUES ($1, $2, 'running', $3, $4) RETURNING id",
                )
                .bind(key_name)
                .bind(target_version)
                .bind(total)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
            }))
        }
        .await;
        let id = match result {
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(
                    "a re-encryption job is already running".into(),
                ));
            }
            other => other?,
        };
        self.job(id).await?.ok_or_else(|| StoreError::NotFound {
            what: "rewrap job",
            id: id.to_string(),
        })
    }

    pub async fn job(&self, id: i64) -> Result<Option<RewrapJob>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLUMNS} FROM secret_rewrap_jobs WHERE id = $1"
            ));
            let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(job_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The most recent job, running or not.
    pub async fn latest_job(&self) -> Result<Option<RewrapJob>, StoreError> {
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLUMNS} FROM secret_rewrap_jobs ORDER BY id DESC LIMIT 1"
            ));
            let row = sqlx::query(sql).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(job_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The next `limit` secrets of the job's key after its cursor.
    pub async fn next_rewrap_items(
        &self,
        job: &RewrapJob,
        limit: i64,
    ) -> Result<Vec<SecretVersion>, StoreError> {
        let after_path = job.cursor_path.clone().unwrap_or_default();
        let after_version = job.cursor_version.unwrap_or(0);
        with_pool!(self.store, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {SECRET_COLUMNS} FROM secrets WHERE key_name = $1 \
                 AND (path > $2 OR (path = $2 AND version > $3)) \
                 ORDER BY path, version LIMIT $4"
            ));
            let rows = sqlx::query(sql)
                .bind(&job.key_name)
                .bind(&after_path)
                .bind(after_version)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| Ok(secret_from_row!(row))).collect()
        })
    }

    /// Commits the results of one chunk: the new ciphertexts (only where the stored one is
    /// still the one that was re-encrypted), one result row per item, and the cursor after the
    /// last item, in one transaction. Returns the job as it now stands.
    pub async fn commit_rewrap_chunk(
        &self,
        job_id: i64,
        items: &[(SecretVersion, RewrapOutcome)],
    ) -> Result<RewrapJob, StoreError> {
        let Some((last, _)) = items.last() else {
            return self.job(job_id).await?.ok_or_else(|| StoreError::NotFound {
                what: "rewrap job",
                id: job_id.to_string(),
            });
        };
        let failed = i64::try_from(
            items
                .iter()
                .filter(|(_, o)| matches!(o, RewrapOutcome::Failed { .. }))
                .count(),
        )
        .unwrap_or(i64::MAX);
        let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
        write_tx!(self.store, secrets_change(), tx => {
            for (secret, outcome) in items {
                let (to_version, result) = match outcome {
                    RewrapOutcome::Rewrapped { ciphertext, to_version } => {
                        let updated = sqlx::query(
                            "UPDATE secrets SET ciphertext = $1, key_version = $2 \
                             WHERE path = $3 AND version = $4 AND ciphertext = $5",
                        )
                        .bind(ciphertext)
                        .bind(to_version)
                        .bind(&secret.path)
                        .bind(secret.version)
                        .bind(&secret.ciphertext)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if updated == 1 {
                            (Some(*to_version), "rewrapped".to_owned())
                        } else {
                            // Deleted (or replaced) since it was read: nothing left to move.
                            (None, "gone".to_owned())
                        }
                    }
                    RewrapOutcome::Gone => (None, "gone".to_owned()),
                    RewrapOutcome::Current => (Some(secret.key_version), "current".to_owned()),
                    RewrapOutcome::Failed { reason } => (None, format!("failed: {reason}")),
                };
                sqlx::query(
                    "INSERT INTO secret_rewrap_results \
                     (job_id, path, version, from_version, to_version, result) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(job_id)
                .bind(&secret.path)
                .bind(secret.version)
                .bind(secret.key_version)
                .bind(to_version)
                .bind(result)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE secret_rewrap_jobs SET done = done + $1, failed = failed + $2, \
                 cursor_path = $3, cursor_version = $4 WHERE id = $5 AND state = 'running'",
            )
            .bind(count)
            .bind(failed)
            .bind(&last.path)
            .bind(last.version)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        });
        self.job(job_id).await?.ok_or_else(|| StoreError::NotFound {
            what: "rewrap job",
            id: job_id.to_string(),
        })
    }

    /// Marks a job finished.
    pub async fn finish_rewrap_job(&self, job_id: i64) -> Result<(), StoreError> {
        let now = now_millis();
        write_tx!(self.store, secrets_change(), tx => {
            sqlx::query(
                "UPDATE secret_rewrap_jobs SET state = $1, finished_at = $2 WHERE id = $3",
            )
            .bind(RewrapJobState::Done.as_str())
            .bind(now)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// The results of a job, in the order handled.
    pub async fn rewrap_results(&self, job_id: i64) -> Result<Vec<RewrapItem>, StoreError> {
        with_pool!(self.store, pool => {
            let rows = sqlx::query(
                "SELECT path, version, from_version, to_version, result \
                 FROM secret_rewrap_results WHERE job_id = $1 ORDER BY path, version",
            )
            .bind(job_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let result: String = row.try_get("result")?;
                    let to_version: Option<i64> = row.try_get("to_version")?;
                    let outcome = match (result.as_str(), to_version) {
                        ("rewrapped", Some(to_version)) => RewrapOutcome::Rewrapped {
                            ciphertext: String::new(),
                            to_version,
                        },
                        ("current", _) => RewrapOutcome::Current,
                        ("gone", _) => RewrapOutcome::Gone,
                        (other, _) => RewrapOutcome::Failed {
                            reason: other.strip_prefix("failed: ").unwrap_or(other).to_owned(),
                        },
                    };
                    Ok(RewrapItem {
                        path: row.try_get("path")?,
                        version: row.try_get("version")?,
                        from_version: row.try_get("from_version")?,
                        outcome,
                    })
                })
                .collect()
        })
    }
}
