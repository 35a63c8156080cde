//! The backend-agnostic conformance suite: what every backend must do,
//! through the gRPC API. `conformance_suite!(start_expr)` instantiates every
//! test against a server started by `start_expr`.

use std::collections::HashMap;
use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use prost::Message;
use signet::api::pb::{self, sign_request, verify_request};
use signet::keys::{Algorithm, Family};
use tonic::Code;

use crate::support::{code, openssl, openssl_verify_args, TestServer};

macro_rules! conformance_suite {
    ($start:expr) => {
        conformance_suite!(@tests $start;
            every_algorithm_signs_and_openssl_verifies,
            digests_sign_like_messages,
            ecdsa_raw_and_der,
            hmac_matches_openssl_for_imported_secret,
            imported_private_keys_sign,
            imported_public_keys_verify_only,
            rotation_walk_with_grace,
            rotate_and_promote_in_one_step,
            disable_destroy_restore,
            rotation_policy_rotates,
            public_key_formats,
            jwks_lists_published_versions,
            bad_input_gets_documented_codes,
            concurrent_rotations_of_one_key,
            no_secret_in_responses,
            list_keys_pages
        );
    };
    (@tests $start:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let server = $start.await;
                $crate::conformance::$name(&server).await;
                server.stop().await.expect("clean shutdown");
            }
        )*
    };
}

fn alg_pb(a: Algorithm) -> i32 {
    pb::Algorithm::from_str_name(a.name()).unwrap() as i32
}

pub async fn create(s: &TestServer, name: &str, alg: Algorithm) -> pb::Key {
    s.admin()
        .create_key(pb::CreateKeyRequest {
            name: name.into(),
            algorithm: alg_pb(alg),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn sign(s: &TestServer, key: &str, msg: &[u8]) -> pb::SignResponse {
    try_sign(s, key, 0, msg).await.unwrap()
}

pub async fn try_sign(
    s: &TestServer,
    key: &str,
    version: u32,
    msg: &[u8],
) -> Result<pb::SignResponse, tonic::Status> {
    s.signer()
        .sign(pb::SignRequest {
            key: key.into(),
            version,
            input: Some(sign_request::Input::Message(msg.to_vec())),
            signature_format: 0,
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn verify(s: &TestServer, key: &str, msg: &[u8], sig: &[u8]) -> pb::VerifyResponse {
    try_verify(s, key, 0, msg, sig).await.unwrap()
}

pub async fn try_verify(
    s: &TestServer,
    key: &str,
    version: u32,
    msg: &[u8],
    sig: &[u8],
) -> Result<pb::VerifyResponse, tonic::Status> {
    s.signer()
        .verify(pb::VerifyRequest {
            key: key.into(),
            version,
            input: Some(verify_request::Input::Message(msg.to_vec())),
            signature: sig.to_vec(),
            signature_format: 0,
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn pem(s: &TestServer, key: &str, version: u32) -> String {
    let r = s
        .signer()
        .get_public_key(pb::GetPublicKeyRequest {
            key: key.into(),
            version,
            format: pb::PublicKeyFormat::Pem as i32,
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8(r.public_key).unwrap()
}

async fn get(s: &TestServer, key: &str) -> pb::Key {
    s.admin()
        .get_key(pb::GetKeyRequest { name: key.into() })
        .await
        .unwrap()
        .into_inner()
}

fn state_of(k: &pb::Key, v: u32) -> pb::KeyVersionState {
    k.versions
        .iter()
        .find(|x| x.version == v)
        .map(|x| x.state())
        .unwrap()
}

fn dur(secs: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: secs,
        nanos: 0,
    })
}

/// Every algorithm: create, sign, verify here, verify with OpenSSL (HMAC with
/// OpenSSL's HMAC over the same data is in its own test), tamper → invalid.
pub async fn every_algorithm_signs_and_openssl_verifies(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let msg = b"amount=1000&currency=EUR&order=\xe2\x82\xac42";
    std::fs::write(dir.path().join("msg.bin"), msg).unwrap();
    for alg in Algorithm::ALL {
        let name = alg.name().to_ascii_lowercase().replace('_', "-");
        let key = create(s, &name, alg).await;
        assert_eq!(key.active_version, 1);
        assert_eq!(state_of(&key, 1), pb::KeyVersionState::Active);
        let sig = sign(s, &name, msg).await;
        assert_eq!(sig.version, 1);
        assert_eq!(sig.key_version_id, format!("{name}:v1"));
        assert_eq!(sig.algorithm, alg_pb(alg));
        let v = verify(s, &name, msg, &sig.signature).await;
        assert!(v.valid, "{alg} signature must verify");
        assert_eq!(v.version, 1);
        let mut bad = sig.signature.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(
            !verify(s, &name, msg, &bad).await.valid,
            "{alg}: tampered signature"
        );
        assert!(
            !verify(s, &name, b"other", &sig.signature).await.valid,
            "{alg}: other message"
        );
        if alg.family() == Family::Hmac {
            continue;
        }
        std::fs::write(dir.path().join("pub.pem"), pem(s, &name, 0).await).unwrap();
        std::fs::write(dir.path().join("sig.bin"), &sig.signature).unwrap();
        let (ok, out) = openssl(dir.path(), &openssl_verify_args(alg));
        assert!(ok, "openssl rejects the {alg} signature: {out}");
        std::fs::write(dir.path().join("sig.bin"), &bad).unwrap();
        let (ok, _) = openssl(dir.path(), &openssl_verify_args(alg));
        assert!(!ok, "openssl accepts a tampered {alg} signature");
    }
}

/// A signature over a digest is a signature over the message, both ways.
pub async fn digests_sign_like_messages(s: &TestServer) {
    let msg = b"digest me";
    for alg in [
        Algorithm::RsaPkcs1_2048Sha256,
        Algorithm::RsaPss2048Sha256,
        Algorithm::EcdsaP256Sha256,
        Algorithm::EcdsaP384Sha384,
    ] {
        let name = format!("d-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        create(s, &name, alg).await;
        let digest = alg.hash().unwrap().digest(msg);
        let sig = s
            .signer()
            .sign(pb::SignRequest {
                key: name.clone(),
                input: Some(sign_request::Input::Digest(digest.clone())),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(verify(s, &name, msg, &sig.signature).await.valid, "{alg}");
        let by_msg = sign(s, &name, msg).await;
        let v = s
            .signer()
            .verify(pb::VerifyRequest {
                key: name.clone(),
                input: Some(verify_request::Input::Digest(digest.clone())),
                signature: by_msg.signature,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(v.valid, "{alg}: message signature verifies by digest");
        let short = &digest[..digest.len() - 1];
        let r = s
            .signer()
            .sign(pb::SignRequest {
                key: name.clone(),
                input: Some(sign_request::Input::Digest(short.to_vec())),
                ..Default::default()
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument, "{alg}: short digest");
    }
    for alg in [Algorithm::Ed25519, Algorithm::HmacSha256] {
        let name = format!("nd-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        create(s, &name, alg).await;
        let r = s
            .signer()
            .sign(pb::SignRequest {
                key: name,
                input: Some(sign_request::Input::Digest(vec![0; 32])),
                ..Default::default()
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument, "{alg} refuses digests");
    }
}

/// ECDSA raw r‖s has the fixed width and verifies in raw form; DER is DER.
/// floor(n / 2) of P-256 and P-384 (SEC 2), big-endian hex.
const HALF_ORDER_P256: &str = "7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8";
const HALF_ORDER_P384: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffe3b1a6c0fa1b96efac0d06d9245853bd76760cb5666294b9";

pub async fn ecdsa_raw_and_der(s: &TestServer) {
    for (alg, width, half) in [
        (Algorithm::EcdsaP256Sha256, 64, HALF_ORDER_P256),
        (Algorithm::EcdsaP384Sha384, 96, HALF_ORDER_P384),
    ] {
        let name = format!("r-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        create(s, &name, alg).await;
        // Every signature is low-S (s <= n/2), whichever backend made it:
        // equal-width big-endian bytes compare as numbers.
        let half = hex::decode(half).unwrap();
        for i in 0..32u8 {
            let raw = s
                .signer()
                .sign(pb::SignRequest {
                    key: name.clone(),
                    input: Some(sign_request::Input::Message(vec![i])),
                    signature_format: pb::SignatureFormat::Raw as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .signature;
            assert!(raw[width / 2..] <= half[..], "high S in signature {i}");
        }
        let raw = s
            .signer()
            .sign(pb::SignRequest {
                key: name.clone(),
                input: Some(sign_request::Input::Message(b"m".to_vec())),
                signature_format: pb::SignatureFormat::Raw as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .signature;
        assert_eq!(raw.len(), width);
        let v = |sig: Vec<u8>, fmt: pb::SignatureFormat| {
            let mut c = s.signer();
            let name = name.clone();
            async move {
                c.verify(pb::VerifyRequest {
                    key: name,
                    input: Some(verify_request::Input::Message(b"m".to_vec())),
                    signature: sig,
                    signature_format: fmt as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .valid
            }
        };
        assert!(v(raw.clone(), pb::SignatureFormat::Raw).await);
        assert!(!v(raw.clone(), pb::SignatureFormat::Der).await);
        let der = sign(s, &name, b"m").await.signature;
        assert_eq!(der[0], 0x30, "DER SEQUENCE");
        assert!(v(der.clone(), pb::SignatureFormat::Der).await);
        assert!(!v(der, pb::SignatureFormat::Raw).await);
    }
}

/// HMAC over an imported secret equals OpenSSL's HMAC.
pub async fn hmac_matches_openssl_for_imported_secret(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let secret: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let msg = b"{\"event\":\"payment.succeeded\"}";
    std::fs::write(dir.path().join("msg.bin"), msg).unwrap();
    for (alg, dgst) in [
        (Algorithm::HmacSha256, "-sha256"),
        (Algorithm::HmacSha384, "-sha384"),
        (Algorithm::HmacSha512, "-sha512"),
    ] {
        let name = format!("imp-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        s.admin()
            .import_key(pb::ImportKeyRequest {
                name: name.clone(),
                algorithm: alg_pb(alg),
                material: secret.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let sig = sign(s, &name, msg).await.signature;
        let hexkey = format!("hexkey:{}", hex::encode(&secret));
        let (ok, out) = openssl(
            dir.path(),
            &[
                "dgst", dgst, "-mac", "HMAC", "-macopt", &hexkey, "-hex", "msg.bin",
            ],
        );
        assert!(ok, "{out}");
        let expected = out.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(hex::encode(&sig), expected, "{alg}");
        assert!(verify(s, &name, msg, &sig).await.valid);
        assert!(
            !verify(s, &name, msg, &sig[..sig.len() - 1]).await.valid,
            "truncated tag"
        );
    }
    // Too short and too long secrets are refused.
    for len in [15usize, 129] {
        let r = s
            .admin()
            .import_key(pb::ImportKeyRequest {
                name: format!("short{len}"),
                algorithm: alg_pb(Algorithm::HmacSha256),
                material: vec![1; len],
                ..Default::default()
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument);
    }
}

/// PKCS#8 keys made by OpenSSL import and sign; OpenSSL verifies.
pub async fn imported_private_keys_sign(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(Algorithm, &[&str]); 3] = [
        (
            Algorithm::EcdsaP256Sha256,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        (
            Algorithm::RsaPkcs1_2048Sha256,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (Algorithm::Ed25519, &["-algorithm", "ED25519"]),
    ];
    std::fs::write(dir.path().join("msg.bin"), b"imported").unwrap();
    for (alg, gen) in cases {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(gen);
        args.extend_from_slice(&["-out", "key.pem"]);
        assert!(openssl(dir.path(), &args).0);
        let (ok, out) = openssl(
            dir.path(),
            &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
        );
        assert!(ok, "{out}");
        let name = format!("ossl-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        let material = std::fs::read(dir.path().join("key.pem")).unwrap();
        s.admin()
            .import_key(pb::ImportKeyRequest {
                name: name.clone(),
                algorithm: alg_pb(alg),
                material,
                ..Default::default()
            })
            .await
            .unwrap();
        // The exported public key is OpenSSL's own.
        let ours = pem(s, &name, 0).await;
        let theirs = std::fs::read_to_string(dir.path().join("pub.pem")).unwrap();
        assert_eq!(ours.trim(), theirs.trim(), "{alg}");
        let sig = sign(s, &name, b"imported").await.signature;
        std::fs::write(dir.path().join("sig.bin"), sig).unwrap();
        let (ok, out) = openssl(dir.path(), &openssl_verify_args(alg));
        assert!(ok, "{alg}: {out}");
    }
    // A key of the wrong type or size is refused and nothing is created.
    let material = std::fs::read(dir.path().join("key.pem")).unwrap(); // Ed25519
    let r = s
        .admin()
        .import_key(pb::ImportKeyRequest {
            name: "wrong".into(),
            algorithm: alg_pb(Algorithm::EcdsaP256Sha256),
            material,
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    let r = s
        .admin()
        .get_key(pb::GetKeyRequest {
            name: "wrong".into(),
        })
        .await;
    assert_eq!(code(r), Code::NotFound);
}

/// A counterparty's public key verifies its signatures and never signs.
pub async fn imported_public_keys_verify_only(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        openssl(
            dir.path(),
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
                "k.pem"
            ]
        )
        .0
    );
    assert!(
        openssl(
            dir.path(),
            &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]
        )
        .0
    );
    std::fs::write(dir.path().join("msg.bin"), b"from the platform").unwrap();
    assert!(
        openssl(
            dir.path(),
            &["dgst", "-sha384", "-sign", "k.pem", "-out", "sig.bin", "msg.bin"]
        )
        .0
    );
    let k = s
        .admin()
        .import_key(pb::ImportKeyRequest {
            name: "platform".into(),
            algorithm: alg_pb(Algorithm::EcdsaP384Sha384),
            material: std::fs::read(dir.path().join("pub.pem")).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(k.verify_only);
    assert!(k.versions[0].public_key_only);
    let sig = std::fs::read(dir.path().join("sig.bin")).unwrap();
    let v = verify(s, "platform", b"from the platform", &sig).await;
    assert!(v.valid);
    assert_eq!(v.key_version_id, "platform:v1");
    assert!(!verify(s, "platform", b"forged", &sig).await.valid);
    assert_eq!(
        code(try_sign(s, "platform", 0, b"x").await),
        Code::FailedPrecondition
    );
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "platform".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), Code::FailedPrecondition);
    // The same key as a JWK, as a new version.
    let jwk = s
        .signer()
        .get_public_key(pb::GetPublicKeyRequest {
            key: "platform".into(),
            version: 1,
            format: pb::PublicKeyFormat::Jwk as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .public_key;
    let k = s
        .admin()
        .import_key(pb::ImportKeyRequest {
            name: "platform".into(),
            algorithm: alg_pb(Algorithm::EcdsaP384Sha384),
            material: jwk,
            as_new_version: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&k, 2), pb::KeyVersionState::Pending);
    // Private material cannot be added to a verify-only key.
    let r = s
        .admin()
        .import_key(pb::ImportKeyRequest {
            name: "platform".into(),
            algorithm: alg_pb(Algorithm::EcdsaP384Sha384),
            material: std::fs::read(dir.path().join("k.pem")).unwrap(),
            as_new_version: true,
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
}

/// RotateKey → old still signs; promote → new signs, old verifies until the
/// grace runs out, then not.
pub async fn rotation_walk_with_grace(s: &TestServer) {
    create(s, "walk", Algorithm::EcdsaP256Sha256).await;
    let old = sign(s, "walk", b"m").await;
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "walk".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let v2 = r.version.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.state(), pb::KeyVersionState::Pending);
    assert_eq!(r.key.unwrap().active_version, 1);
    assert_eq!(
        sign(s, "walk", b"m").await.version,
        1,
        "old version still signs"
    );
    assert_eq!(
        code(try_sign(s, "walk", 2, b"m").await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(try_verify(s, "walk", 2, b"m", &old.signature).await),
        Code::FailedPrecondition
    );

    let k = s
        .admin()
        .promote_key_version(pb::PromoteKeyVersionRequest {
            name: "walk".into(),
            version: 2,
            grace_period: dur(60),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(k.active_version, 2);
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    let until = k.versions[0].verify_until.unwrap();
    assert_eq!(
        until,
        prost_types::Timestamp::from(s.now() + Duration::from_secs(60))
    );
    let new = sign(s, "walk", b"m").await;
    assert_eq!(new.version, 2);
    assert_eq!(
        code(try_sign(s, "walk", 1, b"m").await),
        Code::FailedPrecondition
    );
    let v = verify(s, "walk", b"m", &old.signature).await;
    assert!(v.valid);
    assert_eq!(v.version, 1, "old signature verifies with v1 during grace");
    assert_eq!(verify(s, "walk", b"m", &new.signature).await.version, 2);

    s.advance(Duration::from_secs(59)).await;
    assert!(verify(s, "walk", b"m", &old.signature).await.valid);
    s.advance(Duration::from_secs(1)).await;
    assert!(
        !verify(s, "walk", b"m", &old.signature).await.valid,
        "grace over"
    );
    assert_eq!(
        state_of(&get(s, "walk").await, 1),
        pb::KeyVersionState::Disabled
    );
    assert!(verify(s, "walk", b"m", &new.signature).await.valid);
}

/// RotateKey with promote=true creates and promotes at once.
pub async fn rotate_and_promote_in_one_step(s: &TestServer) {
    create(s, "quick", Algorithm::HmacSha512).await;
    let old = sign(s, "quick", b"m").await;
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "quick".into(),
            promote: true,
            grace_period: dur(5),
        })
        .await
        .unwrap()
        .into_inner();
    let k = r.key.unwrap();
    assert_eq!(k.active_version, 2);
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    assert_eq!(sign(s, "quick", b"m").await.version, 2);
    assert_eq!(verify(s, "quick", b"m", &old.signature).await.version, 1);
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "quick".into(),
            promote: true,
            grace_period: Some(prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument, "grace under 1s");
}

/// Disable, enable, destroy with delay, restore; DESTROYED is final.
pub async fn disable_destroy_restore(s: &TestServer) {
    create(s, "life", Algorithm::Ed25519).await;
    let old = sign(s, "life", b"m").await;
    s.admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "life".into(),
            promote: true,
            grace_period: dur(3600),
        })
        .await
        .unwrap();
    let admin = || s.admin();
    let dis = |v| pb::DisableKeyVersionRequest {
        name: "life".into(),
        version: v,
    };
    assert_eq!(
        code(admin().disable_key_version(dis(2)).await),
        Code::FailedPrecondition,
        "ACTIVE"
    );
    let k = admin()
        .disable_key_version(dis(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Disabled);
    assert!(
        !verify(s, "life", b"m", &old.signature).await.valid,
        "disabled does not verify"
    );
    assert_eq!(
        code(try_verify(s, "life", 1, b"m", &old.signature).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(try_sign(s, "life", 1, b"m").await),
        Code::FailedPrecondition
    );

    let k = admin()
        .enable_key_version(pb::EnableKeyVersionRequest {
            name: "life".into(),
            version: 1,
            grace_period: dur(10),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    assert!(
        verify(s, "life", b"m", &old.signature).await.valid,
        "enabled verifies again"
    );
    admin().disable_key_version(dis(1)).await.unwrap();

    let destroy = |v| pb::DestroyKeyVersionRequest {
        name: "life".into(),
        version: v,
    };
    assert_eq!(
        code(admin().destroy_key_version(destroy(2)).await),
        Code::FailedPrecondition
    );
    let k = admin()
        .destroy_key_version(destroy(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::DestroyScheduled);
    assert!(k.versions[0].destroy_time.is_some());
    let restore = |v| pb::RestoreKeyVersionRequest {
        name: "life".into(),
        version: v,
    };
    let k = admin()
        .restore_key_version(restore(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Disabled);
    assert_eq!(
        code(admin().restore_key_version(restore(1)).await),
        Code::FailedPrecondition
    );
    admin().destroy_key_version(destroy(1)).await.unwrap();
    s.advance(Duration::from_secs(24 * 3600)).await;
    let k = get(s, "life").await;
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Destroyed);
    assert_eq!(
        code(admin().restore_key_version(restore(1)).await),
        Code::FailedPrecondition
    );
    let r = s
        .signer()
        .get_public_key(pb::GetPublicKeyRequest {
            key: "life".into(),
            version: 1,
            format: 0,
        })
        .await;
    assert_eq!(code(r), Code::FailedPrecondition);
    assert_eq!(
        sign(s, "life", b"m").await.version,
        2,
        "the key still signs"
    );
}

/// A rotation policy creates a PENDING version, then promotes it.
pub async fn rotation_policy_rotates(s: &TestServer) {
    let k = s
        .admin()
        .create_key(pb::CreateKeyRequest {
            name: "auto".into(),
            algorithm: alg_pb(Algorithm::EcdsaP256Sha256),
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: dur(90 * 86400),
                pending_period: dur(7 * 86400),
                grace_period: dur(86400),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let next = k.next_rotation_time.unwrap();
    assert_eq!(
        next,
        prost_types::Timestamp::from(s.now() + Duration::from_secs(83 * 86400))
    );
    s.advance(Duration::from_secs(83 * 86400)).await;
    let k = get(s, "auto").await;
    assert_eq!(state_of(&k, 2), pb::KeyVersionState::Pending);
    assert_eq!(k.active_version, 1);
    s.advance(Duration::from_secs(7 * 86400)).await;
    let k = get(s, "auto").await;
    assert_eq!(k.active_version, 2);
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    assert_eq!(sign(s, "auto", b"m").await.version, 2);
    let bad = s
        .admin()
        .create_key(pb::CreateKeyRequest {
            name: "badpolicy".into(),
            algorithm: alg_pb(Algorithm::EcdsaP256Sha256),
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: dur(10),
                pending_period: dur(10),
                grace_period: None,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(code(bad), Code::InvalidArgument);
}

/// PEM, PKCS#1 PEM, DER and JWK describe the same key.
pub async fn public_key_formats(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    create(s, "fmt-rsa", Algorithm::RsaPkcs1_2048Sha256).await;
    create(s, "fmt-ec", Algorithm::EcdsaP256Sha256).await;
    create(s, "fmt-hmac", Algorithm::HmacSha256).await;
    let get = |key: &str, f: pb::PublicKeyFormat| {
        let mut c = s.signer();
        let key = key.to_string();
        async move {
            c.get_public_key(pb::GetPublicKeyRequest {
                key,
                version: 0,
                format: f as i32,
            })
            .await
        }
    };
    for key in ["fmt-rsa", "fmt-ec"] {
        let pem = get(key, pb::PublicKeyFormat::Pem)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(pem.format(), pb::PublicKeyFormat::Pem);
        let der = get(key, pb::PublicKeyFormat::Der)
            .await
            .unwrap()
            .into_inner()
            .public_key;
        std::fs::write(dir.path().join("p.pem"), &pem.public_key).unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &[
                "pkey", "-pubin", "-in", "p.pem", "-outform", "DER", "-out", "p.der",
            ],
        );
        assert!(ok, "{out}");
        assert_eq!(
            std::fs::read(dir.path().join("p.der")).unwrap(),
            der,
            "{key}: PEM and DER agree"
        );
        let jwk = get(key, pb::PublicKeyFormat::Jwk)
            .await
            .unwrap()
            .into_inner()
            .public_key;
        let jwk: serde_json::Value = serde_json::from_slice(&jwk).unwrap();
        assert_eq!(jwk["kid"], format!("{key}:v1"));
        assert_eq!(jwk["use"], "sig");
    }
    let pkcs1 = get("fmt-rsa", pb::PublicKeyFormat::PemPkcs1)
        .await
        .unwrap()
        .into_inner()
        .public_key;
    let pkcs1 = String::from_utf8(pkcs1).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    std::fs::write(dir.path().join("p1.pem"), &pkcs1).unwrap();
    let (ok, out) = openssl(
        dir.path(),
        &[
            "rsa",
            "-RSAPublicKey_in",
            "-in",
            "p1.pem",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "p1.der",
        ],
    );
    assert!(ok, "{out}");
    let der = get("fmt-rsa", pb::PublicKeyFormat::Der)
        .await
        .unwrap()
        .into_inner()
        .public_key;
    assert_eq!(std::fs::read(dir.path().join("p1.der")).unwrap(), der);
    let jwk: serde_json::Value = serde_json::from_slice(
        &get("fmt-rsa", pb::PublicKeyFormat::Jwk)
            .await
            .unwrap()
            .into_inner()
            .public_key,
    )
    .unwrap();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert_eq!(
        code(get("fmt-ec", pb::PublicKeyFormat::PemPkcs1).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(get("fmt-hmac", pb::PublicKeyFormat::Pem).await),
        Code::InvalidArgument
    );
}

/// JWKS holds PENDING, ACTIVE and RETIRING versions with kid = NAME:vN.
pub async fn jwks_lists_published_versions(s: &TestServer) {
    create(s, "jw", Algorithm::Ed25519).await;
    let rot = |promote| pb::RotateKeyRequest {
        name: "jw".into(),
        promote,
        grace_period: dur(100),
    };
    s.admin().rotate_key(rot(true)).await.unwrap(); // v1 RETIRING, v2 ACTIVE
    s.admin().rotate_key(rot(true)).await.unwrap(); // v2 RETIRING, v3 ACTIVE
    s.admin().rotate_key(rot(false)).await.unwrap(); // v4 PENDING
    s.admin()
        .disable_key_version(pb::DisableKeyVersionRequest {
            name: "jw".into(),
            version: 1,
        })
        .await
        .unwrap();
    let jwks = s
        .signer()
        .get_jwks(pb::GetJwksRequest { key: "jw".into() })
        .await
        .unwrap()
        .into_inner()
        .jwks;
    let doc: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let kids: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["jw:v4", "jw:v3", "jw:v2"]);
    for k in doc["keys"].as_array().unwrap() {
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert!(k.get("d").is_none());
    }
}

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

/// Concurrent rotations of one key all land, in order, with one ACTIVE.
pub async fn concurrent_rotations_of_one_key(s: &TestServer) {
    create(s, "busy", Algorithm::EcdsaP256Sha256).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut c = s.admin();
        tasks.push(tokio::spawn(async move {
            c.rotate_key(pb::RotateKeyRequest {
                name: "busy".into(),
                promote: i % 2 == 0,
                grace_period: None,
            })
            .await
            .map(|r| r.into_inner().version.unwrap().version)
        }));
    }
    // Signing goes on while they run.
    for _ in 0..20 {
        let s1 = sign(s, "busy", b"m").await;
        assert!(verify(s, "busy", b"m", &s1.signature).await.valid);
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (2..=13).collect::<Vec<_>>());
    let k = get(s, "busy").await;
    let active: Vec<_> = k
        .versions
        .iter()
        .filter(|v| v.state() == pb::KeyVersionState::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].version, k.active_version);
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

/// ListKeys pages through every key in name order.
pub async fn list_keys_pages(s: &TestServer) {
    for i in 0..7 {
        create(s, &format!("page-{i}"), Algorithm::HmacSha256).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let r = s
            .admin()
            .list_keys(pb::ListKeysRequest {
                page_size: 3,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.keys.len() <= 3);
        names.extend(r.keys.into_iter().map(|k| k.name));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let expected: Vec<String> = (0..7).map(|i| format!("page-{i}")).collect();
    let got: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with("page-"))
        .collect();
    assert_eq!(got, expected);
    let r = s
        .admin()
        .list_keys(pb::ListKeysRequest {
            page_size: 5000,
            page_token: String::new(),
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    let r = s
        .admin()
        .list_keys(pb::ListKeysRequest {
            page_size: 1,
            page_token: "%%%".into(),
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
}
