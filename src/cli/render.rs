//! Rendering keys for people (aligned tables) and for programs (JSON).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::client::algorithm_name;
use crate::api::names::ShortName;
use crate::api::pb;

/// Left-aligned columns separated by two spaces, no trailing blanks.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            } else {
                widths.push(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A proto timestamp as a `SystemTime`; `None` when unset or out of range.
pub(crate) fn system_time(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    if (t.seconds, t.nanos) == (0, 0) || !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    if t.seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(t.seconds as u64, t.nanos as u32))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(t.seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(t.nanos as u64))
    }
}

/// RFC 3339 (seconds, UTC), or `None` when unset.
pub(crate) fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    system_time(t).map(|st| humantime::format_rfc3339_seconds(st).to_string())
}

/// RFC 3339 or "-".
fn time_cell(t: Option<&prost_types::Timestamp>) -> String {
    rfc3339(t).unwrap_or_else(|| "-".into())
}

/// A proto duration as a std duration; `None` when unset or negative.
fn std_duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    let d = d?;
    (d.seconds >= 0 && (0..1_000_000_000).contains(&d.nanos))
        .then(|| Duration::new(d.seconds as u64, d.nanos as u32))
}

/// A compact duration in days, hours, minutes and seconds: "90d",
/// "1d 12h", "1h 30m", "0s" (also valid input for the duration flags).
pub(crate) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let mut out: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if d.subsec_millis() > 0 {
        out.push(format!("{}ms", d.subsec_millis()));
    }
    if out.is_empty() {
        "0s".into()
    } else {
        out.join(" ")
    }
}

/// A proto duration for people; "-" when unset.
fn human_duration(d: Option<&prost_types::Duration>) -> String {
    std_duration(d)
        .map(fmt_duration)
        .unwrap_or_else(|| "-".into())
}

/// The proto3 JSON form of a duration ("3600s", "1.5s"), or null.
fn json_duration(d: Option<&prost_types::Duration>) -> Value {
    match std_duration(d) {
        None => Value::Null,
        Some(d) if d.subsec_nanos() == 0 => json!(format!("{}s", d.as_secs())),
        Some(d) => json!(format!("{}s", d.as_secs_f64())),
    }
}

fn json_time(t: Option<&prost_types::Timestamp>) -> Value {
    rfc3339(t).map(Value::String).unwrap_or(Value::Null)
}

/// The name of a version state, without the proto's prefix (`ACTIVE`).
pub(crate) fn state_name(v: i32) -> String {
    pb::KeyVersionState::try_from(v)
        .map(|s| s.short_name().to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({v})"))
}

/// The name of a protection level, without the proto's prefix (`HSM`).
pub(crate) fn protection_name(v: i32) -> String {
    pb::ProtectionLevel::try_from(v)
        .map(|s| s.short_name().to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({v})"))
}

fn sorted_labels(key: &pb::Key) -> BTreeMap<&str, &str> {
    key.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// An encryption key's previous version has no default grace: it
/// decrypts until a custodian disables it (docs/encryption.md).
fn policy_text(p: Option<&pb::RotationPolicy>, encrypts: bool) -> String {
    let no_grace = if encrypts {
        "none (the previous version decrypts until disabled)"
    } else {
        "server default"
    };
    match p {
        Some(p) if p.rotation_period.is_some() => format!(
            "rotate every {}{}, pending {}, grace {}",
            human_duration(p.rotation_period.as_ref()),
            match p.rotate_after_encryptions {
                0 => String::new(),
                n => format!(" or after {n} encryptions"),
            },
            human_duration(p.pending_period.as_ref()),
            p.grace_period
                .as_ref()
                .map(|g| human_duration(Some(g)))
                .unwrap_or_else(|| no_grace.into()),
        ),
        _ => "none".into(),
    }
}

/// A key and its versions, for people.
pub(crate) fn key_text(key: &pb::Key) -> String {
    let labels = sorted_labels(key);
    let labels = if labels.is_empty() {
        "-".to_string()
    } else {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let active = match key.active_version {
        0 => "-".to_string(),
        n => n.to_string(),
    };
    let fields = [
        ("name", key.name.clone()),
        ("algorithm", algorithm_name(key.algorithm)),
        ("protection level", protection_name(key.protection_level)),
        ("active version", active),
        (
            "verify only",
            if key.verify_only { "yes" } else { "no" }.into(),
        ),
        (
            "exportable",
            if key.exportable { "yes" } else { "no" }.into(),
        ),
        ("created", time_cell(key.create_time.as_ref())),
        ("labels", labels),
        (
            "rotation policy",
            policy_text(
                key.rotation_policy.as_ref(),
                key.algorithm == pb::Algorithm::Aes256Gcm as i32,
            ),
        ),
        ("next rotation", time_cell(key.next_rotation_time.as_ref())),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(&format!("{:<18}{v}\n", format!("{k}:")));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = key
        .versions
        .iter()
        .map(|v| {
            let mut state = state_name(v.state);
            if v.public_key_only {
                state.push_str(" (public only)");
            }
            vec![
                v.version.to_string(),
                state,
                v.key_version_id.clone(),
                time_cell(v.create_time.as_ref()),
                time_cell(v.activate_time.as_ref()),
                time_cell(v.verify_until.as_ref()),
                time_cell(v.destroy_time.as_ref()),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "VERSION",
            "STATE",
            "KEY_VERSION_ID",
            "CREATED",
            "ACTIVATED",
            "VERIFY_UNTIL",
            "DESTROY_TIME",
        ],
        &rows,
    ));
    out
}

/// One line per key, for `keys list`.
pub(crate) fn key_list_text(keys: &[pb::Key]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.name.clone(),
                algorithm_name(k.algorithm),
                protection_name(k.protection_level),
                match k.active_version {
                    0 => "-".into(),
                    n => n.to_string(),
                },
                k.versions.len().to_string(),
                time_cell(k.next_rotation_time.as_ref()),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "ALGORITHM",
            "PROTECTION",
            "ACTIVE",
            "VERSIONS",
            "NEXT_ROTATION",
        ],
        &rows,
    )
}

/// A key version as JSON.
pub(crate) fn version_json(v: &pb::KeyVersion) -> Value {
    json!({
        "version": v.version,
        "state": state_name(v.state),
        "key_version_id": v.key_version_id,
        "create_time": json_time(v.create_time.as_ref()),
        "activate_time": json_time(v.activate_time.as_ref()),
        "verify_until": json_time(v.verify_until.as_ref()),
        "disable_time": json_time(v.disable_time.as_ref()),
        "destroy_time": json_time(v.destroy_time.as_ref()),
        "public_key_only": v.public_key_only,
    })
}

/// A key and its versions as JSON.
pub(crate) fn key_json(key: &pb::Key) -> Value {
    let policy = match &key.rotation_policy {
        Some(p) => json!({
            "rotation_period": json_duration(p.rotation_period.as_ref()),
            "pending_period": json_duration(p.pending_period.as_ref()),
            "grace_period": json_duration(p.grace_period.as_ref()),
            "rotate_after_encryptions": (p.rotate_after_encryptions > 0).then_some(p.rotate_after_encryptions),
        }),
        None => Value::Null,
    };
    json!({
        "name": key.name,
        "algorithm": algorithm_name(key.algorithm),
        "protection_level": protection_name(key.protection_level),
        "active_version": key.active_version,
        "verify_only": key.verify_only,
        "exportable": key.exportable,
        "labels": sorted_labels(key),
        "create_time": json_time(key.create_time.as_ref()),
        "rotation_policy": policy,
        "next_rotation_time": json_time(key.next_rotation_time.as_ref()),
        "versions": key.versions.iter().map(version_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn sample() -> pb::Key {
        pb::Key {
            name: "pay".into(),
            algorithm: pb::Algorithm::EcdsaP256Sha256 as i32,
            protection_level: pb::ProtectionLevel::Software as i32,
            labels: [
                ("team".to_string(), "core".to_string()),
                ("env".into(), "prod".into()),
            ]
            .into_iter()
            .collect(),
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: Some(prost_types::Duration {
                    seconds: 90 * 86400,
                    nanos: 0,
                }),
                pending_period: Some(prost_types::Duration {
                    seconds: 7 * 86400,
                    nanos: 0,
                }),
                grace_period: None,
                rotate_after_encryptions: 0,
            }),
            versions: vec![
                pb::KeyVersion {
                    version: 1,
                    state: pb::KeyVersionState::Retiring as i32,
                    key_version_id: "pay:v1".into(),
                    create_time: ts(1_700_000_000),
                    activate_time: ts(1_700_000_000),
                    verify_until: ts(1_700_604_800),
                    ..Default::default()
                },
                pb::KeyVersion {
                    version: 2,
                    state: pb::KeyVersionState::Active as i32,
                    key_version_id: "pay:v2".into(),
                    create_time: ts(1_700_000_100),
                    activate_time: ts(1_700_000_100),
                    ..Default::default()
                },
            ],
            active_version: 2,
            create_time: ts(1_700_000_000),
            next_rotation_time: None,
            verify_only: false,
            exportable: false,
        }
    }

    #[test]
    fn table_aligns() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "-".into()]],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq    -\n");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_secs(90 * 86400)), "90d");
        assert_eq!(
            fmt_duration(Duration::from_secs(86400 + 12 * 3600)),
            "1d 12h"
        );
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        let d = Duration::from_secs(93784);
        assert_eq!(humantime::parse_duration(&fmt_duration(d)).unwrap(), d);
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(ts(0).as_ref()), None);
        assert_eq!(rfc3339(None), None);
        assert_eq!(
            rfc3339(ts(1_700_000_000).as_ref()).unwrap(),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn key_as_text() {
        let t = key_text(&sample());
        assert!(t.contains("name:             pay\n"), "{t}");
        assert!(t.contains("algorithm:        ECDSA_P256_SHA256\n"), "{t}");
        assert!(t.contains("labels:           env=prod, team=core\n"), "{t}");
        assert!(
            t.contains("rotate every 90d, pending 7d, grace server default"),
            "{t}"
        );
        assert!(t.contains("next rotation:    -\n"), "{t}");
        assert!(t.contains("exportable:       no\n"), "{t}");
        // An AES key's previous version has no default grace.
        let mut aes = sample();
        aes.algorithm = pb::Algorithm::Aes256Gcm as i32;
        let a = key_text(&aes);
        assert!(
            a.contains("grace none (the previous version decrypts until disabled)"),
            "{a}"
        );
        let lines: Vec<&str> = t.lines().collect();
        let hdr = lines.iter().position(|l| l.starts_with("VERSION")).unwrap();
        assert!(lines[hdr].contains("STATE     KEY_VERSION_ID"), "{t}");
        assert!(
            lines[hdr + 1].starts_with("1        RETIRING  pay:v1          2023-11-14T22:13:20Z"),
            "{t}"
        );
        assert!(lines[hdr + 1].contains("2023-11-21T22:13:20Z  -"), "{t}");
        assert!(
            lines[hdr + 2].starts_with("2        ACTIVE    pay:v2"),
            "{t}"
        );
        let last: Vec<&str> = lines[hdr + 2].split_whitespace().collect();
        assert_eq!(last[5..], ["-", "-"], "{t}");
    }

    #[test]
    fn key_as_json() {
        let j = key_json(&sample());
        assert_eq!(j["name"], "pay");
        assert_eq!(j["algorithm"], "ECDSA_P256_SHA256");
        assert_eq!(j["protection_level"], "SOFTWARE");
        assert_eq!(j["active_version"], 2);
        assert_eq!(j["labels"]["env"], "prod");
        assert_eq!(j["rotation_policy"]["rotation_period"], "7776000s");
        assert_eq!(j["rotation_policy"]["grace_period"], Value::Null);
        assert_eq!(j["versions"][0]["state"], "RETIRING");
        assert_eq!(j["versions"][0]["verify_until"], "2023-11-21T22:13:20Z");
        assert_eq!(j["versions"][1]["destroy_time"], Value::Null);
        assert_eq!(j["next_rotation_time"], Value::Null);
    }

    #[test]
    fn list_text() {
        let t = key_list_text(&[sample()]);
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "pay   ECDSA_P256_SHA256  SOFTWARE    2       2         -"
        );
    }
}
