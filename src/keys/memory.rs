//! The in-memory backend: aws-lc-rs for RSA, ECDSA and Ed25519; RustCrypto
//! `hmac` + `sha2` for HMAC. Secrets are zeroized on drop and never printed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::error::{KeyRejected, Unspecified};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use parking_lot::RwLock;
use zeroize::Zeroizing;

pub(crate) mod aws_lc;

use aws_lc::{digest_alg, ecdsa_signing, rsa_encoding, rsa_key_size};
pub(crate) use aws_lc::{hmac_sign, hmac_verify};

use super::public::{check_pkcs8_algorithm, import_digest, mismatch};
use super::{
    Algorithm, Family, Hash, ImportMaterial, KeyBackend, KeyHandle, ProtectionLevel, PublicKey,
    SecretBytes, SignInput,
};
use crate::error::{Error, Result};

/// Keys held in process memory. Nothing survives a restart.
#[derive(Default)]
pub struct MemoryBackend {
    keys: RwLock<HashMap<String, Arc<MemoryKey>>>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.read();
        let mut labels: Vec<&str> = keys.keys().map(String::as_str).collect();
        labels.sort_unstable();
        f.debug_struct("MemoryBackend")
            .field("labels", &labels)
            .finish()
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `key` under `label` unless the label is taken.
    fn insert(&self, label: &str, key: MemoryKey) -> Result<Arc<dyn KeyHandle>> {
        let key = Arc::new(key);
        let mut keys = self.keys.write();
        if keys.contains_key(label) {
            return Err(label_taken());
        }
        keys.insert(label.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    fn check_free(&self, label: &str) -> Result<()> {
        if self.keys.read().contains_key(label) {
            Err(label_taken())
        } else {
            Ok(())
        }
    }
}

fn label_taken() -> Error {
    Error::exists("key material already exists under this label")
}

impl KeyBackend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn protection_level(&self) -> ProtectionLevel {
        ProtectionLevel::Software
    }

    fn check_algorithm(&self, _alg: Algorithm) -> Result<()> {
        Ok(())
    }

    fn generate(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        // Checked before and after: RSA generation is slow, a race is not.
        self.check_free(label)?;
        self.insert(label, MemoryKey::generate(alg)?)
    }

    fn import(
        &self,
        label: &str,
        alg: Algorithm,
        material: ImportMaterial,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.check_free(label)?;
        self.insert(label, MemoryKey::import(alg, material)?)
    }

    fn open(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        let key = self
            .keys
            .read()
            .get(label)
            .cloned()
            .ok_or_else(|| Error::not_found("no key material under this label"))?;
        if key.alg != alg {
            return Err(Error::internal(
                "key material under this label has another algorithm",
            ));
        }
        Ok(key)
    }

    fn destroy(&self, label: &str) -> Result<()> {
        // Dropping the last Arc zeroizes (HMAC) or frees (aws-lc) the secret.
        self.keys.write().remove(label);
        Ok(())
    }

    fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// Private or secret material, by family.
enum Secret {
    Hmac(SecretBytes),
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One key held in memory: the secret, its algorithm and (asymmetric keys)
/// the public key, computed once.
pub struct MemoryKey {
    alg: Algorithm,
    secret: Secret,
    public: Option<PublicKey>,
}

impl fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKey")
            .field("alg", &self.alg)
            .field("secret", &"REDACTED")
            .finish()
    }
}

impl MemoryKey {
    /// Generates new material for `alg`.
    pub fn generate(alg: Algorithm) -> Result<Self> {
        let failed = |_: Unspecified| Error::internal("key generation failed");
        let secret = match alg.family() {
            Family::Hmac => {
                let mut buf = Zeroizing::new(vec![0u8; alg_hash(alg)?.output_len()]);
                aws_lc_rs::rand::fill(&mut buf).map_err(failed)?;
                Secret::Hmac(SecretBytes::from_slice(&buf))
            }
            Family::RsaPkcs1 | Family::RsaPss => {
                Secret::Rsa(RsaKeyPair::generate(rsa_key_size(alg)?).map_err(failed)?)
            }
            Family::Ecdsa => {
                Secret::Ecdsa(EcdsaKeyPair::generate(ecdsa_signing(alg)?).map_err(failed)?)
            }
            Family::Ed25519 => Secret::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
        };
        // Our own key must always yield a public key of its algorithm.
        Self::new(alg, secret).map_err(Error::internal)
    }

    /// Imports an HMAC secret (16 to 128 bytes) or a PKCS#8 (v1 or v2)
    /// private key for `alg`. Material of another type, curve or size is
    /// `INVALID_ARGUMENT`.
    pub fn import(alg: Algorithm, material: ImportMaterial) -> Result<Self> {
        let secret = match (alg.family(), material) {
            (Family::Hmac, ImportMaterial::HmacSecret(s)) => {
                if !(16..=128).contains(&s.len()) {
                    return Err(Error::invalid("HMAC secret must be 16 to 128 bytes"));
                }
                Secret::Hmac(s)
            }
            (Family::Hmac, ImportMaterial::Pkcs8(_)) | (_, ImportMaterial::HmacSecret(_)) => {
                return Err(mismatch(alg))
            }
            (family, ImportMaterial::Pkcs8(der)) => {
                let der = der.expose();
                check_pkcs8_algorithm(alg, der)?;
                let rejected = |e: KeyRejected| rejected(alg, e);
                match family {
                    Family::Ecdsa => Secret::Ecdsa(
                        EcdsaKeyPair::from_pkcs8(ecdsa_signing(alg)?, der).map_err(rejected)?,
                    ),
                    Family::Ed25519 => Secret::Ed25519(
                        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?,
                    ),
                    _ => Secret::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
                }
            }
        };
        Self::new(alg, secret)
    }

    /// Builds the key and its public key (which checks RSA sizes and curves).
    fn new(alg: Algorithm, secret: Secret) -> Result<Self> {
        let spki: Option<std::result::Result<PublicKeyX509Der<'static>, Unspecified>> =
            match &secret {
                Secret::Hmac(_) => None,
                Secret::Rsa(kp) => Some(kp.public_key().as_der()),
                Secret::Ecdsa(kp) => Some(kp.public_key().as_der()),
                Secret::Ed25519(kp) => Some(kp.public_key().as_der()),
            };
        let public = match spki {
            None => None,
            Some(der) => {
                let der = der.map_err(|_| Error::internal("public key encoding failed"))?;
                Some(PublicKey::from_spki_der(alg, der.as_ref())?)
            }
        };
        Ok(Self {
            alg,
            secret,
            public,
        })
    }
}

/// aws-lc refused the private key: name the size problem when that is it.
fn rejected(alg: Algorithm, e: KeyRejected) -> Error {
    match e.description_() {
        "TooSmall" | "TooLarge" if alg.rsa_bits().is_some() => {
            Error::invalid(format!("RSA key size does not match {alg}"))
        }
        _ => Error::invalid(format!("private key is not a valid {alg} key")),
    }
}

fn alg_hash(alg: Algorithm) -> Result<Hash> {
    alg.hash().ok_or_else(|| mismatch(alg))
}

fn messages_only(alg: Algorithm) -> Error {
    Error::invalid(format!("{alg} keys sign messages, not digests"))
}

impl KeyHandle for MemoryKey {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn public_key(&self) -> Option<&PublicKey> {
        self.public.as_ref()
    }

    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>> {
        let failed = |_: Unspecified| Error::internal("signing failed");
        match (&self.secret, input) {
            (Secret::Hmac(key), SignInput::Message(m)) => {
                hmac_sign(alg_hash(self.alg)?, key.expose(), m)
            }
            (Secret::Rsa(kp), input) => {
                let encoding = rsa_encoding(self.alg);
                let mut out = vec![0u8; kp.public_modulus_len()];
                match input {
                    SignInput::Message(m) => kp.sign(encoding, &SystemRandom::new(), m, &mut out),
                    SignInput::Digest(d) => {
                        let digest = import_digest(d, digest_alg(alg_hash(self.alg)?))?;
                        kp.sign_digest(encoding, &digest, &mut out)
                    }
                }
                .map_err(failed)?;
                Ok(out)
            }
            (Secret::Ecdsa(kp), input) => {
                let signature = match input {
                    SignInput::Message(m) => kp.sign(&SystemRandom::new(), m),
                    SignInput::Digest(d) => {
                        kp.sign_digest(&import_digest(d, digest_alg(alg_hash(self.alg)?))?)
                    }
                }
                .map_err(failed)?;
                Ok(signature.as_ref().to_vec())
            }
            (Secret::Ed25519(kp), SignInput::Message(m)) => {
                Ok(kp.try_sign(m).map_err(failed)?.as_ref().to_vec())
            }
            (Secret::Hmac(_) | Secret::Ed25519(_), SignInput::Digest(_)) => {
                Err(messages_only(self.alg))
            }
        }
    }

    fn verify_mac(&self, input: SignInput<'_>, tag: &[u8]) -> Result<bool> {
        match (&self.secret, input) {
            (Secret::Hmac(key), SignInput::Message(m)) => {
                hmac_verify(alg_hash(self.alg)?, key.expose(), m, tag)
            }
            (Secret::Hmac(_), SignInput::Digest(_)) => Err(messages_only(self.alg)),
            _ => Err(Error::invalid(format!(
                "{} keys are verified with their public key, not as a MAC",
                self.alg
            ))),
        }
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
