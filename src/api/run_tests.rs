//! Every call that may run its handler ends its audit trail: a panic is
//! `INTERNAL` (to the client too), a dropped call is `CANCELLED`.

use std::sync::Arc;

use super::*;
use crate::api::pb;
use crate::audit::Audit;
use crate::auth::{CallContext, Op, Policy, Security};
use crate::config::{AuditConfig, Config};
use crate::rpcs;

fn security(path: &std::path::Path) -> Arc<Security> {
    let c = Config::default();
    let audit = Audit::open(&AuditConfig {
        output: crate::config::AuditOutput::File,
        path: Some(path.to_path_buf()),
    })
    .unwrap();
    Security::new(Policy::new(&c.auth, &c.limits).unwrap(), audit, 16)
}

fn ctx() -> CallContext {
    CallContext {
        request_id: "req-0123".into(),
        identity: Arc::from("anonymous"),
        source: "127.0.0.1".parse().unwrap(),
        rpc: "signet.v1.KeyAdmin/PromoteKeyVersion".into(),
    }
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
async fn a_panicking_admin_handler_answers_internal_and_ends_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let s = security(&path);
    let ctx = ctx();
    let mut rec = ctx.record(Op::AdminPromote);
    rec.key = Some("k".into());
    let r: Result<Response<pb::PromoteKeyVersionResponse>, Status> =
        run(&s, &ctx, rec, &rpcs::PROMOTE_KEY_VERSION, || async {
            // What an unchecked `now + grace` did with a huge grace period.
            let _ = std::time::SystemTime::now() + std::time::Duration::from_secs(u64::MAX);
            Ok(pb::PromoteKeyVersionResponse::default())
        })
        .await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal);
    assert_eq!(e.message(), "internal error (request id req-0123)");
    let lines = trail(&s, &path).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "started");
    assert_eq!(lines[1]["outcome"], "error");
    assert_eq!(lines[1]["code"], "INTERNAL");
    assert_eq!(lines[1]["request_id"], "req-0123");
}

#[tokio::test]
async fn a_panic_while_making_the_handler_future_is_caught_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let s = security(&path);
    let ctx = ctx();
    let mut rec = ctx.record(Op::Sign);
    rec.key = Some("k".into());
    let r: Result<Response<pb::SignResponse>, Status> =
        run(&s, &ctx, rec, &rpcs::SIGN, || -> std::future::Ready<_> {
            panic!("before the future exists")
        })
        .await;
    assert_eq!(r.unwrap_err().code(), tonic::Code::Internal);
    let lines = trail(&s, &path).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["code"], "INTERNAL");
}

#[tokio::test]
async fn a_call_dropped_mid_handler_still_gets_an_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let s = security(&path);
    let ctx = ctx();
    let mut rec = ctx.record(Op::AdminPromote);
    rec.key = Some("k".into());
    let (entered, reached) = tokio::sync::oneshot::channel::<()>();
    let call =
        run::<pb::PromoteKeyVersionResponse, _>(&s, &ctx, rec, &rpcs::PROMOTE_KEY_VERSION, || {
            let _ = entered.send(());
            std::future::pending()
        });
    // The client goes away once the handler runs (not on a timer: a slow
    // disk can take longer to sync the `started` record, and a call
    // dropped before its handler runs rightly gets no outcome): the
    // transport drops the call's future.
    tokio::select! {
        _ = call => panic!("a pending handler finished"),
        r = reached => r.unwrap(),
    }
    let lines = trail(&s, &path).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "started");
    assert_eq!(lines[1]["code"], "CANCELLED");
    assert!(lines[1]["reason"]
        .as_str()
        .unwrap()
        .contains("ended before"));
}

#[test]
fn unwinding_through_the_guard_records_internal() {
    // The guard's own last resort, for a panic that escapes the catch.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async { security(&path) });
    let audit = s.audit().clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = Outcome {
            audit: &audit,
            record: Some(ctx().record(Op::AdminRotate)),
        };
        panic!("escaped");
    }));
    assert!(r.is_err());
    let lines = rt.block_on(trail(&s, &path));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["code"], "INTERNAL");
    assert_eq!(lines[0]["reason"], "the handler panicked");
}
