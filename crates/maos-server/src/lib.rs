//! The MAOS Security server: `maos serve`.
//!
//! It wires the policy engine (`maos-policy`) to storage (`maos-store`) and serves the decision
//! APIs (`/v1/authorize`, AuthZEN), forward authentication for reverse proxies (nginx, Traefik,
//! Envoy over HTTP and gRPC) and the admin API, which is itself authorized by the engine.
//!
//! The request path reads only memory: the compiled policy, resource attributes and tokens are
//! held behind atomic swaps and refreshed when the store announces a change (on PostgreSQL from
//! any node, through `LISTEN/NOTIFY`).

pub mod audit;
pub mod audit_log;
pub mod audited;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod federation;
pub mod gateway;
pub mod grpc;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod mtls;
pub mod openapi;
pub mod response;
pub mod routes;
pub mod server;
pub mod siem;
pub mod state;
pub mod tls;

pub use config::{Config, ConfigError, LogFormat};
pub use server::{RunningServer, run_blocking, start};

/// Sets up `tracing` output as configured (`RUST_LOG` overrides the level).
pub fn init_logging(log: &config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(error) = result {
        eprintln!("logging not initialised: {error}");
    }
}
