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
use super::public::{parse_material, Material};
use super::record::{KeyRecord, PolicyAction, RotationPolicy, VersionRecord, VersionState};
use super::store::RegistryStore;
use super::{
    validate_name, Algorithm, Family, KeyBackend, KeyHandle, ProtectionLevel, PublicKey, SignInput,
};
use crate::error::{Error, Result};

/// Registry-wide settings.
#[derive(Clone, Debug)]
pub struct RegistrySettings {
    /// Grace for the previous ACTIVE version when none is given.
    pub default_grace: Duration,
    /// Delay between DestroyKeyVersion and the material's destruction.
    pub destroy_delay: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            default_grace: Duration::from_secs(7 * 24 * 3600),
            destroy_delay: Duration::from_secs(24 * 3600),
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
            VersionMaterial::Private(h) => h.public_key().map(|p| Arc::new(clone_public(p))),
            VersionMaterial::Public(p) => Some(p.clone()),
        }
    }
}

fn clone_public(p: &PublicKey) -> PublicKey {
    // Re-parse from DER: cheap, only on export paths.
    PublicKey::from_spki_der(p.algorithm(), p.spki_der()).expect("a parsed key re-parses")
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
        let mut loaded = 0;
        for record in records {
            record.check_invariants()?;
            let mut material = HashMap::new();
            for v in &record.versions {
                if v.state == VersionState::Destroyed {
                    continue;
                }
                let m = match &v.public_spki {
                    Some(der) => PublicKey::from_spki_der(record.algorithm, der)
                        .map(|p| VersionMaterial::Public(Arc::new(p))),
                    None => {
                        let (b, label, alg) =
                            (self.backend.clone(), v.label.clone(), record.algorithm);
                        self.blocking(move || b.open(&label, alg))
                            .await
                            .map(VersionMaterial::Private)
                    }
                };
                match m {
                    Ok(m) => {
                        material.insert(v.version, m);
                    }
                    Err(e) => tracing::error!(
                        key = %record.name, version = v.version, error = %e,
                        "key version material cannot be opened; it will not be used"
                    ),
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

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The backend's health.
    pub async fn health(&self) -> Result<()> {
        let b = self.backend.clone();
        self.blocking(move || b.health()).await
    }

    /// Runs a backend or store call where it belongs: on the blocking pool
    /// for backends that block, inline for CPU-only ones.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.backend.blocking() {
            tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| Error::internal(format!("backend task failed: {e}")))?
        } else {
            f()
        }
    }

    fn entry(&self, name: &str) -> Result<Arc<KeyEntry>> {
        self.keys
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("key {name} not found")))
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

    /// One key.
    pub fn get(&self, name: &str) -> Result<KeyView> {
        let e = self.entry(name)?;
        let st = e.state.read();
        Ok(self.view(&st.record, self.clock.now()))
    }

    /// Keys whose names sort after `after`, at most `limit`, and whether more remain.
    pub fn list(&self, after: Option<&str>, limit: usize) -> (Vec<KeyView>, bool) {
        let now = self.clock.now();
        let keys = self.keys.read();
        let mut it = keys
            .iter()
            .filter(|(n, _)| after.is_none_or(|a| n.as_str() > a))
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
        input.borrow().check(alg)?;
        let raw = if self.backend.blocking() {
            self.blocking(move || handle.sign(input.borrow())).await?
        } else {
            handle.sign(input.borrow())?
        };
        let signature = match (alg.family(), alg.curve(), format) {
            (Family::Ecdsa, Some(c), SignatureFormat::Der) => ecdsa_sig::raw_to_der(c, &raw)?,
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
                    if self.backend.blocking() {
                        self.blocking(move || h.verify_mac(input.borrow(), &sig))
                            .await?
                    } else {
                        h.verify_mac(input.borrow(), &sig)?
                    }
                }
                VersionMaterial::Private(h) => match h.public_key() {
                    Some(p) => p.verify(input.borrow(), &signature, format)?,
                    None => false,
                },
                VersionMaterial::Public(p) => p.verify(input.borrow(), &signature, format)?,
            };
            if ok {
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
        if rec.algorithm.is_symmetric() {
            return Err(Error::invalid(format!(
                "key {name} is {}: HMAC keys have no public key",
                rec.algorithm
            )));
        }
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
        if rec.algorithm.is_symmetric() {
            return Err(Error::invalid(format!(
                "key {name} is {}: HMAC keys have no public key",
                rec.algorithm
            )));
        }
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

    async fn persist(&self, record: &KeyRecord) -> Result<()> {
        record.check_invariants()?;
        let (store, rec) = (self.store.clone(), record.clone());
        self.blocking(move || store.put(&rec)).await
    }

    fn grace_for(&self, rec: &KeyRecord, grace: Option<Duration>) -> Duration {
        grace
            .or_else(|| rec.policy.and_then(|p| p.grace_period))
            .unwrap_or(self.settings.default_grace)
    }

    /// Creates a key whose version 1 the backend generates, ACTIVE.
    pub async fn create_key(
        &self,
        name: &str,
        alg: Algorithm,
        labels: BTreeMap<String, String>,
        policy: Option<RotationPolicy>,
    ) -> Result<KeyView> {
        validate_name("key", name)?;
        validate_labels(&labels)?;
        if let Some(p) = &policy {
            p.validate()?;
        }
        self.backend.check_algorithm(alg)?;
        let _g = self.admin.lock().await;
        if self.keys.read().contains_key(name) {
            return Err(Error::exists(format!("key {name} already exists")));
        }
        let now = self.clock.now();
        let label = new_label(name, 1);
        let (b, l) = (self.backend.clone(), label.clone());
        let handle = self.blocking_admin(move || b.generate(&l, alg)).await?;
        let record = KeyRecord {
            name: name.to_string(),
            algorithm: alg,
            labels,
            policy,
            create_time: now,
            verify_only: false,
            versions: vec![VersionRecord::new(
                1,
                VersionState::Active,
                label.clone(),
                now,
            )],
        };
        self.insert_new(record, VersionMaterial::Private(handle), &label)
            .await
    }

    async fn insert_new(
        &self,
        record: KeyRecord,
        material: VersionMaterial,
        label: &str,
    ) -> Result<KeyView> {
        if let Err(e) = self.persist(&record).await {
            self.discard(label, &material).await;
            return Err(e);
        }
        let view = self.view(&record, self.clock.now());
        let name = record.name.clone();
        self.keys.write().insert(
            name,
            Arc::new(KeyEntry {
                state: RwLock::new(KeyState {
                    record,
                    material: HashMap::from([(1, material)]),
                }),
            }),
        );
        Ok(view)
    }

    /// Destroys material that never made it into a persisted record.
    async fn discard(&self, label: &str, material: &VersionMaterial) {
        if let VersionMaterial::Private(_) = material {
            let (b, l) = (self.backend.clone(), label.to_string());
            if let Err(e) = self.blocking_admin(move || b.destroy(&l)).await {
                tracing::error!(label, error = %e, "could not discard unrecorded key material");
            }
        }
    }

    /// Backend calls for admin operations always leave the async runtime:
    /// RSA generation takes seconds even in memory.
    async fn blocking_admin<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| Error::internal(format!("backend task failed: {e}")))?,
            Err(_) => f(),
        }
    }

    /// Imports material as a new key (version 1 ACTIVE) or, with
    /// `as_new_version`, as a new PENDING version of an existing key.
    pub async fn import_key(
        &self,
        name: &str,
        alg: Algorithm,
        material: &[u8],
        as_new_version: bool,
        labels: BTreeMap<String, String>,
    ) -> Result<KeyView> {
        validate_name("key", name)?;
        validate_labels(&labels)?;
        let parsed = parse_material(alg, material)?;
        let public_only = matches!(parsed, Material::Public(_));
        if !public_only {
            self.backend.check_algorithm(alg)?;
        }
        let _g = self.admin.lock().await;
        let now = self.clock.now();
        let existing = self.keys.read().get(name).cloned();
        let (version, base) = match (as_new_version, existing) {
            (false, Some(_)) => return Err(Error::exists(format!("key {name} already exists"))),
            (false, None) => (1, None),
            (true, None) => return Err(Error::not_found(format!("key {name} not found"))),
            (true, Some(e)) => {
                let rec = e.state.read().record.clone();
                if rec.algorithm != alg {
                    return Err(Error::invalid(format!(
                        "key {name} is {}, not {alg}",
                        rec.algorithm
                    )));
                }
                if rec.verify_only != public_only {
                    return Err(Error::invalid(if rec.verify_only {
                        format!("key {name} is verify-only: import a public key")
                    } else {
                        format!("key {name} signs: import private key material")
                    }));
                }
                (rec.next_version(), Some((e, rec)))
            }
        };
        let label = new_label(name, version);
        let (vm, spki) = match parsed {
            Material::Public(p) => {
                let der = p.spki_der().to_vec();
                (VersionMaterial::Public(Arc::new(p)), Some(der))
            }
            Material::Private(m) => {
                let (b, l) = (self.backend.clone(), label.clone());
                let h = self.blocking_admin(move || b.import(&l, alg, m)).await?;
                (VersionMaterial::Private(h), None)
            }
        };
        let state = if base.is_some() {
            VersionState::Pending
        } else {
            VersionState::Active
        };
        let mut vrec = VersionRecord::new(version, state, label.clone(), now);
        vrec.public_spki = spki;
        match base {
            None => {
                let record = KeyRecord {
                    name: name.to_string(),
                    algorithm: alg,
                    labels,
                    policy: None,
                    create_time: now,
                    verify_only: public_only,
                    versions: vec![vrec],
                };
                self.insert_new(record, vm, &label).await
            }
            Some((entry, mut rec)) => {
                rec.versions.push(vrec);
                self.commit_version(&entry, rec, version, vm, &label).await
            }
        }
    }

    async fn commit_version(
        &self,
        entry: &KeyEntry,
        rec: KeyRecord,
        version: u32,
        vm: VersionMaterial,
        label: &str,
    ) -> Result<KeyView> {
        if let Err(e) = self.persist(&rec).await {
            self.discard(label, &vm).await;
            return Err(e);
        }
        let view = self.view(&rec, self.clock.now());
        let mut st = entry.state.write();
        st.material.insert(version, vm);
        st.record = rec;
        Ok(view)
    }

    /// Generates a new version: PENDING, or ACTIVE at once with `promote`.
    pub async fn rotate(
        &self,
        name: &str,
        promote: bool,
        grace: Option<Duration>,
    ) -> Result<(KeyView, u32)> {
        if let Some(g) = grace {
            super::record::check_grace(g)?;
        }
        let _g = self.admin.lock().await;
        self.rotate_locked(name, promote, grace).await
    }

    async fn rotate_locked(
        &self,
        name: &str,
        promote: bool,
        grace: Option<Duration>,
    ) -> Result<(KeyView, u32)> {
        let entry = self.entry(name)?;
        let mut rec = entry.state.read().record.clone();
        if rec.verify_only {
            return Err(Error::precondition(format!(
                "key {name} holds imported public keys only: import a new version instead"
            )));
        }
        let version = rec.next_version();
        let label = new_label(name, version);
        let (b, l, alg) = (self.backend.clone(), label.clone(), rec.algorithm);
        let handle = self.blocking_admin(move || b.generate(&l, alg)).await?;
        let now = self.clock.now();
        rec.versions.push(VersionRecord::new(
            version,
            VersionState::Pending,
            label.clone(),
            now,
        ));
        if promote {
            let g = self.grace_for(&rec, grace);
            rec.promote(version, g, now)?;
        }
        let view = self
            .commit_version(
                &entry,
                rec,
                version,
                VersionMaterial::Private(handle),
                &label,
            )
            .await?;
        Ok((view, version))
    }

    async fn mutate(
        &self,
        name: &str,
        f: impl FnOnce(&mut KeyRecord, SystemTime) -> Result<()>,
    ) -> Result<KeyView> {
        let _g = self.admin.lock().await;
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let mut rec = entry.state.read().record.clone();
        f(&mut rec, now)?;
        self.persist(&rec).await?;
        let view = self.view(&rec, now);
        entry.state.write().record = rec;
        Ok(view)
    }

    /// PENDING → ACTIVE; the previous ACTIVE → RETIRING.
    pub async fn promote(&self, name: &str, v: u32, grace: Option<Duration>) -> Result<KeyView> {
        let default = self.settings.default_grace;
        self.mutate(name, |r, now| {
            let g = grace
                .or_else(|| r.policy.and_then(|p| p.grace_period))
                .unwrap_or(default);
            r.promote(v, g, now)
        })
        .await
    }

    /// PENDING or RETIRING → DISABLED.
    pub async fn disable(&self, name: &str, v: u32) -> Result<KeyView> {
        self.mutate(name, |r, now| r.disable(v, now)).await
    }

    /// DISABLED → RETIRING.
    pub async fn enable(&self, name: &str, v: u32, grace: Option<Duration>) -> Result<KeyView> {
        let default = self.settings.default_grace;
        self.mutate(name, |r, now| {
            let g = grace
                .or_else(|| r.policy.and_then(|p| p.grace_period))
                .unwrap_or(default);
            r.enable(v, g, now)
        })
        .await
    }

    /// DISABLED → DESTROY_SCHEDULED.
    pub async fn destroy(&self, name: &str, v: u32) -> Result<KeyView> {
        let delay = self.settings.destroy_delay;
        self.mutate(name, |r, now| r.schedule_destroy(v, delay, now))
            .await
    }

    /// DESTROY_SCHEDULED → DISABLED.
    pub async fn restore(&self, name: &str, v: u32) -> Result<KeyView> {
        self.mutate(name, |r, now| r.restore(v, now)).await
    }

    /// Applies every time-driven transition that is due: grace expiry,
    /// scheduled destruction, and rotation policies. Errors are logged and
    /// retried on the next tick.
    pub async fn tick(&self) {
        let now = self.clock.now();
        let due: Vec<String> = self
            .keys
            .read()
            .iter()
            .filter(|(_, e)| {
                e.state
                    .read()
                    .record
                    .next_deadline()
                    .is_some_and(|t| now >= t)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            if let Err(e) = self.tick_key(&name).await {
                tracing::error!(key = %name, error = %e, "scheduled key transition failed");
            }
        }
    }

    async fn tick_key(&self, name: &str) -> Result<()> {
        let _g = self.admin.lock().await;
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let mut rec = entry.state.read().record.clone();
        let mut changed = rec.expire_grace(now);
        for v in rec.due_destroys(now) {
            let label = rec.version(v)?.label.clone();
            let public_only = rec.version(v)?.public_only();
            if !public_only {
                let b = self.backend.clone();
                self.blocking_admin(move || b.destroy(&label)).await?;
            }
            rec.mark_destroyed(v, now)?;
            entry.state.write().material.remove(&v);
            changed = true;
            tracing::info!(key = %name, version = v, "key version destroyed");
        }
        if changed {
            self.persist(&rec).await?;
            entry.state.write().record = rec.clone();
        }
        match rec.due_policy_action(now) {
            None => {}
            Some(PolicyAction::CreatePending) => {
                let (_, v) = self.rotate_locked(name, false, None).await?;
                tracing::info!(key = %name, version = v, "rotation policy created a PENDING version");
            }
            Some(PolicyAction::CreateAndPromote) => {
                let (_, v) = self.rotate_locked(name, true, None).await?;
                tracing::info!(key = %name, version = v, "rotation policy created and promoted a version");
            }
            Some(PolicyAction::Promote(v)) => {
                let g = self.grace_for(&rec, None);
                rec.promote(v, g, now)?;
                self.persist(&rec).await?;
                entry.state.write().record = rec;
                tracing::info!(key = %name, version = v, "rotation policy promoted a version");
            }
        }
        Ok(())
    }

    /// Runs [`Registry::tick`] every `period` until the returned handle is aborted.
    pub fn spawn_ticker(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let reg = Arc::clone(self);
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(period);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                reg.tick().await;
            }
        })
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
