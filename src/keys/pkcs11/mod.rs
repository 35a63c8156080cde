//! The PKCS#11 backend: keys generated (or imported) on the token as
//! sensitive, non-extractable, private token objects; signing on the token;
//! public keys built from the token's public attributes.
//!
//! Every call here blocks on the module, so [`KeyBackend::blocking`] is
//! true and the registry runs them on the blocking pool (the one place
//! where PKCS#11 leaves the async runtime). Object handles are found once,
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

mod errors;
mod key;
mod mechanisms;
mod module;
mod objects;
mod pool;
pub mod store;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::types::{AuthPin, Ulong};
use der::asn1::OctetStringRef;
use der::Decode;

use super::public::{mismatch, KeyParts};
use super::{Algorithm, Family, ImportMaterial, KeyBackend, KeyHandle, ProtectionLevel, PublicKey};
use crate::error::{Error, Result};
use crate::keys::memory::MemoryKey;
use errors::map_err;
pub use key::RawSigner;
use key::{find_key, Pkcs11Key};
use mechanisms::ec_params;
pub use module::module_context;
use objects::{der_octets, label_of, private_template, public_template, read_public, scrub};
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
    workers: workers::Workers,
    mechanisms: Vec<MechanismType>,
    token: String,
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
        let (slot, mechanisms) = {
            let _in = module.enter();
            let slot = module.find_token(&settings.token)?;
            let mechanisms = module
                .ctx()
                .get_mechanism_list(slot)
                .map_err(|e| map_err("mechanism list", e))?;
            (slot, mechanisms)
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
            workers,
            mechanisms,
            token: settings.token.to_string(),
        })
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
                let found = self.pool.find(
                    s,
                    &[
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        label_attr.clone(),
                    ],
                )?;
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
        self.check_algorithm(alg)?;
        let generation = self.pool.generation();
        let mut private = private_template(label);
        let mut public = public_template(label);
        let object = match alg.family() {
            Family::Hmac => {
                let len = alg.hash().expect("HMAC has a hash").output_len() as u64;
                private.extend([
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::ValueLen(Ulong::from(len)),
                    Attribute::Verify(true),
                ]);
                self.pool.with("generate key", |s| {
                    s.generate_key(&Mechanism::GenericSecretKeyGen, &private)
                })?
            }
            family => {
                if matches!(family, Family::RsaPkcs1 | Family::RsaPss) {
                    let bits = alg.rsa_bits().expect("RSA has a size") as u64;
                    public.extend([
                        Attribute::ModulusBits(Ulong::from(bits)),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    ]);
                } else {
                    public.push(Attribute::EcParams(ec_params(alg)?));
                }
                let mechanism = mechanisms::key_pair_gen(alg)?;
                let (_, private) = self.pool.with("generate key pair", |s| {
                    s.generate_key_pair(&mechanism, &public, &private)
                })?;
                private
            }
        };
        self.handle(label, alg, generation, object)
            .inspect_err(|_| {
                let _ = self.destroy(label);
            })
    }

    fn import(
        &self,
        label: &str,
        alg: Algorithm,
        material: ImportMaterial,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.check_algorithm(alg)?;
        let generation = self.pool.generation();
        let mut private = private_template(label);
        let mut public = public_template(label);
        match (&material, alg.family()) {
            (ImportMaterial::HmacSecret(secret), Family::Hmac) => {
                if !(16..=128).contains(&secret.len()) {
                    return Err(Error::invalid("HMAC secret must be 16 to 128 bytes"));
                }
                // Tokens (SoftHSM2 among them) refuse HMAC keys shorter than
                // the hash output (CKR_KEY_SIZE_RANGE at first use), while
                // platforms hand out shorter webhook secrets. HMAC pads the
                // key with zeros to the hash's block size before use
                // (RFC 2104 §2), so zero-padding up to the output length
                // (never past the block size) gives the same MAC, byte for
                // byte.
                let hash = alg.hash().expect("HMAC has a hash");
                let mut value = secret.expose().to_vec();
                if value.len() < hash.output_len() {
                    value.resize(hash.output_len(), 0);
                }
                private.extend([
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::Verify(true),
                    Attribute::Value(value),
                ]);
                let object = self.pool.with("import key", |s| s.create_object(&private));
                scrub(&mut private);
                return self.handle(label, alg, generation, object?);
            }
            (ImportMaterial::Pkcs8(_), Family::Hmac) | (ImportMaterial::HmacSecret(_), _) => {
                return Err(mismatch(alg))
            }
            _ => {}
        }
        let ImportMaterial::Pkcs8(der) = &material else {
            return Err(mismatch(alg));
        };
        // The in-memory parser checks the key against `alg` (type, size,
        // curve, consistency) and gives the public key.
        let checked = MemoryKey::import(
            alg,
            ImportMaterial::Pkcs8(crate::keys::secret::SecretBytes::from_slice(der.expose())),
        )?;
        let pubkey = checked.public_key().ok_or_else(|| mismatch(alg))?.clone();
        drop(checked);
        let info = pkcs8::PrivateKeyInfo::from_der(der.expose()).map_err(|_| mismatch(alg))?;
        match (alg.family(), pubkey.parts()) {
            (Family::RsaPkcs1 | Family::RsaPss, KeyParts::Rsa { n, e }) => {
                let k =
                    pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(|_| mismatch(alg))?;
                private.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::Modulus(n.clone()),
                    Attribute::PublicExponent(e.clone()),
                    Attribute::PrivateExponent(k.private_exponent.as_bytes().to_vec()),
                    Attribute::Prime1(k.prime1.as_bytes().to_vec()),
                    Attribute::Prime2(k.prime2.as_bytes().to_vec()),
                    Attribute::Exponent1(k.exponent1.as_bytes().to_vec()),
                    Attribute::Exponent2(k.exponent2.as_bytes().to_vec()),
                    Attribute::Coefficient(k.coefficient.as_bytes().to_vec()),
                ]);
                public.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::Modulus(n.clone()),
                    Attribute::PublicExponent(e.clone()),
                ]);
            }
            (Family::Ecdsa, KeyParts::Ec { point, .. }) => {
                let k =
                    sec1::EcPrivateKey::from_der(info.private_key).map_err(|_| mismatch(alg))?;
                private.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::EcParams(ec_params(alg)?),
                    Attribute::Value(k.private_key.to_vec()),
                ]);
                public.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::EcParams(ec_params(alg)?),
                    Attribute::EcPoint(der_octets(point)?),
                ]);
            }
            (Family::Ed25519, KeyParts::Ed25519 { x }) => {
                let seed = OctetStringRef::from_der(info.private_key).map_err(|_| mismatch(alg))?;
                private.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::EcParams(ec_params(alg)?),
                    Attribute::Value(seed.as_bytes().to_vec()),
                ]);
                public.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(mechanisms::key_type(alg)),
                    Attribute::EcParams(ec_params(alg)?),
                    Attribute::EcPoint(der_octets(x)?),
                ]);
            }
            _ => return Err(mismatch(alg)),
        }
        let created = self.pool.with("import key", |s| {
            let p = s.create_object(&private)?;
            match s.create_object(&public) {
                Ok(_) => Ok(p),
                Err(e) => {
                    let _ = s.destroy_object(p);
                    Err(e)
                }
            }
        });
        scrub(&mut private);
        let object = created?;
        self.handle(label, alg, generation, object)
            .inspect_err(|_| {
                let _ = self.destroy(label);
            })
    }

    fn open(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        let generation = self.pool.generation();
        let found = self
            .pool
            .with("find key", |s| find_key(&self.pool, s, label, alg))?;
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
