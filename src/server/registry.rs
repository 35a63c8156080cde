//! The key registry a configuration describes: its backend (memory or
//! PKCS#11), its store, and the demo keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::settings::registry_settings;
use crate::config::{BackendConfig, Config, RegistryStoreKind};
use crate::error::{ConfigError, StartupError};
use crate::keys::clock::Clock;
use crate::keys::memory::MemoryBackend;
use crate::keys::pkcs11::store::TokenStore;
use crate::keys::pkcs11::{Pkcs11Backend, TokenSelector};
use crate::keys::registry::Registry;
use crate::keys::store::{NullStore, RegistryStore};
use crate::keys::{Algorithm, KeyBackend};
use crate::postgres::listen::Contact;
use crate::postgres::registry::PgRegistryStore;
use crate::postgres::Database;

/// The demo keys created when signet starts with no configuration.
pub(crate) const DEMO_KEYS: [(&str, Algorithm); 4] = [
    ("demo-hmac", Algorithm::HmacSha256),
    ("demo-rsa", Algorithm::RsaPkcs1_2048Sha256),
    ("demo-ecdsa", Algorithm::EcdsaP256Sha256),
    ("demo-ed25519", Algorithm::Ed25519),
];

/// [`open_registry`], with the error as text (what the PKCS#11 tests read).
pub async fn build_registry(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Registry>, String> {
    open_registry(config, clock)
        .await
        .map_err(|e| e.to_string())
}

/// Opens the backend the configuration describes and loads the registry,
/// with `clock`.
pub(crate) async fn open_registry(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Registry>, StartupError> {
    let mut listener = None;
    let (backend, store, demo): (Arc<dyn KeyBackend>, Arc<dyn RegistryStore>, bool) =
        match &config.backend {
            BackendConfig::Memory { demo_keys } => (
                Arc::new(MemoryBackend::new()),
                Arc::new(NullStore),
                *demo_keys,
            ),
            BackendConfig::Pkcs11(p) => {
                let backend = open_pkcs11(p).await?;
                tracing::info!(token = %backend.token(), "PKCS#11 backend ready");
                let backend = Arc::new(backend);
                let store: Arc<dyn RegistryStore> = match config.registry.store {
                    RegistryStoreKind::Token => Arc::new(TokenStore::new(backend.clone())),
                    RegistryStoreKind::Postgres => {
                        let pg = config.postgres.as_ref().ok_or_else(|| {
                            ConfigError::new("postgres", "a [postgres] section is required")
                        })?;
                        let db = Database::open(pg).await?;
                        let contact = Contact::new();
                        listener = Some((db.clone(), contact.clone()));
                        Arc::new(PgRegistryStore::new(db, contact))
                    }
                };
                (backend, store, false)
            }
        };
    let settings = registry_settings(config);
    let registry = Arc::new(Registry::new(backend, store, clock, settings));
    let loaded = registry
        .load()
        .await
        .map_err(|e| StartupError::dependency("cannot load the key registry", e))?;
    if let Some((db, contact)) = listener {
        // Ends when the registry is dropped.
        crate::postgres::listen::spawn(db, Arc::downgrade(&registry), contact);
    }
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
                    false,
                )
                .await
                .map_err(|e| StartupError::dependency("cannot create a demo key", e))?;
        }
        tracing::warn!(
            keys = ?DEMO_KEYS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "demo mode: in-memory backend with demo keys; nothing is persisted. Not for production."
        );
    }
    Ok(registry)
}

/// Opens the PKCS#11 backend `p` describes (logs in, starts its threads).
pub(crate) async fn open_pkcs11(
    p: &crate::config::Pkcs11Config,
) -> Result<Pkcs11Backend, StartupError> {
    let settings = crate::keys::pkcs11::Pkcs11Settings {
        module: p.module.clone(),
        token: match (&p.token_label, &p.token_serial) {
            (Some(l), _) => TokenSelector::Label(l.clone()),
            (None, Some(s)) => TokenSelector::Serial(s.clone()),
            (None, None) => return Err(ConfigError::new("backend", "no token selected").into()),
        },
        pin: p.read_pin()?,
        max_sessions: p.max_sessions,
        session_wait: p.session_wait,
        threads: p.worker_threads(),
    };
    tokio::task::spawn_blocking(move || Pkcs11Backend::open(settings))
        .await
        .map_err(|e| StartupError::failed("PKCS#11 start-up failed", e))?
        .map_err(|e| StartupError::failed("PKCS#11 backend", e.message().to_string()))
}
