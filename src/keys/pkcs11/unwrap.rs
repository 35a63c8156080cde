//! Wrapped import on the token (`keys::wrap` has the scheme): the import
//! wrapping key is an RSA-3072 pair on the token whose private half only
//! unwraps, and a wrapped key is unwrapped in two `C_UnwrapKey` calls,
//! `CKM_RSA_PKCS_OAEP` into a session AES key and then
//! `CKM_AES_KEY_WRAP_PAD` into the key's own object, so its plaintext
//! never exists in signet's memory. (SoftHSM2 does not offer the one-step
//! `CKM_RSA_AES_KEY_WRAP`; the two steps are the same scheme. Nor does it
//! take OAEP with any hash but SHA-1: the token is probed once, and
//! `GetImportWrappingKey` names the scheme it takes.)
//!
//! A private key (PKCS#8) unwraps the same way into a private key object;
//! `unwrap_pair` adds its public key object, which the token cannot
//! derive from it.

use std::sync::Arc;

use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

use super::mechanisms::key_type;
use super::objects::{aes_template, private_template, read_public, SECRET_KEY_USAGES};
use super::Pkcs11Backend;
use crate::error::{Error, Result};
use crate::keys::public::KeyParts;
use crate::keys::wrap::{bad_wrapping, oaep_encrypt, split, OaepHash, WRAPPING_KEY_BITS};
use crate::keys::{Algorithm, KeyHandle, PublicKey};

/// The label of the import wrapping key pair: not a key version's label
/// (`store::is_key_label`), so the orphan check leaves it alone.
pub(super) const WRAPPING_LABEL: &str = "signet:import-wrapping";

fn label() -> Attribute {
    Attribute::Label(WRAPPING_LABEL.as_bytes().to_vec())
}

pub(super) fn oaep(hash: OaepHash) -> Mechanism<'static> {
    let (h, mgf) = match hash {
        OaepHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        OaepHash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(h, mgf, PkcsOaepSource::empty()))
}

/// The session AES key the OAEP step unwraps into: it only unwraps, and
/// dies with the call.
fn ephemeral_template() -> [Attribute; 8] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Unwrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
    ]
}

type CkResult<T> = std::result::Result<T, cryptoki::error::Error>;

/// The wrapping key pair's objects of `class`, oldest id first: two
/// replicas sharing a token may each have made a pair at the same moment,
/// and all of them then hand out the same (first) one.
fn by_id(s: &Session, class: ObjectClass) -> CkResult<Vec<ObjectHandle>> {
    let mut found = Vec::new();
    for h in s.find_objects(&[Attribute::Class(class), label()])? {
        let id = s
            .get_attributes(h, &[AttributeType::Id])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Id(id) => Some(id),
                _ => None,
            })
            .unwrap_or_default();
        found.push((id, h));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().map(|(_, h)| h).collect())
}

impl Pkcs11Backend {
    /// The wrapping key pairs' private halves, oldest id first (two
    /// replicas sharing a token may each have made one at the same time).
    fn wrapping_keys(&self, s: &Session) -> CkResult<Vec<ObjectHandle>> {
        by_id(s, ObjectClass::PRIVATE_KEY)
    }

    /// `KeyBackend::import_wrapping_key`: the pair is made on the token at
    /// first use, and found again afterwards; the OAEP hash the token
    /// takes is found once by unwrapping a random key with SHA-256, then
    /// with SHA-1.
    pub(super) fn wrapping_public_key(&self) -> Result<(Vec<u8>, OaepHash)> {
        let mut probed = self.wrapping_lock.lock();
        let parts = self.pool.with("import wrapping key", |s| {
            if self.wrapping_keys(s)?.is_empty() {
                self.make_wrapping_key(s)?;
            }
            match by_id(s, ObjectClass::PUBLIC_KEY)?.first() {
                Some(&h) => read_public(s, Algorithm::RsaPkcs1_3072Sha256, h).map(Some),
                None => Ok(None),
            }
        })?;
        let parts =
            parts.ok_or_else(|| Error::internal("import wrapping public key missing"))??;
        let KeyParts::Rsa { .. } = &parts else {
            return Err(Error::internal("import wrapping key is not RSA"));
        };
        // The SPKI of an rsaEncryption key; the table row only checks
        // that it has 3072 bits.
        let spki = PublicKey::from_parts(Algorithm::RsaPkcs1_3072Sha256, parts)?
            .spki_der()
            .to_vec();
        let hash = match *probed {
            Some(h) => h,
            None => {
                let h = self.probe_oaep(&spki)?;
                *probed = Some(h);
                h
            }
        };
        Ok((spki, hash))
    }

    /// The first OAEP hash, SHA-256 then SHA-1, with which the token
    /// unwraps a random key wrapped to `spki`.
    fn probe_oaep(&self, spki: &[u8]) -> Result<OaepHash> {
        let mut probe = zeroize::Zeroizing::new([0u8; 32]);
        crate::keys::fill_random(probe.as_mut())?;
        for hash in [OaepHash::Sha256, OaepHash::Sha1] {
            let wrapped = oaep_encrypt(spki, hash, probe.as_ref())?;
            let took = self.pool.with("probe the import wrapping key", |s| {
                let Some(&kek) = self.wrapping_keys(s)?.first() else {
                    return Ok(false);
                };
                match s.unwrap_key(&oaep(hash), kek, &wrapped, &ephemeral_template()) {
                    Ok(h) => {
                        let _ = s.destroy_object(h);
                        Ok(true)
                    }
                    // The mechanism's parameters refused: try the next
                    // hash. Anything else (a failing token) is not an
                    // answer about the hash, and is not cached.
                    Err(
                        e @ cryptoki::error::Error::Pkcs11(
                            RvError::ArgumentsBad
                            | RvError::MechanismParamInvalid
                            | RvError::MechanismInvalid,
                            _,
                        ),
                    ) => {
                        tracing::debug!(error = %e, ?hash, "the token refused RSA-OAEP with this hash");
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            })?;
            if took {
                if hash != OaepHash::Sha256 {
                    tracing::warn!(
                        scheme = hash.scheme(),
                        "the token unwraps RSA-OAEP with SHA-1 only; wrapped imports take that scheme"
                    );
                }
                return Ok(hash);
            }
        }
        Err(Error::unavailable(
            "the HSM token cannot unwrap with RSA-OAEP: wrapped import is not available",
        ))
    }

    fn make_wrapping_key(&self, s: &Session) -> CkResult<()> {
        let mut id = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut id);
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::ModulusBits(Ulong::from(WRAPPING_KEY_BITS as u64)),
            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            Attribute::Encrypt(false),
            Attribute::Verify(false),
            Attribute::Wrap(false),
            label(),
            Attribute::Id(id.to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Unwrap(true),
            Attribute::Decrypt(false),
            Attribute::Sign(false),
            Attribute::Derive(false),
            label(),
            Attribute::Id(id.to_vec()),
        ];
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
        tracing::info!("import wrapping key (RSA-3072) made on the token");
        Ok(())
    }

    /// `KeyBackend::import_wrapped`: a secret key here, a private key in
    /// `unwrap_pair`.
    pub(super) fn unwrap_key(
        &self,
        label: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public: Option<&PublicKey>,
    ) -> Result<Arc<dyn KeyHandle>> {
        use crate::keys::KeyBackend;
        self.check_algorithm(alg)?;
        if !alg.is_symmetric() {
            return self.unwrap_pair(label, alg, wrapped, public);
        }
        let (_, kwp_part) = split(wrapped, WRAPPING_KEY_BITS / 8)?;
        let generation = self.pool.generation();
        let mut target = if alg.encrypts() {
            aes_template(label)
        } else {
            let mut t = private_template(label);
            t.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(key_type(alg)),
            ]);
            t.extend(SECRET_KEY_USAGES);
            t
        };
        let object = self.unwrap_into(wrapped, &target);
        target.clear();
        let object = object?;
        self.check_unwrapped(alg, object, kwp_part.len())
            .and_then(|()| self.handle(label, alg, generation, object))
            .inspect_err(|_| {
                let _ = crate::keys::KeyBackend::destroy(self, label);
            })
    }

    /// Unwraps `wrapped` into a new object of `target`, in two
    /// `C_UnwrapKey` calls; a wrapping the token does not take is
    /// [`bad_wrapping`], whatever the cause.
    pub(super) fn unwrap_into(&self, wrapped: &[u8], target: &[Attribute]) -> Result<ObjectHandle> {
        let (oaep_part, kwp_part) = split(wrapped, WRAPPING_KEY_BITS / 8)?;
        // The scheme probed when the wrapping key was first asked for;
        // only the first import after a restart finds and probes it.
        let probed = *self.wrapping_lock.lock();
        let hash = match probed {
            Some(h) => h,
            None => self.wrapping_public_key()?.1,
        };
        let ephemeral = ephemeral_template();
        let object = self.pool.with("unwrap key", |s| {
            let mut last = None;
            for kek in self.wrapping_keys(s)? {
                let eph = match s.unwrap_key(&oaep(hash), kek, oaep_part, &ephemeral) {
                    Ok(h) => h,
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                };
                let r = s.unwrap_key(&Mechanism::AesKeyWrapPad, eph, kwp_part, target);
                let _ = s.destroy_object(eph);
                if let Err(e) = &r {
                    tracing::debug!(error = %e, "the token refused to unwrap the material");
                }
                return Ok(Some(r));
            }
            if let Some(e) = last {
                tracing::debug!(error = %e, "the token refused to unwrap the ephemeral key");
            }
            Ok(None)
        })?;
        match object {
            Some(Ok(h)) => Ok(h),
            _ => Err(bad_wrapping()),
        }
    }

    /// The token took the unwrapped bytes: refuses a length the algorithm
    /// cannot have. Tokens need not report it (SoftHSM2 leaves
    /// `CKA_VALUE_LEN` at 0 for an unwrapped key), so the length is bounded
    /// by the key wrap's own (RFC 5649 pads to 8 bytes and adds 8: 40
    /// bytes for 25 to 32) and checked by using the key once on the token:
    /// AES takes 16, 24 or 32 bytes, so an AES key that works and wrapped
    /// to 40 bytes is 32; the token refuses an HMAC secret shorter than
    /// the hash output, which must then be wrapped zero-padded to it (the
    /// MAC is the same: RFC 2104 §2).
    fn check_unwrapped(&self, alg: Algorithm, object: ObjectHandle, kwp_len: usize) -> Result<()> {
        let reported = self.pool.with("read key length", |s| {
            Ok(s.get_attributes(object, &[AttributeType::ValueLen])?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::ValueLen(l) => Some(u64::from(l) as usize),
                    _ => None,
                }))
        })?;
        let min = if alg.encrypts() {
            32
        } else {
            alg.secret_len().unwrap_or(0)
        };
        let max = if alg.encrypts() { 32 } else { 128 };
        let in_range = match reported {
            Some(l) if l > 0 => (min..=max).contains(&l),
            _ => kwp_len <= max.div_ceil(8) * 8 + 8 && kwp_len >= min.div_ceil(8) * 8 + 8,
        };
        if in_range && self.usable(alg, object)? {
            return Ok(());
        }
        Err(Error::invalid(if alg.encrypts() {
            "an AES-256 key must be 32 bytes".to_string()
        } else {
            format!(
                "a wrapped {alg} secret must be {min} to 128 bytes on this backend: zero-pad a \
                 shorter secret to {min} bytes before wrapping (the MAC is the same, RFC 2104 §2)"
            )
        }))
    }

    /// Whether the token uses the key: an HMAC of nothing, or an AES-GCM
    /// encryption of nothing under a random nonce (neither leaves here).
    /// A refusal of the key itself is `false`; a failing token is its error.
    fn usable(&self, alg: Algorithm, object: ObjectHandle) -> Result<bool> {
        let mut iv = crate::keys::sealed::fresh_nonce()?;
        let mechanism = if alg.encrypts() {
            let p = cryptoki::mechanism::aead::GcmParams::new(&mut iv, &[], Ulong::from(128u64))
                .map_err(|_| Error::internal("GCM parameters"))?;
            Mechanism::AesGcm(p)
        } else {
            super::mechanisms::sign_mechanism(alg)?
        };
        self.pool.with("check the unwrapped key", |s| {
            let r = if alg.encrypts() {
                s.encrypt(&mechanism, object, &[]).map(drop)
            } else {
                s.sign(&mechanism, object, &[]).map(drop)
            };
            match r {
                Ok(()) => Ok(true),
                Err(cryptoki::error::Error::Pkcs11(
                    RvError::KeySizeRange
                    | RvError::KeyTypeInconsistent
                    | RvError::KeyFunctionNotPermitted
                    | RvError::MechanismInvalid,
                    _,
                )) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }
}
