//! Wrapped import of private keys on the token: the PKCS#8 unwraps
//! inside the token (`unwrap::unwrap_into`) into a private key object
//! that is sensitive and never extractable, so the private key never
//! exists in signet's memory. A token does not give the public half of a
//! private key it unwrapped: for RSA signet reads the modulus and the
//! exponent from the private object (they are not secret); for EC and
//! Ed25519 the custodian sends the public key with the wrapping. Either
//! way signet writes the public key object, and then checks the pair: a
//! signature made on the token must verify with the public key, or the
//! import is refused and both objects are destroyed.

use std::sync::Arc;

use cryptoki::object::{Attribute, ObjectClass};

use super::mechanisms::key_type;
use super::objects::{private_template, public_key_template, read_public, PRIVATE_KEY_USAGES};
use super::Pkcs11Backend;
use crate::error::{Error, Result};
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::public::mismatch;
use crate::keys::wrap::public_mismatch;
use crate::keys::{Algorithm, Family, KeyBackend, KeyHandle, PublicKey, SignInput};

impl Pkcs11Backend {
    /// `KeyBackend::import_wrapped` of a private key (see the module
    /// documentation).
    pub(super) fn unwrap_pair(
        &self,
        label: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public: Option<&PublicKey>,
    ) -> Result<Arc<dyn KeyHandle>> {
        if public.is_none() && alg.family() != Family::RsaPkcs1 && alg.family() != Family::RsaPss {
            return Err(Error::invalid(format!(
                "a wrapped {alg} private key needs its public_key on this backend: the HSM \
                 does not give the public half of a key it unwrapped (docs/byok.md)"
            )));
        }
        let generation = self.pool.generation();
        let mut target = private_template(label);
        target.extend([
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type(alg)),
        ]);
        target.extend(PRIVATE_KEY_USAGES);
        let private = match self.unwrap_into(wrapped, &target) {
            Ok(h) => h,
            Err(e) if alg.family() == Family::Ed25519 && self.unwraps_as_secret(wrapped) => {
                tracing::debug!(error = %e, "the token unwraps the material but not as an Ed25519 key");
                return Err(Error::new(
                    crate::error::ErrorKind::Unimplemented,
                    "the wrapping is sound, but this HSM token does not take the unwrapped key as \
                     an Ed25519 private key (SoftHSM2 2.6 unwraps no Ed25519 key; docs/byok.md)",
                ));
            }
            Err(e) => return Err(e),
        };
        let done = self
            .pair_up(label, alg, private, public)
            .and_then(|()| self.handle(label, alg, generation, private))
            .and_then(|h| check_pair(h, alg));
        done.inspect_err(|_| {
            let _ = self.destroy(label);
        })
    }

    /// Writes the public key object of the unwrapped `private` key: from
    /// `public`, or (RSA) from the private object itself, which must then
    /// agree with `public` when both are there.
    fn pair_up(
        &self,
        label: &str,
        alg: Algorithm,
        private: cryptoki::object::ObjectHandle,
        public: Option<&PublicKey>,
    ) -> Result<()> {
        let from_token = if alg.rsa_bits().is_some() {
            let parts = self
                .pool
                .with("read the unwrapped key", |s| read_public(s, alg, private))?;
            // The modulus size and the exponent are the algorithm's, or
            // the key is not one of its keys.
            Some(PublicKey::from_parts(
                alg,
                parts.map_err(|_| mismatch(alg))?,
            )?)
        } else {
            None
        };
        let public = match (from_token.as_ref(), public) {
            (Some(t), Some(p)) if t.spki_der() != p.spki_der() => return Err(public_mismatch()),
            (Some(t), _) => t,
            (None, Some(p)) => p,
            (None, None) => return Err(mismatch(alg)),
        };
        let template = public_key_template(label, alg, public)?;
        self.pool
            .with("import public key", |s| s.create_object(&template))?;
        Ok(())
    }
}

impl Pkcs11Backend {
    /// Whether `wrapped` unwraps on the token at all, into a session
    /// generic secret that is destroyed at once: tells a sound wrapping of
    /// a key the token will not take from a wrapping that is not sound.
    fn unwraps_as_secret(&self, wrapped: &[u8]) -> bool {
        let probe = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
        ];
        match self.unwrap_into(wrapped, &probe) {
            Ok(h) => {
                let _ = self.pool.with("drop the probe", |s| s.destroy_object(h));
                true
            }
            Err(_) => false,
        }
    }
}

/// A signature made on the token with the unwrapped key must verify with
/// its public key: the wrapping held the key the custodian said it did.
fn check_pair(handle: Arc<dyn KeyHandle>, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
    let mut probe = [0u8; 32];
    crate::keys::fill_random(&mut probe)?;
    let public = handle.public_key().ok_or_else(|| mismatch(alg))?;
    let sig = handle.sign(SignInput::Message(&probe))?;
    if public.verify(SignInput::Message(&probe), &sig, SignatureFormat::Raw)? {
        Ok(handle)
    } else {
        Err(public_mismatch())
    }
}
