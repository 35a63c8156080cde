//! Wrapped import on SoftHSM2: the import wrapping key is made on the
//! token once and found again after a restart, and wrapped HMAC and AES
//! keys unwrap inside the token and act as themselves. The wrapping is
//! done here with aws-lc-rs directly, not with signet's code.

use aws_lc_rs::key_wrap::{KeyEncryptionKey, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};
use signet::api::pb;
use tonic::Code;

use crate::pkcs11::{config, new_token};
use crate::support::{code, TestServer};

async fn wrapping_key(s: &TestServer) -> Vec<u8> {
    let r = s
        .admin()
        .get_import_wrapping_key(pb::GetImportWrappingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    // SoftHSM2 2.6 takes RSA-OAEP with SHA-1 only, and signet says so
    // (an HSM that takes SHA-256 gets RSA_OAEP_3072_SHA256_AES_256).
    assert_eq!(r.wrapping_scheme, "RSA_OAEP_3072_SHA1_AES_256");
    der::pem::decode_vec(r.public_key_pem.as_bytes()).unwrap().1
}

fn wrap(spki: &[u8], material: &[u8]) -> Vec<u8> {
    let public =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki).unwrap()).unwrap();
    let eph = [0x5au8; 32];
    let mut out = vec![0u8; public.ciphertext_size()];
    let n = public
        .encrypt(&OAEP_SHA1_MGF1SHA1, &eph, &mut out, None)
        .unwrap()
        .len();
    out.truncate(n);
    let mut kwp = vec![0u8; material.len() + 16];
    let k = KeyEncryptionKey::new(&AES_256, &eph)
        .unwrap()
        .wrap_with_padding(material, &mut kwp)
        .unwrap()
        .len();
    out.extend_from_slice(&kwp[..k]);
    out
}

async fn import(
    s: &TestServer,
    name: &str,
    alg: i32,
    wrapped: Vec<u8>,
) -> Result<pb::Key, tonic::Status> {
    s.admin()
        .import_key(pb::ImportKeyRequest {
            name: name.into(),
            algorithm: alg,
            wrapped_material: wrapped,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().key.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_keys_unwrap_on_the_token_and_the_wrapping_key_persists() {
    let label = format!("w{}", uuid::Uuid::new_v4().simple());
    let c = config(new_token(&label[..32]));
    let s = TestServer::start(c.clone()).await;
    let spki = wrapping_key(&s).await;
    assert_eq!(wrapping_key(&s).await, spki, "one wrapping key");

    let secret = b"0123456789abcdef0123456789abcdef";
    crate::support::remember_secret(secret);
    let alg = pb::Algorithm::HmacSha256 as i32;
    import(&s, "mac", alg, wrap(&spki, secret)).await.unwrap();
    let tag = crate::conformance::sign(&s, "mac", b"m").await.signature;
    assert_eq!(tag, signet_hmac(secret, b"m"));
    // Shorter than the hash output: the token cannot use it.
    let short = import(&s, "short", alg, wrap(&spki, &secret[..20]))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    assert!(short.message().contains("zero-pad"), "{}", short.message());

    let aes = pb::Algorithm::Aes256Gcm as i32;
    import(&s, "aes", aes, wrap(&spki, &[3u8; 32]))
        .await
        .unwrap();
    let mut bad = wrap(&spki, &[3u8; 32]);
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        code(import(&s, "aes-bad", aes, bad).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(import(&s, "aes-31", aes, wrap(&spki, &[3u8; 31])).await),
        Code::InvalidArgument
    );
    s.stop().await.unwrap();

    // After a restart: the same wrapping key, and the imported keys.
    let s = TestServer::start(c).await;
    assert_eq!(wrapping_key(&s).await, spki);
    assert_eq!(
        crate::conformance::sign(&s, "mac", b"m").await.signature,
        tag
    );
    s.stop().await.unwrap();
}

fn signet_hmac(key: &[u8], m: &[u8]) -> Vec<u8> {
    aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        m,
    )
    .as_ref()
    .to_vec()
}
