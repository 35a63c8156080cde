//! Importing keys: private keys that sign, public keys that only verify.

use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::*;
use crate::support::{code, openssl, openssl_verify_args, TestServer};

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
        .into_inner()
        .key
        .unwrap();
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
        .into_inner()
        .key
        .unwrap();
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
