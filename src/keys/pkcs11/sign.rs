//! Signing on the token: what the token signs (the message, the digest or
//! a DigestInfo), the mechanism, and one retry when the cached object
//! handle went stale.

use std::borrow::Cow;
use std::cell::Cell;

use cryptoki::error::{Error as CkError, RvError};

use super::key::Pkcs11Key;
use super::mechanisms::sign_mechanism;
use crate::error::{Error, Result};
use crate::keys::public::mismatch;
use crate::keys::{any_tag_matches, Algorithm, Family, Hash, KeyHandle, PublicKey, SignInput};
use zeroize::Zeroizing;

/// What the token signs for `input`: the message for HMAC and Ed25519, the
/// digest for ECDSA and PSS, the DigestInfo-wrapped digest for PKCS#1 v1.5.
pub(super) fn token_input(alg: Algorithm, input: SignInput<'_>) -> Result<Cow<'_, [u8]>> {
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
        self.with_object("sign", |s, object| s.sign(&mechanism, object, &data))
    }

    fn verify_mac(&self, input: SignInput<'_>, tags: &[Vec<u8>]) -> Result<bool> {
        if !self.alg.is_symmetric() {
            return Err(mismatch(self.alg));
        }
        // One C_Sign on the token, then the comparisons here.
        let expected = self.sign(input)?;
        Ok(any_tag_matches(&expected, tags))
    }

    fn encrypt(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        super::cipher::encrypt(self, nonce, aad, plaintext)
    }

    fn decrypt(&self, nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        super::cipher::decrypt(self, nonce, aad, sealed)
    }

    fn export_wrapped(
        &self,
        to: &crate::keys::wrap::Recipient,
        hash: Option<crate::keys::wrap::OaepHash>,
    ) -> Result<(Vec<u8>, crate::keys::wrap::OaepHash)> {
        super::export::export_wrapped(self, to, hash)
    }
}

impl Pkcs11Key {
    /// Runs `f` on a pooled session with this key's object, finding the
    /// object again once when the token says its cached handle went stale,
    /// and retrying once more when the pool finds the token lost track of
    /// its objects.
    pub(super) fn with_object<T>(
        &self,
        what: &'static str,
        f: impl Fn(
            &cryptoki::session::Session,
            cryptoki::object::ObjectHandle,
        ) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let missing = Cell::new(false);
        let attempt = || {
            missing.set(false);
            self.pool.with(what, |s| {
                let object = self.object(s, false, &missing)?;
                match f(s, object) {
                    Err(CkError::Pkcs11(
                        RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                        _,
                    )) => f(s, self.object(s, true, &missing)?),
                    r => r,
                }
            })
        };
        match attempt() {
            Err(_) if missing.get() && self.pool.object_missing() => attempt(),
            r => r,
        }
    }
}
