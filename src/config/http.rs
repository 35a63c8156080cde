//! `[http]`: the replay store shared by the HTTP profiles.

use serde::Deserialize;

use super::values::closed_set;
use crate::error::ConfigError;

/// `[http]`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where seen nonces and signatures are kept: `memory` (this process),
    /// `redis` or `postgres` (shared by replicas).
    #[serde(default)]
    pub replay_store: ReplayStoreKind,
    /// Live entries the in-memory replay store holds at most; a full store
    /// refuses (fails closed) rather than forgetting.
    #[serde(default = "default_replay_capacity")]
    pub replay_capacity: usize,
    /// `redis://[:password@]host:port[/db]` (or `rediss://` for TLS) when
    /// `replay_store = "redis"`. Or name an environment variable holding it
    /// with `redis_url_env`, to keep a password out of the file.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// The environment variable holding the Redis URL.
    #[serde(default)]
    pub redis_url_env: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("replay_store", &self.replay_store)
            .field("replay_capacity", &self.replay_capacity)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(crate::net::redact_url),
            )
            .field("redis_url_env", &self.redis_url_env)
            .finish()
    }
}

impl HttpConfig {
    /// The Redis URL, from the file or the environment (`None` with the
    /// memory store).
    pub fn resolve_redis_url(&self) -> Result<Option<String>, ConfigError> {
        if self.replay_store != ReplayStoreKind::Redis {
            return Ok(None);
        }
        match (&self.redis_url, &self.redis_url_env) {
            (Some(u), None) => Ok(Some(u.clone())),
            (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
                ConfigError::new("http.redis_url_env", format!("variable {var} is not set"))
            }),
            _ => Err(exactly_one_url()),
        }
    }
}

closed_set! {
    /// `http.replay_store`: where seen nonces and signatures are kept.
    pub enum ReplayStoreKind in "http.replay_store" {
        /// In this process.
        #[default]
        Memory = "memory",
        /// In Redis.
        Redis = "redis",
        /// In PostgreSQL (`[postgres]`).
        Postgres = "postgres",
    }
}

fn exactly_one_url() -> ConfigError {
    ConfigError::new("http", "set exactly one of redis_url and redis_url_env")
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            replay_store: ReplayStoreKind::Memory,
            replay_capacity: default_replay_capacity(),
            redis_url: None,
            redis_url_env: None,
        }
    }
}

impl HttpConfig {
    /// The store and its URL agree. Whether a URL written in the file
    /// parses is the composition root's check (`crate::server::settings`);
    /// a URL from `redis_url_env` is read by `serve`.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.replay_capacity == 0 {
            return Err(ConfigError::naming(
                "http.replay_capacity",
                "http.replay_capacity must be at least 1",
            ));
        }
        let has_url = self.redis_url.is_some() || self.redis_url_env.is_some();
        if (self.replay_store == ReplayStoreKind::Redis) != has_url {
            return Err(ConfigError::naming(
                "http.redis_url",
                "http.redis_url or redis_url_env is required with replay_store = \"redis\", \
                 and only then",
            ));
        }
        if self.redis_url.is_some() && self.redis_url_env.is_some() {
            return Err(exactly_one_url());
        }
        Ok(())
    }
}

fn default_replay_capacity() -> usize {
    1_000_000
}
