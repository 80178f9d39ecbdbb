//! Change notifications between the store and the in-memory caches of every node.

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// What changed. Subscribers reload the affected state from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The active policy version changed (upload, activation, rollback).
    Policy,
    /// One resource's attributes were set or removed.
    Resource { kind: String, id: String },
    /// API tokens were created or revoked.
    Tokens,
    /// Principals, their passwords or TOTP enrolments changed (their API keys may have gone
    /// with them).
    Principals,
    /// API keys were created, rotated or revoked.
    ApiKeys,
    /// A token signing key was added or retired.
    SigningKeys,
    /// An access token was revoked.
    Revocations,
    /// The refresh-token families changed (nothing is cached from them).
    RefreshFamilies,
    /// The stored record of one key of the key service changed.
    Key { name: String },
    /// The gateway's dynamic blocklist changed.
    Blocklist,
    /// Automated response actions were taken, ended or undone.
    Responses,
    /// Notifications may have been lost (a subscriber fell behind or the listening connection
    /// was re-established): reload everything.
    Resync,
    /// A change announced by a newer component that this build does not know.
    Other(String),
}

/// PostgreSQL limits a notification payload to 8000 bytes; a longer resource name is announced
/// as a resynchronisation instead.
const MAX_PAYLOAD: usize = 7900;

impl Change {
    pub(crate) fn to_payload(&self) -> String {
        match self {
            Change::Policy => "policy".to_owned(),
            Change::Tokens => "tokens".to_owned(),
            Change::Blocklist => "blocklist".to_owned(),
            Change::Responses => "responses".to_owned(),
            Change::Resync => "resync".to_owned(),
            Change::Principals => "principals".to_owned(),
            Change::ApiKeys => "apikeys".to_owned(),
            Change::SigningKeys => "signing_keys".to_owned(),
            Change::Revocations => "revocations".to_owned(),
            Change::RefreshFamilies => "refresh_families".to_owned(),
            Change::Key { name } => {
                let payload = format!("key\n{name}");
                if payload.len() > MAX_PAYLOAD {
                    "resync".to_owned()
                } else {
                    payload
                }
            }
            Change::Resource { kind, id } => {
                let payload = format!("resource\n{kind}\n{id}");
                if payload.len() > MAX_PAYLOAD {
                    "resync".to_owned()
                } else {
                    payload
                }
            }
            Change::Other(other) => other.clone(),
        }
    }

    pub(crate) fn from_payload(payload: &str) -> Change {
        match payload {
            "policy" => Change::Policy,
            "tokens" => Change::Tokens,
            "blocklist" => Change::Blocklist,
            "responses" => Change::Responses,
            "resync" => Change::Resync,
            "principals" => Change::Principals,
            "apikeys" => Change::ApiKeys,
            "signing_keys" => Change::SigningKeys,
            "revocations" => Change::Revocations,
            "refresh_families" => Change::RefreshFamilies,
            _ if payload.starts_with("key\n") => Change::Key {
                name: payload.get(4..).unwrap_or_default().to_owned(),
            },
            _ => match payload
                .strip_prefix("resource\n")
                .and_then(|rest| rest.split_once('\n'))
            {
                Some((kind, id)) => Change::Resource {
                    kind: kind.to_owned(),
                    id: id.to_owned(),
                },
                None => Change::Other(payload.to_owned()),
            },
        }
    }
}

/// The notification channel of the tables in `schema`.
pub(crate) fn channel_for_schema(schema: &str) -> String {
    if schema == "public" {
        "maos_changes".to_owned()
    } else {
        // Channel names are identifiers; quoting is avoided by keeping only safe characters.
        let safe: String = schema
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("maos_changes_{safe}")
    }
}

/// Forwards PostgreSQL notifications to the in-process broadcast until the store is dropped.
/// The listener blocks on the connection (no polling); when the connection drops, sqlx
/// reconnects and listens again, and subscribers are told to resynchronise because
/// notifications sent in between are lost.
pub(crate) async fn forward_notifications(
    mut listener: PgListener,
    changes: broadcast::Sender<Change>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let _ = changes.send(Change::from_payload(notification.payload()));
            }
            Ok(None) => {
                tracing::warn!("store.listener.reconnected");
                let _ = changes.send(Change::Resync);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "store.listener.failed");
                // Back off before reconnecting so a database that is down is not hammered.
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::Policy,
            Change::Tokens,
            Change::Blocklist,
            Change::Responses,
            Change::Resync,
            Change::Principals,
            Change::ApiKeys,
            Change::SigningKeys,
            Change::Revocations,
            Change::RefreshFamilies,
            Change::Resource {
                kind: "document".into(),
                id: "a/b:c".into(),
            },
            Change::Other("keys".into()),
            Change::Key {
                name: "payments".into(),
            },
        ] {
            assert_eq!(Change::from_payload(&change.to_payload()), change);
        }
    }

    #[test]
    fn oversized_resource_names_become_a_resync() {
        let change = Change::Resource {
            kind: "d".into(),
            id: "x".repeat(9000),
        };
        assert_eq!(change.to_payload(), "resync");
    }

    #[test]
    fn channel_names_are_safe_identifiers() {
        assert_eq!(channel_for_schema("public"), "maos_changes");
        assert_eq!(channel_for_schema("t-1\"x"), "maos_changes_t_1_x");
    }
}
