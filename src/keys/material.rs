//! Recognising `ImportKey` material by its form: a raw HMAC secret, PKCS#8
//! (PEM or DER), SPKI (PEM or DER), PKCS#1 public PEM, or a public JWK.
//!
//! Decoded private keys only ever sit in zeroizing buffers, and error texts
//! are fixed: they never echo the material.

use der::{AnyRef, Decode};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use super::memory::aws_lc::KeyPair;
use super::public::{
    mismatch, rsa_parts, PublicKey, OID_EC_PUBLIC_KEY, OID_ED25519, OID_RSASSA_PSS,
    OID_RSA_ENCRYPTION,
};
use super::{jwk, Algorithm, Family, ImportMaterial, SecretBytes};
use crate::error::{Error, Result};

const ERR_PKCS8: &str = "malformed PKCS#8 private key";
const ERR_UNRECOGNISED: &str = "unrecognised key material";
const ERR_TRADITIONAL: &str =
    "PKCS#1 and SEC1 private keys are not accepted; import PKCS#8 (PRIVATE KEY)";

/// A PKCS#8 private key checked against its algorithm: the private
/// components a token import needs and the public key. Never printed.
pub(crate) struct Pkcs8Key {
    /// The public key, derived from the private key and checked against
    /// the algorithm.
    pub public: PublicKey,
    /// The private components.
    pub private: PrivateParts,
}

impl std::fmt::Debug for Pkcs8Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs8Key")
            .field("public", &self.public)
            .field("private", &"REDACTED")
            .finish()
    }
}

/// Private key components, big-endian, in zeroizing buffers. The public
/// ones (RSA n and e, the EC point, the Ed25519 key) are in
/// [`Pkcs8Key::public`].
#[allow(missing_docs)]
pub(crate) enum PrivateParts {
    /// RSA CRT components (RFC 8017 §3.2).
    Rsa {
        d: SecretBytes,
        p: SecretBytes,
        q: SecretBytes,
        dp: SecretBytes,
        dq: SecretBytes,
        qinv: SecretBytes,
    },
    /// The ECDSA private scalar.
    Ec { scalar: SecretBytes },
    /// The 32-byte Ed25519 seed.
    Ed25519 { seed: SecretBytes },
}

/// Parses and checks PKCS#8 DER for `alg`: the AlgorithmIdentifier (type,
/// curve), then the key itself with aws-lc-rs (consistency, RSA size, the
/// point on the curve), which also gives the public key. Every error is
/// `INVALID_ARGUMENT` with a fixed text. For backends that take the key
/// apart (PKCS#11 `C_CreateObject`); the memory backend keeps aws-lc's
/// parsed key instead and so shares the two checks, not this function.
pub(crate) fn check_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Pkcs8Key> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| Error::invalid(ERR_PKCS8))?;
    check_key_info(alg, &info)?;
    let public = KeyPair::from_pkcs8(alg, der)?.public_key(alg)?;
    let bad = |_| mismatch(alg);
    let private = match alg.family() {
        Family::RsaPkcs1 | Family::RsaPss => {
            let k = pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(bad)?;
            let b = |u: der::asn1::UintRef<'_>| SecretBytes::from_slice(u.as_bytes());
            PrivateParts::Rsa {
                d: b(k.private_exponent),
                p: b(k.prime1),
                q: b(k.prime2),
                dp: b(k.exponent1),
                dq: b(k.exponent2),
                qinv: b(k.coefficient),
            }
        }
        Family::Ecdsa => {
            let k = sec1::EcPrivateKey::from_der(info.private_key).map_err(bad)?;
            PrivateParts::Ec {
                scalar: SecretBytes::from_slice(k.private_key),
            }
        }
        Family::Ed25519 => {
            let seed = der::asn1::OctetStringRef::from_der(info.private_key).map_err(bad)?;
            PrivateParts::Ed25519 {
                seed: SecretBytes::from_slice(seed.as_bytes()),
            }
        }
        Family::Hmac | Family::AesGcm => return Err(mismatch(alg)),
    };
    Ok(Pkcs8Key { public, private })
}

/// Refuses an HMAC secret outside 16 to 128 bytes (every backend, and
/// `ImportKey` before it reaches one).
pub(crate) fn check_hmac_secret(len: usize) -> Result<()> {
    if (16..=128).contains(&len) {
        Ok(())
    } else {
        Err(Error::invalid("HMAC secret must be 16 to 128 bytes"))
    }
}

/// Checks a raw symmetric secret's length for `alg`: 16 to 128 bytes for
/// HMAC, exactly 32 for AES-256.
pub(crate) fn check_secret(alg: Algorithm, len: usize) -> Result<()> {
    match alg.family() {
        Family::Hmac => check_hmac_secret(len),
        Family::AesGcm if len == 32 => Ok(()),
        Family::AesGcm => Err(Error::invalid("an AES-256 key must be 32 bytes")),
        _ => Err(mismatch(alg)),
    }
}

/// Checks that PKCS#8 DER is well formed and holds a key of `alg`'s type
/// (and curve, when the AlgorithmIdentifier names one). The backend still
/// parses and checks the key itself.
pub(crate) fn check_pkcs8_algorithm(alg: Algorithm, der: &[u8]) -> Result<()> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| Error::invalid(ERR_PKCS8))?;
    check_key_info(alg, &info)
}

fn check_key_info(alg: Algorithm, info: &pkcs8::PrivateKeyInfo<'_>) -> Result<()> {
    let oid = info.algorithm.oid;
    let params = info.algorithm.parameters;
    let ok = match alg.family() {
        Family::Hmac | Family::AesGcm => false,
        Family::RsaPkcs1 | Family::RsaPss if oid == OID_RSASSA_PSS => {
            return Err(Error::invalid(
                "RSA-PSS (id-RSASSA-PSS) private keys are not accepted; \
                 import an rsaEncryption PKCS#8 key",
            ))
        }
        Family::RsaPkcs1 | Family::RsaPss => oid == OID_RSA_ENCRYPTION,
        Family::Ecdsa => {
            oid == OID_EC_PUBLIC_KEY
                && params.is_none_or(|p| {
                    p.decode_as::<ObjectIdentifier>()
                        .ok()
                        .and_then(super::Curve::from_oid)
                        == alg.curve()
                })
        }
        Family::Ed25519 => oid == OID_ED25519,
    };
    if ok {
        Ok(())
    } else {
        Err(mismatch(alg))
    }
}

/// What `ImportKey` material turned out to be.
#[derive(Debug)]
pub(crate) enum Material {
    /// Private or secret material for the backend.
    Private(ImportMaterial),
    /// A public key only: the version can verify but never sign.
    Public(PublicKey),
}

/// Recognises import material for `alg` by its form (see the proto's
/// `ImportKeyRequest.material`). Errors are `INVALID_ARGUMENT` with a short
/// fixed text that never echoes the material.
///
/// HMAC algorithms take the raw secret (16 to 128 bytes), AES-256 the raw
/// 32-byte key; either may come as an oct JWK. Asymmetric ones
/// take PEM (`PRIVATE KEY`, `PUBLIC KEY`, `RSA PUBLIC KEY`), a public JWK,
/// or binary PKCS#8 / SPKI DER.
pub(crate) fn parse_material(alg: Algorithm, material: &[u8]) -> Result<Material> {
    if alg.is_symmetric() {
        // An oct JWK is decoded, not stored as its JSON text.
        let decoded = jwk::oct_secret(alg, material)?;
        let secret = decoded.as_deref().map_or(material, |d| d.as_slice());
        check_secret(alg, secret.len())?;
        return Ok(Material::Private(ImportMaterial::Secret(
            SecretBytes::from_slice(secret),
        )));
    }
    let trimmed = material.trim_ascii();
    if trimmed.starts_with(b"-----BEGIN ") {
        return parse_pem(alg, trimmed);
    }
    if trimmed.starts_with(b"{") {
        return Ok(Material::Public(PublicKey::from_parts(
            alg,
            jwk::from_jwk(alg, trimmed)?,
        )?));
    }
    if let Ok(info) = pkcs8::PrivateKeyInfo::from_der(material) {
        check_key_info(alg, &info)?;
        return Ok(Material::Private(ImportMaterial::Pkcs8(
            SecretBytes::from_slice(material),
        )));
    }
    if SubjectPublicKeyInfoRef::from_der(material).is_ok() {
        return Ok(Material::Public(PublicKey::from_spki_der(alg, material)?));
    }
    if is_traditional_private_key(material) {
        return Err(Error::invalid(ERR_TRADITIONAL));
    }
    Err(Error::invalid(ERR_UNRECOGNISED))
}

/// PKCS#1 RSAPrivateKey or SEC1 ECPrivateKey DER (what `openssl pkey
/// -outform DER` writes), recognised only to say what to send instead.
fn is_traditional_private_key(der: &[u8]) -> bool {
    // ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING, ... }
    let sec1 = AnyRef::from_der(der).is_ok_and(|seq| {
        der::Tagged::tag(&seq) == der::Tag::Sequence
            && seq.value().starts_with(&[0x02, 0x01, 0x01, 0x04])
    });
    sec1 || pkcs1::RsaPrivateKey::from_der(der).is_ok()
}

fn parse_pem(alg: Algorithm, pem: &[u8]) -> Result<Material> {
    let bad_pem = || Error::invalid("malformed PEM");
    let label = der::pem::decode_label(pem).map_err(|_| bad_pem())?;
    match label {
        "PRIVATE KEY" => {
            // Decode straight into a buffer that is zeroized when dropped.
            let mut buf = Zeroizing::new(vec![0u8; pem.len()]);
            let (_, der) = der::pem::decode(pem, &mut buf).map_err(|_| bad_pem())?;
            check_pkcs8_algorithm(alg, der)?;
            Ok(Material::Private(ImportMaterial::Pkcs8(
                SecretBytes::from_slice(der),
            )))
        }
        "PUBLIC KEY" => {
            let (_, der) = der::pem::decode_vec(pem).map_err(|_| bad_pem())?;
            Ok(Material::Public(PublicKey::from_spki_der(alg, &der)?))
        }
        "RSA PUBLIC KEY" => {
            if alg.rsa_bits().is_none() {
                return Err(mismatch(alg));
            }
            let (_, der) = der::pem::decode_vec(pem).map_err(|_| bad_pem())?;
            let parts =
                rsa_parts(&der).map_err(|_| Error::invalid("malformed PKCS#1 RSA public key"))?;
            Ok(Material::Public(PublicKey::from_parts(alg, parts)?))
        }
        "ENCRYPTED PRIVATE KEY" => Err(Error::invalid(
            "encrypted private keys are not accepted; import an unencrypted PKCS#8 PRIVATE KEY",
        )),
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" => Err(Error::invalid(ERR_TRADITIONAL)),
        _ => Err(Error::invalid(
            "unsupported PEM type; expected PRIVATE KEY, PUBLIC KEY or RSA PUBLIC KEY",
        )),
    }
}

#[cfg(test)]
#[path = "material_tests.rs"]
mod tests;
