//! Where the registry's records are kept, and who made each change.
//!
//! The in-memory backend keeps nothing across restarts; the PKCS#11
//! backend stores records next to its keys, on the token; PostgreSQL
//! (`crate::postgres`) keeps them for several replicas, with an audit row
//! in the same commit as each change.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::record::KeyRecord;
use crate::error::{Error, Result};

/// A store operation's future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a store is shared with other signet processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Only this process writes it.
    Private,
    /// Others may write it and say nothing: the registry asks it on every
    /// tick whether anything may have changed ([`RegistryStore::changed`])
    /// and then re-reads it (records on a token several replicas use).
    Polled,
    /// Others write it and the store tells the registry which key changed
    /// (PostgreSQL's `LISTEN`/`NOTIFY`, driven by `crate::postgres::listen`).
    Notified,
}

/// A `put` that failed, and whether it may have been applied all the same
/// (the connection failed while the commit was under way). Material the
/// registry generated for the record is destroyed only when it was not.
#[derive(Debug)]
pub struct PutError {
    /// The error for the caller.
    pub error: Error,
    /// The store cannot tell whether the record was stored.
    pub maybe_applied: bool,
}

impl From<Error> for PutError {
    fn from(error: Error) -> Self {
        Self {
            error,
            maybe_applied: false,
        }
    }
}

/// Durable storage for key records. `put` must be atomic: after a crash the
/// store holds either the old or the new record, never a mix.
pub trait RegistryStore: Send + Sync + std::fmt::Debug {
    /// Every stored record.
    fn load(&self) -> StoreFuture<'_, Result<Vec<KeyRecord>>>;
    /// One key's stored record (by default from [`RegistryStore::load`]).
    fn load_one<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Result<Option<KeyRecord>>> {
        Box::pin(async move { Ok(self.load().await?.into_iter().find(|r| r.name == name)) })
    }
    /// Stores (creates or replaces) one record, with who made the change.
    /// A shared store refuses (`ABORTED`) to replace a record another
    /// process changed since this one last read or stored it, and to
    /// create one whose name another process took (`ALREADY_EXISTS`).
    fn put<'a>(
        &'a self,
        record: &'a KeyRecord,
        change: &'a Change,
    ) -> StoreFuture<'a, std::result::Result<(), PutError>>;
    /// For a [`Sharing::Polled`] store: whether another process may have
    /// changed a record since this one last loaded them all, so a refresh
    /// must load again. By default always (every refresh loads).
    fn changed(&self) -> StoreFuture<'_, Result<bool>> {
        Box::pin(async { Ok(true) })
    }
    /// The store's name in metrics and traces.
    fn name(&self) -> &'static str;
    /// Who else writes this store.
    fn sharing(&self) -> Sharing {
        Sharing::Private
    }
    /// For a [`Sharing::Notified`] store: how long since this process last
    /// knew its view was current (`None`: always current).
    fn out_of_contact(&self) -> Option<Duration> {
        None
    }
    /// Whether this process applies the time-driven transitions (grace
    /// expiry, rotation policies, destruction). A store several replicas
    /// share elects one.
    fn leads(&self) -> bool {
        true
    }
}

/// Who made a change: what a store that audits (PostgreSQL) writes in the
/// same commit as the record. Never a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The gRPC method, or `scheduler` for a time-driven transition.
    pub rpc: String,
    /// The operation as grants name it.
    pub operation: Option<&'static str>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
    /// The authenticated identity.
    pub identity: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// The version the request named.
    pub version: Option<u32>,
}

impl Change {
    /// A change no caller asked for: the scheduler's, or start-up's.
    pub fn scheduler() -> Self {
        Self {
            rpc: "scheduler".into(),
            ..Default::default()
        }
    }
}

tokio::task_local! {
    static CHANGE: Change;
}

/// Runs `f` (an admin call) with `change` as the author of every registry
/// change it makes. The API's one call path sets it; a change made outside
/// one (the ticker, start-up) is the scheduler's.
pub async fn changed_by<F: Future>(change: Change, f: F) -> F::Output {
    CHANGE.scope(change, f).await
}

/// The author of the change being made now.
pub(crate) fn current_change() -> Change {
    CHANGE
        .try_with(Clone::clone)
        .unwrap_or_else(|_| Change::scheduler())
}

/// Stores nothing: for the in-memory backend, whose keys die with the process.
#[derive(Debug, Default)]
pub(crate) struct NullStore;

impl RegistryStore for NullStore {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn load(&self) -> StoreFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn put<'a>(
        &'a self,
        _record: &'a KeyRecord,
        _change: &'a Change,
    ) -> StoreFuture<'a, std::result::Result<(), PutError>> {
        Box::pin(async { Ok(()) })
    }
}
