//! What can go wrong in the store.

/// A storage failure. Database errors keep their source for the log; callers turn
/// [`StoreError::NotFound`] and [`StoreError::Conflict`] into client errors and everything else
/// into a generic server error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid storage URL: {0}")]
    InvalidUrl(String),

    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },

    #[error("conflict: {0}")]
    Conflict(String),

    #[error("nothing to roll back to: no earlier activation")]
    NothingToRollBack,

    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },

    #[error("audit chain: {0}")]
    AuditChain(String),

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// A unique constraint refused the change (two writers raced, or the key exists).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}
