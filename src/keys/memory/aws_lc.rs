//! The in-memory backend's own mapping: which aws-lc-rs (and RustCrypto
//! HMAC) types each algorithm, hash and curve uses. Software verification
//! of public keys (`keys::public`) uses the same library and so the same
//! mapping. Every other fact about an algorithm comes from the table in
//! `keys::algorithm`; adding a curve here is one arm in
//! [`ecdsa_signing`] and one in [`ecdsa_verifiers`].

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::error::{KeyRejected, Unspecified};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, RsaEncoding,
    RsaKeyPair, VerificationAlgorithm,
};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

use crate::error::{Error, Result};
use crate::keys::public::mismatch;
use crate::keys::{Algorithm, Curve, Family, Hash, PublicKey};

/// The aws-lc-rs digest algorithm for a hash.
pub(crate) fn digest_alg(hash: Hash) -> &'static digest::Algorithm {
    match hash {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
    }
}

/// The aws-lc-rs key size for an RSA algorithm's modulus.
pub(crate) fn rsa_key_size(alg: Algorithm) -> Result<KeySize> {
    match alg.rsa_bits() {
        Some(2048) => Ok(KeySize::Rsa2048),
        Some(3072) => Ok(KeySize::Rsa3072),
        Some(4096) => Ok(KeySize::Rsa4096),
        _ => Err(Error::internal("no RSA key size for algorithm")),
    }
}

/// The fixed-width (r‖s) ECDSA signing algorithm for `alg`'s curve.
pub(crate) fn ecdsa_signing(alg: Algorithm) -> Result<&'static EcdsaSigningAlgorithm> {
    match alg.curve() {
        Some(Curve::P256) => Ok(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        Some(Curve::P384) => Ok(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        None => Err(mismatch(alg)),
    }
}

/// The RSA signature encoding (padding and hash) for `alg`.
pub(crate) fn rsa_encoding(alg: Algorithm) -> &'static dyn RsaEncoding {
    match (alg.family(), alg.hash()) {
        (Family::RsaPss, Some(Hash::Sha512)) => &sig::RSA_PSS_SHA512,
        (Family::RsaPss, _) => &sig::RSA_PSS_SHA256,
        (_, Some(Hash::Sha512)) => &sig::RSA_PKCS1_SHA512,
        _ => &sig::RSA_PKCS1_SHA256,
    }
}

/// The RSA verification algorithm for `alg`.
pub(crate) fn rsa_verifier(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match (alg.family(), alg.hash()) {
        (Family::RsaPss, Some(Hash::Sha512)) => &sig::RSA_PSS_2048_8192_SHA512,
        (Family::RsaPss, _) => &sig::RSA_PSS_2048_8192_SHA256,
        (_, Some(Hash::Sha512)) => &sig::RSA_PKCS1_2048_8192_SHA512,
        _ => &sig::RSA_PKCS1_2048_8192_SHA256,
    }
}

/// The ECDSA verification algorithms for a curve: DER, then fixed-width.
pub(crate) fn ecdsa_verifiers(
    curve: Curve,
) -> (
    &'static dyn VerificationAlgorithm,
    &'static dyn VerificationAlgorithm,
) {
    match curve {
        Curve::P256 => (&sig::ECDSA_P256_SHA256_ASN1, &sig::ECDSA_P256_SHA256_FIXED),
        Curve::P384 => (&sig::ECDSA_P384_SHA384_ASN1, &sig::ECDSA_P384_SHA384_FIXED),
    }
}

/// An asymmetric private key held by aws-lc-rs (freed, and zeroized by
/// aws-lc, on drop).
pub(crate) enum KeyPair {
    /// RSA, either padding.
    Rsa(RsaKeyPair),
    /// ECDSA, fixed-width signatures.
    Ecdsa(EcdsaKeyPair),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
}

impl KeyPair {
    /// Generates a key pair for the asymmetric `alg`.
    pub(crate) fn generate(alg: Algorithm) -> Result<Self> {
        let failed = |_: Unspecified| Error::internal("key generation failed");
        Ok(match alg.family() {
            Family::RsaPkcs1 | Family::RsaPss => {
                KeyPair::Rsa(RsaKeyPair::generate(rsa_key_size(alg)?).map_err(failed)?)
            }
            Family::Ecdsa => {
                KeyPair::Ecdsa(EcdsaKeyPair::generate(ecdsa_signing(alg)?).map_err(failed)?)
            }
            Family::Ed25519 => KeyPair::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            Family::Hmac | Family::AesGcm => return Err(mismatch(alg)),
        })
    }

    /// Parses PKCS#8 DER (v1 or v2) whose AlgorithmIdentifier was checked
    /// against `alg` (`material::check_pkcs8_algorithm`); aws-lc-rs checks
    /// the key itself (consistency, RSA size, point on the curve).
    pub(crate) fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self> {
        let rejected = |e: KeyRejected| rejected(alg, e);
        Ok(match alg.family() {
            Family::Ecdsa => KeyPair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(ecdsa_signing(alg)?, der).map_err(rejected)?,
            ),
            Family::Ed25519 => {
                KeyPair::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?)
            }
            Family::RsaPkcs1 | Family::RsaPss => {
                KeyPair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?)
            }
            Family::Hmac | Family::AesGcm => return Err(mismatch(alg)),
        })
    }

    /// The public key, checked against `alg`.
    pub(crate) fn public_key(&self, alg: Algorithm) -> Result<PublicKey> {
        let der = match self {
            KeyPair::Rsa(kp) => kp.public_key().as_der(),
            KeyPair::Ecdsa(kp) => kp.public_key().as_der(),
            KeyPair::Ed25519(kp) => kp.public_key().as_der(),
        }
        .map_err(|_| Error::internal("public key encoding failed"))?;
        PublicKey::from_spki_der(alg, der.as_ref())
    }
}

/// aws-lc refused the private key: name the size problem when that is it.
fn rejected(alg: Algorithm, e: KeyRejected) -> Error {
    match e.description_() {
        "TooSmall" | "TooLarge" if alg.rsa_bits().is_some() => {
            Error::invalid(format!("RSA key size does not match {alg}"))
        }
        _ => Error::invalid(format!("private key is not a valid {alg} key")),
    }
}

fn keyed<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Result<M> {
    let mut mac =
        <M as KeyInit>::new_from_slice(key).map_err(|_| Error::internal("HMAC key rejected"))?;
    mac.update(msg);
    Ok(mac)
}

/// HMAC of `msg` under `key` with `hash` (RustCrypto `hmac`).
pub(crate) fn hmac_sign(hash: Hash, key: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
    Ok(match hash {
        Hash::Sha256 => keyed::<Hmac<sha2::Sha256>>(key, msg)?
            .finalize()
            .into_bytes()
            .to_vec(),
        Hash::Sha384 => keyed::<Hmac<sha2::Sha384>>(key, msg)?
            .finalize()
            .into_bytes()
            .to_vec(),
        Hash::Sha512 => keyed::<Hmac<sha2::Sha512>>(key, msg)?
            .finalize()
            .into_bytes()
            .to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_digests_agree_with_the_table() {
        for alg in Algorithm::ALL {
            if let Some(h) = alg.hash() {
                assert_eq!(digest_alg(h).output_len(), h.output_len(), "{alg}");
            }
            assert_eq!(rsa_key_size(alg).is_ok(), alg.rsa_bits().is_some(), "{alg}");
            if let Ok(size) = rsa_key_size(alg) {
                assert_eq!(Some(size.len() * 8), alg.rsa_bits());
            }
            assert_eq!(ecdsa_signing(alg).is_ok(), alg.curve().is_some(), "{alg}");
        }
    }
}
