//! The key gauges wired to the key registry: telemetry takes names and
//! numbers, the registry knows the keys.

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use crate::keys::record::VersionState;
use crate::keys::registry::Registry;
use crate::telemetry::metrics::{self, KeyGauge, KeyGauges};

/// The states in the order [`Registry::gauges`] counts them.
const STATES: [VersionState; 6] = [
    VersionState::Pending,
    VersionState::Active,
    VersionState::Retiring,
    VersionState::Disabled,
    VersionState::DestroyScheduled,
    VersionState::Destroyed,
];

impl KeyGauges for Registry {
    fn key_gauges(&self, now: SystemTime) -> Vec<KeyGauge> {
        let mut cipher = self.cipher_gauges(now);
        let mut certs = self.certificate_gauges(now);
        self.gauges(now)
            .into_iter()
            .map(|(name, counts, next_rotation)| {
                let mine = cipher
                    .extract_if(.., |g| g.key == name)
                    .map(|g| (g.version, g.encryptions, g.bound, g.decryptions, g.active))
                    .collect();
                let certificates = certs
                    .extract_if(.., |g| g.key == name)
                    .map(|g| (g.version, g.not_after, g.outlived))
                    .collect();
                KeyGauge {
                    name,
                    versions: STATES.iter().map(|s| s.name()).zip(counts).collect(),
                    next_rotation,
                    cipher: mine,
                    certificates,
                }
            })
            .collect()
    }
}

/// Reports the keys of `registry` in the key gauges for as long as it
/// lives.
pub(super) fn watch(registry: &Arc<Registry>) {
    let weak: Weak<Registry> = Arc::downgrade(registry);
    metrics::watch_keys(weak);
}
