//! Who may call what: bearer tokens (kept as SHA-256 hashes), identities
//! with their grants, source allow-lists and rate limits, and the trusted
//! proxies whose forwarded addresses are believed. Built from `[auth]` and
//! `[limits]`; pure logic, no I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::clock::{Clock as _, DefaultClock};
use governor::{state::InMemoryState, state::NotKeyed, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, LimitsConfig};
use crate::httpsig::profile::Cidr;

pub use crate::rpcs::Op;

/// A name pattern: `*` matches any run of characters, everything else
/// itself.
#[derive(Clone, Debug)]
struct Pattern(String);

impl Pattern {
    fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point: linear in
    // practice, never exponential.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[derive(Debug)]
struct Grant {
    ops: Vec<Op>,
    keys: Vec<Pattern>,
    profiles: Vec<Pattern>,
}

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

struct Token {
    hash: [u8; 32],
    identity: Arc<str>,
    expires: Option<SystemTime>,
}

/// Why a caller was let in or not.
#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    /// No credentials, an unknown, expired or malformed token.
    Unauthenticated,
    /// Authenticated, but not allowed (source address, grants).
    PermissionDenied,
    /// Over its rate; retry after the duration.
    RateLimited(Duration),
}

/// The whole policy.
pub struct Policy {
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
pub const ANONYMOUS: &str = "anonymous";

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

fn parse_op(s: &str) -> Result<Vec<Op>, String> {
    if s == "*" {
        return Ok(Op::ALL.to_vec());
    }
    if s == "admin.*" {
        return Ok(Op::ALL.into_iter().filter(|o| o.is_admin()).collect());
    }
    Op::ALL
        .into_iter()
        .find(|o| o.name() == s)
        .map(|o| vec![o])
        .ok_or_else(|| {
            let names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
            format!(
                "unknown operation {s:?} (one of {}, admin.*, *)",
                names.join(", ")
            )
        })
}

fn patterns(list: &[String], what: &str) -> Result<Vec<Pattern>, String> {
    list.iter()
        .map(|p| {
            if p.is_empty() || p.len() > 128 {
                Err(format!("{what}: pattern {p:?} must be 1 to 128 characters"))
            } else if !can_match_a_name(p) {
                Err(format!(
                    "{what}: pattern {p:?} matches no valid name (names are \
                     [a-z0-9][a-z0-9._-]{{0,63}}; \"*\" matches any run of characters)"
                ))
            } else {
                Ok(Pattern(p.clone()))
            }
        })
        .collect()
}

/// True when some valid key or profile name (`[a-z0-9][a-z0-9._-]{0,63}`,
/// [`crate::keys::validate_name`]) matches the pattern: a grant that can
/// never apply is a mistake, not a policy.
fn can_match_a_name(p: &str) -> bool {
    let literals: Vec<u8> = p.bytes().filter(|&b| b != b'*').collect();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b);
    let leading = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !literals.iter().all(|&b| allowed(b)) || literals.len() > 64 {
        return false;
    }
    match p.as_bytes()[0] {
        // A leading `*` can supply the first character while there is room.
        b'*' => literals.len() < 64 || literals.first().is_none_or(|&b| leading(b)),
        b => leading(b),
    }
}

/// The operations a grant names, and what it must name for each to mean
/// something: key operations need `keys`, profile operations `profiles`,
/// and a pattern list no named operation uses is refused too.
fn check_grant(g: &crate::config::GrantConfig, ops: &[Op], what: &str) -> Result<(), String> {
    let wildcard = g.operations.iter().any(|o| o == "*");
    let key_ops = ops.iter().any(|o| !o.on_profile());
    let profile_ops = ops.iter().any(|o| o.on_profile());
    if g.keys.is_empty() && g.profiles.is_empty() {
        return Err(format!(
            "{what}: name the keys or profiles it covers (\"*\" for all)"
        ));
    }
    // `*` covers both kinds: either list makes it useful.
    if wildcard {
        return Ok(());
    }
    let list = |on_profile: bool| {
        let named: Vec<_> = ops
            .iter()
            .filter(|o| o.on_profile() == on_profile)
            .map(|o| o.name())
            .collect();
        match named.len() {
            1 => format!("operation {} acts", named[0]),
            _ => format!("operations {} act", named.join(", ")),
        }
    };
    if key_ops && g.keys.is_empty() {
        return Err(format!(
            "{what}: {} on keys, but the grant names no keys, so it grants nothing for \
             them: add keys = [...]",
            list(false)
        ));
    }
    if profile_ops && g.profiles.is_empty() {
        return Err(format!(
            "{what}: {} on profiles, but the grant names no profiles, so it grants \
             nothing for them: add profiles = [...]",
            list(true)
        ));
    }
    if !key_ops && !g.keys.is_empty() {
        return Err(format!(
            "{what}.keys: none of the grant's operations acts on keys (http_sign, \
             http_verify and http_profiles take profiles = [...])"
        ));
    }
    if !profile_ops && !g.profiles.is_empty() {
        return Err(format!(
            "{what}.profiles: none of the grant's operations acts on profiles (only \
             http_sign, http_verify and http_profiles do; the others take keys = [...])"
        ));
    }
    Ok(())
}

fn cidrs(list: &[String], what: &str) -> Result<Vec<Cidr>, String> {
    list.iter()
        .map(|c| Cidr::parse(c).map_err(|e| format!("{what}: {e}")))
        .collect()
}

impl Policy {
    /// Builds the policy; errors name the section and the field.
    pub fn new(auth: &AuthConfig, limits: &LimitsConfig) -> Result<Self, String> {
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
                let mut ops = Vec::new();
                for o in &g.operations {
                    ops.extend(parse_op(o).map_err(|e| format!("{gw}.operations: {e}"))?);
                }
                if ops.is_empty() {
                    return Err(format!("{gw}.operations is empty"));
                }
                check_grant(g, &ops, &gw)?;
                let keys = patterns(&g.keys, &format!("{gw}.keys"))?;
                let profiles = patterns(&g.profiles, &format!("{gw}.profiles"))?;
                grants.push(Grant {
                    ops,
                    keys,
                    profiles,
                });
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
        let mut tokens: Vec<Token> = Vec::new();
        let listed = auth
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("auth.tokens[{i}]"), t));
        let from_file = auth
            .file_tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("auth.tokens_file [[tokens]][{i}]"), t));
        let mut seen: HashMap<[u8; 32], String> = HashMap::new();
        for (what, t) in listed.chain(from_file) {
            let (name, _) = identities
                .get_key_value(t.identity.as_str())
                .ok_or_else(|| format!("{what}.identity {:?} is not an identity", t.identity))?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut hash)
                .map_err(|_| format!("{what}.sha256 must be 64 hex digits"))?;
            // One token, one identity: the same hash twice would make the
            // last entry win, a copy-paste slip away from an admin. The
            // message names the entries and identities, never the hash.
            if let Some(first) = seen.get(&hash) {
                let other = tokens
                    .iter()
                    .find(|o| o.hash == hash)
                    .map(|o| o.identity.clone())
                    .unwrap_or_else(|| Arc::from(""));
                return Err(if *other == *t.identity {
                    format!(
                        "{what}: the same token hash is listed twice for identity {:?} (first as \
                         {first}); list each token once",
                        t.identity
                    )
                } else {
                    format!(
                        "{what}: the same token hash is listed for identity {:?} ({first}) and \
                         for identity {:?}; a token must authenticate exactly one identity",
                        other, t.identity
                    )
                });
            }
            seen.insert(hash, what.clone());
            let expires = t
                .expires
                .as_deref()
                .map(humantime::parse_rfc3339_weak)
                .transpose()
                .map_err(|e| {
                    format!("{what}.expires: {e} (RFC 3339, e.g. 2027-06-30T00:00:00Z)")
                })?;
            tokens.push(Token {
                hash,
                identity: name.clone(),
                expires,
            });
        }
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
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the rightmost address of `x-forwarded-for` that is not one.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
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
    pub fn token_identity(&self, token: &str, now: SystemTime) -> Result<Arc<str>, Denial> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every configured hash is compared, in constant time, whatever
        // matches: the time taken says nothing about which one did.
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if bool::from(t.hash.ct_eq(&presented)) {
                found = Some(t);
            }
        }
        match found {
            Some(t) if t.expires.is_none_or(|e| now < e) => Ok(t.identity.clone()),
            _ => Err(Denial::Unauthenticated),
        }
    }

    /// Connection-level checks for an authenticated identity: it exists,
    /// it may connect from `client`, and it is within its rate.
    pub fn admit(&self, identity: &str, client: IpAddr) -> Result<(), Denial> {
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

    /// May `identity` do `op` on the key or profile `name`?
    pub fn allows(&self, identity: &str, op: Op, name: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(id) = self.identities.get(identity) else {
            return false;
        };
        id.grants.iter().any(|g| {
            g.ops.contains(&op)
                && if op.on_profile() {
                    g.profiles.iter().any(|p| p.matches(name))
                } else {
                    g.keys.iter().any(|p| p.matches(name))
                }
        })
    }

    /// Does `identity` hold `op` on any key or profile at all? A list RPC
    /// (`ListKeys`, `ListHttpProfiles`) is refused to an identity that
    /// holds its operation nowhere, and lists only what it holds.
    pub fn holds_anywhere(&self, identity: &str, op: Op) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(id) = self.identities.get(identity) else {
            return false;
        };
        id.grants.iter().any(|g| {
            g.ops.contains(&op)
                && if op.on_profile() {
                    !g.profiles.is_empty()
                } else {
                    !g.keys.is_empty()
                }
        })
    }

    /// The per-key rate limit, when `[[limits.keys]]` names the key.
    pub fn key_rate(&self, key: &str) -> Result<(), Denial> {
        match self.key_limiters.get(key) {
            Some(l) => l.check().map_err(|nu| {
                Denial::RateLimited(nu.wait_time_from(DefaultClock::default().now()))
            }),
            None => Ok(()),
        }
    }
}

/// The SHA-256 of a token, as `auth.tokens.sha256` wants it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
