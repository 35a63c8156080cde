//! ECDSA signature encodings: round trips, strict DER, low S.

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
