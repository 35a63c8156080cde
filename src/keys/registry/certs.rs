//! Certificates for key versions: a PKCS#10 request signed by the version's
//! key where it lives, the chain a CA returns attached to the version
//! (checked first), and the chain handed back to callers and published in
//! JWKS (`x5c`). The chain is part of the version's record, so replicas
//! sharing a registry see it as soon as it is stored.

use std::sync::Arc;
use std::time::SystemTime;

use super::{KeyEntry, Op, Registry, VersionMaterial};
use crate::error::{Error, Result};
use crate::keys::cert::{chain, csr, CsrSubject, LeafInfo};
use crate::keys::record::{KeyRecord, VersionState};

/// A certificate request made by a version.
#[derive(Debug, Clone)]
pub struct CertificateRequest {
    /// The version whose key signed it.
    pub version: u32,
    /// `NAME:vN`.
    pub key_version_id: String,
    /// The request, DER.
    pub der: Vec<u8>,
}

/// A version's certificate chain.
#[derive(Debug, Clone)]
pub struct CertificateChain {
    /// The version.
    pub version: u32,
    /// `NAME:vN`.
    pub key_version_id: String,
    /// DER certificates, leaf first.
    pub certificates: Vec<Vec<u8>>,
    /// What the leaf says.
    pub leaf: LeafInfo,
}

/// For the gauges: one version's leaf certificate.
#[derive(Debug, Clone)]
pub struct CertificateGauge {
    /// The key.
    pub key: String,
    /// The version.
    pub version: u32,
    /// The leaf's notAfter.
    pub not_after: SystemTime,
    /// Whether the version may still sign after notAfter: it is ACTIVE or
    /// PENDING and no rotation replaces it before then.
    pub outlived: bool,
}

/// `version`, or the ACTIVE version for `None`.
fn pick(rec: &KeyRecord, version: Option<u32>) -> Result<u32> {
    match version {
        Some(v) => rec.version(v).map(|r| r.version),
        None => rec
            .active()
            .map(|r| r.version)
            .ok_or_else(|| Error::precondition(format!("key {} has no ACTIVE version", rec.name))),
    }
}

fn refuse_symmetric(rec: &KeyRecord) -> Result<()> {
    if rec.algorithm.is_symmetric() {
        return Err(Error::invalid(format!(
            "key {} is {}: symmetric keys have no public key to certify",
            rec.name, rec.algorithm
        )));
    }
    Ok(())
}

impl Registry {
    /// A certificate request for `subject`, signed by version `version`
    /// of `name` (its ACTIVE one for `None`), which must be PENDING or
    /// ACTIVE and hold a private key.
    pub async fn certificate_request(
        &self,
        name: &str,
        version: Option<u32>,
        subject: &CsrSubject,
    ) -> Result<CertificateRequest> {
        let params = subject.params()?;
        let entry = self.usable(name)?;
        let (v, id, handle, public) = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_symmetric(rec)?;
            csr::check_algorithm(rec.algorithm)?;
            let v = pick(rec, version)?;
            let state = rec.version(v)?.effective_state(self.clock.now());
            if !matches!(state, VersionState::Pending | VersionState::Active) {
                return Err(Error::precondition(format!(
                    "version {v} of key {name} is {}: certificate requests are made by \
                     PENDING and ACTIVE versions",
                    state.name()
                )));
            }
            match st.material.get(&v) {
                Some(VersionMaterial::Private(h)) => {
                    let public = h.public_key().cloned().ok_or_else(|| {
                        Error::internal("a private key version has no public key")
                    })?;
                    (v, rec.version_id(v), h.clone(), public)
                }
                Some(VersionMaterial::Public(_)) => {
                    return Err(Error::precondition(format!(
                        "version {v} of key {name} holds only a public key: it cannot sign \
                         a certificate request"
                    )))
                }
                None => {
                    return Err(Error::unavailable(format!(
                        "version {v} of key {name} is not available"
                    )))
                }
            }
        };
        crate::telemetry::rpc::note_version(v);
        let der = self
            .call(Op::Sign, move || {
                csr::sign_request(&params, handle, &public)
            })
            .await?;
        tracing::info!(key = name, version = v, "certificate request made");
        Ok(CertificateRequest {
            version: v,
            key_version_id: id,
            der,
        })
    }

    /// Attaches `input` (PEM certificates or one DER certificate, leaf
    /// first) to version `version` of `name` (its ACTIVE one for `None`),
    /// replacing the chain it had, once [`chain::check_chain`] accepts it
    /// for the version's public key.
    pub async fn import_certificate_chain(
        &self,
        name: &str,
        version: Option<u32>,
        input: &[u8],
    ) -> Result<CertificateChain> {
        let certificates = chain::read_chain(input)?;
        let entry = self.entry(name)?;
        let (v, id, spki) = {
            let st = entry.state.read();
            let rec = &st.record;
            refuse_symmetric(rec)?;
            let v = pick(rec, version)?;
            let state = rec.version(v)?.effective_state(self.clock.now());
            if matches!(
                state,
                VersionState::DestroyScheduled | VersionState::Destroyed
            ) {
                return Err(Error::precondition(format!(
                    "version {v} of key {name} is {}: no certificate is attached to it",
                    state.name()
                )));
            }
            let public = st
                .material
                .get(&v)
                .and_then(VersionMaterial::public_key)
                .ok_or_else(|| {
                    Error::unavailable(format!("version {v} of key {name} is not available"))
                })?;
            (v, rec.version_id(v), public.spki_der().to_vec())
        };
        let leaf = chain::check_chain(&certificates, &spki, self.clock.now())?;
        let stored = certificates.clone();
        self.mutate(name, move |rec, _| {
            let r = rec
                .versions
                .iter_mut()
                .find(|r| r.version == v)
                .ok_or_else(|| Error::not_found(format!("version {v} not found")))?;
            r.certificates = stored;
            Ok(())
        })
        .await?;
        tracing::info!(
            key = name,
            version = v,
            serial = leaf.serial_hex.as_str(),
            "certificate chain attached"
        );
        Ok(CertificateChain {
            version: v,
            key_version_id: id,
            certificates,
            leaf,
        })
    }

    /// The chain attached to version `version` of `name` (its ACTIVE one
    /// for `None`); `NOT_FOUND` when it has none.
    pub fn certificate_chain(&self, name: &str, version: Option<u32>) -> Result<CertificateChain> {
        let entry = self.entry(name)?;
        let st = entry.state.read();
        let rec = &st.record;
        refuse_symmetric(rec)?;
        let v = pick(rec, version)?;
        let r = rec.version(v)?;
        if r.effective_state(self.clock.now()) == VersionState::Destroyed {
            return Err(Error::precondition(format!(
                "version {v} of key {name} is DESTROYED"
            )));
        }
        let leaf = r
            .certificates
            .first()
            .and_then(|d| chain::leaf_info(d))
            .ok_or_else(|| {
                Error::not_found(format!(
                    "version {v} of key {name} has no certificate chain (ImportCertificateChain \
                     attaches one)"
                ))
            })?;
        Ok(CertificateChain {
            version: v,
            key_version_id: rec.version_id(v),
            certificates: r.certificates.clone(),
            leaf,
        })
    }

    /// Every signing version's leaf certificate, for the gauges.
    pub fn certificate_gauges(&self, now: SystemTime) -> Vec<CertificateGauge> {
        let entries: Vec<Arc<KeyEntry>> = self.keys.read().values().cloned().collect();
        let mut out = Vec::new();
        for e in entries {
            let st = e.state.read();
            let rec = &st.record;
            let next = rec.next_rotation();
            for r in &rec.versions {
                let state = r.effective_state(now);
                if !state.published() {
                    continue;
                }
                let Some(leaf) = r.certificates.first().and_then(|d| chain::leaf_info(d)) else {
                    continue;
                };
                // An ACTIVE version signs until the policy replaces it
                // (for ever without a policy); a PENDING one at least as
                // long; a RETIRING one no more.
                let outlived = match state {
                    VersionState::Active | VersionState::Pending => {
                        next.is_none_or(|t| t > leaf.not_after)
                    }
                    _ => false,
                };
                out.push(CertificateGauge {
                    key: rec.name.clone(),
                    version: r.version,
                    not_after: leaf.not_after,
                    outlived,
                });
            }
        }
        out
    }
}
