//! Encryption with AES-256-GCM keys (CipherService), on every backend:
//! round trips with associated data, data keys, JWE, rotation with
//! re-encryption, the refusals and their codes, and the durable count
//! that a restart does not reset.

use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::*;
use crate::support::{code, TestServer};

async fn encrypt(
    s: &TestServer,
    key: &str,
    m: &[u8],
    ad: &[u8],
) -> Result<pb::EncryptResponse, tonic::Status> {
    s.cipher()
        .encrypt(pb::EncryptRequest {
            key: key.into(),
            plaintext: m.to_vec(),
            associated_data: ad.to_vec(),
            format: 0,
        })
        .await
        .map(|r| r.into_inner())
}

async fn decrypt(
    s: &TestServer,
    key: &str,
    c: &[u8],
    ad: &[u8],
) -> Result<pb::DecryptResponse, tonic::Status> {
    s.cipher()
        .decrypt(pb::DecryptRequest {
            key: key.into(),
            ciphertext: c.to_vec(),
            associated_data: ad.to_vec(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Encrypt → Decrypt with associated data; a data key; JWE; every refusal
/// with its code; rotation, re-encryption and disabling.
pub async fn aes_keys_encrypt_decrypt_and_rotate(s: &TestServer) {
    create(s, "vault", Algorithm::Aes256Gcm).await;
    create(s, "vault-2", Algorithm::Aes256Gcm).await;
    create(s, "mac", Algorithm::HmacSha256).await;
    let e = encrypt(s, "vault", b"4111 1111 1111 1111", b"cards/1")
        .await
        .unwrap();
    assert_eq!((e.version, e.key_version_id.as_str()), (1, "vault:v1"));
    let d = decrypt(s, "vault", &e.ciphertext, b"cards/1")
        .await
        .unwrap();
    assert_eq!(d.plaintext, b"4111 1111 1111 1111");

    let mut flipped = e.ciphertext.clone();
    *flipped.last_mut().unwrap() ^= 1;
    for r in [
        decrypt(s, "vault", &flipped, b"cards/1").await,
        decrypt(s, "vault", &e.ciphertext, b"cards/2").await,
        decrypt(s, "vault-2", &e.ciphertext, b"cards/1").await,
        decrypt(s, "vault", &e.ciphertext[..32], b"cards/1").await,
        decrypt(s, "mac", &e.ciphertext, b"cards/1").await,
    ] {
        assert_eq!(code(r), Code::InvalidArgument);
    }
    assert_eq!(
        code(encrypt(s, "mac", b"m", b"").await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(try_sign(s, "vault", 0, b"m").await),
        Code::InvalidArgument
    );
    assert_eq!(code(encrypt(s, "nope", b"m", b"").await), Code::NotFound);

    let dk = s
        .cipher()
        .generate_data_key(pb::GenerateDataKeyRequest {
            key: "vault".into(),
            associated_data: b"doc".to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dk.plaintext.len(), 32);
    let back = decrypt(s, "vault", &dk.ciphertext, b"doc").await.unwrap();
    assert_eq!(back.plaintext, dk.plaintext);

    let jwe = s
        .cipher()
        .encrypt(pb::EncryptRequest {
            key: "vault".into(),
            plaintext: b"shared".to_vec(),
            associated_data: vec![],
            format: pb::CiphertextFormat::JweCompact as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(jwe.ciphertext.starts_with(b"eyJ"));
    assert_eq!(
        decrypt(s, "vault", &jwe.ciphertext, b"")
            .await
            .unwrap()
            .plaintext,
        b"shared"
    );

    s.admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "vault".into(),
            promote: true,
            grace_period: None,
        })
        .await
        .unwrap();
    // Ten years on, v1 still decrypts: no grace was set.
    s.advance(std::time::Duration::from_secs(10 * 365 * 86_400))
        .await;
    assert_eq!(
        decrypt(s, "vault", &e.ciphertext, b"cards/1")
            .await
            .unwrap()
            .version,
        1
    );
    let moved = s
        .cipher()
        .re_encrypt(pb::ReEncryptRequest {
            key: "vault".into(),
            ciphertext: e.ciphertext.clone(),
            associated_data: b"cards/1".to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((moved.version, moved.source_version), (2, 1));
    s.admin()
        .disable_key_version(pb::DisableKeyVersionRequest {
            name: "vault".into(),
            version: 1,
        })
        .await
        .unwrap();
    assert_eq!(
        code(decrypt(s, "vault", &e.ciphertext, b"cards/1").await),
        Code::FailedPrecondition
    );
    let d = decrypt(s, "vault", &moved.ciphertext, b"cards/1")
        .await
        .unwrap();
    assert_eq!(
        (d.plaintext.as_slice(), d.version),
        (&b"4111 1111 1111 1111"[..], 2)
    );
    // The count reserved for v1 is in the registry's record.
    let v1 = s.registry.get("vault").unwrap().record.versions[0].clone();
    assert!(v1.encryptions >= 3, "{}", v1.encryptions);
}
