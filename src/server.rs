//! The server: builds the backend and registry, serves Signer, KeyAdmin,
//! health and reflection on one port, and shuts down gracefully.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::api::admin::KeyAdminService;
use crate::api::pb;
use crate::api::pb::{key_admin_server::KeyAdminServer, signer_server::SignerServer};
use crate::api::signer::{SignerLimits, SignerService};
use crate::audit::Audit;
use crate::auth::{AuthLayer, Policy, Security};
use crate::config::{BackendConfig, Config};
use crate::keys::clock::{Clock, SystemClock};
use crate::keys::memory::MemoryBackend;
use crate::keys::pkcs11::store::TokenStore;
use crate::keys::pkcs11::{Pkcs11Backend, TokenSelector};
use crate::keys::registry::{Registry, RegistrySettings};
use crate::keys::store::{NullStore, RegistryStore};
use crate::keys::{Algorithm, KeyBackend};

/// The demo keys created when signet starts with no configuration.
pub const DEMO_KEYS: [(&str, Algorithm); 4] = [
    ("demo-hmac", Algorithm::HmacSha256),
    ("demo-rsa", Algorithm::RsaPkcs1_2048Sha256),
    ("demo-ecdsa", Algorithm::EcdsaP256Sha256),
    ("demo-ed25519", Algorithm::Ed25519),
];

/// Builds the registry the configuration describes, with `clock`.
pub async fn build_registry(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Registry>, String> {
    let (backend, store, demo): (Arc<dyn KeyBackend>, Arc<dyn RegistryStore>, bool) =
        match &config.backend {
            BackendConfig::Memory { demo_keys } => (
                Arc::new(MemoryBackend::new()),
                Arc::new(NullStore),
                *demo_keys,
            ),
            BackendConfig::Pkcs11(p) => {
                let settings = crate::keys::pkcs11::Pkcs11Settings {
                    module: p.module.clone(),
                    token: match (&p.token_label, &p.token_serial) {
                        (Some(l), _) => TokenSelector::Label(l.clone()),
                        (None, Some(s)) => TokenSelector::Serial(s.clone()),
                        (None, None) => return Err("backend: no token selected".into()),
                    },
                    pin: p.read_pin()?,
                    max_sessions: p.max_sessions,
                    session_wait: p.session_wait,
                    threads: p.worker_threads(),
                };
                let backend = tokio::task::spawn_blocking(move || Pkcs11Backend::open(settings))
                    .await
                    .map_err(|e| format!("PKCS#11 start-up failed: {e}"))?
                    .map_err(|e| format!("PKCS#11 backend: {}", e.message()))?;
                let store = TokenStore::new(&backend);
                tracing::info!(backend = ?backend, "PKCS#11 backend ready");
                (Arc::new(backend), Arc::new(store), false)
            }
        };
    let settings = RegistrySettings {
        default_grace: config.keys.default_grace_period,
        destroy_delay: config.keys.destroy_delay,
        destroy_orphans: matches!(&config.backend, BackendConfig::Pkcs11(p) if p.destroy_orphans),
    };
    let registry = Arc::new(Registry::new(backend, store, clock, settings));
    let loaded = registry
        .load()
        .await
        .map_err(|e| format!("cannot load the key registry: {e}"))?;
    if loaded > 0 {
        tracing::info!(keys = loaded, "key registry loaded");
    }
    if demo {
        for (name, alg) in DEMO_KEYS {
            registry
                .create_key(
                    name,
                    alg,
                    BTreeMap::from([("demo".into(), "true".into())]),
                    None,
                )
                .await
                .map_err(|e| format!("cannot create demo key {name}: {e}"))?;
        }
        tracing::warn!(
            keys = ?DEMO_KEYS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "demo mode: in-memory backend with demo keys; nothing is persisted. Not for production."
        );
    }
    Ok(registry)
}

/// Serves on `listener` until `shutdown` resolves, then waits up to the
/// configured shutdown timeout for in-flight calls to finish.
pub async fn serve(
    config: &Config,
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    serve_with(config, registry, listener, None, shutdown).await
}

/// [`serve`] with a given [`Security`] (whose policy a SIGHUP replaces);
/// `None` builds it from the configuration.
pub async fn serve_with(
    config: &Config,
    registry: Arc<Registry>,
    listener: TcpListener,
    security: Option<Arc<Security>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let local = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("reflection: {e}"))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| format!("reflection: {e}"))?;

    let limits = SignerLimits::from_config(config);
    let security = match security {
        Some(s) => s,
        None => Security::new(
            Policy::new(&config.auth, &config.limits)?,
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
    // oversized message reaches the handler and gets INVALID_ARGUMENT.
    let decode_limit = config.server.max_message_bytes * 2 + 64 * 1024;
    let profiles = config.resolved_profiles()?;
    for p in &profiles {
        for k in [&p.key, &p.verify_key].into_iter().flatten() {
            if registry.get(k).is_err() {
                tracing::warn!(profile = %p.name, key = %k, "profile names a key that does not exist yet");
            }
        }
    }
    let replay: Arc<dyn crate::http::replay::ReplayStore> = match config.http.resolve_redis_url()? {
        Some(url) => {
            let store = crate::http::replay::RedisReplayStore::connect(&url).await?;
            tracing::info!(store = ?store, "replay store: Redis");
            Arc::new(store)
        }
        None => Arc::new(crate::http::replay::MemoryReplayStore::new(
            config.http.replay_capacity,
        )),
    };
    let admin = KeyAdminServer::new(
        KeyAdminService::new(registry.clone())
            .with_profiles(&profiles)
            .with_security(security.clone()),
    )
    .max_decoding_message_size(decode_limit);
    let signer = SignerServer::new(
        SignerService::new(registry.clone(), limits)
            .with_http(profiles, replay)
            .with_security(security.clone()),
    )
    .max_decoding_message_size(decode_limit);

    let ticker = registry.spawn_ticker(config.keys.tick_interval);
    let monitor = spawn_health_monitor(registry.clone(), health_reporter.clone());

    let reloader = tls.as_ref().map(|t| t.spawn_reloader());
    if tls.is_some() {
        tracing::info!("TLS on; certificate files are checked for changes");
    } else {
        tracing::warn!("plaintext listener (loopback only)");
    }
    tracing::info!(address = %local, "signet listening");
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let timeout = config.server.shutdown_timeout;
    let reporter = health_reporter.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: refusing new calls, finishing in-flight ones");
        for svc in ["", "signet.v1.Signer", "signet.v1.KeyAdmin"] {
            reporter
                .set_service_status(svc, tonic_health::ServingStatus::NotServing)
                .await;
        }
        let _ = drain_tx.send(());
    };
    let (incoming, acceptor) = crate::listener::incoming(listener, tls, security.audit().clone());
    let server = Server::builder()
        .max_concurrent_streams(config.server.max_concurrent_streams)
        // Dead peers are found by HTTP/2 pings (the accept loop sets no
        // TCP keep-alive).
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(AuthLayer::new(security.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(signer)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.map_err(|e| format!("server: {e}")),
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
    if let Some(r) = reloader {
        r.abort();
    }
    registry.shutdown_backend().await;
    tracing::info!("signet stopped");
    result
}

/// Reports SERVING once the backend answers, NOT_SERVING when it stops.
fn spawn_health_monitor(
    registry: Arc<Registry>,
    reporter: tonic_health::server::HealthReporter,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let ok = registry.health().await.is_ok();
            if last != Some(ok) {
                let status = if ok {
                    tonic_health::ServingStatus::Serving
                } else {
                    tonic_health::ServingStatus::NotServing
                };
                for svc in ["", "signet.v1.Signer", "signet.v1.KeyAdmin"] {
                    reporter.set_service_status(svc, status).await;
                }
                if ok {
                    tracing::info!("backend healthy: SERVING");
                } else {
                    tracing::error!("backend unhealthy: NOT_SERVING");
                }
                last = Some(ok);
            }
            tokio::time::sleep(Duration::from_secs(if ok { 5 } else { 1 })).await;
        }
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
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

/// Runs `signet serve`: config, logging, registry, listener, serve.
pub async fn run(config: Config, config_path: Option<std::path::PathBuf>) -> Result<(), String> {
    crate::telemetry::init(&config.log.level, config.log.format);
    if config_path.is_none() {
        tracing::warn!("no --config given: starting the built-in demo configuration");
    }
    config.check_listener()?;
    let security = Security::new(
        Policy::new(&config.auth, &config.limits)?,
        Audit::open(&config.audit)?,
        config.limits.max_in_flight,
    );
    if !security.policy().enabled() {
        tracing::warn!(listen = %config.server.listen, "no [[auth.identities]]: every caller may do everything (loopback only)");
    }
    let registry = build_registry(&config, Arc::new(SystemClock)).await?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let reload = config_path.map(|p| spawn_policy_reload(p, security.clone()));
    let r = serve_with(
        &config,
        registry,
        listener,
        Some(security),
        shutdown_signal(),
    )
    .await;
    if let Some(t) = reload {
        t.abort();
    }
    r
}

/// On SIGHUP, re-reads `[auth]` and `[[limits.keys]]` from the config
/// file: new tokens, revoked ones, grants, allow-lists and rates apply to
/// the next request. A file that does not load keeps the policy in force.
/// Everything else needs a restart.
fn spawn_policy_reload(
    path: std::path::PathBuf,
    security: Arc<Security>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let loaded =
                Config::load(&path).and_then(|c| Policy::new(&c.auth, &c.limits).map(|p| (c, p)));
            match loaded {
                Ok((c, p)) => {
                    if c.check_listener().is_err() {
                        tracing::error!("SIGHUP: the new [auth] would not be valid for this listener; keeping the policy in force");
                        continue;
                    }
                    security.set_policy(p);
                    tracing::info!(path = %path.display(), "SIGHUP: [auth] and [[limits.keys]] reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: config does not load; keeping the policy in force")
                }
            }
        }
    })
}
