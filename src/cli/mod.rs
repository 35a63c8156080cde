//! Command line: `signet serve` and the client sub-commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// signet: a gRPC signing service. Keys never leave it.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server. With no --config: in-memory backend with demo keys.
    Serve(ServeArgs),
}

/// `signet serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (see examples/signet.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen address; overrides server.listen.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("signet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let (mut config, given) = match &args.config {
        Some(p) => (Config::load(p)?, true),
        None => (Config::demo(), false),
    };
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    crate::server::run(config, given).await
}
