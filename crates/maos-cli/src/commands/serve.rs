//! `maos serve`: run the MAOS Security server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use maos_server::Config;

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration (see maos.example.toml); MAOS_* variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded database (default ./maos-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP API (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    let mut config = Config::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    if let Some(dir) = args.data_dir {
        config.server.data_dir = dir;
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    maos_server::init_logging(&config.log);

    let admin_token = std::env::var("MAOS_ADMIN_TOKEN").ok();
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let result = maos_server::run_blocking(config, admin_token, |server| {
        if let Some(token) = &server.generated_admin_token {
            // Shown once: only its hash is stored.
            crate::commands::out(&format!(
                "Generated the admin token (shown only now; set MAOS_ADMIN_TOKEN to choose your own):\n{token}"
            ));
        }
        crate::commands::out(&format!(
            "maos serve: listening on {scheme}://{}",
            server.http_addr
        ));
        if let Some(grpc) = server.grpc_addr {
            crate::commands::out(&format!("maos serve: Envoy ext_authz gRPC on {grpc}"));
        }
    });
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("maos serve: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}
