//! Conformance vectors of our own for the profile pipelines: every failure
//! reason, the presets' header formats, URL forms, multi-signature headers
//! during a staged rotation. The expected MACs are computed here with the
//! `hmac` crate from the spec's definition of S, not taken from signet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::sign::SignedRequest;
use super::*;
use crate::httpsig::profile::ProfileConfig;
use crate::httpsig::replay::MemoryReplayStore;
use crate::keys::clock::ManualClock;
use crate::keys::memory::MemoryBackend;
use crate::keys::registry::RegistrySettings;
use crate::keys::store::NullStore;
use crate::keys::Algorithm;

pub(super) const SECRET: &[u8] = b"whsec-test-secret-0123456789abcd";
pub(super) const NOW: u64 = 1_800_000_000;

pub(super) async fn setup() -> (Arc<Registry>, ManualClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW));
    let reg = Arc::new(Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(clock.clone()),
        RegistrySettings::default(),
    ));
    reg.import_key(
        "hook",
        Algorithm::HmacSha256,
        SECRET,
        false,
        BTreeMap::new(),
    )
    .await
    .unwrap();
    (reg, clock)
}

pub(super) fn profile(toml_text: &str) -> Profile {
    let c: ProfileConfig = toml::from_str(toml_text).unwrap();
    c.resolve().unwrap()
}

fn mac(secret: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

pub(super) const BODY: &[u8] = br#"{"id": "evt_1", "amount": 1.50, "note": "caf\u00e9"}"#;

pub(super) fn req(body: &[u8]) -> Request<'_> {
    Request {
        method: "post",
        url: "https://api.example.com/v1/pay?x=1#frag",
        body,
    }
}

#[tokio::test]
async fn boxo_default_string_to_sign_and_headers() {
    let (reg, _) = setup().await;
    let p = profile("name = \"b\"\npreset = \"boxo\"\nkey = \"hook\"\nclient_id = \"cli-9\"\n");
    let out = sign_request(&p, &reg, req(BODY), None, now())
        .await
        .unwrap();
    let s = format!(
        "{NOW}cli-9POSThttps://api.example.com/v1/pay?x=1#frag{}",
        r#"{"id":"evt_1","amount":1.50,"note":"caf\u00e9"}"#
    );
    assert_eq!(out.string_to_sign, s);
    let want = STANDARD.encode(mac(SECRET, &s));
    assert_eq!(
        out.headers,
        vec![
            ("X-Signature".to_string(), want),
            ("X-Timestamp".to_string(), NOW.to_string()),
            ("X-Client-Id".to_string(), "cli-9".to_string()),
        ]
    );
    assert_eq!(out.key_version_id, "hook:v1");
}

#[tokio::test]
async fn presets_put_the_mac_where_the_platforms_expect_it() {
    let (reg, _) = setup().await;
    let body = br#"{"type":"payment.succeeded"}"#;
    let raw = std::str::from_utf8(body).unwrap();
    type Expect<'a> = Box<dyn Fn(&SignedRequest) -> String + 'a>;
    let cases: &[(&str, &str, Expect<'_>)] = &[
        (
            "stripe",
            "Stripe-Signature",
            Box::new(|o| {
                format!(
                    "t={},v1={}",
                    o.timestamp,
                    hex::encode(mac(SECRET, &format!("{}.{raw}", o.timestamp)))
                )
            }),
        ),
        (
            "slack",
            "X-Slack-Signature",
            Box::new(|o| {
                format!(
                    "v0={}",
                    hex::encode(mac(SECRET, &format!("v0:{}:{raw}", o.timestamp)))
                )
            }),
        ),
        (
            "github",
            "X-Hub-Signature-256",
            Box::new(|_| format!("sha256={}", hex::encode(mac(SECRET, raw)))),
        ),
        (
            "shopify",
            "X-Shopify-Hmac-Sha256",
            Box::new(|_| STANDARD.encode(mac(SECRET, raw))),
        ),
        (
            "standard-webhooks",
            "webhook-signature",
            Box::new(|o| {
                format!(
                    "v1,{}",
                    STANDARD.encode(mac(SECRET, &format!("{}.{}.{raw}", o.nonce, o.timestamp)))
                )
            }),
        ),
    ];
    for (preset, header, want) in cases {
        let p = profile(&format!(
            "name = \"p\"\npreset = \"{preset}\"\nkey = \"hook\"\n"
        ));
        let out = sign_request(&p, &reg, req(body), None, now())
            .await
            .unwrap();
        assert_eq!(out.headers[0].0, *header, "{preset}");
        assert_eq!(out.headers[0].1, want(&out), "{preset}");
    }
    let p = profile("name = \"p\"\npreset = \"standard-webhooks\"\nkey = \"hook\"\n");
    let out = sign_request(&p, &reg, req(body), None, now())
        .await
        .unwrap();
    assert!(
        out.nonce.starts_with("msg_") && out.nonce.len() == 28,
        "{}",
        out.nonce
    );
    let out = sign_request(&p, &reg, req(body), Some("evt_42"), now())
        .await
        .unwrap();
    assert_eq!(out.nonce, "evt_42");
    assert!(sign_request(&p, &reg, req(body), Some("bad nonce"), now())
        .await
        .is_err());
}

#[tokio::test]
async fn every_preset_verifies_what_it_signs_and_refuses_a_replay() {
    let (reg, _) = setup().await;
    for preset in ["stripe", "slack", "github", "shopify", "standard-webhooks"] {
        let replay = MemoryReplayStore::new(100);
        let p = profile(&format!(
            "name = \"p\"\npreset = \"{preset}\"\nkey = \"hook\"\n"
        ));
        let out = sign_request(&p, &reg, req(b"{}"), None, now())
            .await
            .unwrap();
        let v = verify_request(&p, &reg, &replay, req(b"{}"), &out.headers, "", now())
            .await
            .unwrap();
        assert_eq!(v.reason, None, "{preset}");
        assert_eq!(v.key_version_id.as_deref(), Some("hook:v1"));
        let again = verify_request(&p, &reg, &replay, req(b"{}"), &out.headers, "", now())
            .await
            .unwrap();
        assert_eq!(again.reason, Some(Reason::Replayed), "{preset}");
        let other = verify_request(&p, &reg, &replay, req(b"{ }"), &out.headers, "", now())
            .await
            .unwrap();
        assert_eq!(other.reason, Some(Reason::SignatureMismatch), "{preset}");
    }
}

#[tokio::test]
async fn failure_reasons_in_the_specs_order() {
    let (reg, _) = setup().await;
    let p = profile(
        "name = \"b\"\nkey = \"hook\"\nclient_id = \"c\"\nallowed_source_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n",
    );
    let replay = MemoryReplayStore::new(100);
    let out = sign_request(&p, &reg, req(BODY), None, now())
        .await
        .unwrap();
    let h = out.headers.clone();
    let check =
        |headers: Vec<(String, String)>, body: &'static [u8], ip: &'static str, at: SystemTime| {
            let (p, reg, replay) = (&p, &reg, &replay);
            async move {
                verify_request(p, reg, replay, req(body), &headers, ip, at)
                    .await
                    .unwrap()
                    .reason
            }
        };
    let without = |name: &str| {
        h.iter()
            .filter(|(n, _)| n != name)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        check(without("X-Signature"), BODY, "10.1.1.1", now()).await,
        Some(Reason::MissingHeader)
    );
    assert_eq!(
        check(without("X-Timestamp"), BODY, "10.1.1.1", now()).await,
        Some(Reason::MissingHeader)
    );
    let mut dup = h.clone();
    dup.push(("x-signature".into(), h[0].1.clone()));
    assert_eq!(
        check(dup, BODY, "10.1.1.1", now()).await,
        Some(Reason::MalformedHeader)
    );
    let mut bad = h.clone();
    bad[0].1 = "not base64!".into();
    assert_eq!(
        check(bad, BODY, "10.1.1.1", now()).await,
        Some(Reason::MalformedHeader)
    );
    let mut bad_t = h.clone();
    bad_t[1].1 = "12a".into();
    assert_eq!(
        check(bad_t, BODY, "10.1.1.1", now()).await,
        Some(Reason::MalformedHeader)
    );
    assert_eq!(
        check(h.clone(), BODY, "192.0.2.1", now()).await,
        Some(Reason::SourceIpNotAllowed)
    );
    assert_eq!(
        check(h.clone(), BODY, "", now()).await,
        Some(Reason::SourceIpNotAllowed)
    );
    assert_eq!(
        check(h.clone(), BODY, "garbage", now()).await,
        Some(Reason::SourceIpNotAllowed)
    );
    let late = now() + Duration::from_secs(301);
    assert_eq!(
        check(h.clone(), BODY, "10.1.1.1", late).await,
        Some(Reason::TimestampOutOfWindow)
    );
    let early = now() - Duration::from_secs(301);
    assert_eq!(
        check(h.clone(), BODY, "10.1.1.1", early).await,
        Some(Reason::TimestampOutOfWindow)
    );
    assert_eq!(
        check(h.clone(), b"{not json", "10.1.1.1", now()).await,
        Some(Reason::MalformedBody)
    );
    assert_eq!(
        check(h.clone(), br#"{"id":"evt_2"}"#, "10.1.1.1", now()).await,
        Some(Reason::SignatureMismatch)
    );
    // Headers match case-insensitively; whitespace in the JSON does not
    // matter (it is re-canonicalised); IPv6 and mapped IPv4 are in range.
    let lower: Vec<_> = h
        .iter()
        .map(|(n, v)| (n.to_lowercase(), v.clone()))
        .collect();
    let spaced = br#"{ "id" : "evt_1" , "amount" : 1.50 , "note" : "caf\u00e9" }"#;
    assert_eq!(
        check(
            lower,
            spaced,
            "2001:db8::7",
            now() + Duration::from_secs(300)
        )
        .await,
        None
    );
    assert_eq!(
        check(h.clone(), BODY, "::ffff:10.9.9.9", now()).await,
        Some(Reason::Replayed)
    );
}

#[tokio::test]
async fn multi_signature_headers_carry_active_and_pending() {
    let (reg, _) = setup().await;
    reg.import_key(
        "hook",
        Algorithm::HmacSha256,
        b"the-next-secret-0123456789abcdef",
        true,
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let p = profile("name = \"s\"\npreset = \"stripe\"\nkey = \"hook\"\n");
    let out = sign_request(&p, &reg, req(b"{}"), None, now())
        .await
        .unwrap();
    let t = &out.timestamp;
    let want = format!(
        "t={t},v1={},v1={}",
        hex::encode(mac(SECRET, &format!("{t}.{{}}"))),
        hex::encode(mac(
            b"the-next-secret-0123456789abcdef",
            &format!("{t}.{{}}")
        ))
    );
    assert_eq!(out.headers[0].1, want);
    // Element order and other schemes do not matter to the verifier.
    let replay = MemoryReplayStore::new(10);
    let v1 = hex::encode(mac(SECRET, &format!("{t}.{{}}")));
    let shuffled = vec![(
        "stripe-signature".to_string(),
        format!("v0=abc,v1={v1},t={t}"),
    )];
    let v = verify_request(&p, &reg, &replay, req(b"{}"), &shuffled, "", now())
        .await
        .unwrap();
    assert_eq!(v.reason, None);

    let sw = profile("name = \"w\"\npreset = \"standard-webhooks\"\nkey = \"hook\"\n");
    let out = sign_request(&sw, &reg, req(b"{}"), Some("msg_1"), now())
        .await
        .unwrap();
    assert_eq!(out.headers[0].1.split(' ').count(), 2);
    assert!(out.headers[0].1.split(' ').all(|e| e.starts_with("v1,")));
}

#[test]
fn url_forms() {
    use UrlForm::*;
    let cases = [
        ("https://h.example/a/b?q=1#f", Path, "/a/b"),
        ("https://h.example/a/b?q=1#f", PathAndQuery, "/a/b?q=1"),
        ("https://h.example", Path, "/"),
        ("https://h.example?q=1", PathAndQuery, "/?q=1"),
        ("/a%2Fb?x=%20", PathAndQuery, "/a%2Fb?x=%20"),
        ("/a?", PathAndQuery, "/a?"),
        ("/a#x?y", PathAndQuery, "/a"),
        ("https://h.example/a b", AsGiven, "https://h.example/a b"),
        // A URL inside the query of an origin-form URL is not its authority.
        ("/refund/1?next=https://x.example/y", Path, "/refund/1"),
        (
            "/refund/1?next=https://x.example/y",
            PathAndQuery,
            "/refund/1?next=https://x.example/y",
        ),
        ("/a/https://x.example/y", Path, "/a/https://x.example/y"),
        ("https://h.example/cb?next=https://x/y", Path, "/cb"),
        ("HTTP+x.y-z://h/p", Path, "/p"),
        // Not a scheme: a digit first, or a character schemes do not have.
        ("1http://h/p", Path, "1http://h/p"),
        ("ht_tp://h/p", Path, "ht_tp://h/p"),
    ];
    for (url, form, want) in cases {
        assert_eq!(url_form(form, url), want, "{url} {form:?}");
    }
}

#[tokio::test]
async fn ed25519_keys_and_bad_methods_are_refused() {
    let (reg, _) = setup().await;
    reg.create_key("ed", Algorithm::Ed25519, BTreeMap::new(), None, false)
        .await
        .unwrap();
    let p = profile("name = \"e\"\nkey = \"ed\"\nclient_id = \"c\"\n");
    assert!(sign_request(&p, &reg, req(b""), None, now()).await.is_err());
    let p = profile("name = \"b\"\nkey = \"hook\"\nclient_id = \"c\"\n");
    let bad = Request {
        method: "PO ST",
        ..req(b"")
    };
    assert!(sign_request(&p, &reg, bad, None, now()).await.is_err());
    // Timespecs scale T.
    let ms =
        profile("name = \"m\"\nkey = \"hook\"\nclient_id = \"c\"\ntimespec = \"milliseconds\"\n");
    assert_eq!(
        timestamp(&ms, now() + Duration::from_nanos(1_999_999)),
        format!("{NOW}001")
    );
}

#[tokio::test]
async fn a_url_in_the_query_does_not_unbind_the_path() {
    let (reg, _) = setup().await;
    let p = profile(
        "name = \"b\"\npreset = \"boxo\"\nkey = \"hook\"\nverify_key = \"hook\"\n\
         client_id = \"c\"\nurl_form = \"path\"\n",
    );
    let at = |url| Request {
        method: "POST",
        url,
        body: b"{}",
    };
    let out = sign_request(
        &p,
        &reg,
        at("/refund/1?next=https://x.example/y"),
        None,
        now(),
    )
    .await
    .unwrap();
    let replay = MemoryReplayStore::new(100);
    let other = at("/transfer/999?next=https://x.example/y");
    let v = verify_request(&p, &reg, &replay, other, &out.headers, "", now())
        .await
        .unwrap();
    assert_eq!(v.reason, Some(Reason::SignatureMismatch));
    let same = at("/refund/1?next=https://x.example/y");
    let v = verify_request(&p, &reg, &replay, same, &out.headers, "", now())
        .await
        .unwrap();
    assert_eq!(v.reason, None);
}
