//! What `signet bench` prints: the progress line on stderr and the final
//! report (text or JSON).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::bench_stats::{Counters, Outcome};

/// Prints a progress line on stderr: `\r`-overwritten on a terminal, one
/// line per call otherwise.
#[derive(Debug)]
pub(crate) struct Progress {
    start: Instant,
    measure_start: Instant,
    tty: bool,
    last: (Instant, u64),
    unit: &'static str,
}

impl Progress {
    /// A progress printer for a run starting now with `warmup` first.
    pub(crate) fn new(start: Instant, warmup: Duration, unit: &'static str) -> Self {
        Self {
            start,
            measure_start: start + warmup,
            tty: std::io::stderr().is_terminal(),
            last: (start, 0),
            unit,
        }
    }

    /// Prints one line from the counters.
    pub(crate) fn tick(&mut self, c: &Counters) {
        let now = Instant::now();
        let ok = c.ok.load(Ordering::Relaxed);
        let err = c.err.load(Ordering::Relaxed);
        let done = ok + err;
        let dt = now.duration_since(self.last.0).as_secs_f64();
        let rate = if dt > 0.0 {
            (done - self.last.1) as f64 / dt
        } else {
            0.0
        };
        // The phase the interval since the last line started in.
        let phase = if self.last.0 < self.measure_start {
            "warmup"
        } else {
            "run"
        };
        self.last = (now, done);
        let line = progress_line(phase, now - self.start, done, rate, err, self.unit);
        let mut e = std::io::stderr().lock();
        let _ = if self.tty {
            write!(e, "\r\x1b[2K{line}")
        } else {
            writeln!(e, "{line}")
        };
        let _ = e.flush();
    }

    /// Ends the overwritten line, if stderr is a terminal.
    pub(crate) fn finish_line() {
        if std::io::stderr().is_terminal() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The text of one progress line.
pub(crate) fn progress_line(
    phase: &str,
    elapsed: Duration,
    done: u64,
    rate: f64,
    errors: u64,
    unit: &str,
) -> String {
    format!(
        "[{phase}] {:>6.1}s  {unit} {done}  rate {rate:.0}/s  errors {errors}",
        elapsed.as_secs_f64()
    )
}

/// Everything the final report shows.
#[derive(Debug)]
pub(crate) struct Report {
    /// "rpc" or "in-process".
    pub mode: &'static str,
    /// "requests" or "ops".
    pub unit: &'static str,
    /// The key name (or the in-process label).
    pub key: String,
    /// The algorithm, when known.
    pub algorithm: Option<String>,
    /// The server, for RPC runs.
    pub endpoint: Option<String>,
    /// HTTP/2 connections, for RPC runs.
    pub connections: Option<usize>,
    /// Concurrent workers (tasks or threads).
    pub concurrency: usize,
    /// Bytes per message.
    pub message_size: usize,
    /// Warmup excluded from the figures.
    pub warmup: Duration,
    /// The measured window.
    pub elapsed: Duration,
    /// Merged outcome of the measured window.
    pub outcome: Outcome,
    /// CPU used by the server process during the window.
    pub server_cpu: Option<Duration>,
    /// CPU used by this process during the window.
    pub client_cpu: Option<Duration>,
    /// Items per call, for `SignBatch` runs (`--batch`); rates and CPU
    /// per operation are then per item, latencies per call.
    pub batch: Option<usize>,
}

/// A latency in nanoseconds, for people: "850 ns", "12.3 µs", "1.25 ms".
pub(crate) fn fmt_latency(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1_000_000.0 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 10.0).round() / 100.0
}

impl Report {
    /// Operations (signatures) one call carries.
    fn per_call(&self) -> u64 {
        self.batch.unwrap_or(1) as u64
    }

    /// Operations completed, ok or not.
    fn completed(&self) -> u64 {
        (self.outcome.ok + self.outcome.error_count()) * self.per_call()
    }

    /// Calls that succeeded per second over the measured window.
    fn call_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.outcome.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// Successful operations (signatures: calls, or a batch's items) per
    /// second over the measured window.
    pub(crate) fn rate(&self) -> f64 {
        self.call_rate() * self.per_call() as f64
    }

    /// CPU microseconds per completed operation.
    fn per_op(&self, cpu: Duration) -> Option<f64> {
        let n = self.completed();
        (n > 0).then(|| cpu.as_secs_f64() * 1e6 / n as f64)
    }

    /// Server CPU microseconds per completed operation, when measured.
    pub(crate) fn server_cpu_per_op(&self) -> Option<f64> {
        self.server_cpu.and_then(|c| self.per_op(c))
    }

    /// This process's CPU microseconds per completed operation, when
    /// measured.
    pub(crate) fn client_cpu_per_op(&self) -> Option<f64> {
        self.client_cpu.and_then(|c| self.per_op(c))
    }

    fn percentiles(&self) -> [(&'static str, u64); 4] {
        let h = &self.outcome.hist;
        [
            ("p50", h.value_at_quantile(0.50)),
            ("p90", h.value_at_quantile(0.90)),
            ("p99", h.value_at_quantile(0.99)),
            ("max", h.max()),
        ]
    }

    /// The report for people.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{:<13}{v}\n", format!("{k}:")));
        let rpc = match self.batch {
            Some(n) => format!("SignBatch of {n} items"),
            None => "Sign".into(),
        };
        let mode = match (&self.endpoint, self.connections) {
            (Some(ep), Some(c)) => format!(
                "rpc {rpc} to {ep}, {c} connections, {} concurrent, {}-byte messages",
                self.concurrency, self.message_size
            ),
            _ => format!(
                "{}, {} threads, {}-byte messages",
                match self.mode {
                    "in-process" => "in-process KeyHandle::sign",
                    other => other,
                },
                self.concurrency,
                self.message_size
            ),
        };
        line("mode", mode);
        let key = match &self.algorithm {
            Some(a) => format!("{} ({a})", self.key),
            None => self.key.clone(),
        };
        line("key", key);
        line(
            "duration",
            format!(
                "{:.2} s measured (after {:.2} s warmup)",
                self.elapsed.as_secs_f64(),
                self.warmup.as_secs_f64()
            ),
        );
        line(
            self.unit,
            format!(
                "{} ok, {} errors",
                self.outcome.ok,
                self.outcome.error_count()
            ),
        );
        match self.batch {
            Some(_) => line(
                "throughput",
                format!(
                    "{:.0} items/s ({:.0} calls/s)",
                    self.rate(),
                    self.call_rate()
                ),
            ),
            None => line("throughput", format!("{:.0} {}/s", self.rate(), self.unit)),
        }
        let lat = if self.outcome.ok == 0 {
            "-".to_string()
        } else {
            self.percentiles()
                .iter()
                .map(|(k, v)| format!("{k} {}", fmt_latency(*v)))
                .collect::<Vec<_>>()
                .join("  ")
        };
        line("latency", lat);
        let unit1 = match self.batch {
            Some(_) => "item",
            None => self.unit.trim_end_matches('s'),
        };
        let client_label = if self.endpoint.is_some() {
            "client CPU"
        } else {
            "CPU"
        };
        for (label, cpu) in [
            ("server CPU", self.server_cpu),
            (client_label, self.client_cpu),
        ] {
            if let Some(cpu) = cpu {
                let per = self
                    .per_op(cpu)
                    .map(|p| format!(" ({p:.1} µs/{unit1})"))
                    .unwrap_or_default();
                line(label, format!("{:.2} s{per}", cpu.as_secs_f64()));
            }
        }
        for (code, (n, msg)) in &self.outcome.errors {
            line("errors", format!("{code} x{n} (first: {msg})"));
        }
        out
    }

    /// The report as JSON.
    pub(crate) fn json(&self) -> Value {
        let errors: BTreeMap<&str, u64> = self
            .outcome
            .errors
            .iter()
            .map(|(k, (n, _))| (k.as_str(), *n))
            .collect();
        let latency = if self.outcome.ok == 0 {
            Value::Null
        } else {
            let mut m: serde_json::Map<String, Value> = self
                .percentiles()
                .iter()
                .map(|(k, v)| (k.to_string(), json!(us(*v))))
                .collect();
            m.insert(
                "p999".into(),
                json!(us(self.outcome.hist.value_at_quantile(0.999))),
            );
            m.insert("min".into(), json!(us(self.outcome.hist.min())));
            m.insert(
                "mean".into(),
                json!((self.outcome.hist.mean() / 10.0).round() / 100.0),
            );
            Value::Object(m)
        };
        let cpu = |c: Option<Duration>| c.map(|c| c.as_secs_f64());
        json!({
            "mode": self.mode,
            "key": self.key,
            "algorithm": self.algorithm,
            "endpoint": self.endpoint,
            "connections": self.connections,
            "concurrency": self.concurrency,
            "message_size": self.message_size,
            "warmup_seconds": self.warmup.as_secs_f64(),
            "duration_seconds": self.elapsed.as_secs_f64(),
            "requests": self.outcome.ok,
            "errors": self.outcome.error_count(),
            "errors_by_code": errors,
            "requests_per_second": self.call_rate(),
            "batch": self.batch,
            "items_per_second": self.batch.map(|_| self.rate()),
            "latency_us": latency,
            "server_cpu_seconds": cpu(self.server_cpu),
            "server_cpu_us_per_request": self.server_cpu_per_op().map(|c| c * self.per_call() as f64),
            "server_cpu_us_per_item": self.batch.and(self.server_cpu_per_op()),
            "client_cpu_seconds": cpu(self.client_cpu),
            "client_cpu_us_per_request": self.client_cpu_per_op().map(|c| c * self.per_call() as f64),
            "client_cpu_us_per_item": self.batch.and(self.client_cpu_per_op()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut a = Outcome::new();
        let mut b = Outcome::new();
        for i in 1..=100u64 {
            a.success(Duration::from_micros(i * 10));
        }
        b.success(Duration::from_millis(5));
        b.failure("UNAVAILABLE", || "connection refused".into());
        b.failure("UNAVAILABLE", || unreachable!());
        a.merge(&b);
        Report {
            mode: "rpc",
            unit: "requests",
            key: "demo-hmac".into(),
            algorithm: Some("HMAC_SHA256".into()),
            endpoint: Some("http://127.0.0.1:50051".into()),
            connections: Some(4),
            concurrency: 64,
            message_size: 32,
            warmup: Duration::from_secs(1),
            elapsed: Duration::from_secs(2),
            outcome: a,
            server_cpu: Some(Duration::from_millis(103)),
            client_cpu: Some(Duration::from_millis(206)),
            batch: None,
        }
    }

    #[test]
    fn batch_reports_count_items() {
        let mut r = sample();
        r.batch = Some(10);
        let t = r.text();
        assert!(t.contains("rpc SignBatch of 10 items to"), "{t}");
        assert!(t.contains("throughput:  505 items/s (50 calls/s)\n"), "{t}");
        // 0.103 s over 103 calls of 10 items.
        assert!(t.contains("server CPU:  0.10 s (100.0 µs/item)\n"), "{t}");
        let j = r.json();
        assert_eq!(j["items_per_second"], 505.0);
        assert_eq!(j["requests_per_second"], 50.5);
        assert_eq!(j["server_cpu_us_per_item"].as_f64().unwrap().round(), 100.0);
        assert_eq!(
            j["server_cpu_us_per_request"].as_f64().unwrap().round(),
            1000.0
        );
    }

    #[test]
    fn text_report() {
        let t = sample().text();
        assert!(t.contains("requests:    101 ok, 2 errors\n"), "{t}");
        assert!(t.contains("throughput:  50 requests/s\n"), "{t}");
        assert!(
            t.contains("latency:     p50 510 µs  p90 910 µs  p99 1.00 ms  max 5.00 ms\n"),
            "{t}"
        );
        assert!(
            t.contains("server CPU:  0.10 s (1000.0 µs/request)\n"),
            "{t}"
        );
        assert!(
            t.contains("client CPU:  0.21 s (2000.0 µs/request)\n"),
            "{t}"
        );
        assert!(
            t.contains("errors:      UNAVAILABLE x2 (first: connection refused)\n"),
            "{t}"
        );
        assert!(
            t.contains("duration:    2.00 s measured (after 1.00 s warmup)\n"),
            "{t}"
        );
    }

    #[test]
    fn json_report() {
        let j = sample().json();
        assert_eq!(j["requests"], 101);
        assert_eq!(j["errors_by_code"]["UNAVAILABLE"], 2);
        assert_eq!(j["requests_per_second"], 50.5);
        assert_eq!(j["latency_us"]["p50"], 510.21);
        assert_eq!(j["latency_us"]["max"].as_f64().unwrap().round(), 5001.0);
        assert_eq!(
            j["server_cpu_us_per_request"].as_f64().unwrap().round(),
            1000.0
        );
    }

    #[test]
    fn latency_units() {
        assert_eq!(fmt_latency(850), "850 ns");
        assert_eq!(fmt_latency(1_234), "1.23 µs");
        assert_eq!(fmt_latency(123_456), "123 µs");
        assert_eq!(fmt_latency(1_250_000), "1.25 ms");
        assert_eq!(fmt_latency(2_500_000_000), "2.50 s");
    }

    #[test]
    fn progress_text() {
        let l = progress_line(
            "run",
            Duration::from_millis(2500),
            1000,
            400.4,
            3,
            "requests",
        );
        assert_eq!(l, "[run]    2.5s  requests 1000  rate 400/s  errors 3");
    }
}
