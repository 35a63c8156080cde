//! Tests of public-key parsing, export and `parse_material`.

use std::path::Path;
use std::process::Command;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

use super::*;
use crate::error::ErrorKind;

fn invalid(r: Result<impl std::fmt::Debug>) -> String {
    let e = r.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e:?}");
    e.message().to_owned()
}

fn rsa2048() -> RsaKeyPair {
    RsaKeyPair::generate(KeySize::Rsa2048).unwrap()
}

fn spki_of(kp: &impl KeyPair<PublicKey = impl AsDer<PublicKeyX509Der<'static>>>) -> Vec<u8> {
    kp.public_key().as_der().unwrap().as_ref().to_vec()
}

fn ec(curve: Curve) -> EcdsaKeyPair {
    let alg = match curve {
        Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    EcdsaKeyPair::generate(alg).unwrap()
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn public(m: Material) -> PublicKey {
    match m {
        Material::Public(p) => p,
        Material::Private(_) => panic!("expected a public key"),
    }
}

#[test]
fn hmac_has_no_public_key() {
    let der = spki_of(&ec(Curve::P256));
    for alg in [Algorithm::HmacSha256, Algorithm::Aes256Gcm] {
        let msg = invalid(PublicKey::from_spki_der(alg, &der));
        assert!(msg.contains("symmetric"), "{msg}");
    }
}

#[test]
fn type_curve_and_size_must_match() {
    let p256 = spki_of(&ec(Curve::P256));
    let rsa = spki_of(&rsa2048());
    let ed = spki_of(&Ed25519KeyPair::generate().unwrap());
    PublicKey::from_spki_der(Algorithm::EcdsaP256Sha256, &p256).unwrap();
    PublicKey::from_spki_der(Algorithm::RsaPss2048Sha256, &rsa).unwrap();
    PublicKey::from_spki_der(Algorithm::Ed25519, &ed).unwrap();
    let m = invalid(PublicKey::from_spki_der(Algorithm::EcdsaP384Sha384, &p256));
    assert_eq!(m, "key material does not match ECDSA_P384_SHA384");
    let m = invalid(PublicKey::from_spki_der(
        Algorithm::RsaPkcs1_2048Sha256,
        &p256,
    ));
    assert_eq!(m, "key material does not match RSA_PKCS1_2048_SHA256");
    let m = invalid(PublicKey::from_spki_der(Algorithm::Ed25519, &rsa));
    assert_eq!(m, "key material does not match ED25519");
    let m = invalid(PublicKey::from_spki_der(Algorithm::EcdsaP256Sha256, &ed));
    assert_eq!(m, "key material does not match ECDSA_P256_SHA256");
    for alg in [Algorithm::RsaPkcs1_3072Sha256, Algorithm::RsaPss4096Sha512] {
        let m = invalid(PublicKey::from_spki_der(alg, &rsa));
        assert_eq!(m, format!("RSA key size does not match {alg}"));
    }
}

#[test]
fn malformed_spki_is_refused() {
    let good = spki_of(&ec(Curve::P256));
    let alg = Algorithm::EcdsaP256Sha256;
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(invalid(PublicKey::from_spki_der(alg, &trailing)), ERR_SPKI);
    assert_eq!(
        invalid(PublicKey::from_spki_der(alg, &good[..good.len() - 1])),
        ERR_SPKI
    );
    assert_eq!(invalid(PublicKey::from_spki_der(alg, b"")), ERR_SPKI);
    // A point off the curve: change the last byte of y.
    let mut off = good.clone();
    *off.last_mut().unwrap() ^= 1;
    invalid(PublicKey::from_spki_der(alg, &off));
    // A compressed point is not accepted.
    let parts = KeyParts::Ec {
        curve: Curve::P256,
        point: [&[0x02][..], &good[good.len() - 64..good.len() - 32]].concat(),
    };
    invalid(PublicKey::from_parts(alg, parts));
}

#[test]
fn jwk_leading_zeros_are_normalised() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg = Algorithm::RsaPkcs1_2048Sha256;
    let key = PublicKey::from_spki_der(alg, &spki_of(&rsa2048())).unwrap();
    let mut jwk = key.to_jwk("k");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    jwk["n"] = URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()).into();
    let back = public(parse_material(alg, jwk.to_string().as_bytes()).unwrap());
    assert_eq!(back.spki_der(), key.spki_der());
    assert_eq!(back.to_jwk("k"), key.to_jwk("k"));
}

#[test]
fn rsa_exponent_is_checked() {
    let kp = rsa2048();
    let n = kp
        .public_key()
        .modulus()
        .big_endian_without_leading_zero()
        .to_vec();
    let alg = Algorithm::RsaPkcs1_2048Sha256;
    // 1, even, 3, 17, 2^16 + 1 − 2 (odd but too small), 2^33 + 1, empty.
    for e in [
        &[1u8][..],
        &[2],
        &[3],
        &[17],
        &[0xff, 0xff],
        &[0x01, 0x00, 0x00],
        &[1, 0, 0, 0, 0, 1],
        &[2, 0, 0, 0, 1],
        &[],
    ] {
        let parts = KeyParts::Rsa {
            n: n.clone(),
            e: e.to_vec(),
        };
        assert!(
            invalid(PublicKey::from_parts(alg, parts)).contains("RSA public exponent must be odd"),
            "{e:02x?}"
        );
    }
    for e in [&[1u8, 0, 1][..], &[1, 0, 3], &[1, 0xff, 0xff, 0xff, 0xff]] {
        let parts = KeyParts::Rsa {
            n: n.clone(),
            e: e.to_vec(),
        };
        PublicKey::from_parts(alg, parts).unwrap();
    }
}

#[test]
fn ed25519_small_order_and_non_canonical_points_are_refused() {
    for y in ED25519_SMALL_ORDER_Y {
        for sign in [0u8, 0x80] {
            let mut x = y;
            x[31] |= sign;
            let m = invalid(PublicKey::from_parts(
                Algorithm::Ed25519,
                KeyParts::Ed25519 { x },
            ));
            assert!(m.contains("small order"), "{x:02x?}");
        }
    }
    // y = p .. 2^255 − 1 (p + 0 is 0, p + 1 is 1 again, non-canonically).
    for low in 0xedu8..=0xff {
        let mut x = [0xffu8; 32];
        x[0] = low;
        x[31] = 0x7f;
        invalid(PublicKey::from_parts(
            Algorithm::Ed25519,
            KeyParts::Ed25519 { x },
        ));
    }
    // Real keys import.
    for _ in 0..16 {
        let kp = Ed25519KeyPair::generate().unwrap();
        let x: [u8; 32] = kp.public_key().as_ref().try_into().unwrap();
        PublicKey::from_parts(Algorithm::Ed25519, KeyParts::Ed25519 { x }).unwrap();
    }
}

#[test]
fn pem_export_is_what_openssl_writes() {
    let dir = tempfile::tempdir().unwrap();
    let kp = rsa2048();
    let key = PublicKey::from_spki_der(Algorithm::RsaPkcs1_2048Sha256, &spki_of(&kp)).unwrap();
    let pem = key.to_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64) && !pem.contains('\r'));
    std::fs::write(dir.path().join("pub.pem"), &pem).unwrap();
    let again = openssl(dir.path(), &["pkey", "-pubin", "-in", "pub.pem"]);
    assert_eq!(String::from_utf8(again).unwrap(), pem);
    let der = openssl(
        dir.path(),
        &["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER"],
    );
    assert_eq!(der, key.spki_der());
    // PKCS#1: openssl turns it back into the same SPKI PEM.
    let pkcs1 = key.to_pkcs1_pem().unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"));
    std::fs::write(dir.path().join("pkcs1.pem"), &pkcs1).unwrap();
    let spki = openssl(
        dir.path(),
        &["rsa", "-RSAPublicKey_in", "-in", "pkcs1.pem", "-pubout"],
    );
    assert_eq!(String::from_utf8(spki).unwrap(), pem);
    let ec_key = PublicKey::from_spki_der(Algorithm::EcdsaP256Sha256, &spki_of(&ec(Curve::P256)));
    invalid(ec_key.unwrap().to_pkcs1_pem());
}

#[test]
fn rsa_pss_oid_keys_are_accepted_and_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |md: &str, salt: &str| {
        let args = [
            "genpkey",
            "-algorithm",
            "RSA-PSS",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-pkeyopt",
            &format!("rsa_pss_keygen_md:{md}"),
            "-pkeyopt",
            &format!("rsa_pss_keygen_mgf1_md:{md}"),
            "-pkeyopt",
            &format!("rsa_pss_keygen_saltlen:{salt}"),
        ]
        .map(String::from);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        std::fs::write(dir.path().join("k.pem"), openssl(dir.path(), &args)).unwrap();
        openssl(
            dir.path(),
            &["pkey", "-in", "k.pem", "-pubout", "-outform", "DER"],
        )
    };
    let der = gen("sha256", "32");
    let private = std::fs::read(dir.path().join("k.pem")).unwrap();
    let m = invalid(parse_material(Algorithm::RsaPss2048Sha256, &private));
    assert!(m.contains("id-RSASSA-PSS"), "{m}");
    let key = PublicKey::from_spki_der(Algorithm::RsaPss2048Sha256, &der).unwrap();
    let spki = SubjectPublicKeyInfoRef::from_der(key.spki_der()).unwrap();
    assert_eq!(spki.algorithm.oid, OID_RSA_ENCRYPTION);
    assert_ne!(key.spki_der(), &der[..]);
    // The same key through binary DER import.
    let key2 = public(parse_material(Algorithm::RsaPss2048Sha256, &der).unwrap());
    assert_eq!(key2.spki_der(), key.spki_der());
    // Not for PKCS#1 v1.5 algorithms; not with another hash.
    invalid(PublicKey::from_spki_der(
        Algorithm::RsaPkcs1_2048Sha256,
        &der,
    ));
    let der512 = gen("sha512", "64");
    let m = invalid(PublicKey::from_spki_der(
        Algorithm::RsaPss2048Sha256,
        &der512,
    ));
    assert!(m.contains("RSA-PSS key parameters"), "{m}");
}

#[test]
fn malformed_signatures_are_false_not_errors() {
    let keys = [
        (Algorithm::EcdsaP384Sha384, spki_of(&ec(Curve::P384))),
        (Algorithm::RsaPss2048Sha256, spki_of(&rsa2048())),
        (
            Algorithm::Ed25519,
            spki_of(&Ed25519KeyPair::generate().unwrap()),
        ),
    ];
    for (alg, der) in keys {
        let key = PublicKey::from_spki_der(alg, &der).unwrap();
        for sig in [
            &[][..],
            &[0u8; 1],
            &[0xff; 64],
            &[0x30; 96],
            &[1u8; 256],
            &[0u8; 9000],
        ] {
            for format in [SignatureFormat::Der, SignatureFormat::Raw] {
                assert!(!key.verify(SignInput::Message(b"m"), sig, format).unwrap());
                if alg.accepts_digest() {
                    let d = alg.hash().unwrap().digest(b"m");
                    assert!(!key.verify(SignInput::Digest(&d), sig, format).unwrap());
                }
            }
        }
    }
}

#[test]
fn debug_shows_the_algorithm_only() {
    let key = PublicKey::from_spki_der(
        Algorithm::Ed25519,
        &spki_of(&Ed25519KeyPair::generate().unwrap()),
    );
    assert_eq!(format!("{:?}", key.unwrap()), "PublicKey { alg: Ed25519 }");
}
