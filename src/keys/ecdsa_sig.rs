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
pub(crate) fn raw_to_der(curve: Curve, raw: &[u8]) -> Result<Vec<u8>> {
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
/// bytes and zero values are `INVALID_ARGUMENT`. Only tests parse DER
/// signatures.
#[cfg(test)]
pub(crate) fn der_to_raw(curve: Curve, der: &[u8]) -> Result<Vec<u8>> {
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
#[cfg(test)]
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
pub(crate) fn twin(curve: Curve, raw: &[u8]) -> Result<Vec<u8>> {
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
pub(crate) fn normalize_low_s(curve: Curve, raw: &mut [u8]) -> Result<()> {
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
#[cfg(test)]
pub(crate) fn is_low_s(curve: Curve, raw: &[u8]) -> bool {
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
#[path = "ecdsa_sig_tests.rs"]
mod tests;
