//! Registry mutations: creation, rotation, the version lifecycle,
//! and the time-driven transitions applied by the ticker. Every mutation
//! holds the admin lock, works on a copy of the record, checks the
//! invariants, persists, and only then swaps the copy in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;

use super::{
    new_label, validate_labels, KeyEntry, KeyState, KeyView, Op, Registry, VersionMaterial,
};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::record::{
    self, KeyRecord, PolicyAction, RotationPolicy, VersionRecord, VersionState,
};
use crate::keys::store::{current_change, PutError, Sharing};
use crate::keys::{validate_name, Algorithm};

impl Registry {
    /// Stores `record` as changed by the caller in scope
    /// ([`crate::keys::store::changed_by`]). A write another process beat
    /// (`ABORTED`) brings that key's stored record in, so a retry works on
    /// the current one. The caller holds the admin lock.
    async fn persist(&self, record: &KeyRecord) -> Result<(), PutError> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable("backend stopped").into());
        }
        record.check_invariants()?;
        let change = current_change();
        let store = &self.store;
        let mut maybe_applied = false;
        let r = crate::telemetry::rpc::backend(store.name(), "store", async {
            store.put(record, &change).await.map_err(|e| {
                maybe_applied = e.maybe_applied;
                e.error
            })
        })
        .await;
        match r {
            Ok(()) => Ok(()),
            Err(error) => {
                if error.kind() == ErrorKind::Aborted {
                    if let Err(e) = self.refresh_key_locked(&record.name).await {
                        tracing::warn!(key = %record.name, error = %e, "cannot re-read a key another replica changed");
                    }
                }
                Err(PutError {
                    error,
                    maybe_applied,
                })
            }
        }
    }

    /// [`Registry::persist`] for a change that created no material.
    pub(super) async fn persist_plain(&self, record: &KeyRecord) -> Result<()> {
        self.persist(record).await.map_err(|e| e.error)
    }

    /// Persists a record that names new material, which is destroyed if
    /// the record surely was not stored. When the store cannot tell (the
    /// connection failed during the commit), the material is kept: the
    /// record may name it, and the next read of the store says; if it does
    /// not, start-up reports it as unreferenced.
    async fn persist_new(
        &self,
        record: &KeyRecord,
        label: &str,
        material: &VersionMaterial,
    ) -> Result<()> {
        match self.persist(record).await {
            Ok(()) => Ok(()),
            Err(e) if e.maybe_applied => {
                tracing::error!(
                    key = %record.name, label,
                    "the database failed while committing a new key version: it may or may not \
                     be recorded; its material is kept"
                );
                Err(e.error)
            }
            Err(e) => {
                self.discard(label, material).await;
                Err(e.error)
            }
        }
    }

    /// How long the previous ACTIVE version goes on verifying (or
    /// decrypting) after a promotion: the grace asked for, else the
    /// policy's, else the registry default. An encryption key has no
    /// default: what it encrypted stays readable until a custodian
    /// disables the version (`None`).
    fn grace_for(&self, rec: &KeyRecord, grace: Option<Duration>) -> Option<Duration> {
        let asked = grace.or_else(|| rec.policy.and_then(|p| p.grace_period));
        if rec.algorithm.encrypts() {
            asked
        } else {
            Some(asked.unwrap_or(self.settings.default_grace))
        }
    }

    /// Creates a key whose version 1 the backend generates, ACTIVE. An
    /// `exportable` key (HMAC or AES) has every version generated
    /// extractable, for [`Registry::export_wrapped`].
    pub async fn create_key(
        &self,
        name: &str,
        alg: Algorithm,
        labels: BTreeMap<String, String>,
        policy: Option<RotationPolicy>,
        exportable: bool,
    ) -> Result<KeyView> {
        validate_name("key", name)?;
        crate::telemetry::rpc::note_key(name, alg.name());
        validate_labels(&labels)?;
        if let Some(p) = &policy {
            p.validate()?;
            if p.rotate_after_encryptions.is_some() && !alg.encrypts() {
                return Err(Error::invalid(
                    "rotation_policy.rotate_after_encryptions is for AES_256_GCM keys only",
                ));
            }
        }
        if exportable && !alg.is_symmetric() {
            return Err(Error::invalid(format!(
                "{alg} keys are never exportable: only HMAC and AES keys, shared secrets, are"
            )));
        }
        self.backend.check_algorithm(alg)?;
        let _g = self.admin.lock().await;
        if self.keys.read().contains_key(name) {
            return Err(Error::exists(format!("key {name} already exists")));
        }
        let now = self.clock.now();
        let label = new_label(name, 1);
        let handle = self.generate(&label, alg, exportable).await?;
        let record = KeyRecord {
            name: name.to_string(),
            algorithm: alg,
            labels,
            policy,
            create_time: now,
            verify_only: false,
            exportable,
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

    /// New material under `label`: extractable for an exportable key.
    async fn generate(
        &self,
        label: &str,
        alg: Algorithm,
        exportable: bool,
    ) -> Result<Arc<dyn crate::keys::KeyHandle>> {
        let (b, l) = (self.backend.clone(), label.to_string());
        self.call(Op::Generate, move || {
            if exportable {
                b.generate_exportable(&l, alg)
            } else {
                b.generate(&l, alg)
            }
        })
        .await
    }

    pub(super) async fn insert_new(
        &self,
        record: KeyRecord,
        material: VersionMaterial,
        label: &str,
    ) -> Result<KeyView> {
        self.persist_new(&record, label, &material).await?;
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
            if let Err(e) = self.call(Op::Destroy, move || b.destroy(&l)).await {
                tracing::error!(label, error = %e, "could not discard unrecorded key material");
            }
        }
    }

    pub(super) async fn commit_version(
        &self,
        entry: &KeyEntry,
        rec: KeyRecord,
        version: u32,
        vm: VersionMaterial,
        label: &str,
    ) -> Result<KeyView> {
        self.persist_new(&rec, label, &vm).await?;
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
            record::check_grace(g)?;
        }
        let _g = self.admin.lock().await;
        self.rotate_at(name, promote, grace, None).await
    }

    /// Rotation as of `at` (a rotation policy's scheduled time, so that a
    /// late tick does not push the schedule back) or of now.
    async fn rotate_at(
        &self,
        name: &str,
        promote: bool,
        grace: Option<Duration>,
        at: Option<SystemTime>,
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
        let handle = self.generate(&label, rec.algorithm, rec.exportable).await?;
        let now = at.unwrap_or_else(|| self.clock.now());
        rec.versions.push(VersionRecord::new(
            version,
            VersionState::Pending,
            label.clone(),
            now,
        ));
        if promote {
            let g = self.grace_for(&rec, grace);
            rec.promote_with(version, g, now)?;
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

    pub(super) async fn mutate(
        &self,
        name: &str,
        f: impl FnOnce(&mut KeyRecord, SystemTime) -> Result<()>,
    ) -> Result<KeyView> {
        let _g = self.admin.lock().await;
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let mut rec = entry.state.read().record.clone();
        f(&mut rec, now)?;
        self.persist_plain(&rec).await?;
        let view = self.view(&rec, now);
        entry.state.write().record = rec;
        Ok(view)
    }

    /// PENDING → ACTIVE; the previous ACTIVE → RETIRING.
    pub async fn promote(&self, name: &str, v: u32, grace: Option<Duration>) -> Result<KeyView> {
        self.mutate(name, |r, now| {
            let g = self.grace_for(r, grace);
            r.promote_with(v, g, now)
        })
        .await
    }

    /// PENDING or RETIRING → DISABLED.
    pub async fn disable(&self, name: &str, v: u32) -> Result<KeyView> {
        self.mutate(name, |r, now| r.disable(v, now)).await
    }

    /// DISABLED → RETIRING.
    pub async fn enable(&self, name: &str, v: u32, grace: Option<Duration>) -> Result<KeyView> {
        self.mutate(name, |r, now| {
            let g = self.grace_for(r, grace);
            r.enable_with(v, g, now)
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
    ///
    /// With a shared registry only the elected replica applies them (the
    /// others compute the same effective states from the records, and
    /// pick up the stored changes); if two ever overlap, the store's
    /// compare-and-set lets one of them commit each transition.
    pub async fn tick(&self) {
        // Another replica may already have applied what is due here.
        if self.store.sharing() == Sharing::Polled {
            if let Err(e) = self.refresh().await {
                tracing::error!(error = %e, "cannot re-read the shared key registry");
            }
        }
        // Versions an HSM failure left without material come back here.
        self.reopen_missing().await;
        if !self.store.leads() {
            return;
        }
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
                self.call(Op::Destroy, move || b.destroy(&label)).await?;
            }
            rec.mark_destroyed(v, now)?;
            entry.state.write().material.remove(&v);
            changed = true;
            tracing::info!(key = %name, version = v, "key version destroyed");
        }
        if changed {
            self.persist_plain(&rec).await?;
            entry.state.write().record = rec.clone();
        }
        // Policy actions take effect at their scheduled time, not at the
        // tick's: the next period counts from the schedule, so it never drifts.
        let Some((at, action)) = rec.due_policy_event(now) else {
            return Ok(());
        };
        // After a long outage, start a fresh schedule instead of replaying
        // every missed rotation.
        let period = rec.policy.map_or(Duration::ZERO, |p| p.rotation_period);
        let at = if now.duration_since(at).unwrap_or_default() > period {
            now
        } else {
            at
        };
        match action {
            PolicyAction::CreatePending => {
                let (_, v) = self.rotate_at(name, false, None, Some(at)).await?;
                tracing::info!(key = %name, version = v, "rotation policy created a PENDING version");
            }
            PolicyAction::CreateAndPromote => {
                let (_, v) = self.rotate_at(name, true, None, Some(at)).await?;
                tracing::info!(key = %name, version = v, "rotation policy created and promoted a version");
            }
            PolicyAction::Promote(v) => {
                let g = self.grace_for(&rec, None);
                rec.promote_with(v, g, at)?;
                self.persist_plain(&rec).await?;
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
