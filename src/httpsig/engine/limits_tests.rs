//! What one request may ask of the verifier: a header of many signatures is
//! refused past `MAX_SIGNATURES`, and the signer never writes more.

use std::collections::BTreeMap;

use super::tests::{now, profile, req, setup, SECRET};
use super::*;
use crate::httpsig::headers::MAX_SIGNATURES;
use crate::httpsig::replay::MemoryReplayStore;
use crate::keys::Algorithm;

fn mac_hex(secret: &[u8], data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    m.update(data);
    hex::encode(m.finalize().into_bytes())
}

/// `count` signatures, the last the good one, the others forged.
fn signatures(count: usize, good: &str) -> Vec<String> {
    let mut v: Vec<String> = (1..count).map(|i| format!("{i:064x}")).collect();
    v.push(good.to_string());
    v
}

#[tokio::test]
async fn a_stripe_header_carries_at_most_max_signatures() {
    let (reg, _) = setup().await;
    let p = profile("name = \"s\"\npreset = \"stripe\"\nkey = \"hook\"\n");
    let t = now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = mac_hex(SECRET, format!("{t}.{{}}").as_bytes());
    for (count, want) in [
        (MAX_SIGNATURES, None),
        (MAX_SIGNATURES + 1, Some(Reason::MalformedHeader)),
        (1_300, Some(Reason::MalformedHeader)),
    ] {
        let mut value = format!("t={t}");
        for s in signatures(count, &good) {
            value.push_str(",v1=");
            value.push_str(&s);
        }
        // Other schemes do not count.
        value.push_str(&",v0=00".repeat(40));
        let headers = vec![("Stripe-Signature".to_string(), value)];
        let replay = MemoryReplayStore::new(10);
        let v = verify_request(&p, &reg, &replay, req(b"{}"), &headers, "", now())
            .await
            .unwrap();
        assert_eq!(v.reason, want, "{count} signatures");
    }
}

#[tokio::test]
async fn a_standard_webhooks_header_carries_at_most_max_signatures() {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let (reg, _) = setup().await;
    let p = profile("name = \"w\"\npreset = \"standard-webhooks\"\nkey = \"hook\"\n");
    let t = now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = hex::decode(mac_hex(SECRET, format!("msg_1.{t}.{{}}").as_bytes())).unwrap();
    for (count, want) in [
        (MAX_SIGNATURES, None),
        (MAX_SIGNATURES + 1, Some(Reason::MalformedHeader)),
    ] {
        let sigs: Vec<String> = signatures(count, &hex::encode(&good))
            .iter()
            .map(|h| format!("v1,{}", STANDARD.encode(hex::decode(h).unwrap())))
            .collect();
        let headers = vec![
            ("webhook-id".to_string(), "msg_1".to_string()),
            ("webhook-timestamp".to_string(), t.to_string()),
            ("webhook-signature".to_string(), sigs.join(" ")),
        ];
        let replay = MemoryReplayStore::new(10);
        let v = verify_request(&p, &reg, &replay, req(b"{}"), &headers, "", now())
            .await
            .unwrap();
        assert_eq!(v.reason, want, "{count} signatures");
    }
}

#[tokio::test]
async fn the_signer_writes_at_most_max_signatures() {
    let (reg, _) = setup().await;
    // v1 ACTIVE and MAX_SIGNATURES more PENDING versions.
    for i in 0..MAX_SIGNATURES {
        let secret = format!("pending-secret-{i:02}-0123456789abcdef");
        reg.import_key(
            "hook",
            Algorithm::HmacSha256,
            secret.as_bytes(),
            true,
            BTreeMap::new(),
        )
        .await
        .unwrap();
    }
    let p = profile("name = \"s\"\npreset = \"stripe\"\nkey = \"hook\"\n");
    let out = sign_request(&p, &reg, req(b"{}"), None, now())
        .await
        .unwrap();
    let value = &out.headers[0].1;
    assert_eq!(value.matches(",v1=").count(), MAX_SIGNATURES, "{value}");
    // The ACTIVE version's comes first.
    let t = &out.timestamp;
    let first = mac_hex(SECRET, format!("{t}.{{}}").as_bytes());
    assert!(value.starts_with(&format!("t={t},v1={first},")), "{value}");
    let replay = MemoryReplayStore::new(10);
    let v = verify_request(&p, &reg, &replay, req(b"{}"), &out.headers, "", now())
        .await
        .unwrap();
    assert_eq!(v.reason, None);
}
