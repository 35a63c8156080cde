//! ECDSA signature encodings: raw r‖s (fixed width) and DER ECDSA-Sig-Value.
//!
//! ```text
//! ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
//! ```
//!
//! For P-256 and P-384 the whole value is shorter than 128 bytes, so every
//! length in a valid DER encoding uses the one-byte short form; the long form
//! is non-minimal and refused.

use super::Curve;
use crate::error::{Error, Result};

/// The encoding of an ECDSA signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureFormat {
    /// DER ECDSA-Sig-Value (RFC 3279), the default.
    #[default]
    Der,
    /// r‖s, each left-padded with zeros to the curve size.
    Raw,
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_INTEGER: u8 = 0x02;

const ERR_RAW_LEN: &str = "raw ECDSA signature has the wrong length for the curve";
const ERR_RAW_ZERO: &str = "raw ECDSA signature has a zero component";
const ERR_DER: &str = "malformed DER ECDSA signature";

/// Converts raw r‖s (exactly `2 * curve.size()` bytes) to minimal DER.
pub fn raw_to_der(curve: Curve, raw: &[u8]) -> Result<Vec<u8>> {
    let n = curve.size();
    if raw.len() != 2 * n {
        return Err(Error::invalid(ERR_RAW_LEN));
    }
    let (r, s) = raw.split_at(n);
    let r = strip_zeros(r);
    let s = strip_zeros(s);
    if r.is_empty() || s.is_empty() {
        return Err(Error::invalid(ERR_RAW_ZERO));
    }
    // Each INTEGER is at most 2 + 1 + 48 bytes, so everything stays short form.
    let content_len = int_len(r) + int_len(s);
    let mut out = Vec::with_capacity(2 + content_len);
    out.push(TAG_SEQUENCE);
    out.push(short_len(content_len));
    push_int(&mut out, r);
    push_int(&mut out, s);
    Ok(out)
}

/// Converts strict DER to raw r‖s; non-minimal or oversize integers, trailing
/// bytes and zero values are `INVALID_ARGUMENT`.
pub fn der_to_raw(curve: Curve, der: &[u8]) -> Result<Vec<u8>> {
    let n = curve.size();
    let content = match der {
        [TAG_SEQUENCE, len, rest @ ..] if *len < 0x80 && usize::from(*len) == rest.len() => rest,
        _ => return Err(Error::invalid(ERR_DER)),
    };
    let (r, rest) = read_uint(content, n)?;
    let (s, rest) = read_uint(rest, n)?;
    if !rest.is_empty() {
        return Err(Error::invalid(ERR_DER));
    }
    let mut out = vec![0u8; 2 * n];
    out[n - r.len()..n].copy_from_slice(r);
    out[2 * n - s.len()..].copy_from_slice(s);
    Ok(out)
}

/// Reads one strictly minimal, positive, non-zero INTEGER of at most `max`
/// magnitude bytes; returns its magnitude (no leading zeros) and the rest.
fn read_uint(input: &[u8], max: usize) -> Result<(&[u8], &[u8])> {
    let (len, rest) = match input {
        [TAG_INTEGER, len, rest @ ..] if *len < 0x80 => (usize::from(*len), rest),
        _ => return Err(Error::invalid(ERR_DER)),
    };
    if len == 0 || len > rest.len() {
        return Err(Error::invalid(ERR_DER));
    }
    let (value, rest) = rest.split_at(len);
    let magnitude = match value {
        // Negative.
        [first, ..] if first & 0x80 != 0 => return Err(Error::invalid(ERR_DER)),
        // Zero.
        [0] => return Err(Error::invalid(ERR_DER)),
        // A leading zero is allowed only to clear the sign bit of the next byte.
        [0, next, ..] if next & 0x80 == 0 => return Err(Error::invalid(ERR_DER)),
        [0, tail @ ..] => tail,
        _ => value,
    };
    if magnitude.len() > max {
        return Err(Error::invalid(ERR_DER));
    }
    Ok((magnitude, rest))
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Encoded length of a non-empty magnitude as an INTEGER TLV.
fn int_len(magnitude: &[u8]) -> usize {
    2 + magnitude.len() + usize::from(magnitude[0] & 0x80 != 0)
}

fn push_int(out: &mut Vec<u8>, magnitude: &[u8]) {
    let pad = magnitude[0] & 0x80 != 0;
    out.push(TAG_INTEGER);
    out.push(short_len(magnitude.len() + usize::from(pad)));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

/// A short-form DER length. Lengths here are bounded by the curve sizes
/// (at most 2 * (3 + 48) = 102), so this never truncates.
fn short_len(len: usize) -> u8 {
    debug_assert!(len < 0x80);
    len as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn raw(curve: Curve, r: &[u8], s: &[u8]) -> Vec<u8> {
        let n = curve.size();
        let mut out = vec![0u8; 2 * n];
        out[n - r.len()..n].copy_from_slice(r);
        out[2 * n - s.len()..].copy_from_slice(s);
        out
    }

    fn assert_invalid(curve: Curve, der: &[u8]) {
        let err = der_to_raw(curve, der).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{der:02x?}");
        assert_eq!(err.message(), ERR_DER);
    }

    #[test]
    fn small_values_round_trip() {
        let r = raw(Curve::P256, &[1], &[0x7f]);
        let der = raw_to_der(Curve::P256, &r).unwrap();
        assert_eq!(der, [0x30, 6, 2, 1, 1, 2, 1, 0x7f]);
        assert_eq!(der_to_raw(Curve::P256, &der).unwrap(), r);
    }

    #[test]
    fn high_bit_gets_a_zero_pad() {
        let r = raw(Curve::P256, &[0x80], &[0xff, 0x01]);
        let der = raw_to_der(Curve::P256, &r).unwrap();
        assert_eq!(der, [0x30, 9, 2, 2, 0, 0x80, 2, 3, 0, 0xff, 0x01]);
        assert_eq!(der_to_raw(Curve::P256, &der).unwrap(), r);
    }

    #[test]
    fn full_width_round_trips_on_both_curves() {
        for curve in [Curve::P256, Curve::P384] {
            let n = curve.size();
            for fill in [0x01u8, 0x7f, 0x80, 0xff] {
                let r = vec![fill; 2 * n];
                let der = raw_to_der(curve, &r).unwrap();
                assert!(der.len() < 2 + 2 * (3 + n) + 1);
                assert_eq!(der_to_raw(curve, &der).unwrap(), r);
            }
            // Leading zero bytes in raw r or s are stripped, then restored.
            let mut r = vec![0xabu8; 2 * n];
            r[0] = 0;
            r[1] = 0;
            r[n] = 0;
            let der = raw_to_der(curve, &r).unwrap();
            assert_eq!(der_to_raw(curve, &der).unwrap(), r);
        }
    }

    #[test]
    fn raw_length_and_zero_are_checked() {
        for len in [0, 63, 65, 96] {
            let err = raw_to_der(Curve::P256, &vec![1u8; len]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
        assert!(raw_to_der(Curve::P384, &[1u8; 96]).is_ok());
        let zero_r = raw(Curve::P256, &[], &[1]);
        assert!(raw_to_der(Curve::P256, &zero_r).is_err());
        let zero_s = raw(Curve::P256, &[1], &[]);
        assert!(raw_to_der(Curve::P256, &zero_s).is_err());
    }

    #[test]
    fn strict_der_is_enforced() {
        let c = Curve::P256;
        // Empty, wrong outer tag, wrong lengths, trailing bytes.
        assert_invalid(c, &[]);
        assert_invalid(c, &[0x31, 6, 2, 1, 1, 2, 1, 1]);
        assert_invalid(c, &[0x30, 7, 2, 1, 1, 2, 1, 1]);
        assert_invalid(c, &[0x30, 5, 2, 1, 1, 2, 1, 1]);
        assert_invalid(c, &[0x30, 6, 2, 1, 1, 2, 1, 1, 0]);
        assert_invalid(c, &[0x30, 8, 2, 1, 1, 2, 1, 1, 0, 0]);
        // Long-form length where short form fits.
        assert_invalid(c, &[0x30, 0x81, 6, 2, 1, 1, 2, 1, 1]);
        assert_invalid(c, &[0x30, 7, 2, 0x81, 1, 1, 2, 1, 1]);
        // Wrong inner tag, one integer, three integers.
        assert_invalid(c, &[0x30, 6, 4, 1, 1, 2, 1, 1]);
        assert_invalid(c, &[0x30, 3, 2, 1, 1]);
        assert_invalid(c, &[0x30, 9, 2, 1, 1, 2, 1, 1, 2, 1, 1]);
        // Inner length beyond the sequence.
        assert_invalid(c, &[0x30, 6, 2, 1, 1, 2, 2, 1]);
        assert_invalid(c, &[0x30, 4, 2, 1, 1, 2]);
        // Empty integer, zero, negative, non-minimal.
        assert_invalid(c, &[0x30, 5, 2, 0, 2, 1, 1]);
        assert_invalid(c, &[0x30, 6, 2, 1, 0, 2, 1, 1]);
        assert_invalid(c, &[0x30, 6, 2, 1, 1, 2, 1, 0]);
        assert_invalid(c, &[0x30, 6, 2, 1, 0x80, 2, 1, 1]);
        assert_invalid(c, &[0x30, 7, 2, 2, 0, 0x7f, 2, 1, 1]);
        assert_invalid(c, &[0x30, 7, 2, 1, 1, 2, 2, 0, 1]);
        assert_invalid(c, &[0x30, 8, 2, 3, 0, 0, 0x80, 2, 1, 1]);
    }

    #[test]
    fn wider_than_the_curve_is_refused() {
        // 33 magnitude bytes on P-256 (fine on P-384).
        let mut der = vec![0x30, 2 + 33 + 3, 2, 33];
        der.extend_from_slice(&[0x11; 33]);
        der.extend_from_slice(&[2, 1, 1]);
        assert_invalid(Curve::P256, &der);
        assert!(der_to_raw(Curve::P384, &der).is_ok());
        // 32 bytes with the high bit set need 33 encoded bytes: fine on P-256.
        let mut der = vec![0x30, 2 + 33 + 3, 2, 33, 0];
        der.extend_from_slice(&[0xff; 32]);
        der.extend_from_slice(&[2, 1, 1]);
        assert_eq!(der_to_raw(Curve::P256, &der).unwrap()[..32], [0xff; 32]);
        // 49 magnitude bytes on P-384.
        let mut der = vec![0x30, 2 + 49 + 3, 2, 49];
        der.extend_from_slice(&[0x11; 49]);
        der.extend_from_slice(&[2, 1, 1]);
        assert_invalid(Curve::P384, &der);
    }
}
