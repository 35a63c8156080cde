//! The one path every call takes: authorize, validate, call, audit,
//! respond.
//!
//! Each request message implements [`Call`]: its row of the RPC table
//! ([`crate::rpcs`]), the name it acts on, the audit fields it adds, and
//! the call itself. [`serve`] does the rest, the same way for every RPC:
//! it builds the audit record, authorizes the operation on the subject,
//! writes the `started` record of an admin operation, runs the checks and
//! validates the subject's name, then the call, and audits the outcome
//! whatever happens (an error, a panic, a dropped call).
//!
//! The path is generic, so each RPC gets its own monomorphic copy: no
//! boxing and no allocation beyond the audit record's own.

use std::future::Future;

use tonic::{Request, Response, Status};

use super::{respond, Audited};
use crate::audit::Record;
use crate::auth::{CallContext, Security};
use crate::error::Result;
use crate::rpcs::{Rpc, Subject};

/// A service whose calls go through [`serve`].
pub(crate) trait Served: Sync {
    /// Its authorization policy and audit trail.
    fn security(&self) -> &Security;
}

/// A request message: what it acts on, what its audit record shows, and
/// what the call does. Implemented once per RPC.
pub(crate) trait Call: Sized + Send {
    /// The service that answers it.
    type Service: Served;
    /// Its response message.
    type Reply: Audited + Send;
    /// Its row of the RPC table: path, operation, kind of subject.
    const RPC: &'static Rpc;

    /// The name of the key or profile the request acts on (the kind
    /// [`Rpc::subject`] says); unused for lists.
    fn subject(&self) -> &str {
        ""
    }

    /// Audit fields beyond who, which operation and the subject: a
    /// version, a digest of the message, a profile's key. Never a secret.
    fn audit(&self, _service: &Self::Service, _record: &mut Record) {}

    /// Checks that come before the subject's name is validated (the size
    /// limits of HTTP requests).
    fn check(&self, _service: &Self::Service) -> Result<()> {
        Ok(())
    }

    /// The call itself, once the caller is authorized, [`Call::check`]
    /// passed and the subject's name is valid.
    fn call(
        self,
        service: &Self::Service,
        ctx: &CallContext,
    ) -> impl Future<Output = Result<Self::Reply>> + Send;
}

/// Answers one call of `R` on `service`.
pub(crate) async fn serve<R: Call>(
    service: &R::Service,
    mut request: Request<R>,
) -> Result<Response<R::Reply>, Status> {
    let ctx = CallContext::take(&mut request);
    let req = request.into_inner();
    let mut record = ctx.record(R::RPC.op);
    match R::RPC.subject {
        Subject::Key => record.key = Some(req.subject().to_owned()),
        Subject::Profile => record.profile = Some(req.subject().to_owned()),
        Subject::List | Subject::Items => {}
    }
    req.audit(service, &mut record);
    let context = &ctx;
    run(service.security(), &ctx, record, R::RPC, || async move {
        req.check(service)?;
        if let Some(noun) = R::RPC.subject.noun() {
            crate::keys::validate_name(noun, req.subject())?;
        }
        req.call(service, context).await
    })
    .await
}

/// The outcome record of a call that has begun, until it is written.
///
/// Dropped without [`Outcome::take`] (the handler panicked past the catch
/// below, or the call's future was dropped because the client went away),
/// it still ends the call's trail: `INTERNAL` when unwinding, `CANCELLED`
/// otherwise. No `started` record is left without an outcome.
struct Outcome<'a> {
    audit: &'a crate::audit::Audit,
    record: Option<Record>,
}

impl Outcome<'_> {
    fn take(&mut self) -> Record {
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
    Fut: Future<Output = Result<T>>,
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

/// Runs one call of `rpc`: authorizes its operation on the subject the
/// record names (`record.key` or `record.profile`, as `rpc.subject` says;
/// a list needs the operation on something), audits, runs `f`, audits the
/// outcome, and answers with the request id.
///
/// Admin operations are audited durably: a `started` record must be
/// written before `f` runs (else `UNAVAILABLE` and nothing is done), and
/// denials and outcomes are written before the answer. Once `f` may run,
/// every path writes an outcome: a panic in `f` is `INTERNAL` (to the
/// client too, with the request id), a call dropped before it finished is
/// `CANCELLED` ([`Outcome`]).
pub(crate) async fn run<T: Audited, Fut>(
    security: &Security,
    ctx: &CallContext,
    mut record: Record,
    rpc: &Rpc,
    f: impl FnOnce() -> Fut,
) -> Result<Response<T>, Status>
where
    Fut: Future<Output = Result<T>>,
{
    let op = rpc.op;
    let audit = security.audit();
    let allowed = match rpc.subject {
        Subject::Key => security.authorize(ctx, op, record.key.as_deref().unwrap_or_default()),
        Subject::Profile => {
            security.authorize(ctx, op, record.profile.as_deref().unwrap_or_default())
        }
        Subject::List | Subject::Items => security.authorize_list(ctx, op),
    };
    // A malformed name is not written down as given: a client that put a
    // secret in the wrong field must not find it in the trail.
    for n in [&mut record.key, &mut record.profile].into_iter().flatten() {
        if crate::keys::validate_name("name", n).is_err() {
            *n = "(invalid name)".into();
        }
    }
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
    // The author of every registry change an admin call makes, for a store
    // that audits each change in its own commit (PostgreSQL). Other calls
    // change no key: they skip the copies and the task-local scope.
    let change = op.is_admin().then(|| crate::keys::store::Change {
        rpc: record.rpc.to_string(),
        operation: record.operation,
        request_id: record.request_id.as_deref().map(str::to_owned),
        identity: record.identity.as_deref().map(str::to_owned),
        source: record.source.map(|s| s.to_string()),
        version: record.version,
    });
    let mut outcome = Outcome {
        audit,
        record: Some(record),
    };
    let result = match change {
        Some(change) => crate::keys::store::changed_by(change, catch_panic(f)).await,
        None => catch_panic(f).await,
    };
    let mut record = outcome.take();
    match &result {
        Ok(v) => {
            if record.version.is_none() {
                record.version = v.version();
            }
            if let Some(verdict) = v.verdict() {
                record.reason = Some(verdict);
            }
            if let Some(items) = record.items.as_mut() {
                v.complete_items(items);
            }
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
