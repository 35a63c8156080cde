//! The key registry on the token: one `CKO_DATA` object per key, holding
//! the key's record (versions, states, times) as JSON, private to the
//! logged-in user.
//!
//! A record is never modified in place. `put` creates a new object with the
//! next generation number and only then destroys the older ones: creating
//! one object is atomic on the token (SoftHSM2 writes a new file per
//! object), so a crash at any point leaves the old record, the new one, or
//! both, and `load` keeps the newest readable one and removes the rest.
//!
//! Other processes on the token learn of a `put` from the change marker it
//! replaces afterwards (`marker`): a polled refresh reads that one object,
//! and loads every record only when it changed, or after
//! [`marker::BACKSTOP`] without a load.

use std::collections::HashMap;
use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use serde::{Deserialize, Serialize};

use super::marker::{self, Check};
use super::pool::Pool;
use super::Pkcs11Backend;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::record::KeyRecord;
use crate::keys::store::{Change, PutError, RegistryStore, Sharing, StoreFuture};

/// `CKA_APPLICATION` of signet's registry objects.
const APPLICATION: &[u8] = b"signet-registry";
const LABEL_PREFIX: &str = "signet-registry:";

#[derive(Serialize, Deserialize)]
struct Stored {
    generation: u64,
    record: KeyRecord,
}

/// The registry store on a PKCS#11 token.
///
/// It remembers the generation of every record it loaded or wrote, and
/// `put` refuses to replace a record whose newest generation on the token
/// is another (a second signet process changed it): the caller gets
/// `ABORTED`, and the next `load` brings the other process's change in.
///
/// Its calls run on the backend's PKCS#11 threads, like every other call
/// into the module.
#[derive(Debug)]
pub struct TokenStore {
    backend: Arc<Pkcs11Backend>,
    inner: Arc<Records>,
}

#[derive(Debug)]
struct Records {
    pool: Arc<Pool>,
    seen: parking_lot::Mutex<HashMap<String, u64>>,
    /// The markers the last load found.
    watch: parking_lot::Mutex<marker::Watch>,
}

impl TokenStore {
    /// The store on `backend`'s token (same sessions, same login).
    pub fn new(backend: Arc<Pkcs11Backend>) -> Self {
        let inner = Arc::new(Records {
            pool: backend.pool.clone(),
            seen: Default::default(),
            watch: Default::default(),
        });
        Self { backend, inner }
    }

    /// Every record, read on the calling thread (for tests and tools that
    /// run outside the server, with no other call in flight).
    #[doc(hidden)]
    pub fn read_now(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.inner.load()?.into_iter().map(|(r, _)| r).collect())
    }

    /// Stores one record on the calling thread (see [`TokenStore::read_now`]).
    #[doc(hidden)]
    pub fn write_now(&self, record: &KeyRecord) -> Result<()> {
        self.inner.put(record, true)
    }

    /// Stores one record without replacing the change marker, as a writer
    /// that crashed between the two would (for tests of the backstop).
    #[doc(hidden)]
    pub fn write_now_unmarked(&self, record: &KeyRecord) -> Result<()> {
        self.inner.put(record, false)
    }

    /// [`RegistryStore::changed`] on the calling thread (see
    /// [`TokenStore::read_now`]).
    #[doc(hidden)]
    pub fn changed_now(&self) -> Result<bool> {
        self.inner.changed()
    }

    /// Sets how long a polled store goes without a full load (default
    /// [`marker::BACKSTOP`]; for tests).
    #[doc(hidden)]
    pub fn set_backstop(&self, backstop: std::time::Duration) {
        self.inner.watch.lock().backstop = backstop;
    }

    /// Every record with its generation (for `signet registry migrate`).
    pub async fn load_with_generations(&self) -> Result<Vec<(KeyRecord, u64)>> {
        let inner = self.inner.clone();
        crate::keys::dispatched(&*self.backend, move || inner.load()).await
    }
}

/// True for labels of the form signet gives key versions: `NAME:vN:HEX`.
pub(crate) fn is_key_label(label: &str) -> bool {
    let mut parts = label.rsplitn(3, ':');
    let (Some(rand), Some(version), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    rand.len() == 8
        && rand.bytes().all(|b| b.is_ascii_hexdigit())
        && version
            .strip_prefix('v')
            .is_some_and(|v| v.parse::<u32>().is_ok())
        && crate::keys::validate_name("key", name).is_ok()
}

/// A registry object: its handle, label and value.
type RegistryObject = (ObjectHandle, Option<String>, Vec<u8>);

fn registry_objects(
    pool: &Pool,
    s: &Session,
    name: Option<&str>,
) -> std::result::Result<Vec<RegistryObject>, cryptoki::error::Error> {
    let mut template = vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Application(APPLICATION.to_vec()),
    ];
    if let Some(n) = name {
        template.push(Attribute::Label(format!("{LABEL_PREFIX}{n}").into_bytes()));
    }
    let mut out = Vec::new();
    for h in pool.find(s, &template)? {
        let (mut label, mut value) = (None, Vec::new());
        // Another process may destroy a superseded record between the
        // search and the read: an object that cannot be read any more is
        // gone, not an error (a device failure still is).
        let attrs = match s.get_attributes(h, &[AttributeType::Label, AttributeType::Value]) {
            Ok(a) => a,
            Err(e) if super::errors::is_token_failure(&e) => return Err(e),
            Err(_) => continue,
        };
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8(l).ok(),
                Attribute::Value(v) => value = v,
                _ => {}
            }
        }
        out.push((h, label, value));
    }
    Ok(out)
}

impl RegistryStore for TokenStore {
    fn load(&self) -> StoreFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(async move {
            let records = self.load_with_generations().await?;
            Ok(records.into_iter().map(|(r, _)| r).collect())
        })
    }

    fn put<'a>(
        &'a self,
        record: &'a KeyRecord,
        _change: &'a Change,
    ) -> StoreFuture<'a, std::result::Result<(), PutError>> {
        let (inner, record) = (self.inner.clone(), record.clone());
        Box::pin(async move {
            crate::keys::dispatched(&*self.backend, move || inner.put(&record, true))
                .await
                .map_err(PutError::from)
        })
    }

    fn changed(&self) -> StoreFuture<'_, Result<bool>> {
        let inner = self.inner.clone();
        Box::pin(crate::keys::dispatched(&*self.backend, move || {
            inner.changed()
        }))
    }

    fn name(&self) -> &'static str {
        "pkcs11"
    }

    fn sharing(&self) -> Sharing {
        Sharing::Polled
    }
}

impl Records {
    fn load(&self) -> Result<Vec<(KeyRecord, u64)>> {
        let generation = self.pool.generation();
        // The markers first: see `marker` for why that order misses no write.
        let (markers, objects) = self.pool.with("read registry", |s| {
            let markers = marker::find(&self.pool, s)?;
            Ok((markers, registry_objects(&self.pool, s, None)?))
        })?;
        // name → (generation, value, record, handle). Everything older than
        // the newest generation is stale. Two objects of the same generation
        // are a write race in progress (see `put`): neither is removed here,
        // and every process picks the same one (the smaller value) until the
        // race's loser removes its own.
        let mut newest: HashMap<String, (u64, Vec<u8>, KeyRecord, ObjectHandle)> = HashMap::new();
        let mut all: Vec<(String, u64, ObjectHandle)> = Vec::new();
        for (h, label, value) in objects {
            // The change marker has an application of its own, so this
            // search does not return it; if a token did, it is no record.
            if label.as_deref() == Some(marker::LABEL) {
                continue;
            }
            let parsed = serde_json::from_slice::<Stored>(&value).ok().filter(|st| {
                label.as_deref().and_then(|l| l.strip_prefix(LABEL_PREFIX))
                    == Some(st.record.name.as_str())
            });
            let Some(st) = parsed else {
                tracing::error!(
                    object = %h,
                    "unreadable registry object on the token; left in place for inspection"
                );
                continue;
            };
            all.push((st.record.name.clone(), st.generation, h));
            let better = match newest.get(&st.record.name) {
                None => true,
                Some((g, v, _, _)) => st.generation > *g || (st.generation == *g && value < *v),
            };
            if better {
                newest.insert(st.record.name.clone(), (st.generation, value, st.record, h));
            }
        }
        let stale: Vec<ObjectHandle> = all
            .into_iter()
            .filter(|(name, g, _)| newest.get(name).is_some_and(|(n, _, _, _)| g < n))
            .map(|(_, _, h)| h)
            .collect();
        if !stale.is_empty() {
            tracing::warn!(
                objects = stale.len(),
                "removing superseded registry records left by an interrupted update"
            );
            self.pool.with("clean registry", |s| {
                // Handles from before a failure may name other objects
                // after the module was re-initialised: the next load cleans.
                if self.pool.generation() != generation {
                    return Ok(());
                }
                for h in &stale {
                    let _ = s.destroy_object(*h);
                }
                Ok(())
            })?;
        }
        let mut seen = self.seen.lock();
        seen.clear();
        seen.extend(newest.iter().map(|(n, (g, _, _, _))| (n.clone(), *g)));
        drop(seen);
        self.watch.lock().loaded(generation, markers);
        let mut records: Vec<(KeyRecord, u64)> =
            newest.into_values().map(|(g, _, r, _)| (r, g)).collect();
        records.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(records)
    }

    /// Whether a refresh must load every record: a remembered marker was
    /// replaced, the backstop is due, or there is nothing to go by. A
    /// token with no marker at all gets one here, before the load that
    /// will remember it.
    fn changed(&self) -> Result<bool> {
        let generation = self.pool.generation();
        let check = self.pool.with("check registry marker", |s| {
            self.watch.lock().check(generation, s)
        })?;
        match check {
            Check::Same => Ok(false),
            Check::Load => Ok(true),
            Check::Create => {
                self.pool
                    .with("create registry marker", |s| marker::create(s).map(|_| ()))?;
                // Load even if that load fails, rather than create again.
                self.watch.lock().forget();
                Ok(true)
            }
        }
    }

    /// Stores `record`; `mark`: then replaces the change marker (false
    /// only in tests, as a writer that crashed in between).
    fn put(&self, record: &KeyRecord, mark: bool) -> Result<()> {
        let name = record.name.clone();
        let expected = self.seen.lock().get(&name).copied().unwrap_or(0);
        let written = self.pool.with("write registry", |s| {
            let existing = registry_objects(&self.pool, s, Some(&name))?;
            let current = existing
                .iter()
                .filter_map(|(_, _, v)| serde_json::from_slice::<Stored>(v).ok())
                .map(|st| st.generation)
                .max()
                .unwrap_or(0);
            if current != expected {
                return Ok(None);
            }
            let generation = current + 1;
            let value = serde_json::to_vec(&Stored {
                generation,
                record: record.clone(),
            })
            .expect("a record always serialises");
            let mine = s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Modifiable(false),
                Attribute::Application(APPLICATION.to_vec()),
                Attribute::Label(format!("{LABEL_PREFIX}{name}").into_bytes()),
                Attribute::Value(value),
            ])?;
            // PKCS#11 has no compare-and-swap: another process may have read
            // the same generation and written its own successor meanwhile.
            // Whoever finds a rival after creating its object withdraws it.
            // Of two racing writers the later one always sees the earlier,
            // so at most one succeeds (both may withdraw; both then retry).
            let rival = registry_objects(&self.pool, s, Some(&name))?
                .iter()
                .filter(|(h, _, _)| *h != mine)
                .filter_map(|(_, _, v)| serde_json::from_slice::<Stored>(v).ok())
                .any(|st| st.generation >= generation);
            if rival {
                let _ = s.destroy_object(mine);
                return Ok(None);
            }
            // The new record is durable: the old ones are now superseded.
            for (h, _, _) in existing {
                let _ = s.destroy_object(h);
            }
            // The record is stored whatever happens to the marker; other
            // processes then see it at their backstop load.
            if mark {
                if let Err(e) = marker::bump(s) {
                    tracing::warn!(
                        key = %name, error = %e,
                        "registry change marker not replaced; other signet processes \
                         see this change within a minute"
                    );
                }
            }
            Ok(Some(generation))
        })?;
        match written {
            Some(g) => {
                self.seen.lock().insert(name, g);
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::Aborted,
                format!("key {name} was changed by another signet process; retry"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_key_label;

    #[test]
    fn key_labels() {
        assert!(is_key_label("pay:v1:0a1b2c3d"));
        assert!(is_key_label("a.b-c:v12:ffffffff"));
        assert!(!is_key_label("signet-registry:pay"));
        assert!(!is_key_label("pay:v1:0a1b2c3"));
        assert!(!is_key_label("pay:x1:0a1b2c3d"));
        assert!(!is_key_label("Pay:v1:0a1b2c3d"));
        assert!(!is_key_label("other"));
        assert!(!is_key_label(super::marker::LABEL));
    }
}
