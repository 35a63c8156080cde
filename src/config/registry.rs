//! `[registry]`: where the key registry (names, versions, states, times)
//! is kept, and how stale a replica's view of a shared one may grow.

use std::time::Duration;

use serde::Deserialize;

use super::in_range;
use super::values::closed_set;
use crate::bounds;
use crate::error::ConfigError;

/// `[registry]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `token`: next to the keys (on the PKCS#11 token; nowhere with the
    /// memory backend), for one replica. `postgres`: in the database of
    /// `[postgres]`, shared by replicas.
    #[serde(default)]
    pub store: RegistryStoreKind,
    /// With a shared store: a replica that has been out of contact with it
    /// for longer stops signing and verifying (`UNAVAILABLE`, readiness
    /// NOT_SERVING), so that a version disabled elsewhere is not used for
    /// long.
    #[serde(default = "default_max_staleness", with = "super::duration")]
    pub max_staleness: Duration,
}

closed_set! {
    /// `registry.store`: where the key registry is kept.
    pub enum RegistryStoreKind in "registry.store" {
        /// Next to the keys: the PKCS#11 token (or nowhere, in memory).
        #[default]
        Token = "token",
        /// In PostgreSQL (`[postgres]`).
        Postgres = "postgres",
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            store: RegistryStoreKind::Token,
            max_staleness: default_max_staleness(),
        }
    }
}

impl RegistryConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            bounds::MAX_STALENESS,
            "registry.max_staleness",
            self.max_staleness,
        )
    }
}

fn default_max_staleness() -> Duration {
    Duration::from_secs(60)
}
