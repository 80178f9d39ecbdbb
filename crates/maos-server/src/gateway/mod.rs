//! The security gateway: listeners from `[[gateway.routes]]` that proxy to upstream services
//! and pass every request through the enforcement pipeline of `maos-gateway` (see
//! [`pipeline`] and docs/gateway.md).
//!
//! What the listeners share lives here: the dynamic blocklist (in [`AppState`], refreshed from
//! the store on change), network zones, behaviour baselines and the clients recently seen
//! misbehaving.

pub mod admin;
pub mod config;
pub mod pipeline;
pub mod proxy;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use maos_gateway::context::{Baselines, Zones};
use maos_gateway::firewall::{Block, Blocklist, StaticRules, client_net};
use maos_gateway::ratelimit::{RateWatch, RouteLimits};
use maos_gateway::route::{PathPattern, ResourceTemplate};
use maos_gateway::validate::Schema;
use maos_store::StoreError;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;
use config::{DEFAULT_HIGH_RISK, DEFAULT_SUSPICIOUS_SECONDS, GatewayConfig, GatewayRoute};
use tls::{Accepted, Terminator};

/// Unix seconds now.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AppState {
    /// Reads the live blocklist entries from the store and swaps them in.
    pub async fn reload_blocklist(&self) -> Result<(), StoreError> {
        let now = i64::try_from(now_seconds()).unwrap_or(i64::MAX);
        let records = self.store.blocklist().live(now).await?;
        let blocks = records.into_iter().filter_map(|record| {
            let Ok(net) = record.network.parse::<IpNet>() else {
                tracing::warn!(network = %record.network, "gateway.blocklist.malformed");
                return None;
            };
            Some(Block {
                net,
                until: u64::try_from(record.until).unwrap_or_default(),
                reason: record.reason,
            })
        });
        self.blocklist.store(Arc::new(Blocklist::new(blocks)));
        Ok(())
    }
}

/// Clients refused or flagged recently, by network, with the time their mark ends.
#[derive(Debug, Default)]
struct Suspects {
    until: HashMap<IpNet, u64>,
}

/// Marked networks kept before expired marks are dropped (and, if still full, all).
const MAX_SUSPECTS: usize = 100_000;

/// State shared by every gateway listener of a server.
#[derive(Debug)]
pub struct Shared {
    pub config: GatewayConfig,
    pub zones: Zones,
    baselines: Mutex<Baselines>,
    suspects: Mutex<Suspects>,
}

impl Shared {
    pub fn new(config: &GatewayConfig) -> Shared {
        let zones = Zones::new(
            config
                .zones
                .iter()
                .map(|(name, nets)| (name.as_str(), nets.as_slice())),
        );
        Shared {
            zones,
            baselines: Mutex::new(Baselines::new(config.baseline)),
            suspects: Mutex::new(Suspects::default()),
            config: config.clone(),
        }
    }

    pub fn high_risk_score(&self) -> u32 {
        self.config.high_risk_score.unwrap_or(DEFAULT_HIGH_RISK)
    }

    /// Marks the client suspicious for a while.
    pub fn suspect(&self, ip: IpAddr, now: u64) {
        let seconds = self
            .config
            .suspicious_seconds
            .unwrap_or(DEFAULT_SUSPICIOUS_SECONDS);
        let Ok(mut suspects) = self.suspects.lock() else {
            return;
        };
        if suspects.until.len() >= MAX_SUSPECTS {
            suspects.until.retain(|_, until| *until > now);
            if suspects.until.len() >= MAX_SUSPECTS {
                suspects.until.clear();
            }
        }
        suspects
            .until
            .insert(client_net(ip), now.saturating_add(seconds));
    }

    pub fn is_suspect(&self, ip: IpAddr, now: u64) -> bool {
        self.suspects
            .lock()
            .map(|s| {
                s.until
                    .get(&client_net(ip))
                    .is_some_and(|until| *until > now)
            })
            // A poisoned lock only means a panic elsewhere; count the client as suspicious.
            .unwrap_or(true)
    }

    pub fn observe(
        &self,
        principal: &str,
        ip: IpAddr,
        now: u64,
    ) -> maos_gateway::context::Behavior {
        match self.baselines.lock() {
            Ok(mut baselines) => baselines.observe(principal, ip, now),
            Err(_) => maos_gateway::context::Behavior::default(),
        }
    }

    pub fn record_denial(&self, principal: &str, now: u64) {
        if let Ok(mut baselines) = self.baselines.lock() {
            baselines.record_denial(principal, now);
        }
    }
}

/// One rule, compiled.
#[derive(Debug)]
pub struct Rule {
    pub method: String,
    pub path: PathPattern,
    pub resource: ResourceTemplate,
    pub action: String,
    pub schema: Option<Schema>,
    pub content_types: Option<Vec<String>>,
}

/// One listener: its route's configuration compiled, and what it talks to.
#[derive(Debug)]
pub struct Listener {
    pub state: Arc<AppState>,
    pub shared: Arc<Shared>,
    pub route: GatewayRoute,
    pub rules: Vec<Rule>,
    pub firewall: StaticRules,
    pub limits: RouteLimits,
    pub anomaly: Option<RateWatch>,
    pub upstream: proxy::Upstream,
    pub client: proxy::UpstreamClient,
    pub terminator: Terminator,
}

impl Listener {
    pub fn new(
        state: Arc<AppState>,
        shared: Arc<Shared>,
        route: &GatewayRoute,
    ) -> anyhow::Result<Listener> {
        let at = || format!("gateway route `{}`", route.name);
        let mut rules = Vec::with_capacity(route.rules.len());
        for rule in &route.rules {
            let schema = rule
                .schema
                .as_ref()
                .map(Schema::compile)
                .transpose()
                .map_err(anyhow::Error::msg)
                .with_context(at)?;
            rules.push(Rule {
                method: rule.method.clone(),
                path: rule.path.clone(),
                resource: rule.resource.clone(),
                action: rule.action.clone(),
                schema,
                content_types: rule.content_types.clone(),
            });
        }
        let anomaly = route
            .detection
            .anomaly_rate
            .map(|rate| {
                RateWatch::new(
                    rate,
                    route
                        .limits
                        .max_keys
                        .unwrap_or(maos_gateway::ratelimit::DEFAULT_MAX_KEYS),
                )
            })
            .transpose()
            .map_err(anyhow::Error::msg)
            .with_context(at)?;
        Ok(Listener {
            state,
            shared,
            rules,
            firewall: StaticRules::new(&route.allow, &route.deny),
            limits: RouteLimits::new(&route.limits)
                .map_err(anyhow::Error::msg)
                .with_context(at)?,
            anomaly,
            upstream: proxy::Upstream::parse(&route.upstream)
                .map_err(anyhow::Error::msg)
                .with_context(at)?,
            client: proxy::client(),
            terminator: Terminator::new(route.tls.as_ref()).with_context(at)?,
            route: route.clone(),
        })
    }

    /// The first rule for this method and normalised path, with its captures.
    pub fn resolve<'p>(
        &self,
        method: &str,
        path: &'p str,
    ) -> Option<(&Rule, Vec<(&str, &'p str)>)> {
        self.rules.iter().find_map(|rule| {
            if rule.method != "*" && rule.method != method {
                return None;
            }
            rule.path.matches(path).map(|captures| (rule, captures))
        })
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.terminator.accept(tcp)).await;
        let accepted = match handshake {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(error)) => {
                tracing::debug!(%error, peer = %peer, route = %self.route.name, "gateway.tls.handshake_failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %peer, route = %self.route.name, "gateway.tls.handshake_timeout");
                return;
            }
        };
        match accepted {
            Accepted::Plain(stream) => self.serve(stream, peer, None).await,
            Accepted::Tls {
                stream,
                client_certificate,
            } => self.serve(stream, peer, client_certificate).await,
        }
    }

    async fn serve<I>(self: Arc<Self>, io: I, peer: SocketAddr, certificate: Option<Arc<Vec<u8>>>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let connection = Arc::new(pipeline::Connection { peer, certificate });
        let listener = self.clone();
        let service = hyper::service::service_fn(move |request| {
            pipeline::handle(listener.clone(), connection.clone(), request)
        });
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(io), service)
            .await;
        if let Err(error) = served {
            tracing::debug!(%error, peer = %peer, "gateway.connection.failed");
        }
    }
}

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The running listeners.
#[derive(Debug, Default)]
pub struct Started {
    /// Bound addresses, in the order of `[[gateway.routes]]`.
    pub addrs: Vec<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Binds every configured route and starts serving until `signal` turns true.
pub async fn start(
    state: &Arc<AppState>,
    signal: watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let config = &state.config.gateway;
    let mut started = Started::default();
    if config.routes.is_empty() {
        return Ok(started);
    }
    let shared = Arc::new(Shared::new(config));
    for route in &config.routes {
        let listener = Arc::new(Listener::new(state.clone(), shared.clone(), route)?);
        let tcp = TcpListener::bind(route.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (gateway route `{}`)",
                route.listen, route.name
            )
        })?;
        let addr = tcp.local_addr()?;
        tracing::info!(route = %route.name, listen = %addr, upstream = %route.upstream, tls = listener.terminator.is_tls(), "gateway.listening");
        started.addrs.push(addr);
        let mut signal = signal.clone();
        started.tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = signal.wait_for(|stop| *stop).await;
            };
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return,
                    accepted = tcp.accept() => match accepted {
                        Ok((stream, peer)) => {
                            tokio::spawn(listener.clone().connection(stream, peer));
                        }
                        Err(error) => {
                            tracing::warn!(%error, "gateway.accept_failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        }));
    }
    Ok(started)
}
