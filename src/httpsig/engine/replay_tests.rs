//! Replay protection keys on what a signature covers: every other
//! spelling of a verified request, and a changed unsigned nonce, is a
//! replay.

use std::collections::BTreeMap;

use super::tests::{now, profile, req, setup, BODY};
use super::*;
use crate::httpsig::headers::parse_signature_header;
use crate::httpsig::replay::MemoryReplayStore;
use crate::keys::Algorithm;

/// Every other spelling of a captured request that still verifies must be
/// caught as a replay: ECDSA's (r, n − s) twin in DER and raw form, and a
/// Stripe header with its elements reordered or a signature repeated.
#[tokio::test]
async fn re_encoded_signatures_are_replays() {
    use crate::keys::ecdsa_sig::{der_to_raw, raw_to_der, twin};
    use crate::keys::Curve;
    let (reg, _) = setup().await;
    reg.create_key(
        "ec",
        Algorithm::EcdsaP256Sha256,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    for format in ["der", "raw"] {
        let p = profile(&format!(
            "name = \"b\"\npreset = \"boxo\"\nkey = \"ec\"\nclient_id = \"c\"\necdsa_format = \"{format}\"\n"
        ));
        let sig_header = p.headers[&Field::Signature].clone();
        for _ in 0..8 {
            let replay = MemoryReplayStore::new(100);
            let out = sign_request(&p, &reg, req(BODY), None, now())
                .await
                .unwrap();
            let value = &out
                .headers
                .iter()
                .find(|(n, _)| *n == sig_header)
                .unwrap()
                .1;
            let parsed = parse_signature_header(&p, value, false).unwrap();
            let encoded = &parsed.sigs[0];
            let sig = decode_sig(p.signature_encoding, encoded).unwrap();
            let raw = match format {
                "der" => der_to_raw(Curve::P256, &sig).unwrap(),
                _ => sig.clone(),
            };
            assert!(raw[32..] <= twin(Curve::P256, &raw).unwrap()[32..], "low-S");
            let other = twin(Curve::P256, &raw).unwrap();
            let other = match format {
                "der" => raw_to_der(Curve::P256, &other).unwrap(),
                _ => other,
            };
            let forged: Vec<(String, String)> = out
                .headers
                .iter()
                .map(|(n, v)| {
                    let e = encode_sig(p.signature_encoding, &other);
                    (n.clone(), v.replace(encoded.as_str(), &e))
                })
                .collect();
            assert_ne!(forged, out.headers);
            let first = verify_request(&p, &reg, &replay, req(BODY), &out.headers, "", now())
                .await
                .unwrap();
            assert_eq!(first.reason, None, "{format}");
            let again = verify_request(&p, &reg, &replay, req(BODY), &forged, "", now())
                .await
                .unwrap();
            assert_eq!(again.reason, Some(Reason::Replayed), "{format}");
            // And the twin alone, first, is accepted: it is a valid signature.
            let fresh = MemoryReplayStore::new(100);
            let alone = verify_request(&p, &reg, &fresh, req(BODY), &forged, "", now())
                .await
                .unwrap();
            assert_eq!(alone.reason, None, "{format}");
        }
    }
    // Stripe: the same signature, reordered and repeated.
    let p = profile("name = \"s\"\npreset = \"stripe\"\nkey = \"hook\"\n");
    let replay = MemoryReplayStore::new(10);
    let out = sign_request(&p, &reg, req(b"{}"), None, now())
        .await
        .unwrap();
    let (t, v1) = out.headers[0]
        .1
        .split_once(',')
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .unwrap();
    let first = verify_request(&p, &reg, &replay, req(b"{}"), &out.headers, "", now())
        .await
        .unwrap();
    assert_eq!(first.reason, None);
    for spelling in [
        format!("{v1},{t}"),
        format!("{t},v1=00,{v1}"),
        format!("{t},{v1},{v1}"),
    ] {
        let h = vec![("Stripe-Signature".to_string(), spelling.clone())];
        let v = verify_request(&p, &reg, &replay, req(b"{}"), &h, "", now())
            .await
            .unwrap();
        assert_eq!(v.reason, Some(Reason::Replayed), "{spelling}");
    }
}

/// A nonce the signature does not cover is no identity either: GitHub's
/// and Shopify's delivery ids can be changed by whoever replays.
#[tokio::test]
async fn an_unsigned_nonce_does_not_make_a_replay_fresh() {
    let (reg, _) = setup().await;
    for preset in ["github", "shopify"] {
        let p = profile(&format!(
            "name = \"p\"\npreset = \"{preset}\"\nkey = \"hook\"\n"
        ));
        assert!(!p.payload_template.uses(Placeholder::Nonce), "{preset}");
        let nonce_header = p.headers[&Field::Nonce].clone();
        let replay = MemoryReplayStore::new(100);
        let out = sign_request(&p, &reg, req(b"{\"id\":1}"), None, now())
            .await
            .unwrap();
        let first = verify_request(
            &p,
            &reg,
            &replay,
            req(b"{\"id\":1}"),
            &out.headers,
            "",
            now(),
        )
        .await
        .unwrap();
        assert_eq!(first.reason, None, "{preset}");
        let renamed: Vec<(String, String)> = out
            .headers
            .iter()
            .map(|(n, v)| {
                if *n == nonce_header {
                    (n.clone(), "another-delivery-id".to_string())
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect();
        assert_ne!(renamed, out.headers);
        let again = verify_request(&p, &reg, &replay, req(b"{\"id\":1}"), &renamed, "", now())
            .await
            .unwrap();
        assert_eq!(again.reason, Some(Reason::Replayed), "{preset}");
        // The same delivery id on other content is a replay too (the spec's rule).
        let other = sign_request(&p, &reg, req(b"{\"id\":2}"), None, now())
            .await
            .unwrap();
        let reused: Vec<(String, String)> = other
            .headers
            .iter()
            .map(|(n, v)| {
                let same = out.headers.iter().find(|(m, _)| m == n).unwrap();
                if *n == nonce_header {
                    same.clone()
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect();
        let v = verify_request(&p, &reg, &replay, req(b"{\"id\":2}"), &reused, "", now())
            .await
            .unwrap();
        assert_eq!(v.reason, Some(Reason::Replayed), "{preset}");
    }
}
