//! Wrapped export on the token (`keys::wrap` has the scheme): the
//! exportable key (extractable, still sensitive) is wrapped by the token
//! in two `C_WrapKey` calls, `CKM_AES_KEY_WRAP_PAD` under a fresh session
//! AES key and then `CKM_RSA_PKCS_OAEP` of that key to the recipient's
//! public key, made a session object. Neither the secret nor the
//! ephemeral key passes through signet's code in the clear.
//!
//! A key generated without `CKA_EXTRACTABLE` (every key but an exportable
//! one) is refused by the token itself (`CKR_KEY_UNEXTRACTABLE`), and
//! signet does not ask: the registry checks the key's record first.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

use super::key::Pkcs11Key;
use super::unwrap::oaep;
use crate::error::{Error, Result};
use crate::keys::wrap::{not_extractable, OaepHash, Recipient};

/// The session AES key the secret is wrapped under: it wraps, and is
/// itself wrapped to the recipient; it dies with the call.
fn ephemeral_template() -> [Attribute; 11] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(Ulong::from(32u64)),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(false),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
    ]
}

/// The recipient's public key as a session object that only wraps.
fn recipient_template(to: &Recipient) -> [Attribute; 8] {
    [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Modulus(to.modulus().to_vec()),
        Attribute::PublicExponent(to.exponent().to_vec()),
        Attribute::Wrap(true),
        Attribute::Encrypt(false),
        Attribute::Verify(false),
    ]
}

/// What the token answered.
enum Outcome {
    Wrapped(Vec<u8>, OaepHash),
    /// The key is not extractable.
    Unextractable,
    /// No hash asked for is one the token wraps with.
    NoHash,
}

/// Whether the token refused the OAEP parameters (the hash), not the call.
fn refused_hash(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
            _
        )
    )
}

/// Both wrappings with session objects `eph` and `rsa`, which the caller
/// destroys.
fn wrap_with(
    s: &Session,
    object: ObjectHandle,
    eph: ObjectHandle,
    rsa: ObjectHandle,
    hashes: &[OaepHash],
) -> std::result::Result<Outcome, CkError> {
    let kwp = match s.wrap_key(&Mechanism::AesKeyWrapPad, eph, object) {
        Ok(w) => w,
        Err(CkError::Pkcs11(RvError::KeyUnextractable | RvError::KeyNotWrappable, _)) => {
            return Ok(Outcome::Unextractable)
        }
        Err(e) => return Err(e),
    };
    for &hash in hashes {
        match s.wrap_key(&oaep(hash), rsa, eph) {
            Ok(mut out) => {
                out.extend_from_slice(&kwp);
                return Ok(Outcome::Wrapped(out, hash));
            }
            Err(e) if refused_hash(&e) => {
                tracing::debug!(error = %e, ?hash, "the token refused to wrap with this OAEP hash");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::NoHash)
}

/// `KeyHandle::export_wrapped` on the token.
pub(super) fn export_wrapped(
    key: &Pkcs11Key,
    to: &Recipient,
    hash: Option<OaepHash>,
) -> Result<(Vec<u8>, OaepHash)> {
    if !key.alg.is_symmetric() {
        return Err(not_extractable());
    }
    let hashes: &[OaepHash] = match &hash {
        Some(h) => std::slice::from_ref(h),
        None => &[OaepHash::Sha256, OaepHash::Sha1],
    };
    let outcome = key.with_object("export key", |s, object| {
        let eph = s.generate_key(&Mechanism::AesKeyGen, &ephemeral_template())?;
        let rsa = match s.create_object(&recipient_template(to)) {
            Ok(h) => h,
            Err(e) => {
                let _ = s.destroy_object(eph);
                return Err(e);
            }
        };
        let r = wrap_with(s, object, eph, rsa, hashes);
        let _ = s.destroy_object(eph);
        let _ = s.destroy_object(rsa);
        r
    })?;
    match outcome {
        Outcome::Wrapped(w, h) => Ok((w, h)),
        Outcome::Unextractable => Err(not_extractable()),
        Outcome::NoHash => Err(Error::precondition(match hash {
            Some(h) => format!(
                "this HSM token does not wrap with {}: ask for another wrapping_scheme, or \
                 leave it empty for the one the token offers",
                h.scheme()
            ),
            None => "this HSM token wraps with no RSA-OAEP hash signet offers".to_string(),
        })),
    }
}
