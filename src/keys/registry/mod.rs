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
use super::ecdsa_sig::{self, SignatureFormat};
use super::record::{KeyRecord, VersionState};
use super::store::RegistryStore;
use super::{Algorithm, Family, KeyBackend, KeyHandle, ProtectionLevel, PublicKey, SignInput};
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
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            default_grace: Duration::from_secs(7 * 24 * 3600),
            destroy_delay: Duration::from_secs(24 * 3600),
            destroy_orphans: false,
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

/// The result of a signature.
#[derive(Debug, Clone)]
pub struct Signed {
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
}

/// Public-key operations on an HMAC key are `INVALID_ARGUMENT`.
fn refuse_symmetric(rec: &KeyRecord) -> Result<()> {
    if rec.algorithm.is_symmetric() {
        return Err(Error::invalid(format!(
            "key {} is {}: HMAC keys have no public key",
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
        }
    }

    /// Loads every stored record and opens its material. Versions whose
    /// material cannot be opened are reported and left out of service.
    pub async fn load(&self) -> Result<usize> {
        let _g = self.admin.lock().await;
        let store = self.store.clone();
        let records = self.blocking(move || store.load()).await?;
        self.reconcile(&records).await;
        let mut loaded = 0;
        for record in records {
            record.check_invariants()?;
            let mut material = HashMap::new();
            for v in &record.versions {
                if v.state == VersionState::Destroyed {
                    continue;
                }
                if let Some(m) = self.open_version(&record, v).await {
                    material.insert(v.version, m);
                }
            }
            let name = record.name.clone();
            self.keys.write().insert(
                name,
                Arc::new(KeyEntry {
                    state: RwLock::new(KeyState { record, material }),
                }),
            );
            loaded += 1;
        }
        Ok(loaded)
    }

    /// Opens one version's material: its public key from the record, or
    /// the backend's handle. A failure is logged and the version is left
    /// without material (it then neither signs nor verifies).
    async fn open_version(
        &self,
        record: &KeyRecord,
        v: &super::record::VersionRecord,
    ) -> Option<VersionMaterial> {
        let m = match &v.public_spki {
            Some(der) => PublicKey::from_spki_der(record.algorithm, der)
                .map(|p| VersionMaterial::Public(Arc::new(p))),
            None => {
                let (b, label, alg) = (self.backend.clone(), v.label.clone(), record.algorithm);
                crate::telemetry::rpc::backend(
                    self.kind(),
                    "open",
                    self.blocking(move || b.open(&label, alg)),
                )
                .await
                .map(VersionMaterial::Private)
            }
        };
        m.inspect_err(|e| {
            tracing::error!(
                key = %record.name, version = v.version, error = %e,
                "key version material cannot be opened; it will not be used"
            )
        })
        .ok()
    }

    /// Brings in changes other signet processes made to a shared store (a
    /// token several replicas use): new keys, new versions, new states.
    /// Material for new versions is opened once, here; versions another
    /// process destroyed lose theirs. Called on every tick when the store
    /// is shared; a no-op otherwise.
    pub async fn refresh(&self) -> Result<usize> {
        if !self.store.shared() {
            return Ok(0);
        }
        let _g = self.admin.lock().await;
        let store = self.store.clone();
        let records = self.blocking(move || store.load()).await?;
        let mut changed = 0;
        for record in records {
            if record.check_invariants().is_err() {
                tracing::error!(key = %record.name, "stored record breaks an invariant; ignored");
                continue;
            }
            let existing = self.keys.read().get(&record.name).cloned();
            let (mut material, labels) = match &existing {
                Some(e) => {
                    let st = e.state.read();
                    if st.record == record {
                        continue;
                    }
                    let labels: HashMap<u32, String> = st
                        .record
                        .versions
                        .iter()
                        .map(|v| (v.version, v.label.clone()))
                        .collect();
                    (st.material.clone(), labels)
                }
                None => (HashMap::new(), HashMap::new()),
            };
            for v in &record.versions {
                if v.state == VersionState::Destroyed {
                    material.remove(&v.version);
                    continue;
                }
                // The same version number with another label: two replicas
                // raced and the store kept the other's record (a token that
                // does not show one process's new objects to another at
                // once, such as SoftHSM2, can let both writes through).
                // Converge on the stored version's material.
                if labels.get(&v.version).is_some_and(|l| *l != v.label) {
                    tracing::warn!(
                        key = %record.name, version = v.version,
                        "version replaced by another replica's after a write race; using the stored one"
                    );
                    material.remove(&v.version);
                }
                if material.contains_key(&v.version) {
                    continue;
                }
                if let Some(m) = self.open_version(&record, v).await {
                    material.insert(v.version, m);
                }
            }
            changed += 1;
            match existing {
                Some(e) => {
                    let mut st = e.state.write();
                    st.record = record;
                    st.material = material;
                }
                None => {
                    let name = record.name.clone();
                    self.keys.write().insert(
                        name,
                        Arc::new(KeyEntry {
                            state: RwLock::new(KeyState { record, material }),
                        }),
                    );
                }
            }
        }
        if changed > 0 {
            tracing::info!(
                keys = changed,
                "registry refreshed with changes from the shared store"
            );
        }
        Ok(changed)
    }

    /// Start-up check of the backend's material against the records:
    /// material of a DESTROYED version (a crash between the record update
    /// and the destruction) is destroyed now; material no record names (a
    /// crash between generation and the record write) is reported, and
    /// destroyed only with `destroy_orphans`, because another signet process
    /// on the same token may be about to record it.
    async fn reconcile(&self, records: &[KeyRecord]) {
        let referenced: Vec<String> = records
            .iter()
            .flat_map(|r| r.versions.iter())
            .filter(|v| v.state != VersionState::Destroyed)
            .map(|v| v.label.clone())
            .collect();
        let destroyed: Vec<String> = records
            .iter()
            .flat_map(|r| r.versions.iter())
            .filter(|v| v.state == VersionState::Destroyed)
            .map(|v| v.label.clone())
            .collect();
        let b = self.backend.clone();
        let orphans = match self.blocking(move || b.orphan_check(&referenced)).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "start-up reconciliation could not list key material");
                return;
            }
        };
        for label in orphans {
            if destroyed.contains(&label) || self.settings.destroy_orphans {
                let (b, l) = (self.backend.clone(), label.clone());
                match self.blocking(move || b.destroy(&l)).await {
                    Ok(()) => tracing::warn!(
                        label = %label,
                        "destroyed key material left by an interrupted destruction, create or rotation"
                    ),
                    Err(e) => {
                        tracing::error!(label = %label, error = %e, "cannot destroy leftover material")
                    }
                }
            } else {
                tracing::warn!(
                    label = %label,
                    "key material on the backend that no key record names (an interrupted create \
                     or rotation); it is never used. Remove it with the backend's tools once no \
                     other signet process is rotating keys"
                );
            }
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Stops the backend once the server no longer calls it: waits for its
    /// in-flight calls (a tick or health probe whose task was aborted may
    /// still be running on a backend thread).
    pub async fn shutdown_backend(&self) {
        let b = self.backend.clone();
        let _ = tokio::task::spawn_blocking(move || b.shutdown()).await;
    }

    /// The backend's health.
    pub async fn health(&self) -> Result<()> {
        let b = self.backend.clone();
        self.blocking(move || b.health()).await
    }

    /// Runs a backend or store call where it belongs: on the backend's own
    /// threads for backends that block (see [`KeyBackend::dispatch`]),
    /// inline for CPU-only ones.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.backend.blocking() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.backend.dispatch(Box::new(move || {
                let _ = tx.send(f());
            }));
            rx.await
                .map_err(|_| Error::internal("backend call ended without a result"))?
        } else {
            f()
        }
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

    /// The backend's name in metrics and traces.
    fn kind(&self) -> &'static str {
        match self.backend.protection_level() {
            crate::keys::ProtectionLevel::Hsm => "pkcs11",
            crate::keys::ProtectionLevel::Software => "memory",
        }
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

    /// Signs with the ACTIVE version, or with `version`, which must be ACTIVE.
    pub async fn sign(
        &self,
        name: &str,
        version: Option<u32>,
        input: Input,
        format: SignatureFormat,
    ) -> Result<Signed> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let (v, handle, alg, kid) = {
            let st = entry.state.read();
            let rec = &st.record;
            if rec.verify_only {
                return Err(Error::precondition(format!(
                    "key {name} holds public keys only and cannot sign"
                )));
            }
            let v = match version {
                Some(v) => {
                    let s = rec.version(v)?.effective_state(now);
                    if s != VersionState::Active {
                        return Err(Error::precondition(format!(
                            "version {v} of key {name} is {}; only the ACTIVE version signs",
                            s.name()
                        )));
                    }
                    v
                }
                None => rec.active().map(|r| r.version).ok_or_else(|| {
                    Error::precondition(format!("key {name} has no ACTIVE version"))
                })?,
            };
            let handle = match st.material.get(&v) {
                Some(VersionMaterial::Private(h)) => h.clone(),
                _ => {
                    return Err(Error::unavailable(format!(
                        "version {v} of key {name} is not available"
                    )))
                }
            };
            (v, handle, rec.algorithm, rec.version_id(v))
        };
        self.sign_with(handle, alg, v, kid, input, format).await
    }

    /// Signs with the ACTIVE version and then every PENDING one (oldest
    /// first): for webhook formats that carry several signatures, so a
    /// receiver that already has the next secret accepts the request too.
    pub async fn sign_active_and_pending(
        &self,
        name: &str,
        input: Input,
        format: SignatureFormat,
    ) -> Result<Vec<Signed>> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let (alg, signers) = {
            let st = entry.state.read();
            let rec = &st.record;
            if rec.verify_only {
                return Err(Error::precondition(format!(
                    "key {name} holds public keys only and cannot sign"
                )));
            }
            let active = rec
                .active()
                .map(|r| r.version)
                .ok_or_else(|| Error::precondition(format!("key {name} has no ACTIVE version")))?;
            let pending = rec
                .versions
                .iter()
                .filter(|r| r.effective_state(now) == VersionState::Pending)
                .map(|r| r.version);
            let mut signers = Vec::new();
            for v in std::iter::once(active).chain(pending) {
                match st.material.get(&v) {
                    Some(VersionMaterial::Private(h)) => {
                        signers.push((v, h.clone(), rec.version_id(v)))
                    }
                    _ if v == active => {
                        return Err(Error::unavailable(format!(
                            "version {v} of key {name} is not available"
                        )))
                    }
                    // A PENDING version without material cannot sign yet.
                    _ => {}
                }
            }
            (rec.algorithm, signers)
        };
        let mut out = Vec::with_capacity(signers.len());
        for (v, handle, kid) in signers {
            out.push(
                self.sign_with(handle, alg, v, kid, input.clone(), format)
                    .await?,
            );
        }
        Ok(out)
    }

    async fn sign_with(
        &self,
        handle: Arc<dyn KeyHandle>,
        alg: Algorithm,
        v: u32,
        kid: String,
        input: Input,
        format: SignatureFormat,
    ) -> Result<Signed> {
        input.borrow().check(alg)?;
        crate::telemetry::rpc::note_version(v);
        let kind = self.kind();
        let raw = if self.backend.blocking() {
            crate::telemetry::rpc::backend(
                kind,
                "sign",
                self.blocking(move || handle.sign(input.borrow())),
            )
            .await?
        } else {
            crate::telemetry::rpc::backend_sync(kind, "sign", || handle.sign(input.borrow()))?
        };
        // Every ECDSA signature leaves in low-S form, whichever backend made
        // it, so signet never hands out both (r, s) and (r, n − s).
        let signature = match (alg.family(), alg.curve()) {
            (Family::Ecdsa, Some(c)) => {
                let mut raw = raw;
                ecdsa_sig::normalize_low_s(c, &mut raw)?;
                match format {
                    SignatureFormat::Der => ecdsa_sig::raw_to_der(c, &raw)?,
                    SignatureFormat::Raw => raw,
                }
            }
            _ => raw,
        };
        Ok(Signed {
            signature,
            version: v,
            key_version_id: kid,
            algorithm: alg,
        })
    }

    /// Verifies against `version` (which must verify in its state), or
    /// against every version that may verify, newest first.
    pub async fn verify(
        &self,
        name: &str,
        version: Option<u32>,
        input: Input,
        signature: Vec<u8>,
        format: SignatureFormat,
    ) -> Result<Verified> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let (alg, candidates) = {
            let st = entry.state.read();
            let rec = &st.record;
            let versions: Vec<u32> = match version {
                Some(v) => {
                    let s = rec.version(v)?.effective_state(now);
                    if !s.verifies() {
                        return Err(Error::precondition(format!(
                            "version {v} of key {name} is {} and does not verify",
                            s.name()
                        )));
                    }
                    vec![v]
                }
                None => rec
                    .versions
                    .iter()
                    .rev()
                    .filter(|r| r.effective_state(now).verifies())
                    .map(|r| r.version)
                    .collect(),
            };
            let c: Vec<(u32, VersionMaterial)> = versions
                .into_iter()
                .filter_map(|v| st.material.get(&v).map(|m| (v, m.clone())))
                .collect();
            (rec.algorithm, c)
        };
        input.borrow().check(alg)?;
        for (v, m) in candidates {
            let ok = match &m {
                VersionMaterial::Private(h) if alg.is_symmetric() => {
                    let (h, input, sig) = (h.clone(), input.clone(), signature.clone());
                    let kind = self.kind();
                    if self.backend.blocking() {
                        crate::telemetry::rpc::backend(
                            kind,
                            "verify",
                            self.blocking(move || h.verify_mac(input.borrow(), &sig)),
                        )
                        .await?
                    } else {
                        crate::telemetry::rpc::backend_sync(kind, "verify", || {
                            h.verify_mac(input.borrow(), &sig)
                        })?
                    }
                }
                VersionMaterial::Private(h) => match h.public_key() {
                    Some(p) => p.verify(input.borrow(), &signature, format)?,
                    None => false,
                },
                VersionMaterial::Public(p) => p.verify(input.borrow(), &signature, format)?,
            };
            if ok {
                crate::telemetry::rpc::note_version(v);
                return Ok(Verified {
                    valid: true,
                    version: Some(v),
                    key_version_id: Some(format!("{name}:v{v}")),
                });
            }
        }
        Ok(Verified {
            valid: false,
            version: None,
            key_version_id: None,
        })
    }

    /// The public key of `version`, or of the ACTIVE version.
    pub fn public_key(&self, name: &str, version: Option<u32>) -> Result<Exported> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let st = entry.state.read();
        let rec = &st.record;
        refuse_symmetric(rec)?;
        let v = match version {
            Some(v) => v,
            None => rec
                .active()
                .map(|r| r.version)
                .ok_or_else(|| Error::precondition(format!("key {name} has no ACTIVE version")))?,
        };
        let state = rec.version(v)?.effective_state(now);
        if state == VersionState::Destroyed {
            return Err(Error::precondition(format!(
                "version {v} of key {name} is DESTROYED"
            )));
        }
        let key = st
            .material
            .get(&v)
            .and_then(VersionMaterial::public_key)
            .ok_or_else(|| {
                Error::unavailable(format!("version {v} of key {name} is not available"))
            })?;
        Ok(Exported {
            key,
            version: v,
            key_version_id: rec.version_id(v),
            state,
        })
    }

    /// A JWKS of the PENDING, ACTIVE and RETIRING versions, newest first.
    pub fn jwks(&self, name: &str) -> Result<serde_json::Value> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let st = entry.state.read();
        let rec = &st.record;
        refuse_symmetric(rec)?;
        let keys: Vec<serde_json::Value> = rec
            .versions
            .iter()
            .rev()
            .filter(|r| r.effective_state(now).published())
            .filter_map(|r| {
                let p = st.material.get(&r.version)?.public_key()?;
                Some(p.to_jwk(&rec.version_id(r.version)))
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

mod lifecycle;

#[cfg(test)]
mod tests;
