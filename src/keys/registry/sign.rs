//! The read path: signing, verification and public key export. Each takes
//! the key's lock for a few instructions and uses the cached material
//! outside it.

use std::sync::Arc;

use super::{
    refuse_symmetric, Exported, Input, KeySignature, Op, Registry, Verified, VersionMaterial,
};
use crate::error::{Error, Result};
use crate::keys::ecdsa_sig::{self, SignatureFormat};
use crate::keys::record::VersionState;
use crate::keys::{Algorithm, Family, KeyHandle};

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

    /// Signs with the ACTIVE version and then every PENDING one (oldest
    /// first): for webhook formats that carry several signatures, so a
    /// receiver that already has the next secret accepts the request too.
    pub async fn sign_active_and_pending(
        &self,
        name: &str,
        input: Input,
        format: SignatureFormat,
    ) -> Result<Vec<KeySignature>> {
        let entry = self.usable(name)?;
        let now = self.clock.now();
        let (alg, signers) = {
            let st = entry.state.read();
            let rec = &st.record;
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
                .map(|r| r.version);
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
            out.push(
                self.sign_with(handle, alg, v, kid, input.clone(), format)
                    .await?,
            );
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
    pub async fn verify(
        &self,
        name: &str,
        version: Option<u32>,
        input: Input,
        signature: Vec<u8>,
        format: SignatureFormat,
    ) -> Result<Verified> {
        let entry = self.usable(name)?;
        let now = self.clock.now();
        let (alg, candidates) = {
            let st = entry.state.read();
            let rec = &st.record;
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
                VersionMaterial::Private(h) if alg.is_symmetric() => {
                    let (h, input, sig) = (h.clone(), input.clone(), signature.clone());
                    self.call(Op::Verify, move || h.verify_mac(input.borrow(), &sig))
                        .await?
                }
                VersionMaterial::Private(h) => match h.public_key() {
                    Some(p) => p.verify(input.borrow(), &signature, format)?,
                    None => false,
                },
                VersionMaterial::Public(p) => p.verify(input.borrow(), &signature, format)?,
            };
            if ok {
                crate::telemetry::rpc::note_version(v);
                return Ok(Verified {
                    valid: true,
                    version: Some(v),
                    key_version_id: Some(format!("{name}:v{v}")),
                });
            }
        }
        if let Some(v) = unopened {
            return Err(Error::unavailable(format!(
                "version {v} of key {name} is not available; the signature was not checked against it"
            )));
        }
        Ok(Verified {
            valid: false,
            version: None,
            key_version_id: None,
        })
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

    /// A JWKS of the PENDING, ACTIVE and RETIRING versions, newest first.
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
                Some(p.to_jwk(&rec.version_id(r.version)))
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}
