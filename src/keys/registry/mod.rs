//! The key registry: names → versions → states, the material handles the
//! backend returned, staged rotation, and the time-driven transitions.
//!
//! Reads (sign, verify, export) take a shared lock for a few instructions
//! and use the cached handle outside it. Every mutation is serialised by one
//! admin lock, computed on a copy of the record, checked for invariants,
//! persisted, and only then swapped in: a failure at any step leaves the
//! previous state untouched.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;

use super::clock::Clock;

use super::record::{KeyRecord, VersionState};
use super::store::RegistryStore;
use super::{Algorithm, KeyBackend, KeyHandle, ProtectionLevel, PublicKey, SignInput};
use crate::error::{Error, Result};

/// Registry-wide settings.
#[derive(Clone, Debug)]
pub struct RegistrySettings {
    /// Grace for the previous ACTIVE version when none is given.
    pub default_grace: Duration,
    /// Delay between DestroyKeyVersion and the material's destruction.
    pub destroy_delay: Duration,
    /// At start-up, destroy backend material that no record names instead
    /// of only reporting it. Safe only when no other signet process shares
    /// the backend's store (it could be between generating a version and
    /// recording it).
    pub destroy_orphans: bool,
    /// With a store shared by notification (PostgreSQL): how long this
    /// process may be out of contact with it and still sign and verify
    /// from its cached view.
    pub max_staleness: Duration,
    /// Most encryptions one AES-GCM version makes (NIST SP 800-38D §8.3:
    /// 2^32 with random nonces).
    pub max_encryptions: u64,
    /// Refuse secret key material imported in the clear: only wrapped
    /// imports (`keys.refuse_plaintext_import`).
    pub refuse_plaintext_import: bool,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            default_grace: Duration::from_secs(7 * 24 * 3600),
            destroy_delay: Duration::from_secs(24 * 3600),
            destroy_orphans: false,
            max_staleness: Duration::from_secs(60),
            max_encryptions: 1 << 32,
            refuse_plaintext_import: false,
        }
    }
}

/// Owned sign/verify input, so it can cross to the blocking pool.
#[derive(Clone)]
pub enum Input {
    /// The message.
    Message(Vec<u8>),
    /// A digest with the key's hash.
    Digest(Vec<u8>),
}

impl Input {
    fn borrow(&self) -> SignInput<'_> {
        match self {
            Input::Message(m) => SignInput::Message(m),
            Input::Digest(d) => SignInput::Digest(d),
        }
    }
}

/// A signature made by a key version, and which version made it (named
/// apart from the HTTP signing engine's `Signed`).
#[derive(Debug, Clone)]
pub struct KeySignature {
    /// Signature bytes.
    pub signature: Vec<u8>,
    /// Version that signed.
    pub version: u32,
    /// `NAME:vN`.
    pub key_version_id: String,
    /// The key's algorithm.
    pub algorithm: Algorithm,
}

/// The result of a verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Whether a version verified.
    pub valid: bool,
    /// That version.
    pub version: Option<u32>,
    /// Its `NAME:vN`.
    pub key_version_id: Option<String>,
}

impl Verified {
    /// No version verified.
    pub(crate) fn invalid() -> Self {
        Self {
            valid: false,
            version: None,
            key_version_id: None,
        }
    }
}

/// A key as callers see it: states as of now.
#[derive(Debug, Clone)]
pub struct KeyView {
    /// The record with effective states.
    pub record: KeyRecord,
    /// Where the material lives.
    pub protection: ProtectionLevel,
    /// When the rotation policy acts next.
    pub next_rotation: Option<SystemTime>,
}

impl KeyView {
    /// The ACTIVE version number, or 0.
    pub fn active_version(&self) -> u32 {
        self.record.active().map_or(0, |r| r.version)
    }
}

/// A public key export.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The key.
    pub key: Arc<PublicKey>,
    /// Its version.
    pub version: u32,
    /// `NAME:vN`.
    pub key_version_id: String,
    /// The version's state.
    pub state: VersionState,
}

#[derive(Clone, Debug)]
enum VersionMaterial {
    Private(Arc<dyn KeyHandle>),
    Public(Arc<PublicKey>),
}

impl VersionMaterial {
    fn public_key(&self) -> Option<Arc<PublicKey>> {
        match self {
            VersionMaterial::Private(h) => h.public_key().map(|p| Arc::new(p.clone())),
            VersionMaterial::Public(p) => Some(p.clone()),
        }
    }
}

#[derive(Debug)]
struct KeyState {
    record: KeyRecord,
    material: HashMap<u32, VersionMaterial>,
}

#[derive(Debug)]
struct KeyEntry {
    state: RwLock<KeyState>,
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    backend: Arc<dyn KeyBackend>,
    store: Arc<dyn RegistryStore>,
    clock: Arc<dyn Clock>,
    settings: RegistrySettings,
    keys: RwLock<BTreeMap<String, Arc<KeyEntry>>>,
    admin: tokio::sync::Mutex<()>,
    /// Versions whose material failed to open, and when to try again
    /// (see `load::reopen_missing`).
    reopen: parking_lot::Mutex<HashMap<(String, u32), load::Retry>>,
    /// Set by [`Registry::shutdown_backend`]: changes are refused after it.
    stopped: std::sync::atomic::AtomicBool,
    /// Encryption blocks and decryption counts (`counts.rs`).
    counts: counts::Counts,
}

/// Public-key operations on a symmetric key are `INVALID_ARGUMENT`.
fn refuse_symmetric(rec: &KeyRecord) -> Result<()> {
    if rec.algorithm.is_symmetric() {
        return Err(Error::invalid(format!(
            "key {} is {}: symmetric keys have no public key",
            rec.name, rec.algorithm
        )));
    }
    Ok(())
}

/// Signing and verifying with an encryption key are `INVALID_ARGUMENT`.
fn refuse_encryption_key(rec: &KeyRecord) -> Result<()> {
    if rec.algorithm.encrypts() {
        return Err(Error::invalid(format!(
            "key {} is {}: it encrypts and decrypts (signet.v1.CipherService), it does not sign",
            rec.name, rec.algorithm
        )));
    }
    Ok(())
}

const MAX_LABELS: usize = 32;
const MAX_LABEL_LEN: usize = 128;

fn validate_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(Error::invalid(format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > MAX_LABEL_LEN || v.len() > MAX_LABEL_LEN {
            return Err(Error::invalid(format!(
                "label keys must be 1..={MAX_LABEL_LEN} bytes and values at most {MAX_LABEL_LEN}"
            )));
        }
        if k.chars().chain(v.chars()).any(char::is_control) {
            return Err(Error::invalid("labels must not contain control characters"));
        }
    }
    Ok(())
}

fn new_label(name: &str, version: u32) -> String {
    let mut r = [0u8; 4];
    aws_lc_rs::rand::fill(&mut r).expect("system RNG");
    format!("{name}:v{version}:{}", hex::encode(r))
}

impl Registry {
    /// A registry over `backend`, persisting to `store`.
    pub fn new(
        backend: Arc<dyn KeyBackend>,
        store: Arc<dyn RegistryStore>,
        clock: Arc<dyn Clock>,
        settings: RegistrySettings,
    ) -> Self {
        Self {
            backend,
            store,
            clock,
            settings,
            keys: RwLock::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            reopen: parking_lot::Mutex::new(HashMap::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
            counts: counts::Counts::default(),
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Stops the backend once the server no longer calls it: waits for its
    /// in-flight calls (a tick, an admin call or a health probe whose task
    /// was aborted may still be running on a backend thread). Every call
    /// goes through [`Registry::call`], so afterwards none is inside the
    /// backend, and calls made later fail with the backend's error.
    pub async fn shutdown_backend(&self) {
        // Whatever the store, no change is recorded once the backend has
        // stopped: its material could no longer be used or cleaned up.
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Joining the backend's threads blocks, and must not run on them.
        let b = self.backend.clone();
        let _ = tokio::task::spawn_blocking(move || b.shutdown()).await;
    }

    /// The backend's health, and whether this process's view of a shared
    /// registry is recent enough to sign from.
    pub async fn health(&self) -> Result<()> {
        self.fresh()?;
        let b = self.backend.clone();
        self.call(Op::Health, move || b.health()).await
    }

    /// `UNAVAILABLE` once this process has been out of contact with a
    /// shared registry for longer than `max_staleness`: a version disabled
    /// on another replica must not go on signing here for long.
    pub fn fresh(&self) -> Result<()> {
        match self.store.out_of_contact() {
            Some(d) if d > self.settings.max_staleness => Err(Error::unavailable(format!(
                "the key registry has been out of contact with its database for {}s \
                 (registry.max_staleness is {}); not signing or verifying until it is back",
                d.as_secs(),
                crate::bounds::show(self.settings.max_staleness)
            ))),
            _ => Ok(()),
        }
    }

    /// Whether this process runs the time-driven transitions (with a
    /// shared registry, one replica at a time does).
    pub fn leads(&self) -> bool {
        self.store.leads()
    }

    /// The key `name`, for signing or verifying with it: only while the
    /// view of the registry is fresh ([`Registry::fresh`]).
    fn usable(&self, name: &str) -> Result<Arc<KeyEntry>> {
        self.fresh()?;
        self.entry(name)
    }

    fn entry(&self, name: &str) -> Result<Arc<KeyEntry>> {
        let e = self
            .keys
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("key {name} not found")))?;
        crate::telemetry::rpc::note_key(name, e.state.read().record.algorithm.name());
        Ok(e)
    }

    fn view(&self, record: &KeyRecord, now: SystemTime) -> KeyView {
        let mut record = record.clone();
        for v in &mut record.versions {
            let s = v.effective_state(now);
            if s != v.state {
                if v.state == VersionState::Retiring {
                    v.disable_time = v.verify_until.take();
                }
                v.state = s;
            }
        }
        let next_rotation = record.next_policy_event().map(|(t, _)| t);
        KeyView {
            record,
            protection: self.backend.protection_level(),
            next_rotation,
        }
    }

    /// For the metrics: per key, how many versions are in each state (in
    /// the order PENDING, ACTIVE, RETIRING, DISABLED, DESTROY_SCHEDULED,
    /// DESTROYED) and the next scheduled rotation.
    pub fn gauges(&self, now: SystemTime) -> Vec<(String, [u64; 6], Option<SystemTime>)> {
        let entries: Vec<(String, Arc<KeyEntry>)> = self
            .keys
            .read()
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        entries
            .into_iter()
            .map(|(name, e)| {
                let st = e.state.read();
                let mut counts = [0u64; 6];
                for v in &st.record.versions {
                    let i = match v.effective_state(now) {
                        VersionState::Pending => 0,
                        VersionState::Active => 1,
                        VersionState::Retiring => 2,
                        VersionState::Disabled => 3,
                        VersionState::DestroyScheduled => 4,
                        VersionState::Destroyed => 5,
                    };
                    counts[i] += 1;
                }
                let next = st.record.next_rotation();
                (name, counts, next)
            })
            .collect()
    }

    /// One key.
    pub fn get(&self, name: &str) -> Result<KeyView> {
        let e = self.entry(name)?;
        let st = e.state.read();
        Ok(self.view(&st.record, self.clock.now()))
    }

    /// Keys that `visible` lets through whose names sort after `after`, at
    /// most `limit`, and whether more such keys remain. Filtering comes
    /// before paging, so neither a page nor the cursor after it ever
    /// depends on a key the caller may not see.
    pub fn list(
        &self,
        after: Option<&str>,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> (Vec<KeyView>, bool) {
        let now = self.clock.now();
        let keys = self.keys.read();
        let mut it = keys
            .iter()
            .filter(|(n, _)| after.is_none_or(|a| n.as_str() > a) && visible(n))
            .map(|(_, e)| e.clone());
        let page: Vec<_> = it.by_ref().take(limit).collect();
        let more = it.next().is_some();
        drop(keys);
        let views = page
            .iter()
            .map(|e| self.view(&e.state.read().record, now))
            .collect();
        (views, more)
    }
}

mod bridge;
mod certs;
mod cipher;
mod counts;
mod export;
mod import;
mod lifecycle;
mod load;
mod sign;

use bridge::Op;
pub use certs::{CertificateChain, CertificateGauge, CertificateRequest};
pub use cipher::{CipherFormat, CipherGauge, Decrypted, Encrypted, DATA_KEY_LEN};
pub use export::WrappedExport;
pub use import::ImportSource;

#[cfg(test)]
mod certs_tests;
#[cfg(test)]
mod cipher_tests;
#[cfg(test)]
mod export_tests;
#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod reopen_tests;
#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
#[cfg(test)]
mod verify_tests;
