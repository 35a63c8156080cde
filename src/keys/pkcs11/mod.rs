//! The PKCS#11 backend: keys generated (or imported) on the token as
//! sensitive, non-extractable, private token objects; signing on the token;
//! public keys built from the token's public attributes.
//!
//! Every call here blocks on the module, so [`KeyBackend::blocking`] is
//! true and the registry runs them on the blocking pool (the one place
//! where PKCS#11 leaves the async runtime). Object handles are found once,
//! when a version is generated, imported or opened, and cached in the
//! [`KeyHandle`]: the signing path never searches the token.
//!
//! Messages are hashed in software and the token signs the digest
//! (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`), so
//! signing from a message and from a digest is one code path and needs the
//! fewest mechanisms from the token. HMAC (`CKM_SHAx_HMAC`) and Ed25519
//! (`CKM_EDDSA`) sign the message itself, as their definitions require.

mod pool;
pub mod store;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::context::Function;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use der::asn1::OctetStringRef;
use der::{Decode, Encode};
use subtle::ConstantTimeEq;

use super::public::{mismatch, KeyParts};
use super::{
    Algorithm, Curve, Family, Hash, ImportMaterial, KeyBackend, KeyHandle, ProtectionLevel,
    PublicKey, SignInput,
};
use crate::error::{Error, Result};
use crate::keys::memory::MemoryKey;
use pool::{map_err, Pool};

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
        let ctx = module_context(&settings.module)?;
        let slot = find_token(&ctx, &settings.token)?;
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(|e| map_err("mechanism list", e))?;
        let pool = Pool::new(
            ctx,
            slot,
            settings.pin,
            settings.max_sessions,
            settings.session_wait,
        )?;
        let workers = workers::Workers::start(settings.threads)
            .map_err(|e| Error::internal(format!("cannot start PKCS#11 threads: {e}")))?;
        Ok(Self {
            pool: Arc::new(pool),
            workers,
            mechanisms,
            token: settings.token.to_string(),
        })
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
                for h in s.find_objects(&[Attribute::Token(true), Attribute::Class(class)])? {
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

    fn handle(
        &self,
        label: &str,
        alg: Algorithm,
        private: ObjectHandle,
    ) -> Result<Arc<dyn KeyHandle>> {
        let public = if alg.is_symmetric() {
            None
        } else {
            let label_attr = Attribute::Label(label.as_bytes().to_vec());
            let parts = self.pool.with("read public key", |s| {
                let found = s.find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    label_attr.clone(),
                ])?;
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
            object: parking_lot::RwLock::new(private),
            public,
            pool: self.pool.clone(),
        }))
    }
}

/// The process-wide context for a module: loaded and initialised once,
/// shared by every backend in the process (PKCS#11 allows one
/// `C_Initialize` per process), and never finalised while the process runs.
pub fn module_context(module: &std::path::Path) -> Result<Pkcs11> {
    static CONTEXTS: std::sync::OnceLock<parking_lot::Mutex<Vec<(PathBuf, Pkcs11)>>> =
        std::sync::OnceLock::new();
    let mut contexts = CONTEXTS.get_or_init(Default::default).lock();
    if let Some((_, ctx)) = contexts.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        Error::unavailable(format!(
            "cannot load PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(map_err("C_Initialize", e)),
    }
    contexts.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

fn find_token(ctx: &Pkcs11, want: &TokenSelector) -> Result<Slot> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| map_err("slot list", e))?;
    let mut found = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| map_err("token info", e))?;
        let hit = match want {
            TokenSelector::Label(l) => info.label().trim_end() == l,
            TokenSelector::Serial(s) => info.serial_number().trim_end() == s,
        };
        if hit {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(Error::unavailable(format!("no PKCS#11 token with {want}"))),
        _ => Err(Error::unavailable(format!(
            "{} PKCS#11 tokens match {want}; select by serial instead",
            found.len()
        ))),
    }
}

fn label_of(s: &Session, h: ObjectHandle) -> std::result::Result<Option<String>, CkError> {
    for a in s.get_attributes(h, &[AttributeType::Label])? {
        if let Attribute::Label(l) = a {
            return Ok(String::from_utf8(l).ok());
        }
    }
    Ok(None)
}

/// Reads a public key object's components. An inner error means the token
/// returned something that is not a key of `alg`.
fn read_public(
    s: &Session,
    alg: Algorithm,
    h: ObjectHandle,
) -> std::result::Result<Result<KeyParts>, CkError> {
    if alg.rsa_bits().is_some() {
        let (mut n, mut e) = (None, None);
        for a in s.get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])? {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        return Ok(match (n, e) {
            (Some(n), Some(e)) => Ok(KeyParts::Rsa { n, e }),
            _ => Err(mismatch(alg)),
        });
    }
    let mut point = None;
    for a in s.get_attributes(h, &[AttributeType::EcPoint])? {
        if let Attribute::EcPoint(v) = a {
            point = Some(v);
        }
    }
    let Some(point) = point else {
        return Ok(Err(mismatch(alg)));
    };
    // CKA_EC_POINT is a DER OCTET STRING; some modules return it bare.
    let raw = match OctetStringRef::from_der(&point) {
        Ok(os) => os.as_bytes().to_vec(),
        Err(_) => point,
    };
    Ok(match (alg.family(), alg.curve()) {
        (Family::Ecdsa, Some(curve)) => Ok(KeyParts::Ec { curve, point: raw }),
        (Family::Ed25519, _) => raw
            .try_into()
            .map(|x| KeyParts::Ed25519 { x })
            .map_err(|_| mismatch(alg)),
        _ => Err(mismatch(alg)),
    })
}

/// `CKA_EC_PARAMS`: the curve's OID, DER-encoded.
fn ec_params(alg: Algorithm) -> Vec<u8> {
    match alg.curve() {
        Some(Curve::P256) => vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        Some(Curve::P384) => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        // id-Ed25519, 1.3.101.112 (RFC 8410).
        None => vec![0x06, 0x03, 0x2b, 0x65, 0x70],
    }
}

fn hmac_mechanism(hash: Hash) -> Mechanism<'static> {
    match hash {
        Hash::Sha256 => Mechanism::Sha256Hmac,
        Hash::Sha384 => Mechanism::Sha384Hmac,
        Hash::Sha512 => Mechanism::Sha512Hmac,
    }
}

fn hmac_mechanism_type(hash: Hash) -> MechanismType {
    match hash {
        Hash::Sha256 => MechanismType::SHA256_HMAC,
        Hash::Sha384 => MechanismType::SHA384_HMAC,
        Hash::Sha512 => MechanismType::SHA512_HMAC,
    }
}

fn pss_params(hash: Hash) -> PkcsPssParams {
    let (hash_alg, mgf) = match hash {
        Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        Hash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    // Salt as long as the hash: what RFC 8017 recommends and what the
    // in-memory backend (and JOSE's PS256/PS512) use.
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: Ulong::from(hash.output_len() as u64),
    }
}

/// The class of the object that signs for `alg`.
fn key_class(alg: Algorithm) -> ObjectClass {
    if alg.is_symmetric() {
        ObjectClass::SECRET_KEY
    } else {
        ObjectClass::PRIVATE_KEY
    }
}

/// The signing objects labelled `label` (one, unless the token is damaged).
fn find_key(
    s: &Session,
    label: &str,
    alg: Algorithm,
) -> std::result::Result<Vec<ObjectHandle>, CkError> {
    s.find_objects(&[
        Attribute::Class(key_class(alg)),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
}

/// What the token signs for `input`: the message for HMAC and Ed25519, the
/// digest for ECDSA and PSS, the DigestInfo-wrapped digest for PKCS#1 v1.5.
fn token_input(alg: Algorithm, input: SignInput<'_>) -> Result<std::borrow::Cow<'_, [u8]>> {
    let digest = |hash: Hash| match input {
        SignInput::Message(m) => hash.digest(m),
        SignInput::Digest(d) => d.to_vec(),
    };
    Ok(match (alg.family(), alg.hash(), input) {
        (Family::Hmac | Family::Ed25519, _, SignInput::Message(m)) => m.into(),
        (Family::Hmac | Family::Ed25519, _, SignInput::Digest(_)) => {
            return Err(Error::invalid(format!(
                "{alg} signs the message, not a digest"
            )))
        }
        (Family::RsaPkcs1, Some(hash), _) => {
            let mut d = digest_info_prefix(hash).to_vec();
            d.extend(digest(hash));
            d.into()
        }
        (Family::RsaPss | Family::Ecdsa, Some(hash), _) => digest(hash).into(),
        _ => return Err(mismatch(alg)),
    })
}

/// The mechanism that signs for `alg` (over the digest for RSA and ECDSA).
fn sign_mechanism(alg: Algorithm) -> Mechanism<'static> {
    match (alg.family(), alg.hash()) {
        (Family::Hmac, Some(h)) => hmac_mechanism(h),
        (Family::RsaPkcs1, _) => Mechanism::RsaPkcs,
        (Family::RsaPss, Some(h)) => Mechanism::RsaPkcsPss(pss_params(h)),
        (Family::Ecdsa, _) => Mechanism::Ecdsa,
        _ => Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
            cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
        )),
    }
}

/// DER DigestInfo prefix (RFC 8017 §9.2 note 1) for PKCS#1 v1.5 over a digest.
fn digest_info_prefix(hash: Hash) -> &'static [u8] {
    match hash {
        Hash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        Hash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        Hash::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// Attributes every private or secret key signet puts on the token.
fn private_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

fn public_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

fn der_octets(bytes: &[u8]) -> Result<Vec<u8>> {
    OctetStringRef::new(bytes)
        .and_then(|o| o.to_der())
        .map_err(|e| Error::internal(format!("DER encoding failed: {e}")))
}

impl KeyBackend for Pkcs11Backend {
    fn protection_level(&self) -> ProtectionLevel {
        ProtectionLevel::Hsm
    }

    fn check_algorithm(&self, alg: Algorithm) -> Result<()> {
        let needed: Vec<MechanismType> = match alg.family() {
            Family::Hmac => vec![
                MechanismType::GENERIC_SECRET_KEY_GEN,
                hmac_mechanism_type(alg.hash().expect("HMAC has a hash")),
            ],
            Family::RsaPkcs1 => vec![
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                MechanismType::RSA_PKCS,
            ],
            Family::RsaPss => vec![
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                MechanismType::RSA_PKCS_PSS,
            ],
            Family::Ecdsa => vec![MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA],
            Family::Ed25519 => vec![
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                MechanismType::EDDSA,
            ],
        };
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
        let mut private = private_template(label);
        let mut public = public_template(label);
        let object = match alg.family() {
            Family::Hmac => {
                let len = alg.hash().expect("HMAC has a hash").output_len() as u64;
                private.extend([
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(Ulong::from(len)),
                    Attribute::Verify(true),
                ]);
                self.pool.with("generate key", |s| {
                    s.generate_key(&Mechanism::GenericSecretKeyGen, &private)
                })?
            }
            family => {
                let mechanism = match family {
                    Family::RsaPkcs1 | Family::RsaPss => {
                        let bits = alg.rsa_bits().expect("RSA has a size") as u64;
                        public.extend([
                            Attribute::ModulusBits(Ulong::from(bits)),
                            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                        ]);
                        Mechanism::RsaPkcsKeyPairGen
                    }
                    Family::Ecdsa => {
                        public.push(Attribute::EcParams(ec_params(alg)));
                        Mechanism::EccKeyPairGen
                    }
                    _ => {
                        public.push(Attribute::EcParams(ec_params(alg)));
                        Mechanism::EccEdwardsKeyPairGen
                    }
                };
                let (_, private) = self.pool.with("generate key pair", |s| {
                    s.generate_key_pair(&mechanism, &public, &private)
                })?;
                private
            }
        };
        self.handle(label, alg, object).inspect_err(|_| {
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
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Verify(true),
                    Attribute::Value(value),
                ]);
                let object = self.pool.with("import key", |s| s.create_object(&private));
                scrub(&mut private);
                return self.handle(label, alg, object?);
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
                    Attribute::KeyType(KeyType::RSA),
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
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Modulus(n.clone()),
                    Attribute::PublicExponent(e.clone()),
                ]);
            }
            (Family::Ecdsa, KeyParts::Ec { point, .. }) => {
                let k =
                    sec1::EcPrivateKey::from_der(info.private_key).map_err(|_| mismatch(alg))?;
                private.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(ec_params(alg)),
                    Attribute::Value(k.private_key.to_vec()),
                ]);
                public.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(ec_params(alg)),
                    Attribute::EcPoint(der_octets(point)?),
                ]);
            }
            (Family::Ed25519, KeyParts::Ed25519 { x }) => {
                let seed = OctetStringRef::from_der(info.private_key).map_err(|_| mismatch(alg))?;
                private.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC_EDWARDS),
                    Attribute::EcParams(ec_params(alg)),
                    Attribute::Value(seed.as_bytes().to_vec()),
                ]);
                public.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC_EDWARDS),
                    Attribute::EcParams(ec_params(alg)),
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
        self.handle(label, alg, object).inspect_err(|_| {
            let _ = self.destroy(label);
        })
    }

    fn open(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        let found = self.pool.with("find key", |s| find_key(s, label, alg))?;
        match found.as_slice() {
            [h] => self.handle(label, alg, *h),
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
            for h in s.find_objects(&[
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
            ])? {
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

    fn dispatch(&self, job: crate::keys::Job) {
        self.workers.submit(job);
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

/// For benchmarks: a session of its own and a key's object handle, to
/// time `C_Sign` with nothing of signet in between.
pub struct RawSigner {
    session: Session,
    object: ObjectHandle,
    alg: Algorithm,
    data: Vec<u8>,
}

impl RawSigner {
    /// One `C_Sign` over the prepared input.
    pub fn sign(&self) -> Result<Vec<u8>> {
        // Built per call, as the service does (a Mechanism is not Send).
        self.session
            .sign(&sign_mechanism(self.alg), self.object, &self.data)
            .map_err(|e| map_err("sign", e))
    }
}

impl Pkcs11Backend {
    /// A [`RawSigner`] for the key under `label`, signing `message` (hashed
    /// once, here, for the algorithms that sign a digest).
    pub fn raw_signer(&self, label: &str, alg: Algorithm, message: &[u8]) -> Result<RawSigner> {
        let ctx = self.pool.context();
        let session = ctx
            .open_rw_session(self.pool.slot())
            .map_err(|e| map_err("open session", e))?;
        let object = *find_key(&session, label, alg)
            .map_err(|e| map_err("find key", e))?
            .first()
            .ok_or_else(|| Error::not_found(format!("no key object {label}")))?;
        let data = token_input(alg, SignInput::Message(message))?.into_owned();
        Ok(RawSigner {
            session,
            object,
            alg,
            data,
        })
    }
}

/// Overwrites secret attribute values before the template is dropped.
fn scrub(template: &mut [Attribute]) {
    use zeroize::Zeroize;
    for a in template.iter_mut() {
        match a {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}

/// One version's key on the token: a cached object handle.
struct Pkcs11Key {
    alg: Algorithm,
    label: String,
    /// Found once; found again only if the token invalidates it (SoftHSM2
    /// drops private-object handles on logout; a re-inserted token has new
    /// ones).
    object: parking_lot::RwLock<ObjectHandle>,
    public: Option<PublicKey>,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key").field("alg", &self.alg).finish()
    }
}

impl KeyHandle for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn public_key(&self) -> Option<&PublicKey> {
        self.public.as_ref()
    }

    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>> {
        input.check(self.alg)?;
        let alg = self.alg;
        let data = token_input(alg, input)?;
        let mechanism = sign_mechanism(alg);
        self.pool.with("sign", |s| {
            let object = *self.object.read();
            match s.sign(&mechanism, object, &data) {
                Err(CkError::Pkcs11(
                    RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                    _,
                )) => {
                    let found = find_key(s, &self.label, alg)?;
                    match found.as_slice() {
                        [h] => {
                            *self.object.write() = *h;
                            s.sign(&mechanism, *h, &data)
                        }
                        _ => Err(CkError::Pkcs11(
                            RvError::KeyHandleInvalid,
                            Function::SignInit,
                        )),
                    }
                }
                r => r,
            }
        })
    }

    fn verify_mac(&self, input: SignInput<'_>, tag: &[u8]) -> Result<bool> {
        if !self.alg.is_symmetric() {
            return Err(mismatch(self.alg));
        }
        let expected = self.sign(input)?;
        Ok(expected.len() == tag.len() && bool::from(expected.ct_eq(tag)))
    }
}
