//! TLS for HTTP listeners: rustls with the aws-lc-rs provider, TLS 1.2 and 1.3, optional or
//! required client certificates, and certificates that are reloaded when their files change.
//!
//! [`TlsReloader`] builds a rustls [`ServerConfig`] from PEM files and swaps in a new one when
//! the files' contents change; [`serve`] accepts TCP connections, runs the handshake and serves
//! an axum router over each TLS stream with hyper's HTTP/1.1 + HTTP/2 connection builder. The
//! verified client certificate reaches handlers as the request extension
//! [`ClientCertificate`]. The module depends on nothing of the server but axum, so other
//! listeners (the gateway) can use it too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Whether the listener asks for client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is requested.
    #[default]
    None,
    /// A certificate is requested; one from an unknown CA fails the handshake, none is fine.
    Optional,
    /// A certificate from the configured CA is required for the handshake to succeed.
    Required,
}

/// `[server.tls]`: the listener's certificate and the client-certificate policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate, followed by its intermediates.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file with the CA certificates that client certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// How often the files are checked for changes.
    #[serde(default = "default_reload_seconds")]
    pub reload_seconds: u64,
    /// How long a client may take to complete the handshake.
    #[serde(default = "default_handshake_timeout_seconds")]
    pub handshake_timeout_seconds: u64,
}

fn default_reload_seconds() -> u64 {
    10
}

fn default_handshake_timeout_seconds() -> u64 {
    10
}

impl TlsConfig {
    /// Checks what the types cannot (run at configuration load; the files are read at start).
    pub fn validate(&self) -> Result<(), String> {
        if self.client_auth != ClientAuth::None && self.client_ca.is_none() {
            return Err("server.tls.client_ca: required when client_auth is not `none`".into());
        }
        if self.reload_seconds == 0 {
            return Err("server.tls.reload_seconds: must be positive".into());
        }
        if self.handshake_timeout_seconds == 0 {
            return Err("server.tls.handshake_timeout_seconds: must be positive".into());
        }
        Ok(())
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}`: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("`{path}` holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("the certificate and key are not usable: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the client CA: {0}")]
    ClientCa(String),
}

/// The leaf certificate a client presented and the handshake verified against the configured
/// CA, as a request extension.
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Arc<CertificateDer<'static>>);

impl ClientCertificate {
    pub fn der(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// The files' bytes a configuration was built from, to notice changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Snapshot {
    fn read(config: &TlsConfig) -> Result<Snapshot, TlsError> {
        Ok(Snapshot {
            cert: read(&config.cert)?,
            key: read(&config.key)?,
            client_ca: config.client_ca.as_deref().map(read).transpose()?,
        })
    }
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The rustls configuration: aws-lc-rs's cipher suites (all AEAD with ECDHE key exchange),
/// TLS 1.3 and 1.2 only, ALPN for HTTP/2 and HTTP/1.1.
fn build(config: &TlsConfig, files: &Snapshot) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&files.cert, &config.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| TlsError::Pem {
        path: config.key.clone(),
        message: e.to_string(),
    })?;

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match (config.client_auth, &files.client_ca, &config.client_ca) {
        (ClientAuth::None, _, _) => builder.with_no_client_auth(),
        (mode, Some(pem), Some(path)) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(pem, path)? {
                roots
                    .add(ca)
                    .map_err(|e| TlsError::ClientCa(format!("`{}`: {e}", path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::ClientCa(e.to_string()))?,
            )
        }
        _ => {
            return Err(TlsError::ClientCa(
                "client_ca is required when client_auth is not `none`".into(),
            ));
        }
    };
    let mut server = builder.with_single_cert(chain, key)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The server's order of suites (strongest first), not the client's: a client cannot steer
    // a TLS 1.2 handshake towards the weakest suite both sides offer.
    server.ignore_client_order = true;
    Ok(server)
}

/// The current rustls configuration, rebuilt when the PEM files change.
#[derive(Debug)]
pub struct TlsReloader {
    config: TlsConfig,
    current: ArcSwap<ServerConfig>,
    files: std::sync::Mutex<Snapshot>,
}

impl TlsReloader {
    /// Reads the files and builds the first configuration; errors here stop the start.
    pub fn new(config: TlsConfig) -> Result<Arc<TlsReloader>, TlsError> {
        let files = Snapshot::read(&config)?;
        let server = build(&config, &files)?;
        Ok(Arc::new(TlsReloader {
            config,
            current: ArcSwap::from_pointee(server),
            files: std::sync::Mutex::new(files),
        }))
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Rereads the files; when they changed and build a valid configuration, swaps it in.
    /// A broken new file keeps the old configuration in force (the error says why).
    pub fn reload(&self) -> Result<bool, TlsError> {
        let files = Snapshot::read(&self.config)?;
        let mut last = self
            .files
            .lock()
            .map_err(|_| TlsError::ClientCa("the reload state is poisoned".into()))?;
        if *last == files {
            return Ok(false);
        }
        let server = build(&self.config, &files)?;
        self.current.store(Arc::new(server));
        *last = files;
        Ok(true)
    }

    /// Checks the files every `reload_seconds` until the task is dropped or aborted.
    pub async fn watch(self: Arc<Self>) {
        let mut tick =
            tokio::time::interval(Duration::from_secs(self.config.reload_seconds.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.reload() {
                Ok(true) => tracing::info!(cert = %self.config.cert.display(), "tls.reloaded"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "tls.reload_failed"),
            }
        }
    }
}

/// A failed handshake, for the caller's logs and security events.
#[derive(Debug)]
pub struct HandshakeFailure {
    pub peer: SocketAddr,
    /// The rustls error when there was one (`None`: I/O error or timeout).
    pub error: Option<rustls::Error>,
    pub message: String,
}

impl HandshakeFailure {
    /// Whether the client's certificate was missing or refused (rather than, say, a scanner
    /// speaking plain HTTP to the TLS port).
    pub fn is_certificate_failure(&self) -> bool {
        matches!(
            self.error,
            Some(rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_))
        )
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone), holding no borrow of it.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Called for every failed handshake.
pub type OnHandshakeFailure = Arc<dyn Fn(HandshakeFailure) + Send + Sync>;

/// Serves `router` on `listener` until `shutdown` turns true, then lets the open connections
/// finish their requests. With `tls` every connection first completes a TLS handshake; without
/// it the connection is plain HTTP. Both go through the same hyper connection builder, whose
/// HTTP/1 request headers must arrive within `header_timeout` (a client that never finishes its
/// header is disconnected instead of holding the connection, and the shutdown, forever).
/// Requests carry `ConnectInfo<SocketAddr>` and, when the client presented a verified
/// certificate, [`ClientCertificate`].
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<TlsReloader>>,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    on_failure: OnHandshakeFailure,
    header_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let handshake_timeout = tls
        .as_ref()
        .map(|tls| Duration::from_secs(tls.config.handshake_timeout_seconds));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(%error, "http.accept_failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        let router = router.clone();
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let handshake = tls
            .as_ref()
            .zip(handshake_timeout)
            .map(|(tls, timeout)| (tokio_rustls::TlsAcceptor::from(tls.current()), timeout));
        let on_failure = on_failure.clone();
        tokio::spawn(async move {
            let Some((acceptor, handshake_timeout)) = handshake else {
                let service = request_service(router, peer, None);
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                if let Err(error) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%peer, %error, "http.connection_ended");
                }
                return;
            };
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    let rustls_error = error
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .cloned();
                    on_failure(HandshakeFailure {
                        peer,
                        error: rustls_error,
                        message: error.to_string(),
                    });
                    return;
                }
                Err(_) => {
                    on_failure(HandshakeFailure {
                        peer,
                        error: None,
                        message: "handshake timed out".into(),
                    });
                    return;
                }
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertificate(Arc::new(leaf.clone().into_owned())));
            let service = request_service(router, peer, certificate);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "tls.connection_ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The per-connection hyper service: the router, with the peer address and the verified client
/// certificate as request extensions.
fn request_service(
    router: axum::Router,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        router.clone().oneshot(request.map(axum::body::Body::new))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aead_suites_with_forward_secrecy_are_offered() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        for suite in &provider.cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name}"
            );
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
        }
    }

    #[test]
    fn client_auth_without_a_ca_is_refused() {
        let config: TlsConfig =
            toml::from_str("cert = \"c.pem\"\nkey = \"k.pem\"\nclient_auth = \"required\"")
                .unwrap();
        assert!(config.validate().is_err());
        let config: TlsConfig = toml::from_str("cert = \"c.pem\"\nkey = \"k.pem\"").unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert!(
            toml::from_str::<TlsConfig>("cert = \"c\"\nkey = \"k\"\nclient_auth = \"maybe\"")
                .is_err()
        );
    }
}
