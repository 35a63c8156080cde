//! Public keys: parsing (SPKI PEM/DER, PKCS#1 PEM, JWK), export (PEM, PKCS#1
//! PEM, DER, JWK) and software verification with aws-lc-rs.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use der::asn1::{BitStringRef, UintRef};
use der::{AnyRef, Decode, Encode};
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};

use super::ecdsa_sig::SignatureFormat;
use super::memory::aws_lc::{digest_alg, ecdsa_verifiers, rsa_verifier};
use super::{jwk, Algorithm, Curve, Family, SignInput};
use crate::error::{Error, Result};

// Import material is recognised in `material`; re-exported here, where the
// API has always had it.
pub(crate) use super::material::{check_pkcs8_algorithm, parse_material, Material};

// The key-type OIDs are table facts (see `algorithm`).
pub(crate) use super::algorithm::{
    OID_EC_PUBLIC_KEY, OID_ED25519, OID_MGF1, OID_RSASSA_PSS, OID_RSA_ENCRYPTION,
};

const ERR_SPKI: &str = "malformed SubjectPublicKeyInfo";

/// The components of a public key, validated against its algorithm.
#[derive(Clone)]
pub(crate) enum KeyParts {
    /// Modulus and public exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed point `04 ‖ x ‖ y`.
    Ec { curve: Curve, point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { x: [u8; 32] },
}

/// aws-lc-rs verifiers, parsed once.
#[derive(Clone)]
enum Verifier {
    Rsa {
        key: ParsedPublicKey,
        hash: &'static digest::Algorithm,
    },
    Ecdsa {
        der: ParsedPublicKey,
        raw: ParsedPublicKey,
        hash: &'static digest::Algorithm,
    },
    Ed25519(ParsedPublicKey),
}

/// A verified-to-match-its-algorithm public key, parsed once for fast
/// verification.
#[derive(Clone)]
pub struct PublicKey {
    alg: Algorithm,
    spki_der: Vec<u8>,
    parts: KeyParts,
    verifier: Verifier,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("alg", &self.alg).finish()
    }
}

impl PublicKey {
    /// From SubjectPublicKeyInfo DER; the key type, curve and RSA modulus size
    /// must match `alg` (else `INVALID_ARGUMENT`).
    ///
    /// RSA keys under the id-RSASSA-PSS OID are accepted for PSS algorithms
    /// (with parameters, if any, that allow `alg`) and stored as
    /// rsaEncryption, so every export has the same form.
    pub fn from_spki_der(alg: Algorithm, der: &[u8]) -> Result<Self> {
        if alg.is_symmetric() {
            return Err(Error::invalid("symmetric keys have no public key"));
        }
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| Error::invalid(ERR_SPKI))?;
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::invalid(ERR_SPKI))?;
        let params = spki.algorithm.parameters;
        let parts = match (alg.family(), spki.algorithm.oid) {
            (Family::RsaPkcs1 | Family::RsaPss, OID_RSA_ENCRYPTION) => {
                if params.is_some_and(|p| !p.is_null()) {
                    return Err(Error::invalid(ERR_SPKI));
                }
                rsa_parts(key)?
            }
            (Family::RsaPss, OID_RSASSA_PSS) => {
                if let Some(p) = params {
                    check_pss_params(alg, p)?;
                }
                rsa_parts(key)?
            }
            (Family::Ecdsa, OID_EC_PUBLIC_KEY) => {
                let curve = params
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .and_then(Curve::from_oid)
                    .ok_or_else(|| mismatch(alg))?;
                KeyParts::Ec {
                    curve,
                    point: key.to_vec(),
                }
            }
            (Family::Ed25519, OID_ED25519) if params.is_none() => KeyParts::Ed25519 {
                x: key
                    .try_into()
                    .map_err(|_| Error::invalid("Ed25519 public key must be 32 bytes"))?,
            },
            _ => return Err(mismatch(alg)),
        };
        Self::from_parts(alg, parts)
    }

    /// From components: checks them against `alg`, builds the canonical SPKI
    /// DER and the verifiers.
    pub(crate) fn from_parts(alg: Algorithm, parts: KeyParts) -> Result<Self> {
        // JWK members may carry leading zeros; keep n and e minimal.
        let parts = match parts {
            KeyParts::Rsa { n, e } => KeyParts::Rsa {
                n: strip_zeros(&n).to_vec(),
                e: strip_zeros(&e).to_vec(),
            },
            other => other,
        };
        let hash = alg.hash().map(digest_alg);
        let (spki_der, verifier) = match (&parts, hash) {
            (KeyParts::Rsa { n, e }, Some(hash)) if alg.rsa_bits().is_some() => {
                check_rsa(alg, n, e)?;
                let der = spki_der(OID_RSA_ENCRYPTION, Some(AnyRef::NULL), &pkcs1_der(n, e)?)?;
                let key = parse_key(alg, rsa_verifier(alg), &der)?;
                (der, Verifier::Rsa { key, hash })
            }
            (KeyParts::Ec { curve, point }, Some(hash)) if alg.curve() == Some(*curve) => {
                if point.len() != 1 + 2 * curve.size() || point[0] != 0x04 {
                    return Err(Error::invalid(
                        "EC public key must be an uncompressed point",
                    ));
                }
                let oid = curve.oid();
                let der = spki_der(OID_EC_PUBLIC_KEY, Some(AnyRef::from(&oid)), point)?;
                let (asn1, fixed) = ecdsa_verifiers(*curve);
                let der_key = parse_key(alg, asn1, &der)?;
                let raw_key = parse_key(alg, fixed, &der)?;
                let verifier = Verifier::Ecdsa {
                    der: der_key,
                    raw: raw_key,
                    hash,
                };
                (der, verifier)
            }
            (KeyParts::Ed25519 { x }, None) if alg == Algorithm::Ed25519 => {
                check_ed25519(x)?;
                let der = spki_der(OID_ED25519, None, x)?;
                let key = parse_key(alg, &sig::ED25519, &der)?;
                (der, Verifier::Ed25519(key))
            }
            _ => return Err(mismatch(alg)),
        };
        Ok(Self {
            alg,
            spki_der,
            parts,
            verifier,
        })
    }

    /// The components (modulus and exponent, point, or Ed25519 key).
    pub(crate) fn parts(&self) -> &KeyParts {
        &self.parts
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SubjectPublicKeyInfo PEM ("PUBLIC KEY"), LF line ends, trailing LF.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// PKCS#1 RSAPublicKey PEM ("RSA PUBLIC KEY"); `INVALID_ARGUMENT` for
    /// non-RSA keys.
    pub fn to_pkcs1_pem(&self) -> Result<String> {
        match &self.parts {
            KeyParts::Rsa { n, e } => Ok(pem_encode("RSA PUBLIC KEY", &pkcs1_der(n, e)?)),
            _ => Err(Error::invalid("PKCS#1 PEM is only for RSA keys")),
        }
    }

    /// A JWK with `kid`, `alg` and `"use":"sig"`.
    pub fn to_jwk(&self, kid: &str) -> serde_json::Value {
        jwk::to_jwk(self.alg, &self.parts, kid)
    }

    /// Verifies `sig` over `input` (already checked with `SignInput::check`).
    /// `Ok(false)` for a signature that does not verify, including a
    /// malformed one; `format` matters for ECDSA only.
    pub fn verify(
        &self,
        input: SignInput<'_>,
        sig: &[u8],
        format: SignatureFormat,
    ) -> Result<bool> {
        match &self.verifier {
            Verifier::Rsa { key, hash } => verify_with(key, hash, input, sig),
            Verifier::Ecdsa { der, raw, hash } => {
                let key = match format {
                    SignatureFormat::Der => der,
                    SignatureFormat::Raw => raw,
                };
                verify_with(key, hash, input, sig)
            }
            Verifier::Ed25519(key) => match input {
                SignInput::Message(m) => Ok(key.verify_sig(m, sig).is_ok()),
                SignInput::Digest(_) => {
                    Err(Error::invalid("ED25519 keys verify messages, not digests"))
                }
            },
        }
    }
}

fn verify_with(
    key: &ParsedPublicKey,
    hash: &'static digest::Algorithm,
    input: SignInput<'_>,
    sig: &[u8],
) -> Result<bool> {
    Ok(match input {
        SignInput::Message(m) => key.verify_sig(m, sig).is_ok(),
        SignInput::Digest(d) => key.verify_digest_sig(&import_digest(d, hash)?, sig).is_ok(),
    })
}

/// Wraps a caller's digest for aws-lc-rs; the length must be the hash's.
pub(crate) fn import_digest(d: &[u8], hash: &'static digest::Algorithm) -> Result<digest::Digest> {
    digest::Digest::import_less_safe(d, hash)
        .map_err(|_| Error::invalid("digest has the wrong length for the key's hash"))
}

fn parse_key(
    alg: Algorithm,
    verifier: &'static dyn VerificationAlgorithm,
    spki_der: &[u8],
) -> Result<ParsedPublicKey> {
    ParsedPublicKey::new(verifier, spki_der)
        .map_err(|_| Error::invalid(format!("public key is not valid for {alg}")))
}

pub(crate) fn mismatch(alg: Algorithm) -> Error {
    Error::invalid(format!("key material does not match {alg}"))
}

pub(crate) fn rsa_parts(pkcs1: &[u8]) -> Result<KeyParts> {
    let key = pkcs1::RsaPublicKey::from_der(pkcs1).map_err(|_| Error::invalid(ERR_SPKI))?;
    Ok(KeyParts::Rsa {
        n: key.modulus.as_bytes().to_vec(),
        e: key.public_exponent.as_bytes().to_vec(),
    })
}

/// The modulus must have exactly the algorithm's size and be odd; the
/// exponent odd, at least 3 and at most 33 bits (what aws-lc accepts).
fn check_rsa(alg: Algorithm, n: &[u8], e: &[u8]) -> Result<()> {
    let n = strip_zeros(n);
    let bits = n
        .first()
        .map_or(0, |&b| n.len() * 8 - b.leading_zeros() as usize);
    if Some(bits) != alg.rsa_bits() || n.last().is_some_and(|b| b & 1 == 0) {
        return Err(Error::invalid(format!("RSA key size does not match {alg}")));
    }
    let e = strip_zeros(e);
    let value = if e.len() <= 8 {
        e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    } else {
        0
    };
    // FIPS 186-4 §B.3.1 wants 2^16 < e < 2^256; aws-lc verifies with e of
    // at most 33 bits. A small e (3, 17) is refused.
    if value <= 1 << 16 || value & 1 == 0 || value >= 1 << 33 {
        return Err(Error::invalid(
            "RSA public exponent must be odd, above 2^16 and below 2^33 (FIPS 186-4; 65537 is usual)",
        ));
    }
    Ok(())
}

/// The y-coordinates (little-endian, sign bit clear) of the eight points
/// of small order on edwards25519: the identity, the point of order 2, two
/// of order 4 (y = 0) and four of order 8. Found with RFC 8032's reference
/// arithmetic (tests/python/test_attacks.py derives them again, independently).
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// Refuses Ed25519 public keys that would let forged signatures verify:
/// a point of small order (with it, R of small order and S = 0 verifies
/// for many messages), or a y that is not below p (not a canonical
/// encoding, RFC 8032 §5.1.3).
fn check_ed25519(key: &[u8; 32]) -> Result<()> {
    let mut y = *key;
    y[31] &= 0x7f;
    // p = 2^255 − 19: y ≥ p exactly when y is 0x7fff…ffed or above.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed;
    if non_canonical || ED25519_SMALL_ORDER_Y.contains(&y) {
        return Err(Error::invalid(
            "Ed25519 public key is a point of small order or not canonically encoded: it would accept forged signatures",
        ));
    }
    Ok(())
}

/// RSASSA-PSS-params on a key restrict it; they must allow `alg`'s hash
/// with MGF1 of the same hash and a salt no longer than the hash.
fn check_pss_params(alg: Algorithm, params: AnyRef<'_>) -> Result<()> {
    let bad = || Error::invalid(format!("RSA-PSS key parameters do not match {alg}"));
    let p = params
        .decode_as::<pkcs1::RsaPssParams<'_>>()
        .map_err(|_| bad())?;
    let hash = alg.hash().ok_or_else(bad)?;
    let want = hash.oid();
    let mgf_hash = p.mask_gen.parameters.as_ref().map(|h| h.oid);
    if p.hash.oid != want
        || p.mask_gen.oid != OID_MGF1
        || mgf_hash != Some(want)
        || usize::from(p.salt_len) > hash.output_len()
    {
        return Err(bad());
    }
    Ok(())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn pkcs1_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>> {
    let key = pkcs1::RsaPublicKey {
        modulus: UintRef::new(n).map_err(Error::internal)?,
        public_exponent: UintRef::new(e).map_err(Error::internal)?,
    };
    key.to_der().map_err(Error::internal)
}

fn spki_der(oid: ObjectIdentifier, parameters: Option<AnyRef<'_>>, key: &[u8]) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid, parameters },
        subject_public_key: BitStringRef::from_bytes(key).map_err(Error::internal)?,
    };
    spki.to_der().map_err(Error::internal)
}

/// PEM with LF line ends, 64-character lines and a trailing LF.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
#[path = "public_tests.rs"]
mod tests;
