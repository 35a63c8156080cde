//! Who may call what: bearer tokens (kept as SHA-256 hashes; `tokens.rs`),
//! identities with their grants (`grants.rs`), source allow-lists and rate
//! limits, and the trusted proxies whose forwarded addresses are believed.
//! Built from `[auth]` and `[limits]`; pure logic, no I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::clock::{Clock as _, DefaultClock};
use governor::{state::InMemoryState, state::NotKeyed, Quota, RateLimiter};

use crate::config::{AuthConfig, LimitsConfig};
use crate::net::Cidr;

mod grants;
mod tokens;

use grants::Grant;
use tokens::Token;

pub(crate) use crate::rpcs::Op;
pub use tokens::token_hash;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// One identity: its grants, where it may connect from, its rate.
struct Identity {
    grants: Vec<Grant>,
    allow_from: Vec<Cidr>,
    limiter: Option<Limiter>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("grants", &self.grants)
            .field("allow_from", &self.allow_from)
            .field("rate_limited", &self.limiter.is_some())
            .finish()
    }
}

/// Why a caller was let in or not.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No credentials, an unknown, expired or malformed token.
    Unauthenticated,
    /// Authenticated, but not allowed (source address, grants).
    PermissionDenied,
    /// Over its rate; retry after the duration.
    RateLimited(Duration),
}

/// The whole policy.
pub(crate) struct Policy {
    /// False when no `[auth]` identities are configured: every caller is
    /// let in as `anonymous` (loopback-only listeners; checked at start).
    enabled: bool,
    identities: HashMap<Arc<str>, Identity>,
    tokens: Vec<Token>,
    trusted_proxies: Vec<Cidr>,
    key_limiters: HashMap<String, Limiter>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Token hashes are not secrets, but nothing is gained by printing
        // them.
        f.debug_struct("Policy")
            .field("enabled", &self.enabled)
            .field("identities", &self.identities.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// The identity of callers when authorization is off.
pub(crate) const ANONYMOUS: &str = "anonymous";

fn limiter(rate: Option<u32>, burst: Option<u32>, what: &str) -> Result<Option<Limiter>, String> {
    let Some(rate) = rate else {
        if burst.is_some() {
            return Err(format!("{what}: burst needs rate_per_second"));
        }
        return Ok(None);
    };
    let rate = NonZeroU32::new(rate).ok_or(format!("{what}.rate_per_second must be at least 1"))?;
    let burst = match burst {
        None => rate,
        Some(b) => NonZeroU32::new(b).ok_or(format!("{what}.burst must be at least 1"))?,
    };
    Ok(Some(RateLimiter::direct(
        Quota::per_second(rate).allow_burst(burst),
    )))
}

fn cidrs(list: &[String], what: &str) -> Result<Vec<Cidr>, String> {
    list.iter()
        .map(|c| Cidr::parse(c).map_err(|e| format!("{what}: {e}")))
        .collect()
}

impl Policy {
    /// Builds the policy; errors name the section and the field.
    pub(crate) fn new(auth: &AuthConfig, limits: &LimitsConfig) -> Result<Self, String> {
        let mut identities = HashMap::new();
        for (i, id) in auth.identities.iter().enumerate() {
            let what = format!("auth.identities[{i}] ({})", id.name);
            if id.name.is_empty() || id.name.len() > 256 || id.name == ANONYMOUS {
                return Err(format!(
                    "{what}.name must be 1 to 256 characters and not {ANONYMOUS:?}"
                ));
            }
            let mut grants = Vec::new();
            for (j, g) in id.grants.iter().enumerate() {
                let gw = format!("{what}.grants[{j}]");
                grants.push(Grant::parse(g, &gw)?);
            }
            let identity = Identity {
                grants,
                allow_from: cidrs(&id.allow_from, &format!("{what}.allow_from"))?,
                limiter: limiter(id.rate_per_second, id.burst, &what)?,
            };
            if identities
                .insert(Arc::from(id.name.as_str()), identity)
                .is_some()
            {
                return Err(format!("{what}: identity named twice"));
            }
        }
        let tokens = tokens::parse_tokens(auth, &identities)?;
        let mut key_limiters = HashMap::new();
        for (i, k) in limits.keys.iter().enumerate() {
            let what = format!("limits.keys[{i}] ({})", k.key);
            crate::keys::validate_name("key", &k.key)
                .map_err(|e| format!("limits.keys[{i}].key {:?}: {}", k.key, e.message()))?;
            let l = limiter(Some(k.rate_per_second), k.burst, &what)?.expect("rate given");
            if key_limiters.insert(k.key.clone(), l).is_some() {
                return Err(format!("{what}: key named twice"));
            }
        }
        Ok(Self {
            enabled: !auth.identities.is_empty(),
            identities,
            tokens,
            trusted_proxies: cidrs(&auth.trusted_proxies, "auth.trusted_proxies")?,
            key_limiters,
        })
    }

    /// True when identities are configured and checked.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the rightmost address of `x-forwarded-for` that is not one.
    pub(crate) fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted(ip) {
                        break;
                    }
                }
                // An unparsable hop ends the walk at the last good one.
                Err(_) => break,
            }
        }
        client
    }

    /// The identity a bearer token stands for.
    pub(crate) fn token_identity(&self, token: &str, now: SystemTime) -> Result<Arc<str>, Denial> {
        tokens::identify(&self.tokens, token, now).ok_or(Denial::Unauthenticated)
    }

    /// Connection-level checks for an authenticated identity: it exists,
    /// it may connect from `client`, and it is within its rate.
    pub(crate) fn admit(&self, identity: &str, client: IpAddr) -> Result<(), Denial> {
        if !self.enabled {
            return Ok(());
        }
        let id = self
            .identities
            .get(identity)
            .ok_or(Denial::PermissionDenied)?;
        if !id.allow_from.is_empty() && !id.allow_from.iter().any(|c| c.contains(client)) {
            return Err(Denial::PermissionDenied);
        }
        if let Some(l) = &id.limiter {
            l.check().map_err(|nu| {
                Denial::RateLimited(nu.wait_time_from(DefaultClock::default().now()))
            })?;
        }
        Ok(())
    }

    /// One more unit of `identity`'s rate, for each item of a batch past
    /// the first (the call itself was charged by [`Policy::admit`]): a
    /// batch of N items costs what N calls cost.
    pub(crate) fn charge(&self, identity: &str) -> Result<(), Denial> {
        match self
            .identities
            .get(identity)
            .and_then(|i| i.limiter.as_ref())
        {
            Some(l) => l.check().map_err(|nu| {
                Denial::RateLimited(nu.wait_time_from(DefaultClock::default().now()))
            }),
            None => Ok(()),
        }
    }

    /// May `identity` do `op` on the key or profile `name`?
    pub(crate) fn allows(&self, identity: &str, op: Op, name: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(id) = self.identities.get(identity) else {
            return false;
        };
        id.grants.iter().any(|g| g.allows(op, name))
    }

    /// Does `identity` hold `op` on any key or profile at all? A list RPC
    /// (`ListKeys`, `ListHttpProfiles`) is refused to an identity that
    /// holds its operation nowhere, and lists only what it holds.
    pub(crate) fn holds_anywhere(&self, identity: &str, op: Op) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(id) = self.identities.get(identity) else {
            return false;
        };
        id.grants.iter().any(|g| g.holds(op))
    }

    /// The per-key rate limit, when `[[limits.keys]]` names the key.
    pub(crate) fn key_rate(&self, key: &str) -> Result<(), Denial> {
        match self.key_limiters.get(key) {
            Some(l) => l.check().map_err(|nu| {
                Denial::RateLimited(nu.wait_time_from(DefaultClock::default().now()))
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
