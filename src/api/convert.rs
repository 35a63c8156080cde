//! Conversions between the proto types and the domain types.

use std::time::{Duration, SystemTime};

use super::names::ShortName;
use super::pb;
use crate::bounds::{self, Range};
use crate::error::{Error, Result};
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::record::{RotationPolicy, VersionRecord, VersionState};
use crate::keys::registry::{Input, KeyView};
use crate::keys::{Algorithm, ProtectionLevel};

/// proto → domain algorithm; unspecified or unknown is `INVALID_ARGUMENT`.
/// The proto's value names are the algorithm table's names behind the
/// `ALGORITHM_` prefix ([`ShortName`]).
pub(crate) fn algorithm(v: i32) -> Result<Algorithm> {
    match pb::Algorithm::try_from(v) {
        Ok(pb::Algorithm::Unspecified) => Err(Error::invalid("algorithm is required")),
        Ok(p) => Algorithm::from_name(p.short_name())
            .ok_or_else(|| Error::internal(format!("proto algorithm {v} is not in the table"))),
        Err(_) => Err(Error::invalid(format!("unknown algorithm {v}"))),
    }
}

/// domain → proto algorithm.
pub(crate) fn algorithm_pb(a: Algorithm) -> pb::Algorithm {
    pb::Algorithm::from_short_name(a.name()).expect("proto and domain names agree")
}

/// domain → proto algorithm, for the integration tests and the CLI:
/// `pb::Algorithm::from(a) as i32`.
impl From<Algorithm> for pb::Algorithm {
    fn from(a: Algorithm) -> Self {
        algorithm_pb(a)
    }
}

/// domain → proto state.
pub(crate) fn state_pb(s: VersionState) -> pb::KeyVersionState {
    pb::KeyVersionState::from_short_name(s.name()).expect("proto and domain names agree")
}

/// proto → domain ECDSA signature format.
pub(crate) fn signature_format(v: i32) -> Result<SignatureFormat> {
    match pb::SignatureFormat::try_from(v) {
        Ok(pb::SignatureFormat::Unspecified | pb::SignatureFormat::Der) => Ok(SignatureFormat::Der),
        Ok(pb::SignatureFormat::Raw) => Ok(SignatureFormat::Raw),
        Err(_) => Err(Error::invalid(format!("unknown signature_format {v}"))),
    }
}

/// A version number: 0 means "not given".
pub(crate) fn version(v: u32) -> Option<u32> {
    (v != 0).then_some(v)
}

/// A required version number.
pub(crate) fn required_version(v: u32) -> Result<u32> {
    version(v).ok_or_else(|| Error::invalid("version is required (1, 2, ...)"))
}

/// proto Duration → std, within `range` ([`crate::bounds`]); negative,
/// malformed or out-of-range is `INVALID_ARGUMENT` naming the field and
/// the range.
pub(crate) fn duration(field: &str, d: &prost_types::Duration, range: Range) -> Result<Duration> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(Error::invalid(format!(
            "{field} must be a non-negative duration between {} and {}",
            bounds::show(range.min),
            bounds::show(range.max)
        )));
    }
    let d = Duration::new(d.seconds as u64, d.nanos as u32);
    crate::keys::record::in_range(range, field, d)?;
    Ok(d)
}

/// Optional proto Duration → std, within `range`.
pub(crate) fn opt_duration(
    field: &str,
    d: Option<&prost_types::Duration>,
    range: Range,
) -> Result<Option<Duration>> {
    d.map(|d| duration(field, d, range)).transpose()
}

/// A request's `grace_period`: 1s..=3650d.
pub(crate) fn grace_period(d: Option<&prost_types::Duration>) -> Result<Option<Duration>> {
    opt_duration("grace_period", d, bounds::GRACE_PERIOD)
}

fn duration_pb(d: Duration) -> prost_types::Duration {
    bounds::duration_pb(d)
}

/// std time → proto Timestamp, clamped to 0001-01-01..=9999-12-31.
pub(crate) fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    bounds::timestamp(t)
}

/// proto policy → domain (validated).
pub(crate) fn policy(p: &pb::RotationPolicy) -> Result<RotationPolicy> {
    let rotation_period = p
        .rotation_period
        .as_ref()
        .ok_or_else(|| Error::invalid("rotation_policy.rotation_period is required"))
        .and_then(|d| {
            duration(
                "rotation_policy.rotation_period",
                d,
                bounds::ROTATION_PERIOD,
            )
        })?;
    let policy = RotationPolicy {
        rotate_after_encryptions: (p.rotate_after_encryptions > 0)
            .then_some(p.rotate_after_encryptions),
        rotation_period,
        pending_period: opt_duration(
            "rotation_policy.pending_period",
            p.pending_period.as_ref(),
            bounds::PENDING_PERIOD,
        )?
        .unwrap_or_default(),
        grace_period: opt_duration(
            "rotation_policy.grace_period",
            p.grace_period.as_ref(),
            bounds::GRACE_PERIOD,
        )?,
    };
    policy.validate()?;
    Ok(policy)
}

/// Sign/Verify input from the request's oneof.
pub(crate) fn input(message: Option<Vec<u8>>, digest: Option<Vec<u8>>) -> Result<Input> {
    match (message, digest) {
        (Some(m), _) => Ok(Input::Message(m)),
        (None, Some(d)) => Ok(Input::Digest(d)),
        (None, None) => Err(Error::invalid("message or digest is required")),
    }
}

fn version_pb(name: &str, v: &VersionRecord) -> pb::KeyVersion {
    pb::KeyVersion {
        version: v.version,
        state: state_pb(v.state) as i32,
        key_version_id: crate::keys::version_id(name, v.version),
        create_time: Some(timestamp(v.create_time)),
        activate_time: v.activate_time.map(timestamp),
        verify_until: v.verify_until.map(timestamp),
        disable_time: v.disable_time.map(timestamp),
        destroy_time: v.destroy_time.map(timestamp),
        public_key_only: v.public_only(),
    }
}

/// One version of a key view.
pub(crate) fn key_version_pb(view: &KeyView, v: u32) -> Option<pb::KeyVersion> {
    view.record
        .versions
        .iter()
        .find(|r| r.version == v)
        .map(|r| version_pb(&view.record.name, r))
}

/// A key view → proto Key.
pub(crate) fn key_pb(view: &KeyView) -> pb::Key {
    let r = &view.record;
    pb::Key {
        name: r.name.clone(),
        algorithm: algorithm_pb(r.algorithm) as i32,
        protection_level: match view.protection {
            ProtectionLevel::Software => pb::ProtectionLevel::Software,
            ProtectionLevel::Hsm => pb::ProtectionLevel::Hsm,
        } as i32,
        labels: r.labels.clone().into_iter().collect(),
        rotation_policy: r.policy.map(|p| pb::RotationPolicy {
            rotation_period: Some(duration_pb(p.rotation_period)),
            pending_period: Some(duration_pb(p.pending_period)),
            grace_period: p.grace_period.map(duration_pb),
            rotate_after_encryptions: p.rotate_after_encryptions.unwrap_or(0),
        }),
        versions: r.versions.iter().map(|v| version_pb(&r.name, v)).collect(),
        active_version: view.active_version(),
        create_time: Some(timestamp(r.create_time)),
        next_rotation_time: view.next_rotation.map(timestamp),
        verify_only: r.verify_only,
        exportable: r.exportable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_converts_both_ways() {
        for a in Algorithm::ALL {
            assert_eq!(algorithm(algorithm_pb(a) as i32).unwrap(), a);
        }
        assert!(algorithm(0).is_err());
        assert!(algorithm(999).is_err());
    }

    #[test]
    fn durations_are_checked() {
        let d = |s, n| prost_types::Duration {
            seconds: s,
            nanos: n,
        };
        let g = bounds::GRACE_PERIOD;
        assert_eq!(duration("x", &d(5, 0), g).unwrap(), Duration::from_secs(5));
        assert!(duration("x", &d(-1, 0), g).is_err());
        assert!(duration("x", &d(1, -1), g).is_err());
        let e = duration("grace_period", &d(i64::MAX, 0), g).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument);
        assert!(
            e.message()
                .contains("grace_period must be between 1s and 3650d"),
            "{e}"
        );
        let e = grace_period(Some(&d(0, 0))).unwrap_err();
        assert!(e.message().contains("between 1s and 3650d"), "{e}");
        // Just past ten years, and the largest a proto Duration holds.
        assert!(grace_period(Some(&d(3650 * 86_400 + 1, 0))).is_err());
        assert!(grace_period(Some(&d(315_576_000_000, 0))).is_err());
        assert!(grace_period(Some(&d(3650 * 86_400, 0))).is_ok());
    }
}

#[cfg(test)]
mod algorithm_tests {
    use super::*;

    /// Every proto algorithm is in the table and comes back as itself; the
    /// table has no algorithm the proto lacks.
    #[test]
    fn proto_and_table_agree() {
        let mut seen = 0;
        for v in 1..64 {
            if let Ok(p) = pb::Algorithm::try_from(v) {
                let a = algorithm(v).unwrap();
                assert_eq!(algorithm_pb(a), p);
                seen += 1;
            }
        }
        assert_eq!(seen, Algorithm::ALL.len());
        assert!(algorithm(0).is_err());
        assert!(algorithm(999).is_err());
    }
}
