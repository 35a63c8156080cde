//! One key version on the token, and what signing needs: the input the
//! token signs, the mechanism, and the object handle.
//!
//! The handle is found once and cached with the pool's handle generation
//! (see `pool`). After a failure drops the sessions the generation moves
//! on and every key finds its object again before its next use, so a
//! token that lost its objects' handles (SoftHSM2 after its token store
//! failed and the module was re-initialised, a token logged out or
//! re-inserted) costs one `C_FindObjects` per key, not a failed request.

use std::cell::Cell;
use std::sync::Arc;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use subtle::ConstantTimeEq;

use super::errors::map_err;
use super::mechanisms::{key_class, sign_mechanism};
use super::pool::Pool;
use super::Pkcs11Backend;
use crate::error::{Error, Result};
use crate::keys::public::mismatch;
use crate::keys::{Algorithm, Family, Hash, KeyHandle, PublicKey, SignInput};

/// The signing objects labelled `label` (one, unless the token is damaged).
pub(super) fn find_key(
    pool: &Pool,
    s: &Session,
    label: &str,
    alg: Algorithm,
) -> std::result::Result<Vec<ObjectHandle>, CkError> {
    pool.find(
        s,
        &[
            Attribute::Class(key_class(alg)),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
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
            let mut d = hash.digest_info_prefix().to_vec();
            d.extend(digest(hash));
            d.into()
        }
        (Family::RsaPss | Family::Ecdsa, Some(hash), _) => digest(hash).into(),
        _ => return Err(mismatch(alg)),
    })
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
            .sign(&sign_mechanism(self.alg)?, self.object, &self.data)
            .map_err(|e| map_err("sign", e))
    }
}

impl Pkcs11Backend {
    /// A [`RawSigner`] for the key under `label`, signing `message` (hashed
    /// once, here, for the algorithms that sign a digest).
    pub fn raw_signer(&self, label: &str, alg: Algorithm, message: &[u8]) -> Result<RawSigner> {
        // Outside the pool (and its recovery): a benchmark of C_Sign alone.
        let ctx = self.pool.module().ctx();
        let session = ctx
            .open_rw_session(self.pool.slot())
            .map_err(|e| map_err("open session", e))?;
        let object = *find_key(&self.pool, &session, label, alg)
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

/// One version's key on the token: a cached object handle.
pub(super) struct Pkcs11Key {
    pub(super) alg: Algorithm,
    pub(super) label: String,
    /// The handle and the pool generation it was found in.
    pub(super) object: parking_lot::RwLock<(u64, ObjectHandle)>,
    pub(super) public: Option<PublicKey>,
    pub(super) pool: Arc<Pool>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key").field("alg", &self.alg).finish()
    }
}

impl Pkcs11Key {
    /// The key's object in the current generation, found again if the
    /// cached one is older (or `stale`: the token refused it).
    fn object(
        &self,
        s: &Session,
        stale: bool,
        missing: &Cell<bool>,
    ) -> std::result::Result<ObjectHandle, CkError> {
        let generation = self.pool.generation();
        let (g, h) = *self.object.read();
        if g == generation && !stale {
            return Ok(h);
        }
        match find_key(&self.pool, s, &self.label, self.alg)?.as_slice() {
            [h] => {
                *self.object.write() = (generation, *h);
                Ok(*h)
            }
            // Not on a token that answers (another process destroyed it,
            // this session lost its login, or the token lost track of its
            // objects: the pool and `sign` check which).
            _ => {
                missing.set(true);
                Err(CkError::Pkcs11(
                    RvError::KeyHandleInvalid,
                    Function::FindObjects,
                ))
            }
        }
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
        let data = token_input(self.alg, input)?;
        let mechanism = sign_mechanism(self.alg)?;
        let missing = Cell::new(false);
        let attempt = || {
            missing.set(false);
            self.pool.with("sign", |s| {
                let object = self.object(s, false, &missing)?;
                match s.sign(&mechanism, object, &data) {
                    Err(CkError::Pkcs11(
                        RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                        _,
                    )) => s.sign(&mechanism, self.object(s, true, &missing)?, &data),
                    r => r,
                }
            })
        };
        match attempt() {
            Err(_) if missing.get() && self.pool.object_missing() => attempt(),
            r => r,
        }
    }

    fn verify_mac(&self, input: SignInput<'_>, tag: &[u8]) -> Result<bool> {
        if !self.alg.is_symmetric() {
            return Err(mismatch(self.alg));
        }
        let expected = self.sign(input)?;
        Ok(expected.len() == tag.len() && bool::from(expected.ct_eq(tag)))
    }
}
