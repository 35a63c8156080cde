//! Wrapped import through the registry on the memory backend, and the
//! switch that refuses secret material in the clear. Against other
//! implementations (pyca, the openssl CLI) and on SoftHSM2: the Python
//! suite (test_interop_byok.py).

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::*;
use crate::error::ErrorKind;
use crate::keys::clock::SystemClock;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::store::NullStore;
use crate::keys::wrap::{wrap, OaepHash};

fn registry(refuse_plaintext_import: bool) -> Registry {
    Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(SystemClock),
        RegistrySettings {
            refuse_plaintext_import,
            ..Default::default()
        },
    )
}

async fn import_wrapped(
    reg: &Registry,
    name: &str,
    alg: Algorithm,
    material: &[u8],
) -> Result<KeyView> {
    let (spki, scheme) = reg.import_wrapping_key().await.unwrap();
    assert_eq!(scheme, "RSA_OAEP_3072_SHA256_AES_256");
    let w = wrap(&spki, OaepHash::Sha256, material).unwrap();
    reg.import(
        name,
        alg,
        ImportSource::Wrapped {
            material: &w,
            public: None,
        },
        false,
        BTreeMap::new(),
    )
    .await
}

#[tokio::test]
async fn wrapped_secrets_and_private_keys_import_as_themselves() {
    let reg = registry(true);
    // The same wrapping key every time (until a restart).
    assert_eq!(
        reg.import_wrapping_key().await.unwrap(),
        reg.import_wrapping_key().await.unwrap()
    );
    let aes = [0u8; 32];
    import_wrapped(&reg, "aes", Algorithm::Aes256Gcm, &aes)
        .await
        .unwrap();
    // GCM spec test case 13 through the registry: the key is the zero key.
    let e = reg
        .encrypt("aes", Zeroizing::new(vec![]), b"", CipherFormat::Signet)
        .await
        .unwrap();
    let s = crate::keys::sealed::parse(&e.ciphertext).unwrap();
    let k = crate::keys::memory::MemoryKey::import(
        Algorithm::Aes256Gcm,
        crate::keys::ImportMaterial::Secret(crate::keys::SecretBytes::from_slice(&aes)),
    )
    .unwrap();
    let aad = crate::keys::sealed::aad(1, "aes", b"");
    assert!(crate::keys::KeyHandle::decrypt(&k, &s.nonce, &aad, s.body).is_ok());

    let secret = b"whsec-style-shared-secret-123456";
    import_wrapped(&reg, "mac", Algorithm::HmacSha256, secret)
        .await
        .unwrap();
    let tag = reg
        .sign(
            "mac",
            None,
            Input::Message(b"m".to_vec()),
            SignatureFormat::Der,
        )
        .await
        .unwrap()
        .signature;
    assert_eq!(
        tag,
        crate::keys::memory::hmac_sign(crate::keys::Hash::Sha256, secret, b"m").unwrap()
    );

    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    use aws_lc_rs::encoding::AsDer;
    let der = pair.to_pkcs8v1().unwrap();
    import_wrapped(&reg, "ec", Algorithm::EcdsaP256Sha256, der.as_ref())
        .await
        .unwrap();
    use aws_lc_rs::signature::KeyPair as _;
    let ours = reg.public_key("ec", None).unwrap();
    assert_eq!(
        ours.key.spki_der(),
        pair.public_key().as_der().unwrap().as_ref()
    );

    // With its public key: taken when it is the pair's, refused (and
    // nothing stored) when it is another key's.
    let (spki, _) = reg.import_wrapping_key().await.unwrap();
    let w = wrap(&spki, OaepHash::Sha256, der.as_ref()).unwrap();
    let own = pair.public_key().as_der().unwrap();
    let other = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    let other = other.public_key().as_der().unwrap();
    for (name, public, ok) in [("ec2", own.as_ref(), true), ("ec3", other.as_ref(), false)] {
        let r = reg
            .import(
                name,
                Algorithm::EcdsaP256Sha256,
                ImportSource::Wrapped {
                    material: &w,
                    public: Some(public),
                },
                false,
                BTreeMap::new(),
            )
            .await;
        assert_eq!(r.is_ok(), ok, "{name}");
        if !ok {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidArgument);
            assert!(reg.public_key(name, None).is_err());
        }
    }
}

#[tokio::test]
async fn bad_wrappings_and_plaintext_are_refused() {
    let reg = registry(true);
    let (spki, _) = reg.import_wrapping_key().await.unwrap();
    let mut w = wrap(&spki, OaepHash::Sha256, &[1u8; 32]).unwrap();
    *w.last_mut().unwrap() ^= 1;
    let e = reg
        .import(
            "k",
            Algorithm::Aes256Gcm,
            ImportSource::Wrapped {
                material: &w,
                public: None,
            },
            false,
            BTreeMap::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("does not unwrap"), "{}", e.message());
    // A 31-byte AES key, wrapped correctly, is still not an AES-256 key.
    let e = import_wrapped(&reg, "k", Algorithm::Aes256Gcm, &[1u8; 31])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // Nothing was stored by the failures.
    assert!(reg.get("k").is_err());

    let e = reg
        .import_key(
            "k",
            Algorithm::HmacSha256,
            &[7u8; 32],
            false,
            BTreeMap::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(
        e.message().contains("refuse_plaintext_import"),
        "{}",
        e.message()
    );
    // A public key is not secret: taken in the clear.
    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;
    let spki = pair.public_key().as_der().unwrap();
    reg.import_key(
        "pub",
        Algorithm::EcdsaP256Sha256,
        spki.as_ref(),
        false,
        BTreeMap::new(),
    )
    .await
    .unwrap();
    // And without the switch, the clear form is taken.
    registry(false)
        .import_key(
            "k",
            Algorithm::HmacSha256,
            &[7u8; 32],
            false,
            BTreeMap::new(),
        )
        .await
        .unwrap();
}
