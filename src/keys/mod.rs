//! Keys: algorithms, the backend trait, the registry of versions and their
//! lifecycle, and the in-memory backend.

pub(crate) mod algorithm;
pub mod cert;
pub mod clock;
pub mod ecdsa_sig;
pub(crate) mod jwe;
pub(crate) mod jwk;
pub(crate) mod material;
pub(crate) mod memory;
pub mod pkcs11;
pub(crate) mod public;
pub mod record;
pub mod registry;
pub(crate) mod sealed;
pub(crate) mod secret;
pub mod store;
pub mod wrap;

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
pub use algorithm::{Algorithm, Curve, Family, Hash};
pub use public::PublicKey;
pub use secret::SecretBytes;

/// `NAME:vN`, the id every signature and version names. Built without
/// the formatting machinery: it is made on every `Sign`, and `format!`
/// cost about 600 instructions of a call's 84,000 (callgrind, issue 18).
pub fn version_id(name: &str, v: u32) -> String {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = v;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(name.len() + 2 + digits.len() - at);
    id.push_str(name);
    id.push_str(":v");
    // ASCII digits.
    id.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
    id
}

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
    /// A raw symmetric secret: an HMAC secret or an AES key.
    Secret(SecretBytes),
    /// A private key as PKCS#8 DER (v1 or v2).
    Pkcs8(SecretBytes),
}

impl fmt::Debug for ImportMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportMaterial::Secret(_) => f.write_str("Secret(REDACTED)"),
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

/// The error for an operation a backend (or one of its keys) does not
/// implement: `UNIMPLEMENTED`, "<operation> is not supported by the
/// <backend> backend".
pub(crate) fn unsupported(operation: &str, backend: &str) -> Error {
    Error::new(
        crate::error::ErrorKind::Unimplemented,
        format!("{operation} is not supported by the {backend} backend"),
    )
}

/// A key backend: where secret material is generated, held and used.
///
/// Narrow and synchronous on purpose (calls may block on an HSM; the
/// registry bridges them to async in one place). Material is named by a
/// `label` the registry chooses (unique per key version) and used through
/// the [`KeyHandle`] the backend returns, so the signing path never looks
/// anything up in the backend.
///
/// Only [`KeyBackend::name`] and [`KeyBackend::protection_level`] are
/// required. Every operation has a default that refuses it with a clear
/// error (see [`unsupported`]), so a backend implements what it can and a
/// new operation is an addition to this trait, not a change to every
/// backend (the pattern of Parsec's `Provide` trait).
pub trait KeyBackend: Send + Sync + fmt::Debug {
    /// The backend's name in metrics, traces and errors: "memory", "pkcs11".
    fn name(&self) -> &'static str;

    /// Where this backend keeps material.
    fn protection_level(&self) -> ProtectionLevel;

    /// Refuses (`INVALID_ARGUMENT`, naming the algorithm) what this backend
    /// cannot generate or use, before anything is created. The default
    /// refuses every algorithm.
    fn check_algorithm(&self, alg: Algorithm) -> Result<()> {
        Err(Error::invalid(format!(
            "algorithm {alg} is not supported by the {} backend",
            self.name()
        )))
    }

    /// Generates new material for `alg` under `label`.
    fn generate(&self, _label: &str, _alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        Err(unsupported("key generation", self.name()))
    }

    /// Generates an extractable HMAC secret or AES key under `label`: a
    /// version of an exportable key, which [`KeyHandle::export_wrapped`]
    /// hands out. On PKCS#11 it is still sensitive (never read in the
    /// clear), but the token will wrap it.
    fn generate_exportable(&self, _label: &str, _alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        Err(unsupported("exportable keys", self.name()))
    }

    /// Imports private or secret material for `alg` under `label`.
    fn import(
        &self,
        _label: &str,
        _alg: Algorithm,
        _material: ImportMaterial,
    ) -> Result<Arc<dyn KeyHandle>> {
        Err(unsupported("key import", self.name()))
    }

    /// The public half of the key that `ImportKey` material is wrapped to
    /// ([`wrap`]), as SubjectPublicKeyInfo DER, and the OAEP hash this
    /// backend takes. Its private half never leaves the backend (on
    /// PKCS#11, the token).
    fn import_wrapping_key(&self) -> Result<(Vec<u8>, wrap::OaepHash)> {
        Err(unsupported("wrapped import", self.name()))
    }

    /// Imports material wrapped to [`KeyBackend::import_wrapping_key`]
    /// under `label`: a raw secret for HMAC and AES (on PKCS#11 unwrapped
    /// inside the token, so the plaintext never exists in signet's
    /// memory), PKCS#8 DER for a private key.
    /// `public`, when given, is the private key's public half: the
    /// backend checks that it belongs to the unwrapped key.
    fn import_wrapped(
        &self,
        _label: &str,
        _alg: Algorithm,
        _wrapped: &[u8],
        _public: Option<&PublicKey>,
    ) -> Result<Arc<dyn KeyHandle>> {
        Err(unsupported("wrapped import", self.name()))
    }

    /// Opens existing material under `label` (for backends that persist it).
    fn open(&self, _label: &str, _alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        Err(unsupported("opening stored keys", self.name()))
    }

    /// Destroys the material under `label` for good. Destroying what is not
    /// there is not an error.
    fn destroy(&self, _label: &str) -> Result<()> {
        Err(unsupported("key destruction", self.name()))
    }

    /// Answers `Ok` when the backend can serve requests. The default is
    /// always ready.
    fn health(&self) -> Result<()> {
        Ok(())
    }

    /// True when calls may block on I/O (an HSM): the registry then runs
    /// every call, the signing path included, through
    /// [`KeyBackend::dispatch`]. CPU-only backends answer false: the
    /// registry calls them inline, and dispatches only the slow admin calls
    /// (generation, import, destruction).
    fn blocking(&self) -> bool {
        false
    }

    /// Runs `job` (a backend or store call, wrapped by the registry) where
    /// this backend's blocking work belongs, or refuses it
    /// (`UNAVAILABLE`) once [`KeyBackend::shutdown`] has begun; a refused
    /// job is dropped unrun. The default is tokio's blocking pool, or the
    /// calling thread outside a runtime.
    fn dispatch(&self, job: Job) -> Result<()> {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(job)),
            Err(_) => job(),
        }
        Ok(())
    }

    /// Waits for the backend's in-flight calls and stops taking new ones.
    /// Called once when the server stops, before the process exits; calls
    /// made afterwards fail. The default does nothing.
    fn shutdown(&self) {}

    /// The registry is about to open every stored version (`true`: at
    /// start-up), or has (`false`). A backend may then
    /// list its objects once instead of looking each one up (PKCS#11).
    /// Sets a flag only: no I/O, so it is called directly, not through
    /// the registry's dispatch.
    fn opening_many(&self, _on: bool) {}

    /// Labels of key material this backend holds that `referenced` (every
    /// label a stored record names) does not: what an interrupted create or
    /// rotation left behind. Backends that persist nothing have none.
    fn orphan_check(&self, _referenced: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// A blocking call handed to [`KeyBackend::dispatch`].
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs `f` through [`KeyBackend::dispatch`] and waits for its result.
pub(crate) async fn dispatched<T: Send + 'static>(
    backend: &dyn KeyBackend,
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> crate::error::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    backend.dispatch(Box::new(move || {
        let _ = tx.send(f());
    }))?;
    // Dropped unsent: the job panicked (the worker survives it).
    rx.await
        .map_err(|_| crate::error::Error::internal("backend call ended without a result"))?
}

/// One version's usable material inside a backend.
///
/// Only [`KeyHandle::algorithm`] is required; operations a key cannot do
/// have defaults that refuse them (see [`KeyBackend`]).
pub trait KeyHandle: Send + Sync + fmt::Debug {
    /// The algorithm.
    fn algorithm(&self) -> Algorithm;

    /// The public key (asymmetric algorithms), built once. The default has
    /// none.
    fn public_key(&self) -> Option<&PublicKey> {
        None
    }

    /// Signs. Input has been checked with [`SignInput::check`]. ECDSA
    /// signatures come back raw (r‖s, fixed width); callers convert to DER.
    fn sign(&self, _input: SignInput<'_>) -> Result<Vec<u8>> {
        Err(unsupported("signing", "key's"))
    }

    /// Whether any of `tags` is the HMAC of `input` (HMAC algorithms only;
    /// asymmetric verification is done in software from
    /// [`KeyHandle::public_key`]). The MAC is computed once, however many
    /// tags there are, and compared with each in constant time.
    fn verify_mac(&self, _input: SignInput<'_>, _tags: &[Vec<u8>]) -> Result<bool> {
        Err(unsupported("MAC verification", "key's"))
    }

    /// AES-GCM (encryption keys): `plaintext` encrypted under `nonce` (the
    /// registry draws it) and authenticated with `aad`, as ciphertext
    /// then tag.
    fn encrypt(&self, _nonce: &[u8; 12], _aad: &[u8], _plaintext: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported("encryption", "key's"))
    }

    /// The plaintext of `sealed` (ciphertext then tag), or
    /// [`sealed::not_authentic`] when it does not authenticate under
    /// `nonce` and `aad`.
    fn decrypt(
        &self,
        _nonce: &[u8; 12],
        _aad: &[u8],
        _sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(unsupported("decryption", "key's"))
    }

    /// The secret wrapped to `to` in the scheme of [`wrap`], with `hash`
    /// or (`None`) the best the backend offers, and the hash used: for a
    /// version made by [`KeyBackend::generate_exportable`] only; every
    /// other key refuses with `FAILED_PRECONDITION`.
    fn export_wrapped(
        &self,
        _to: &wrap::Recipient,
        _hash: Option<wrap::OaepHash>,
    ) -> Result<(Vec<u8>, wrap::OaepHash)> {
        Err(wrap::not_extractable())
    }
}

/// Whether `expected` equals one of `tags`, each compared in constant time
/// (a tag of another length is simply unequal).
pub(crate) fn any_tag_matches(expected: &[u8], tags: &[Vec<u8>]) -> bool {
    use subtle::ConstantTimeEq;
    tags.iter()
        .any(|t| t.len() == expected.len() && bool::from(expected.ct_eq(t)))
}

/// Fills `buf` from the OS CSPRNG (nonces, data keys, ephemeral keys).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Error::internal("the system RNG failed"))
}

/// Validates a key name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub(crate) fn validate_name(kind: &str, name: &str) -> Result<()> {
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

    /// A backend and a key that implement only what is required.
    #[derive(Debug)]
    struct Bare;

    impl KeyBackend for Bare {
        fn name(&self) -> &'static str {
            "bare"
        }
        fn protection_level(&self) -> ProtectionLevel {
            ProtectionLevel::Software
        }
    }

    impl KeyHandle for Bare {
        fn algorithm(&self) -> Algorithm {
            Algorithm::Ed25519
        }
    }

    #[test]
    fn unimplemented_operations_are_refused_clearly() {
        use crate::error::ErrorKind;
        let alg = Algorithm::Ed25519;
        let e = Bare.check_algorithm(alg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.message(),
            "algorithm ED25519 is not supported by the bare backend"
        );
        let refused = [
            Bare.generate("l", alg).map(drop),
            Bare.import(
                "l",
                alg,
                ImportMaterial::Secret(SecretBytes::from_slice(b"s")),
            )
            .map(drop),
            Bare.open("l", alg).map(drop),
            Bare.destroy("l"),
            Bare.sign(SignInput::Message(b"m")).map(drop),
            Bare.verify_mac(SignInput::Message(b"m"), &[b"t".to_vec()])
                .map(drop),
        ];
        let messages: Vec<String> = refused
            .into_iter()
            .map(|r| {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Unimplemented, "{}", e.message());
                e.message().to_owned()
            })
            .collect();
        assert_eq!(
            messages,
            [
                "key generation is not supported by the bare backend",
                "key import is not supported by the bare backend",
                "opening stored keys is not supported by the bare backend",
                "key destruction is not supported by the bare backend",
                "signing is not supported by the key's backend",
                "MAC verification is not supported by the key's backend",
            ]
        );
        assert!(Bare.public_key().is_none());
        Bare.health().unwrap();
        assert!(Bare.orphan_check(&[]).unwrap().is_empty());
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
