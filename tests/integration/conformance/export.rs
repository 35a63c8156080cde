//! Public key export: every format, and the JWKS.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::*;
use crate::support::{code, openssl, TestServer};

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
