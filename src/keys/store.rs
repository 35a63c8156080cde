//! Where the registry's records are kept. The in-memory backend keeps
//! nothing across restarts; a persistent backend (PKCS#11) stores records
//! next to its keys.

use super::record::KeyRecord;
use crate::error::Result;

/// Durable storage for key records. `put` must be atomic: after a crash the
/// store holds either the old or the new record, never a mix.
pub trait RegistryStore: Send + Sync + std::fmt::Debug {
    /// Every stored record.
    fn load(&self) -> Result<Vec<KeyRecord>>;
    /// Stores (creates or replaces) one record. A shared store refuses
    /// (`ABORTED`) to replace a record another process changed since this
    /// one last loaded or stored it.
    fn put(&self, record: &KeyRecord) -> Result<()>;
    /// True when other signet processes may write the same store (an HSM
    /// token shared by replicas): the registry then re-reads it on every
    /// tick to pick up their changes.
    fn shared(&self) -> bool {
        false
    }
}

/// Stores nothing: for the in-memory backend, whose keys die with the process.
#[derive(Debug, Default)]
pub(crate) struct NullStore;

impl RegistryStore for NullStore {
    fn load(&self) -> Result<Vec<KeyRecord>> {
        Ok(Vec::new())
    }
    fn put(&self, _record: &KeyRecord) -> Result<()> {
        Ok(())
    }
}
