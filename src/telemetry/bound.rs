//! Instruments bound to one attribute set, cached per thread, for the
//! measurements every call makes (its count, its latency, its backend
//! operation's latency).
//!
//! An unbound `add` or `record` copies, sorts and hashes the attribute set
//! on every call to find its data point: callgrind counted about 5,400
//! instructions per `Sign` in the SDK's attribute handling and hashing,
//! against a bare tonic call's 60,000 (docs/benchmarks.md). A bound handle
//! goes straight to its data point. The attribute values are the
//! `&'static str` names of the RPC table, the algorithms and the gRPC
//! codes, so a handle is found by comparing pointers in a short per-thread
//! list: no lock, no hash, no cache line shared between the cores.
//!
//! Bound and unbound measurements with the same attributes share one data
//! point (the SDK's contract), so what `/metrics` and OTLP report does not
//! change.

use std::cell::RefCell;
use std::thread::LocalKey;

use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram};
use opentelemetry::KeyValue;

/// Bound handles kept per thread and instrument at most. The label sets are
/// bounded by the tables they come from; past this many, measurements take
/// the unbound path rather than the list growing.
pub(crate) const PER_THREAD: usize = 256;

/// Do `a` and `b` name the same strings, by address? Two copies of one
/// name at different addresses only cost a second handle on the same data
/// point.
fn same<const N: usize>(a: &[&'static str; N], b: &[&'static str; N]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| std::ptr::eq(x.as_ptr(), y.as_ptr()) && x.len() == y.len())
}

fn attributes<const N: usize>(
    keys: &[&'static str; N],
    values: &[&'static str; N],
) -> [KeyValue; N] {
    std::array::from_fn(|i| KeyValue::new(keys[i], values[i]))
}

/// A counter and a histogram measured together with the same attributes
/// (a call's count and latency).
pub(crate) struct CountAndTime<const N: usize> {
    keys: [&'static str; N],
    counter: Counter<u64>,
    histogram: Histogram<f64>,
}

/// A bound counter and histogram.
pub(crate) type Pair = (BoundCounter<u64>, BoundHistogram<f64>);

/// One thread's bound handles `H`, by the attribute values they are bound
/// to (declared by each measuring site with `thread_local!`).
pub(crate) type Handles<const N: usize, H> = RefCell<Vec<([&'static str; N], H)>>;

impl<const N: usize> CountAndTime<N> {
    /// The two instruments, and the attribute keys every measurement names.
    pub(crate) fn new(
        keys: [&'static str; N],
        counter: Counter<u64>,
        histogram: Histogram<f64>,
    ) -> Self {
        Self {
            keys,
            counter,
            histogram,
        }
    }

    /// Counts one and records `seconds`, with `values` for the keys.
    /// `cache` is this instrument's own thread-local list: a list shared
    /// by two instruments would hand one the other's handles.
    pub(crate) fn measure(
        &self,
        cache: &'static LocalKey<Handles<N, Pair>>,
        values: [&'static str; N],
        seconds: f64,
    ) {
        let bound = with_handle(
            cache,
            &self.keys,
            values,
            |attrs| (self.counter.bind(attrs), self.histogram.bind(attrs)),
            |(n, t)| {
                n.add(1);
                t.record(seconds);
            },
        );
        if !bound {
            let attrs = attributes(&self.keys, &values);
            self.counter.add(1, &attrs);
            self.histogram.record(seconds, &attrs);
        }
    }
}

/// A histogram alone (a backend operation's latency).
pub(crate) struct Time<const N: usize> {
    keys: [&'static str; N],
    histogram: Histogram<f64>,
}

impl<const N: usize> Time<N> {
    /// The instrument, and the attribute keys every measurement names.
    pub(crate) fn new(keys: [&'static str; N], histogram: Histogram<f64>) -> Self {
        Self { keys, histogram }
    }

    /// Records `seconds` with `values` for the keys; `cache` as for
    /// [`CountAndTime::measure`].
    pub(crate) fn measure(
        &self,
        cache: &'static LocalKey<Handles<N, BoundHistogram<f64>>>,
        values: [&'static str; N],
        seconds: f64,
    ) {
        let bound = with_handle(
            cache,
            &self.keys,
            values,
            |attrs| self.histogram.bind(attrs),
            |t| t.record(seconds),
        );
        if !bound {
            self.histogram
                .record(seconds, &attributes(&self.keys, &values));
        }
    }
}

/// Runs `measure` on this thread's handle for `values`, binding one with
/// `bind` (given the attributes `keys` = `values`) when the list has none
/// and room for it. False when no handle could be had (the list is full,
/// or the thread is exiting): the caller measures unbound.
fn with_handle<const N: usize, H>(
    cache: &'static LocalKey<Handles<N, H>>,
    keys: &[&'static str; N],
    values: [&'static str; N],
    bind: impl FnOnce(&[KeyValue]) -> H,
    measure: impl FnOnce(&H),
) -> bool {
    cache
        .try_with(|c| {
            let mut c = c.borrow_mut();
            if let Some((_, h)) = c.iter().find(|(k, _)| same(k, &values)) {
                measure(h);
                return true;
            }
            if c.len() >= PER_THREAD {
                return false;
            }
            let h = bind(&attributes(keys, &values));
            measure(&h);
            c.push((values, h));
            true
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;

    thread_local! {
        static CALLS: Handles<2, Pair> = const { RefCell::new(Vec::new()) };
        static TIMES: Handles<2, BoundHistogram<f64>> = const { RefCell::new(Vec::new()) };
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// The value of the series `name{...labels...}` in Prometheus text.
    fn value(text: &str, name: &str, labels: &str) -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} with {labels} in\n{text}"))
    }

    #[test]
    fn bound_and_unbound_measurements_land_in_one_data_point() {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()
            .unwrap();
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let m = provider.meter("t");
        let calls = CountAndTime::new(
            ["a", "b"],
            m.u64_counter("calls").build(),
            m.f64_histogram("calls_time").build(),
        );
        let times = Time::new(["a", "b"], m.f64_histogram("op_time").build());
        // Twice on this thread (bound once, then found), once on another.
        calls.measure(&CALLS, ["x", "y"], 0.5);
        calls.measure(&CALLS, ["x", "y"], 0.5);
        std::thread::scope(|s| {
            s.spawn(|| calls.measure(&CALLS, ["x", "y"], 0.5));
        });
        // The same names at another address: a second handle, same point.
        calls.measure(&CALLS, ["x", leak("y".into())], 0.5);
        // A thread whose list is full measures unbound, still in the point.
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..PER_THREAD {
                    calls.measure(&CALLS, ["x", leak(format!("v{i}"))], 0.5);
                    times.measure(&TIMES, ["x", leak(format!("v{i}"))], 0.5);
                }
                assert_eq!(CALLS.with(|c| c.borrow().len()), PER_THREAD);
                calls.measure(&CALLS, ["x", "y"], 0.5);
                times.measure(&TIMES, ["x", "y"], 0.25);
                assert_eq!(CALLS.with(|c| c.borrow().len()), PER_THREAD);
            });
        });
        times.measure(&TIMES, ["x", "y"], 0.25);
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(value(&text, "calls_total", "a=\"x\",b=\"y\""), 5.0);
        assert_eq!(value(&text, "calls_time_count", "a=\"x\",b=\"y\""), 5.0);
        assert_eq!(value(&text, "calls_time_sum", "a=\"x\",b=\"y\""), 2.5);
        assert_eq!(value(&text, "calls_total", "b=\"v7\""), 1.0);
        assert_eq!(value(&text, "op_time_count", "a=\"x\",b=\"y\""), 2.0);
        assert_eq!(value(&text, "op_time_sum", "a=\"x\",b=\"y\""), 0.5);
    }
}
