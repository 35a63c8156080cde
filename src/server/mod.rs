//! The server, and the composition root: builds the backend and
//! registry, serves Signer, KeyAdmin, health and reflection on one port,
//! reloads on SIGHUP, and shuts down gracefully.
//!
//! - [`registry`]: the key backend and registry a configuration names.
//! - [`probes`]: readiness and the plaintext probe port (health, `/metrics`).
//! - [`health`]: readiness follows the backend and the replay store.
//! - [`reload`]: what a SIGHUP re-reads and installs.
//! - [`settings`]: a configuration checked and turned into domain objects,
//!   the one path of start-up, reload and `check-config`.
//! - [`run`]: `signet serve` from start to exit.

mod gauges;
mod health;
pub(crate) mod probes;
mod registry;
mod reload;
mod run;
pub(crate) mod settings;

pub use registry::build_registry;
pub(crate) use registry::{open_pkcs11, open_registry, DEMO_KEYS};
pub(crate) use run::run;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::api::admin::KeyAdminService;
use crate::api::cipher::CipherService;
use crate::api::pb;
use crate::api::pb::{
    cipher_service_server::CipherServiceServer, key_admin_server::KeyAdminServer,
    signer_server::SignerServer,
};
use crate::api::signer::SignerService;
use crate::audit::Audit;
use crate::auth::{AuthLayer, Security};
use crate::config::Config;
use crate::error::StartupError;
use crate::keys::registry::Registry;
use health::spawn_health_monitor;
use probes::Readiness;
use reload::{spawn_reload, Reload};

/// Serves on `listener` until `shutdown` resolves, then waits up to the
/// configured shutdown timeout for in-flight calls to finish.
pub async fn serve(
    config: &Config,
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    serve_with(config, registry, listener, None, shutdown).await
}

/// [`serve`] with a given [`Security`] (whose policy a SIGHUP replaces);
/// `None` builds it from the configuration.
pub(crate) async fn serve_with(
    config: &Config,
    registry: Arc<Registry>,
    listener: TcpListener,
    security: Option<Arc<Security>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let extras = Extras {
        security,
        ..Extras::default()
    };
    serve_full(config, registry, listener, extras, shutdown).await
}

/// What [`serve_full`] may be given instead of building it.
#[derive(Default)]
pub(crate) struct Extras {
    /// The policy and audit trail; built from the configuration if `None`.
    pub security: Option<Arc<Security>>,
    /// Health statuses shared with an admin port; a fresh one if `None`.
    pub readiness: Option<Arc<Readiness>>,
    /// The configuration file, re-read on SIGHUP.
    pub config_path: Option<std::path::PathBuf>,
    /// `signet serve --listen`: wins over the reloaded file's
    /// `server.listen` too.
    pub listen_override: Option<std::net::SocketAddr>,
}

/// Serves Signer, KeyAdmin, health and reflection on `listener` until
/// `shutdown` resolves; then reports NOT_SERVING, keeps accepting for
/// `drain_delay`, stops accepting, and waits up to `shutdown_timeout` for
/// in-flight calls.
pub(crate) async fn serve_full(
    config: &Config,
    registry: Arc<Registry>,
    listener: TcpListener,
    extras: Extras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let local = listener
        .local_addr()
        .map_err(|e| StartupError::failed("listener address", e))?;

    let readiness = match extras.readiness {
        Some(l) => l,
        None => Readiness::new().await,
    };
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartupError::failed("reflection", e))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| StartupError::failed("reflection", e))?;

    // The listener is bound: its rules were checked by `run` (with the rest
    // of `Settings::from_config`, as `check-config` and the reload do).
    let settings = settings::Settings::for_bound_listener(config)?;
    let limits = settings.signer;
    let security = match extras.security {
        Some(s) => s,
        None => Security::new(
            settings.policy,
            Audit::open(&config.audit)?,
            config.limits.max_in_flight,
        ),
    };
    let tls = config
        .server
        .tls
        .clone()
        .map(crate::tls::TlsState::new)
        .transpose()?;
    // The transport limit leaves room for the rest of the request, so an
    // oversized message or batch reaches the handler and gets
    // INVALID_ARGUMENT.
    let decode_limit = decode_limit(config);
    let profile_list = settings.profiles;
    warn_missing_keys(&registry, &profile_list);
    let replay = replay_store(config).await?;
    let profiles = crate::httpsig::profile::ProfileSet::new(profile_list);
    let admin = KeyAdminServer::new(
        KeyAdminService::new(registry.clone())
            .with_profiles(profiles.clone())
            .with_security(security.clone()),
    )
    .max_decoding_message_size(decode_limit);
    let signer = SignerServer::new(
        SignerService::new(registry.clone(), limits)
            .with_http(profiles.clone(), replay.clone())
            .with_security(security.clone()),
    )
    .max_decoding_message_size(decode_limit);
    let cipher = CipherServiceServer::new(
        CipherService::new(registry.clone(), config.server.max_message_bytes)
            .with_security(security.clone()),
    )
    .max_decoding_message_size(decode_limit);
    gauges::watch(&registry);

    let ticker = registry.spawn_ticker(config.keys.tick_interval);
    let monitor = spawn_health_monitor(registry.clone(), replay, readiness.clone());
    let reload = extras.config_path.map(|path| {
        spawn_reload(Reload {
            path,
            in_force: config.clone(),
            listen_override: extras.listen_override,
            security: security.clone(),
            profiles,
            tls: tls.clone(),
            registry: registry.clone(),
        })
    });

    let reloader = tls.as_ref().map(|t| t.spawn_reloader());
    if tls.is_some() {
        tracing::info!("TLS on; certificate files are checked for changes");
    } else {
        tracing::warn!("plaintext listener (loopback only)");
    }
    tracing::info!(address = %local, "signet listening");
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let timeout = config.server.shutdown_timeout;
    let drain_delay = config.server.drain_delay;
    let draining = readiness.clone();
    let shutdown = async move {
        shutdown.await;
        draining.set_draining().await;
        if !drain_delay.is_zero() {
            tracing::info!(
                ?drain_delay,
                "shutting down: NOT_SERVING; still accepting calls for the drain delay"
            );
            tokio::time::sleep(drain_delay).await;
        }
        tracing::info!("shutting down: refusing new calls, finishing in-flight ones");
        let _ = drain_tx.send(());
    };
    let (incoming, acceptor) = crate::listener::incoming(listener, tls, security.audit().clone());
    let server = Server::builder()
        .max_concurrent_streams(config.server.max_concurrent_streams)
        // Dead peers are found by HTTP/2 pings (the accept loop sets no
        // TCP keep-alive).
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(crate::telemetry::rpc::TelemetryLayer)
        .layer(AuthLayer::new(security.clone()))
        .add_service(readiness.health_service())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(signer)
        .add_service(admin)
        .add_service(cipher)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::pin!(server);
    readiness.set_started().await;
    let result = tokio::select! {
        r = &mut server => r.map_err(|e| StartupError::failed("server", e)),
        _ = async {
            let _ = drain_rx.await;
            tokio::time::sleep(timeout).await;
        } => {
            tracing::warn!(?timeout, "shutdown timeout reached with calls still in flight");
            Ok(())
        }
    };
    ticker.abort();
    monitor.abort();
    acceptor.abort();
    for t in [reloader, reload].into_iter().flatten() {
        t.abort();
    }
    registry.shutdown_backend().await;
    // The trail's queue holds the last calls' records: write them first.
    if !matches!(
        tokio::time::timeout(Duration::from_secs(10), security.audit().flush()).await,
        Ok(true)
    ) {
        tracing::error!("the audit trail could not be flushed at shutdown");
    }
    tracing::info!("signet stopped");
    result
}

pub(super) fn warn_missing_keys(
    registry: &Registry,
    profiles: &[crate::httpsig::profile::Profile],
) {
    for p in profiles {
        // A profile that signs and verifies with one key names it twice.
        let keys: std::collections::BTreeSet<&String> =
            [&p.key, &p.verify_key].into_iter().flatten().collect();
        for k in keys {
            if registry.get(k).is_err() {
                tracing::warn!(profile = %p.name, key = %k, "profile names a key that does not exist yet");
            }
        }
    }
}

/// The replay store `[http]` names.
async fn replay_store(
    config: &Config,
) -> Result<Arc<dyn crate::httpsig::replay::ReplayStore>, StartupError> {
    use crate::config::ReplayStoreKind;
    Ok(match config.http.replay_store {
        ReplayStoreKind::Memory => Arc::new(crate::httpsig::replay::MemoryReplayStore::new(
            config.http.replay_capacity,
        )),
        ReplayStoreKind::Redis => {
            let url = config.http.resolve_redis_url()?.unwrap_or_default();
            let store = crate::httpsig::replay::RedisReplayStore::connect(&url)
                .await
                .map_err(|e| StartupError::failed("replay store", e))?;
            tracing::info!(store = ?store, "replay store: Redis");
            Arc::new(store)
        }
        ReplayStoreKind::Postgres => {
            let pg = config.postgres.as_ref().ok_or_else(|| {
                crate::error::ConfigError::new("postgres", "a [postgres] section is required")
            })?;
            let db = crate::postgres::Database::open(pg).await?;
            tracing::info!(database = db.target(), "replay store: PostgreSQL");
            crate::postgres::replay::PgReplayStore::new(db)
        }
    })
}

/// The largest request the gRPC services decode: room for the largest
/// message (twice: a Verify carries a signature as well) or the largest
/// batch with its per-item framing, and the rest of the request.
fn decode_limit(config: &Config) -> usize {
    let single = config.server.max_message_bytes * 2;
    let batch = config.limits.max_batch_bytes + config.limits.max_batch_items * 64;
    single.max(batch) + 64 * 1024
}
