//! `signet bench --raw`: `C_Sign` alone, with nothing of signet in between.
//!
//! Why here, behind one hidden function, and not in `cli/`: a raw signer
//! needs a session outside the pool, the key's object, the token input
//! and the mechanism, all private to this backend. Building it in `cli/`
//! would make four internals public for a benchmark; here it is one
//! `#[doc(hidden)]` function, kept out of the signing path (`sign.rs`),
//! that hands back a closure, so no benchmark type leaks into the API.

use super::errors::map_err;
use super::key::find_key;
use super::mechanisms::sign_mechanism;
use super::sign::token_input;
use super::Pkcs11Backend;
use crate::error::{Error, Result};
use crate::keys::{Algorithm, SignInput};

/// One `C_Sign` per call over a prepared input, on a session of its own.
pub(crate) type RawSign = Box<dyn FnMut() -> Result<Vec<u8>> + Send>;

impl Pkcs11Backend {
    /// For `signet bench --raw` only: signs `message` (hashed once, here,
    /// for the algorithms that sign a digest) with the key under `label`
    /// on a session outside the pool (and its recovery).
    pub(crate) fn bench_raw_signer(
        &self,
        label: &str,
        alg: Algorithm,
        message: &[u8],
    ) -> Result<RawSign> {
        let ctx = self.pool.module().ctx();
        let session = ctx
            .open_rw_session(self.pool.slot())
            .map_err(|e| map_err("open session", e))?;
        let object = *find_key(&self.pool, &session, label, alg)
            .map_err(|e| map_err("find key", e))?
            .first()
            .ok_or_else(|| Error::not_found(format!("no key object {label}")))?;
        let data = token_input(alg, SignInput::Message(message))?.into_owned();
        sign_mechanism(alg)?;
        Ok(Box::new(move || {
            // Built per call, as the service does (a Mechanism is not Send).
            let mechanism = sign_mechanism(alg)?;
            session
                .sign(&mechanism, object, &data)
                .map_err(|e| map_err("sign", e))
        }))
    }
}
