//! What `signet bench` measures: per-worker outcomes (a latency histogram
//! and error counts, merged at the end so workers never share a lock), the
//! live counters behind the progress line, and CPU time from `/proc`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency the histogram tracks (larger ones are clamped): 60 s.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one worker saw during the measured window. Latencies are recorded
/// in nanoseconds (so sub-microsecond in-process operations keep their
/// precision) and reported in microseconds.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Latency of every successful operation, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Successful operations.
    pub ok: u64,
    /// Failed operations by gRPC code name, with the first message seen.
    pub errors: BTreeMap<String, (u64, String)>,
}

impl Default for Outcome {
    fn default() -> Self {
        Self::new()
    }
}

impl Outcome {
    /// An empty outcome.
    pub(crate) fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("static histogram bounds are valid"),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Records a success that took `latency`.
    pub(crate) fn success(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.hist.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
        self.ok += 1;
    }

    /// Records a failure with gRPC code `code`.
    pub(crate) fn failure(&mut self, code: &str, message: impl FnOnce() -> String) {
        match self.errors.get_mut(code) {
            Some(e) => e.0 += 1,
            None => {
                self.errors.insert(code.to_string(), (1, message()));
            }
        }
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Outcome) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        for (code, (n, msg)) in &other.errors {
            self.errors
                .entry(code.clone())
                .or_insert_with(|| (0, msg.clone()))
                .0 += n;
        }
    }

    /// Total failures.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

/// Live counters for the progress line (every phase, warmup included).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Successful operations so far.
    pub ok: AtomicU64,
    /// Failed operations so far.
    pub err: AtomicU64,
}

/// Clock ticks per second for `/proc/*/stat` times.
pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime (in clock ticks) from the text of `/proc/PID/stat`.
pub(crate) fn parse_stat(text: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted from the last ')'. utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time used so far by process `pid` (`None`: this process).
pub(crate) fn process_cpu(pid: Option<u32>) -> std::io::Result<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(&path)?;
    let ticks = parse_stat(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("cannot parse {path}"),
        )
    })?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging() {
        let mut a = Outcome::new();
        let mut b = Outcome::new();
        for i in 1..=100u64 {
            a.success(Duration::from_micros(i * 10));
        }
        b.success(Duration::from_millis(5));
        b.success(Duration::from_secs(3600)); // clamped, not lost
        b.failure("UNAVAILABLE", || "connection refused".into());
        b.failure("UNAVAILABLE", || unreachable!());
        a.failure("NOT_FOUND", || "gone".into());
        a.merge(&b);
        assert_eq!(a.ok, 102);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.hist.len(), 102);
        assert_eq!(
            a.errors["UNAVAILABLE"],
            (2, "connection refused".to_string())
        );
        assert_eq!(a.errors["NOT_FOUND"].0, 1);
        assert!(a.hist.max() >= MAX_LATENCY_NS);
    }

    #[test]
    fn proc_stat() {
        let text =
            "1234 (signet (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat(text), Some(325));
        assert_eq!(parse_stat("garbage"), None);
        assert!(process_cpu(None).is_ok());
        assert!(clock_ticks() > 0);
    }
}
