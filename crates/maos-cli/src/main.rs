use clap::Parser;

/// MAOS Security: the zero-trust security server for fleets of people and AI agents.
#[derive(Debug, Parser)]
#[command(name = "maos", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
