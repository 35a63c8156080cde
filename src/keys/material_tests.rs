//! Import material recognition and PKCS#8 checks.

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
        assert!(matches!(m, Material::Private(ImportMaterial::Secret(ref s)) if s.len() == len));
    }
    for len in [0, 15, 129] {
        let m = invalid(parse_material(Algorithm::HmacSha256, &vec![7u8; len]));
        assert_eq!(m, "HMAC secret must be 16 to 128 bytes");
    }
    // Even PEM-looking bytes are a secret for HMAC.
    let pem = pem_encode("PUBLIC KEY", &[1u8; 40]);
    assert!(matches!(
        parse_material(Algorithm::HmacSha512, pem.as_bytes()).unwrap(),
        Material::Private(ImportMaterial::Secret(_))
    ));
}

#[test]
fn an_oct_jwk_is_decoded_and_other_jwks_are_refused() {
    use base64::Engine as _;
    let secret = [0x5au8; 32];
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let jwk = format!(r#"{{"kty":"oct","k":"{k}","alg":"HS256"}}"#);
    match parse_material(Algorithm::HmacSha256, jwk.as_bytes()).unwrap() {
        Material::Private(ImportMaterial::Secret(s)) => assert_eq!(s.expose(), secret),
        other => panic!("{other:?}"),
    }
    for (alg, bad, says) in [
        (Algorithm::HmacSha384, jwk.clone(), "does not match"),
        (
            Algorithm::HmacSha256,
            r#"{"kty":"EC","crv":"P-256"}"#.into(),
            "is not a secret key",
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
        Material::Private(ImportMaterial::Secret(ref s)) if s.expose() == raw
    ));
}

#[test]
fn check_pkcs8_gives_the_private_parts_and_the_public_key() {
    let kp = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = kp.to_pkcs8v1().unwrap();
    let key = check_pkcs8(Algorithm::EcdsaP256Sha256, der.as_ref()).unwrap();
    assert_eq!(
        key.public.spki_der(),
        kp.public_key().as_der().unwrap().as_ref()
    );
    let PrivateParts::Ec { scalar } = &key.private else {
        panic!("not an EC key");
    };
    assert_eq!(scalar.len(), 32);
    let shown = format!("{key:?}");
    assert!(shown.contains("REDACTED") && !shown.contains(&hex::encode(scalar.expose())));
    // Checked against the algorithm as on every import path.
    let e = check_pkcs8(Algorithm::EcdsaP384Sha384, der.as_ref()).unwrap_err();
    assert_eq!(e.message(), "key material does not match ECDSA_P384_SHA384");
    assert_eq!(
        check_pkcs8(Algorithm::EcdsaP256Sha256, b"\x30\x00")
            .unwrap_err()
            .message(),
        ERR_PKCS8
    );

    let ed = Ed25519KeyPair::generate().unwrap();
    let der = AsDer::<Pkcs8V1Der>::as_der(&ed).unwrap();
    let key = check_pkcs8(Algorithm::Ed25519, der.as_ref()).unwrap();
    assert_eq!(
        key.public.spki_der(),
        ed.public_key().as_der().unwrap().as_ref()
    );
    assert!(matches!(&key.private, PrivateParts::Ed25519 { seed } if seed.len() == 32));
}
