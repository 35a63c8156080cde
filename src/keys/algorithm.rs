//! Every fact about an algorithm, a hash and a curve, as data.
//!
//! One row per algorithm in [`ALGORITHMS`] (its names, family, hash, curve
//! and RSA size), one per curve in [`CURVES`] (sizes, OIDs, JOSE name,
//! group order) and one per hash in [`HASHES`]. Everything else asks these
//! tables; the backends keep only their own mapping (aws-lc types in
//! `memory.rs`, mechanisms in `pkcs11/`). Adding a curve or an algorithm
//! is a row here, a row in each backend's mapping and a proto value.

use std::fmt;

use der::asn1::ObjectIdentifier;

/// A key's algorithm, for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
    RsaPkcs1_2048Sha256,
    RsaPkcs1_3072Sha256,
    RsaPkcs1_4096Sha256,
    RsaPkcs1_4096Sha512,
    RsaPss2048Sha256,
    RsaPss3072Sha256,
    RsaPss4096Sha256,
    RsaPss4096Sha512,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    Ed25519,
    Aes256Gcm,
    RsaPss2048Sha512,
}

/// The broad family of an algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Family {
    Hmac,
    RsaPkcs1,
    RsaPss,
    Ecdsa,
    Ed25519,
    /// Authenticated encryption (AES-GCM): encrypts, never signs.
    AesGcm,
}

/// The hash an algorithm uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// An elliptic curve for ECDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Curve {
    P256,
    P384,
}

/// One algorithm's row.
struct AlgorithmRow {
    alg: Algorithm,
    /// The config and CLI name; the proto value is `ALGORITHM_` and this.
    name: &'static str,
    /// The JOSE `alg` (RFC 7518, RFC 8037); for AES-GCM, the JWE `enc`.
    jose: &'static str,
    family: Family,
    /// `None` for Ed25519 (pure EdDSA, no prehash).
    hash: Option<Hash>,
    curve: Option<Curve>,
    rsa_bits: Option<usize>,
}

const fn row(
    alg: Algorithm,
    name: &'static str,
    jose: &'static str,
    family: Family,
    hash: Option<Hash>,
    curve: Option<Curve>,
    rsa_bits: Option<usize>,
) -> AlgorithmRow {
    AlgorithmRow {
        alg,
        name,
        jose,
        family,
        hash,
        curve,
        rsa_bits,
    }
}

use Family as F;
use Hash::{Sha256, Sha384, Sha512};

/// Every algorithm, in proto order (the enum's order).
#[rustfmt::skip]
const ALGORITHMS: [AlgorithmRow; 16] = [
    row(Algorithm::HmacSha256, "HMAC_SHA256", "HS256", F::Hmac, Some(Sha256), None, None),
    row(Algorithm::HmacSha384, "HMAC_SHA384", "HS384", F::Hmac, Some(Sha384), None, None),
    row(Algorithm::HmacSha512, "HMAC_SHA512", "HS512", F::Hmac, Some(Sha512), None, None),
    row(Algorithm::RsaPkcs1_2048Sha256, "RSA_PKCS1_2048_SHA256", "RS256", F::RsaPkcs1, Some(Sha256), None, Some(2048)),
    row(Algorithm::RsaPkcs1_3072Sha256, "RSA_PKCS1_3072_SHA256", "RS256", F::RsaPkcs1, Some(Sha256), None, Some(3072)),
    row(Algorithm::RsaPkcs1_4096Sha256, "RSA_PKCS1_4096_SHA256", "RS256", F::RsaPkcs1, Some(Sha256), None, Some(4096)),
    row(Algorithm::RsaPkcs1_4096Sha512, "RSA_PKCS1_4096_SHA512", "RS512", F::RsaPkcs1, Some(Sha512), None, Some(4096)),
    row(Algorithm::RsaPss2048Sha256, "RSA_PSS_2048_SHA256", "PS256", F::RsaPss, Some(Sha256), None, Some(2048)),
    row(Algorithm::RsaPss3072Sha256, "RSA_PSS_3072_SHA256", "PS256", F::RsaPss, Some(Sha256), None, Some(3072)),
    row(Algorithm::RsaPss4096Sha256, "RSA_PSS_4096_SHA256", "PS256", F::RsaPss, Some(Sha256), None, Some(4096)),
    row(Algorithm::RsaPss4096Sha512, "RSA_PSS_4096_SHA512", "PS512", F::RsaPss, Some(Sha512), None, Some(4096)),
    row(Algorithm::EcdsaP256Sha256, "ECDSA_P256_SHA256", "ES256", F::Ecdsa, Some(Sha256), Some(Curve::P256), None),
    row(Algorithm::EcdsaP384Sha384, "ECDSA_P384_SHA384", "ES384", F::Ecdsa, Some(Sha384), Some(Curve::P384), None),
    row(Algorithm::Ed25519, "ED25519", "EdDSA", F::Ed25519, None, None, None),
    row(Algorithm::Aes256Gcm, "AES_256_GCM", "A256GCM", F::AesGcm, None, None, None),
    // RFC 9421's rsa-pss-sha512 (its examples use a 2048-bit key).
    row(Algorithm::RsaPss2048Sha512, "RSA_PSS_2048_SHA512", "PS512", F::RsaPss, Some(Sha512), None, Some(2048)),
];

impl Algorithm {
    /// Every algorithm, in proto order.
    pub const ALL: [Algorithm; 16] = {
        let mut all = [Algorithm::HmacSha256; 16];
        let mut i = 0;
        while i < 16 {
            all[i] = ALGORITHMS[i].alg;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static AlgorithmRow {
        &ALGORITHMS[self as usize]
    }

    /// The family.
    pub fn family(self) -> Family {
        self.row().family
    }

    /// The hash; `None` for Ed25519 (pure, no prehash).
    pub fn hash(self) -> Option<Hash> {
        self.row().hash
    }

    /// RSA modulus size in bits, for RSA algorithms.
    pub fn rsa_bits(self) -> Option<usize> {
        self.row().rsa_bits
    }

    /// The curve, for ECDSA.
    pub fn curve(self) -> Option<Curve> {
        self.row().curve
    }

    /// True for symmetric algorithms (HMAC, AES): no public key.
    pub fn is_symmetric(self) -> bool {
        matches!(self.family(), Family::Hmac | Family::AesGcm)
    }

    /// True for HMAC.
    pub fn is_mac(self) -> bool {
        self.family() == Family::Hmac
    }

    /// True for the algorithms that encrypt (AES-GCM); every other one
    /// signs.
    pub fn encrypts(self) -> bool {
        self.family() == Family::AesGcm
    }

    /// The secret's length in bytes for symmetric algorithms generated by
    /// signet: the hash's output for HMAC, 32 for AES-256.
    pub fn secret_len(self) -> Option<usize> {
        match self.family() {
            Family::Hmac => self.hash().map(Hash::output_len),
            Family::AesGcm => Some(32),
            _ => None,
        }
    }

    /// Whether `Sign`/`Verify` accept a precomputed digest for this algorithm.
    pub fn accepts_digest(self) -> bool {
        !matches!(
            self.family(),
            Family::Hmac | Family::Ed25519 | Family::AesGcm
        )
    }

    /// The JOSE `alg` (RFC 7518 / RFC 8037).
    pub fn jose_alg(self) -> &'static str {
        self.row().jose
    }

    /// The config and CLI name, e.g. `RSA_PKCS1_2048_SHA256` (the proto's
    /// `ALGORITHM_RSA_PKCS1_2048_SHA256`).
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Parses a config and CLI name (case-insensitive).
    pub fn from_name(s: &str) -> Option<Algorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One hash's row.
struct HashRow {
    output_len: usize,
    /// The JOSE / OpenSSL name.
    name: &'static str,
    oid: ObjectIdentifier,
    /// The DER DigestInfo prefix for PKCS#1 v1.5 over a digest (RFC 8017
    /// §9.2, note 1).
    digest_info_prefix: &'static [u8],
}

/// Every hash, in the enum's order.
const HASHES: [HashRow; 3] = [
    HashRow {
        output_len: 32,
        name: "SHA256",
        oid: ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1"),
        digest_info_prefix: &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    },
    HashRow {
        output_len: 48,
        name: "SHA384",
        oid: ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2"),
        digest_info_prefix: &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
    },
    HashRow {
        output_len: 64,
        name: "SHA512",
        oid: ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3"),
        digest_info_prefix: &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    },
];

impl Hash {
    fn row(self) -> &'static HashRow {
        &HASHES[self as usize]
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        self.row().output_len
    }

    /// Hashes `data` (RustCrypto `sha2`, the fastest here).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The JOSE / OpenSSL name: "SHA256" etc.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The hash's OID (NIST).
    pub fn oid(self) -> ObjectIdentifier {
        self.row().oid
    }

    /// The DER DigestInfo prefix that PKCS#1 v1.5 puts before a digest.
    pub fn digest_info_prefix(self) -> &'static [u8] {
        self.row().digest_info_prefix
    }
}

/// rsaEncryption (RFC 8017): the key type of every RSA key signet holds.
pub(crate) const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-RSASSA-PSS (RFC 8017), accepted on imported public keys.
pub(crate) const OID_RSASSA_PSS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-mgf1 (RFC 8017), in RSASSA-PSS parameters.
pub(crate) const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
/// id-ecPublicKey (RFC 5480): the key type of every ECDSA key.
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// id-Ed25519 (RFC 8410): key type and curve at once.
pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// One curve's row.
struct CurveRow {
    /// Bytes of one coordinate or scalar.
    size: usize,
    /// The JOSE `crv`.
    jwk_crv: &'static str,
    /// The named-curve OID (SEC 2, RFC 5480).
    oid: ObjectIdentifier,
    /// The group order n, big-endian, `size` bytes (SEC 2 §2.4.2, §2.5.1).
    order: &'static [u8],
}

/// Every curve, in the enum's order.
const CURVES: [CurveRow; 2] = [
    CurveRow {
        size: 32,
        jwk_crv: "P-256",
        oid: ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"),
        order: &[
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ],
    },
    CurveRow {
        size: 48,
        jwk_crv: "P-384",
        oid: ObjectIdentifier::new_unwrap("1.3.132.0.34"),
        order: &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81,
            0xf4, 0x37, 0x2d, 0xdf, 0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec,
            0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
        ],
    },
];

impl Curve {
    /// Every curve.
    pub const ALL: [Curve; 2] = [Curve::P256, Curve::P384];

    fn row(self) -> &'static CurveRow {
        &CURVES[self as usize]
    }

    /// Size of one coordinate / scalar in bytes.
    pub fn size(self) -> usize {
        self.row().size
    }

    /// The JOSE `crv` name.
    pub fn jwk_crv(self) -> &'static str {
        self.row().jwk_crv
    }

    /// The named-curve OID.
    pub fn oid(self) -> ObjectIdentifier {
        self.row().oid
    }

    /// The curve named by `oid`, if signet has it.
    pub fn from_oid(oid: ObjectIdentifier) -> Option<Curve> {
        Self::ALL.into_iter().find(|c| c.oid() == oid)
    }

    /// The curve named by a JOSE `crv`, if signet has it.
    pub fn from_jwk_crv(crv: &str) -> Option<Curve> {
        Self::ALL.into_iter().find(|c| c.jwk_crv() == crv)
    }

    /// The group order n, big-endian, [`Curve::size`] bytes.
    pub fn order(self) -> &'static [u8] {
        self.row().order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_enum_order_and_consistent() {
        for (i, r) in ALGORITHMS.iter().enumerate() {
            assert_eq!(r.alg as usize, i, "{}", r.name);
            assert_eq!(Algorithm::ALL[i], r.alg);
            assert_eq!(Algorithm::from_name(r.name), Some(r.alg));
            // The name says the family, the hash and the size.
            let n = r.name;
            match r.family {
                Family::Hmac => assert!(n.starts_with("HMAC_")),
                Family::RsaPkcs1 => assert!(n.starts_with("RSA_PKCS1_")),
                Family::RsaPss => assert!(n.starts_with("RSA_PSS_")),
                Family::Ecdsa => assert!(n.starts_with("ECDSA_") && r.curve.is_some()),
                Family::Ed25519 => assert!(r.hash.is_none()),
                Family::AesGcm => assert!(n.starts_with("AES_") && r.hash.is_none()),
            }
            if let Some(h) = r.hash {
                assert!(n.ends_with(h.name()), "{n}");
            }
            if let Some(bits) = r.rsa_bits {
                assert!(n.contains(&bits.to_string()), "{n}");
            }
            assert_eq!(
                r.rsa_bits.is_some(),
                matches!(r.family, F::RsaPkcs1 | F::RsaPss)
            );
        }
        assert_eq!(Algorithm::from_name("nope"), None);
        for (i, c) in Curve::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i);
            assert_eq!(c.order().len(), c.size());
            assert_eq!(Curve::from_oid(c.oid()), Some(c));
            assert_eq!(Curve::from_jwk_crv(c.jwk_crv()), Some(c));
        }
        for h in [Sha256, Sha384, Sha512] {
            assert_eq!(h.digest(b"").len(), h.output_len());
            // The DigestInfo prefix ends with the OCTET STRING of the digest.
            let p = h.digest_info_prefix();
            assert_eq!(p[p.len() - 2..], [0x04, h.output_len() as u8]);
            assert_eq!(p.len() + h.output_len(), usize::from(p[1]) + 2);
        }
    }
}
