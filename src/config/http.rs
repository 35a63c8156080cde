//! `[http]`: the replay store shared by the HTTP profiles.

use serde::Deserialize;

/// `[http]`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where seen nonces and signatures are kept: `memory` (this process)
    /// or `redis` (shared by replicas).
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
    pub fn resolve_redis_url(&self) -> std::result::Result<Option<String>, String> {
        if self.replay_store != ReplayStoreKind::Redis {
            return Ok(None);
        }
        match (&self.redis_url, &self.redis_url_env) {
            (Some(u), None) => Ok(Some(u.clone())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("http.redis_url_env: variable {var} is not set")),
            _ => Err("http: set exactly one of redis_url and redis_url_env".into()),
        }
    }
}

/// `http.replay_store`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReplayStoreKind {
    /// In this process.
    #[default]
    Memory,
    /// In Redis.
    Redis,
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
    /// The store and its URL agree; a URL written in the file parses (no
    /// connection is made). A URL from `redis_url_env` is read by `serve`.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.replay_capacity == 0 {
            return Err("http.replay_capacity must be at least 1".into());
        }
        let has_url = self.redis_url.is_some() || self.redis_url_env.is_some();
        if (self.replay_store == ReplayStoreKind::Redis) != has_url {
            return Err(
                "http.redis_url or redis_url_env is required with replay_store = \"redis\", \
                 and only then"
                    .into(),
            );
        }
        if self.redis_url.is_some() && self.redis_url_env.is_some() {
            return Err("http: set exactly one of redis_url and redis_url_env".into());
        }
        if let Some(url) = &self.redis_url {
            crate::httpsig::replay::parse_url(url)?;
        }
        Ok(())
    }
}

fn default_replay_capacity() -> usize {
    1_000_000
}
