//! Two `signet serve` processes as two replicas behind one Service: one
//! SoftHSM2 token (keys and the registry on it) and one Redis (the replay
//! store). They must agree on keys, on rotations and on replays.

use std::time::{Duration, Instant};

use signet::api::pb;

use crate::pkcs11::{fresh_label, new_token, Child};
use crate::redis::redis_server;

fn extra(redis_url: &str) -> String {
    format!(
        "[http]\nreplay_store = \"redis\"\nredis_url = \"{redis_url}\"\n\
         [[profiles]]\nname = \"hooks\"\npreset = \"standard-webhooks\"\nkey = \"hooks-hmac\"\n"
    )
}

async fn key(c: &Child, name: &str) -> pb::Key {
    c.admin()
        .await
        .get_key(pb::GetKeyRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap()
}

/// Polls `f` until it holds (the other replica picks changes up on its
/// next tick, every 100 ms here).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn verify_hook(
    c: &Child,
    headers: &[pb::HttpHeader],
    body: &[u8],
) -> pb::VerifyHttpRequestResponse {
    c.signer()
        .await
        .verify_http_request(pb::VerifyHttpRequestRequest {
            profile: "hooks".into(),
            method: "POST".into(),
            url: "https://merchant.example/hooks".into(),
            body: body.to_vec(),
            headers: headers.to_vec(),
            source_ip: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn states(k: &pb::Key) -> Vec<(u32, i32)> {
    k.versions.iter().map(|v| (v.version, v.state)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_token_and_one_redis_agree_on_keys_rotations_and_replays() {
    let redis = redis_server();
    let cfg = new_token(&fresh_label());
    let a = Child::spawn_with(&cfg, &extra(&redis.url));
    let b = Child::spawn_with(&cfg, &extra(&redis.url));

    // A key created on A appears on B.
    a.admin()
        .await
        .create_key(pb::CreateKeyRequest {
            name: "payments-ec".into(),
            algorithm: pb::Algorithm::EcdsaP256Sha256 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("B sees the key created on A", || async {
        b.admin()
            .await
            .get_key(pb::GetKeyRequest {
                name: "payments-ec".into(),
            })
            .await
            .is_ok()
    })
    .await;

    // A rotation on B is seen by A; both then sign with version 2, and
    // each verifies what the other signed.
    b.admin()
        .await
        .rotate_key(pb::RotateKeyRequest {
            name: "payments-ec".into(),
            promote: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let kb = key(&b, "payments-ec").await;
    eventually("A sees B's rotation", || async {
        states(&key(&a, "payments-ec").await) == states(&kb)
    })
    .await;
    for (signer, verifier) in [(&a, &b), (&b, &a)] {
        let s = signer
            .signer()
            .await
            .sign(pb::SignRequest {
                key: "payments-ec".into(),
                input: Some(pb::sign_request::Input::Message(b"capture 42".to_vec())),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.version, 2);
        let v = verifier
            .signer()
            .await
            .verify(pb::VerifyRequest {
                key: "payments-ec".into(),
                input: Some(pb::verify_request::Input::Message(b"capture 42".to_vec())),
                signature: s.signature,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(v.valid);
        assert_eq!(v.version, 2);
    }

    // A rotation policy runs on both replicas at once: each tick on each
    // replica may try the same due rotation; exactly one wins each time.
    let period = prost_types::Duration {
        seconds: 1,
        nanos: 0,
    };
    a.admin()
        .await
        .create_key(pb::CreateKeyRequest {
            name: "scheduled".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: Some(period),
                pending_period: Some(prost_types::Duration::default()),
                grace_period: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                rotate_after_encryptions: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    eventually(
        "both replicas show the same scheduled rotations",
        || async {
            let (ka, kb) = (key(&a, "scheduled").await, key(&b, "scheduled").await);
            states(&ka) == states(&kb)
        },
    )
    .await;
    let k = key(&a, "scheduled").await;
    let active = pb::KeyVersionState::Active as i32;
    assert_eq!(
        k.versions.iter().filter(|v| v.state == active).count(),
        1,
        "{k:?}"
    );
    // One rotation per period, not one per replica: 4.5 s after creation
    // there are 4 or 5 versions (the first tick after each due time acts),
    // numbered without gaps.
    let n = k.versions.len();
    assert!((4..=6).contains(&n), "{n} versions: {k:?}");
    let numbers: Vec<u32> = k.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, (1..=n as u32).collect::<Vec<_>>());

    // Both replicas hold the same material for every version: what one
    // signs with the scheduled key, the other verifies (HMAC: the same
    // secret on both sides).
    for (signer, verifier) in [(&a, &b), (&b, &a)] {
        eventually(
            "the other replica verifies the scheduled key's signature",
            || async {
                let s = signer
                    .signer()
                    .await
                    .sign(pb::SignRequest {
                        key: "scheduled".into(),
                        input: Some(pb::sign_request::Input::Message(b"settle".to_vec())),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                verifier
                    .signer()
                    .await
                    .verify(pb::VerifyRequest {
                        key: "scheduled".into(),
                        input: Some(pb::verify_request::Input::Message(b"settle".to_vec())),
                        signature: s.signature,
                        version: s.version,
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().valid)
            },
        )
        .await;
    }

    // Webhooks: the HMAC key lives on the token too; a delivery signed by
    // A verifies once, on whichever replica sees it first, and its replay
    // is refused by the other.
    a.admin()
        .await
        .create_key(pb::CreateKeyRequest {
            name: "hooks-hmac".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("B sees the webhook key", || async {
        b.admin()
            .await
            .get_key(pb::GetKeyRequest {
                name: "hooks-hmac".into(),
            })
            .await
            .is_ok()
    })
    .await;
    let body = b"{\"type\":\"refund.created\"}".to_vec();
    let signed = a
        .signer()
        .await
        .sign_http_request(pb::SignHttpRequestRequest {
            profile: "hooks".into(),
            method: "POST".into(),
            url: "https://merchant.example/hooks".into(),
            body: body.clone(),
            nonce: String::new(),
            headers: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = verify_hook(&b, &signed.headers, &body).await;
    assert!(first.valid, "{first:?}");
    let replay = verify_hook(&a, &signed.headers, &body).await;
    assert!(!replay.valid);
    assert_eq!(replay.reason, pb::VerifyFailureReason::Replayed as i32);
    let replay = verify_hook(&b, &signed.headers, &body).await;
    assert_eq!(replay.reason, pb::VerifyFailureReason::Replayed as i32);
    drop(redis);
}
