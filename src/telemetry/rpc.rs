//! Per-call telemetry: a tower layer that opens one span per gRPC call
//! (continuing the caller's W3C trace context), counts and times the call
//! by outcome, and lets the code below it name the key, algorithm and
//! caller; plus child spans for backend and replay-store calls.
//!
//! Spans carry names and numbers only: key, profile and identity names,
//! versions, algorithms, status codes. Never a message, digest, body,
//! header value, signature, token or secret.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use parking_lot::Mutex;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::Result;

tokio::task_local! {
    static CALL: Arc<CallInfo>;
}

/// Whether spans go anywhere (OTLP export is on). Off, no span is made at
/// all: a span nobody reads still costs the subscriber's bookkeeping.
static SPANS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns span creation on (when traces are exported).
pub(crate) fn enable_spans() {
    SPANS.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn spans() -> bool {
    SPANS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The parent of a child span (a backend or replay-store operation), or
/// `None` when no child span is to be made: inside a call, the call's own
/// span when it was made (sampled); outside any call, no parent, when the
/// sampler samples the child as a root.
///
/// Spans are never entered. A child names its parent here instead of
/// finding it as the current span, so no span is entered and left on
/// every poll of a call's future (each time through every layer), and
/// nothing else uses the current span: the log layer does not show these
/// spans and the OpenTelemetry layer takes no events.
fn child_parent() -> Option<Option<tracing::Id>> {
    if !spans() {
        return None;
    }
    match CALL.try_with(|c| c.span.id()) {
        Ok(Some(id)) => Some(Some(id)),
        Ok(None) => None,
        Err(_) => super::sampling::sampled(None, "backend", SpanKind::Internal).then_some(None),
    }
}

/// What the handlers learn about a call, for its span and metrics.
struct CallInfo {
    span: tracing::Span,
    noted: Mutex<Noted>,
}

/// What the handlers noted: the algorithm for the metrics, and, when the
/// call has a span, the fields it gets when the call ends, all in one
/// record (each record is a trip through every layer).
#[derive(Default)]
struct Noted {
    algorithm: &'static str,
    key: Option<String>,
    version: Option<u32>,
    profile: Option<String>,
    identity: Option<String>,
    request_id: Option<String>,
}

/// Runs `f` with `CALL` set, if a call is in progress.
fn with_call(f: impl FnOnce(&CallInfo)) {
    let _ = CALL.try_with(|c| f(c));
}

/// The call is about key `name` (an existing key: the name is valid) of
/// the algorithm named `algorithm`.
pub(crate) fn note_key(name: &str, algorithm: &'static str) {
    with_call(|c| {
        let mut n = c.noted.lock();
        n.algorithm = algorithm;
        if !c.span.is_none() {
            n.key = Some(name.to_owned());
        }
    });
}

/// The key version that signed or verified.
pub(crate) fn note_version(v: u32) {
    with_call(|c| {
        if !c.span.is_none() {
            c.noted.lock().version = Some(v);
        }
    });
}

/// The call uses HTTP profile `name` (an existing profile).
pub(crate) fn note_profile(name: &str) {
    with_call(|c| {
        if !c.span.is_none() {
            c.noted.lock().profile = Some(name.to_owned());
        }
    });
}

/// The caller, once authenticated.
pub(crate) fn note_caller(identity: &str, request_id: &str) {
    with_call(|c| {
        if !c.span.is_none() {
            let mut n = c.noted.lock();
            n.identity = Some(identity.to_owned());
            n.request_id = Some(request_id.to_owned());
        }
    });
}

/// Runs one backend operation in a `backend.<op>` child span and times it.
pub(crate) async fn backend<T>(
    backend: &'static str,
    op: &'static str,
    f: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = backend_span(backend, op);
    let start = Instant::now();
    let r = f.await;
    finish_backend(&span, backend, op, r.is_ok(), start);
    r
}

fn backend_span(backend: &'static str, op: &'static str) -> tracing::Span {
    let Some(parent) = child_parent() else {
        return tracing::Span::none();
    };
    tracing::info_span!(
        target: "signet::telemetry",
        parent: parent,
        "backend",
        otel.name = format_args!("backend.{op}"),
        signet.backend = backend,
        signet.operation = op,
        otel.status_code = Empty,
    )
}

fn finish_backend(
    span: &tracing::Span,
    backend: &'static str,
    op: &'static str,
    ok: bool,
    start: Instant,
) {
    if !ok {
        span.record("otel.status_code", "error");
    }
    super::metrics::get().backend(backend, op, ok, start.elapsed());
}

/// Runs one replay-store check (`Ok(true)`: fresh) in a
/// `replay_store.check` child span and counts its result.
pub(crate) async fn replay_check(
    store: &'static str,
    f: impl Future<Output = Result<bool>>,
) -> Result<bool> {
    let span = match child_parent() {
        None => tracing::Span::none(),
        Some(parent) => tracing::info_span!(
            target: "signet::telemetry",
            parent: parent,
            "replay_store.check",
            signet.replay_store = store,
            signet.replay.result = Empty,
            otel.status_code = Empty,
        ),
    };
    let r = f.await;
    let result = match &r {
        Ok(true) => "fresh",
        Ok(false) => "replay",
        Err(_) => "error",
    };
    span.record("signet.replay.result", result);
    if r.is_err() {
        span.record("otel.status_code", "error");
    }
    super::metrics::get().replay_check(store, result);
    r
}

/// Reads W3C trace context from request headers (gRPC metadata).
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The layer: outermost, so its span and timing cover authentication.
#[derive(Clone, Debug, Default)]
pub(crate) struct TelemetryLayer;

impl<S> tower::Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;
    fn layer(&self, inner: S) -> TelemetryService<S> {
        TelemetryService { inner }
    }
}

/// The layer's service.
#[derive(Clone, Debug)]
pub(crate) struct TelemetryService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Is `path` (`service/method`) one signet serves?
pub(crate) fn is_known(path: &str) -> bool {
    known(path).0 != "unknown"
}

/// The service and method of `path` when signet serves them; "unknown"
/// otherwise, so a caller cannot mint metric labels or span names.
fn known(path: &str) -> (&'static str, &'static str) {
    // signet's own services and methods come from the RPC table; server
    // reflection is served too. A known service with any known method
    // counts, as before: the label set stays bounded either way.
    const REFLECTION: [&str; 2] = [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    const REFLECTION_METHOD: &str = "ServerReflectionInfo";
    // The methods signet serves, in one pass.
    if let Some(r) = crate::rpcs::by_path(path) {
        return (r.service, r.method);
    }
    let Some((svc, m)) = path.split_once('/') else {
        return ("unknown", "unknown");
    };
    let service = crate::rpcs::ALL
        .iter()
        .map(|r| r.service)
        .chain(REFLECTION)
        .find(|s| *s == svc);
    let method = crate::rpcs::ALL
        .iter()
        .map(|r| r.method)
        .chain([REFLECTION_METHOD])
        .find(|x| *x == m);
    match (service, method) {
        (Some(s), Some(m)) => (s, m),
        _ => ("unknown", "unknown"),
    }
}

/// Where tonic puts an error answer's code (a `HeaderName`: a lookup by
/// `&str` parses the name first).
const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// gRPC codes that are the server's fault (OpenTelemetry's RPC conventions).
fn server_error(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    )
}

impl<S, B> tower::Service<http::Request<B>> for TelemetryService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<std::result::Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path().trim_start_matches('/');
        // Probes call health every few seconds: no span, no count.
        if path.starts_with("grpc.health.v1.Health/") {
            return Box::pin(inner.call(req));
        }
        let (service, method) = known(path);
        // The caller's trace context, and the sampler's decision on it, come
        // before the span: an unsampled call makes none.
        let parent = (spans() && req.headers().contains_key("traceparent"))
            .then(|| TraceContextPropagator::new().extract(&Headers(req.headers())))
            .filter(|cx| cx.span().span_context().is_valid());
        let sampled =
            spans() && super::sampling::sampled(parent.as_ref(), method, SpanKind::Server);
        let span = if !sampled {
            tracing::Span::none()
        } else {
            // The span's name: the path itself when it names a service and
            // method signet serves (`known` took both from it).
            let name = if service == "unknown" {
                "unknown"
            } else {
                path
            };
            tracing::info_span!(
                target: "signet::telemetry",
                "rpc",
                otel.name = name,
                otel.kind = "server",
                otel.status_code = Empty,
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
                rpc.grpc.status_code = Empty,
                signet.request_id = Empty,
                signet.identity = Empty,
                signet.key = Empty,
                signet.key_version = Empty,
                signet.algorithm = Empty,
                signet.profile = Empty,
            )
        };
        if let (true, Some(parent)) = (sampled, parent) {
            let _ = span.set_parent(parent);
        }
        let info = Arc::new(CallInfo {
            span: span.clone(),
            noted: Mutex::new(Noted::default()),
        });
        let start = Instant::now();
        let fut = CALL.sync_scope(info.clone(), || inner.call(req));
        Box::pin(CALL.scope(info.clone(), async move {
            let r = fut.await;
            let code = match &r {
                Ok(resp) => resp
                    .headers()
                    .get(GRPC_STATUS)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(tonic::Code::from)
                    .unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Internal,
            };
            let noted = std::mem::take(&mut *info.noted.lock());
            if !info.span.is_none() {
                tracing::record_all!(
                    info.span,
                    rpc.grpc.status_code = code as i64,
                    otel.status_code = server_error(code).then_some("error"),
                    signet.request_id = noted.request_id.as_deref(),
                    signet.identity = noted.identity.as_deref(),
                    signet.key = noted.key.as_deref(),
                    signet.key_version = noted.version.map(i64::from),
                    signet.algorithm = (!noted.algorithm.is_empty()).then_some(noted.algorithm),
                    signet.profile = noted.profile.as_deref(),
                );
            }
            let algorithm = noted.algorithm;
            super::metrics::get().rpc(
                service,
                method,
                algorithm,
                crate::error::code_name(code),
                start.elapsed(),
            );
            r
        }))
    }
}
