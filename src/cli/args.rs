//! Parsers and converters for command-line arguments: algorithms (with the
//! list of names `--help` shows), durations, labels.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};

use super::client::{CliError, CliResult};
use crate::api::names::ShortName;
use crate::api::pb;
use crate::keys::Algorithm;

/// `--algorithm`: any of the table's names, in any case; `--help` lists
/// them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AlgorithmArg;

impl TypedValueParser for AlgorithmArg {
    type Value = Algorithm;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Algorithm, clap::Error> {
        let text = value.to_str().unwrap_or_default();
        parse_algorithm(text).map_err(|message| {
            let name = arg.map(|a| a.to_string()).unwrap_or_default();
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value for {name}: {message}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            Algorithm::ALL.iter().map(|a| PossibleValue::new(a.name())),
        ))
    }
}

/// Parses an algorithm by its name in the algorithm table (the proto value
/// without `ALGORITHM_`), case-insensitively.
pub(crate) fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!("unknown algorithm {s:?}; one of: {}", names.join(", "))
    })
}

/// The proto enum value of an algorithm.
pub(crate) fn algorithm_pb(a: Algorithm) -> i32 {
    pb::Algorithm::from(a) as i32
}

/// The name of an algorithm enum value as the CLI shows it: the algorithm
/// table's, without the proto's `ALGORITHM_` prefix.
pub(crate) fn algorithm_name(v: i32) -> String {
    pb::Algorithm::try_from(v)
        .map(|a| a.short_name().to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({v})"))
}

/// Parses a humantime duration ("90d", "1h 30m", "10s").
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// A std duration as a proto duration.
pub(crate) fn duration_pb(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

/// Parses one `--label key=value`.
pub(crate) fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("invalid label {s:?}: expected key=value")),
    }
}

/// Collects labels, refusing a key given twice.
pub(crate) fn labels_map(labels: &[(String, String)]) -> CliResult<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (k, v) in labels {
        if map.insert(k.clone(), v.clone()).is_some() {
            return Err(CliError::usage(format!("label {k:?} given more than once")));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::super::client::EXIT_USAGE;
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86400)
        );
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration(" 1h 30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        let p = duration_pb(Duration::from_millis(1500));
        assert_eq!((p.seconds, p.nanos), (1, 500_000_000));
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("env=prod").unwrap(),
            ("env".into(), "prod".into())
        );
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(
            parse_label("empty=").unwrap(),
            ("empty".into(), String::new())
        );
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
        let dup = [("a".to_string(), "1".to_string()), ("a".into(), "2".into())];
        assert_eq!(labels_map(&dup).unwrap_err().code, EXIT_USAGE);
        let ok = [("b".to_string(), "1".to_string()), ("a".into(), "2".into())];
        assert_eq!(labels_map(&ok).unwrap().len(), 2);
    }

    #[test]
    fn algorithms() {
        assert_eq!(
            parse_algorithm("ecdsa_p256_sha256").unwrap(),
            Algorithm::EcdsaP256Sha256
        );
        assert_eq!(parse_algorithm("ED25519").unwrap(), Algorithm::Ed25519);
        let err = parse_algorithm("rsa").unwrap_err();
        assert!(err.contains("HMAC_SHA256"), "{err}");
        for a in Algorithm::ALL {
            assert_eq!(algorithm_name(algorithm_pb(a)), a.name());
        }
        assert_eq!(algorithm_name(99), "UNKNOWN(99)");
    }

    #[test]
    fn help_lists_every_algorithm() {
        let names: Vec<String> = AlgorithmArg
            .possible_values()
            .unwrap()
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(names.len(), Algorithm::ALL.len());
        assert!(names.contains(&"ECDSA_P256_SHA256".to_string()));
    }
}
