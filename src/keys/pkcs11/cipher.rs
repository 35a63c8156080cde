//! AES-GCM on the token (`CKM_AES_GCM`): the key never leaves it. The
//! nonce comes from the registry (the OS CSPRNG), never from the token's
//! or the caller's choice, so both backends make the same format.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use zeroize::Zeroizing;

use super::key::Pkcs11Key;
use crate::error::{Error, Result};
use crate::keys::public::mismatch;
use crate::keys::sealed::{self, NONCE_LEN, TAG_LEN};

/// The mechanism for one call: a fresh copy of the nonce (PKCS#11 takes
/// it mutable) and the associated data; 128-bit tags.
fn gcm<'a>(iv: &'a mut [u8; NONCE_LEN], aad: &'a [u8]) -> Result<Mechanism<'a>> {
    let params = GcmParams::new(iv, aad, ((TAG_LEN * 8) as u64).into())
        .map_err(|_| Error::invalid("associated data too long for the HSM"))?;
    Ok(Mechanism::AesGcm(params))
}

/// `KeyHandle::encrypt` on the token: ciphertext then tag.
pub(super) fn encrypt(
    key: &Pkcs11Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    if !key.alg.encrypts() {
        return Err(mismatch(key.alg));
    }
    let mut iv = *nonce;
    let m = gcm(&mut iv, aad)?;
    let out = key.with_object("encrypt", |s, object| s.encrypt(&m, object, plaintext))?;
    if out.len() != plaintext.len() + TAG_LEN {
        return Err(Error::internal(
            "the HSM returned a ciphertext of the wrong length",
        ));
    }
    Ok(out)
}

/// Whether the token and this session are still sound.
fn token_answers(key: &Pkcs11Key, s: &cryptoki::session::Session) -> bool {
    key.pool.check_token().is_ok() && super::pool::logged_in(s)
}

/// `KeyHandle::decrypt` on the token. A ciphertext that does not
/// authenticate is the caller's error, not the token's: it must not count
/// as an HSM failure, or anyone could take the token out of service with
/// a flipped bit.
///
/// PKCS#11 says `CKR_ENCRYPTED_DATA_INVALID`; SoftHSM2 (2.6) answers a
/// wrong tag with `CKR_GENERAL_ERROR`, which is also what a failing token
/// says. So a general error counts as "does not authenticate" only when
/// the token still answers `C_GetTokenInfo` (which reads SoftHSM2's token
/// file) and the session is still logged in; otherwise it is the token's
/// failure, as for every other call.
pub(super) fn decrypt(
    key: &Pkcs11Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed_body: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if !key.alg.encrypts() {
        return Err(mismatch(key.alg));
    }
    if sealed_body.len() < TAG_LEN {
        return Err(sealed::not_authentic());
    }
    let mut iv = *nonce;
    let m = gcm(&mut iv, aad)?;
    let r = key.with_object("decrypt", |s, object| {
        match s.decrypt(&m, object, sealed_body) {
            Ok(p) => Ok(Some(Zeroizing::new(p))),
            Err(CkError::Pkcs11(
                RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                _,
            )) => Ok(None),
            Err(CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _))
                if token_answers(key, s) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    })?;
    r.ok_or_else(sealed::not_authentic)
}
