//! Starting and stopping the server: storage, bootstrap, caches, listeners, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use maos_store::{NewApiToken, NewPolicyVersion, Store, StoreError, StoreOptions, hash_token};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::generate_token;
use crate::config::Config;
use crate::state::{AppState, DEFAULT_BUNDLE, follow_changes};

/// The id of the bootstrap admin token.
pub const BOOTSTRAP_TOKEN_ID: &str = "bootstrap";

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub grpc_addr: Option<SocketAddr>,
    /// The gateway listeners' addresses, in the order of `[[gateway.routes]]`.
    pub gateway_addrs: Vec<SocketAddr>,
    pub state: Arc<AppState>,
    /// The admin token generated on this start (first start without `MAOS_ADMIN_TOKEN`); the
    /// caller shows it once. Only its hash is stored.
    pub generated_admin_token: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// Opens storage, installs the default bundle and admin token on first start, fills the caches,
/// and starts serving HTTP (and gRPC when configured).
pub async fn start(config: Config, admin_token: Option<String>) -> anyhow::Result<RunningServer> {
    crate::metrics::install();
    let config = Arc::new(config);

    if config.storage.url.is_empty() {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.server.data_dir.display()
            )
        })?;
    }
    let url = config.storage_url();
    let options = StoreOptions {
        max_connections: config.storage.max_connections,
        ..StoreOptions::default()
    };
    let store = Store::open(&url, &options)
        .await
        .with_context(|| format!("cannot open storage {}", maos_store::redact_url(&url)))?;
    tracing::info!(backend = store.kind().as_str(), "storage.opened");

    // The audit log comes first: nothing is served unless it can be written.
    let keys = crate::audit_log::load_or_create_keys(&config.audit, &config.server.data_dir)?;
    let audit = Arc::new(crate::audit_log::StoreAudit::start(
        store.clone(),
        &config.audit,
        keys,
    ));
    // One root key-encryption key for the key service and the identity provider's signing keys.
    let kek = crate::keys::open_kek(&config)?;
    let state = Arc::new(AppState::new(
        config.clone(),
        store.clone(),
        audit,
        kek.clone(),
    )?);
    // Subscribe before loading, so no change between the load and the subscription is lost.
    let changes = store.subscribe();

    install_default_bundle(&store).await?;
    let generated_admin_token = install_admin_token(&store, &config, admin_token).await?;
    state
        .reload_all()
        .await
        .context("cannot load state from storage")?;

    let keys = crate::keys::KeyService::open(&config, store.clone(), state.audit_sink.clone(), kek)
        .await
        .context("cannot start the key service")?;
    let _ = state.keys.set(keys.clone());
    state.responder.attach(&state);

    let mut background = vec![tokio::spawn(follow_changes(state.clone(), changes))];
    background.push(tokio::spawn(crate::identity::run_maintenance(
        state.clone(),
    )));
    background.push(tokio::spawn(crate::response::run_expiry(state.clone())));
    background.push(tokio::spawn(keys.clone().rewrap_worker()));
    background.push(tokio::spawn(keys.lifecycle_worker(Duration::from_secs(
        config.keys.rotation_check_seconds,
    ))));
    background.push(tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            crate::metrics::upkeep();
        }
    }));

    let (shutdown, signal) = watch::channel(false);
    let mut tasks = Vec::new();

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let http_addr = listener.local_addr()?;
    let _ = state.http_addr.set(http_addr);
    if config.server.public_url.is_empty() {
        tracing::warn!(
            base = %state.public_base_url(),
            "server.public_url is not set; metadata documents name the listen address"
        );
    }
    background.extend(state.federation.spawn_refresh().await?);
    let reloader = match &config.server.tls {
        Some(tls) => {
            let reloader = crate::tls::TlsReloader::new(tls.clone())
                .context("cannot set up TLS for the HTTP listener")?;
            background.push(tokio::spawn(reloader.clone().watch()));
            Some(reloader)
        }
        None => None,
    };
    // Plain HTTP and TLS share one accept loop, with its header read timeout.
    tasks.push(tokio::spawn(crate::tls::serve(
        listener,
        reloader,
        crate::routes::router(state.clone()),
        signal.clone(),
        crate::mtls::handshake_failure_events(state.events.clone()),
        Duration::from_secs(config.server.header_timeout_seconds),
    )));

    let grpc_addr = match config.grpc.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (grpc)"))?;
            let grpc_addr = listener.local_addr()?;
            let service = crate::grpc::ExtAuthz::service(state.clone());
            let mut grpc_signal = signal.clone();
            tasks.push(tokio::spawn(async move {
                let served = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        async move {
                            let _ = grpc_signal.wait_for(|stop| *stop).await;
                        },
                    )
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "grpc.server_failed");
                }
            }));
            Some(grpc_addr)
        }
        None => None,
    };

    let gateway = crate::gateway::start(&state, signal.clone()).await?;
    let siem = crate::siem::start(&state, signal.clone())
        .await
        .context("cannot start the SIEM")?;
    tasks.extend(siem.pipeline);
    background.extend(siem.background);
    background.push(spawn_playbooks(&state));
    tasks.extend(gateway.tasks);

    state.set_ready(true);
    tracing::info!(http = %http_addr, grpc = ?grpc_addr, "server.started");
    Ok(RunningServer {
        http_addr,
        grpc_addr,
        gateway_addrs: gateway.addrs,
        state,
        generated_admin_token,
        shutdown,
        tasks,
        background,
    })
}

async fn install_default_bundle(store: &Store) -> anyhow::Result<()> {
    if store.policy_versions().active().await?.is_some() {
        return Ok(());
    }
    let bundle = maos_policy::Bundle::parse(DEFAULT_BUNDLE, "default-bundle.yaml")
        .map_err(|e| anyhow::anyhow!("the built-in default bundle is invalid: {e}"))?;
    let created = store
        .policy_versions()
        .create(NewPolicyVersion {
            author: "maos".into(),
            comment: "default bundle, installed on first start".into(),
            source: bundle.to_json(),
            activate: true,
            expected_active: Some(None),
        })
        .await;
    match created {
        Ok(version) => {
            tracing::info!(
                policy.version = version.summary.id,
                "policy.default_installed"
            );
            Ok(())
        }
        // Another node installed it first.
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

async fn install_admin_token(
    store: &Store,
    config: &Config,
    admin_token: Option<String>,
) -> anyhow::Result<Option<String>> {
    let tokens = store.api_tokens();
    let new = |token: &str| NewApiToken {
        id: BOOTSTRAP_TOKEN_ID.into(),
        principal: config.admin.principal.clone(),
        roles: config.admin.roles.clone(),
        description: "bootstrap admin token".into(),
        token_hash: hash_token(token),
        expires_at: None,
    };
    if let Some(token) = admin_token.filter(|t| !t.is_empty()) {
        tokens.upsert(new(&token)).await?;
        return Ok(None);
    }
    if tokens.get(BOOTSTRAP_TOKEN_ID).await?.is_some() {
        return Ok(None);
    }
    let (_, token) = generate_token().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    match tokens.create(new(&token)).await {
        Ok(_) => Ok(Some(token)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

impl RunningServer {
    /// Stops accepting, lets requests in flight finish within the grace period, and closes the
    /// store.
    pub async fn shutdown(self) {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_seconds);
        self.state.set_ready(false);
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("server.shutdown_grace_exceeded");
                abort.abort();
            }
        }
        for task in self.background {
            task.abort();
        }
        // Commits what is queued and covers every record with a final checkpoint.
        self.state.audit_sink.close().await;
        self.state.store.close().await;
        tracing::info!("server.stopped");
    }

    /// Runs until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await?;
        tracing::info!("server.stopping");
        self.shutdown().await;
        Ok(())
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            result = tokio::signal::ctrl_c() => result?,
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}

/// Runs a server on a new multi-threaded runtime until SIGTERM or Ctrl-C (for `maos serve`).
/// `on_start` sees the running server once, e.g. to print a generated admin token.
pub fn run_blocking(
    config: Config,
    admin_token: Option<String>,
    on_start: impl FnOnce(&RunningServer),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = start(config, admin_token).await?;
        on_start(&server);
        server.run_until_signal().await
    })
}

/// Hands every new alert to the responder, whose playbooks decide what, if anything, to do.
/// Alerts arrive as they are raised (before they are stored), so that the detect-to-enforce
/// time is the detector's and the action's, not the storage batch's.
fn spawn_playbooks(state: &Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let mut hits = state.siem.subscribe_hits();
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            match hits.recv().await {
                Ok(hit) => {
                    let trigger = crate::response::Trigger::from_hit(&hit);
                    state.responder.handle(&trigger).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::error!(missed, "response.alerts_missed");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}
