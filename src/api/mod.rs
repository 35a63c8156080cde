//! The gRPC services: validate, call the registry, map errors.

pub mod admin;
pub mod convert;
pub mod signer;

use tonic::{Response, Status};

use crate::error::Result;

/// Generated protobuf and gRPC code for `signet.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("signet.v1");

    /// The encoded descriptor set of `proto/`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/signet_descriptor.bin"));
}

/// A fresh request id: returned in `x-request-id` response metadata and
/// logged next to any error detail.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Turns a handler's result into a gRPC response carrying the request id.
pub fn respond<T>(request_id: &str, result: Result<T>) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => {
            let mut r = Response::new(v);
            if let Ok(val) = request_id.parse() {
                r.metadata_mut().insert("x-request-id", val);
            }
            Ok(r)
        }
        Err(e) => Err(e.into_status(request_id)),
    }
}

/// What an audit record takes from a response.
pub trait Audited {
    /// The key version used.
    fn version(&self) -> Option<u32> {
        None
    }
    /// A verdict, for verification.
    fn verdict(&self) -> Option<String> {
        None
    }
}

impl Audited for pb::SignResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::VerifyResponse {
    fn version(&self) -> Option<u32> {
        (self.version > 0).then_some(self.version)
    }
    fn verdict(&self) -> Option<String> {
        Some(if self.valid { "valid" } else { "invalid" }.into())
    }
}
impl Audited for pb::SignHttpRequestResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::VerifyHttpRequestResponse {
    fn version(&self) -> Option<u32> {
        (self.version > 0).then_some(self.version)
    }
    fn verdict(&self) -> Option<String> {
        Some(if self.valid {
            "valid".to_string()
        } else {
            pb::VerifyFailureReason::try_from(self.reason)
                .map(|r| r.as_str_name().to_string())
                .unwrap_or_default()
        })
    }
}
impl Audited for pb::GetPublicKeyResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::GetJwksResponse {}
impl Audited for pb::ListHttpProfilesResponse {}
impl Audited for pb::Key {}
impl Audited for pb::ListKeysResponse {}
impl Audited for pb::RotateKeyResponse {
    fn version(&self) -> Option<u32> {
        self.version.as_ref().map(|v| v.version)
    }
}

/// The outcome record of a call that has begun, until it is written.
///
/// Dropped without [`Outcome::take`] (the handler panicked past the catch
/// below, or the call's future was dropped because the client went away),
/// it still ends the call's trail: `INTERNAL` when unwinding, `CANCELLED`
/// otherwise. No `started` record is left without an outcome.
struct Outcome<'a> {
    audit: &'a crate::audit::Audit,
    record: Option<crate::audit::Record>,
}

impl Outcome<'_> {
    fn take(&mut self) -> crate::audit::Record {
        self.record.take().expect("the outcome is taken once")
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        let Some(r) = self.record.take() else {
            return;
        };
        let (code, reason) = if std::thread::panicking() {
            (tonic::Code::Internal, "the handler panicked")
        } else {
            (
                tonic::Code::Cancelled,
                "the call ended before its handler did (client gone or deadline); \
                 an admin operation may or may not have been applied",
            )
        };
        let mut r = r.with_code(code);
        r.reason = Some(reason.into());
        self.audit.record(r);
    }
}

/// Polls `f()` to completion; a panic in it (or in creating it) becomes
/// an `INTERNAL` error instead of unwinding into the transport, which
/// would reset the stream (the client would see `CANCELLED`).
///
/// Unwind safety: the registry's mutations work on a copy of the record
/// and swap it in last, and its locks do not poison; a panic mid-handler
/// leaves the previous state in force.
async fn catch_panic<T, Fut>(f: impl FnOnce() -> Fut) -> Result<T>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut f = Some(f);
    let mut fut = std::pin::pin!(None::<Fut>);
    std::future::poll_fn(|cx| {
        catch_unwind(AssertUnwindSafe(|| {
            if let Some(f) = f.take() {
                fut.set(Some(f()));
            }
            match fut.as_mut().as_pin_mut() {
                Some(fut) => fut.poll(cx),
                None => std::task::Poll::Ready(Err(crate::error::Error::internal(
                    "handler polled after a panic",
                ))),
            }
        }))
        .unwrap_or_else(|_| {
            std::task::Poll::Ready(Err(crate::error::Error::internal("the handler panicked")))
        })
    })
    .await
}

/// Runs one call: authorizes `op` on `name` (a call that names no key or
/// profile is a list, which needs `op` on something), audits, runs `f`,
/// audits the outcome, and answers with the request id.
///
/// Admin operations are audited durably: a `started` record must be
/// written before `f` runs (else `UNAVAILABLE` and nothing is done), and
/// denials and outcomes are written before the answer. Once `f` may run,
/// every path writes an outcome: a panic in `f` is `INTERNAL` (to the
/// client too, with the request id), a call dropped before it finished is
/// `CANCELLED` ([`Outcome`]).
pub async fn run<T: Audited, Fut>(
    security: &crate::auth::Security,
    ctx: &crate::auth::CallContext,
    mut record: crate::audit::Record,
    op: crate::auth::Op,
    name: Option<&str>,
    f: impl FnOnce() -> Fut,
) -> Result<Response<T>, Status>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    let audit = security.audit();
    // A malformed name is not written down as given: a client that put a
    // secret in the wrong field must not find it in the trail.
    for n in [&mut record.key, &mut record.profile].into_iter().flatten() {
        if crate::keys::validate_name("name", n).is_err() {
            *n = "(invalid name)".into();
        }
    }
    let allowed = match name {
        Some(name) => security.authorize(ctx, op, name),
        None => security.authorize_list(ctx, op),
    };
    if let Err(e) = allowed {
        let status = e.into_status(&ctx.request_id);
        let r = record.with_code(status.code());
        if op.is_admin() {
            let _ = audit.record_durable(r).await;
        } else {
            audit.record(r);
        }
        return Err(status);
    }
    if op.is_admin() {
        let mut started = record.clone();
        started.outcome = "started";
        started.code = None;
        if let Err(e) = audit.record_durable(started).await {
            return Err(e.into_status(&ctx.request_id));
        }
    }
    let mut outcome = Outcome {
        audit,
        record: Some(record),
    };
    let result = catch_panic(f).await;
    let mut record = outcome.take();
    match &result {
        Ok(v) => {
            if record.version.is_none() {
                record.version = v.version();
            }
            record.reason = v.verdict();
            record = record.with_code(tonic::Code::Ok);
        }
        Err(e) => {
            let code = e.kind().code();
            record = record.with_code(code);
        }
    }
    if op.is_admin() {
        if audit.record_durable(record).await.is_err() {
            tracing::error!(request_id = %ctx.request_id, "admin operation done but its outcome record could not be written");
        }
    } else {
        audit.record(record);
    }
    respond(&ctx.request_id, result)
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod run_tests;

#[cfg(test)]
#[path = "rpcs_tests.rs"]
mod rpcs_tests;
