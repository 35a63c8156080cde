//! The objects signet puts on a token: templates, and reading a public
//! key back.

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::OctetStringRef;
use der::{Decode, Encode};

use crate::error::{Error, Result};
use crate::keys::public::{mismatch, KeyParts};
use crate::keys::{Algorithm, Family, PublicKey};

pub(super) fn label_of(
    s: &Session,
    h: ObjectHandle,
) -> std::result::Result<Option<String>, CkError> {
    for a in s.get_attributes(h, &[AttributeType::Label])? {
        if let Attribute::Label(l) = a {
            return Ok(String::from_utf8(l).ok());
        }
    }
    Ok(None)
}

/// Reads a public key object's components. An inner error means the token
/// returned something that is not a key of `alg`.
pub(super) fn read_public(
    s: &Session,
    alg: Algorithm,
    h: ObjectHandle,
) -> std::result::Result<Result<KeyParts>, CkError> {
    if alg.rsa_bits().is_some() {
        let (mut n, mut e) = (None, None);
        for a in s.get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])? {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        return Ok(match (n, e) {
            (Some(n), Some(e)) => Ok(KeyParts::Rsa { n, e }),
            _ => Err(mismatch(alg)),
        });
    }
    let mut point = None;
    for a in s.get_attributes(h, &[AttributeType::EcPoint])? {
        if let Attribute::EcPoint(v) = a {
            point = Some(v);
        }
    }
    let Some(point) = point else {
        return Ok(Err(mismatch(alg)));
    };
    // CKA_EC_POINT is a DER OCTET STRING; some modules return it bare.
    let raw = match OctetStringRef::from_der(&point) {
        Ok(os) => os.as_bytes().to_vec(),
        Err(_) => point,
    };
    Ok(match (alg.family(), alg.curve()) {
        (Family::Ecdsa, Some(curve)) => Ok(KeyParts::Ec { curve, point: raw }),
        (Family::Ed25519, _) => raw
            .try_into()
            .map(|x| KeyParts::Ed25519 { x })
            .map_err(|_| mismatch(alg)),
        _ => Err(mismatch(alg)),
    })
}

/// Attributes every private or secret key signet puts on the token. It
/// signs and nothing else: every other usage its class has is set false
/// explicitly, so no module's defaults (SoftHSM2 turns decrypt and unwrap
/// on) give it one. A secret key adds [`SECRET_KEY_USAGES`].
pub(super) fn private_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

/// The usages of an HMAC secret beyond [`private_template`]'s: it verifies
/// (the MAC is recomputed on the token) and neither encrypts nor wraps.
pub(super) const SECRET_KEY_USAGES: [Attribute; 3] = [
    Attribute::Verify(true),
    Attribute::Encrypt(false),
    Attribute::Wrap(false),
];

/// An AES key: sensitive, never extractable, on the token; it encrypts
/// and decrypts, and nothing else (no signing, wrapping or deriving).
pub(super) fn aes_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::AES),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

/// The extra usages of an RSA, ECDSA or Ed25519 private key: no signing
/// with message recovery. (A secret key has no such attribute.)
pub(super) const PRIVATE_KEY_USAGES: [Attribute; 1] = [Attribute::SignRecover(false)];

/// The public half: it verifies, and nothing else.
pub(super) fn public_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::VerifyRecover(false),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

pub(super) fn der_octets(bytes: &[u8]) -> Result<Vec<u8>> {
    OctetStringRef::new(bytes)
        .and_then(|o| o.to_der())
        .map_err(|e| Error::internal(format!("DER encoding failed: {e}")))
}

/// The whole public key object for `public` under `label`: the template of
/// [`public_template`], its class and key type, and the key itself (RSA
/// modulus and exponent; the curve and the point for EC and Ed25519). What
/// a plaintext import and a wrapped one write beside the private key.
pub(super) fn public_key_template(
    label: &str,
    alg: Algorithm,
    public: &PublicKey,
) -> Result<Vec<Attribute>> {
    let mut t = public_template(label);
    t.extend([
        Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(super::mechanisms::key_type(alg)),
    ]);
    match public.parts() {
        KeyParts::Rsa { n, e } => t.extend([
            Attribute::Modulus(n.clone()),
            Attribute::PublicExponent(e.clone()),
        ]),
        KeyParts::Ec { point, .. } => t.extend([
            Attribute::EcParams(super::mechanisms::ec_params(alg)?),
            Attribute::EcPoint(der_octets(point)?),
        ]),
        KeyParts::Ed25519 { x } => t.extend([
            Attribute::EcParams(super::mechanisms::ec_params(alg)?),
            Attribute::EcPoint(der_octets(x)?),
        ]),
    }
    Ok(t)
}

/// Overwrites secret attribute values before the template is dropped.
pub(super) fn scrub(template: &mut [Attribute]) {
    use zeroize::Zeroize;
    for a in template.iter_mut() {
        match a {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}
