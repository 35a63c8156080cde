//! Wrapped export through the registry, on the memory backend: what is
//! exported unwraps to the secret the key uses, and nothing that is not
//! exportable leaves. The same on SoftHSM2, and with other
//! implementations unwrapping, is checked by the Python tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::Mac;

use super::*;
use crate::error::ErrorKind;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::store::NullStore;
use crate::keys::wrap::{OaepHash, Recipient, SoftWrappingKey};

fn registry() -> Registry {
    Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(crate::keys::clock::SystemClock),
        RegistrySettings::default(),
    )
}

fn kind<T>(r: Result<T>) -> ErrorKind {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.kind(),
    }
}

async fn mac(reg: &Registry, name: &str, v: u32) -> Vec<u8> {
    reg.sign(
        name,
        Some(v),
        Input::Message(b"body".to_vec()),
        SignatureFormat::Der,
    )
    .await
    .unwrap()
    .signature
}

#[tokio::test]
async fn an_exported_secret_is_the_one_the_key_uses_version_by_version() {
    let reg = registry();
    let to = SoftWrappingKey::generate().unwrap();
    let recipient = || Recipient::parse(to.spki_der()).unwrap();
    let view = reg
        .create_key("shared", Algorithm::HmacSha256, BTreeMap::new(), None, true)
        .await
        .unwrap();
    assert!(view.record.exportable);
    let mut secrets = Vec::new();
    for v in [1, 2] {
        if v == 2 {
            reg.rotate("shared", true, None).await.unwrap();
        }
        let e = reg
            .export_wrapped("shared", Some(v), recipient(), None)
            .await
            .unwrap();
        assert_eq!((e.version, e.hash), (v, OaepHash::Sha256));
        assert!(!format!("{e:?}").contains(&hex::encode(&e.wrapped[..8])));
        let secret = to.unwrap(&e.wrapped).unwrap();
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose()).unwrap();
        m.update(b"body");
        assert_eq!(
            m.finalize().into_bytes().to_vec(),
            mac(&reg, "shared", v).await
        );
        secrets.push(secret.expose().to_vec());
    }
    assert_ne!(secrets[0], secrets[1], "each version has its own secret");
    // No version named: the ACTIVE one.
    let e = reg
        .export_wrapped("shared", None, recipient(), None)
        .await
        .unwrap();
    assert_eq!(e.version, 2);
    // SHA-1 when asked for: not what the SHA-256 key unwraps.
    let e = reg
        .export_wrapped("shared", None, recipient(), Some(OaepHash::Sha1))
        .await
        .unwrap();
    assert_eq!(e.hash, OaepHash::Sha1);
    assert!(to.unwrap(&e.wrapped).is_err());
}

#[tokio::test]
async fn nothing_that_is_not_exportable_leaves() {
    let reg = registry();
    let to = SoftWrappingKey::generate().unwrap();
    let recipient = || Recipient::parse(to.spki_der()).unwrap();
    let asym = reg
        .create_key(
            "ec",
            Algorithm::EcdsaP256Sha256,
            BTreeMap::new(),
            None,
            true,
        )
        .await;
    assert_eq!(kind(asym), ErrorKind::InvalidArgument);
    reg.create_key("plain", Algorithm::Aes256Gcm, BTreeMap::new(), None, false)
        .await
        .unwrap();
    let e = reg.export_wrapped("plain", None, recipient(), None).await;
    assert_eq!(kind(e), ErrorKind::FailedPrecondition);
    // A rotation of an exportable key is exportable; a disabled version
    // is not handed out, and an imported one is never added.
    reg.create_key("aes", Algorithm::Aes256Gcm, BTreeMap::new(), None, true)
        .await
        .unwrap();
    reg.rotate("aes", true, None).await.unwrap();
    reg.disable("aes", 1).await.unwrap();
    let e = reg.export_wrapped("aes", Some(1), recipient(), None).await;
    assert_eq!(kind(e), ErrorKind::FailedPrecondition);
    let e = reg.export_wrapped("aes", Some(7), recipient(), None).await;
    assert_eq!(kind(e), ErrorKind::NotFound);
    let e = reg
        .import_key("aes", Algorithm::Aes256Gcm, &[7; 32], true, BTreeMap::new())
        .await;
    assert_eq!(kind(e), ErrorKind::FailedPrecondition);
    assert_eq!(
        to.unwrap(
            &reg.export_wrapped("aes", Some(2), recipient(), None)
                .await
                .unwrap()
                .wrapped
        )
        .unwrap()
        .len(),
        32
    );
}

#[test]
fn recipients_are_rsa_keys_of_2048_to_8192_bits() {
    let k = SoftWrappingKey::generate().unwrap();
    let der = k.spki_der();
    let pem = crate::keys::public::pem_encode("PUBLIC KEY", der);
    assert_eq!(Recipient::parse(pem.as_bytes()).unwrap().spki_der(), der);
    assert_eq!(Recipient::parse(der).unwrap().modulus().len(), 384);
    let wrong_label = crate::keys::public::pem_encode("RSA PUBLIC KEY", der);
    let ec = crate::keys::memory::MemoryKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let ec_spki = crate::keys::KeyHandle::public_key(&ec)
        .unwrap()
        .spki_der()
        .to_vec();
    for bad in [
        &b""[..],
        b"junk",
        wrong_label.as_bytes(),
        &ec_spki,
        &der[..der.len() - 1],
    ] {
        let e = Recipient::parse(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("RSA public key"), "{}", e.message());
    }
    assert_eq!(
        format!("{:?}", Recipient::parse(der).unwrap()),
        "Recipient(3072 bits)"
    );
}
