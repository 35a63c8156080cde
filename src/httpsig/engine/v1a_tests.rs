//! Standard Webhooks `v1a`: Ed25519 signatures over `{id}.{timestamp}.
//! {body}`, checked here with aws-lc-rs directly against the spec's
//! definition, through `whsk_` and `whpk_` keys, with rotation.

use std::collections::BTreeMap;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::{engine::general_purpose::STANDARD, Engine};
use zeroize::Zeroizing;

use super::tests::{now, profile, req, setup, NOW};
use super::*;
use crate::httpsig::replay::MemoryReplayStore;
use crate::keys::Algorithm;

/// RFC 8032 §7.1 TEST 1's seed.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

async fn import(reg: &Registry, name: &str, text: String) {
    let der = crate::httpsig::whsk::decode(Zeroizing::new(text.into_bytes())).unwrap();
    reg.import_key(name, Algorithm::Ed25519, &der, false, BTreeMap::new())
        .await
        .unwrap();
}

fn value<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    &h.iter().find(|(n, _)| n == name).unwrap().1
}

#[tokio::test]
async fn ed25519_signs_v1a_entries_that_the_spec_definition_verifies() {
    let (reg, _) = setup().await;
    let seed = hex::decode(SEED).unwrap();
    import(&reg, "sw-ed", format!("whsk_{}", STANDARD.encode(&seed))).await;
    let p = profile("name = \"sw\"\npreset = \"standard-webhooks\"\nkey = \"sw-ed\"\n");
    let body = br#"{"type":"invoice.paid"}"#;
    let out = sign_request(&p, &reg, req(body), Some("msg_1"), now())
        .await
        .unwrap();
    let header = value(&out.headers, "webhook-signature");
    let sig = STANDARD
        .decode(header.strip_prefix("v1a,").expect("a v1a entry"))
        .unwrap();
    let signed = format!("msg_1.{NOW}.{}", std::str::from_utf8(body).unwrap());
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
        .verify(signed.as_bytes(), &sig)
        .expect("the spec's signed content");
    // Ed25519 is deterministic: the entry is the one the seed makes.
    assert_eq!(sig, pair.sign(signed.as_bytes()).as_ref());
    // A receiver holding only the whpk_ verifies it.
    let whpk = format!("whpk_{}", STANDARD.encode(pair.public_key().as_ref()));
    import(&reg, "sw-pub", whpk).await;
    let rx = profile("name = \"rx\"\npreset = \"standard-webhooks\"\nverify_key = \"sw-pub\"\n");
    let replay = MemoryReplayStore::new(100);
    let v = verify_request(&rx, &reg, &replay, req(body), &out.headers, "", now())
        .await
        .unwrap();
    assert_eq!(
        (v.reason, v.key_version_id.as_deref()),
        (None, Some("sw-pub:v1"))
    );
    // v1 entries are the HMAC scheme's: an Ed25519 verifier ignores them,
    // and a header of only those carries no signature for it.
    let mut h = out.headers.clone();
    let sig_header = h
        .iter_mut()
        .find(|(n, _)| n == "webhook-signature")
        .unwrap();
    sig_header.1 = format!("v1,{} {}", STANDARD.encode([7u8; 32]), header);
    let v = verify_request(
        &rx,
        &reg,
        &MemoryReplayStore::new(10),
        req(body),
        &h,
        "",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(v.reason, None);
    let sig_header = h
        .iter_mut()
        .find(|(n, _)| n == "webhook-signature")
        .unwrap();
    sig_header.1 = header.replacen("v1a,", "v1,", 1);
    let v = verify_request(
        &rx,
        &reg,
        &MemoryReplayStore::new(10),
        req(body),
        &h,
        "",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(v.reason, Some(Reason::MalformedHeader));
    let v = verify_request(&rx, &reg, &replay, req(b"{}"), &out.headers, "", now())
        .await
        .unwrap();
    assert_eq!(v.reason, Some(Reason::SignatureMismatch));
}

#[tokio::test]
async fn a_rotation_sends_one_v1a_entry_per_version() {
    let (reg, _) = setup().await;
    reg.create_key("sw-ed", Algorithm::Ed25519, BTreeMap::new(), None, false)
        .await
        .unwrap();
    reg.rotate("sw-ed", false, None).await.unwrap();
    let p = profile("name = \"sw\"\npreset = \"standard-webhooks\"\nkey = \"sw-ed\"\n");
    let out = sign_request(&p, &reg, req(b"{}"), None, now())
        .await
        .unwrap();
    let header = value(&out.headers, "webhook-signature");
    let entries: Vec<&str> = header.split(' ').collect();
    assert_eq!(entries.len(), 2, "{header}");
    assert!(entries.iter().all(|e| e.starts_with("v1a,")));
}

#[tokio::test]
async fn ed25519_is_refused_where_the_format_has_no_asymmetric_scheme() {
    let (reg, _) = setup().await;
    reg.create_key("ed", Algorithm::Ed25519, BTreeMap::new(), None, false)
        .await
        .unwrap();
    for preset in ["stripe", "github", "slack", "shopify"] {
        let p = profile(&format!(
            "name = \"p\"\npreset = \"{preset}\"\nkey = \"ed\"\n"
        ));
        let e = sign_request(&p, &reg, req(b"{}"), None, now())
            .await
            .unwrap_err();
        assert!(
            e.message().contains("standard-webhooks (v1a)"),
            "{preset}: {e:?}"
        );
    }
}
