//! Refusals: bad input gets the documented codes; no secret ever comes back.

use std::collections::HashMap;

use prost::Message;
use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::*;
use crate::support::{code, TestServer};

/// Bad input gets the documented codes; the server stays up.
pub async fn bad_input_gets_documented_codes(s: &TestServer) {
    create(s, "ok", Algorithm::EcdsaP256Sha256).await;
    assert_eq!(code(try_sign(s, "missing", 0, b"m").await), Code::NotFound);
    assert_eq!(
        code(try_verify(s, "missing", 0, b"m", b"s").await),
        Code::NotFound
    );
    assert_eq!(code(try_sign(s, "ok", 9, b"m").await), Code::NotFound);
    for bad in ["", "Upper", "-lead", "a b", "x/y", &"a".repeat(65)] {
        assert_eq!(
            code(try_sign(s, bad, 0, b"m").await),
            Code::InvalidArgument,
            "{bad:?}"
        );
        let r = s
            .admin()
            .create_key(pb::CreateKeyRequest {
                name: bad.into(),
                algorithm: alg_pb(Algorithm::Ed25519),
                ..Default::default()
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument, "{bad:?}");
    }
    // Oversized message: over the configured limit (1 MiB by default).
    let big = vec![0u8; 1024 * 1024 + 1];
    assert_eq!(
        code(try_sign(s, "ok", 0, &big).await),
        Code::InvalidArgument
    );
    let exact = vec![0u8; 1024 * 1024];
    assert!(try_sign(s, "ok", 0, &exact).await.is_ok());
    // No input at all.
    let r = s
        .signer()
        .sign(pb::SignRequest {
            key: "ok".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    // Garbage key material.
    for garbage in [
        b"-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n".to_vec(),
        b"\x30\x82\x01\x00garbage".to_vec(),
        b"{\"kty\":\"EC\"}".to_vec(),
        Vec::new(),
    ] {
        let r = s
            .admin()
            .import_key(pb::ImportKeyRequest {
                name: "garbage".into(),
                algorithm: alg_pb(Algorithm::EcdsaP256Sha256),
                material: garbage,
                ..Default::default()
            })
            .await;
        let st = r.expect_err("garbage must be refused");
        assert_eq!(st.code(), Code::InvalidArgument);
        assert!(
            !st.message().contains("not base64"),
            "material echoed: {}",
            st.message()
        );
    }
    // Unspecified or unknown algorithm.
    for alg in [0, 999] {
        let r = s
            .admin()
            .create_key(pb::CreateKeyRequest {
                name: "noalg".into(),
                algorithm: alg,
                ..Default::default()
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument);
    }
    // Name taken.
    assert_eq!(
        code(
            s.admin()
                .create_key(pb::CreateKeyRequest {
                    name: "ok".into(),
                    algorithm: alg_pb(Algorithm::Ed25519),
                    ..Default::default()
                })
                .await
        ),
        Code::AlreadyExists
    );
    // Version 0 where one is required.
    assert_eq!(
        code(
            s.admin()
                .promote_key_version(pb::PromoteKeyVersionRequest {
                    name: "ok".into(),
                    version: 0,
                    grace_period: None
                })
                .await
        ),
        Code::InvalidArgument
    );
    // Malformed signatures are simply invalid.
    assert!(!verify(s, "ok", b"m", b"").await.valid);
    assert!(!verify(s, "ok", b"m", &[0x30; 200]).await.valid);
    // Still serving.
    assert!(
        verify(s, "ok", b"m", &sign(s, "ok", b"m").await.signature)
            .await
            .valid
    );
}

/// No response carries the secret: imported HMAC bytes never come back.
pub async fn no_secret_in_responses(s: &TestServer) {
    let secret = b"this-is-a-very-secret-hmac-key-0123456789".to_vec();
    let k = s
        .admin()
        .import_key(pb::ImportKeyRequest {
            name: "secret".into(),
            algorithm: alg_pb(Algorithm::HmacSha256),
            material: secret.clone(),
            labels: HashMap::from([("team".into(), "payments".into())]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let contains = |hay: &[u8]| hay.windows(8).any(|w| secret.windows(8).any(|s| s == w));
    assert!(!contains(&k.encode_to_vec()));
    assert!(!contains(&get(s, "secret").await.encode_to_vec()));
    let list = s
        .admin()
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!contains(&list.encode_to_vec()));
    let st = s
        .signer()
        .get_public_key(pb::GetPublicKeyRequest {
            key: "secret".into(),
            version: 0,
            format: 0,
        })
        .await
        .unwrap_err();
    assert!(!contains(st.message().as_bytes()));
    assert!(
        !contains(format!("{:?}", s.registry).as_bytes()),
        "Debug of the registry"
    );
}
