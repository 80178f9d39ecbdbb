//! Client certificates as credentials: the leaf the TLS handshake verified, mapped to a
//! principal by `[[identity.certificate_rules]]` (see `maos_identity::certificate`).
//!
//! The CA check happens in the handshake ([`crate::tls`]): a certificate from an unknown CA
//! never reaches this module. A verified certificate that no rule maps is invalid credentials.

use std::sync::Arc;

use maos_core::Subject;
use maos_core::event::{SecurityEvent, SecurityEventType, Severity, Timestamp};
use maos_identity::certificate::{CertificateError, CertificateMapper};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::auth::{AuthOutcome, Authenticator, Caller, Credentials};

/// Where authenticators publish their security events (the `AppState::events` channel).
pub type EventSender = broadcast::Sender<Arc<SecurityEvent>>;

/// An `authentication_failure` event from the identity component; sending is best effort.
pub(crate) fn emit_failure(
    events: &EventSender,
    principal: Option<String>,
    reason: &str,
    details: Map<String, Value>,
) {
    let mut id = [0u8; 16];
    let id = match getrandom::fill(&mut id) {
        Ok(()) => hex::encode(id),
        Err(_) => format!("identity-{}", Timestamp::now().unix_micros()),
    };
    let mut event = SecurityEvent::new(
        id,
        Timestamp::now(),
        "identity",
        SecurityEventType::AuthenticationFailure,
        Severity::Medium,
    );
    event.principal = principal;
    event.details = details;
    event
        .details
        .insert("event.reason".into(), Value::String(reason.to_owned()));
    let _ = events.send(Arc::new(event));
}

/// Authenticates requests by their verified client certificate.
///
/// A request with an `Authorization` header is left to the other authenticators: the header
/// is the credential then, so an unrecognised or refused bearer value is never rescued by the
/// certificate of the same connection.
#[derive(Debug)]
pub struct CertificateAuthenticator {
    mapper: CertificateMapper,
    events: EventSender,
    /// Where refusals are audited.
    identity: Arc<crate::identity::IdentityService>,
}

impl CertificateAuthenticator {
    pub fn new(
        mapper: CertificateMapper,
        events: EventSender,
        identity: Arc<crate::identity::IdentityService>,
    ) -> Self {
        CertificateAuthenticator {
            mapper,
            events,
            identity,
        }
    }
}

impl Authenticator for CertificateAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        if credentials.authorization.is_some() {
            return AuthOutcome::Missing;
        }
        let Some(der) = credentials.client_certificate else {
            return AuthOutcome::Missing;
        };
        match self.mapper.map_der(der) {
            Ok(matched) => {
                let id = matched.principal;
                tracing::debug!(
                    principal.id = %id,
                    rule = matched.rule,
                    value = %matched.value,
                    "mtls.authenticated"
                );
                AuthOutcome::Authenticated(Arc::new(Caller {
                    subject: Subject::new(id.kind().prefix(), id.name()),
                    roles: Vec::new(),
                    credential: format!("mtls:rule-{}", matched.rule),
                }))
            }
            Err(error) => {
                let reason = match &error {
                    CertificateError::NoMatch => "certificate_unmapped",
                    CertificateError::BadPrincipal { .. } => "certificate_bad_principal",
                    _ => "certificate_unparsable",
                };
                tracing::info!(%error, reason, "mtls.refused");
                let mut details = Map::new();
                details.insert("error.message".into(), Value::String(error.to_string()));
                emit_failure(&self.events, None, reason, details);
                self.identity.audit_rejection("certificate", None, reason);
                AuthOutcome::Invalid
            }
        }
    }
}

/// Reports failed TLS handshakes: a missing or refused client certificate is an
/// `authentication_failure` event; other failures (scanners, plain HTTP on the TLS port) are
/// only logged.
pub fn handshake_failure_events(events: EventSender) -> crate::tls::OnHandshakeFailure {
    Arc::new(move |failure: crate::tls::HandshakeFailure| {
        if !failure.is_certificate_failure() {
            tracing::debug!(peer = %failure.peer, error = %failure.message, "tls.handshake_failed");
            return;
        }
        tracing::info!(peer = %failure.peer, error = %failure.message, "mtls.handshake_refused");
        let mut details = Map::new();
        details.insert("error.message".into(), Value::String(failure.message));
        details.insert("source.port".into(), Value::from(failure.peer.port()));
        let reason = match failure.error {
            Some(rustls::Error::NoCertificatesPresented) => "certificate_missing",
            _ => "certificate_refused",
        };
        let mut id = [0u8; 16];
        let _ = getrandom::fill(&mut id);
        let mut event = SecurityEvent::new(
            hex::encode(id),
            Timestamp::now(),
            "identity",
            SecurityEventType::AuthenticationFailure,
            Severity::Medium,
        );
        event.source_ip = Some(failure.peer.ip());
        event.details = details;
        event
            .details
            .insert("event.reason".into(), Value::String(reason.into()));
        let _ = events.send(Arc::new(event));
    })
}
