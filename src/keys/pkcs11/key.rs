//! One key version on the token: its cached object handle, found again
//! when the cache is stale.
//!
//! The handle is found once and cached with the pool's handle generation
//! (see `pool`). After a failure drops the sessions the generation moves
//! on and every key finds its object again before its next use, so a
//! token that lost its objects' handles (SoftHSM2 after its token store
//! failed and the module was re-initialised, a token logged out or
//! re-inserted) costs one `C_FindObjects` per key, not a failed request.

use std::cell::Cell;
use std::sync::Arc;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;

use super::mechanisms::key_class;
use super::pool::Pool;
use crate::keys::{Algorithm, PublicKey};

/// The signing objects labelled `label` (one, unless the token is damaged).
pub(super) fn find_key(
    pool: &Pool,
    s: &Session,
    label: &str,
    alg: Algorithm,
) -> std::result::Result<Vec<ObjectHandle>, CkError> {
    pool.find(
        s,
        &[
            Attribute::Class(key_class(alg)),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
}

/// One version's key on the token: a cached object handle.
pub(super) struct Pkcs11Key {
    pub(super) alg: Algorithm,
    pub(super) label: String,
    /// The handle and the pool generation it was found in.
    pub(super) object: parking_lot::RwLock<(u64, ObjectHandle)>,
    pub(super) public: Option<PublicKey>,
    pub(super) pool: Arc<Pool>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key").field("alg", &self.alg).finish()
    }
}

impl Pkcs11Key {
    /// The key's object in the current generation, found again if the
    /// cached one is older (or `stale`: the token refused it).
    pub(super) fn object(
        &self,
        s: &Session,
        stale: bool,
        missing: &Cell<bool>,
    ) -> std::result::Result<ObjectHandle, CkError> {
        let generation = self.pool.generation();
        let (g, h) = *self.object.read();
        if g == generation && !stale {
            return Ok(h);
        }
        match find_key(&self.pool, s, &self.label, self.alg)?.as_slice() {
            [h] => {
                *self.object.write() = (generation, *h);
                Ok(*h)
            }
            // Not on a token that answers (another process destroyed it,
            // this session lost its login, or the token lost track of its
            // objects: the pool and `sign` check which).
            _ => {
                missing.set(true);
                Err(CkError::Pkcs11(
                    RvError::KeyHandleInvalid,
                    Function::FindObjects,
                ))
            }
        }
    }
}
