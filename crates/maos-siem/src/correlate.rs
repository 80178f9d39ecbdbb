//! Correlation ids: events about the same source address, principal or attack share one.
//!
//! [`correlation_id_for`] derives a stable id from a key. [`Correlator`] links events over a
//! time window: an event that shares its source address or principal with an event seen
//! within the window gets that event's id, and binds its other keys to it too, as the seed's
//! correlate step does. Its memory is bounded.

use std::collections::HashMap;

use maos_core::SecurityEvent;

/// A stable correlation id for a key of a given kind (`ip`, `user`, `rule`...): FNV-1a 64.
pub fn correlation_id_for(kind: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("corr-{h:016x}")
}

/// Keys an event is correlated by.
pub fn correlation_keys(event: &SecurityEvent) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(addr) = event.source_address() {
        keys.push(format!("ip:{addr}"));
    }
    if let Some(p) = &event.principal {
        keys.push(format!("user:{p}"));
    }
    keys
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    last_seen: i64,
}

/// Assigns correlation ids to a stream of events.
#[derive(Debug)]
pub struct Correlator {
    window_secs: i64,
    max_keys: usize,
    keys: HashMap<String, Entry>,
}

impl Correlator {
    pub fn new(window_secs: i64, max_keys: usize) -> Self {
        Self {
            window_secs,
            max_keys: max_keys.max(1),
            keys: HashMap::new(),
        }
    }

    /// The correlation id for `event`, remembering its keys. An event with neither address
    /// nor principal gets an id of its own.
    pub fn assign(&mut self, event: &SecurityEvent) -> String {
        let now = event.time.unix_seconds();
        let keys = correlation_keys(event);
        if keys.is_empty() {
            return correlation_id_for("event", &event.id);
        }

        let horizon = now - self.window_secs;
        let existing = keys
            .iter()
            .filter_map(|k| self.keys.get(k))
            .find(|e| e.last_seen >= horizon)
            .map(|e| e.id.clone());
        let id = existing.unwrap_or_else(|| {
            correlation_id_for(
                "key",
                &format!("{}@{now}", keys.first().map_or("", String::as_str)),
            )
        });

        if self.keys.len() + keys.len() > self.max_keys {
            self.keys.retain(|_, e| e.last_seen >= horizon);
            if self.keys.len() + keys.len() > self.max_keys {
                self.keys.clear();
            }
        }
        for k in keys {
            self.keys.insert(
                k,
                Entry {
                    id: id.clone(),
                    last_seen: now,
                },
            );
        }
        id
    }

    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maos_core::{SecurityEventType, Severity, Timestamp};

    fn ev(id: &str, t: i64, ip: Option<&str>, user: Option<&str>) -> SecurityEvent {
        let mut e = SecurityEvent::new(
            id,
            Timestamp::from_unix_seconds(t),
            "test",
            SecurityEventType::AuthenticationFailure,
            Severity::Low,
        );
        e.source_ip = ip.map(|i| i.parse().unwrap());
        e.principal = user.map(str::to_owned);
        e
    }

    #[test]
    fn events_sharing_address_or_principal_share_an_id() {
        let mut c = Correlator::new(300, 100);
        let a = c.assign(&ev("1", 1000, Some("192.0.2.1"), None));
        let b = c.assign(&ev("2", 1010, Some("192.0.2.1"), Some("alice")));
        let d = c.assign(&ev("3", 1020, Some("198.51.100.7"), Some("alice")));
        let other = c.assign(&ev("4", 1030, Some("203.0.113.9"), Some("bob")));
        assert_eq!(a, b);
        assert_eq!(b, d);
        assert_ne!(a, other);
        // Outside the window a new id starts.
        let later = c.assign(&ev("5", 5000, Some("192.0.2.1"), None));
        assert_ne!(later, a);
    }

    #[test]
    fn memory_is_bounded() {
        let mut c = Correlator::new(300, 10);
        for i in 0..100 {
            c.assign(&ev(
                &i.to_string(),
                1000 + i,
                Some(&format!("10.0.0.{i}")),
                None,
            ));
        }
        assert!(c.tracked_keys() <= 10);
    }
}
