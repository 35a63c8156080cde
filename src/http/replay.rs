//! Replay protection: a store of (profile, nonce-or-signature) seen within
//! the window, written only after a request verified.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where seen nonces and signatures are remembered.
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Atomically records `key` under `scope` for `ttl`. `Ok(true)` when it
    /// was new, `Ok(false)` when it was already there (a replay).
    fn insert(&self, scope: &str, key: &[u8], ttl: Duration) -> Result<bool>;
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

    /// Live entries (for tests and metrics).
    pub fn len(&self) -> usize {
        let mut inner = self.inner.lock();
        Self::sweep(&mut inner, Instant::now());
        inner.expiry.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert(&self, scope: &str, key: &[u8], ttl: Duration) -> Result<bool> {
        let mut h = Sha256::new();
        h.update((scope.len() as u64).to_be_bytes());
        h.update(scope.as_bytes());
        h.update(key);
        let id: [u8; 32] = h.finalize().into();
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
        let until = now + ttl;
        inner.expiry.insert(id, until);
        inner.order.push_back((id, until));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_ttl_and_scopes_apart() {
        let s = MemoryReplayStore::new(10);
        let ttl = Duration::from_secs(60);
        assert!(s.insert("a", b"n1", ttl).unwrap());
        assert!(!s.insert("a", b"n1", ttl).unwrap());
        assert!(s.insert("b", b"n1", ttl).unwrap());
        // Scope and key are framed: ("ab", "c") is not ("a", "bc").
        assert!(s.insert("ab", b"c", ttl).unwrap());
        assert!(s.insert("a", b"bc", ttl).unwrap());
    }

    #[test]
    fn expires_and_stays_bounded() {
        let s = MemoryReplayStore::new(3);
        let short = Duration::from_millis(30);
        for n in [b"1", b"2", b"3"] {
            assert!(s.insert("p", n, short).unwrap());
        }
        assert!(
            s.insert("p", b"4", short).is_err(),
            "a full store must fail closed"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.insert("p", b"4", short).unwrap());
        assert!(
            s.insert("p", b"1", short).unwrap(),
            "expired entries are forgotten"
        );
        assert_eq!(s.len(), 2);
    }
}
