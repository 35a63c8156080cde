//! `[keys]`: key lifecycle defaults.

use std::time::Duration;

use serde::Deserialize;

use super::in_range;
use crate::bounds;
use crate::error::ConfigError;

/// `[keys]`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Grace for the previous ACTIVE version when a promotion names none.
    #[serde(default = "default_grace", with = "super::duration")]
    pub default_grace_period: Duration,
    /// Delay between DestroyKeyVersion and the material's destruction.
    #[serde(default = "default_destroy_delay", with = "super::duration")]
    pub destroy_delay: Duration,
    /// How often time-driven transitions are applied.
    #[serde(default = "default_tick", with = "super::duration")]
    pub tick_interval: Duration,
    /// Most encryptions one AES-GCM key version makes: 2^32, the bound of
    /// NIST SP 800-38D §8.3 for random 96-bit nonces, or lower.
    #[serde(default = "default_max_encryptions")]
    pub max_encryptions_per_version: u64,
    /// Refuse HMAC secrets, AES keys and private keys imported in the
    /// clear: only material wrapped to the import wrapping key is taken
    /// (public keys, not being secret, still are).
    #[serde(default)]
    pub refuse_plaintext_import: bool,
}

/// The largest `keys.max_encryptions_per_version`: 2^32.
pub(super) const MAX_ENCRYPTIONS: u64 = 1 << 32;

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            default_grace_period: default_grace(),
            destroy_delay: default_destroy_delay(),
            tick_interval: default_tick(),
            max_encryptions_per_version: default_max_encryptions(),
            refuse_plaintext_import: false,
        }
    }
}

impl KeysConfig {
    /// Key lifecycle durations, by their ranges ([`crate::bounds`]).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            bounds::GRACE_PERIOD,
            "keys.default_grace_period",
            self.default_grace_period,
        )?;
        in_range(
            bounds::DESTROY_DELAY,
            "keys.destroy_delay",
            self.destroy_delay,
        )?;
        in_range(
            bounds::TICK_INTERVAL,
            "keys.tick_interval",
            self.tick_interval,
        )?;
        if !(1..=MAX_ENCRYPTIONS).contains(&self.max_encryptions_per_version) {
            return Err(ConfigError::new(
                "keys.max_encryptions_per_version",
                format!("must be 1 to {MAX_ENCRYPTIONS} (2^32, NIST SP 800-38D §8.3)"),
            ));
        }
        Ok(())
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_destroy_delay() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_max_encryptions() -> u64 {
    MAX_ENCRYPTIONS
}
fn default_tick() -> Duration {
    Duration::from_secs(1)
}
