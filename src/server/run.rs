//! `signet serve`: logging and telemetry, the probe port, the registry,
//! the listener; and the signals that stop it.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::probes::Readiness;
use super::settings::Settings;
use super::{open_registry, serve_full, Extras};
use crate::audit::Audit;
use crate::auth::Security;
use crate::config::{Config, LogFormat};
use crate::error::{ConfigError, StartupError};
use crate::keys::clock::SystemClock;

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs `signet serve`: config, logging and telemetry, the admin port,
/// registry, listener, serve.
pub(crate) async fn run(
    mut config: Config,
    config_path: Option<std::path::PathBuf>,
    listen_override: Option<std::net::SocketAddr>,
) -> Result<(), StartupError> {
    config.override_listen(listen_override);
    // The same check as `signet check-config` and the SIGHUP reload.
    let settings = Settings::from_config(&config).map_err(|e| in_file(&config_path, e))?;
    let format = match config.log.format {
        LogFormat::Text => crate::telemetry::LogFormat::Text,
        LogFormat::Json => crate::telemetry::LogFormat::Json,
    };
    let telemetry =
        crate::telemetry::init(&config.log.level, format, &config.telemetry.service_name)?;
    let r = run_inner(config, settings, config_path, listen_override).await;
    telemetry.shutdown();
    r
}

/// A refusal, naming the file it comes from (none: the demo configuration).
pub(super) fn in_file(path: &Option<std::path::PathBuf>, source: ConfigError) -> StartupError {
    match path {
        Some(p) => StartupError::InFile {
            path: p.clone(),
            source,
        },
        None => StartupError::Config(source),
    }
}

async fn run_inner(
    config: Config,
    settings: Settings,
    config_path: Option<std::path::PathBuf>,
    listen_override: Option<std::net::SocketAddr>,
) -> Result<(), StartupError> {
    if config_path.is_none() {
        tracing::warn!(
            "no --config given: starting the built-in demo configuration (in-memory keys \
             demo-hmac, demo-rsa, demo-ecdsa, demo-ed25519; HTTP profile stripe on demo-hmac; \
             nothing is kept)"
        );
    }
    let security = Security::new(
        settings.policy,
        Audit::open(&config.audit)?,
        config.limits.max_in_flight,
    );
    if !security.policy().enabled() {
        tracing::warn!(listen = %config.server.listen, "no [[auth.identities]]: every caller may do everything (loopback only)");
    }
    // The admin port comes up first, so probes see "alive, not ready"
    // while the backend opens and the registry loads.
    let readiness = Readiness::new().await;
    let (admin_stop, admin_stopped) = tokio::sync::watch::channel(false);
    let admin = match config.admin.listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await.map_err(|e| {
                StartupError::failed("admin.listen", format!("cannot listen on {addr}: {e}"))
            })?;
            let mut stopped = admin_stopped.clone();
            Some(tokio::spawn(super::probes::serve(
                l,
                readiness.clone(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let result = async {
        let registry = open_registry(&config, Arc::new(SystemClock)).await?;
        let listener = TcpListener::bind(config.server.listen).await.map_err(|e| {
            StartupError::failed(
                "server.listen",
                format!("cannot listen on {}: {e}", config.server.listen),
            )
        })?;
        let extras = Extras {
            security: Some(security),
            readiness: Some(readiness.clone()),
            config_path,
            listen_override,
        };
        serve_full(&config, registry, listener, extras, shutdown_signal()).await
    }
    .await;
    readiness.set_stopped().await;
    let _ = admin_stop.send(true);
    if let Some(a) = admin {
        let _ = tokio::time::timeout(Duration::from_secs(2), a).await;
    }
    result
}
