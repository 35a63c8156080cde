//! Moving keys in wrapped, never in the clear: the scheme of PKCS#11's
//! `CKM_RSA_AES_KEY_WRAP`, which GCP, AWS and Vault use for BYOK.
//!
//! ```text
//! wrapped = RSA-OAEP(SHA-256, MGF1-SHA-256, no label)(ephemeral AES-256 key)
//!           || AES-KWP (RFC 5649)(ephemeral key, material)
//! ```
//!
//! The first part is exactly as long as the wrapping key's modulus (384
//! bytes for RSA-3072). The material is PKCS#8 DER for a private key and
//! the raw bytes for an HMAC secret or an AES key. This module does the
//! scheme in software, for the memory backend and the CLI's `keys wrap`;
//! the PKCS#11 backend does the same inside the token.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{KeyEncryptionKey, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use zeroize::Zeroizing;

use super::SecretBytes;
use crate::error::{Error, Result};

/// The hash of the OAEP step (and of its MGF1). SHA-256 is the scheme;
/// SHA-1 is what a token that offers no other OAEP hash gets (SoftHSM2
/// 2.6 refuses every other with `CKR_ARGUMENTS_BAD`), and what GCP names
/// `RSA_OAEP_3072_SHA1_AES_256`. `GetImportWrappingKey` says which one a
/// server takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OaepHash {
    /// SHA-256, MGF1 with SHA-256.
    Sha256,
    /// SHA-1, MGF1 with SHA-1.
    Sha1,
}

impl OaepHash {
    /// The scheme's name, as GCP and Vault spell it.
    pub fn scheme(self) -> &'static str {
        match self {
            OaepHash::Sha256 => "RSA_OAEP_3072_SHA256_AES_256",
            OaepHash::Sha1 => "RSA_OAEP_3072_SHA1_AES_256",
        }
    }

    /// The scheme a name stands for.
    pub(crate) fn from_scheme(name: &str) -> Option<Self> {
        [OaepHash::Sha256, OaepHash::Sha1]
            .into_iter()
            .find(|h| h.scheme() == name)
    }

    fn algorithm(self) -> &'static OaepAlgorithm {
        match self {
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
        }
    }
}

/// The modulus of the import wrapping key, in bits.
pub(crate) const WRAPPING_KEY_BITS: usize = 3072;

/// Most material a wrapping may carry (a 4096-bit RSA PKCS#8 is about
/// 2.4 KiB).
const MAX_MATERIAL: usize = 16 * 1024;

/// The refusal for material that does not unwrap, whatever the cause.
pub(crate) fn bad_wrapping() -> Error {
    Error::invalid(
        "wrapped material does not unwrap with the import wrapping key: expected \
         RSA-OAEP-SHA256 of an AES-256 key followed by its RFC 5649 AES key wrap with padding \
         of the material (docs/byok.md)",
    )
}

/// The refusal for a `public_key` that is not the wrapped private key's.
pub(crate) fn public_mismatch() -> Error {
    Error::invalid("public_key is not the public half of the wrapped private key")
}

/// The refusal for material that was not made to leave signet.
pub(crate) fn not_extractable() -> Error {
    Error::precondition(
        "this key version cannot be exported: only versions of an HMAC or AES key created \
         with exportable = true can",
    )
}

/// Splits a wrapping into the OAEP part (`modulus_len` bytes) and the KWP
/// part (at least 16 bytes, a multiple of 8).
pub(crate) fn split(wrapped: &[u8], modulus_len: usize) -> Result<(&[u8], &[u8])> {
    if wrapped.len() < modulus_len + 16 || wrapped.len() > modulus_len + MAX_MATERIAL + 16 {
        return Err(bad_wrapping());
    }
    let (oaep, kwp) = wrapped.split_at(modulus_len);
    if kwp.len() % 8 != 0 {
        return Err(bad_wrapping());
    }
    Ok((oaep, kwp))
}

/// A software import wrapping key (the memory backend's).
pub(crate) struct SoftWrappingKey {
    private: OaepPrivateDecryptingKey,
    spki: Vec<u8>,
}

impl std::fmt::Debug for SoftWrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftWrappingKey(REDACTED)")
    }
}

impl SoftWrappingKey {
    /// A fresh RSA-3072 key pair.
    pub(crate) fn generate() -> Result<Self> {
        let failed = |_| Error::internal("import wrapping key generation failed");
        let key =
            PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa3072).map_err(failed)?;
        let spki = key.public_key().as_der().map_err(failed)?.as_ref().to_vec();
        Ok(Self {
            private: OaepPrivateDecryptingKey::new(key).map_err(failed)?,
            spki,
        })
    }

    /// The public half, SubjectPublicKeyInfo DER.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The material inside `wrapped`.
    pub(crate) fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        let (oaep, kwp) = split(wrapped, self.private.key_size_bytes())?;
        let mut ephemeral = Zeroizing::new(vec![0u8; self.private.min_output_size()]);
        let ephemeral = self
            .private
            .decrypt(&OAEP_SHA256_MGF1SHA256, oaep, &mut ephemeral, None)
            .map_err(|_| bad_wrapping())?;
        if ephemeral.len() != 32 {
            return Err(bad_wrapping());
        }
        let kek = KeyEncryptionKey::new(&AES_256, ephemeral).map_err(|_| bad_wrapping())?;
        let mut out = Zeroizing::new(vec![0u8; kwp.len()]);
        let material = kek
            .unwrap_with_padding(kwp, &mut out)
            .map_err(|_| bad_wrapping())?;
        Ok(SecretBytes::from_slice(material))
    }
}

/// RSA-OAEP of `data` (an ephemeral key) to `spki_der` with `hash`.
pub(crate) fn oaep_encrypt(spki_der: &[u8], hash: OaepHash, data: &[u8]) -> Result<Vec<u8>> {
    let public = PublicEncryptingKey::from_der(spki_der)
        .map_err(|_| Error::invalid("the wrapping key must be an RSA public key (SPKI)"))?;
    if public.key_size_bits() < 2048 {
        return Err(Error::invalid(
            "the wrapping key must have at least 2048 bits",
        ));
    }
    let public = OaepPublicEncryptingKey::new(public)
        .map_err(|_| Error::invalid("the wrapping key must be an RSA public key (SPKI)"))?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let n = public
        .encrypt(hash.algorithm(), data, &mut out, None)
        .map_err(|_| Error::internal("RSA-OAEP failed"))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// Wraps `material` to the RSA public key `spki_der` (SubjectPublicKeyInfo
/// DER, at least 2048 bits): what a custodian does before `ImportKey`, and
/// what a wrapped export does.
pub(crate) fn wrap(spki_der: &[u8], hash: OaepHash, material: &[u8]) -> Result<Vec<u8>> {
    if material.is_empty() || material.len() > MAX_MATERIAL {
        return Err(Error::invalid("material to wrap must be 1 byte to 16 KiB"));
    }
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    super::fill_random(ephemeral.as_mut())?;
    let mut out = oaep_encrypt(spki_der, hash, ephemeral.as_ref())?;
    let kek = KeyEncryptionKey::new(&AES_256, ephemeral.as_ref())
        .map_err(|_| Error::internal("AES key wrap failed"))?;
    let mut kwp = vec![0u8; material.len() + 16];
    let k = kek
        .wrap_with_padding(material, &mut kwp)
        .map_err(|_| Error::internal("AES key wrap failed"))?
        .len();
    out.extend_from_slice(&kwp[..k]);
    Ok(out)
}

/// Largest recipient key a wrapped export takes, in bits.
const MAX_RECIPIENT_BITS: usize = 8192;

/// The RSA public key a wrapped export is wrapped to, checked: 2048 to
/// 8192 bits, an exponent aws-lc takes.
pub struct Recipient {
    spki: Vec<u8>,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipient({} bits)", self.modulus.len() * 8)
    }
}

impl Recipient {
    /// From SubjectPublicKeyInfo PEM (`PUBLIC KEY`) or DER.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        const WANT: &str = "the wrapping public key must be an RSA public key of 2048 to 8192 \
                            bits, SubjectPublicKeyInfo PEM (\"PUBLIC KEY\") or DER";
        let text = bytes.trim_ascii();
        let der = if text.starts_with(b"-----BEGIN") {
            match der::pem::decode_vec(text) {
                Ok(("PUBLIC KEY", der)) => der,
                _ => return Err(Error::invalid(WANT)),
            }
        } else {
            bytes.to_vec()
        };
        let public = PublicEncryptingKey::from_der(&der).map_err(|_| Error::invalid(WANT))?;
        if !(2048..=MAX_RECIPIENT_BITS).contains(&public.key_size_bits()) {
            return Err(Error::invalid(WANT));
        }
        let info = <spki::SubjectPublicKeyInfoRef<'_> as der::Decode>::from_der(&der)
            .map_err(|_| Error::invalid(WANT))?;
        let pkcs1 = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::invalid(WANT))?;
        let key = <pkcs1::RsaPublicKey<'_> as der::Decode>::from_der(pkcs1)
            .map_err(|_| Error::invalid(WANT))?;
        Ok(Self {
            modulus: key.modulus.as_bytes().to_vec(),
            exponent: key.public_exponent.as_bytes().to_vec(),
            spki: der,
        })
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The modulus, big-endian, without leading zeros.
    pub(crate) fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// The public exponent, big-endian.
    pub(crate) fn exponent(&self) -> &[u8] {
        &self.exponent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_wrapped_unwraps_and_nothing_else_does() {
        let k = SoftWrappingKey::generate().unwrap();
        for material in [&b"x"[..], &[7u8; 32], &[1u8; 2500]] {
            let w = wrap(k.spki_der(), OaepHash::Sha256, material).unwrap();
            assert_eq!(w.len() % 8, 0);
            assert_eq!(k.unwrap(&w).unwrap().expose(), material);
            let mut flipped = w.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert_eq!(
                k.unwrap(&flipped).unwrap_err().message(),
                bad_wrapping().message()
            );
            let mut flipped = w.clone();
            flipped[0] ^= 1;
            assert!(k.unwrap(&flipped).is_err());
            assert!(k.unwrap(&w[..w.len() - 8]).is_err());
        }
        // The SHA-1 form does not unwrap as the SHA-256 one.
        let w = wrap(k.spki_der(), OaepHash::Sha1, &[9u8; 32]).unwrap();
        assert!(k.unwrap(&w).is_err());
        assert_eq!(
            OaepHash::from_scheme(OaepHash::Sha1.scheme()),
            Some(OaepHash::Sha1)
        );
        assert_eq!(OaepHash::from_scheme("nope"), None);
        // Another wrapping key's material does not unwrap here.
        let other = SoftWrappingKey::generate().unwrap();
        let w = wrap(other.spki_der(), OaepHash::Sha256, &[9u8; 32]).unwrap();
        assert!(k.unwrap(&w).is_err());
        assert!(k.unwrap(&[]).is_err());
        assert!(!format!("{k:?}").contains("3082"));
    }

    #[test]
    fn the_wrapping_key_is_rsa_3072_and_wrap_refuses_weak_keys() {
        let k = SoftWrappingKey::generate().unwrap();
        let p = PublicEncryptingKey::from_der(k.spki_der()).unwrap();
        assert_eq!(p.key_size_bits(), WRAPPING_KEY_BITS);
        assert!(wrap(b"not a key", OaepHash::Sha256, b"m").is_err());
        assert!(wrap(k.spki_der(), OaepHash::Sha256, b"").is_err());
    }

    #[test]
    fn split_checks_the_lengths() {
        assert!(split(&[0; 384 + 16], 384).is_ok());
        assert!(split(&[0; 384 + 15], 384).is_err());
        assert!(split(&[0; 384 + 20], 384).is_err());
        assert!(split(&[0; 10], 384).is_err());
    }
}
