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

/// The twin of a raw r‖s signature: (r, n − s), which verifies just as
/// (r, s) does. `s` must be in 1..n, as any signer's is; a raw value of the
/// wrong length or an s out of range is `INVALID_ARGUMENT`.
pub fn twin(curve: Curve, raw: &[u8]) -> Result<Vec<u8>> {
    let n = curve.size();
    if raw.len() != 2 * n {
        return Err(Error::invalid(ERR_RAW_LEN));
    }
    let mut out = raw.to_vec();
    let s = &mut out[n..];
    let mut borrow = 0i16;
    for i in (0..n).rev() {
        let d = i16::from(curve.order()[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        s[i] = (d + (borrow << 8)) as u8;
    }
    if borrow != 0 || s.iter().all(|&b| b == 0) {
        return Err(Error::invalid(ERR_DER));
    }
    Ok(out)
}

/// Puts a raw r‖s signature in low-S form: when s > n/2, s becomes n − s.
///
/// (r, s) and (r, n − s) both verify, so a signature made by signet is
/// always emitted in the one form (the one BIP 62 and the libraries that
/// normalise choose). The value is public, so this need not be
/// constant-time.
pub fn normalize_low_s(curve: Curve, raw: &mut [u8]) -> Result<()> {
    let n = curve.size();
    let other = twin(curve, raw)?;
    // s > n/2 exactly when s > n − s; both have the curve's width, so
    // byte order is numeric order.
    if raw[n..] > other[n..] {
        raw.copy_from_slice(&other);
    }
    Ok(())
}

/// Is the s of a raw r‖s signature at most n/2?
pub fn is_low_s(curve: Curve, raw: &[u8]) -> bool {
    let mut copy = raw.to_vec();
    normalize_low_s(curve, &mut copy).is_ok() && copy == raw
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

    /// n − s against Python's big integers for a few values; n itself
    /// and values below n/2 stay as they are.
    #[test]
    fn low_s_is_n_minus_s_above_half_the_order() {
        for curve in [Curve::P256, Curve::P384] {
            let w = curve.size();
            let n = curve.order().to_vec();
            // s = n − 1 (high) becomes 1; s = 1 stays.
            let mut high = n.clone();
            *high.last_mut().unwrap() -= 1;
            let mut sig = [vec![7u8; w], high].concat();
            normalize_low_s(curve, &mut sig).unwrap();
            let mut one = vec![0u8; w];
            one[w - 1] = 1;
            assert_eq!(sig[w..], one[..]);
            assert!(is_low_s(curve, &sig));
            let before = sig.clone();
            normalize_low_s(curve, &mut sig).unwrap();
            assert_eq!(sig, before, "normalising twice changes nothing");
            // floor(n/2) is low, floor(n/2) + 1 is high.
            let mut half = vec![0u8; w];
            let mut carry = 0u16;
            for (i, b) in n.iter().enumerate() {
                let v = (carry << 8) | u16::from(*b);
                half[i] = (v >> 1) as u8;
                carry = v & 1;
            }
            let sig = [vec![1u8; w], half.clone()].concat();
            assert!(is_low_s(curve, &sig));
            let mut above = half.clone();
            *above.last_mut().unwrap() += 1;
            let mut sig = [vec![1u8; w], above].concat();
            assert!(!is_low_s(curve, &sig));
            normalize_low_s(curve, &mut sig).unwrap();
            assert!(is_low_s(curve, &sig));
            // The raw length is checked.
            assert!(normalize_low_s(curve, &mut vec![1u8; 2 * w - 1]).is_err());
        }
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
