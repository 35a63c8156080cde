//! The generic path: every RPC's record, authorization and validation come
//! from its table row and its [`Call`] implementation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::pb::{key_admin_server::KeyAdmin, signer_server::Signer};
use super::*;
use crate::audit::Audit;
use crate::auth::{CallContext, Policy, Security};
use crate::config::{AuditConfig, Config};
use crate::keys::clock::ManualClock;
use crate::keys::memory::MemoryBackend;
use crate::keys::registry::{Registry, RegistrySettings};
use crate::keys::store::NullStore;

async fn setup(path: &std::path::Path) -> (Arc<Registry>, Arc<Security>) {
    let c = Config::default();
    let audit = Audit::open(&AuditConfig {
        output: crate::config::AuditOutput::File,
        path: Some(path.to_path_buf()),
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
    registry
        .import_key(
            "k",
            crate::keys::Algorithm::HmacSha256,
            b"0123456789abcdef0123456789abcdef",
            false,
            BTreeMap::new(),
        )
        .await
        .unwrap();
    (registry, security)
}

fn request<T>(rpc: &crate::rpcs::Rpc, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.extensions_mut().insert(CallContext {
        request_id: "req-1".into(),
        identity: Arc::from("anonymous"),
        source: "127.0.0.1".parse().unwrap(),
        rpc: rpc.path.into(),
    });
    r
}

async fn trail(s: &Security, path: &std::path::Path) -> Vec<serde_json::Value> {
    assert!(s.audit().flush().await);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_call_is_audited_with_its_rows_operation_and_its_declared_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (registry, security) = setup(&path).await;
    let signer = signer::SignerService::new(registry.clone(), Default::default())
        .with_security(security.clone());
    let ok = signer
        .sign(request(
            &crate::rpcs::SIGN,
            pb::SignRequest {
                key: "k".into(),
                version: 1,
                input: Some(pb::sign_request::Input::Message(b"abc".to_vec())),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(ok.metadata().get("x-request-id").unwrap(), "req-1");
    let lines = trail(&security, &path).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let r = &lines[0];
    assert_eq!(r["rpc"], "signet.v1.Signer/Sign");
    assert_eq!(r["operation"], "sign");
    assert_eq!(r["key"], "k");
    assert_eq!(r["version"], 1);
    assert_eq!(
        r["message_sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(r["code"], "OK");
}

#[tokio::test]
async fn the_subject_is_validated_once_after_authorization_and_never_audited_raw() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (registry, security) = setup(&path).await;
    let admin = admin::KeyAdminService::new(registry).with_security(security.clone());
    let e = admin
        .get_key(request(
            &crate::rpcs::GET_KEY,
            pb::GetKeyRequest {
                name: "Not A Name".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().starts_with("invalid key name"),
        "{}",
        e.message()
    );
    let lines = trail(&security, &path).await;
    // An admin operation: started, then the outcome, both sanitized.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "started");
    for r in &lines {
        assert_eq!(r["operation"], "admin.read");
        assert_eq!(r["key"], "(invalid name)");
    }
    assert_eq!(lines[1]["code"], "INVALID_ARGUMENT");
}
