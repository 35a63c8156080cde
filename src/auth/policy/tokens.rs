//! Bearer tokens: kept only as SHA-256 hashes, each standing for one
//! identity until it expires; read from `[[auth.tokens]]` and the tokens
//! file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;

/// One configured token: its hash, the identity it stands for, its expiry.
pub(super) struct Token {
    hash: [u8; 32],
    identity: Arc<str>,
    expires: Option<SystemTime>,
}

/// The tokens of `[[auth.tokens]]` and of the tokens file, each checked:
/// 64 hex digits, an identity among `identities`, listed once, a valid
/// expiry. Errors name the entry, never the hash.
pub(super) fn parse_tokens<V>(
    auth: &AuthConfig,
    identities: &HashMap<Arc<str>, V>,
) -> Result<Vec<Token>, String> {
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
            .map_err(|e| format!("{what}.expires: {e} (RFC 3339, e.g. 2027-06-30T00:00:00Z)"))?;
        tokens.push(Token {
            hash,
            identity: name.clone(),
            expires,
        });
    }
    Ok(tokens)
}

/// The identity `token` stands for at `now`, if any token matches and has
/// not expired.
pub(super) fn identify(tokens: &[Token], token: &str, now: SystemTime) -> Option<Arc<str>> {
    let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    // Every configured hash is compared, in constant time, whatever
    // matches: the time taken says nothing about which one did.
    let mut found: Option<&Token> = None;
    for t in tokens {
        if bool::from(t.hash.ct_eq(&presented)) {
            found = Some(t);
        }
    }
    match found {
        Some(t) if t.expires.is_none_or(|e| now < e) => Some(t.identity.clone()),
        _ => None,
    }
}

/// The SHA-256 of a token, as `auth.tokens.sha256` wants it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
