//! signet's ciphertext format (docs/encryption.md, "The ciphertext"), as
//! pure functions: what `Encrypt` returns and `Decrypt` takes.
//!
//! ```text
//! offset  length  field
//! 0       1       format: 0x01
//! 1       4       key version, unsigned big-endian, at least 1
//! 5       12      nonce (96 bits from the OS CSPRNG)
//! 17      n       AES-256-GCM ciphertext of the n-byte plaintext
//! 17 + n  16      GCM tag
//! ```
//!
//! The associated data GCM authenticates is [`aad`]: the first five bytes,
//! the key's name with its length, then the caller's associated data. A
//! ciphertext therefore opens only under the key and version it names, and
//! only with the associated data it was made with.

use crate::error::{Error, Result};

/// The format byte this version of signet writes and reads.
pub(crate) const FORMAT_V1: u8 = 0x01;
/// GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Format byte and key version.
const HEADER_LEN: usize = 5;
/// Bytes a ciphertext adds to its plaintext: 33.
pub(crate) const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// A parsed ciphertext: the version that made it, the nonce, and the GCM
/// ciphertext followed by its tag.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sealed<'a> {
    pub version: u32,
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext then tag (at least [`TAG_LEN`] bytes).
    pub body: &'a [u8],
}

/// Parses a ciphertext. Refusals are `INVALID_ARGUMENT` with fixed texts.
pub(crate) fn parse(bytes: &[u8]) -> Result<Sealed<'_>> {
    if bytes.len() < OVERHEAD {
        return Err(Error::invalid(format!(
            "ciphertext is truncated: a signet ciphertext is at least {OVERHEAD} bytes"
        )));
    }
    if bytes[0] != FORMAT_V1 {
        return Err(Error::invalid(
            "not a signet ciphertext: unknown format byte (docs/encryption.md)",
        ));
    }
    let version = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    if version == 0 {
        return Err(Error::invalid("not a signet ciphertext: key version 0"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
    Ok(Sealed {
        version,
        nonce,
        body: &bytes[HEADER_LEN + NONCE_LEN..],
    })
}

/// The associated data GCM authenticates for `name`'s `version`: format
/// byte, version (big-endian), the name's length (one byte; names are at
/// most 64 bytes) and the name, then the caller's `associated` data.
pub(crate) fn aad(version: u32, name: &str, associated: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 1 + name.len() + associated.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    // Key names are validated to at most 64 bytes.
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(associated);
    out
}

/// The ciphertext for `version`, `nonce` and GCM's ciphertext‖tag.
pub(crate) fn encode(version: u32, nonce: &[u8; NONCE_LEN], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + body.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(body);
    out
}

/// What a ciphertext that does not authenticate gets, whatever the cause
/// (one answer, so a caller learns nothing about which).
pub(crate) fn not_authentic() -> Error {
    Error::invalid(
        "the ciphertext does not decrypt under this key: it was altered or truncated, \
         made under another key, or with other associated data",
    )
}

/// A fresh 96-bit nonce from the OS CSPRNG (never from the caller).
pub(crate) fn fresh_nonce() -> Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    super::fill_random(&mut n)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_places_every_field() {
        let nonce = [7u8; NONCE_LEN];
        let body = [0xAAu8; 20];
        let c = encode(0x0102_0304, &nonce, &body);
        assert_eq!(c.len(), 20 + HEADER_LEN + NONCE_LEN);
        assert_eq!(c[..5], [1, 1, 2, 3, 4]);
        assert_eq!(c[5..17], nonce);
        let p = parse(&c).unwrap();
        assert_eq!(p.version, 0x0102_0304);
        assert_eq!(p.nonce, nonce);
        assert_eq!(p.body, body);
    }

    #[test]
    fn refuses_short_foreign_and_version_zero() {
        let good = encode(1, &[0; NONCE_LEN], &[0; TAG_LEN]);
        assert_eq!(good.len(), OVERHEAD);
        parse(&good).unwrap();
        for n in 0..OVERHEAD {
            let e = parse(&good[..n]).unwrap_err();
            assert!(e.message().contains("truncated"), "{n}");
        }
        let mut foreign = good.clone();
        foreign[0] = 2;
        assert!(parse(&foreign).unwrap_err().message().contains("format"));
        let zero = encode(0, &[0; NONCE_LEN], &[0; TAG_LEN]);
        assert!(parse(&zero).unwrap_err().message().contains("version 0"));
    }

    #[test]
    fn aad_binds_name_version_and_caller_data_unambiguously() {
        assert_eq!(aad(2, "ab", b"x"), [1, 0, 0, 0, 2, 2, b'a', b'b', b'x']);
        // Moving bytes between the name and the caller's data changes it.
        assert_ne!(aad(1, "ab", b"c"), aad(1, "a", b"bc"));
        assert_ne!(aad(1, "a", b""), aad(2, "a", b""));
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(fresh_nonce().unwrap(), fresh_nonce().unwrap());
    }
}
