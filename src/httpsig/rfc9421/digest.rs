//! `Content-Digest` (RFC 9530 §2): a Dictionary of digest algorithms to
//! Byte Sequences of the body's digest, written and checked with `sfv`.

use sfv::{BareItem, Dictionary, FieldType as _, Item, Key, ListEntry, Parser};
use sha2::Digest as _;

use crate::config::rfc9421::DigestAlgorithm;

impl DigestAlgorithm {
    /// Its name in the field.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }

    fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => sha2::Sha256::digest(body).to_vec(),
            DigestAlgorithm::Sha512 => sha2::Sha512::digest(body).to_vec(),
        }
    }
}

/// The `Content-Digest` value for `body`.
pub(crate) fn content_digest(alg: DigestAlgorithm, body: &[u8]) -> String {
    let mut d = Dictionary::new();
    d.insert(
        Key::from_string(alg.name().to_string()).expect("static key"),
        ListEntry::Item(Item::new(BareItem::ByteSequence(alg.digest(body)))),
    );
    d.serialize().expect("a one-member dictionary serializes")
}

/// How a received `Content-Digest` compares with the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Every digest signet knows (at least one) matches.
    Matches,
    /// One does not, or none is one signet knows.
    Mismatch,
    /// The field is not a Dictionary of Byte Sequences.
    Malformed,
}

/// Checks `value` against `body`: every `sha-256` and `sha-512` member must
/// match, and there must be one. Other algorithms (RFC 9530 lets a sender
/// add any) are ignored, as the RFC allows; insecure ones (`md5`, `sha`)
/// never stand in for a known one.
pub(crate) fn check(value: &str, body: &[u8]) -> Check {
    let Ok(dict) = Parser::new(value).parse::<Dictionary>() else {
        return Check::Malformed;
    };
    let mut known = 0;
    for (k, v) in &dict {
        let ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(got),
            ..
        }) = v
        else {
            return Check::Malformed;
        };
        let alg = match k.as_str() {
            "sha-256" => DigestAlgorithm::Sha256,
            "sha-512" => DigestAlgorithm::Sha512,
            _ => continue,
        };
        known += 1;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            alg.digest(body).as_slice(),
            got.as_slice(),
        )) {
            return Check::Mismatch;
        }
    }
    if known == 0 {
        Check::Mismatch
    } else {
        Check::Matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9530's examples (`{"hello": "world"}`, §2 with a line feed)
    /// and RFC 9421 Appendix B.2's request body.
    #[test]
    fn rfc9530_examples() {
        assert_eq!(
            content_digest(DigestAlgorithm::Sha512, b"{\"hello\": \"world\"}\n"),
            "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:"
        );
        let body = br#"{"hello": "world"}"#;
        assert_eq!(
            content_digest(DigestAlgorithm::Sha256, body),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(
            content_digest(DigestAlgorithm::Sha512, body),
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
        );
        let both = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, \
                    sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
        assert_eq!(check(both, body), Check::Matches);
        assert_eq!(check(both, b"{\"hello\": \"world\"} "), Check::Mismatch);
        // An unknown algorithm alone proves nothing; a bad known one fails
        // even beside a good one.
        assert_eq!(check("md5=:AAAA:", body), Check::Mismatch);
        let half = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AAAA:";
        assert_eq!(check(half, body), Check::Mismatch);
        assert_eq!(check("sha-256=abc", body), Check::Malformed);
        assert_eq!(check("sha-256=:not base64:", body), Check::Malformed);
    }
}
