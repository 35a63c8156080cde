//! AES-256-GCM in the memory backend: the published test vectors of the
//! GCM specification (McGrew and Viega, test cases 13 and 14: the
//! all-zero 256-bit key and nonce), refusals, and import checks.

use zeroize::Zeroizing;

use super::*;
use crate::keys::sealed::not_authentic;

fn zero_key() -> MemoryKey {
    MemoryKey::import(
        Algorithm::Aes256Gcm,
        ImportMaterial::Secret(SecretBytes::from_slice(&[0u8; 32])),
    )
    .unwrap()
}

#[test]
fn gcm_spec_test_cases_13_and_14() {
    let k = zero_key();
    let nonce = [0u8; 12];
    // Test case 13: empty plaintext, the tag alone.
    assert_eq!(
        hex::encode(k.encrypt(&nonce, b"", b"").unwrap()),
        "530f8afbc74536b9a963b4f1c4cb738b"
    );
    // Test case 14: one zero block.
    let c = k.encrypt(&nonce, b"", &[0u8; 16]).unwrap();
    assert_eq!(
        hex::encode(&c),
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    );
    assert_eq!(
        k.decrypt(&nonce, b"", &c).unwrap(),
        Zeroizing::new(vec![0u8; 16])
    );
}

#[test]
fn what_does_not_authenticate_is_refused_with_one_answer() {
    let k = MemoryKey::generate(Algorithm::Aes256Gcm).unwrap();
    let nonce = [7u8; 12];
    let c = k.encrypt(&nonce, b"aad", b"message").unwrap();
    assert_eq!(c.len(), b"message".len() + 16);
    let want = not_authentic().message().to_owned();
    let mut flipped = c.clone();
    flipped[0] ^= 1;
    for (n, a, body) in [
        ([7u8; 12], &b"aad"[..], &flipped[..]),
        ([7u8; 12], &b"aaD"[..], &c[..]),
        ([8u8; 12], &b"aad"[..], &c[..]),
        ([7u8; 12], &b"aad"[..], &c[..c.len() - 1]),
        ([7u8; 12], &b"aad"[..], &c[..3]),
    ] {
        let e = k.decrypt(&n, a, body).unwrap_err();
        assert_eq!(e.message(), want);
    }
    // Another key of the same algorithm.
    let other = MemoryKey::generate(Algorithm::Aes256Gcm).unwrap();
    assert!(other.decrypt(&nonce, b"aad", &c).is_err());
}

#[test]
fn aes_keys_import_32_bytes_only_and_do_nothing_else() {
    for len in [0, 16, 24, 31, 33, 64] {
        let r = MemoryKey::import(
            Algorithm::Aes256Gcm,
            ImportMaterial::Secret(SecretBytes::from_slice(&vec![1u8; len])),
        );
        assert!(r.is_err(), "{len}");
    }
    let k = zero_key();
    assert!(k.public_key().is_none());
    assert!(k.sign(SignInput::Message(b"m")).is_err());
    assert!(k
        .verify_mac(SignInput::Message(b"m"), &[vec![0; 16]])
        .is_err());
    assert!(!format!("{k:?}").contains("[0, 0"));
    // An HMAC key refuses to encrypt.
    let h = MemoryKey::generate(Algorithm::HmacSha256).unwrap();
    assert!(h.encrypt(&[0; 12], b"", b"m").is_err());
    assert!(h.decrypt(&[0; 12], b"", &[0; 16]).is_err());
}
