//! `ListKeys` page tokens: where the caller's own filtered view goes on.
//!
//! A token holds the last name that page showed the caller (a key it may
//! read, so nothing it has not seen), bound to the caller's identity so
//! that a token is no use to anyone else, and the whole is base64url so
//! clients treat it as opaque. Any replica can continue any page: nothing
//! in it depends on process state.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use crate::error::{Error, Result};
use crate::keys::validate_name;

/// The token of the page that ended at `after`, for `identity`.
pub(super) fn page_token(identity: &str, after: &str) -> String {
    let mut t = identity_tag(identity).to_vec();
    t.extend_from_slice(after.as_bytes());
    URL_SAFE_NO_PAD.encode(t)
}

/// The 8-byte tag that binds a page token to one identity.
fn identity_tag(identity: &str) -> [u8; 8] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"signet ListKeys page token v1\0");
    h.update(identity.as_bytes());
    let d = h.finalize();
    d[..8].try_into().expect("a SHA-256 digest has 32 bytes")
}

/// The name a page token `t` of `identity` goes on after; `None` for the
/// first page.
pub(super) fn parse_page_token(identity: &str, t: &str) -> Result<Option<String>> {
    if t.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid("invalid page_token: pass the next_page_token of the previous page, unchanged, as the same identity")
    };
    let raw = URL_SAFE_NO_PAD.decode(t).map_err(|_| invalid())?;
    let (tag, name) = raw.split_at_checked(8).ok_or_else(invalid)?;
    if tag != identity_tag(identity) {
        return Err(invalid());
    }
    let name = String::from_utf8(name.to_vec()).map_err(|_| invalid())?;
    validate_name("page_token", &name).map_err(|_| invalid())?;
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_are_bound_to_the_identity_and_checked() {
        let t = page_token("alice", "payments-1");
        assert_eq!(
            parse_page_token("alice", &t).unwrap().as_deref(),
            Some("payments-1")
        );
        assert_eq!(parse_page_token("alice", "").unwrap(), None);
        for (who, token) in [
            ("bob", t.clone()),
            ("alice", URL_SAFE_NO_PAD.encode("payments-1")),
            ("alice", "%%%".into()),
            ("alice", URL_SAFE_NO_PAD.encode([1u8; 5])),
            ("alice", page_token("alice", "Bad Name")),
        ] {
            let e = parse_page_token(who, &token).unwrap_err();
            assert_eq!(
                e.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{token}"
            );
            assert!(!e.message().contains("payments"), "{}", e.message());
        }
    }
}
