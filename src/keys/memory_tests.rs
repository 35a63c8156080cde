//! Tests of the memory backend: every algorithm end to end, imports, and
//! checks against the `openssl` command line.

use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;

use super::*;
use crate::error::ErrorKind;
use crate::keys::ecdsa_sig::{der_to_raw, raw_to_der, SignatureFormat};
use crate::keys::public::{parse_material, Material};

/// One backend with a key of every algorithm, generated once (RSA-4096 is
/// slow) and in parallel, shared by the tests.
struct Fixture {
    backend: MemoryBackend,
    keys: Vec<(Algorithm, Arc<dyn KeyHandle>)>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let backend = MemoryBackend::new();
    let keys = std::thread::scope(|s| {
        let handles: Vec<_> = Algorithm::ALL
            .map(|alg| {
                let backend = &backend;
                s.spawn(move || (alg, backend.generate(alg.name(), alg).unwrap()))
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Fixture { backend, keys }
});

fn key(alg: Algorithm) -> Arc<dyn KeyHandle> {
    let (_, k) = FIXTURE.keys.iter().find(|(a, _)| *a == alg).unwrap();
    Arc::clone(k)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn openssl_status(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is installed")
        .status
        .success()
}

fn openssl(dir: &Path, args: &[&str]) {
    assert!(openssl_status(dir, args), "openssl {args:?} failed");
}

/// Flips one bit.
fn flipped(sig: &[u8], at: usize) -> Vec<u8> {
    let mut s = sig.to_vec();
    s[at % sig.len()] ^= 0x01;
    s
}

#[test]
fn every_algorithm_signs_and_verifies() {
    let msg = b"pay 100 EUR to account 42";
    for (alg, k) in &FIXTURE.keys {
        let alg = *alg;
        assert_eq!(k.algorithm(), alg);
        if alg.encrypts() {
            // memory_aes_tests.rs; an AES key signs nothing.
            assert!(k.sign(SignInput::Message(msg)).is_err());
            continue;
        }
        let sig = k.sign(SignInput::Message(msg)).unwrap();
        if alg.is_symmetric() {
            assert!(k.public_key().is_none());
            assert_eq!(sig.len(), alg.hash().unwrap().output_len());
            let mac = |m: &[u8], tags: &[Vec<u8>]| k.verify_mac(SignInput::Message(m), tags);
            assert!(mac(msg, std::slice::from_ref(&sig)).unwrap());
            assert!(!mac(msg, &[flipped(&sig, 5)]).unwrap());
            assert!(!mac(b"other", std::slice::from_ref(&sig)).unwrap());
            assert!(!mac(msg, &[sig[..16].to_vec()]).unwrap());
            assert!(!mac(msg, &[vec![]]).unwrap());
            assert!(!mac(msg, &[]).unwrap());
            // Any one of several tags, wherever it stands.
            let wrong = [flipped(&sig, 0), sig[..16].to_vec(), flipped(&sig, 9)];
            assert!(!mac(msg, &wrong).unwrap());
            for at in 0..=wrong.len() {
                let mut tags = wrong.to_vec();
                tags.insert(at, sig.clone());
                assert!(mac(msg, &tags).unwrap(), "the good tag at {at}");
            }
            continue;
        }
        let pk = k.public_key().expect("asymmetric keys have a public key");
        assert_eq!(pk.algorithm(), alg);
        assert_eq!(
            k.verify_mac(SignInput::Message(msg), std::slice::from_ref(&sig))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
        // ECDSA comes back raw; check it both ways.
        let formats: &[(SignatureFormat, Vec<u8>)] = match alg.curve() {
            Some(curve) => &[
                (SignatureFormat::Raw, sig.clone()),
                (SignatureFormat::Der, raw_to_der(curve, &sig).unwrap()),
            ],
            None => &[(SignatureFormat::Der, sig.clone())],
        };
        for (format, sig) in formats {
            let verify = |input, s: &[u8]| pk.verify(input, s, *format).unwrap();
            assert!(verify(SignInput::Message(msg), sig), "{alg} {format:?}");
            assert!(!verify(SignInput::Message(b"other"), sig), "{alg}");
            for at in [0, sig.len() / 2, sig.len() - 1] {
                assert!(
                    !verify(SignInput::Message(msg), &flipped(sig, at)),
                    "{alg} {at}"
                );
            }
        }
        if let Some(curve) = alg.curve() {
            assert_eq!(der_to_raw(curve, &formats[1].1).unwrap(), sig);
            // The wrong format does not verify.
            assert!(!pk
                .verify(SignInput::Message(msg), &sig, SignatureFormat::Der)
                .unwrap());
        }
    }
}

#[test]
fn digest_and_message_signatures_are_interchangeable() {
    let msg = b"the same message, two ways";
    for (alg, k) in &FIXTURE.keys {
        let alg = *alg;
        let digest = alg.hash().map(|h| h.digest(msg)).unwrap_or_default();
        if !alg.accepts_digest() {
            let e = k.sign(SignInput::Digest(&digest)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{alg}");
            continue;
        }
        let pk = k.public_key().unwrap();
        let format = SignatureFormat::Raw;
        let by_digest = k.sign(SignInput::Digest(&digest)).unwrap();
        let by_message = k.sign(SignInput::Message(msg)).unwrap();
        for sig in [&by_digest, &by_message] {
            assert!(
                pk.verify(SignInput::Message(msg), sig, format).unwrap(),
                "{alg}"
            );
            assert!(
                pk.verify(SignInput::Digest(&digest), sig, format).unwrap(),
                "{alg}"
            );
            let other = alg.hash().unwrap().digest(b"other");
            assert!(
                !pk.verify(SignInput::Digest(&other), sig, format).unwrap(),
                "{alg}"
            );
        }
        if alg.family() == Family::RsaPkcs1 {
            // Deterministic: both ways give the same bytes.
            assert_eq!(by_digest, by_message);
        }
        let short = &digest[..digest.len() - 1];
        assert_eq!(
            k.sign(SignInput::Digest(short)).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

#[test]
fn openssl_verifies_our_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let msg = b"independent check";
    std::fs::write(d.join("msg.bin"), msg).unwrap();
    for (alg, k) in &FIXTURE.keys {
        let Some(pk) = k.public_key() else { continue };
        std::fs::write(d.join("pub.pem"), pk.to_pem()).unwrap();
        let mut sig = k.sign(SignInput::Message(msg)).unwrap();
        if let Some(curve) = alg.curve() {
            sig = raw_to_der(curve, &sig).unwrap();
        }
        let bad = flipped(&sig, sig.len() / 2);
        let (md, salt) = match alg.hash() {
            Some(h) => (
                format!("-{}", h.name().to_lowercase()),
                h.output_len().to_string(),
            ),
            None => (String::new(), String::new()),
        };
        let saltlen = format!("rsa_pss_saltlen:{salt}");
        let mut args: Vec<&str> = match alg.family() {
            Family::Ed25519 => vec![
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg.bin",
                "-sigfile", "sig.bin",
            ],
            _ => vec!["dgst", &md, "-verify", "pub.pem", "-signature", "sig.bin"],
        };
        if alg.family() == Family::RsaPss {
            args.extend(["-sigopt", "rsa_padding_mode:pss", "-sigopt", &saltlen]);
        }
        if alg.family() != Family::Ed25519 {
            args.push("msg.bin");
        }
        std::fs::write(d.join("sig.bin"), &sig).unwrap();
        assert!(
            openssl_status(d, &args),
            "openssl rejected a good {alg} signature"
        );
        std::fs::write(d.join("sig.bin"), &bad).unwrap();
        assert!(
            !openssl_status(d, &args),
            "openssl accepted a bad {alg} signature"
        );
    }
}

#[test]
fn exports_import_back_to_the_same_key() {
    for (alg, k) in &FIXTURE.keys {
        let alg = *alg;
        let Some(pk) = k.public_key() else { continue };
        let mut forms = vec![
            pk.to_pem().into_bytes(),
            pk.spki_der().to_vec(),
            serde_json::to_vec(&pk.to_jwk("k:v1")).unwrap(),
        ];
        if alg.rsa_bits().is_some() {
            forms.push(pk.to_pkcs1_pem().unwrap().into_bytes());
        }
        for form in forms {
            let Material::Public(back) = parse_material(alg, &form).unwrap() else {
                panic!("{alg}: a public form came back private");
            };
            assert_eq!(back.spki_der(), pk.spki_der(), "{alg}");
            let sig = k.sign(SignInput::Message(b"m")).unwrap();
            assert!(back
                .verify(SignInput::Message(b"m"), &sig, SignatureFormat::Raw)
                .unwrap());
        }
    }
}

#[test]
fn jwk_members() {
    let jwk = key(Algorithm::EcdsaP384Sha384)
        .public_key()
        .unwrap()
        .to_jwk("pay:v3");
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-384");
    assert_eq!(jwk["alg"], "ES384");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], "pay:v3");
    assert_eq!(jwk["x"].as_str().unwrap().len(), 64); // 48 bytes, unpadded
    assert_eq!(jwk["y"].as_str().unwrap().len(), 64);
    let jwk = key(Algorithm::RsaPss4096Sha512)
        .public_key()
        .unwrap()
        .to_jwk("r");
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some("RSA"), Some("PS512"))
    );
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(jwk["n"].as_str().unwrap().len(), 683); // 512 bytes
    let jwk = key(Algorithm::Ed25519).public_key().unwrap().to_jwk("e");
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        (jwk["alg"].as_str(), jwk["x"].as_str().map(str::len)),
        (Some("EdDSA"), Some(43))
    );
}

#[test]
fn hmac_matches_rfc_4231() {
    // Test case 2: key "Jefe" (shorter than the import minimum, so the
    // primitive directly).
    let data = b"what do ya want for nothing?";
    let tc2 = [
        (Hash::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (Hash::Sha384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        (Hash::Sha512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    ];
    for (hash, want) in tc2 {
        assert_eq!(hmac_sign(hash, b"Jefe", data).unwrap(), unhex(want));
    }
    // Test case 1: a 20-byte key, through import.
    let backend = MemoryBackend::new();
    let tc1 = [
        (Algorithm::HmacSha256, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Algorithm::HmacSha384, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
        (Algorithm::HmacSha512, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
    ];
    for (alg, want) in tc1 {
        let Material::Private(m) = parse_material(alg, &[0x0b; 20]).unwrap() else {
            panic!("HMAC material is private");
        };
        let k = backend.import(alg.name(), alg, m).unwrap();
        assert_eq!(
            k.sign(SignInput::Message(b"Hi There")).unwrap(),
            unhex(want)
        );
        assert!(k
            .verify_mac(SignInput::Message(b"Hi There"), &[unhex(want)])
            .unwrap());
        let e = k
            .verify_mac(SignInput::Digest(&[0; 32]), &[unhex(want)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn openssl_generated_keys_import_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let backend = MemoryBackend::new();
    let cases: [(Algorithm, &[&str]); 5] = [
        (
            Algorithm::EcdsaP256Sha256,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        (
            Algorithm::EcdsaP384Sha384,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        (
            Algorithm::RsaPkcs1_2048Sha256,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            Algorithm::RsaPss3072Sha256,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        ),
        (Algorithm::Ed25519, &["-algorithm", "ED25519"]),
    ];
    for (i, (alg, gen)) in cases.into_iter().enumerate() {
        let mut args = vec!["genpkey", "-out", "key.pem"];
        args.extend(gen);
        openssl(d, &args);
        // `pkey -outform DER` would write PKCS#1 / SEC1; ask for PKCS#8.
        openssl(
            d,
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out",
                "key.der",
            ],
        );
        openssl(
            d,
            &[
                "pkey", "-in", "key.pem", "-outform", "DER", "-out", "trad.der",
            ],
        );
        openssl(
            d,
            &[
                "pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der",
            ],
        );
        let pub_der = std::fs::read(d.join("pub.der")).unwrap();
        for (j, file) in ["key.pem", "key.der"].into_iter().enumerate() {
            let bytes = std::fs::read(d.join(file)).unwrap();
            let Material::Private(m) = parse_material(alg, &bytes).unwrap() else {
                panic!("{alg}: {file} is private");
            };
            let k = backend.import(&format!("{i}-{j}"), alg, m).unwrap();
            let pk = k.public_key().unwrap();
            assert_eq!(pk.spki_der(), pub_der, "{alg} {file}");
            let sig = k.sign(SignInput::Message(b"imported")).unwrap();
            assert!(pk
                .verify(SignInput::Message(b"imported"), &sig, SignatureFormat::Raw)
                .unwrap());
        }
        // Traditional (PKCS#1 / SEC1) DER is refused with a pointer to PKCS#8.
        if alg != Algorithm::Ed25519 {
            let trad = std::fs::read(d.join("trad.der")).unwrap();
            let e = parse_material(alg, &trad).unwrap_err();
            assert!(e.message().contains("import PKCS#8"), "{alg}: {e:?}");
        }
        // Import into an algorithm of another type, curve or size.
        let wrong = match alg {
            Algorithm::EcdsaP256Sha256 => Algorithm::EcdsaP384Sha384,
            Algorithm::EcdsaP384Sha384 => Algorithm::Ed25519,
            Algorithm::RsaPkcs1_2048Sha256 => Algorithm::RsaPkcs1_4096Sha256,
            Algorithm::RsaPss3072Sha256 => Algorithm::EcdsaP256Sha256,
            _ => Algorithm::RsaPss2048Sha256,
        };
        let der = std::fs::read(d.join("key.der")).unwrap();
        let e = MemoryKey::import(wrong, ImportMaterial::Pkcs8(SecretBytes::new(der))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{alg} as {wrong}");
        let want = match wrong.rsa_bits() {
            Some(_) if alg.rsa_bits().is_some() => format!("RSA key size does not match {wrong}"),
            _ => format!("key material does not match {wrong}"),
        };
        assert_eq!(e.message(), want);
    }
}

#[test]
fn bad_imports_are_invalid_argument() {
    let pkcs8 = |b: &[u8]| ImportMaterial::Pkcs8(SecretBytes::from_slice(b));
    let hmac = |n: usize| ImportMaterial::Secret(SecretBytes::new(vec![1; n]));
    let cases = [
        (Algorithm::HmacSha256, hmac(15)),
        (Algorithm::HmacSha256, hmac(129)),
        (Algorithm::HmacSha256, pkcs8(b"\x30\x00")),
        (Algorithm::Ed25519, hmac(32)),
        (Algorithm::EcdsaP256Sha256, pkcs8(b"")),
        (
            Algorithm::EcdsaP256Sha256,
            pkcs8(b"garbage that is not DER"),
        ),
        (Algorithm::RsaPss2048Sha256, pkcs8(&[0x30; 40])),
    ];
    for (alg, m) in cases {
        let e = MemoryKey::import(alg, m).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{alg}: {e:?}");
    }
    MemoryKey::import(Algorithm::HmacSha256, hmac(16)).unwrap();
    MemoryKey::import(Algorithm::HmacSha256, hmac(128)).unwrap();
    // A 1024-bit RSA key is refused with the size message.
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "k.pem",
        ],
    );
    openssl(
        dir.path(),
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "k.pem", "-outform", "DER", "-out", "k.der",
        ],
    );
    let der = std::fs::read(dir.path().join("k.der")).unwrap();
    let e = MemoryKey::import(Algorithm::RsaPkcs1_2048Sha256, pkcs8(&der)).unwrap_err();
    assert_eq!(
        e.message(),
        "RSA key size does not match RSA_PKCS1_2048_SHA256"
    );
}

#[test]
fn labels_open_and_destroy() {
    let b = MemoryBackend::new();
    assert_eq!(b.protection_level(), ProtectionLevel::Software);
    b.health().unwrap();
    let k = b.generate("k-v1", Algorithm::EcdsaP256Sha256).unwrap();
    let e = b.generate("k-v1", Algorithm::Ed25519).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    let m = ImportMaterial::Secret(SecretBytes::new(vec![9; 32]));
    assert_eq!(
        b.import("k-v1", Algorithm::HmacSha256, m)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    let opened = b.open("k-v1", Algorithm::EcdsaP256Sha256).unwrap();
    assert_eq!(
        opened.public_key().unwrap().spki_der(),
        k.public_key().unwrap().spki_der()
    );
    assert_eq!(
        b.open("k-v1", Algorithm::Ed25519).unwrap_err().kind(),
        ErrorKind::Internal
    );
    assert_eq!(
        b.open("nope", Algorithm::Ed25519).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    b.destroy("k-v1").unwrap();
    b.destroy("k-v1").unwrap();
    assert_eq!(
        b.open("k-v1", Algorithm::EcdsaP256Sha256)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    // A handle taken before destroy keeps working until dropped.
    k.sign(SignInput::Message(b"x")).unwrap();
}

#[test]
fn debug_never_shows_secrets() {
    let b = MemoryBackend::new();
    let secret = b"0123456789abcdef-very-secret";
    let m = ImportMaterial::Secret(SecretBytes::from_slice(secret));
    let k = b.import("mac-v1", Algorithm::HmacSha256, m).unwrap();
    let shown = format!("{k:?} {b:?} {:?}", FIXTURE.backend);
    assert!(
        shown.contains("REDACTED") && shown.contains("HmacSha256"),
        "{shown}"
    );
    assert!(
        shown.contains("mac-v1") && shown.contains("RSA_PSS_4096_SHA512"),
        "{shown}"
    );
    assert!(!shown.contains("very-secret") && !shown.contains(&hex::encode(secret)));
    for (_, k) in &FIXTURE.keys {
        let shown = format!("{k:?}");
        assert!(
            shown.starts_with("MemoryKey { alg: ") && shown.ends_with("secret: \"REDACTED\" }")
        );
    }
}
