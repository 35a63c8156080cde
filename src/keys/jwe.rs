//! JWE compact serialization (RFC 7516 §7.1) with `alg: dir` and
//! `enc: A256GCM` (RFC 7518 §4.5, §5.3): data for a partner who holds
//! the same AES key, decryptable by any JOSE library.
//!
//! The protected header names the key version (`kid` = `NAME:vN`); its
//! base64url form is GCM's associated data, so a JWE opens only under the
//! version it names. JWE compact has no room for other associated data.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::sealed::{NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// A JWE's protected header, as signet writes it.
pub(crate) fn protected_header(kid: &str) -> String {
    let header = serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": kid});
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// The compact JWE for `protected` (from [`protected_header`], also the
/// associated data), `nonce` and GCM's ciphertext‖tag.
pub(crate) fn encode(protected: &str, nonce: &[u8; NONCE_LEN], body: &[u8]) -> String {
    let (ct, tag) = body.split_at(body.len().saturating_sub(TAG_LEN));
    format!(
        "{protected}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(ct),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// A parsed compact JWE.
#[derive(Debug)]
pub(crate) struct Jwe<'a> {
    /// The protected header as sent: GCM's associated data.
    pub protected: &'a str,
    /// The key name and version `kid` names.
    pub name: String,
    pub version: u32,
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext then tag.
    pub body: Vec<u8>,
}

/// The header members signet reads. Others (`typ`, `cty`) are allowed;
/// `zip` and `crit` are refused, since signet implements neither.
#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    kid: Option<String>,
    zip: Option<serde::de::IgnoredAny>,
    crit: Option<serde::de::IgnoredAny>,
}

fn bad(what: &str) -> Error {
    Error::invalid(format!("malformed JWE: {what}"))
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>> {
    // Strict: no padding, no stray bits, so one JWE has one spelling.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| bad(&format!("{what} is not unpadded base64url")))
}

/// Whether `bytes` looks like a compact JWE rather than signet's format
/// (which starts with a format byte no JWE starts with).
pub(crate) fn looks_like_jwe(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Parses a compact JWE signet can decrypt: five parts, an empty
/// encrypted key, `alg: dir`, `enc: A256GCM`, and a `kid` of the form
/// `NAME:vN`. Refusals are `INVALID_ARGUMENT` and never echo the input.
pub(crate) fn parse(bytes: &[u8]) -> Result<Jwe<'_>> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not ASCII"))?;
    let parts: Vec<&str> = text.split('.').collect();
    let [protected, key, iv, ct, tag] = parts[..] else {
        return Err(bad("a compact JWE has five parts"));
    };
    if !key.is_empty() {
        return Err(bad(
            "the encrypted key must be empty (alg dir); signet does not unwrap JWE keys",
        ));
    }
    let header: Header = serde_json::from_slice(&b64(protected, "the protected header")?)
        .map_err(|_| bad("the protected header is not a JSON object with alg and enc"))?;
    if header.alg != "dir" || header.enc != "A256GCM" {
        return Err(bad("only alg \"dir\" with enc \"A256GCM\" is supported"));
    }
    if header.zip.is_some() || header.crit.is_some() {
        return Err(bad("\"zip\" and \"crit\" are not supported"));
    }
    let kid = header
        .kid
        .ok_or_else(|| bad("the header has no kid naming the key version"))?;
    let (name, version) = kid
        .rsplit_once(":v")
        .and_then(|(n, v)| Some((n.to_owned(), v.parse::<u32>().ok().filter(|v| *v > 0)?)))
        // One spelling: "a:v01" and "a:v+1" are not "a:v1".
        .filter(|(n, v)| crate::keys::version_id(n, *v) == kid)
        .ok_or_else(|| bad("kid must be NAME:vN, as signet's key_version_id"))?;
    let nonce: [u8; NONCE_LEN] = b64(iv, "the IV")?
        .try_into()
        .map_err(|_| bad("the IV must be 96 bits"))?;
    let tag = b64(tag, "the tag")?;
    if tag.len() != TAG_LEN {
        return Err(bad("the tag must be 128 bits"));
    }
    let mut body = b64(ct, "the ciphertext")?;
    body.extend_from_slice(&tag);
    Ok(Jwe {
        protected,
        name,
        version,
        nonce,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let p = protected_header("pay:v3");
        encode(&p, &[9; NONCE_LEN], &[1, 2, 3, 4, 5].repeat(4))
    }

    #[test]
    fn round_trips() {
        let s = sample();
        let j = parse(s.as_bytes()).unwrap();
        assert_eq!((j.name.as_str(), j.version), ("pay", 3));
        assert_eq!(j.nonce, [9; NONCE_LEN]);
        assert_eq!(j.body, [1, 2, 3, 4, 5].repeat(4));
        assert_eq!(j.protected, protected_header("pay:v3"));
        assert!(looks_like_jwe(s.as_bytes()));
        assert!(!looks_like_jwe(&[1, 0, 0, 0, 1]));
    }

    #[test]
    fn header_is_the_rfc_members() {
        let h = URL_SAFE_NO_PAD.decode(protected_header("a:v1")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": "a:v1"})
        );
    }

    #[test]
    fn refuses_what_it_cannot_decrypt() {
        let enc = |h: &str| URL_SAFE_NO_PAD.encode(h);
        let iv = URL_SAFE_NO_PAD.encode([0u8; 12]);
        let tag = URL_SAFE_NO_PAD.encode([0u8; 16]);
        let with = |h: &str| format!("{}..{iv}.AAAA.{tag}", enc(h));
        let cases = [
            (sample().replacen("..", ".AAAA.", 1), "encrypted key"),
            (sample() + ".x", "five parts"),
            (
                with(r#"{"alg":"A256KW","enc":"A256GCM","kid":"a:v1"}"#),
                "only alg",
            ),
            (
                with(r#"{"alg":"dir","enc":"A128GCM","kid":"a:v1"}"#),
                "only alg",
            ),
            (
                with(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v1","zip":"DEF"}"#),
                "zip",
            ),
            (
                with(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v1","crit":["b64"]}"#),
                "zip",
            ),
            (with(r#"{"alg":"dir","enc":"A256GCM"}"#), "no kid"),
            (
                with(r#"{"alg":"dir","enc":"A256GCM","kid":"a"}"#),
                "NAME:vN",
            ),
            (
                with(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v0"}"#),
                "NAME:vN",
            ),
            (
                with(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v01"}"#),
                "NAME:vN",
            ),
            (
                with(r#"{"alg":"dir","alg":"dir","enc":"A256GCM","kid":"a:v1"}"#),
                "JSON",
            ),
            (with("[]"), "JSON"),
            (
                format!(
                    "{}..{iv}=.AAAA.{tag}",
                    enc(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v1"}"#)
                ),
                "base64url",
            ),
            (
                format!(
                    "{}..AAAA.AAAA.{tag}",
                    enc(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v1"}"#)
                ),
                "96 bits",
            ),
            (
                format!(
                    "{}..{iv}.AAAA.AAAA",
                    enc(r#"{"alg":"dir","enc":"A256GCM","kid":"a:v1"}"#)
                ),
                "128 bits",
            ),
        ];
        for (input, says) in cases {
            let e = parse(input.as_bytes()).unwrap_err();
            assert!(e.message().contains(says), "{input}: {}", e.message());
        }
        assert!(parse(&[0xff, b'.']).is_err());
    }
}
