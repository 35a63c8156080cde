//! Signing and verifying: every algorithm against OpenSSL, digests, ECDSA
//! encodings, HMAC over an imported secret.

use signet::api::pb::{self, sign_request, verify_request};
use signet::keys::{Algorithm, Family};
use tonic::Code;

use super::*;
use crate::support::{code, openssl, openssl_verify_args, TestServer};

/// Every algorithm: create, sign, verify here, verify with OpenSSL (HMAC with
/// OpenSSL's HMAC over the same data is in its own test), tamper → invalid.
pub async fn every_algorithm_signs_and_openssl_verifies(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let msg = b"amount=1000&currency=EUR&order=\xe2\x82\xac42";
    std::fs::write(dir.path().join("msg.bin"), msg).unwrap();
    // AES keys do not sign (cipher.rs).
    for alg in Algorithm::ALL.into_iter().filter(|a| !a.encrypts()) {
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
