//! Webhooks: each new alert at or above a webhook's `min_severity` is POSTed to it as JSON.
//!
//! The request carries `X-MAOS-Timestamp` (Unix seconds) and `X-MAOS-Signature:
//! sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of `<timestamp>.<body>`, so a
//! receiver can check both origin and freshness. Failed deliveries (network errors, timeouts,
//! 408, 429 and 5xx answers) are retried with exponential backoff (0.5 s, 1 s, 2 s... at most
//! 30 s between attempts) up to `max_attempts`; other 4xx answers are final.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use maos_core::{Severity, Timestamp};
use maos_siem::Alert;
use tokio::sync::{Semaphore, broadcast};
use zeroize::Zeroizing;

use super::config::WebhookConfig;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-maos-signature";
/// The timestamp header, part of the signed text.
pub const TIMESTAMP_HEADER: &str = "x-maos-timestamp";

/// Deliveries in flight per webhook.
const CONCURRENT_DELIVERIES: usize = 16;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `sha256=<hex>` of HMAC-SHA256 under `secret` of `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    format!("sha256={}", hex::encode(context.sign().as_ref()))
}

/// Delivers alerts to one webhook.
pub struct WebhookSender {
    url: String,
    secret: Arc<Zeroizing<Vec<u8>>>,
    min_severity: Severity,
    max_attempts: u32,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("min_severity", &self.min_severity)
            .finish()
    }
}

impl WebhookSender {
    /// Reads the secret (from `secret_file` when given) and builds the HTTP client.
    pub fn new(config: &WebhookConfig) -> Result<Self, String> {
        let secret = if config.secret_file.as_os_str().is_empty() {
            Zeroizing::new(config.secret.as_bytes().to_vec())
        } else {
            let text = Zeroizing::new(
                std::fs::read_to_string(&config.secret_file)
                    .map_err(|e| format!("cannot read {}: {e}", config.secret_file.display()))?,
            );
            Zeroizing::new(text.trim().as_bytes().to_vec())
        };
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            url: config.url.clone(),
            secret: Arc::new(secret),
            min_severity: config.min_severity,
            max_attempts: config.max_attempts.max(1),
            client,
        })
    }

    /// Delivers every qualifying alert until the alert channel closes.
    pub async fn run(self, mut alerts: broadcast::Receiver<Arc<Alert>>) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES));
        loop {
            let alert = match alerts.recv().await {
                Ok(alert) => alert,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, url = %this.url, "siem.webhook.lagged");
                    metrics::counter!("maos_siem_webhook_dropped_total").increment(missed);
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if alert.severity < this.min_severity {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let sender = this.clone();
            tokio::spawn(async move {
                sender.deliver(&alert).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, alert: &Alert) {
        let body = match serde_json::to_vec(alert) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "siem.webhook.unserializable");
                return;
            }
        };
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=self.max_attempts {
            let timestamp = Timestamp::now().unix_seconds().to_string();
            let signed = signature(&self.secret, &timestamp, &body);
            let sent = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, &timestamp)
                .header(SIGNATURE_HEADER, signed)
                .body(body.clone())
                .send()
                .await;
            let retry = match sent {
                Ok(response) if response.status().is_success() => {
                    metrics::counter!("maos_siem_webhook_deliveries_total", "result" => "delivered")
                        .increment(1);
                    tracing::debug!(url = %self.url, alert.id = %alert.id, attempt, "siem.webhook.delivered");
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT
                }
                Err(error) => {
                    tracing::debug!(%error, url = %self.url, attempt, "siem.webhook.attempt_failed");
                    true
                }
            };
            if !retry || attempt == self.max_attempts {
                break;
            }
            metrics::counter!("maos_siem_webhook_retries_total").increment(1);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        tracing::warn!(url = %self.url, alert.id = %alert.id, "siem.webhook.failed");
        metrics::counter!("maos_siem_webhook_deliveries_total", "result" => "failed").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let sig = signature(b"secret", "1700000000", br#"{"id":"a"}"#);
        let tag = hex::decode(sig.strip_prefix("sha256=").unwrap()).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        assert!(hmac::verify(&key, br#"1700000000.{"id":"a"}"#, &tag).is_ok());
        assert_ne!(
            signature(b"secret", "1", b"x"),
            signature(b"secret", "2", b"x")
        );
        assert_ne!(
            signature(b"secret", "1", b"x"),
            signature(b"other", "1", b"x")
        );
    }
}
