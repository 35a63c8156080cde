//! The PKCS#11 backend's own mapping: which mechanisms, key types and
//! parameters each algorithm uses on the token. Everything else about an
//! algorithm (its family, hash, curve, OIDs, DigestInfo prefix) comes from
//! the table in `keys::algorithm`; this file only says how the token spells
//! it. A new curve needs nothing here: `CKA_EC_PARAMS` is the DER of the
//! table's curve OID and ECDSA is one mechanism for every curve.

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{KeyType, ObjectClass};
use cryptoki::types::Ulong;
use der::asn1::ObjectIdentifier;
use der::Encode;

use crate::error::{Error, Result};
use crate::keys::algorithm::OID_ED25519;
use crate::keys::public::mismatch;
use crate::keys::{Algorithm, Family, Hash};

/// The PKCS#11 mechanism types of a hash: the digest, its HMAC and MGF1.
fn hash_types(hash: Hash) -> (MechanismType, MechanismType, PkcsMgfType) {
    match hash {
        Hash::Sha256 => (
            MechanismType::SHA256,
            MechanismType::SHA256_HMAC,
            PkcsMgfType::MGF1_SHA256,
        ),
        Hash::Sha384 => (
            MechanismType::SHA384,
            MechanismType::SHA384_HMAC,
            PkcsMgfType::MGF1_SHA384,
        ),
        Hash::Sha512 => (
            MechanismType::SHA512,
            MechanismType::SHA512_HMAC,
            PkcsMgfType::MGF1_SHA512,
        ),
    }
}

fn hmac_mechanism(hash: Hash) -> Mechanism<'static> {
    match hash {
        Hash::Sha256 => Mechanism::Sha256Hmac,
        Hash::Sha384 => Mechanism::Sha384Hmac,
        Hash::Sha512 => Mechanism::Sha512Hmac,
    }
}

fn pss_params(hash: Hash) -> PkcsPssParams {
    let (hash_alg, _, mgf) = hash_types(hash);
    // Salt as long as the hash: what RFC 8017 recommends and what the
    // in-memory backend (and JOSE's PS256/PS512) use.
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: Ulong::from(hash.output_len() as u64),
    }
}

fn hash_of(alg: Algorithm) -> Result<Hash> {
    alg.hash().ok_or_else(|| mismatch(alg))
}

/// The mechanisms the token must offer to generate and use `alg` keys.
pub(super) fn required(alg: Algorithm) -> Result<[MechanismType; 2]> {
    Ok(match alg.family() {
        Family::Hmac => [
            MechanismType::GENERIC_SECRET_KEY_GEN,
            hash_types(hash_of(alg)?).1,
        ],
        Family::RsaPkcs1 => [
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::RSA_PKCS,
        ],
        Family::RsaPss => [
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::RSA_PKCS_PSS,
        ],
        Family::Ecdsa => [MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA],
        Family::Ed25519 => [
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
        ],
        Family::AesGcm => [MechanismType::AES_KEY_GEN, MechanismType::AES_GCM],
    })
}

/// The mechanism that signs for `alg`: over the message for HMAC and
/// Ed25519, over the digest (or DigestInfo) for RSA and ECDSA.
pub(super) fn sign_mechanism(alg: Algorithm) -> Result<Mechanism<'static>> {
    Ok(match alg.family() {
        Family::Hmac => hmac_mechanism(hash_of(alg)?),
        Family::RsaPkcs1 => Mechanism::RsaPkcs,
        Family::RsaPss => Mechanism::RsaPkcsPss(pss_params(hash_of(alg)?)),
        Family::Ecdsa => Mechanism::Ecdsa,
        Family::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        Family::AesGcm => return Err(mismatch(alg)),
    })
}

/// The mechanism that generates an `alg` key pair (asymmetric only).
pub(super) fn key_pair_gen(alg: Algorithm) -> Result<Mechanism<'static>> {
    match alg.family() {
        Family::RsaPkcs1 | Family::RsaPss => Ok(Mechanism::RsaPkcsKeyPairGen),
        Family::Ecdsa => Ok(Mechanism::EccKeyPairGen),
        Family::Ed25519 => Ok(Mechanism::EccEdwardsKeyPairGen),
        Family::Hmac | Family::AesGcm => Err(mismatch(alg)),
    }
}

/// `CKA_KEY_TYPE` of `alg` keys.
pub(super) fn key_type(alg: Algorithm) -> KeyType {
    match alg.family() {
        Family::Hmac => KeyType::GENERIC_SECRET,
        Family::RsaPkcs1 | Family::RsaPss => KeyType::RSA,
        Family::Ecdsa => KeyType::EC,
        Family::Ed25519 => KeyType::EC_EDWARDS,
        Family::AesGcm => KeyType::AES,
    }
}

/// The class of the object that signs for `alg`.
pub(super) fn key_class(alg: Algorithm) -> ObjectClass {
    if alg.is_symmetric() {
        ObjectClass::SECRET_KEY
    } else {
        ObjectClass::PRIVATE_KEY
    }
}

/// `CKA_EC_PARAMS`: the DER of the curve's OID from the table, or of
/// id-Ed25519 (RFC 8410) for Ed25519.
pub(super) fn ec_params(alg: Algorithm) -> Result<Vec<u8>> {
    let oid: ObjectIdentifier = match (alg.family(), alg.curve()) {
        (Family::Ecdsa, Some(curve)) => curve.oid(),
        (Family::Ed25519, _) => OID_ED25519,
        _ => return Err(mismatch(alg)),
    };
    oid.to_der()
        .map_err(|e| Error::internal(format!("DER encoding failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_params_are_the_der_of_the_table_oids() {
        // The bytes this backend used to hard-code, per curve.
        let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let p384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let ed25519 = [0x06, 0x03, 0x2b, 0x65, 0x70];
        assert_eq!(ec_params(Algorithm::EcdsaP256Sha256).unwrap(), p256);
        assert_eq!(ec_params(Algorithm::EcdsaP384Sha384).unwrap(), p384);
        assert_eq!(ec_params(Algorithm::Ed25519).unwrap(), ed25519);
        assert!(ec_params(Algorithm::RsaPss2048Sha256).is_err());
    }

    #[test]
    fn every_algorithm_has_mechanisms() {
        for alg in Algorithm::ALL {
            required(alg).unwrap();
            assert_eq!(sign_mechanism(alg).is_ok(), !alg.encrypts(), "{alg}");
            assert_eq!(key_pair_gen(alg).is_ok(), !alg.is_symmetric(), "{alg}");
        }
    }
}
