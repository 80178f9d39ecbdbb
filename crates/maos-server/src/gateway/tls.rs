//! TLS termination for gateway listeners, behind one small seam: [`Terminator`] turns an
//! accepted TCP connection into a stream and, with mTLS, the client certificate the handshake
//! verified. Only TLS 1.2 and 1.3 with rustls' default (AEAD, forward-secret) suites are
//! offered. The certificate files are watched: a changed certificate or key is used for new
//! connections without a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;

use super::config::{ClientAuth, TlsConfig};

/// An accepted connection after termination.
#[derive(Debug)]
pub enum Accepted {
    Plain(TcpStream),
    Tls {
        stream: Box<tokio_rustls::server::TlsStream<TcpStream>>,
        /// The DER of the verified client certificate, when one was presented.
        client_certificate: Option<Arc<Vec<u8>>>,
    },
}

/// How a listener terminates connections.
#[derive(Clone, Debug)]
pub enum Terminator {
    Plain,
    Tls(Arc<ArcSwap<ServerConfig>>),
}

/// How often certificate files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

impl Terminator {
    /// A terminator for the route's `tls` table, and the task that reloads its files.
    pub fn new(tls: Option<&TlsConfig>) -> anyhow::Result<Terminator> {
        let Some(tls) = tls else {
            return Ok(Terminator::Plain);
        };
        let config = Arc::new(ArcSwap::from_pointee(server_config(tls)?));
        let watched = Arc::downgrade(&config);
        let settings = tls.clone();
        tokio::spawn(async move {
            let mut seen = modified(&settings);
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(config) = watched.upgrade() else {
                    return;
                };
                let now = modified(&settings);
                if now == seen {
                    continue;
                }
                match server_config(&settings) {
                    Ok(fresh) => {
                        config.store(Arc::new(fresh));
                        seen = now;
                        tracing::info!(cert = %settings.cert.display(), "gateway.tls.reloaded");
                    }
                    // Half-written files: keep the old certificate and look again later.
                    Err(error) => tracing::warn!(%error, "gateway.tls.reload_failed"),
                }
            }
        });
        Ok(Terminator::Tls(config))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Terminator::Tls(_))
    }

    /// Completes the handshake (TLS) or hands the connection on (plain).
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<Accepted> {
        match self {
            Terminator::Plain => Ok(Accepted::Plain(tcp)),
            Terminator::Tls(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.load_full());
                let stream = acceptor.accept(tcp).await?;
                let client_certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|der| Arc::new(der.as_ref().to_vec()));
                Ok(Accepted::Tls {
                    stream: Box::new(stream),
                    client_certificate,
                })
            }
        }
    }
}

fn modified(tls: &TlsConfig) -> Vec<Option<SystemTime>> {
    let mut files = vec![tls.cert.as_path(), tls.key.as_path()];
    if let Some(ca) = &tls.client_ca {
        files.push(ca.as_path());
    }
    files
        .into_iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{}: no certificate", path.display());
    }
    Ok(certificates)
}

/// The rustls configuration for the route's files.
pub fn server_config(tls: &TlsConfig) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = read_certificates(&tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("{}: no PEM private key", tls.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?;
    let builder = match (tls.client_auth, &tls.client_ca) {
        (ClientAuth::Off, _) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in read_certificates(ca)? {
                roots
                    .add(certificate)
                    .with_context(|| format!("{}: unusable CA certificate", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().context("client verifier")?)
        }
        (_, None) => anyhow::bail!("tls.client_auth needs tls.client_ca"),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The server's order of suites (strongest first), not the client's: a client cannot steer
    // a TLS 1.2 handshake towards the weakest suite both sides offer.
    config.ignore_client_order = true;
    Ok(config)
}
