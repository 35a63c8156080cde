//! Wrapped export of shared secrets: a version of an HMAC or AES key
//! created exportable, wrapped to the recipient's RSA public key in the
//! scheme `ImportKey` takes (`keys::wrap`), so a counterparty that must
//! hold the same secret (a webhook HMAC secret, a partner's AES key) gets
//! it without it ever crossing the wire, or (on PKCS#11) signet's memory,
//! in the clear. No other key is exportable: the record says so at
//! creation, and the backend made every other key unextractable.

use super::{Op, Registry};
use crate::error::{Error, Result};
use crate::keys::record::VersionState;
use crate::keys::wrap::{OaepHash, Recipient};
use crate::keys::Algorithm;

/// One version, wrapped.
pub struct WrappedExport {
    /// The version exported.
    pub version: u32,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// OAEP part then key-wrap part (`keys::wrap`).
    pub wrapped: Vec<u8>,
    /// The OAEP hash used.
    pub hash: OaepHash,
}

impl std::fmt::Debug for WrappedExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedExport")
            .field("version", &self.version)
            .field("wrapped", &format_args!("{} bytes", self.wrapped.len()))
            .finish()
    }
}

impl Registry {
    /// Wraps `name`'s version `version` (its ACTIVE one for `None`) to
    /// `to`, with `hash` or the best the backend offers. The version must
    /// be ACTIVE, PENDING or RETIRING: a disabled one is not handed out.
    pub async fn export_wrapped(
        &self,
        name: &str,
        version: Option<u32>,
        to: Recipient,
        hash: Option<OaepHash>,
    ) -> Result<WrappedExport> {
        let entry = self.usable(name)?;
        let (v, alg, handle) = {
            let st = entry.state.read();
            let rec = &st.record;
            if !rec.exportable {
                return Err(Error::precondition(format!(
                    "key {name} was not created exportable: only HMAC and AES keys created with \
                     exportable = true can be exported, and asymmetric keys never"
                )));
            }
            let v = match version {
                Some(v) => v,
                None => rec.active().map(|r| r.version).ok_or_else(|| {
                    Error::precondition(format!("key {name} has no ACTIVE version"))
                })?,
            };
            let state = rec.version(v)?.effective_state(self.clock.now());
            if !matches!(
                state,
                VersionState::Active | VersionState::Pending | VersionState::Retiring
            ) {
                return Err(Error::precondition(format!(
                    "version {v} of key {name} is {}: only ACTIVE, PENDING and RETIRING \
                     versions are exported",
                    state.name()
                )));
            }
            // An exportable key holds generated versions only: never a
            // public key alone.
            let handle = super::cipher::material(name, v, st.material.get(&v))?;
            (v, rec.algorithm, handle)
        };
        crate::telemetry::rpc::note_version(v);
        let (wrapped, hash) = self
            .call(Op::Export, move || handle.export_wrapped(&to, hash))
            .await?;
        tracing::warn!(
            key = name,
            version = v,
            scheme = hash.scheme(),
            "key version exported, wrapped"
        );
        Ok(WrappedExport {
            version: v,
            algorithm: alg,
            wrapped,
            hash,
        })
    }
}
