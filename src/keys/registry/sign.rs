//! The read path: signing, verification and public key export. Each takes
//! the key's lock for a few instructions and uses the cached material
//! outside it.

use std::sync::Arc;

use super::{
    refuse_encryption_key, refuse_symmetric, Exported, Input, KeySignature, Op, Registry, Verified,
    VersionMaterial,
};
use crate::error::{Error, Result};
use crate::keys::ecdsa_sig::{self, SignatureFormat};
use crate::keys::record::VersionState;
use crate::keys::{Algorithm, Family, KeyHandle, PublicKey};

impl Registry {
    /// Signs with the ACTIVE version, or with `version`, which must be ACTIVE.
    pub async fn sign(
        &self,
        name: &str,
        version: Option<u32>,
        input: Input,
        format: SignatureFormat,
    ) -> Result<KeySignature> {
        let entry = self.usable(name)?;
        let now = self.clock.now();
        let (v, handle, alg, kid) = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_encryption_key(rec)?;
            if rec.verify_only {
                return Err(Error::precondition(format!(
                    "key {name} holds public keys only and cannot sign"
                )));
            }
            let v = match version {
                Some(v) => {
                    let s = rec.version(v)?.effective_state(now);
                    if s != VersionState::Active {
                        return Err(Error::precondition(format!(
                            "version {v} of key {name} is {}; only the ACTIVE version signs",
                            s.name()
                        )));
                    }
                    v
                }
                None => rec.active().map(|r| r.version).ok_or_else(|| {
                    Error::precondition(format!("key {name} has no ACTIVE version"))
                })?,
            };
            let handle = match st.material.get(&v) {
                Some(VersionMaterial::Private(h)) => h.clone(),
                _ => {
                    return Err(Error::unavailable(format!(
                        "version {v} of key {name} is not available"
                    )))
                }
            };
            (v, handle, rec.algorithm, rec.version_id(v))
        };
        self.sign_with(handle, alg, v, kid, input, format).await
    }

    /// Signs with the ACTIVE version and then the PENDING ones (oldest
    /// first), `most` signatures in all: for webhook formats that carry
    /// several signatures, so a receiver that already has the next secret
    /// accepts the request too.
    pub async fn sign_active_and_pending(
        &self,
        name: &str,
        input: Input,
        format: SignatureFormat,
        most: usize,
    ) -> Result<Vec<KeySignature>> {
        self.sign_each(name, most, format, |_, _| Ok(input.clone()))
            .await
    }

    /// As [`Self::sign_active_and_pending`], but each version signs the
    /// input `make(version, key_version_id)` gives it: for formats whose
    /// signed bytes name the version (RFC 9421's `keyid`).
    pub async fn sign_each(
        &self,
        name: &str,
        most: usize,
        format: SignatureFormat,
        make: impl Fn(u32, &str) -> Result<Input>,
    ) -> Result<Vec<KeySignature>> {
        let entry = self.usable(name)?;
        let now = self.clock.now();
        let (alg, signers) = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_encryption_key(rec)?;
            if rec.verify_only {
                return Err(Error::precondition(format!(
                    "key {name} holds public keys only and cannot sign"
                )));
            }
            let active = rec
                .active()
                .map(|r| r.version)
                .ok_or_else(|| Error::precondition(format!("key {name} has no ACTIVE version")))?;
            let pending = rec
                .versions
                .iter()
                .filter(|r| r.effective_state(now) == VersionState::Pending)
                .map(|r| r.version)
                .take(most.saturating_sub(1));
            let mut signers = Vec::new();
            for v in std::iter::once(active).chain(pending) {
                match st.material.get(&v) {
                    Some(VersionMaterial::Private(h)) => {
                        signers.push((v, h.clone(), rec.version_id(v)))
                    }
                    _ if v == active => {
                        return Err(Error::unavailable(format!(
                            "version {v} of key {name} is not available"
                        )))
                    }
                    // A PENDING version without material cannot sign yet.
                    _ => {}
                }
            }
            (rec.algorithm, signers)
        };
        let mut out = Vec::with_capacity(signers.len());
        for (v, handle, kid) in signers {
            let input = make(v, &kid)?;
            out.push(self.sign_with(handle, alg, v, kid, input, format).await?);
        }
        Ok(out)
    }

    async fn sign_with(
        &self,
        handle: Arc<dyn KeyHandle>,
        alg: Algorithm,
        v: u32,
        kid: String,
        input: Input,
        format: SignatureFormat,
    ) -> Result<KeySignature> {
        input.borrow().check(alg)?;
        crate::telemetry::rpc::note_version(v);
        let raw = self
            .call(Op::Sign, move || handle.sign(input.borrow()))
            .await?;
        // Every ECDSA signature leaves in low-S form, whichever backend made
        // it, so signet never hands out both (r, s) and (r, n − s).
        let signature = match (alg.family(), alg.curve()) {
            (Family::Ecdsa, Some(c)) => {
                let mut raw = raw;
                ecdsa_sig::normalize_low_s(c, &mut raw)?;
                match format {
                    SignatureFormat::Der => ecdsa_sig::raw_to_der(c, &raw)?,
                    SignatureFormat::Raw => raw,
                }
            }
            _ => raw,
        };
        Ok(KeySignature {
            signature,
            version: v,
            key_version_id: kid,
            algorithm: alg,
        })
    }

    /// Verifies against `version` (which must verify in its state), or
    /// against every version that may verify, newest first.
    ///
    /// `signatures` are alternatives (a webhook header may carry several):
    /// the input verifies when any one does. The work over the input is done
    /// once per version, not once per signature: an HMAC is computed once and
    /// compared with every tag, and a message is hashed once when several
    /// asymmetric signatures are checked. Repeats, and signatures whose
    /// length cannot be the algorithm's, are dropped before any of it.
    pub async fn verify(
        &self,
        name: &str,
        version: Option<u32>,
        input: Input,
        signatures: Vec<Vec<u8>>,
        format: SignatureFormat,
    ) -> Result<Verified> {
        let entry = self.usable(name)?;
        let now = self.clock.now();
        let (alg, candidates) = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_encryption_key(rec)?;
            let versions: Vec<u32> = match version {
                Some(v) => {
                    let s = rec.version(v)?.effective_state(now);
                    if !s.verifies() {
                        return Err(Error::precondition(format!(
                            "version {v} of key {name} is {} and does not verify",
                            s.name()
                        )));
                    }
                    vec![v]
                }
                None => rec
                    .versions
                    .iter()
                    .rev()
                    .filter(|r| r.effective_state(now).verifies())
                    .map(|r| r.version)
                    .collect(),
            };
            let c: Vec<(u32, Option<VersionMaterial>)> = versions
                .into_iter()
                .map(|v| (v, st.material.get(&v).cloned()))
                .collect();
            (rec.algorithm, c)
        };
        input.borrow().check(alg)?;
        let mut signatures = signatures;
        signatures.retain(|s| plausible_len(alg, format, s.len()));
        signatures.sort_unstable();
        signatures.dedup();
        if signatures.is_empty() {
            return Ok(Verified::invalid());
        }
        let input = match input {
            Input::Message(m) if signatures.len() > 1 && !alg.is_mac() => {
                match alg.hash().filter(|_| alg.accepts_digest()) {
                    Some(h) => Input::Digest(h.digest(&m)),
                    None => Input::Message(m),
                }
            }
            input => input,
        };
        let signatures = Arc::new(signatures);
        let any = |p: &PublicKey| -> Result<bool> {
            for s in signatures.iter() {
                if p.verify(input.borrow(), s, format)? {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        // A version that may verify but whose material is not open here
        // (an HSM failure, or another replica's version not yet visible):
        // "invalid" would tell the caller a genuine signature is bad.
        let mut unopened = None;
        for (v, m) in candidates {
            let Some(m) = m else {
                unopened.get_or_insert(v);
                continue;
            };
            let ok = match &m {
                VersionMaterial::Private(h) if alg.is_mac() => {
                    let (h, input, tags) = (h.clone(), input.clone(), signatures.clone());
                    self.call(Op::Verify, move || h.verify_mac(input.borrow(), &tags))
                        .await?
                }
                VersionMaterial::Private(h) => match h.public_key() {
                    Some(p) => any(p)?,
                    None => false,
                },
                VersionMaterial::Public(p) => any(p)?,
            };
            if ok {
                crate::telemetry::rpc::note_version(v);
                return Ok(Verified {
                    valid: true,
                    version: Some(v),
                    key_version_id: Some(crate::keys::version_id(name, v)),
                });
            }
        }
        if let Some(v) = unopened {
            return Err(Error::unavailable(format!(
                "version {v} of key {name} is not available; the signature was not checked against it"
            )));
        }
        Ok(Verified::invalid())
    }

    /// The public key of `version`, or of the ACTIVE version.
    pub fn public_key(&self, name: &str, version: Option<u32>) -> Result<Exported> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let st = entry.state.read();
        let rec = &st.record;
        refuse_symmetric(rec)?;
        let v = match version {
            Some(v) => v,
            None => rec
                .active()
                .map(|r| r.version)
                .ok_or_else(|| Error::precondition(format!("key {name} has no ACTIVE version")))?,
        };
        let state = rec.version(v)?.effective_state(now);
        if state == VersionState::Destroyed {
            return Err(Error::precondition(format!(
                "version {v} of key {name} is DESTROYED"
            )));
        }
        let key = st
            .material
            .get(&v)
            .and_then(VersionMaterial::public_key)
            .ok_or_else(|| {
                Error::unavailable(format!("version {v} of key {name} is not available"))
            })?;
        Ok(Exported {
            key,
            version: v,
            key_version_id: rec.version_id(v),
            state,
        })
    }

    /// A JWKS of the PENDING, ACTIVE and RETIRING versions, newest first,
    /// each with its certificate chain (`x5c`) when it has one.
    pub fn jwks(&self, name: &str) -> Result<serde_json::Value> {
        let entry = self.entry(name)?;
        let now = self.clock.now();
        let st = entry.state.read();
        let rec = &st.record;
        refuse_symmetric(rec)?;
        let keys: Vec<serde_json::Value> = rec
            .versions
            .iter()
            .rev()
            .filter(|r| r.effective_state(now).published())
            .filter_map(|r| {
                let p = st.material.get(&r.version)?.public_key()?;
                let mut jwk = p.to_jwk(&rec.version_id(r.version));
                crate::keys::cert::add_x5c(&mut jwk, &r.certificates);
                Some(jwk)
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

/// Whether a signature of `len` bytes could be one of `alg`'s in `format`:
/// HMAC tags and RSA signatures have one length, raw ECDSA twice the field
/// size, DER ECDSA between the shortest and the longest encoding of two
/// integers, Ed25519 64 bytes.
pub(super) fn plausible_len(alg: Algorithm, format: SignatureFormat, len: usize) -> bool {
    match (alg.family(), alg.curve()) {
        (Family::Hmac, _) => alg.hash().is_some_and(|h| h.output_len() == len),
        (Family::RsaPkcs1 | Family::RsaPss, _) => alg.rsa_bits() == Some(len * 8),
        (Family::Ecdsa, Some(c)) => match format {
            SignatureFormat::Raw => len == 2 * c.size(),
            // SEQUENCE { INTEGER r, INTEGER s }, each one byte at least and
            // at most the field size plus a zero byte; short-form lengths.
            SignatureFormat::Der => (8..=2 * c.size() + 8).contains(&len),
        },
        (Family::Ecdsa, None) => false,
        (Family::Ed25519, _) => len == 64,
        (Family::AesGcm, _) => false,
    }
}
