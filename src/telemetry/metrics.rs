//! Metrics: OpenTelemetry instruments, read by a Prometheus registry (the
//! admin port's `/metrics`) and, when configured, pushed over OTLP.
//!
//! One meter provider per process, installed on first use. Labels carry
//! names (RPCs, algorithms, key and profile names, outcomes), never input.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{BoundHistogram, Counter, Gauge, Meter, MeterProvider, UpDownCounter};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use parking_lot::Mutex;

use super::bound;
use crate::error::StartupError;

/// Latency buckets, in seconds: 50 µs (an HMAC in memory) to 10 s (an RSA
/// key generated on a slow HSM).
const LATENCY_BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

struct Installed {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();
static METRICS: OnceLock<Metrics> = OnceLock::new();
/// What the key gauges report (one registry in production; several in a
/// test process).
static KEY_SOURCES: Mutex<Vec<Weak<dyn KeyGauges>>> = Mutex::new(Vec::new());

/// One key, as the gauges report it: names and numbers only.
#[derive(Clone, Debug)]
pub(crate) struct KeyGauge {
    /// The key's name.
    pub name: String,
    /// Versions per state name (`pending`, `active`, ...).
    pub versions: Vec<(&'static str, u64)>,
    /// The next scheduled rotation, if the key has a policy.
    pub next_rotation: Option<SystemTime>,
    /// Encryption keys, per version: (version, encryptions reserved, the
    /// bound, decryptions by this process, whether it is ACTIVE).
    pub cipher: Vec<(u32, u64, u64, u64, bool)>,
    /// Signing versions with a certificate: (version, the leaf's
    /// notAfter, whether the version may sign after it).
    pub certificates: Vec<(u32, SystemTime, bool)>,
}

/// Something that holds keys (the key registry; wired by the server).
pub(crate) trait KeyGauges: Send + Sync {
    /// The keys at `now`.
    fn key_gauges(&self, now: SystemTime) -> Vec<KeyGauge>;
}

/// Installs the process's meter provider: the Prometheus reader always,
/// and `otlp` (a periodic OTLP reader) when given. False when one was
/// already installed (the first one stays).
pub(crate) fn install(
    resource: opentelemetry_sdk::Resource,
    otlp: Option<opentelemetry_otlp::MetricExporter>,
) -> Result<bool, StartupError> {
    if INSTALLED.get().is_some() {
        return Ok(false);
    }
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .scope_info_enabled(false)
        .build()
        .map_err(|e| StartupError::failed("metrics", e))?;
    let mut builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(exporter);
    if let Some(e) = otlp {
        // The interval comes from OTEL_METRIC_EXPORT_INTERVAL (default 60 s).
        builder =
            builder.with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(e).build());
    }
    let provider = builder.build();
    let fresh = INSTALLED
        .set(Installed {
            provider: provider.clone(),
            registry,
        })
        .is_ok();
    if !fresh {
        let _ = provider.shutdown();
    }
    Ok(fresh)
}

fn installed() -> &'static Installed {
    if INSTALLED.get().is_none() {
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_service_name("signet")
            .build();
        let _ = install(resource, None);
    }
    INSTALLED.get().expect("installed above")
}

/// Pushes what is pending over OTLP and stops the readers.
pub(crate) fn shutdown() {
    if let Some(i) = INSTALLED.get() {
        let _ = i.provider.force_flush();
        let _ = i.provider.shutdown();
    }
}

/// The Prometheus text exposition of every metric.
pub(crate) fn render() -> String {
    use prometheus::Encoder;
    let families = installed().registry.gather();
    let mut out = Vec::new();
    if prometheus::TextEncoder::new()
        .encode(&families, &mut out)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Reports the keys of `source` in `signet_key_versions` and
/// `signet_key_next_rotation_seconds` for as long as it lives.
pub(crate) fn watch_keys(source: Weak<dyn KeyGauges>) {
    let _ = get();
    let mut r = KEY_SOURCES.lock();
    r.retain(|w| w.strong_count() > 0);
    r.push(source);
}

/// Calls `f` with (key, version) labels and the numbers of every
/// encryption key version of every source.
fn cipher_gauges(mut f: impl FnMut(KeyValue, KeyValue, u64, u64, u64, bool)) {
    let now = SystemTime::now();
    for source in live_sources() {
        for key in source.key_gauges(now) {
            for &(version, reserved, bound, decrypted, active) in &key.cipher {
                f(
                    KeyValue::new("key", key.name.clone()),
                    KeyValue::new("version", i64::from(version)),
                    reserved,
                    bound,
                    decrypted,
                    active,
                );
            }
        }
    }
}

pub(super) fn live_sources() -> Vec<Arc<dyn KeyGauges>> {
    KEY_SOURCES
        .lock()
        .iter()
        .filter_map(|w| w.upgrade())
        .collect()
}

thread_local! {
    /// This thread's bound handles for calls (telemetry::bound).
    static RPC_BOUND: bound::Handles<4, bound::Pair> = const { RefCell::new(Vec::new()) };
    /// This thread's bound handles for backend operations.
    static BACKEND_BOUND: bound::Handles<3, BoundHistogram<f64>> =
        const { RefCell::new(Vec::new()) };
}

/// The instruments.
pub(crate) struct Metrics {
    rpc: bound::CountAndTime<4>,
    backend: bound::Time<3>,
    sessions_in_use: UpDownCounter<i64>,
    sessions_max: Gauge<u64>,
    session_waits: Counter<u64>,
    session_wait_timeouts: Counter<u64>,
    replay_checks: Counter<u64>,
    rate_limit_refusals: Counter<u64>,
    auth_refusals: Counter<u64>,
    http_verify_failures: Counter<u64>,
    batch_items: Counter<u64>,
    ready: Gauge<u64>,
}

/// The process's instruments.
pub(crate) fn get() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(&installed().provider.meter("signet")))
}

impl Metrics {
    fn new(m: &Meter) -> Self {
        m.u64_observable_gauge("signet.key.versions")
            .with_description("Key versions per key and state")
            .with_callback(|o| {
                let now = SystemTime::now();
                for source in live_sources() {
                    for key in source.key_gauges(now) {
                        for (state, n) in key.versions {
                            o.observe(
                                n,
                                &[
                                    KeyValue::new("key", key.name.clone()),
                                    KeyValue::new("state", state),
                                ],
                            );
                        }
                    }
                }
            })
            .build();
        m.u64_observable_gauge("signet.key.encryptions")
            .with_description(
                "Encryptions reserved per AES key version (an upper bound on those made; \
                 durable, shared by replicas)",
            )
            .with_callback(|o| {
                cipher_gauges(|key, version, reserved, _, _, _| {
                    o.observe(reserved, &[key, version]);
                })
            })
            .build();
        m.f64_observable_gauge("signet.key.encryption_bound_used")
            .with_description(
                "Fraction of keys.max_encryptions_per_version the ACTIVE version of an AES key \
                 has reserved; at 1 it encrypts no more until another is promoted",
            )
            .with_callback(|o| {
                cipher_gauges(|key, version, reserved, bound, _, active| {
                    if active {
                        o.observe(reserved as f64 / bound.max(1) as f64, &[key, version]);
                    }
                })
            })
            .build();
        m.u64_observable_gauge("signet.key.decryptions")
            .with_description(
                "Decryptions per AES key version by this process since it started: zero \
                 across replicas for long means nothing stored needs the version",
            )
            .with_callback(|o| {
                cipher_gauges(|key, version, _, _, decrypted, _| {
                    o.observe(decrypted, &[key, version]);
                })
            })
            .build();
        super::cert_metrics::register(m);
        m.f64_observable_gauge("signet.key.next_rotation")
            .with_unit("s")
            .with_description(
                "Seconds until the key's next scheduled rotation (negative: overdue); \
                 only keys with a rotation policy",
            )
            .with_callback(|o| {
                let now = SystemTime::now();
                for source in live_sources() {
                    for KeyGauge {
                        name,
                        next_rotation,
                        ..
                    } in source.key_gauges(now)
                    {
                        if let Some(t) = next_rotation {
                            let secs = match t.duration_since(now) {
                                Ok(d) => d.as_secs_f64(),
                                Err(e) => -e.duration().as_secs_f64(),
                            };
                            o.observe(secs, &[KeyValue::new("key", name)]);
                        }
                    }
                }
            })
            .build();
        Self {
            rpc: bound::CountAndTime::new(
                ["service", "method", "algorithm", "outcome"],
                m.u64_counter("signet.rpc.requests")
                    .with_description("gRPC calls by service, method, key algorithm and outcome")
                    .build(),
                m.f64_histogram("signet.rpc.duration")
                    .with_unit("s")
                    .with_description("gRPC call latency, from the request's arrival to its answer")
                    .with_boundaries(LATENCY_BUCKETS.to_vec())
                    .build(),
            ),
            backend: bound::Time::new(
                ["backend", "operation", "outcome"],
                m.f64_histogram("signet.backend.duration")
                    .with_unit("s")
                    .with_description(
                        "Key backend operation latency (queueing for an HSM worker included)",
                    )
                    .with_boundaries(LATENCY_BUCKETS.to_vec())
                    .build(),
            ),
            sessions_in_use: m
                .i64_up_down_counter("signet.pkcs11.sessions.in_use")
                .with_description("PKCS#11 sessions checked out of the pool")
                .build(),
            sessions_max: m
                .u64_gauge("signet.pkcs11.sessions.max")
                .with_description("The PKCS#11 session pool's size (backend.max_sessions)")
                .build(),
            session_waits: m
                .u64_counter("signet.pkcs11.session.waits")
                .with_description("Calls that found every PKCS#11 session busy and waited")
                .build(),
            session_wait_timeouts: m
                .u64_counter("signet.pkcs11.session.wait_timeouts")
                .with_description("Calls that gave up waiting for a PKCS#11 session (UNAVAILABLE)")
                .build(),
            replay_checks: m
                .u64_counter("signet.replay.checks")
                .with_description("Replay-store checks by result: fresh, replay (refused) or error")
                .build(),
            rate_limit_refusals: m
                .u64_counter("signet.rate_limit.refusals")
                .with_description("Calls refused by a rate limit: identity, key or in_flight")
                .build(),
            auth_refusals: m
                .u64_counter("signet.auth.refusals")
                .with_description("Calls refused as unauthenticated or permission_denied")
                .build(),
            http_verify_failures: m
                .u64_counter("signet.http.verify_failures")
                .with_description("HTTP requests that did not verify, by profile and reason")
                .build(),
            batch_items: m
                .u64_counter("signet.batch.items")
                .with_description(
                    "Items of SignBatch and VerifyBatch calls, by method and outcome \
                     (ok: signed or verified, error: the item's own error)",
                )
                .build(),
            ready: m
                .u64_gauge("signet.ready")
                .with_description("1 when the server is ready for traffic, else 0")
                .build(),
        }
    }

    /// One gRPC call.
    pub(crate) fn rpc(
        &self,
        service: &'static str,
        method: &'static str,
        algorithm: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        self.rpc.measure(
            &RPC_BOUND,
            [service, method, algorithm, outcome],
            elapsed.as_secs_f64(),
        );
    }

    /// One backend operation.
    pub(crate) fn backend(
        &self,
        backend: &'static str,
        op: &'static str,
        ok: bool,
        elapsed: Duration,
    ) {
        self.backend.measure(
            &BACKEND_BOUND,
            [backend, op, if ok { "ok" } else { "error" }],
            elapsed.as_secs_f64(),
        );
    }

    /// A PKCS#11 session was checked out (+1) or returned (-1).
    pub(crate) fn session_use(&self, delta: i64) {
        self.sessions_in_use.add(delta, &[]);
    }

    /// The session pool's size.
    pub(crate) fn session_pool_size(&self, max: usize) {
        self.sessions_max.record(max as u64, &[]);
    }

    /// A caller waited for a session; `timed_out` when it gave up.
    pub(crate) fn session_wait(&self, timed_out: bool) {
        if timed_out {
            self.session_wait_timeouts.add(1, &[]);
        } else {
            self.session_waits.add(1, &[]);
        }
    }

    /// A replay-store check: `fresh`, `replay` or `error`.
    pub(crate) fn replay_check(&self, store: &'static str, result: &'static str) {
        self.replay_checks.add(
            1,
            &[
                KeyValue::new("store", store),
                KeyValue::new("result", result),
            ],
        );
    }

    /// A rate-limit refusal: `identity`, `key` or `in_flight`.
    pub(crate) fn rate_limited(&self, limit: &'static str) {
        self.rate_limit_refusals
            .add(1, &[KeyValue::new("limit", limit)]);
    }

    /// An authentication or authorization refusal.
    pub(crate) fn auth_refused(&self, reason: &'static str) {
        self.auth_refusals
            .add(1, &[KeyValue::new("reason", reason)]);
    }

    /// An HTTP request that did not verify.
    /// The items one batch served: `ok` of them answered, `failed` with
    /// their own error.
    pub(crate) fn batch_items(&self, method: &'static str, ok: u64, failed: u64) {
        for (n, outcome) in [(ok, "ok"), (failed, "error")] {
            if n > 0 {
                self.batch_items.add(
                    n,
                    &[
                        KeyValue::new("method", method),
                        KeyValue::new("outcome", outcome),
                    ],
                );
            }
        }
    }

    pub(crate) fn http_verify_failed(&self, profile: &str, reason: &'static str) {
        self.http_verify_failures.add(
            1,
            &[
                KeyValue::new("profile", profile.to_string()),
                KeyValue::new("reason", reason),
            ],
        );
    }

    /// Readiness.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.record(u64::from(ready), &[]);
    }
}
