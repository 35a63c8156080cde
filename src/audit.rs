//! The audit trail: one JSON line per operation, written by a thread of its
//! own so signing never waits on the disk. Admin operations wait until
//! their record is written (and, to a file, synced) and fail when it cannot
//! be: nothing changes keys without a trace.
//!
//! A record holds who, from where, what and the outcome; for signing, the
//! SHA-256 of the message. Never a message, signature, secret, PIN or
//! token.

use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::{AuditConfig, AuditOutput};
use crate::error::{ConfigError, Error, Result, StartupError};

mod line;

/// One audit record.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Record {
    /// RFC 3339, UTC, milliseconds (formatted by the writer thread).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// Also in the response's `x-request-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Arc<str>>,
    /// The authenticated identity, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Arc<str>>,
    /// The client's address (after trusted proxies), written as text by
    /// the writer thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// The gRPC method, e.g. `signet.v1.Signer/Sign`; `tls` for a refused
    /// handshake. Borrowed from the RPC table for the methods signet
    /// serves: no copy per call.
    pub rpc: Cow<'static, str>,
    /// The operation as grants name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    /// The key named by the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key version used or named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The HTTP profile named by the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `ok`, `denied` (authentication, authorization, allow-list, rate),
    /// `error` (any other failure), `started` (an admin operation about to
    /// run) or `refused` (a connection).
    pub outcome: &'static str,
    /// The gRPC status code name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Verification verdicts and refusal reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For signing and verification: SHA-256 of the message or HTTP body,
    /// or of the digest given; hex-encoded by the writer thread.
    #[serde(serialize_with = "hex_digest")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_sha256: Option<[u8; 32]>,
    /// For batches: one entry per item, in the order of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemRecord>>,
}

/// One item of a batch (`SignBatch`, `VerifyBatch`), in its call's record:
/// the key it named, the version, its own outcome and the digest of its
/// input. Never the input or the signature.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct ItemRecord {
    /// The key the item named (`(invalid name)` when it is not a name).
    pub key: String,
    /// The version requested, then the one that signed or verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The item's own gRPC code; absent when the batch ended before the
    /// item was done (the call's own code says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// For verification: `valid` or `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// SHA-256 of the item's message or digest, hex-encoded by the writer
    /// thread.
    #[serde(serialize_with = "hex_digest")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_sha256: Option<[u8; 32]>,
}

fn hex_digest<S: serde::Serializer>(
    d: &Option<[u8; 32]>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    // Into a buffer on the stack: `hex::encode` goes a char at a time into
    // a String, which perf showed costing more than the rest of the entry.
    let mut buf = [0u8; 64];
    match d {
        Some(d) => match hex::encode_to_slice(d, &mut buf) {
            Ok(()) => s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default()),
            Err(_) => s.serialize_none(),
        },
        None => s.serialize_none(),
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

impl Default for Record {
    fn default() -> Self {
        Self {
            time: SystemTime::UNIX_EPOCH,
            request_id: None,
            identity: None,
            source: None,
            rpc: Cow::Borrowed(""),
            operation: None,
            key: None,
            version: None,
            profile: None,
            outcome: "ok",
            code: None,
            reason: None,
            message_sha256: None,
            items: None,
        }
    }
}

impl Record {
    /// A record of a call to `rpc`.
    pub(crate) fn call(rpc: impl Into<Cow<'static, str>>) -> Self {
        Self {
            time: SystemTime::now(),
            rpc: rpc.into(),
            outcome: "ok",
            code: Some("OK"),
            ..Default::default()
        }
    }

    /// A connection refused before any call (a failed TLS handshake).
    pub(crate) fn connection_refused(source: IpAddr, reason: &str) -> Self {
        Self {
            time: SystemTime::now(),
            source: Some(source),
            rpc: Cow::Borrowed("tls"),
            outcome: "refused",
            reason: Some(reason.chars().take(200).collect()),
            ..Default::default()
        }
    }

    /// Sets the outcome from a gRPC code.
    pub(crate) fn with_code(mut self, code: tonic::Code) -> Self {
        self.time = SystemTime::now();
        self.code = Some(crate::error::code_name(code));
        self.outcome = match code {
            tonic::Code::Ok => "ok",
            tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied
            | tonic::Code::ResourceExhausted => "denied",
            _ => "error",
        };
        self
    }
}

struct Msg {
    /// None: a flush, written as nothing but acknowledged in order.
    record: Option<Box<Record>>,
    ack: Option<tokio::sync::oneshot::Sender<bool>>,
}

struct Inner {
    tx: std::sync::mpsc::SyncSender<Msg>,
    dropped: AtomicU64,
    healthy: Arc<AtomicBool>,
}

/// The audit trail's writing end; cheap to clone.
#[derive(Clone)]
pub(crate) struct Audit {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("on", &self.inner.is_some())
            .finish()
    }
}

/// How long the writer waits for more records, under load, before it
/// drains the queue.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// A trail that wrote less than this long ago is under load: its writer
/// lingers even when the first record comes alone.
const BUSY: std::time::Duration = std::time::Duration::from_millis(20);

/// Records queued at most; past that, records are dropped (and counted,
/// and admin operations refused) rather than memory growing without bound.
const QUEUE: usize = 64 * 1024;

enum Sink {
    Stdout,
    File(std::fs::File, PathBuf),
}

impl Audit {
    /// No audit trail (`output = "off"`; benchmarks and unit tests).
    pub(crate) fn off() -> Self {
        Self { inner: None }
    }

    /// Opens the trail the section describes; a file that cannot be opened
    /// for appending stops start-up.
    pub(crate) fn open(cfg: &AuditConfig) -> std::result::Result<Self, StartupError> {
        cfg.validate()?;
        let sink = match (cfg.output, &cfg.path) {
            (AuditOutput::File, Some(p)) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        ConfigError::new(format!("audit.path {}", p.display()), e.to_string())
                    })?;
                Sink::File(f, p.clone())
            }
            (AuditOutput::Stdout, _) => Sink::Stdout,
            _ => return Ok(Self::off()),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        std::thread::Builder::new()
            .name("signet-audit".into())
            .spawn(move || write_loop(sink, rx, h))
            .map_err(|e| StartupError::failed("audit thread", e))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                tx,
                dropped: AtomicU64::new(0),
                healthy,
            })),
        })
    }

    /// Queues a record; never waits.
    pub(crate) fn record(&self, r: Record) {
        let Some(inner) = &self.inner else { return };
        // Serialised on the writer thread, not on the request's.
        if inner
            .tx
            .try_send(Msg {
                record: Some(Box::new(r)),
                ack: None,
            })
            .is_err()
        {
            let n = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            inner.healthy.store(false, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::error!(
                    dropped = n,
                    "audit queue full or writer gone: records dropped"
                );
            }
        }
    }

    /// Writes a record and waits until it is written (and synced, to a
    /// file). Fails with `UNAVAILABLE` when it cannot be: the caller (an
    /// admin operation) must then not proceed.
    pub(crate) async fn record_durable(&self, r: Record) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (ack, done) = tokio::sync::oneshot::channel();
        let unavailable = || Error::unavailable("audit trail unavailable; operation not performed");
        inner
            .tx
            .try_send(Msg {
                record: Some(Box::new(r)),
                ack: Some(ack),
            })
            .map_err(|_| unavailable())?;
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(unavailable()),
        }
    }

    /// Waits until every record queued so far is written (and synced, to a
    /// file): at shutdown, so the process does not exit with records in
    /// the queue. False when they could not be written.
    pub(crate) async fn flush(&self) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let (ack, done) = tokio::sync::oneshot::channel();
        // Blocks (off the runtime) if the queue is full: a flush must not be
        // dropped.
        let tx = inner.tx.clone();
        let sent = tokio::task::spawn_blocking(move || {
            tx.send(Msg {
                record: None,
                ack: Some(ack),
            })
            .is_ok()
        })
        .await
        .unwrap_or(false);
        sent && done.await.unwrap_or(false)
    }
}

/// Whether the writer sleeps [`LINGER`] before draining: when a second
/// record is already queued, or the trail is busy, unless a sender waits
/// for a durable write (the first record's, or the second's).
fn linger(first_waits: bool, second_waits: Option<bool>, busy: bool) -> bool {
    if first_waits || second_waits == Some(true) {
        return false;
    }
    second_waits.is_some() || busy
}

fn write_loop(mut sink: Sink, rx: std::sync::mpsc::Receiver<Msg>, healthy: Arc<AtomicBool>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut line = line::Line::default();
    let mut last_write: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        // Under load, linger a moment before draining: a record sent while
        // this thread sleeps (rather than waits in `recv`) costs its sender
        // no wake-up, which is a futex call on the request's own thread,
        // and one write (and at most one sync) covers the batch. Load is a
        // second record already queued, or a write moments ago: at a few
        // thousand calls a second the next record is rarely queued yet when
        // this thread wakes, and waking once per record cost about 2 µs of
        // CPU per call (perf, docs/benchmarks.md). An idle trail writes a
        // lone record at once, and so does a trail whose first or second
        // queued record is durable: its sender waits for the sync, an admin
        // call waits for two, and lingering for them made every admin call
        // under load, GetKey included, several ms slower (docs/benchmarks.md,
        // "The key registry in PostgreSQL (issue 14)"). A durable record
        // that arrives during a linger waits out the rest of it (< 2 ms).
        let mut batch = vec![first];
        let busy = last_write.is_some_and(|t| t.elapsed() < BUSY);
        let second = rx.try_recv().ok();
        let waits = |m: &Msg| m.ack.is_some();
        if linger(waits(&batch[0]), second.as_ref().map(waits), busy) {
            std::thread::sleep(LINGER);
        }
        batch.extend(second);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        buf.clear();
        let mut durable = false;
        for m in &batch {
            durable |= m.ack.is_some();
            let Some(record) = &m.record else { continue };
            let start = buf.len();
            if line.write(record, &mut buf).is_err() {
                buf.truncate(start);
                continue;
            }
            buf.push(b'\n');
        }
        let ok = match &mut sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&buf).and_then(|_| out.flush()).is_ok()
            }
            Sink::File(f, path) => {
                let r = f
                    .write_all(&buf)
                    .and_then(|_| if durable { f.sync_data() } else { Ok(()) });
                if let Err(e) = &r {
                    tracing::error!(path = %path.display(), error = %e, "audit write failed");
                }
                r.is_ok()
            }
        };
        healthy.store(ok, Ordering::Relaxed);
        last_write = Some(std::time::Instant::now());
        for m in batch {
            if let Some(ack) = m.ack {
                let _ = ack.send(ok);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_lingers_under_load_but_never_while_a_durable_write_waits() {
        // (first record waits, second record: none / queued and waits?, busy)
        assert!(
            !linger(false, None, false),
            "a lone record on an idle trail"
        );
        assert!(linger(false, None, true), "a lone record on a busy trail");
        assert!(linger(false, Some(false), false), "a second record queued");
        assert!(!linger(true, None, true), "an admin record waits");
        assert!(
            !linger(true, Some(false), true),
            "an admin record waits, first"
        );
        assert!(
            !linger(false, Some(true), true),
            "an admin record waits, second"
        );
    }

    #[tokio::test]
    async fn lines_are_json_and_durable_writes_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let a = Audit::open(&AuditConfig {
            output: AuditOutput::File,
            path: Some(path.clone()),
        })
        .unwrap();
        let mut r = Record::call("signet.v1.Signer/Sign");
        r.key = Some("k".into());
        r.message_sha256 = Some([0xab; 32]);
        r.source = Some(IpAddr::from([192, 0, 2, 7]));
        r.identity = Some("payments".into());
        r.request_id = Some("4f2a".into());
        a.record(r);
        let r =
            Record::call("signet.v1.KeyAdmin/RotateKey").with_code(tonic::Code::PermissionDenied);
        a.record_durable(r).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["rpc"], "signet.v1.Signer/Sign");
        assert_eq!(lines[0]["outcome"], "ok");
        // Kept as bytes, an address and shared strings until the writer
        // thread: written as the text they always were.
        assert_eq!(lines[0]["message_sha256"], "ab".repeat(32));
        assert_eq!(lines[0]["source"], "192.0.2.7");
        assert_eq!(lines[0]["identity"], "payments");
        assert_eq!(lines[0]["request_id"], "4f2a");
        assert_eq!(lines[0]["key"], "k");
        assert_eq!(lines[1]["outcome"], "denied");
        assert_eq!(lines[1]["code"], "PERMISSION_DENIED");
        assert!(lines[1].get("key").is_none());
    }

    #[tokio::test]
    async fn a_failing_sink_fails_durable_records() {
        // /dev/full accepts the open and refuses every write.
        let a = Audit::open(&AuditConfig {
            output: AuditOutput::File,
            path: Some("/dev/full".into()),
        })
        .unwrap();
        let e = a
            .record_durable(Record::call("signet.v1.KeyAdmin/CreateKey"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable);
    }

    #[test]
    fn bad_sections_are_refused() {
        let c = |o: AuditOutput, p: Option<&str>| AuditConfig {
            output: o,
            path: p.map(PathBuf::from),
        };
        assert!(Audit::open(&c(AuditOutput::File, None)).is_err());
        assert!(Audit::open(&c(AuditOutput::Stdout, Some("/tmp/x"))).is_err());
        // An output outside the set cannot be written down: it is refused
        // when the file is read.
        assert!(crate::config::Config::parse("[audit]\noutput = \"syslog\"\n").is_err());
        assert!(Audit::open(&c(AuditOutput::File, Some("/nonexistent-dir/a.jsonl"))).is_err());
    }
}
