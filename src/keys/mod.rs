//! Keys: algorithms, the backend trait, the registry of versions and their
//! lifecycle, and the in-memory backend.

pub mod algorithm;
pub mod clock;
pub mod ecdsa_sig;
pub mod jwk;
pub mod material;
pub mod memory;
pub mod pkcs11;
pub mod public;
pub mod record;
pub mod registry;
pub mod secret;
pub mod store;

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
pub use algorithm::{Algorithm, Curve, Family, Hash};
pub use public::PublicKey;
pub use secret::SecretBytes;

/// What to sign or verify: the message, or its digest with the key's hash.
#[derive(Clone, Copy)]
pub enum SignInput<'a> {
    /// The message bytes.
    Message(&'a [u8]),
    /// A digest computed by the caller with the algorithm's hash.
    Digest(&'a [u8]),
}

impl fmt::Debug for SignInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: messages may be confidential.
        match self {
            SignInput::Message(m) => write!(f, "Message({} bytes)", m.len()),
            SignInput::Digest(d) => write!(f, "Digest({} bytes)", d.len()),
        }
    }
}

impl SignInput<'_> {
    /// Checks the input is acceptable for `alg`: digests only where the
    /// algorithm has a prehash form, and of exactly the hash's length.
    pub fn check(&self, alg: Algorithm) -> Result<()> {
        if let SignInput::Digest(d) = self {
            if !alg.accepts_digest() {
                return Err(Error::invalid(format!(
                    "{alg} keys sign messages, not digests"
                )));
            }
            let want = alg.hash().map(Hash::output_len).unwrap_or(0);
            if d.len() != want {
                return Err(Error::invalid(format!(
                    "digest must be {want} bytes for {alg}, got {}",
                    d.len()
                )));
            }
        }
        Ok(())
    }
}

/// Private or secret material handed to a backend on import. Never printed.
pub enum ImportMaterial {
    /// A raw HMAC secret.
    HmacSecret(SecretBytes),
    /// A private key as PKCS#8 DER (v1 or v2).
    Pkcs8(SecretBytes),
}

impl fmt::Debug for ImportMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportMaterial::HmacSecret(_) => f.write_str("HmacSecret(REDACTED)"),
            ImportMaterial::Pkcs8(_) => f.write_str("Pkcs8(REDACTED)"),
        }
    }
}

/// Where key material lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectionLevel {
    /// In process memory.
    Software,
    /// In an HSM.
    Hsm,
}

/// A key backend: where secret material is generated, held and used.
///
/// Narrow and synchronous on purpose (calls may block on an HSM; the
/// registry bridges them to async in one place). Material is named by a
/// `label` the registry chooses (unique per key version) and used through
/// the [`KeyHandle`] the backend returns, so the signing path never looks
/// anything up in the backend.
pub trait KeyBackend: Send + Sync + fmt::Debug {
    /// Where this backend keeps material.
    fn protection_level(&self) -> ProtectionLevel;

    /// Refuses (`INVALID_ARGUMENT`, naming the algorithm) what this backend
    /// cannot generate or use, before anything is created.
    fn check_algorithm(&self, alg: Algorithm) -> Result<()>;

    /// Generates new material for `alg` under `label`.
    fn generate(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>>;

    /// Imports private or secret material for `alg` under `label`.
    fn import(
        &self,
        label: &str,
        alg: Algorithm,
        material: ImportMaterial,
    ) -> Result<Arc<dyn KeyHandle>>;

    /// Opens existing material under `label` (for backends that persist it).
    fn open(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>>;

    /// Destroys the material under `label` for good. Destroying what is not
    /// there is not an error.
    fn destroy(&self, label: &str) -> Result<()>;

    /// Answers `Ok` when the backend can serve requests.
    fn health(&self) -> Result<()>;

    /// True when calls may block on I/O (an HSM): the registry then runs them
    /// on the blocking thread pool. CPU-only backends answer false and are
    /// called inline.
    fn blocking(&self) -> bool {
        false
    }

    /// Runs `job` (a blocking backend or store call) where this backend's
    /// blocking work belongs. Only called when [`KeyBackend::blocking`] is
    /// true, from within the tokio runtime; the default is tokio's blocking
    /// pool.
    fn dispatch(&self, job: Job) {
        drop(tokio::task::spawn_blocking(job));
    }

    /// Waits for the backend's in-flight calls and stops taking new ones.
    /// Called once when the server stops, before the process exits; calls
    /// made afterwards fail. The default does nothing.
    fn shutdown(&self) {}

    /// Labels of key material this backend holds that `referenced` (every
    /// label a stored record names) does not: what an interrupted create or
    /// rotation left behind. Backends that persist nothing have none.
    fn orphan_check(&self, _referenced: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// A blocking call handed to [`KeyBackend::dispatch`].
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// One version's usable material inside a backend.
pub trait KeyHandle: Send + Sync + fmt::Debug {
    /// The algorithm.
    fn algorithm(&self) -> Algorithm;

    /// The public key (asymmetric algorithms), built once.
    fn public_key(&self) -> Option<&PublicKey>;

    /// Signs. Input has been checked with [`SignInput::check`]. ECDSA
    /// signatures come back raw (r‖s, fixed width); callers convert to DER.
    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>>;

    /// Checks an HMAC tag in constant time (HMAC algorithms only; asymmetric
    /// verification is done in software from [`KeyHandle::public_key`]).
    fn verify_mac(&self, input: SignInput<'_>, tag: &[u8]) -> Result<bool>;
}

/// Validates a key name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid {kind} name: must match [a-z0-9][a-z0-9._-]{{0,63}}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_validation() {
        for good in ["a", "0", "pay-2024.v1_x", &"a".repeat(64)] {
            validate_name("key", good).unwrap();
        }
        for bad in ["", "A", "-a", ".a", "a b", "é", &"a".repeat(65), "a/b"] {
            assert!(validate_name("key", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digest_checks() {
        let d32 = [0u8; 32];
        SignInput::Digest(&d32)
            .check(Algorithm::EcdsaP256Sha256)
            .unwrap();
        assert!(SignInput::Digest(&d32)
            .check(Algorithm::EcdsaP384Sha384)
            .is_err());
        assert!(SignInput::Digest(&d32).check(Algorithm::Ed25519).is_err());
        assert!(SignInput::Digest(&d32)
            .check(Algorithm::HmacSha256)
            .is_err());
        SignInput::Message(b"x").check(Algorithm::Ed25519).unwrap();
    }
}
