//! `signet registry migrate --to postgres`: moves a token registry into
//! PostgreSQL (runbook: docs/operations.md, "Moving the registry to
//! PostgreSQL").

use std::path::PathBuf;

use clap::Subcommand;

use super::client::{CliError, CliResult};
use crate::config::{BackendConfig, Config};
use crate::keys::pkcs11::store::TokenStore;
use crate::postgres::copy::{copy, Copied};
use crate::postgres::Database;

/// `signet registry ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Copy every key record (keys, versions, states, times) from the
    /// PKCS#11 token into PostgreSQL. Idempotent; never overwrites a row
    /// changed in PostgreSQL. Run it with every replica stopped.
    Migrate(MigrateArgs),
}

/// `signet registry migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Where to: `postgres`.
    #[arg(long, value_parser = ["postgres"])]
    pub to: String,
    /// The configuration naming the token (`[backend]`, PKCS#11) and the
    /// database (`[postgres]`).
    #[arg(long, short)]
    pub config: PathBuf,
}

pub(crate) async fn run(json: bool, cmd: &RegistryCommand) -> CliResult {
    let RegistryCommand::Migrate(args) = cmd;
    let config = Config::load(&args.config).map_err(|e| CliError::usage(e.to_string()))?;
    let BackendConfig::Pkcs11(p) = &config.backend else {
        return Err(CliError::usage(
            "the configuration's backend is not PKCS#11: there is no token registry to copy",
        ));
    };
    let Some(pg) = &config.postgres else {
        return Err(CliError::usage(
            "the configuration has no [postgres] section: nowhere to copy to",
        ));
    };
    let fail = |e: crate::error::StartupError| CliError::rpc(e.to_string());
    let db = Database::open(pg).await.map_err(fail)?;
    let backend = std::sync::Arc::new(crate::server::open_pkcs11(p).await.map_err(fail)?);
    let store = TokenStore::new(backend.clone());
    let read = store.load_with_generations().await;
    let b = backend.clone();
    let _ = tokio::task::spawn_blocking(move || crate::keys::KeyBackend::shutdown(&*b)).await;
    let records = read
        .map_err(|e| CliError::rpc(format!("cannot read the token registry: {}", e.message())))?;
    let outcome = copy(&db, &records)
        .await
        .map_err(|e| CliError::rpc(e.message().to_string()))?;
    let refused = outcome
        .iter()
        .filter(|(_, c)| matches!(c, Copied::Refused(_)))
        .count();
    if json {
        let rows: Vec<serde_json::Value> = outcome
            .iter()
            .map(|(name, c)| {
                let (status, reason) = match c {
                    Copied::Inserted => ("inserted", None),
                    Copied::Unchanged => ("unchanged", None),
                    Copied::Updated => ("updated", None),
                    Copied::Refused(r) => ("refused", Some(r.clone())),
                };
                serde_json::json!({"key": name, "status": status, "reason": reason})
            })
            .collect();
        println!("{}", serde_json::json!({ "keys": rows }));
    } else {
        for (name, c) in &outcome {
            match c {
                Copied::Inserted => println!("{name}: copied"),
                Copied::Unchanged => println!("{name}: already copied, unchanged"),
                Copied::Updated => println!("{name}: updated from the token's newer record"),
                Copied::Refused(r) => println!("{name}: REFUSED: {r}"),
            }
        }
        println!(
            "{} key(s) read from the token into {} (schema {}); {refused} refused",
            outcome.len(),
            db.target(),
            db.schema()
        );
    }
    if refused > 0 {
        return Err(CliError::rpc(format!(
            "{refused} key(s) not copied: their rows in PostgreSQL are newer"
        )));
    }
    Ok(())
}
