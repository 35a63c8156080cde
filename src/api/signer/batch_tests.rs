//! Batches: each item served, authorized, rate-limited and audited as its
//! single call, one bad item failing only itself, the limits refusing the
//! whole call before any work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::super::SignerLimits;
use super::*;
use crate::api::pb::signer_server::Signer;
use crate::audit::Audit;
use crate::auth::{Policy, Security};
use crate::config::{AuditConfig, Config};
use crate::keys::clock::ManualClock;
use crate::keys::memory::MemoryBackend;
use crate::keys::registry::{Registry, RegistrySettings};
use crate::keys::store::NullStore;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// `payments` may sign and verify `pay-*` at 3 calls a second (burst 3);
/// keys `pay-a` (HMAC) and `other` (HMAC) exist.
const POLICY: &str = r#"
[[auth.identities]]
name = "payments"
rate_per_second = 3
burst = 3
[[auth.identities.grants]]
operations = ["sign", "verify"]
keys = ["pay-*"]
"#;

struct Fixture {
    signer: SignerService,
    security: Arc<Security>,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn fixture(limits: SignerLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let c = Config::parse(POLICY).unwrap();
    let audit = Audit::open(&AuditConfig {
        output: crate::config::AuditOutput::File,
        path: Some(path.clone()),
    })
    .unwrap();
    let security = Security::new(Policy::new(&c.auth, &c.limits).unwrap(), audit, 16);
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let registry = Arc::new(Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(clock),
        RegistrySettings::default(),
    ));
    for name in ["pay-a", "other"] {
        registry
            .import_key(
                name,
                crate::keys::Algorithm::HmacSha256,
                SECRET,
                false,
                BTreeMap::new(),
            )
            .await
            .unwrap();
    }
    let signer = SignerService::new(registry, limits).with_security(security.clone());
    Fixture {
        signer,
        security,
        path,
        _dir: dir,
    }
}

fn request<T>(rpc: &Rpc, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.extensions_mut().insert(CallContext {
        request_id: "req-b".into(),
        identity: Arc::from("payments"),
        source: "127.0.0.1".parse().unwrap(),
        rpc: rpc.path.into(),
    });
    r
}

fn sign_item(key: &str, message: &[u8]) -> pb::SignRequest {
    pb::SignRequest {
        key: key.into(),
        input: Some(pb::sign_request::Input::Message(message.to_vec())),
        ..Default::default()
    }
}

fn hmac(message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

async fn trail(f: &Fixture) -> Vec<serde_json::Value> {
    assert!(f.security.audit().flush().await);
    std::fs::read_to_string(&f.path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn error_of(r: &pb::SignBatchResult) -> &pb::BatchItemError {
    match &r.result {
        Some(pb::sign_batch_result::Result::Error(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_item_gets_its_own_result_and_one_bad_item_fails_only_itself() {
    let f = fixture(SignerLimits::default()).await;
    let items = vec![
        sign_item("pay-a", b"first"),
        sign_item("other", b"not granted"),
        sign_item("pay-missing", b"no such key"),
        pb::SignRequest {
            key: "pay-a".into(),
            input: Some(pb::sign_request::Input::Digest(vec![0; 32])),
            ..Default::default()
        },
    ];
    let answer = f
        .signer
        .sign_batch(request(&rpcs::SIGN_BATCH, pb::SignBatchRequest { items }))
        .await
        .unwrap();
    assert_eq!(answer.metadata().get("x-request-id").unwrap(), "req-b");
    let results = answer.into_inner().results;
    assert_eq!(results.len(), 4);
    match &results[0].result {
        Some(pb::sign_batch_result::Result::Signed(s)) => {
            assert_eq!(s.signature, hmac(b"first"));
            assert_eq!(s.key_version_id, "pay-a:v1");
        }
        other => panic!("{other:?}"),
    }
    let denied = error_of(&results[1]);
    assert_eq!(denied.code, tonic::Code::PermissionDenied as u32);
    assert_eq!(denied.code_name, "PERMISSION_DENIED");
    let missing = error_of(&results[2]);
    assert_eq!(missing.code_name, "NOT_FOUND", "{missing:?}");
    // A digest for an HMAC key: refused as Sign refuses it.
    assert_eq!(error_of(&results[3]).code_name, "INVALID_ARGUMENT");
    // The trail: one record for the call, every item listed in order.
    let lines = trail(&f).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let r = &lines[0];
    assert_eq!(r["rpc"], "signet.v1.Signer/SignBatch");
    assert_eq!(r["operation"], "sign");
    assert_eq!(r["code"], "OK");
    let items = r["items"].as_array().unwrap();
    let codes: Vec<_> = items.iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["OK", "PERMISSION_DENIED", "NOT_FOUND", "INVALID_ARGUMENT"]
    );
    assert_eq!(items[0]["key"], "pay-a");
    assert_eq!(items[0]["version"], 1);
    assert_eq!(
        items[0]["message_sha256"],
        hex::encode(Sha256::digest(b"first"))
    );
    assert_eq!(items[1]["key"], "other");
    // Nothing of a message or a signature is written down.
    let text = std::fs::read_to_string(&f.path).unwrap();
    assert!(!text.contains("first") && !text.contains(&hex::encode(hmac(b"first"))));
}

#[tokio::test]
async fn every_item_past_the_first_is_charged_to_the_callers_rate() {
    let f = fixture(SignerLimits::default()).await;
    // The call paid for the first item in the auth layer (not here); items
    // two to four charge the burst of 3, so the fifth finds it spent.
    let items = (0..5).map(|i| sign_item("pay-a", &[i])).collect();
    let results = f
        .signer
        .sign_batch(request(&rpcs::SIGN_BATCH, pb::SignBatchRequest { items }))
        .await
        .unwrap()
        .into_inner()
        .results;
    let limited: Vec<_> = results
        .iter()
        .map(|r| matches!(r.result, Some(pb::sign_batch_result::Result::Error(_))))
        .collect();
    assert_eq!(limited, [false, false, false, false, true]);
    let e = error_of(&results[4]);
    assert_eq!(e.code_name, "RESOURCE_EXHAUSTED");
    assert!(e.retry_after_ms >= 1, "{e:?}");
}

#[tokio::test]
async fn the_limits_refuse_the_whole_call_before_any_item_is_served() {
    let limits = SignerLimits {
        max_batch_items: 2,
        max_batch_bytes: 40,
        ..SignerLimits::default()
    };
    let f = fixture(limits).await;
    let too_many = (0..3).map(|i| sign_item("pay-a", &[i])).collect();
    let e = f
        .signer
        .sign_batch(request(
            &rpcs::SIGN_BATCH,
            pb::SignBatchRequest { items: too_many },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(e.message(), "batch has 3 items; the limit is 2");
    // 5 + 36 bytes of name and message: one byte over.
    let too_big = vec![sign_item("pay-a", &[7; 36])];
    let e = f
        .signer
        .sign_batch(request(
            &rpcs::SIGN_BATCH,
            pb::SignBatchRequest { items: too_big },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("41 bytes"), "{}", e.message());
    let lines = trail(&f).await;
    assert_eq!(lines.len(), 2);
    for r in &lines {
        assert_eq!(r["code"], "INVALID_ARGUMENT");
        assert!(r.get("items").is_none(), "{r}");
    }
}

#[tokio::test]
async fn verify_batch_gives_verdicts_and_errors_per_item() {
    let f = fixture(SignerLimits::default()).await;
    let item = |key: &str, message: &[u8], signature: Vec<u8>| pb::VerifyRequest {
        key: key.into(),
        input: Some(pb::verify_request::Input::Message(message.to_vec())),
        signature,
        ..Default::default()
    };
    let items = vec![
        item("pay-a", b"m1", hmac(b"m1")),
        item("pay-a", b"m2", hmac(b"m1")),
        item("Not A Name", b"m3", hmac(b"m3")),
    ];
    let results = f
        .signer
        .verify_batch(request(
            &rpcs::VERIFY_BATCH,
            pb::VerifyBatchRequest { items },
        ))
        .await
        .unwrap()
        .into_inner()
        .results;
    use pb::verify_batch_result::Result as R;
    match (&results[0].result, &results[1].result, &results[2].result) {
        (Some(R::Verified(a)), Some(R::Verified(b)), Some(R::Error(e))) => {
            assert!(a.valid && a.version == 1);
            assert!(!b.valid && b.version == 0);
            // Not granted (`pay-*` does not match): refused before the name
            // is looked at, as the single call refuses it.
            assert_eq!(e.code_name, "PERMISSION_DENIED");
        }
        other => panic!("{other:?}"),
    }
    let lines = trail(&f).await;
    let items = lines[0]["items"].as_array().unwrap();
    assert_eq!(items[0]["reason"], "valid");
    assert_eq!(items[1]["reason"], "invalid");
    assert_eq!(items[2]["key"], "(invalid name)");
    assert_eq!(items[2]["code"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn a_caller_without_the_operation_anywhere_is_refused_the_call() {
    let f = fixture(SignerLimits::default()).await;
    let mut r = request(
        &rpcs::SIGN_BATCH,
        pb::SignBatchRequest {
            items: vec![sign_item("pay-a", b"x")],
        },
    );
    r.extensions_mut().insert(CallContext {
        request_id: "req-c".into(),
        identity: Arc::from("stranger"),
        source: "127.0.0.1".parse().unwrap(),
        rpc: rpcs::SIGN_BATCH.path.into(),
    });
    let e = f.signer.sign_batch(r).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
}
