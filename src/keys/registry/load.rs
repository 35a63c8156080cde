//! Reading the registry from its store: start-up load and reconciliation
//! of the backend's material, and the refresh that brings in what other
//! signet processes changed in a shared store.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{KeyEntry, KeyState, Op, Registry, VersionMaterial};
use crate::error::Result;
use crate::keys::record::{KeyRecord, VersionRecord, VersionState};
use crate::keys::store::Sharing;
use crate::keys::PublicKey;

impl Registry {
    /// Loads every stored record and opens its material. Versions whose
    /// material cannot be opened are reported and left out of service.
    pub async fn load(&self) -> Result<usize> {
        let _g = self.admin.lock().await;
        let records = self.read_all().await?;
        self.reconcile(&records).await;
        let mut loaded = 0;
        self.backend.opening_many(true);
        let _done = OpeningMany(&*self.backend);
        for record in records {
            record.check_invariants()?;
            let mut material = HashMap::new();
            for v in &record.versions {
                if v.state == VersionState::Destroyed {
                    continue;
                }
                if let Some(m) = self.open_version(&record, v, false).await {
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
    /// without material (it then neither signs nor verifies; the ticker
    /// tries again, see [`Registry::reopen_missing`]).
    ///
    /// `patient` for a version another process has just created: a token
    /// may show one process's new objects to another only after a moment
    /// (SoftHSM2 does), so a few quick retries (about 300 ms in all) come
    /// before the ticker's slower ones.
    async fn open_version(
        &self,
        record: &KeyRecord,
        v: &VersionRecord,
        patient: bool,
    ) -> Option<VersionMaterial> {
        let mut wait = std::time::Duration::from_millis(20);
        loop {
            let m = match &v.public_spki {
                Some(der) => PublicKey::from_spki_der(record.algorithm, der)
                    .map(|p| VersionMaterial::Public(Arc::new(p))),
                None => {
                    let (b, label, alg) = (self.backend.clone(), v.label.clone(), record.algorithm);
                    self.call(Op::Open, move || b.open(&label, alg))
                        .await
                        .map(VersionMaterial::Private)
                }
            };
            match m {
                Ok(m) => return Some(m),
                Err(_)
                    if patient
                        && v.public_spki.is_none()
                        && wait <= std::time::Duration::from_millis(160) =>
                {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(
                        key = %record.name, version = v.version, error = %e,
                        "key version material cannot be opened; it will not be used"
                    );
                    return None;
                }
            }
        }
    }

    /// Every stored record, timed.
    async fn read_all(&self) -> Result<Vec<KeyRecord>> {
        let store = &self.store;
        crate::telemetry::rpc::backend(store.name(), "load", store.load()).await
    }

    /// Brings in changes other signet processes made to a shared store:
    /// new keys, new versions, new states. Material for new versions is
    /// opened once, here; versions another process destroyed lose theirs.
    /// Called on every tick for a store that is polled (a token several
    /// replicas use), which then loads only when the store says something
    /// may have changed (on a token: its change marker, read in place of
    /// every record); on (re)connection and as a slow backstop for one
    /// that notifies; a no-op for a private store.
    pub async fn refresh(&self) -> Result<usize> {
        let store = &self.store;
        if store.sharing() == Sharing::Private {
            return Ok(0);
        }
        let _g = self.admin.lock().await;
        if store.sharing() == Sharing::Polled
            && !crate::telemetry::rpc::backend(store.name(), "poll", store.changed()).await?
        {
            return Ok(0);
        }
        let records = self.read_all().await?;
        let mut changed = 0;
        for record in records {
            if self.apply(record).await {
                changed += 1;
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

    /// Re-reads one key that another process changed (a notification
    /// named it). True when the stored record differed from this view.
    pub async fn refresh_key(&self, name: &str) -> Result<bool> {
        let _g = self.admin.lock().await;
        self.refresh_key_locked(name).await
    }

    /// [`Registry::refresh_key`] with the admin lock held.
    pub(super) async fn refresh_key_locked(&self, name: &str) -> Result<bool> {
        let store = &self.store;
        let record =
            crate::telemetry::rpc::backend(store.name(), "load", store.load_one(name)).await?;
        Ok(match record {
            Some(r) => self.apply(r).await,
            None => false,
        })
    }

    /// Installs a stored record in place of this view's, opening the
    /// material of versions new to it. False when nothing changed (or the
    /// record breaks an invariant and is ignored).
    async fn apply(&self, record: KeyRecord) -> bool {
        if record.check_invariants().is_err() {
            tracing::error!(key = %record.name, "stored record breaks an invariant; ignored");
            return false;
        }
        let existing = self.keys.read().get(&record.name).cloned();
        let (mut material, labels) = match &existing {
            Some(e) => {
                let st = e.state.read();
                if st.record == record {
                    return false;
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
            // does not show one process's new objects to another at once,
            // such as SoftHSM2, can let both writes through). Converge on
            // the stored version's material.
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
            if let Some(m) = self.open_version(&record, v, true).await {
                material.insert(v.version, m);
            }
        }
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
        true
    }

    /// Opens again the material of versions that have none: an HSM that
    /// failed while a version was being opened (at start-up, or in a
    /// refresh) would otherwise leave it out of service until its record
    /// changed or signet restarted. Called on every tick; a version that
    /// keeps failing is tried again after 1 s, then twice as long each
    /// time, at most every minute, so a lost object does not flood the log.
    pub async fn reopen_missing(&self) -> usize {
        let entries: Vec<Arc<KeyEntry>> = self.keys.read().values().cloned().collect();
        let now = std::time::Instant::now();
        let mut reopened = 0;
        for e in entries {
            let due: Vec<VersionRecord> = {
                let st = e.state.read();
                // The common case, every version open: no lock, no copy
                // (the tick asks this of every key every second).
                let open = |v: &VersionRecord| {
                    v.state == VersionState::Destroyed || st.material.contains_key(&v.version)
                };
                if st.record.versions.iter().all(open) {
                    continue;
                }
                let retry = self.reopen.lock();
                st.record
                    .versions
                    .iter()
                    .filter(|v| {
                        v.state != VersionState::Destroyed
                            && !st.material.contains_key(&v.version)
                            && retry
                                .get(&(st.record.name.clone(), v.version))
                                .is_none_or(|r| now >= r.next)
                    })
                    .cloned()
                    .collect()
            };
            if due.is_empty() {
                continue;
            }
            let _g = self.admin.lock().await;
            let record = e.state.read().record.clone();
            for v in due {
                let key = (record.name.clone(), v.version);
                match self.open_version(&record, &v, false).await {
                    Some(m) => {
                        let mut st = e.state.write();
                        // Only if the version is still the one just opened.
                        if st
                            .record
                            .version(v.version)
                            .is_ok_and(|c| c.label == v.label)
                        {
                            st.material.insert(v.version, m);
                            reopened += 1;
                            tracing::info!(key = %record.name, version = v.version, "key version material opened again; in service");
                        }
                        self.reopen.lock().remove(&key);
                    }
                    None => {
                        let mut retry = self.reopen.lock();
                        let r = retry.entry(key).or_insert(Retry {
                            next: now,
                            delay: std::time::Duration::ZERO,
                        });
                        r.delay = (r.delay * 2).clamp(
                            std::time::Duration::from_secs(1),
                            std::time::Duration::from_secs(60),
                        );
                        r.next = crate::bounds::deadline(r.delay);
                    }
                }
            }
        }
        reopened
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
        let orphans = match self
            .call(Op::OrphanCheck, move || b.orphan_check(&referenced))
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "start-up reconciliation could not list key material");
                return;
            }
        };
        for label in orphans {
            if destroyed.contains(&label) || self.settings.destroy_orphans {
                let (b, l) = (self.backend.clone(), label.clone());
                match self.call(Op::Destroy, move || b.destroy(&l)).await {
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
}

/// When a version whose material failed to open is tried again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Retry {
    pub(super) next: std::time::Instant,
    delay: std::time::Duration,
}

/// Ends [`crate::keys::KeyBackend::opening_many`] however the pass ends.
struct OpeningMany<'a>(&'a dyn crate::keys::KeyBackend);

impl Drop for OpeningMany<'_> {
    fn drop(&mut self) {
        self.0.opening_many(false);
    }
}
