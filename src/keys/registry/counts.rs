//! Counting encryptions per AES-GCM version, durably.
//!
//! A version may encrypt at most `max_encryptions` messages (2^32 by
//! default: NIST SP 800-38D §8.3 for random 96-bit nonces). The count must
//! survive a restart and be shared by replicas, but writing the registry on
//! every `Encrypt` would make the database the bottleneck. So a process
//! reserves a block of counts in the version's record
//! (`VersionRecord::encryptions`, raised with the same compare-and-set as
//! every other change) and spends it in memory. A restart or a lost race
//! wastes at most the unspent part of a block; it never reuses a count.
//! Decryptions are counted in memory only, for the metrics: they tell a
//! custodian when an old version is no longer read.

use std::collections::HashMap;

use super::Registry;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::record::VersionState;
use crate::keys::store::{changed_by, Change};

/// How many encryptions one reservation covers (fewer when the bound is
/// lower): one registry write per 65,536 encryptions.
pub(crate) const BLOCK: u64 = 1 << 16;

/// Attempts at a reservation before giving up with `UNAVAILABLE` (another
/// replica reserving at the same moment makes one attempt lose).
const ATTEMPTS: usize = 4;

/// One version's block: the next count to spend and the end of the block.
#[derive(Clone, Copy, Debug, Default)]
struct Block {
    next: u64,
    end: u64,
}

/// This process's blocks and decryption counts, per key and version.
#[derive(Debug, Default)]
pub(super) struct Counts {
    blocks: parking_lot::Mutex<HashMap<String, HashMap<u32, Block>>>,
    decryptions: parking_lot::Mutex<HashMap<String, HashMap<u32, u64>>>,
}

impl Counts {
    /// Spends one count of `name`'s `version`; false when its block is
    /// spent (or there is none yet).
    fn take(&self, name: &str, version: u32) -> bool {
        let mut blocks = self.blocks.lock();
        match blocks.get_mut(name).and_then(|m| m.get_mut(&version)) {
            Some(b) if b.next < b.end => {
                b.next += 1;
                true
            }
            _ => false,
        }
    }

    fn has_room(&self, name: &str, version: u32) -> bool {
        self.blocks
            .lock()
            .get(name)
            .and_then(|m| m.get(&version))
            .is_some_and(|b| b.next < b.end)
    }

    fn grant(&self, name: &str, version: u32, start: u64, end: u64) {
        self.blocks
            .lock()
            .entry(name.to_owned())
            .or_default()
            .insert(version, Block { next: start, end });
    }

    /// Notes one decryption by `name`'s `version`.
    pub(super) fn decrypted(&self, name: &str, version: u32) {
        let mut d = self.decryptions.lock();
        match d.get_mut(name) {
            Some(m) => *m.entry(version).or_default() += 1,
            None => {
                d.insert(name.to_owned(), HashMap::from([(version, 1)]));
            }
        }
    }

    /// Decryptions per version of `name` in this process, oldest first.
    pub(super) fn decryptions(&self, name: &str) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self
            .decryptions
            .lock()
            .get(name)
            .map(|m| m.iter().map(|(k, n)| (*k, *n)).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }
}

impl Registry {
    /// Spends one encryption of `name`'s `version`, reserving a new block
    /// in the registry when this process's is spent. `FAILED_PRECONDITION`
    /// once the version has reserved its bound.
    pub(super) async fn count_encryption(&self, name: &str, version: u32) -> Result<()> {
        for _ in 0..ATTEMPTS {
            if self.counts.take(name, version) {
                return Ok(());
            }
            match self.reserve(name, version).await {
                Ok(()) => {}
                // Another replica reserved first: its record is in now.
                Err(e) if e.kind() == ErrorKind::Aborted => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::unavailable(format!(
            "could not reserve encryptions for version {version} of key {name}; try again"
        )))
    }

    /// Raises `version`'s reserved count by a block (at most to the bound)
    /// and gives this process the block.
    async fn reserve(&self, name: &str, version: u32) -> Result<()> {
        let max = self.settings.max_encryptions;
        let _g = self.admin.lock().await;
        if self.counts.has_room(name, version) {
            return Ok(());
        }
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let mut rec = entry.state.read().record.clone();
        let r = rec.version_mut(version)?;
        let state = r.effective_state(now);
        if state != VersionState::Active {
            return Err(Error::precondition(format!(
                "version {version} of key {name} is {}; only the ACTIVE version encrypts",
                state.name()
            )));
        }
        let start = r.encryptions;
        if start >= max {
            return Err(bound_reached(name, version, max));
        }
        let end = start.saturating_add(BLOCK).min(max);
        r.encryptions = end;
        let change = Change {
            rpc: "encryption-count".into(),
            version: Some(version),
            ..Change::default()
        };
        changed_by(change, self.persist_plain(&rec)).await?;
        entry.state.write().record = rec;
        self.counts.grant(name, version, start, end);
        tracing::debug!(key = %name, version, reserved = end, "encryptions reserved");
        Ok(())
    }
}

/// The refusal once a version has made as many encryptions as it may.
fn bound_reached(name: &str, version: u32, max: u64) -> Error {
    Error::precondition(format!(
        "version {version} of key {name} has reserved {max} encryptions, the most one AES-GCM \
         version may make (keys.max_encryptions_per_version; NIST SP 800-38D §8.3): rotate the \
         key and promote the new version"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_spent_once_and_then_refused() {
        let c = Counts::default();
        assert!(!c.take("k", 1), "no block yet");
        c.grant("k", 1, 10, 12);
        assert!(c.has_room("k", 1));
        assert!(c.take("k", 1));
        assert!(c.take("k", 1));
        assert!(!c.take("k", 1));
        assert!(!c.has_room("k", 1));
        assert!(!c.take("k", 2), "blocks are per version");
        assert!(!c.take("other", 1), "and per key");
    }

    #[test]
    fn decryptions_are_counted_per_version() {
        let c = Counts::default();
        c.decrypted("k", 2);
        c.decrypted("k", 1);
        c.decrypted("k", 2);
        assert_eq!(c.decryptions("k"), [(1, 1), (2, 2)]);
        assert!(c.decryptions("j").is_empty());
    }
}
