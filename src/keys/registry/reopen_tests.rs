//! A version whose material could not be opened (the HSM failed at that
//! moment) comes back into service on a later tick, without a restart and
//! without its record changing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;

use super::*;
use crate::error::Error;
use crate::keys::clock::ManualClock;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::record::KeyRecord;
use crate::keys::store::{Change, PutError, RegistryStore, StoreFuture};
use crate::keys::{Algorithm, KeyBackend, KeyHandle, ProtectionLevel};

/// Keeps records across registries, as a token does.
#[derive(Debug, Default)]
struct KeptStore(Mutex<HashMap<String, KeyRecord>>);

impl RegistryStore for KeptStore {
    fn name(&self) -> &'static str {
        "kept"
    }
    fn load(&self) -> StoreFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(async { Ok(self.0.lock().values().cloned().collect()) })
    }
    fn put<'a>(
        &'a self,
        record: &'a KeyRecord,
        _change: &'a Change,
    ) -> StoreFuture<'a, std::result::Result<(), PutError>> {
        self.0.lock().insert(record.name.clone(), record.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Keeps handles by label, and fails to open them while `down` is set.
#[derive(Debug, Default)]
struct FlakyBackend {
    inner: MemoryBackend,
    handles: Mutex<HashMap<String, Arc<dyn KeyHandle>>>,
    down: AtomicBool,
}

impl KeyBackend for FlakyBackend {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn protection_level(&self) -> ProtectionLevel {
        ProtectionLevel::Hsm
    }
    fn check_algorithm(&self, alg: Algorithm) -> Result<()> {
        self.inner.check_algorithm(alg)
    }
    fn generate(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        let h = self.inner.generate(label, alg)?;
        self.handles.lock().insert(label.to_string(), h.clone());
        Ok(h)
    }
    fn open(&self, label: &str, _alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("HSM unavailable during find key"));
        }
        self.handles
            .lock()
            .get(label)
            .cloned()
            .ok_or_else(|| Error::not_found("no such object"))
    }
    fn destroy(&self, label: &str) -> Result<()> {
        self.handles.lock().remove(label);
        Ok(())
    }
    fn health(&self) -> Result<()> {
        Ok(())
    }
}

fn registry(backend: &Arc<FlakyBackend>, store: &Arc<KeptStore>) -> Registry {
    Registry::new(
        backend.clone(),
        store.clone(),
        Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )),
        RegistrySettings::default(),
    )
}

async fn signs(reg: &Registry) -> bool {
    reg.sign(
        "k",
        None,
        Input::Message(b"m".to_vec()),
        SignatureFormat::Der,
    )
    .await
    .is_ok()
}

#[tokio::test]
async fn a_version_that_failed_to_open_returns_on_a_later_tick() {
    let backend = Arc::new(FlakyBackend::default());
    let store = Arc::new(KeptStore::default());
    let first = registry(&backend, &store);
    first
        .create_key(
            "k",
            Algorithm::EcdsaP256Sha256,
            BTreeMap::new(),
            None,
            false,
        )
        .await
        .unwrap();
    assert!(signs(&first).await);

    // A restart while the HSM fails: the version loads without material.
    backend.down.store(true, Ordering::SeqCst);
    let second = registry(&backend, &store);
    assert_eq!(second.load().await.unwrap(), 1);
    assert!(!signs(&second).await);
    // Ticks while it still fails change nothing, and back off.
    second.tick().await;
    assert!(!signs(&second).await);
    assert!(second.reopen.lock().contains_key(&("k".to_string(), 1)));

    // The HSM is back: the next due retry opens it, record unchanged.
    backend.down.store(false, Ordering::SeqCst);
    second.reopen.lock().values_mut().for_each(|r| {
        r.next = std::time::Instant::now();
    });
    second.tick().await;
    assert!(signs(&second).await, "the version is back in service");
    assert!(second.reopen.lock().is_empty());
}
