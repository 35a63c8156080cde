//! The process-wide PKCS#11 module: loaded and `C_Initialize`d once per
//! path, shared by every backend in the process, and re-initialised when a
//! token cannot recover otherwise.
//!
//! Why re-initialise. Observed with SoftHSM2 2.6.1 (file object store),
//! with the token directory (or the whole `directories.tokendir`) moved
//! away, and equally when it comes back:
//!
//! * `C_Sign` with a cached key handle: `CKR_KEY_HANDLE_INVALID` /
//!   `CKR_OBJECT_HANDLE_INVALID`;
//! * `C_FindObjects`: success with **no** objects (so "not found" cannot
//!   be trusted while the token fails);
//! * `C_GetTokenInfo`, `C_GetSlotList`, creating a token object
//!   (`C_GenerateKey`, `C_CreateObject`): `CKR_GENERAL_ERROR`;
//! * `C_GetSessionInfo`, `C_OpenSession`, `C_GenerateRandom`, `C_Digest`,
//!   session objects: still succeed, and the login stays (`C_Login` says
//!   `CKR_USER_ALREADY_LOGGED_IN`).
//!
//! Once SoftHSM2 has seen its token directory fail it marks the token
//! invalid for good (`OSToken::valid`, never reset): new sessions and a new
//! login do not help, only `C_Finalize` + `C_Initialize`, after which the
//! token, its objects (with new handles) and the login work again. While
//! the directory is missing `C_Initialize` itself fails with
//! `CKR_GENERAL_ERROR`; calls made then fail with
//! `CKR_CRYPTOKI_NOT_INITIALIZED`, and the next `C_Initialize` after the
//! directory is back succeeds.
//!
//! `C_Finalize` is process-wide and invalidates every session of every
//! backend on the module, and session handle numbers are reused after it:
//! a stale `Session` closed later could close someone else's new session.
//! So [`Module::reinitialize`] waits, behind [`Module::gate`], until no
//! pool is inside the module, closes every pool's sessions itself, and
//! only then finalises and initialises again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::errors::map_err;
use super::pool::Pool;
use super::TokenSelector;
use crate::error::{Error, Result};

/// One loaded module.
pub(super) struct Module {
    path: PathBuf,
    ctx: Pkcs11,
    /// Read: a call is using the module's sessions. Write: re-initialising.
    gate: RwLock<()>,
    /// Bumped by every re-initialisation: pools that see a new epoch find
    /// their slot again.
    epoch: AtomicU64,
    /// False after a `C_Initialize` that failed, until one succeeds.
    initialized: Mutex<bool>,
    pools: Mutex<Vec<Weak<Pool>>>,
    /// How often [`module`] handed this module out: a module handed out
    /// once, to the backend opening it now, has no other user to disturb.
    handed_out: AtomicU64,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The module at `path`, loaded and initialised once per process. A
/// failed `C_Initialize` is reported as `token`'s problem, if given: that
/// is what it is for SoftHSM2 (a missing or unreadable token directory).
pub(super) fn module(path: &Path, token: Option<&TokenSelector>) -> Result<Arc<Module>> {
    static MODULES: std::sync::OnceLock<Mutex<Vec<Arc<Module>>>> = std::sync::OnceLock::new();
    let mut modules = MODULES.get_or_init(Default::default).lock();
    if let Some(m) = modules.iter().find(|m| m.path == path) {
        m.handed_out.fetch_add(1, Ordering::AcqRel);
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        Error::unavailable(format!(
            "cannot load PKCS#11 module {}: {e}",
            path.display()
        ))
    })?;
    match ctx.initialize(init_args()) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            let Some(want) = token else {
                return Err(map_err("C_Initialize", e));
            };
            let rv = match &e {
                CkError::Pkcs11(rv, _) => format!("{rv:?}"),
                e => e.to_string(),
            };
            return Err(Error::unavailable(format!(
                "PKCS#11 token with {want} not found or not readable: module {} failed to \
                 initialise ({rv}); check that the token store exists and this user can read \
                 it (SoftHSM2: directories.tokendir in SOFTHSM2_CONF)",
                path.display()
            )));
        }
    }
    let m = Arc::new(Module {
        path: path.to_path_buf(),
        ctx,
        gate: RwLock::new(()),
        epoch: AtomicU64::new(0),
        initialized: Mutex::new(true),
        pools: Mutex::new(Vec::new()),
        handed_out: AtomicU64::new(1),
    });
    modules.push(m.clone());
    Ok(m)
}

/// The process-wide context for a module (for tests and tools that make
/// their own sessions; signet's backends go through [`module`]).
pub fn module_context(path: &Path) -> Result<Pkcs11> {
    module(path, None).map(|m| m.ctx.clone())
}

impl Module {
    pub(super) fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether anything else in this process may use the module: a backend
    /// holding a pool, or anyone it was handed out to besides the caller
    /// (tests and tools hold sessions of their own, which a
    /// re-initialisation would break).
    pub(super) fn in_use(&self) -> bool {
        self.handed_out.load(Ordering::Acquire) > 1
            || self.pools.lock().iter().any(|p| p.strong_count() > 0)
    }

    /// The slot of the token `want` names, when a backend opens it. A
    /// token SoftHSM2 does not list may be there all the same: SoftHSM2
    /// rewrites a token's file whenever a session logs in, and a process
    /// that initialises the module at that moment does not see the token
    /// (several replicas starting on one token do this to each other). So
    /// a token not found is looked for again after a re-initialisation,
    /// which reads the token store afresh: three more times over about two
    /// seconds, and only while nothing else in this process uses the
    /// module (in `signet serve`, the one backend is its only user). A
    /// token that is really missing is reported after those two seconds.
    pub(super) fn find_token_at_start(&self, want: &TokenSelector) -> Result<Slot> {
        let mut pause = std::time::Duration::from_millis(250);
        let mut again = 3;
        loop {
            let found = {
                let _in = self.enter();
                self.find_token(want)
            };
            match found {
                Err(e) if again > 0 && !self.in_use() => {
                    tracing::warn!(
                        error = %e.message(),
                        "PKCS#11 token not listed; reading the token store again"
                    );
                    std::thread::sleep(pause);
                    pause *= 2;
                    again -= 1;
                    self.reinitialize(self.epoch())?;
                }
                r => return r,
            }
        }
    }

    /// Held while a call uses sessions of this module.
    pub(super) fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read()
    }

    pub(super) fn register(&self, pool: &Arc<Pool>) {
        let mut pools = self.pools.lock();
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    /// `C_Finalize` + `C_Initialize`, unless another pool already did it
    /// since `seen` (the epoch its caller last knew). Must not be called
    /// from inside [`Module::enter`].
    pub(super) fn reinitialize(&self, seen: u64) -> Result<()> {
        let _g = self.gate.write();
        let mut initialized = self.initialized.lock();
        if self.epoch() != seen && *initialized {
            return Ok(());
        }
        // No call is inside the module now: close every session while the
        // handles still mean what they say.
        let pools: Vec<Arc<Pool>> = self.pools.lock().iter().filter_map(Weak::upgrade).collect();
        for p in &pools {
            p.close_all();
        }
        drop(pools);
        if *initialized {
            if let Err(e) = self.ctx.clone().finalize() {
                tracing::warn!(error = %e, "C_Finalize failed; initialising again anyway");
            }
            *initialized = false;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match self.ctx.initialize(init_args()) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
                *initialized = true;
                tracing::warn!(module = %self.path.display(), "PKCS#11 module re-initialised");
                Ok(())
            }
            Err(e) => Err(map_err("C_Initialize", e)),
        }
    }

    /// The slot holding the token `want` selects. A token that is not
    /// listed, or whose store cannot be read, is named in the error.
    pub(super) fn find_token(&self, want: &TokenSelector) -> Result<Slot> {
        let unreadable = |e: CkError| {
            Error::unavailable(format!(
                "PKCS#11 token with {want} not readable: the module cannot list its tokens"
            ))
            .with_source(e)
        };
        let slots = self.ctx.get_slots_with_token().map_err(unreadable)?;
        let mut found = Vec::new();
        // Another token in the same module that cannot be read (being
        // initialised by another process, or broken) is not this one's
        // problem: it is skipped, and reported only if no slot matched.
        let mut unreadable_slot = None;
        for slot in slots {
            let info = match self.ctx.get_token_info(slot) {
                Ok(info) => info,
                Err(e) => {
                    tracing::debug!(?slot, error = %e, "PKCS#11 slot's token info unreadable; skipped");
                    unreadable_slot = Some(e);
                    continue;
                }
            };
            let hit = match want {
                TokenSelector::Label(l) => info.label().trim_end() == l,
                TokenSelector::Serial(s) => info.serial_number().trim_end() == s,
            };
            if hit {
                found.push(slot);
            }
        }
        match found.as_slice() {
            [slot] => Ok(*slot),
            [] if unreadable_slot.is_some() => {
                Err(unreadable(unreadable_slot.expect("checked just above")))
            }
            [] => Err(Error::unavailable(format!(
                "no PKCS#11 token with {want} (not present, or its files are missing or unreadable)"
            ))),
            _ => Err(Error::unavailable(format!(
                "{} PKCS#11 tokens match {want}; select by serial instead",
                found.len()
            ))),
        }
    }
}
