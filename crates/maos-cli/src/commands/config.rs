//! `maos config check FILE`: validate a server configuration file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: exit 0 when valid, else `FILE:LINE:COLUMN: problem` and
    /// exit 2. Environment overrides are not applied.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(args: ConfigArgs) -> Result<ExitCode, Failure> {
    match args.command {
        ConfigCommand::Check { file } => match maos_server::config::check_file(&file) {
            Ok(config) => {
                // Playbooks that name no loaded rule or tag never fire: said, not refused.
                if let Ok((_, catalog)) = maos_server::siem::load_rules(&config.siem) {
                    for warning in catalog.check_playbooks(&config.response.playbooks) {
                        eprintln!("warning: {warning}");
                    }
                }
                crate::commands::out(&format!(
                    "{}: valid (listen {}, storage {}, {} forward-auth routes)",
                    file.display(),
                    config.server.listen,
                    maos_store_url(&config),
                    config.forward_auth.routes.len()
                ));
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Err(Failure::bad_input(error.to_string())),
        },
    }
}

fn maos_store_url(config: &maos_server::Config) -> String {
    let url = config.storage_url();
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}:"),
        None => url,
    }
}
