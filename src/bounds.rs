//! The documented range of every duration signet accepts, in the
//! configuration file and in the API, and the checked time arithmetic that
//! keeps every computed time inside the protobuf `Timestamp` range
//! (0001-01-01 to 9999-12-31), whatever a stored record holds.
//!
//! The ranges are written next to each field in `examples/signet.toml`, in
//! the README's configuration table and in `proto/`; a value outside its
//! range is refused at start-up (configuration) or with `INVALID_ARGUMENT`
//! (API), with a message naming the field and the range.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: u64 = 86_400;

/// The closed range a duration field must fall in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// Shortest accepted.
    pub min: Duration,
    /// Longest accepted.
    pub max: Duration,
}

impl Range {
    const fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }

    /// Checks `d`; the error names `field`, the range and the value.
    pub(crate) fn check(&self, field: &str, d: Duration) -> Result<(), String> {
        if d < self.min || d > self.max {
            return Err(format!(
                "{field} must be between {} and {}, not {}",
                show(self.min),
                show(self.max),
                show(d)
            ));
        }
        Ok(())
    }

    /// The range as written in the documentation, e.g. `1s..=3650d`.
    #[cfg(test)]
    pub(crate) fn describe(&self) -> String {
        format!("{}..={}", show(self.min), show(self.max))
    }
}

/// Key lifecycle periods are at most ten years (3650 days).
pub(crate) const MAX_LIFECYCLE: Duration = Duration::from_secs(3650 * DAY);

/// `keys.default_grace_period` and every API `grace_period`: how long a
/// retired version still verifies.
pub(crate) const GRACE_PERIOD: Range = Range::new(Duration::from_secs(1), MAX_LIFECYCLE);
/// `keys.destroy_delay`: between DestroyKeyVersion and the destruction.
pub(crate) const DESTROY_DELAY: Range = Range::new(Duration::ZERO, MAX_LIFECYCLE);
/// `rotation_policy.rotation_period`.
pub(crate) const ROTATION_PERIOD: Range = Range::new(Duration::from_secs(1), MAX_LIFECYCLE);
/// `rotation_policy.pending_period` (also shorter than the rotation period).
pub(crate) const PENDING_PERIOD: Range = Range::new(Duration::ZERO, MAX_LIFECYCLE);
/// `keys.tick_interval`.
pub(crate) const TICK_INTERVAL: Range =
    Range::new(Duration::from_millis(10), Duration::from_secs(60));
/// `server.shutdown_timeout`: how long in-flight calls get after SIGTERM.
pub(crate) const SHUTDOWN_TIMEOUT: Range = Range::new(Duration::ZERO, Duration::from_secs(15 * 60));
/// `server.drain_delay`: NOT_SERVING but accepting, after SIGTERM.
pub(crate) const DRAIN_DELAY: Range = Range::new(Duration::ZERO, Duration::from_secs(5 * 60));
/// `server.tls.reload_interval`: how often the TLS files are checked.
pub(crate) const TLS_RELOAD_INTERVAL: Range =
    Range::new(Duration::from_millis(100), Duration::from_secs(3600));
/// `server.tls.handshake_timeout`.
pub(crate) const HANDSHAKE_TIMEOUT: Range =
    Range::new(Duration::from_secs(1), Duration::from_secs(300));
/// `registry.max_staleness`: how long a replica out of contact with the
/// shared registry goes on signing from its cached view.
pub(crate) const MAX_STALENESS: Range =
    Range::new(Duration::from_secs(1), Duration::from_secs(DAY));
/// `postgres.connect_timeout` and `postgres.statement_timeout`.
pub(crate) const DATABASE_TIMEOUT: Range =
    Range::new(Duration::from_millis(100), Duration::from_secs(300));
/// `postgres.heartbeat`: how often a replica checks its database session.
pub(crate) const HEARTBEAT: Range = Range::new(Duration::from_millis(100), Duration::from_secs(60));
/// `postgres.resync_interval`: the full re-read behind the notifications.
pub(crate) const RESYNC_INTERVAL: Range =
    Range::new(Duration::from_secs(1), Duration::from_secs(DAY));
/// `backend.session_wait` (PKCS#11).
pub(crate) const SESSION_WAIT: Range =
    Range::new(Duration::from_millis(1), Duration::from_secs(300));

/// A duration as the configuration writes it: the largest unit (d, h, m,
/// s, ms) that divides it exactly, else humantime's form.
pub(crate) fn show(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d.subsec_nanos() == 0 {
        let s = d.as_secs();
        for (unit, name) in [(DAY, "d"), (3600, "h"), (60, "m"), (1, "s")] {
            if s.is_multiple_of(unit) {
                return format!("{}{name}", s / unit);
            }
        }
    }
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}ms", d.as_millis());
    }
    humantime::format_duration(d).to_string()
}

/// The latest time a protobuf `Timestamp` holds: 9999-12-31T23:59:59Z.
pub(crate) const MAX_TIME_SECS: i64 = 253_402_300_799;
/// The earliest: 0001-01-01T00:00:00Z (before the Unix epoch).
pub(crate) const MIN_TIME_SECS: i64 = -62_135_596_800;

/// The latest time signet computes: 9999-12-31T23:59:59Z.
pub(crate) fn max_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(MAX_TIME_SECS as u64)
}

/// `t + d`, or `None` when that is past 9999-12-31 (or not representable).
pub(crate) fn later(t: SystemTime, d: Duration) -> Option<SystemTime> {
    t.checked_add(d).filter(|x| *x <= max_time())
}

/// `t - d`, or `None` when that is before 0001-01-01.
pub(crate) fn earlier(t: SystemTime, d: Duration) -> Option<SystemTime> {
    let min = UNIX_EPOCH.checked_sub(Duration::from_secs(MIN_TIME_SECS.unsigned_abs()));
    t.checked_sub(d).filter(|x| min.is_none_or(|m| *x >= m))
}

/// `t + d`, capped at 9999-12-31T23:59:59Z: for times derived from stored
/// records, which may predate these bounds.
pub(crate) fn later_or_max(t: SystemTime, d: Duration) -> SystemTime {
    later(t, d).unwrap_or_else(max_time)
}

/// A monotonic deadline `d` from now; a `d` too large for the clock (it
/// cannot be, within the configured ranges) waits at most an hour.
pub(crate) fn deadline(d: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(3600))
}

/// A `SystemTime` as a protobuf `Timestamp`, clamped to the range the
/// type allows (0001-01-01 to 9999-12-31), so a client never receives a
/// value its library refuses.
pub(crate) fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let (seconds, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            // Before the epoch: round down to whole seconds, nanos forward.
            let d = e.duration();
            let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-s, 0),
                n => (-s - 1, 1_000_000_000 - n),
            }
        }
    };
    if seconds > MAX_TIME_SECS {
        return prost_types::Timestamp {
            seconds: MAX_TIME_SECS,
            nanos: 999_999_999,
        };
    }
    if seconds < MIN_TIME_SECS {
        return prost_types::Timestamp {
            seconds: MIN_TIME_SECS,
            nanos: 0,
        };
    }
    prost_types::Timestamp {
        seconds,
        nanos: nanos as i32,
    }
}

/// A `Duration` as a protobuf `Duration`, saturating (a protobuf duration
/// holds at most about 10,000 years; every bounded field is far below).
pub(crate) fn duration_pb(d: Duration) -> prost_types::Duration {
    const MAX_SECS: i64 = 315_576_000_000;
    match i64::try_from(d.as_secs()) {
        Ok(s) if s <= MAX_SECS => prost_types::Duration {
            seconds: s,
            nanos: d.subsec_nanos() as i32,
        },
        _ => prost_types::Duration {
            seconds: MAX_SECS,
            nanos: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_field_and_the_bounds() {
        assert!(GRACE_PERIOD.check("g", Duration::from_secs(1)).is_ok());
        assert!(GRACE_PERIOD.check("g", MAX_LIFECYCLE).is_ok());
        let e = GRACE_PERIOD
            .check(
                "keys.default_grace_period",
                humantime::parse_duration("106751991167300d").unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            e,
            "keys.default_grace_period must be between 1s and 3650d, not 106751991167300d"
        );
        let e = DRAIN_DELAY
            .check("server.drain_delay", Duration::from_millis(300_001))
            .unwrap_err();
        assert!(e.contains("between 0s and 5m, not 300001ms"), "{e}");
        assert_eq!(TICK_INTERVAL.describe(), "10ms..=1m");
    }

    #[test]
    fn time_arithmetic_stays_in_the_timestamp_range() {
        let now = SystemTime::now();
        assert!(later(now, Duration::from_secs(u64::MAX)).is_none());
        assert!(later(now, humantime::parse_duration("300000y").unwrap()).is_none());
        assert_eq!(
            later(now, Duration::from_secs(1)),
            Some(now + Duration::from_secs(1))
        );
        assert_eq!(later_or_max(now, Duration::from_secs(u64::MAX)), max_time());
        assert!(earlier(now, Duration::from_secs(u64::MAX)).is_none());
        let ts = timestamp(max_time());
        assert_eq!((ts.seconds, ts.nanos), (MAX_TIME_SECS, 0));
        // Past the range (a ManualClock, a corrupted record): clamped.
        if let Some(far) = max_time().checked_add(Duration::from_secs(10 * 365 * 86_400)) {
            let ts = timestamp(far);
            assert_eq!(ts.seconds, MAX_TIME_SECS);
        }
        let ts = timestamp(UNIX_EPOCH - Duration::from_millis(1500));
        assert_eq!((ts.seconds, ts.nanos), (-2, 500_000_000));
        assert_eq!(
            duration_pb(Duration::from_secs(u64::MAX)).seconds,
            315_576_000_000
        );
        assert_eq!(show(Duration::from_secs(3650 * DAY)), "3650d");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show(Duration::from_secs(90)), "90s");
    }
}
