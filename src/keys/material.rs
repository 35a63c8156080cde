//! Recognising `ImportKey` material by its form: a raw HMAC secret, PKCS#8
//! (PEM or DER), SPKI (PEM or DER), PKCS#1 public PEM, or a public JWK.
//!
//! Decoded private keys only ever sit in zeroizing buffers, and error texts
//! are fixed: they never echo the material.

use der::{AnyRef, Decode};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

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

/// Checks that PKCS#8 DER is well formed and holds a key of `alg`'s type
/// (and curve, when the AlgorithmIdentifier names one). The backend still
/// parses and checks the key itself.
pub fn check_pkcs8_algorithm(alg: Algorithm, der: &[u8]) -> Result<()> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| Error::invalid(ERR_PKCS8))?;
    check_key_info(alg, &info)
}

fn check_key_info(alg: Algorithm, info: &pkcs8::PrivateKeyInfo<'_>) -> Result<()> {
    let oid = info.algorithm.oid;
    let params = info.algorithm.parameters;
    let ok = match alg.family() {
        Family::Hmac => false,
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
pub enum Material {
    /// Private or secret material for the backend.
    Private(ImportMaterial),
    /// A public key only: the version can verify but never sign.
    Public(PublicKey),
}

/// Recognises import material for `alg` by its form (see the proto's
/// `ImportKeyRequest.material`). Errors are `INVALID_ARGUMENT` with a short
/// fixed text that never echoes the material.
///
/// HMAC algorithms take the raw secret (16 to 128 bytes). Asymmetric ones
/// take PEM (`PRIVATE KEY`, `PUBLIC KEY`, `RSA PUBLIC KEY`), a public JWK,
/// or binary PKCS#8 / SPKI DER.
pub fn parse_material(alg: Algorithm, material: &[u8]) -> Result<Material> {
    if alg.is_symmetric() {
        // An oct JWK is decoded, not stored as its JSON text.
        let decoded = jwk::oct_secret(alg, material)?;
        let secret = decoded.as_deref().map_or(material, |d| d.as_slice());
        if !(16..=128).contains(&secret.len()) {
            return Err(Error::invalid("HMAC secret must be 16 to 128 bytes"));
        }
        return Ok(Material::Private(ImportMaterial::HmacSecret(
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
mod tests {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, Pkcs8V2Der};
    use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::error::ErrorKind;
    use crate::keys::public::pem_encode;

    fn invalid(r: Result<Material>) -> String {
        let e = r.expect_err("expected INVALID_ARGUMENT");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e:?}");
        e.message().to_owned()
    }

    fn public(m: Material) -> PublicKey {
        match m {
            Material::Public(p) => p,
            Material::Private(_) => panic!("expected a public key"),
        }
    }

    #[test]
    fn material_forms_are_recognised() {
        let alg = Algorithm::EcdsaP256Sha256;
        let kp = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = kp.to_pkcs8v1().unwrap();
        let spki = kp.public_key().as_der().unwrap().as_ref().to_vec();
        // Binary DER.
        assert!(matches!(
            parse_material(alg, pkcs8.as_ref()).unwrap(),
            Material::Private(ImportMaterial::Pkcs8(ref s)) if s.expose() == pkcs8.as_ref()
        ));
        assert_eq!(public(parse_material(alg, &spki).unwrap()).spki_der(), spki);
        // PEM, with whitespace around and CRLF line ends.
        let pem = pem_encode("PRIVATE KEY", pkcs8.as_ref());
        let crlf = format!("\n  {}\r\n\n", pem.replace('\n', "\r\n"));
        for text in [&pem, &crlf] {
            assert!(matches!(
                parse_material(alg, text.as_bytes()).unwrap(),
                Material::Private(ImportMaterial::Pkcs8(ref s)) if s.expose() == pkcs8.as_ref()
            ));
        }
        let key = public(parse_material(alg, pem_encode("PUBLIC KEY", &spki).as_bytes()).unwrap());
        assert_eq!(key.spki_der(), spki);
        // Wrong curve for PKCS#8, in PEM and DER.
        let m = invalid(parse_material(Algorithm::EcdsaP384Sha384, pem.as_bytes()));
        assert_eq!(m, "key material does not match ECDSA_P384_SHA384");
        invalid(parse_material(Algorithm::RsaPss2048Sha256, pkcs8.as_ref()));
        // Ed25519 v1 and v2.
        let ed = Ed25519KeyPair::generate().unwrap();
        for der in [
            AsDer::<Pkcs8V1Der>::as_der(&ed).unwrap().as_ref().to_vec(),
            AsDer::<Pkcs8V2Der>::as_der(&ed).unwrap().as_ref().to_vec(),
        ] {
            let m = parse_material(Algorithm::Ed25519, &der).unwrap();
            assert!(matches!(m, Material::Private(ImportMaterial::Pkcs8(_))));
        }
    }

    #[test]
    fn refused_material_gets_fixed_texts() {
        let alg = Algorithm::RsaPkcs1_2048Sha256;
        let secret_b64 = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
        for (label, want) in [
            ("ENCRYPTED PRIVATE KEY", "unencrypted PKCS#8"),
            ("RSA PRIVATE KEY", "import PKCS#8"),
            ("EC PRIVATE KEY", "import PKCS#8"),
            ("CERTIFICATE", "unsupported PEM type"),
        ] {
            let pem = format!("-----BEGIN {label}-----\n{secret_b64}\n-----END {label}-----\n");
            let m = invalid(parse_material(alg, pem.as_bytes()));
            assert!(m.contains(want), "{label}: {m}");
            assert!(!m.contains(secret_b64));
        }
        let broken = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            invalid(parse_material(alg, broken.as_bytes())),
            "malformed PEM"
        );
        let not_pkcs8 = pem_encode("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
        assert_eq!(
            invalid(parse_material(alg, not_pkcs8.as_bytes())),
            ERR_PKCS8
        );
        for garbage in [&b""[..], b"hello", b"\x30\x00", &[0xffu8; 300]] {
            assert_eq!(invalid(parse_material(alg, garbage)), ERR_UNRECOGNISED);
        }
        // PKCS#1 public PEM is for RSA algorithms only.
        let pkcs1 = pem_encode("RSA PUBLIC KEY", b"\x30\x00");
        invalid(parse_material(Algorithm::Ed25519, pkcs1.as_bytes()));
        assert!(invalid(parse_material(alg, pkcs1.as_bytes())).contains("PKCS#1"));
    }

    #[test]
    fn hmac_material_is_the_raw_secret() {
        for len in [16, 20, 64, 128] {
            let m = parse_material(Algorithm::HmacSha384, &vec![7u8; len]).unwrap();
            assert!(
                matches!(m, Material::Private(ImportMaterial::HmacSecret(ref s)) if s.len() == len)
            );
        }
        for len in [0, 15, 129] {
            let m = invalid(parse_material(Algorithm::HmacSha256, &vec![7u8; len]));
            assert_eq!(m, "HMAC secret must be 16 to 128 bytes");
        }
        // Even PEM-looking bytes are a secret for HMAC.
        let pem = pem_encode("PUBLIC KEY", &[1u8; 40]);
        assert!(matches!(
            parse_material(Algorithm::HmacSha512, pem.as_bytes()).unwrap(),
            Material::Private(ImportMaterial::HmacSecret(_))
        ));
    }

    #[test]
    fn an_oct_jwk_is_decoded_and_other_jwks_are_refused() {
        use base64::Engine as _;
        let secret = [0x5au8; 32];
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let jwk = format!(r#"{{"kty":"oct","k":"{k}","alg":"HS256"}}"#);
        match parse_material(Algorithm::HmacSha256, jwk.as_bytes()).unwrap() {
            Material::Private(ImportMaterial::HmacSecret(s)) => assert_eq!(s.expose(), secret),
            other => panic!("{other:?}"),
        }
        for (alg, bad, says) in [
            (Algorithm::HmacSha384, jwk.clone(), "does not match"),
            (
                Algorithm::HmacSha256,
                r#"{"kty":"EC","crv":"P-256"}"#.into(),
                "not an HMAC secret",
            ),
            (Algorithm::HmacSha256, r#"{"kty":"oct"}"#.into(), "missing"),
            (
                Algorithm::HmacSha256,
                r#"{"kty":"oct","k":"a+b/"}"#.into(),
                "base64url",
            ),
            (
                Algorithm::HmacSha256,
                format!(r#"{{"kty":"oct","k":"{k}","use":"enc"}}"#),
                "use",
            ),
        ] {
            let m = invalid(parse_material(alg, bad.as_bytes()));
            assert!(m.contains(says), "{bad}: {m}");
            assert!(!m.contains(&k), "the secret is never echoed");
        }
        // JSON that is not a JWK stays a raw secret.
        let raw = br#"{"not":"a jwk","pad":"0123456789"}"#;
        assert!(matches!(
            parse_material(Algorithm::HmacSha256, raw).unwrap(),
            Material::Private(ImportMaterial::HmacSecret(ref s)) if s.expose() == raw
        ));
    }
}
