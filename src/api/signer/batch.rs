//! `SignBatch` and `VerifyBatch`: many keys' operations in one call.
//!
//! Each item is the request its single call takes (`SignRequest`,
//! `VerifyRequest`) and is served as that call would be, inside the batch:
//! the caller's rate is charged for it (the call itself paid for the
//! first), its operation is authorized on the key it names, the name is
//! validated, and the single call's code runs ([`SignerService::sign_one`],
//! [`SignerService::verify_one`]). An item that fails gets its own error in
//! its own result; the others go on. The call's one audit record lists
//! every item: the key, the version, the item's code and the SHA-256 of its
//! input.
//!
//! Items are served one after another on the call's task, which yields to
//! the runtime every [`SLICE`] so a batch of slow signatures (RSA) does not
//! hold a worker thread longer than a single call would.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::SignerService;
use crate::api::{pb, Audited, Call};
use crate::audit::{ItemRecord, Record};
use crate::auth::CallContext;
use crate::error::{Error, Result};
use crate::rpcs::{self, Op, Rpc};

/// The longest a batch runs before it lets other tasks run.
const SLICE: Duration = Duration::from_millis(1);

/// What the limits need to know of an item, and what its audit entry
/// shows.
trait Item {
    /// The key the item names.
    fn key(&self) -> &str;
    /// The version it asks for (0: the default).
    fn version(&self) -> u32;
    /// The message or digest.
    fn input(&self) -> Option<&[u8]>;
    /// Bytes it adds to the batch: its name, input and signature.
    fn bytes(&self) -> usize;
}

impl Item for pb::SignRequest {
    fn key(&self) -> &str {
        &self.key
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn input(&self) -> Option<&[u8]> {
        use pb::sign_request::Input as I;
        match &self.input {
            Some(I::Message(m) | I::Digest(m)) => Some(m),
            None => None,
        }
    }
    fn bytes(&self) -> usize {
        self.key.len() + self.input().map_or(0, <[u8]>::len)
    }
}

impl Item for pb::VerifyRequest {
    fn key(&self) -> &str {
        &self.key
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn input(&self) -> Option<&[u8]> {
        use pb::verify_request::Input as I;
        match &self.input {
            Some(I::Message(m) | I::Digest(m)) => Some(m),
            None => None,
        }
    }
    fn bytes(&self) -> usize {
        self.key.len() + self.input().map_or(0, <[u8]>::len) + self.signature.len()
    }
}

impl SignerService {
    /// The batch's own limits: `INVALID_ARGUMENT` past the item count or
    /// the byte total, before any item is served.
    fn check_batch<I: Item>(&self, items: &[I]) -> Result<()> {
        let max = self.limits.max_batch_items;
        if items.len() > max {
            return Err(Error::invalid(format!(
                "batch has {} items; the limit is {max}",
                items.len()
            )));
        }
        let bytes: usize = items.iter().map(Item::bytes).sum();
        let max = self.limits.max_batch_bytes;
        if bytes > max {
            return Err(Error::invalid(format!(
                "batch carries {bytes} bytes of names, inputs and signatures; the limit is {max}"
            )));
        }
        Ok(())
    }

    /// The audit entries of a batch within its limits; `None` for one the
    /// limits refuse (the call's record then says why, and no work is spent
    /// hashing what will not be served).
    fn item_records<I: Item>(&self, items: &[I]) -> Option<Vec<ItemRecord>> {
        self.check_batch(items).ok()?;
        Some(
            items
                .iter()
                .map(|it| ItemRecord {
                    // A malformed name is not written down as given.
                    key: match crate::keys::validate_name("key", it.key()) {
                        Ok(()) => it.key().to_owned(),
                        Err(_) => "(invalid name)".to_owned(),
                    },
                    version: (it.version() > 0).then_some(it.version()),
                    message_sha256: it.input().map(|b| Sha256::digest(b).into()),
                    ..ItemRecord::default()
                })
                .collect(),
        )
    }

    /// Admits item `index` of a batch as its single call would be admitted:
    /// the caller's rate (past the first item), the grant on the key, the
    /// key's name.
    fn admit_item(&self, ctx: &CallContext, index: usize, op: Op, key: &str) -> Result<()> {
        if index > 0 {
            self.security.charge_item(ctx)?;
        }
        self.security.authorize(ctx, op, key)?;
        crate::keys::validate_name("key", key)
    }
}

/// Lets other tasks run once a batch has had the thread for [`SLICE`]
/// (the clock is read once per item: about 25 ns, against at least half a
/// microsecond for the fastest item).
struct Pacer(Instant);

impl Pacer {
    fn new() -> Self {
        Self(Instant::now())
    }

    async fn pace(&mut self) {
        if self.0.elapsed() >= SLICE {
            tokio::task::yield_now().await;
            self.0 = Instant::now();
        }
    }
}

/// An item's error, as its single call would have answered it.
fn item_error(e: Error, ctx: &CallContext) -> pb::BatchItemError {
    let (code, message, wait) = e.into_answer(&ctx.request_id);
    pb::BatchItemError {
        code: code as u32,
        code_name: crate::error::code_name(code).to_owned(),
        message,
        retry_after_ms: wait.map_or(0, |w| {
            u64::try_from(w.as_millis()).unwrap_or(u64::MAX).max(1)
        }),
    }
}

/// Counts a batch's items in `signet_batch_items_total`: of `total`,
/// `failed` had their own error, the rest were answered.
fn count(rpc: &Rpc, total: usize, failed: usize) {
    crate::telemetry::metrics::get().batch_items(
        rpc.method,
        (total - failed) as u64,
        failed as u64,
    );
}

/// The code name of an item's error, for its audit entry.
fn error_code(e: &pb::BatchItemError) -> &'static str {
    crate::error::code_name(tonic::Code::from(i32::try_from(e.code).unwrap_or(2)))
}

/// Serves each item as its single call would be: admitted
/// ([`SignerService::admit_item`]), then `one`; counted in the metrics.
/// Each item's answer or error, in order.
async fn serve_items<I: Item, T, Fut>(
    s: &SignerService,
    ctx: &CallContext,
    rpc: &Rpc,
    items: Vec<I>,
    one: impl Fn(I) -> Fut,
) -> Vec<std::result::Result<T, pb::BatchItemError>>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut out = Vec::with_capacity(items.len());
    let mut pacer = Pacer::new();
    for (i, item) in items.into_iter().enumerate() {
        let outcome = match s.admit_item(ctx, i, rpc.op, item.key()) {
            Ok(()) => one(item).await,
            Err(e) => Err(e),
        };
        out.push(outcome.map_err(|e| item_error(e, ctx)));
        pacer.pace().await;
    }
    let failed = out.iter().filter(|r| r.is_err()).count();
    count(rpc, out.len(), failed);
    out
}

/// Fills each audit entry from its item's outcome: `OK` and what `ok`
/// takes from the answer, or the error's code.
fn complete<'a, T: 'a>(
    items: &mut [ItemRecord],
    outcomes: impl Iterator<Item = Option<std::result::Result<&'a T, &'a pb::BatchItemError>>>,
    ok: impl Fn(&mut ItemRecord, &T),
) {
    for (entry, outcome) in items.iter_mut().zip(outcomes) {
        match outcome {
            Some(Ok(answer)) => {
                entry.code = Some("OK");
                ok(entry, answer);
            }
            Some(Err(e)) => entry.code = Some(error_code(e)),
            None => {}
        }
    }
}

impl Call for pb::SignBatchRequest {
    type Service = SignerService;
    type Reply = pb::SignBatchResponse;
    const RPC: &'static Rpc = &rpcs::SIGN_BATCH;

    fn audit(&self, s: &SignerService, record: &mut Record) {
        record.items = s.item_records(&self.items);
    }

    fn check(&self, s: &SignerService) -> Result<()> {
        s.check_batch(&self.items)
    }

    async fn call(self, s: &SignerService, ctx: &CallContext) -> Result<pb::SignBatchResponse> {
        use pb::sign_batch_result::Result as R;
        let outcomes = serve_items(s, ctx, Self::RPC, self.items, |item| s.sign_one(item)).await;
        let results = outcomes
            .into_iter()
            .map(|o| pb::SignBatchResult {
                result: Some(match o {
                    Ok(signed) => R::Signed(signed),
                    Err(e) => R::Error(e),
                }),
            })
            .collect();
        Ok(pb::SignBatchResponse { results })
    }
}

impl Call for pb::VerifyBatchRequest {
    type Service = SignerService;
    type Reply = pb::VerifyBatchResponse;
    const RPC: &'static Rpc = &rpcs::VERIFY_BATCH;

    fn audit(&self, s: &SignerService, record: &mut Record) {
        record.items = s.item_records(&self.items);
    }

    fn check(&self, s: &SignerService) -> Result<()> {
        s.check_batch(&self.items)
    }

    async fn call(self, s: &SignerService, ctx: &CallContext) -> Result<pb::VerifyBatchResponse> {
        use pb::verify_batch_result::Result as R;
        let outcomes = serve_items(s, ctx, Self::RPC, self.items, |item| s.verify_one(item)).await;
        let results = outcomes
            .into_iter()
            .map(|o| pb::VerifyBatchResult {
                result: Some(match o {
                    Ok(verdict) => R::Verified(verdict),
                    Err(e) => R::Error(e),
                }),
            })
            .collect();
        Ok(pb::VerifyBatchResponse { results })
    }
}

impl Audited for pb::SignBatchResponse {
    fn complete_items(&self, items: &mut [ItemRecord]) {
        use pb::sign_batch_result::Result as R;
        let outcomes = self.results.iter().map(|r| match &r.result {
            Some(R::Signed(s)) => Some(Ok(s)),
            Some(R::Error(e)) => Some(Err(e)),
            None => None,
        });
        complete(items, outcomes, |entry, s| entry.version = Some(s.version));
    }
}

impl Audited for pb::VerifyBatchResponse {
    fn complete_items(&self, items: &mut [ItemRecord]) {
        use pb::verify_batch_result::Result as R;
        let outcomes = self.results.iter().map(|r| match &r.result {
            Some(R::Verified(v)) => Some(Ok(v)),
            Some(R::Error(e)) => Some(Err(e)),
            None => None,
        });
        complete(items, outcomes, |entry, v| {
            if v.version > 0 {
                entry.version = Some(v.version);
            }
            entry.reason = Some(if v.valid { "valid" } else { "invalid" });
        });
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
