//! Encryption with AES-GCM keys: encrypt with the ACTIVE version, decrypt
//! with the version a ciphertext names while it is ACTIVE or RETIRING,
//! re-encrypt under the ACTIVE version, and data keys for envelope
//! encryption. Formats: signet's (`keys::sealed`) and JWE (`keys::jwe`).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Op, Registry, VersionMaterial};
use crate::error::{Error, Result};
use crate::keys::record::{KeyRecord, VersionState};
use crate::keys::{jwe, sealed, KeyHandle};

/// Which form a ciphertext takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherFormat {
    /// signet's binary format (docs/encryption.md).
    Signet,
    /// JWE compact serialization, `alg: dir`, `enc: A256GCM`.
    JweCompact,
}

/// A ciphertext and the version that made it.
#[derive(Debug)]
pub struct Encrypted {
    /// The ciphertext in the format asked for.
    pub ciphertext: Vec<u8>,
    /// The version that encrypted.
    pub version: u32,
    /// `NAME:vN`.
    pub key_version_id: String,
}

/// A plaintext and the version that decrypted it.
pub struct Decrypted {
    /// The plaintext, zeroized when dropped.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The version the ciphertext named.
    pub version: u32,
    /// `NAME:vN`.
    pub key_version_id: String,
    /// The ciphertext's format.
    pub format: CipherFormat,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext", &format_args!("{} bytes", self.plaintext.len()))
            .field("version", &self.version)
            .finish()
    }
}

/// One encryption key version, as the metrics report it.
#[derive(Clone, Debug)]
pub struct CipherGauge {
    /// The key.
    pub key: String,
    /// The version.
    pub version: u32,
    /// Encryptions reserved in the registry (an upper bound on those made).
    pub encryptions: u64,
    /// `keys.max_encryptions_per_version`.
    pub bound: u64,
    /// Decryptions by this process since it started.
    pub decryptions: u64,
    /// Whether it is the ACTIVE version, the one that encrypts.
    pub active: bool,
}

/// Length of a data key: AES-256.
pub const DATA_KEY_LEN: usize = 32;

/// Signing keys cannot encrypt: `INVALID_ARGUMENT`.
fn refuse_signing(rec: &KeyRecord) -> Result<()> {
    if rec.algorithm.encrypts() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "key {} is {}: only AES_256_GCM keys encrypt and decrypt",
        rec.name, rec.algorithm
    )))
}

/// The handle of `name`'s version `v`, which the caller checked may be
/// used (encryption, decryption, a wrapped export).
pub(super) fn material(
    name: &str,
    v: u32,
    m: Option<&VersionMaterial>,
) -> Result<Arc<dyn KeyHandle>> {
    match m {
        Some(VersionMaterial::Private(h)) => Ok(h.clone()),
        _ => Err(Error::unavailable(format!(
            "version {v} of key {name} is not available"
        ))),
    }
}

impl Registry {
    /// Encrypts `plaintext` with the ACTIVE version, authenticating
    /// `associated` with it (signet's format only).
    pub async fn encrypt(
        &self,
        name: &str,
        plaintext: Zeroizing<Vec<u8>>,
        associated: &[u8],
        format: CipherFormat,
    ) -> Result<Encrypted> {
        if format == CipherFormat::JweCompact && !associated.is_empty() {
            return Err(Error::invalid(
                "a compact JWE carries no associated data; send none, or use the signet format",
            ));
        }
        let entry = self.usable(name)?;
        let (v, handle) = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_signing(rec)?;
            let v = rec
                .active()
                .map(|r| r.version)
                .ok_or_else(|| Error::precondition(format!("key {name} has no ACTIVE version")))?;
            (v, material(name, v, st.material.get(&v))?)
        };
        self.count_encryption(name, v).await?;
        crate::telemetry::rpc::note_version(v);
        let kid = crate::keys::version_id(name, v);
        let nonce = sealed::fresh_nonce()?;
        let (aad, protected) = match format {
            CipherFormat::Signet => (sealed::aad(v, name, associated), None),
            CipherFormat::JweCompact => {
                let p = jwe::protected_header(&kid);
                (p.clone().into_bytes(), Some(p))
            }
        };
        let body = self
            .call(Op::Encrypt, move || {
                handle.encrypt(&nonce, &aad, &plaintext)
            })
            .await?;
        let ciphertext = match protected {
            None => sealed::encode(v, &nonce, &body),
            Some(p) => jwe::encode(&p, &nonce, &body).into_bytes(),
        };
        Ok(Encrypted {
            ciphertext,
            version: v,
            key_version_id: kid,
        })
    }

    /// Decrypts a ciphertext of either format with the version it names,
    /// which must be ACTIVE or RETIRING.
    pub async fn decrypt(
        &self,
        name: &str,
        ciphertext: &[u8],
        associated: &[u8],
    ) -> Result<Decrypted> {
        let (format, v, nonce, body, aad) = if jwe::looks_like_jwe(ciphertext) {
            if !associated.is_empty() {
                return Err(Error::invalid(
                    "a compact JWE carries no associated data; send none",
                ));
            }
            let j = jwe::parse(ciphertext)?;
            if j.name != name {
                return Err(sealed::not_authentic());
            }
            let aad = j.protected.as_bytes().to_vec();
            (CipherFormat::JweCompact, j.version, j.nonce, j.body, aad)
        } else {
            let s = sealed::parse(ciphertext)?;
            let aad = sealed::aad(s.version, name, associated);
            (
                CipherFormat::Signet,
                s.version,
                s.nonce,
                s.body.to_vec(),
                aad,
            )
        };
        let entry = self.usable(name)?;
        let handle = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_signing(rec)?;
            let state = rec.version(v)?.effective_state(self.clock.now());
            if !matches!(state, VersionState::Active | VersionState::Retiring) {
                return Err(Error::precondition(format!(
                    "version {v} of key {name} is {} and does not decrypt",
                    state.name()
                )));
            }
            material(name, v, st.material.get(&v))?
        };
        crate::telemetry::rpc::note_version(v);
        let plaintext = self
            .call(Op::Decrypt, move || handle.decrypt(&nonce, &aad, &body))
            .await?;
        self.counts.decrypted(name, v);
        Ok(Decrypted {
            plaintext,
            version: v,
            key_version_id: crate::keys::version_id(name, v),
            format,
        })
    }

    /// Decrypts and encrypts again with the ACTIVE version, in the same
    /// format; the plaintext never leaves signet. Returns the new
    /// ciphertext and the version that had made the old one.
    pub async fn re_encrypt(
        &self,
        name: &str,
        ciphertext: &[u8],
        associated: &[u8],
    ) -> Result<(Encrypted, u32)> {
        let d = self.decrypt(name, ciphertext, associated).await?;
        let e = self
            .encrypt(name, d.plaintext, associated, d.format)
            .await?;
        Ok((e, d.version))
    }

    /// A fresh AES-256 data key from the OS CSPRNG, and its encryption
    /// under the ACTIVE version (signet's format, with `associated`).
    pub async fn generate_data_key(
        &self,
        name: &str,
        associated: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, Encrypted)> {
        let mut key = Zeroizing::new(vec![0u8; DATA_KEY_LEN]);
        crate::keys::fill_random(&mut key)?;
        let e = self
            .encrypt(name, key.clone(), associated, CipherFormat::Signet)
            .await?;
        Ok((key, e))
    }

    /// Decryptions per version of `name` made by this process since it
    /// started, oldest version first.
    pub fn decryptions(&self, name: &str) -> Vec<(u32, u64)> {
        self.counts.decryptions(name)
    }

    /// For the metrics: per encryption key and version that is not
    /// destroyed, the encryptions reserved (the registry's count), the
    /// bound, and this process's decryptions.
    pub fn cipher_gauges(&self, now: std::time::SystemTime) -> Vec<CipherGauge> {
        let entries: Vec<_> = self.keys.read().values().cloned().collect();
        let mut out = Vec::new();
        for e in entries {
            let st = e.state.read();
            let rec = &st.record;
            if !rec.algorithm.encrypts() {
                continue;
            }
            let decrypted = self.counts.decryptions(&rec.name);
            for v in &rec.versions {
                if v.effective_state(now) == VersionState::Destroyed {
                    continue;
                }
                out.push(CipherGauge {
                    key: rec.name.clone(),
                    version: v.version,
                    encryptions: v.encryptions,
                    bound: self.settings.max_encryptions,
                    decryptions: decrypted
                        .iter()
                        .find(|(n, _)| *n == v.version)
                        .map_or(0, |(_, d)| *d),
                    active: v.effective_state(now) == VersionState::Active,
                });
            }
        }
        out
    }
}
