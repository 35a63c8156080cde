//! Encryption through the registry, on the memory backend: formats,
//! refusals, rotation and the encryption bound. The same behaviour on
//! SoftHSM2, and against other implementations, is checked by the
//! integration and Python tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::counts::BLOCK;
use super::*;
use crate::error::ErrorKind;
use crate::keys::clock::ManualClock;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::store::NullStore;
use crate::keys::{jwe, sealed};

fn registry(max_encryptions: u64) -> (Registry, ManualClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let reg = Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(clock.clone()),
        RegistrySettings {
            max_encryptions,
            ..Default::default()
        },
    );
    (reg, clock)
}

async fn aes(reg: &Registry, name: &str) {
    reg.create_key(name, Algorithm::Aes256Gcm, BTreeMap::new(), None, false)
        .await
        .unwrap();
}

fn pt(b: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(b.to_vec())
}

async fn seal(reg: &Registry, name: &str, m: &[u8], aad: &[u8]) -> Encrypted {
    reg.encrypt(name, pt(m), aad, CipherFormat::Signet)
        .await
        .unwrap()
}

fn kind<T>(r: Result<T>) -> ErrorKind {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.kind(),
    }
}

#[tokio::test]
async fn round_trips_and_refuses_what_does_not_authenticate() {
    let (reg, _) = registry(1 << 32);
    aes(&reg, "a").await;
    aes(&reg, "b").await;
    let e = seal(&reg, "a", b"card 4111", b"order-7").await;
    assert_eq!((e.version, e.key_version_id.as_str()), (1, "a:v1"));
    assert_eq!(e.ciphertext.len(), b"card 4111".len() + sealed::OVERHEAD);
    let d = reg.decrypt("a", &e.ciphertext, b"order-7").await.unwrap();
    assert_eq!(d.plaintext.as_slice(), b"card 4111");
    assert_eq!((d.version, d.format), (1, CipherFormat::Signet));
    // Two encryptions of one message differ (fresh nonces).
    assert_ne!(
        seal(&reg, "a", b"card 4111", b"order-7").await.ciphertext,
        e.ciphertext
    );

    let invalid = ErrorKind::InvalidArgument;
    assert_eq!(
        kind(reg.decrypt("a", &e.ciphertext, b"order-8").await),
        invalid
    );
    assert_eq!(kind(reg.decrypt("a", &e.ciphertext, b"").await), invalid);
    // Another key with a version 1 of its own.
    assert_eq!(
        kind(reg.decrypt("b", &e.ciphertext, b"order-7").await),
        invalid
    );
    for i in 0..e.ciphertext.len() {
        let mut t = e.ciphertext.clone();
        t[i] ^= 0x01;
        let k = kind(reg.decrypt("a", &t, b"order-7").await);
        // The key version byte may now name a version that does not exist.
        assert!(
            matches!(k, ErrorKind::InvalidArgument | ErrorKind::NotFound),
            "{i}: {k:?}"
        );
    }
    for n in [0, 1, 16, sealed::OVERHEAD - 1, e.ciphertext.len() - 1] {
        assert_eq!(
            kind(reg.decrypt("a", &e.ciphertext[..n], b"order-7").await),
            invalid,
            "{n}"
        );
    }
}

#[tokio::test]
async fn keys_of_the_wrong_kind_are_refused_both_ways() {
    let (reg, _) = registry(1 << 32);
    aes(&reg, "aes").await;
    reg.create_key("mac", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap();
    let invalid = ErrorKind::InvalidArgument;
    assert_eq!(
        kind(
            reg.encrypt("mac", pt(b"m"), b"", CipherFormat::Signet)
                .await
        ),
        invalid
    );
    assert_eq!(kind(reg.generate_data_key("mac", b"").await), invalid);
    let sign = reg
        .sign(
            "aes",
            None,
            Input::Message(b"m".to_vec()),
            SignatureFormat::Der,
        )
        .await;
    let e = sign.unwrap_err();
    assert_eq!(e.kind(), invalid);
    assert!(e.message().contains("does not sign"), "{}", e.message());
    let verify = reg
        .verify(
            "aes",
            None,
            Input::Message(b"m".to_vec()),
            vec![vec![0; 32]],
            SignatureFormat::Der,
        )
        .await;
    assert_eq!(kind(verify), invalid);
    assert_eq!(kind(reg.public_key("aes", None)), invalid);
    assert_eq!(kind(reg.jwks("aes")), invalid);
    assert_eq!(
        kind(
            reg.encrypt("nope", pt(b"m"), b"", CipherFormat::Signet)
                .await
        ),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn old_versions_decrypt_until_disabled_and_re_encrypt_moves_forward() {
    let (reg, clock) = registry(1 << 32);
    aes(&reg, "k").await;
    let old = seal(&reg, "k", b"stored", b"row-1").await;
    let (view, v2) = reg.rotate("k", true, None).await.unwrap();
    assert_eq!(v2, 2);
    // No grace was asked for: v1 stays RETIRING, with no end.
    let v1 = &view.record.versions[0];
    assert_eq!(v1.state, VersionState::Retiring);
    assert_eq!(v1.verify_until, None);
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert_eq!(
        reg.decrypt("k", &old.ciphertext, b"row-1")
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(seal(&reg, "k", b"new", b"").await.version, 2);

    let (moved, from) = reg
        .re_encrypt("k", &old.ciphertext, b"row-1")
        .await
        .unwrap();
    assert_eq!((from, moved.version), (1, 2));
    let d = reg.decrypt("k", &moved.ciphertext, b"row-1").await.unwrap();
    assert_eq!((d.plaintext.as_slice(), d.version), (&b"stored"[..], 2));
    assert_eq!(reg.decryptions("k"), [(1, 2), (2, 1)]);

    reg.disable("k", 1).await.unwrap();
    let e = reg
        .decrypt("k", &old.ciphertext, b"row-1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(e.message().contains("DISABLED"), "{}", e.message());
    // An explicit grace still applies to encryption keys.
    let (view, _) = reg
        .rotate("k", true, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(view.record.versions[1].verify_until.is_some());
}

#[tokio::test]
async fn a_version_encrypts_at_most_the_bound_then_rotation_resumes() {
    let (reg, _) = registry(3);
    aes(&reg, "k").await;
    let first = seal(&reg, "k", b"m", b"").await;
    for _ in 0..2 {
        seal(&reg, "k", b"m", b"").await;
    }
    let e = reg
        .encrypt("k", pt(b"m"), b"", CipherFormat::Signet)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(e.message().contains("rotate"), "{}", e.message());
    assert_eq!(
        kind(reg.generate_data_key("k", b"").await),
        ErrorKind::FailedPrecondition
    );
    // The count is in the record, so a restart or a replica sees it.
    assert_eq!(reg.get("k").unwrap().record.versions[0].encryptions, 3);
    // Decryption is not bounded.
    reg.decrypt("k", &first.ciphertext, b"").await.unwrap();
    reg.rotate("k", true, None).await.unwrap();
    assert_eq!(seal(&reg, "k", b"m", b"").await.version, 2);
}

#[tokio::test]
async fn encryptions_are_reserved_in_blocks() {
    let (reg, _) = registry(1 << 32);
    aes(&reg, "k").await;
    assert_eq!(reg.get("k").unwrap().record.versions[0].encryptions, 0);
    for _ in 0..5 {
        seal(&reg, "k", b"m", b"").await;
    }
    // One write covered all five.
    assert_eq!(reg.get("k").unwrap().record.versions[0].encryptions, BLOCK);
}

#[tokio::test]
async fn jwe_and_data_keys() {
    let (reg, _) = registry(1 << 32);
    aes(&reg, "k").await;
    aes(&reg, "other").await;
    let j = reg
        .encrypt("k", pt(b"shared"), b"", CipherFormat::JweCompact)
        .await
        .unwrap();
    let text = String::from_utf8(j.ciphertext.clone()).unwrap();
    assert_eq!(text.split('.').count(), 5);
    let d = reg.decrypt("k", &j.ciphertext, b"").await.unwrap();
    assert_eq!(
        (d.plaintext.as_slice(), d.format),
        (&b"shared"[..], CipherFormat::JweCompact)
    );
    let (moved, _) = reg.re_encrypt("k", &j.ciphertext, b"").await.unwrap();
    assert!(jwe::looks_like_jwe(&moved.ciphertext));
    let invalid = ErrorKind::InvalidArgument;
    assert_eq!(
        kind(reg.decrypt("other", &j.ciphertext, b"").await),
        invalid
    );
    assert_eq!(kind(reg.decrypt("k", &j.ciphertext, b"aad").await), invalid);
    assert_eq!(
        kind(
            reg.encrypt("k", pt(b"m"), b"aad", CipherFormat::JweCompact)
                .await
        ),
        invalid
    );

    let (key, e) = reg.generate_data_key("k", b"ctx").await.unwrap();
    assert_eq!(key.len(), DATA_KEY_LEN);
    let back = reg.decrypt("k", &e.ciphertext, b"ctx").await.unwrap();
    assert_eq!(back.plaintext.as_slice(), key.as_slice());
}

#[tokio::test]
async fn a_policy_rotates_on_the_count_as_well_as_on_time() {
    let (reg, clock) = registry(1 << 32);
    let policy = crate::keys::record::RotationPolicy {
        rotation_period: Duration::from_secs(365 * 86_400),
        pending_period: Duration::ZERO,
        grace_period: None,
        rotate_after_encryptions: Some(10),
    };
    reg.create_key(
        "k",
        Algorithm::Aes256Gcm,
        BTreeMap::new(),
        Some(policy),
        false,
    )
    .await
    .unwrap();
    // Nothing is due before an encryption.
    reg.tick().await;
    assert_eq!(reg.get("k").unwrap().active_version(), 1);
    let first = seal(&reg, "k", b"m", b"").await;
    // The first reservation (a block) passes the count: due at once.
    clock.advance(Duration::from_secs(1));
    reg.tick().await;
    let v = reg.get("k").unwrap();
    assert_eq!(v.active_version(), 2);
    assert_eq!(v.record.versions[0].state, VersionState::Retiring);
    assert_eq!(v.record.versions[0].verify_until, None);
    assert_eq!(seal(&reg, "k", b"m", b"").await.version, 2);
    reg.decrypt("k", &first.ciphertext, b"").await.unwrap();
    // Signing keys cannot have such a policy.
    let e = reg
        .create_key(
            "s",
            Algorithm::HmacSha256,
            BTreeMap::new(),
            Some(policy),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let mut bad = policy;
    bad.rotate_after_encryptions = Some(0);
    assert!(reg
        .create_key("z", Algorithm::Aes256Gcm, BTreeMap::new(), Some(bad), false)
        .await
        .is_err());
}
