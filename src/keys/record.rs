//! Key and version records and their lifecycle, as pure functions of the
//! record and the time. The registry persists these records and applies the
//! transitions; everything that decides *whether* a transition is allowed
//! lives here, so it is tested without any backend.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::Algorithm;
use crate::bounds;
use crate::error::{Error, Result};

/// The lifecycle state of a key version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionState {
    /// Published, not yet signing or verifying.
    Pending,
    /// Signs and verifies; at most one per key.
    Active,
    /// Verifies until `verify_until`.
    Retiring,
    /// Does nothing; can be enabled again.
    Disabled,
    /// Will be destroyed at `destroy_time` unless restored.
    DestroyScheduled,
    /// Material gone.
    Destroyed,
}

impl VersionState {
    /// Upper-case name: the proto value without `KEY_VERSION_STATE_`.
    pub fn name(self) -> &'static str {
        match self {
            VersionState::Pending => "PENDING",
            VersionState::Active => "ACTIVE",
            VersionState::Retiring => "RETIRING",
            VersionState::Disabled => "DISABLED",
            VersionState::DestroyScheduled => "DESTROY_SCHEDULED",
            VersionState::Destroyed => "DESTROYED",
        }
    }

    /// True for the states in which a version verifies.
    pub fn verifies(self) -> bool {
        matches!(self, VersionState::Active | VersionState::Retiring)
    }

    /// True for the states whose public key is published (JWKS).
    pub fn published(self) -> bool {
        matches!(
            self,
            VersionState::Pending | VersionState::Active | VersionState::Retiring
        )
    }
}

/// Automatic rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPolicy {
    /// Time from one promotion to the next.
    pub rotation_period: Duration,
    /// How long before its promotion a version is created (PENDING).
    pub pending_period: Duration,
    /// Grace for the previous version after an automatic promotion.
    pub grace_period: Option<Duration>,
    /// AES keys: also rotate (create and promote) once the ACTIVE version
    /// has reserved this many encryptions. Reservations come in blocks,
    /// so this acts up to a block early, never late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_after_encryptions: Option<u64>,
}

impl RotationPolicy {
    /// Checks the periods are within their ranges ([`crate::bounds`]) and
    /// make sense together.
    pub fn validate(&self) -> Result<()> {
        let field = |f: &str| format!("rotation_policy.{f}");
        in_range(
            bounds::ROTATION_PERIOD,
            &field("rotation_period"),
            self.rotation_period,
        )?;
        in_range(
            bounds::PENDING_PERIOD,
            &field("pending_period"),
            self.pending_period,
        )?;
        if self.pending_period >= self.rotation_period {
            return Err(Error::invalid(
                "rotation_policy.pending_period must be shorter than rotation_period",
            ));
        }
        if let Some(g) = self.grace_period {
            in_range(bounds::GRACE_PERIOD, &field("grace_period"), g)?;
        }
        if self
            .rotate_after_encryptions
            .is_some_and(|n| !(1..=1u64 << 32).contains(&n))
        {
            return Err(Error::invalid(
                "rotation_policy.rotate_after_encryptions must be 1 to 4294967296 (2^32)",
            ));
        }
        Ok(())
    }
}

/// `INVALID_ARGUMENT` naming the field and the range when `d` is outside.
pub(crate) fn in_range(range: bounds::Range, field: &str, d: Duration) -> Result<()> {
    range.check(field, d).map_err(Error::invalid)
}

/// Grace periods are 1s..=3650d ([`bounds::GRACE_PERIOD`]).
pub(crate) fn check_grace(grace: Duration) -> Result<()> {
    in_range(bounds::GRACE_PERIOD, "grace_period", grace)
}

/// `now + d` for a time written into a record: refused with
/// `INVALID_ARGUMENT` past 9999-12-31 (the end of the protobuf
/// `Timestamp` range) instead of overflowing.
fn deadline(now: SystemTime, d: Duration, field: &str) -> Result<SystemTime> {
    bounds::later(now, d).ok_or_else(|| {
        Error::invalid(format!(
            "{field} of {} ends after 9999-12-31",
            bounds::show(d)
        ))
    })
}

/// One version's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// 1, 2, 3, ...
    pub version: u32,
    /// Stored state (see [`VersionRecord::effective_state`] for the state now).
    pub state: VersionState,
    /// The backend label of the material.
    pub label: String,
    /// Created or imported.
    pub create_time: SystemTime,
    /// Last became ACTIVE.
    pub activate_time: Option<SystemTime>,
    /// RETIRING until then.
    pub verify_until: Option<SystemTime>,
    /// Last disabled.
    pub disable_time: Option<SystemTime>,
    /// Scheduled or actual destruction.
    pub destroy_time: Option<SystemTime>,
    /// SubjectPublicKeyInfo DER for public-key-only versions; the backend
    /// holds no material for them.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_b64")]
    pub public_spki: Option<Vec<u8>>,
    /// Encryption keys: how many encryptions replicas have reserved with
    /// this version, in blocks (`registry::counts`). An upper bound on
    /// the encryptions made, never reset, so the bound of NIST SP 800-38D
    /// §8.3 holds across restarts and replicas.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub encryptions: u64,
    /// The certificate chain attached to the version (DER, leaf first;
    /// `keys/registry/certs.rs`), checked when it was imported.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "vec_b64")]
    pub certificates: Vec<Vec<u8>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl VersionRecord {
    /// A new version in `state`, created now.
    pub fn new(version: u32, state: VersionState, label: String, now: SystemTime) -> Self {
        Self {
            version,
            state,
            label,
            create_time: now,
            activate_time: (state == VersionState::Active).then_some(now),
            verify_until: None,
            disable_time: None,
            destroy_time: None,
            public_spki: None,
            encryptions: 0,
            certificates: Vec::new(),
        }
    }

    /// The state at `now`: a RETIRING version past its `verify_until` is
    /// DISABLED, a DESTROY_SCHEDULED one past its `destroy_time` is
    /// DESTROYED, even before the registry has written that down.
    pub fn effective_state(&self, now: SystemTime) -> VersionState {
        match self.state {
            VersionState::Retiring if self.verify_until.is_some_and(|t| now >= t) => {
                VersionState::Disabled
            }
            VersionState::DestroyScheduled if self.destroy_time.is_some_and(|t| now >= t) => {
                VersionState::Destroyed
            }
            s => s,
        }
    }

    /// True when only the public key is held.
    pub fn public_only(&self) -> bool {
        self.public_spki.is_some()
    }
}

/// A key's metadata: everything but the material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Name.
    pub name: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Rotation policy.
    pub policy: Option<RotationPolicy>,
    /// Created.
    pub create_time: SystemTime,
    /// True when every version is public-key-only.
    pub verify_only: bool,
    /// True for a shared secret (HMAC, AES) created to be handed to a
    /// counterparty: its versions are generated extractable and may be
    /// exported wrapped (`Registry::export_wrapped`). Set at creation only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exportable: bool,
    /// Versions, oldest first; numbers are 1..=len in order.
    pub versions: Vec<VersionRecord>,
}

/// What the periodic tick must do for a key.
#[derive(Debug, PartialEq, Eq)]
pub enum PolicyAction {
    /// Create a PENDING version now.
    CreatePending,
    /// Promote this PENDING version now.
    Promote(u32),
    /// Create a version and promote it at once.
    CreateAndPromote,
}

impl KeyRecord {
    /// `NAME:vN`.
    pub fn version_id(&self, v: u32) -> String {
        super::version_id(&self.name, v)
    }

    /// The version numbered `v`, or `NOT_FOUND`.
    pub fn version(&self, v: u32) -> Result<&VersionRecord> {
        self.versions
            .iter()
            .find(|r| r.version == v)
            .ok_or_else(|| Error::not_found(format!("key {} has no version {v}", self.name)))
    }

    pub(crate) fn version_mut(&mut self, v: u32) -> Result<&mut VersionRecord> {
        let name = self.name.clone();
        self.versions
            .iter_mut()
            .find(|r| r.version == v)
            .ok_or_else(|| Error::not_found(format!("key {name} has no version {v}")))
    }

    /// The ACTIVE version, if any.
    pub fn active(&self) -> Option<&VersionRecord> {
        self.versions
            .iter()
            .find(|r| r.state == VersionState::Active)
    }

    /// The next version number.
    pub fn next_version(&self) -> u32 {
        self.versions.iter().map(|r| r.version).max().unwrap_or(0) + 1
    }

    /// Makes PENDING version `v` ACTIVE; the previous ACTIVE one becomes
    /// RETIRING until `now + grace`.
    pub fn promote(&mut self, v: u32, grace: Duration, now: SystemTime) -> Result<()> {
        self.promote_with(v, Some(grace), now)
    }

    /// [`KeyRecord::promote`]; with no grace the previous ACTIVE version
    /// stays RETIRING until it is disabled (encryption keys: what they
    /// encrypted must stay readable).
    pub fn promote_with(&mut self, v: u32, grace: Option<Duration>, now: SystemTime) -> Result<()> {
        let until = grace
            .map(|g| {
                check_grace(g)?;
                deadline(now, g, "grace_period")
            })
            .transpose()?;
        let state = self.version(v)?.effective_state(now);
        if state != VersionState::Pending {
            return Err(Error::precondition(format!(
                "only a PENDING version can be promoted; version {v} is {}",
                state.name()
            )));
        }
        for r in &mut self.versions {
            if r.state == VersionState::Active {
                r.state = VersionState::Retiring;
                r.verify_until = until;
            }
        }
        let r = self.version_mut(v)?;
        r.state = VersionState::Active;
        r.activate_time = Some(now);
        r.verify_until = None;
        Ok(())
    }

    /// PENDING or RETIRING → DISABLED.
    pub fn disable(&mut self, v: u32, now: SystemTime) -> Result<()> {
        let r = self.version_mut(v)?;
        match r.effective_state(now) {
            VersionState::Pending | VersionState::Retiring => {
                r.state = VersionState::Disabled;
                r.disable_time = Some(now);
                r.verify_until = None;
                Ok(())
            }
            VersionState::Active => Err(Error::precondition(format!(
                "version {v} is ACTIVE: promote another version before disabling it"
            ))),
            VersionState::Disabled => Err(Error::precondition(format!(
                "version {v} is already DISABLED"
            ))),
            s => Err(Error::precondition(format!(
                "version {v} is {} and cannot be disabled",
                s.name()
            ))),
        }
    }

    /// DISABLED → RETIRING, verifying again until `now + grace`.
    pub fn enable(&mut self, v: u32, grace: Duration, now: SystemTime) -> Result<()> {
        self.enable_with(v, Some(grace), now)
    }

    /// [`KeyRecord::enable`]; with no grace, RETIRING until disabled.
    pub fn enable_with(&mut self, v: u32, grace: Option<Duration>, now: SystemTime) -> Result<()> {
        let until = grace
            .map(|g| {
                check_grace(g)?;
                deadline(now, g, "grace_period")
            })
            .transpose()?;
        let r = self.version_mut(v)?;
        match r.effective_state(now) {
            VersionState::Disabled => {
                r.state = VersionState::Retiring;
                r.verify_until = until;
                r.disable_time = None;
                Ok(())
            }
            s => Err(Error::precondition(format!(
                "only a DISABLED version can be enabled; version {v} is {}",
                s.name()
            ))),
        }
    }

    /// DISABLED → DESTROY_SCHEDULED, destroyed at `now + delay`.
    pub fn schedule_destroy(&mut self, v: u32, delay: Duration, now: SystemTime) -> Result<()> {
        let at = deadline(now, delay, "keys.destroy_delay")?;
        let r = self.version_mut(v)?;
        match r.effective_state(now) {
            VersionState::Disabled => {
                // Pin a RETIRING-past-grace version to DISABLED first.
                if r.state == VersionState::Retiring {
                    r.disable_time = r.verify_until;
                    r.verify_until = None;
                }
                r.state = VersionState::DestroyScheduled;
                r.destroy_time = Some(at);
                Ok(())
            }
            s => Err(Error::precondition(format!(
                "only a DISABLED version can be destroyed; version {v} is {}",
                s.name()
            ))),
        }
    }

    /// DESTROY_SCHEDULED → DISABLED.
    pub fn restore(&mut self, v: u32, now: SystemTime) -> Result<()> {
        let r = self.version_mut(v)?;
        match r.effective_state(now) {
            VersionState::DestroyScheduled => {
                r.state = VersionState::Disabled;
                r.destroy_time = None;
                Ok(())
            }
            VersionState::Destroyed => Err(Error::precondition(format!(
                "version {v} is already DESTROYED and cannot be restored"
            ))),
            s => Err(Error::precondition(format!(
                "only a DESTROY_SCHEDULED version can be restored; version {v} is {}",
                s.name()
            ))),
        }
    }

    /// Writes down the time-driven transitions that are due (RETIRING past
    /// grace → DISABLED). Returns true when the record changed. Destruction
    /// is not done here: it needs the backend (see [`KeyRecord::due_destroys`]).
    pub fn expire_grace(&mut self, now: SystemTime) -> bool {
        let mut changed = false;
        for r in &mut self.versions {
            if r.state == VersionState::Retiring && r.verify_until.is_some_and(|t| now >= t) {
                r.state = VersionState::Disabled;
                r.disable_time = r.verify_until.take();
                changed = true;
            }
        }
        changed
    }

    /// Versions whose scheduled destruction is due.
    pub fn due_destroys(&self, now: SystemTime) -> Vec<u32> {
        self.versions
            .iter()
            .filter(|r| r.state == VersionState::DestroyScheduled)
            .filter(|r| r.destroy_time.is_some_and(|t| now >= t))
            .map(|r| r.version)
            .collect()
    }

    /// Marks version `v` DESTROYED (after the backend destroyed it).
    pub fn mark_destroyed(&mut self, v: u32, now: SystemTime) -> Result<()> {
        let r = self.version_mut(v)?;
        r.state = VersionState::Destroyed;
        r.destroy_time = Some(r.destroy_time.map_or(now, |t| t.min(now)));
        Ok(())
    }

    /// When the rotation policy will next make a new version ACTIVE
    /// (capped at 9999-12-31: a record written before periods were bounded
    /// may hold any period).
    pub fn next_rotation(&self) -> Option<SystemTime> {
        let policy = self.policy?;
        let active = self.active()?;
        let since = active.activate_time.unwrap_or(active.create_time);
        Some(bounds::later_or_max(since, policy.rotation_period))
    }

    /// When the rotation policy next acts, and what it will do then.
    pub fn next_policy_event(&self) -> Option<(SystemTime, PolicyAction)> {
        let policy = self.policy?;
        let active = self.active()?;
        let since = active.activate_time.unwrap_or(active.create_time);
        // Enough encryptions make the promotion due at once.
        let counted = policy
            .rotate_after_encryptions
            .is_some_and(|n| active.encryptions >= n);
        let promote_at = if counted {
            since
        } else {
            bounds::later_or_max(since, policy.rotation_period)
        };
        // A PENDING version created after the active one was activated is the
        // one the policy will promote.
        let pending = self
            .versions
            .iter()
            .filter(|r| r.state == VersionState::Pending && r.create_time >= since)
            .map(|r| r.version)
            .max();
        match pending {
            Some(v) => Some((promote_at, PolicyAction::Promote(v))),
            None if policy.pending_period.is_zero() || counted => {
                Some((promote_at, PolicyAction::CreateAndPromote))
            }
            None => Some((
                bounds::earlier(promote_at, policy.pending_period)
                    .unwrap_or(since)
                    .max(since),
                PolicyAction::CreatePending,
            )),
        }
    }

    /// The policy action due at `now`, if any, with its scheduled time
    /// (what the ticker acts on).
    pub fn due_policy_event(&self, now: SystemTime) -> Option<(SystemTime, PolicyAction)> {
        self.next_policy_event().filter(|(at, _)| now >= *at)
    }

    /// The earliest time at which something changes on its own.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        // No allocation: the tick asks this of every key every second.
        self.versions
            .iter()
            .filter_map(|r| match r.state {
                VersionState::Retiring => r.verify_until,
                VersionState::DestroyScheduled => r.destroy_time,
                _ => None,
            })
            .chain(self.next_policy_event().map(|(t, _)| t))
            .min()
    }

    /// Checks the invariants: versions numbered 1..=n in order, at most one
    /// ACTIVE.
    pub fn check_invariants(&self) -> Result<()> {
        let active = self
            .versions
            .iter()
            .filter(|r| r.state == VersionState::Active)
            .count();
        if active > 1 {
            return Err(Error::internal(format!(
                "key {} has {active} ACTIVE versions",
                self.name
            )));
        }
        for (i, r) in self.versions.iter().enumerate() {
            if r.version as usize != i + 1 {
                return Err(Error::internal(format!(
                    "key {} has versions out of order",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

#[path = "record_b64.rs"]
mod b64;
use b64::{opt_b64, vec_b64};

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
