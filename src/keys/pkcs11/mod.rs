//! The PKCS#11 backend: keys generated (or imported) on the token as
//! sensitive, non-extractable, private token objects; signing on the token;
//! public keys built from the token's public attributes.
//!
//! Every call here blocks on the module, so [`KeyBackend::blocking`] is
//! true and the registry runs every call, admin ones included, on this
//! backend's own threads (`workers`), which shutdown joins.
//!
//! Files by operation (the layout of Parsec's `providers/pkcs11/`):
//! `keygen` and `import` put keys on the token, `sign` signs with them,
//! `key` caches their object handles, `mechanisms` is this backend's
//! mapping of the algorithm table; `pool`, `module`, `workers` and
//! `errors` are the session, module, thread and error plumbing, `objects`
//! the templates, `store` the registry records on the token, `marker`
//! how other processes learn that one changed, and `bench`
//! the raw signer of `signet bench --raw`. Object handles are found once,
//! when a version is generated, imported or opened, and cached in the
//! [`KeyHandle`]: the signing path searches the token only after a failure
//! made every cached handle stale (see `key` and `pool`).
//!
//! A lost token (device gone, token store missing or unreadable, sessions
//! or login lost) answers `UNAVAILABLE`, turns readiness off through
//! [`KeyBackend::health`], and recovers on its own when the token is back:
//! see `pool` for how, and `module` for what SoftHSM2 does meanwhile.
//!
//! Messages are hashed in software and the token signs the digest
//! (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`), so
//! signing from a message and from a digest is one code path and needs the
//! fewest mechanisms from the token. HMAC (`CKM_SHAx_HMAC`) and Ed25519
//! (`CKM_EDDSA`) sign the message itself, as their definitions require.

mod bench;
mod cipher;
mod errors;

mod export;
mod import;
mod index;
mod key;
mod keygen;
mod marker;
mod mechanisms;
mod module;
mod objects;
mod pool;
mod sign;
pub mod store;
mod unwrap;
mod unwrap_pair;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::types::AuthPin;

use super::{Algorithm, ImportMaterial, KeyBackend, KeyHandle, ProtectionLevel, PublicKey};
use crate::error::{Error, Result};
use errors::map_err;
use key::{find_key, Pkcs11Key};
pub use module::module_context;
use objects::{label_of, read_public};
use pool::Pool;

/// Which token to use: by label or by serial number, never by slot index
/// (slot numbers change when tokens are added or removed).
#[derive(Clone, Debug)]
pub enum TokenSelector {
    /// `CK_TOKEN_INFO.label`, trailing spaces ignored.
    Label(String),
    /// `CK_TOKEN_INFO.serialNumber`, trailing spaces ignored.
    Serial(String),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "label {l:?}"),
            TokenSelector::Serial(s) => write!(f, "serial {s:?}"),
        }
    }
}

/// What the backend needs to start.
pub struct Pkcs11Settings {
    /// Path of the PKCS#11 module (`.so`).
    pub module: PathBuf,
    /// The token.
    pub token: TokenSelector,
    /// The user PIN (a secret: zeroized on drop, never printed).
    pub pin: AuthPin,
    /// Most sessions open at once (the anchor excluded).
    pub max_sessions: usize,
    /// How long an operation waits for a free session before `UNAVAILABLE`.
    pub session_wait: std::time::Duration,
    /// Threads that make the PKCS#11 calls (see `workers`).
    pub threads: usize,
}

/// Keys on a PKCS#11 token.
pub struct Pkcs11Backend {
    pool: Arc<Pool>,
    index: index::Index,
    workers: workers::Workers,
    mechanisms: Vec<MechanismType>,
    token: String,
    /// Serialises making the import wrapping key, and holds the OAEP hash
    /// the token takes once probed (`unwrap.rs`).
    wrapping_lock: parking_lot::Mutex<Option<crate::keys::wrap::OaepHash>>,
}

impl std::fmt::Debug for Pkcs11Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Backend")
            .field("token", &self.token)
            .finish()
    }
}

impl Pkcs11Backend {
    /// Loads the module, finds the token, logs in once and reads the
    /// token's mechanisms. Each failure is a distinct, clear error: missing
    /// module, missing token, wrong PIN (never retried).
    pub fn open(settings: Pkcs11Settings) -> Result<Self> {
        if !settings.module.is_file() {
            return Err(Error::unavailable(format!(
                "PKCS#11 module not found: {}",
                settings.module.display()
            )));
        }
        let module = module::module(&settings.module, Some(&settings.token))?;
        let slot = module.find_token_at_start(&settings.token)?;
        let mechanisms = {
            let _in = module.enter();
            module
                .ctx()
                .get_mechanism_list(slot)
                .map_err(|e| map_err("mechanism list", e))?
        };
        let pool = Pool::new(
            module,
            settings.token.clone(),
            slot,
            settings.pin,
            settings.max_sessions,
            settings.session_wait,
        )?;
        let workers = workers::Workers::start(settings.threads)
            .map_err(|e| Error::internal(format!("cannot start PKCS#11 threads: {e}")))?;
        Ok(Self {
            pool,
            index: index::Index::default(),
            workers,
            mechanisms,
            token: settings.token.to_string(),
            wrapping_lock: parking_lot::Mutex::new(None),
        })
    }

    /// How the token was named in the configuration (label or serial), for
    /// log lines.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// PKCS#11 calls queued or running on this backend's threads: zero
    /// once [`KeyBackend::shutdown`] has returned.
    pub fn calls_in_flight(&self) -> usize {
        self.workers.in_flight()
    }

    fn has(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }

    /// Every object signet made: for the start-up reconciliation.
    pub fn key_labels(&self) -> Result<Vec<String>> {
        self.pool.with("list objects", |s| {
            let mut labels = Vec::new();
            for class in [
                ObjectClass::PRIVATE_KEY,
                ObjectClass::SECRET_KEY,
                ObjectClass::PUBLIC_KEY,
            ] {
                for h in self
                    .pool
                    .find(s, &[Attribute::Token(true), Attribute::Class(class)])?
                {
                    if let Some(l) = label_of(s, h)? {
                        if !labels.contains(&l) {
                            labels.push(l);
                        }
                    }
                }
            }
            Ok(labels)
        })
    }

    /// The key for `private`, a handle found in handle generation
    /// `generation` (or later).
    fn handle(
        &self,
        label: &str,
        alg: Algorithm,
        generation: u64,
        private: ObjectHandle,
    ) -> Result<Arc<dyn KeyHandle>> {
        let public = if alg.is_symmetric() {
            None
        } else {
            let label_attr = Attribute::Label(label.as_bytes().to_vec());
            let parts = self.pool.with("read public key", |s| {
                let indexed = self
                    .index
                    .lookup(s, generation, ObjectClass::PUBLIC_KEY, label)?;
                let found = match indexed {
                    Some(found) => found,
                    None => self.pool.find(
                        s,
                        &[
                            Attribute::Class(ObjectClass::PUBLIC_KEY),
                            label_attr.clone(),
                        ],
                    )?,
                };
                let Some(&h) = found.first() else {
                    return Ok(None);
                };
                read_public(s, alg, h).map(Some)
            })?;
            let parts = parts.ok_or_else(|| {
                Error::internal(format!("public key object missing for {label}"))
            })??;
            Some(PublicKey::from_parts(alg, parts)?)
        };
        Ok(Arc::new(Pkcs11Key {
            alg,
            label: label.to_string(),
            object: parking_lot::RwLock::new((generation, private)),
            public,
            pool: self.pool.clone(),
        }))
    }
}

impl KeyBackend for Pkcs11Backend {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    fn protection_level(&self) -> ProtectionLevel {
        ProtectionLevel::Hsm
    }

    fn check_algorithm(&self, alg: Algorithm) -> Result<()> {
        let needed = mechanisms::required(alg)?;
        if needed.iter().all(|m| self.has(*m)) {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "algorithm {alg} is not supported by this HSM token"
            )))
        }
    }

    fn generate(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        self.generate_key(label, alg, false)
    }

    fn generate_exportable(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        if !alg.is_symmetric() {
            return Err(crate::keys::wrap::not_extractable());
        }
        self.generate_key(label, alg, true)
    }

    fn import(
        &self,
        label: &str,
        alg: Algorithm,
        material: ImportMaterial,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.import_key(label, alg, material)
    }

    fn import_wrapping_key(&self) -> Result<(Vec<u8>, crate::keys::wrap::OaepHash)> {
        self.wrapping_public_key()
    }

    fn import_wrapped(
        &self,
        label: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public: Option<&PublicKey>,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.unwrap_key(label, alg, wrapped, public)
    }

    fn open(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        let look = || {
            let generation = self.pool.generation();
            self.pool
                .with("find key", |s| {
                    match self
                        .index
                        .lookup(s, generation, mechanisms::key_class(alg), label)?
                    {
                        Some(found) => Ok(found),
                        None => find_key(&self.pool, s, label, alg),
                    }
                })
                .map(|found| (generation, found))
        };
        let (mut generation, mut found) = look()?;
        // A key a record names but the token does not show: as in `sign`,
        // the token may have lost track of its objects. Or another process
        // has just created it: SoftHSM2 rescans its token directory only
        // when the token's generation changed since this process last wrote
        // it, so this process's own writes hide another's new objects until
        // a third write. Re-initialise (at most every few seconds) and look
        // once more.
        if found.is_empty() && self.pool.object_missing() {
            (generation, found) = look()?;
        }
        match found.as_slice() {
            [h] => self.handle(label, alg, generation, *h),
            [] => Err(Error::not_found(format!(
                "key object {label} is not on the token"
            ))),
            _ => Err(Error::internal(format!(
                "{} key objects labelled {label}",
                found.len()
            ))),
        }
    }

    fn opening_many(&self, on: bool) {
        if on {
            self.index.start();
        } else {
            self.index.stop();
        }
    }

    fn destroy(&self, label: &str) -> Result<()> {
        self.pool.with("destroy key", |s| {
            for h in self.pool.find(
                s,
                &[
                    Attribute::Token(true),
                    Attribute::Label(label.as_bytes().to_vec()),
                ],
            )? {
                match s.destroy_object(h) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::ObjectHandleInvalid, _)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn health(&self) -> Result<()> {
        self.pool.health()
    }

    fn blocking(&self) -> bool {
        true
    }

    fn dispatch(&self, job: crate::keys::Job) -> Result<()> {
        self.workers.submit(job)
    }

    fn shutdown(&self) {
        self.workers.shutdown();
    }

    fn orphan_check(&self, referenced: &[String]) -> Result<Vec<String>> {
        Ok(self
            .key_labels()?
            .into_iter()
            .filter(|l| store::is_key_label(l) && !referenced.contains(l))
            .collect())
    }
}
