//! The in-memory backend: aws-lc-rs for RSA, ECDSA, Ed25519 and AES-GCM;
//! RustCrypto `hmac` + `sha2` for HMAC. Secrets are zeroized on drop and
//! never printed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use parking_lot::RwLock;
use zeroize::Zeroizing;

pub(crate) mod aws_lc;

pub(crate) use aws_lc::hmac_sign;
use aws_lc::{digest_alg, rsa_encoding, KeyPair};

use super::material::check_secret;
use super::public::{check_pkcs8_algorithm, import_digest, mismatch};
use super::{
    any_tag_matches, Algorithm, Family, Hash, ImportMaterial, KeyBackend, KeyHandle,
    ProtectionLevel, PublicKey, SecretBytes, SignInput,
};
use crate::error::{Error, Result};

/// Keys held in process memory. Nothing survives a restart.
#[derive(Default)]
pub(crate) struct MemoryBackend {
    keys: RwLock<HashMap<String, Arc<MemoryKey>>>,
    /// The import wrapping key, made at first use; a new one after a
    /// restart (as every key of this backend).
    wrapping: std::sync::OnceLock<super::wrap::SoftWrappingKey>,
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
    pub(crate) fn new() -> Self {
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

    fn wrapping_key(&self) -> Result<&super::wrap::SoftWrappingKey> {
        if let Some(k) = self.wrapping.get() {
            return Ok(k);
        }
        let k = super::wrap::SoftWrappingKey::generate()?;
        Ok(self.wrapping.get_or_init(|| k))
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

    fn generate_exportable(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        if !alg.is_symmetric() {
            return Err(super::wrap::not_extractable());
        }
        self.check_free(label)?;
        self.insert(label, MemoryKey::generate_exportable(alg)?)
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

    fn import_wrapping_key(&self) -> Result<(Vec<u8>, super::wrap::OaepHash)> {
        Ok((
            self.wrapping_key()?.spki_der().to_vec(),
            super::wrap::OaepHash::Sha256,
        ))
    }

    fn import_wrapped(
        &self,
        label: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public: Option<&PublicKey>,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.check_free(label)?;
        let material = self.wrapping_key()?.unwrap(wrapped)?;
        let material = if alg.is_symmetric() {
            ImportMaterial::Secret(material)
        } else {
            ImportMaterial::Pkcs8(material)
        };
        let key = MemoryKey::import(alg, material)?;
        if let Some(p) = public {
            if key.public.as_ref().map(PublicKey::spki_der) != Some(p.spki_der()) {
                return Err(super::wrap::public_mismatch());
            }
        }
        self.insert(label, key)
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

/// Private or secret material: an HMAC secret, an AES key or an aws-lc
/// key pair.
enum Secret {
    Hmac(SecretBytes),
    /// aws-lc's key schedule (it zeroizes it when dropped).
    Aes(aws_lc_rs::aead::LessSafeKey),
    Pair(KeyPair),
}

/// aws-lc's AES-256-GCM key from 32 bytes.
fn aes_key(bytes: &[u8]) -> Result<Secret> {
    let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, bytes)
        .map_err(|_| Error::invalid("an AES-256 key must be 32 bytes"))?;
    Ok(Secret::Aes(aws_lc_rs::aead::LessSafeKey::new(key)))
}

/// One key held in memory: the secret, its algorithm and (asymmetric keys)
/// the public key, computed once.
pub(crate) struct MemoryKey {
    alg: Algorithm,
    secret: Secret,
    public: Option<PublicKey>,
    /// The raw secret of an exportable version (aws-lc's AES key schedule
    /// cannot give it back); `None` for every other key.
    export: Option<SecretBytes>,
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
    pub(crate) fn generate(alg: Algorithm) -> Result<Self> {
        let secret = match alg.secret_len() {
            Some(len) => symmetric(alg, &random_secret(len)?)?,
            None => Secret::Pair(KeyPair::generate(alg)?),
        };
        // Our own key must always yield a public key of its algorithm.
        Self::new(alg, secret).map_err(Error::internal)
    }

    /// Generates an HMAC secret or AES key that keeps its raw bytes for
    /// [`KeyHandle::export_wrapped`].
    fn generate_exportable(alg: Algorithm) -> Result<Self> {
        let len = alg.secret_len().ok_or_else(super::wrap::not_extractable)?;
        let raw = random_secret(len)?;
        let mut key = Self::new(alg, symmetric(alg, &raw)?)?;
        key.export = Some(SecretBytes::from_slice(&raw));
        Ok(key)
    }

    /// Imports an HMAC secret (16 to 128 bytes), an AES-256 key (32 bytes)
    /// or a PKCS#8 (v1 or v2) private key for `alg`. Material of another
    /// type, curve or size is `INVALID_ARGUMENT`.
    pub(crate) fn import(alg: Algorithm, material: ImportMaterial) -> Result<Self> {
        let secret = match (alg.family(), material) {
            (Family::Hmac, ImportMaterial::Secret(s)) => {
                check_secret(alg, s.len())?;
                Secret::Hmac(s)
            }
            (Family::AesGcm, ImportMaterial::Secret(s)) => {
                check_secret(alg, s.len())?;
                aes_key(s.expose())?
            }
            (Family::Hmac | Family::AesGcm, ImportMaterial::Pkcs8(_))
            | (_, ImportMaterial::Secret(_)) => return Err(mismatch(alg)),
            (_, ImportMaterial::Pkcs8(der)) => {
                let der = der.expose();
                check_pkcs8_algorithm(alg, der)?;
                Secret::Pair(KeyPair::from_pkcs8(alg, der)?)
            }
        };
        Self::new(alg, secret)
    }

    /// Builds the key and its public key (which checks RSA sizes and curves).
    fn new(alg: Algorithm, secret: Secret) -> Result<Self> {
        let public = match &secret {
            Secret::Hmac(_) | Secret::Aes(_) => None,
            Secret::Pair(pair) => Some(pair.public_key(alg)?),
        };
        Ok(Self {
            alg,
            secret,
            public,
            export: None,
        })
    }
}

/// `len` bytes from the OS CSPRNG.
fn random_secret(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; len]);
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_: Unspecified| Error::internal("key generation failed"))?;
    Ok(buf)
}

/// An HMAC secret or an AES key from its raw bytes.
fn symmetric(alg: Algorithm, raw: &[u8]) -> Result<Secret> {
    match alg.family() {
        Family::AesGcm => aes_key(raw),
        Family::Hmac => Ok(Secret::Hmac(SecretBytes::from_slice(raw))),
        _ => Err(mismatch(alg)),
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
            (Secret::Pair(KeyPair::Rsa(kp)), input) => {
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
            (Secret::Pair(KeyPair::Ecdsa(kp)), input) => {
                let signature = match input {
                    SignInput::Message(m) => kp.sign(&SystemRandom::new(), m),
                    SignInput::Digest(d) => {
                        kp.sign_digest(&import_digest(d, digest_alg(alg_hash(self.alg)?))?)
                    }
                }
                .map_err(failed)?;
                Ok(signature.as_ref().to_vec())
            }
            (Secret::Pair(KeyPair::Ed25519(kp)), SignInput::Message(m)) => {
                Ok(kp.try_sign(m).map_err(failed)?.as_ref().to_vec())
            }
            (Secret::Hmac(_) | Secret::Pair(KeyPair::Ed25519(_)), SignInput::Digest(_)) => {
                Err(messages_only(self.alg))
            }
            (Secret::Aes(_), _) => Err(mismatch(self.alg)),
        }
    }

    fn verify_mac(&self, input: SignInput<'_>, tags: &[Vec<u8>]) -> Result<bool> {
        match (&self.secret, input) {
            (Secret::Hmac(key), SignInput::Message(m)) => Ok(any_tag_matches(
                &hmac_sign(alg_hash(self.alg)?, key.expose(), m)?,
                tags,
            )),
            (Secret::Hmac(_), SignInput::Digest(_)) => Err(messages_only(self.alg)),
            _ => Err(Error::invalid(format!(
                "{} keys are verified with their public key, not as a MAC",
                self.alg
            ))),
        }
    }

    fn encrypt(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let Secret::Aes(key) = &self.secret else {
            return Err(mismatch(self.alg));
        };
        // Room for the tag: no reallocation when it is appended.
        let mut out = Vec::with_capacity(plaintext.len() + super::sealed::TAG_LEN);
        out.extend_from_slice(plaintext);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut out,
        )
        .map_err(|_| Error::internal("encryption failed"))?;
        Ok(out)
    }

    fn decrypt(&self, nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let Secret::Aes(key) = &self.secret else {
            return Err(mismatch(self.alg));
        };
        let mut buf = Zeroizing::new(sealed.to_vec());
        let n = key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| super::sealed::not_authentic())?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    fn export_wrapped(
        &self,
        to: &super::wrap::Recipient,
        hash: Option<super::wrap::OaepHash>,
    ) -> Result<(Vec<u8>, super::wrap::OaepHash)> {
        let raw = self
            .export
            .as_ref()
            .ok_or_else(super::wrap::not_extractable)?;
        let hash = hash.unwrap_or(super::wrap::OaepHash::Sha256);
        Ok((super::wrap::wrap(to.spki_der(), hash, raw.expose())?, hash))
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "memory_aes_tests.rs"]
mod aes_tests;
