//! Replay protection: a store of (profile, nonce or signed-content digest)
//! seen within the window, written only after a request verified
//! (docs/http-signing.md, "Verification", step 6).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A boxed future, so the trait stays object-safe.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where seen nonces and signed-content digests are remembered.
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Atomically records `key` under `scope` for `ttl`. `Ok(true)` when it
    /// was new, `Ok(false)` when it was already there (a replay). A store
    /// that cannot answer fails closed (`UNAVAILABLE`).
    fn insert<'a>(
        &'a self,
        scope: &'a str,
        key: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>>;

    /// `memory` or `redis`: for metrics and traces.
    fn kind(&self) -> &'static str;

    /// Does the store answer? For health and readiness.
    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// The entry id: SHA-256 over the framed scope and key, so entries have a
/// fixed size and ("ab", "c") is not ("a", "bc").
pub(crate) fn entry_id(scope: &str, key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((scope.len() as u64).to_be_bytes());
    h.update(scope.as_bytes());
    h.update(key);
    h.finalize().into()
}

/// In process memory: bounded, entries expire. Entries are SHA-256
/// digests of scope and key, so their size does not depend on the input.
#[derive(Debug)]
pub struct MemoryReplayStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    expiry: HashMap<[u8; 32], Instant>,
    /// Insertion order, for sweeping; entries expire in this order when
    /// every ttl is the same, and a sweep stops at the first live one.
    order: VecDeque<([u8; 32], Instant)>,
}

impl MemoryReplayStore {
    /// A store holding at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn sweep(inner: &mut Inner, now: Instant) {
        while let Some((k, t)) = inner.order.front().copied() {
            if t > now {
                break;
            }
            inner.order.pop_front();
            if inner.expiry.get(&k).is_some_and(|e| *e <= now) {
                inner.expiry.remove(&k);
            }
        }
    }

    /// Live entries (the tests count them).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let mut inner = self.inner.lock();
        Self::sweep(&mut inner, Instant::now());
        inner.expiry.len()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn insert<'a>(
        &'a self,
        scope: &'a str,
        key: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(std::future::ready(self.insert_now(scope, key, ttl)))
    }
}

impl MemoryReplayStore {
    fn insert_now(&self, scope: &str, key: &[u8], ttl: Duration) -> Result<bool> {
        let id = entry_id(scope, key);
        let now = Instant::now();
        let mut inner = self.inner.lock();
        Self::sweep(&mut inner, now);
        if inner.expiry.get(&id).is_some_and(|e| *e > now) {
            return Ok(false);
        }
        if inner.expiry.len() >= self.capacity {
            // Fail closed: forgetting a live entry would let a replay in.
            return Err(Error::unavailable(
                "replay store is full; raise http.replay_capacity",
            ));
        }
        // Profiles bound the ttl (twice tolerance_seconds, at most 2 h);
        // checked all the same, so no value can panic here.
        let until = now
            .checked_add(ttl)
            .ok_or_else(|| Error::invalid("replay ttl out of range"))?;
        inner.expiry.insert(id, until);
        inner.order.push_back((id, until));
        Ok(true)
    }
}

pub(crate) use crate::net::redact_url;

/// Parses a Redis URL without connecting; the error shows it redacted.
pub(crate) fn parse_url(url: &str) -> std::result::Result<redis::Client, String> {
    redis::Client::open(url).map_err(|e| format!("http.redis_url {}: {e}", redact_url(url)))
}

/// Redis, shared by every replica: `SET key 1 NX PX ttl` is the atomic
/// insert. Keys are `signet:replay:` and the hex entry id, never the nonce
/// or signature itself.
pub struct RedisReplayStore {
    conn: redis::aio::ConnectionManager,
    url_for_logs: String,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("url", &self.url_for_logs)
            .finish()
    }
}

impl RedisReplayStore {
    /// Connects (once; the connection manager reconnects by itself after).
    pub async fn connect(url: &str) -> std::result::Result<Self, String> {
        let url_for_logs = redact_url(url);
        let client = parse_url(url)?;
        // Retries are few and short: a request waiting on the replay check
        // should fail closed within seconds, not queue behind a backoff.
        // (redis 0.32 hands `factor` to backon as a growth factor, whose
        // default 100 meant a 100 s sleep after a refused AUTH; the cap
        // keeps every delay at or under 500 ms.)
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2)
            .set_factor(2)
            .set_max_delay(500);
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| format!("cannot reach Redis at {url_for_logs}: timed out after 10 s"))?
        .map_err(|e| format!("cannot reach Redis at {url_for_logs}: {e}"))?;
        Ok(Self { conn, url_for_logs })
    }
}

impl ReplayStore for RedisReplayStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(|e| {
                    Error::unavailable("replay store (Redis) unavailable").with_source(e)
                })?;
            Ok(())
        })
    }

    fn insert<'a>(
        &'a self,
        scope: &'a str,
        key: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let k = format!("signet:replay:{}", hex::encode(entry_id(scope, key)));
            let mut conn = self.conn.clone();
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let r: Option<String> = redis::cmd("SET")
                .arg(&k)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut conn)
                .await
                .map_err(|e| {
                    Error::unavailable("replay store (Redis) unavailable").with_source(e)
                })?;
            Ok(r.is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_no_credentials() {
        assert_eq!(
            redact_url("redis://:s3cret@10.0.0.5:6379/2"),
            "redis://***@10.0.0.5:6379/2"
        );
        assert_eq!(
            redact_url("rediss://user:p@ss@host:6380"),
            "rediss://***@host:6380"
        );
        assert_eq!(redact_url("user:pw@host"), "***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn remembers_within_ttl_and_scopes_apart() {
        let s = MemoryReplayStore::new(10);
        let ttl = Duration::from_secs(60);
        assert!(s.insert_now("a", b"n1", ttl).unwrap());
        assert!(!s.insert_now("a", b"n1", ttl).unwrap());
        assert!(s.insert_now("b", b"n1", ttl).unwrap());
        // Scope and key are framed: ("ab", "c") is not ("a", "bc").
        assert!(s.insert_now("ab", b"c", ttl).unwrap());
        assert!(s.insert_now("a", b"bc", ttl).unwrap());
    }

    #[test]
    fn expires_and_stays_bounded() {
        let s = MemoryReplayStore::new(3);
        let short = Duration::from_millis(30);
        for n in [b"1", b"2", b"3"] {
            assert!(s.insert_now("p", n, short).unwrap());
        }
        assert!(
            s.insert_now("p", b"4", short).is_err(),
            "a full store must fail closed"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.insert_now("p", b"4", short).unwrap());
        assert!(
            s.insert_now("p", b"1", short).unwrap(),
            "expired entries are forgotten"
        );
        assert_eq!(s.len(), 2);
    }
}
