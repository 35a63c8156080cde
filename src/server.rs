//! The server: builds the backend and registry, serves Signer, KeyAdmin,
//! health and reflection on one port, and shuts down gracefully.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::admin::Lifecycle;
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
    let extras = Extras {
        security,
        ..Extras::default()
    };
    serve_full(config, registry, listener, extras, shutdown).await
}

/// What [`serve_full`] may be given instead of building it.
#[derive(Default)]
pub struct Extras {
    /// The policy and audit trail; built from the configuration if `None`.
    pub security: Option<Arc<Security>>,
    /// Health statuses shared with an admin port; a fresh one if `None`.
    pub lifecycle: Option<Arc<Lifecycle>>,
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
pub async fn serve_full(
    config: &Config,
    registry: Arc<Registry>,
    listener: TcpListener,
    extras: Extras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let local = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;

    let lifecycle = match extras.lifecycle {
        Some(l) => l,
        None => Lifecycle::new().await,
    };
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
    let security = match extras.security {
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
    let profile_list = config.resolved_profiles()?;
    warn_missing_keys(&registry, &profile_list);
    let replay: Arc<dyn crate::httpsig::replay::ReplayStore> =
        match config.http.resolve_redis_url()? {
            Some(url) => {
                let store = crate::httpsig::replay::RedisReplayStore::connect(&url).await?;
                tracing::info!(store = ?store, "replay store: Redis");
                Arc::new(store)
            }
            None => Arc::new(crate::httpsig::replay::MemoryReplayStore::new(
                config.http.replay_capacity,
            )),
        };
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
    crate::telemetry::metrics::watch_registry(&registry);

    let ticker = registry.spawn_ticker(config.keys.tick_interval);
    let monitor = spawn_health_monitor(registry.clone(), replay, lifecycle.clone());
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
    let draining = lifecycle.clone();
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
        .add_service(lifecycle.health_service())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(signer)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::pin!(server);
    lifecycle.set_started().await;
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

fn warn_missing_keys(registry: &Registry, profiles: &[crate::httpsig::profile::Profile]) {
    for p in profiles {
        for k in [&p.key, &p.verify_key].into_iter().flatten() {
            if registry.get(k).is_err() {
                tracing::warn!(profile = %p.name, key = %k, "profile names a key that does not exist yet");
            }
        }
    }
}

/// Readiness follows the backend and the replay store: checked every 2 s
/// while they answer (a lost HSM token turns readiness off within about
/// that), every second while they do not.
fn spawn_health_monitor(
    registry: Arc<Registry>,
    replay: Arc<dyn crate::httpsig::replay::ReplayStore>,
    lifecycle: Arc<Lifecycle>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let backend = registry.health().await;
            let store = tokio::time::timeout(Duration::from_secs(3), replay.health())
                .await
                .unwrap_or_else(|_| {
                    Err(crate::error::Error::unavailable("replay store timed out"))
                });
            let now = (backend.is_ok(), store.is_ok());
            lifecycle.set_dependencies(now.0, now.1).await;
            if last != Some(now) {
                match (&backend, &store) {
                    (Ok(()), Ok(())) => {
                        tracing::info!("backend and replay store healthy: SERVING")
                    }
                    (Err(b), _) => tracing::error!(
                        backend = %b,
                        replay_store = store.as_ref().err().map(|e| e.to_string()),
                        "backend unhealthy: NOT_SERVING"
                    ),
                    (Ok(()), Err(r)) => tracing::error!(
                        replay_store = %r,
                        "replay store unhealthy: signet.v1.Signer NOT_SERVING (webhook \
                         verification fails closed; signing goes on)"
                    ),
                }
                last = Some(now);
            }
            let ok = now.0 && now.1;
            tokio::time::sleep(Duration::from_secs(if ok { 2 } else { 1 })).await;
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

/// Runs `signet serve`: config, logging and telemetry, the admin port,
/// registry, listener, serve.
pub async fn run(
    mut config: Config,
    config_path: Option<std::path::PathBuf>,
    listen_override: Option<std::net::SocketAddr>,
) -> Result<(), String> {
    config.override_listen(listen_override);
    // The same check as `signet check-config` and the SIGHUP reload.
    config.check()?;
    let telemetry =
        crate::telemetry::init(&config.log.level, config.log.format, &config.telemetry)?;
    let r = run_inner(config, config_path, listen_override).await;
    telemetry.shutdown();
    r
}

async fn run_inner(
    config: Config,
    config_path: Option<std::path::PathBuf>,
    listen_override: Option<std::net::SocketAddr>,
) -> Result<(), String> {
    if config_path.is_none() {
        tracing::warn!("no --config given: starting the built-in demo configuration");
    }
    let security = Security::new(
        Policy::new(&config.auth, &config.limits)?,
        Audit::open(&config.audit)?,
        config.limits.max_in_flight,
    );
    if !security.policy().enabled() {
        tracing::warn!(listen = %config.server.listen, "no [[auth.identities]]: every caller may do everything (loopback only)");
    }
    // The admin port comes up first, so probes see "alive, not ready"
    // while the backend opens and the registry loads.
    let lifecycle = Lifecycle::new().await;
    let (admin_stop, admin_stopped) = tokio::sync::watch::channel(false);
    let admin = match config.admin.listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on admin.listen {addr}: {e}"))?;
            let mut stopped = admin_stopped.clone();
            Some(tokio::spawn(crate::admin::serve(
                l,
                lifecycle.clone(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let result = async {
        let registry = build_registry(&config, Arc::new(SystemClock)).await?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
        let extras = Extras {
            security: Some(security),
            lifecycle: Some(lifecycle.clone()),
            config_path,
            listen_override,
        };
        serve_full(&config, registry, listener, extras, shutdown_signal()).await
    }
    .await;
    lifecycle.set_stopped().await;
    let _ = admin_stop.send(true);
    if let Some(a) = admin {
        let _ = tokio::time::timeout(Duration::from_secs(2), a).await;
    }
    result
}

/// What a SIGHUP reloads.
struct Reload {
    path: std::path::PathBuf,
    /// The configuration serving started with: restart-only settings are
    /// compared with it.
    in_force: Config,
    listen_override: Option<std::net::SocketAddr>,
    security: Arc<Security>,
    profiles: Arc<crate::httpsig::profile::ProfileSet>,
    tls: Option<Arc<crate::tls::TlsState>>,
    registry: Arc<Registry>,
}

impl Reload {
    /// Loads everything first and installs only if all of it loads: a bad
    /// file changes nothing.
    fn once(&self) -> Result<(), String> {
        let mut c = Config::load(&self.path)?;
        c.override_listen(self.listen_override);
        // The same check as start-up and `signet check-config`.
        c.check()
            .map_err(|e| format!("the new [auth] or [server] would not be valid: {e}"))?;
        let policy = Policy::new(&c.auth, &c.limits)?;
        let profiles = c.resolved_profiles()?;
        let tls = match (&self.tls, &c.server.tls) {
            (Some(_), Some(section)) => {
                Some((section.clone(), crate::tls::TlsState::prepare(section)?))
            }
            (None, None) => None,
            _ => return Err("switching between TLS and plaintext needs a restart".into()),
        };
        warn_missing_keys(&self.registry, &profiles);
        let n = profiles.len();
        self.security.set_policy(policy);
        self.profiles.replace(profiles);
        if let (Some(state), Some((section, cfg))) = (&self.tls, tls) {
            state.install(section, cfg);
        }
        for setting in crate::config::restart_only_changes(&self.in_force, &c) {
            tracing::warn!(
                setting = %setting,
                "SIGHUP: {setting} changed in the file but takes effect only on restart; \
                 the running value stays in force"
            );
        }
        tracing::info!(
            path = %self.path.display(),
            profiles = n,
            "SIGHUP: reloaded [auth] (and auth.tokens_file), [[limits.keys]], [[profiles]] and the TLS files"
        );
        Ok(())
    }
}

/// On SIGHUP, re-reads the config file: `[auth]` (with `tokens_file`),
/// `[[limits.keys]]`, `[[profiles]]` and the TLS files apply to the next
/// request or connection. A file that does not load keeps everything in
/// force and says why. Everything else needs a restart.
fn spawn_reload(reload: Reload) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        let reload = Arc::new(reload);
        while hup.recv().await.is_some() {
            let r = reload.clone();
            let outcome = tokio::task::spawn_blocking(move || r.once())
                .await
                .unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
            if let Err(e) = outcome {
                tracing::error!(error = %e, path = %reload.path.display(), "SIGHUP: config not reloaded; keeping the configuration in force");
            }
        }
    })
}
