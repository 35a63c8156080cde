//! Standard Webhooks' Ed25519 key encodings: `whsk_` + base64 of the
//! secret key and `whpk_` + base64 of the raw public key, as a sender
//! hands them out. An `ImportKey` of an Ed25519 key named by a
//! `standard-webhooks` profile reads them (docs/presets/standard-webhooks.md,
//! "Ed25519 (`v1a`)"). The DER that signet's import takes is built by the
//! `pkcs8` and `spki` crates.

use base64::{engine::general_purpose::STANDARD, Engine};
use der::asn1::{BitStringRef, OctetStringRef};
use der::Encode;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::algorithm::OID_ED25519;

/// PKCS#8 for a `whsk_` secret (the 32-byte seed, or libsodium's 64-byte
/// seed ‖ public key, whose public half must be the seed's), SPKI for a
/// `whpk_` public key; anything else is returned as it is.
pub(crate) fn decode(material: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>> {
    let alg = spki::AlgorithmIdentifierRef {
        oid: OID_ED25519,
        parameters: None,
    };
    let text = |rest: &[u8]| -> Result<Zeroizing<Vec<u8>>> {
        STANDARD
            .decode(rest.trim_ascii_end())
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::invalid("a whsk_ or whpk_ key must be the prefix followed by base64")
            })
    };
    if let Some(rest) = material.strip_prefix(b"whsk_") {
        let raw = text(rest)?;
        let seed = match raw.len() {
            32 => &raw[..],
            64 => {
                let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&raw[..32])
                    .map_err(|_| Error::invalid("the whsk_ key is not an Ed25519 key"))?;
                use aws_lc_rs::signature::KeyPair;
                if pair.public_key().as_ref() != &raw[32..] {
                    return Err(Error::invalid(
                        "the whsk_ key's public half is not its seed's public key",
                    ));
                }
                &raw[..32]
            }
            n => {
                return Err(Error::invalid(format!(
                    "a whsk_ key is 32 or 64 bytes, not {n}"
                )))
            }
        };
        let inner = Zeroizing::new(
            OctetStringRef::new(seed)
                .and_then(|o| o.to_der())
                .map_err(|_| Error::internal("encoding an Ed25519 seed"))?,
        );
        let info = pkcs8::PrivateKeyInfo {
            algorithm: alg,
            private_key: &inner,
            public_key: None,
        };
        return info
            .to_der()
            .map(Zeroizing::new)
            .map_err(|_| Error::internal("encoding an Ed25519 PKCS#8"));
    }
    if let Some(rest) = material.strip_prefix(b"whpk_") {
        let raw = text(rest)?;
        if raw.len() != 32 {
            return Err(Error::invalid(format!(
                "a whpk_ key is 32 bytes, not {}",
                raw.len()
            )));
        }
        let info = spki::SubjectPublicKeyInfoRef {
            algorithm: alg,
            subject_public_key: BitStringRef::from_bytes(&raw)
                .map_err(|_| Error::internal("encoding an Ed25519 public key"))?,
        };
        return info
            .to_der()
            .map(Zeroizing::new)
            .map_err(|_| Error::internal("encoding an Ed25519 public key"));
    }
    Ok(material)
}

/// `whpk_` + base64 of the raw key in an Ed25519 SubjectPublicKeyInfo DER.
pub(crate) fn encode_public(spki_der: &[u8]) -> Option<String> {
    use der::Decode;
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki_der).ok()?;
    (info.algorithm.oid == OID_ED25519)
        .then(|| info.subject_public_key.as_bytes())
        .flatten()
        .filter(|k| k.len() == 32)
        .map(|k| format!("whpk_{}", STANDARD.encode(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 1: the seed and its public key.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn z(b: impl AsRef<[u8]>) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b.as_ref().to_vec())
    }

    #[test]
    fn whsk_and_whpk_become_the_der_signet_imports() {
        let seed = hex::decode(SEED).unwrap();
        let public = hex::decode(PUBLIC).unwrap();
        let pkcs8 = decode(z(format!("whsk_{}", STANDARD.encode(&seed)))).unwrap();
        // The key the PKCS#8 holds has RFC 8032's public key.
        let pair =
            aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).unwrap();
        use aws_lc_rs::signature::KeyPair;
        assert_eq!(pair.public_key().as_ref(), &public[..]);
        // libsodium's 64-byte form gives the same key; a wrong public half
        // is refused.
        let both = [seed.clone(), public.clone()].concat();
        assert_eq!(
            decode(z(format!("whsk_{}\n", STANDARD.encode(&both)))).unwrap(),
            pkcs8
        );
        let mut bad = both.clone();
        bad[63] ^= 1;
        assert!(decode(z(format!("whsk_{}", STANDARD.encode(&bad))))
            .unwrap_err()
            .message()
            .contains("public half"));
        let whpk = format!("whpk_{}", STANDARD.encode(&public));
        let spki = decode(z(&whpk)).unwrap();
        assert_eq!(encode_public(&spki).as_deref(), Some(whpk.as_str()));
        assert!(decode(z("whsk_AAAA"))
            .unwrap_err()
            .message()
            .contains("32 or 64"));
        assert!(decode(z("whpk_!!")).is_err());
        assert_eq!(decode(z("-----BEGIN")).unwrap().as_slice(), b"-----BEGIN");
    }
}
