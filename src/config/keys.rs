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
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            default_grace_period: default_grace(),
            destroy_delay: default_destroy_delay(),
            tick_interval: default_tick(),
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
        )
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_destroy_delay() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_tick() -> Duration {
    Duration::from_secs(1)
}
