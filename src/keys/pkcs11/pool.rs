//! One login, a bounded pool of sessions checked out per operation, and
//! the token's health.
//!
//! PKCS#11 logs in the application, not a session: every session opened
//! after `C_Login` shares the login for as long as one session stays open.
//! The pool keeps one session (the anchor) open so the login is never lost
//! by accident, and opens up to `max` more on demand.
//!
//! Failures (see `errors` for the classes):
//!
//! * A token-class error (or a refusal on a session that is no longer
//!   logged in) drops every session and the login, bumps the handle
//!   [`Pool::generation`] (every cached object handle is found again before
//!   its next use) and tries once more on a fresh session: a token that was
//!   logged out or reset costs no failed request.
//! * If the fresh session fails too, the token is *failed*: the caller gets
//!   `UNAVAILABLE`, [`Pool::health`] reports the failure (readiness goes
//!   NOT_SERVING), and calls fail fast with `UNAVAILABLE` without touching
//!   the token, except for one recovery attempt per [`RETRY`]: drop the
//!   sessions, probe the token (`C_GetTokenInfo`, a logged-in session);
//!   if that fails, re-initialise the module (`module`: SoftHSM2 needs it)
//!   and probe again. The first probe that passes ends the failure.
//! * A login refused for the PIN is never retried (retries could lock the
//!   token): the backend stays failed until restarted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::{Condvar, Mutex};

use super::errors::{is_token_failure, map_err, unavailable};
use super::module::Module;
use super::TokenSelector;
use crate::error::{Error, Result};

/// Least time between two recovery attempts of a failed token.
pub(super) const RETRY: Duration = Duration::from_millis(500);

/// Least time between two re-initialisations for a key object missing on
/// a token that answers (see [`Pool::object_missing`]).
const MISSING_RETRY: Duration = Duration::from_secs(3);

pub(super) struct Pool {
    module: Arc<Module>,
    token: TokenSelector,
    pin: AuthPin,
    max: usize,
    wait: Duration,
    state: Mutex<PoolState>,
    available: Condvar,
    /// Bumped whenever the sessions are dropped after a failure: object
    /// handles found before are not trusted after it.
    generation: AtomicU64,
    /// The token is failed (see the module documentation).
    failed: AtomicBool,
    /// The PIN was refused: never log in again.
    pin_refused: AtomicBool,
    /// Held by the one recovery attempt running; the last attempt's time.
    recovery: Mutex<Option<Instant>>,
    /// The last re-initialisation for a missing key object.
    missing: Mutex<Option<Instant>>,
}

struct PoolState {
    idle: Vec<Session>,
    /// Sessions open (idle or checked out), the anchor excluded.
    open: usize,
    /// Keeps the login alive; `None` after a failure until reopened.
    anchor: Option<Session>,
    slot: Slot,
    /// The module epoch `slot` was found in.
    epoch: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PIN is never printed.
        f.debug_struct("Pool")
            .field("token", &self.token)
            .field("max", &self.max)
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Pool {
    /// Opens the anchor session and logs in once. A wrong PIN is reported
    /// at once and never retried.
    pub(super) fn new(
        module: Arc<Module>,
        token: TokenSelector,
        slot: Slot,
        pin: AuthPin,
        max: usize,
        wait: Duration,
    ) -> Result<Arc<Self>> {
        let anchor = {
            let _in = module.enter();
            let anchor = module
                .ctx()
                .open_rw_session(slot)
                .map_err(|e| map_err("open session", e))?;
            login(&anchor, &pin).map_err(|e| login_error(e).0)?;
            anchor
        };
        crate::telemetry::metrics::get().session_pool_size(max.max(1));
        let epoch = module.epoch();
        let pool = Arc::new(Self {
            module: module.clone(),
            token,
            pin,
            max: max.max(1),
            wait,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                anchor: Some(anchor),
                slot,
                epoch,
            }),
            available: Condvar::new(),
            generation: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            pin_refused: AtomicBool::new(false),
            recovery: Mutex::new(None),
            missing: Mutex::new(None),
        });
        module.register(&pool);
        Ok(pool)
    }

    /// Runs `f` with a session (see the module documentation for what
    /// happens on failures).
    pub(super) fn with<T>(
        &self,
        what: &'static str,
        f: impl Fn(&Session) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        self.recover_if_failed(what)?;
        let _in = self.module.enter();
        let mut retried = false;
        let m = crate::telemetry::metrics::get();
        loop {
            let session = self.checkout()?;
            m.session_use(1);
            let result = f(&session);
            m.session_use(-1);
            match result {
                Ok(v) => {
                    self.checkin(session);
                    return Ok(v);
                }
                Err(e) if is_token_failure(&e) || !logged_in(&session) => {
                    self.discard(session);
                    if retried {
                        self.mark_failed(what, &e);
                        return Err(if is_token_failure(&e) {
                            map_err(what, e)
                        } else {
                            Error::unavailable(format!("HSM login lost during {what}"))
                                .with_source(e)
                        });
                    }
                    tracing::warn!(error = %e, operation = what, "PKCS#11 session or login lost; reopening");
                    retried = true;
                }
                Err(e) => {
                    self.checkin(session);
                    return Err(map_err(what, e));
                }
            }
        }
    }

    /// The handle generation: a handle found under another one is stale.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `C_FindObjects`, except that finding nothing on a token that does
    /// not answer `C_GetTokenInfo` is that token's error: SoftHSM2 finds
    /// nothing, successfully, while its token directory is gone.
    pub(super) fn find(
        &self,
        s: &Session,
        template: &[Attribute],
    ) -> std::result::Result<Vec<ObjectHandle>, CkError> {
        let found = s.find_objects(template)?;
        if found.is_empty() {
            self.check_token()?;
        }
        Ok(found)
    }

    /// A key the registry knows is not on a token that answers. Either it
    /// was destroyed (by another process), or the token lost track of its
    /// objects: SoftHSM2 never shows an object again whose file failed
    /// once (moved away and back, unreadable for a while), even though
    /// the token itself answers, until the module is re-initialised. So
    /// re-initialise, at most once per [`MISSING_RETRY`]; true if it was
    /// done and the caller should look once more. Must not be called from
    /// inside [`Pool::with`].
    pub(super) fn object_missing(&self) -> bool {
        {
            let mut last = self.missing.lock();
            if last.is_some_and(|t| t.elapsed() < MISSING_RETRY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        tracing::warn!(
            token = %self.token,
            "a key object is missing on a token that answers; re-initialising the module \
             in case the token lost track of its objects"
        );
        match self.module.reinitialize(self.module.epoch()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "PKCS#11 module re-initialisation failed");
                false
            }
        }
    }

    /// Does the token answer? (`C_GetTokenInfo` reads SoftHSM2's token file.)
    pub(super) fn check_token(&self) -> std::result::Result<(), CkError> {
        let slot = self.state.lock().slot;
        self.module.ctx().get_token_info(slot).map(|_| ())
    }

    fn mark_failed(&self, what: &'static str, e: &CkError) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(
                error = %e, operation = what,
                "PKCS#11 token failing: calls answer UNAVAILABLE and readiness is off until it recovers"
            );
        }
    }

    fn fail(&self, what: &'static str, e: CkError) -> Error {
        if is_token_failure(&e) {
            self.mark_failed(what, &e);
        }
        map_err(what, e)
    }

    /// While the token is failed: one recovery attempt per [`RETRY`]; any
    /// other call fails at once.
    fn recover_if_failed(&self, what: &'static str) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.pin_refused.load(Ordering::Acquire) {
            return Err(Error::unavailable(
                "PKCS#11 login refused for the configured PIN (not retried); restart signet",
            ));
        }
        let Some(mut last) = self.recovery.try_lock() else {
            return Err(unavailable(what));
        };
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if last.is_some_and(|t| t.elapsed() < RETRY) {
            return Err(unavailable(what));
        }
        *last = Some(Instant::now());
        let seen = self.module.epoch();
        // Sessions from before the failure are not trusted; a probe on
        // fresh ones is enough when the token only lost sessions or login.
        self.close_all();
        let r = self.probe().or_else(|e| {
            if self.pin_refused.load(Ordering::Acquire) {
                return Err(e);
            }
            tracing::debug!(error = %e, "PKCS#11 token still failing; re-initialising the module");
            self.module.reinitialize(seen)?;
            self.probe()
        });
        match r {
            Ok(()) => {
                self.failed.store(false, Ordering::Release);
                tracing::warn!(token = %self.token, "PKCS#11 token recovered: sessions, login and key handles renewed");
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = %e, "PKCS#11 token recovery failed; retrying");
                Err(unavailable(what).with_source(e))
            }
        }
    }

    /// A logged-in session on a token that answers, or why not.
    fn probe(&self) -> Result<()> {
        let _in = self.module.enter();
        let s = self.checkout()?;
        let r = self.check_token().and_then(|()| s.get_session_info());
        match r {
            Ok(_) if logged_in(&s) => {
                self.checkin(s);
                Ok(())
            }
            Ok(_) => {
                self.discard(s);
                Err(Error::unavailable("HSM login lost"))
            }
            Err(e) => {
                self.discard(s);
                Err(map_err("health check", e))
            }
        }
    }

    fn checkout(&self) -> Result<Session> {
        let deadline = crate::bounds::deadline(self.wait);
        let mut waited = false;
        let mut st = self.state.lock();
        loop {
            if let Some(s) = st.idle.pop() {
                return Ok(s);
            }
            if st.open < self.max {
                st.open += 1;
                let need_anchor = st.anchor.is_none();
                drop(st);
                return match self.open(need_anchor) {
                    Ok(s) => Ok(s),
                    Err(e) => {
                        self.state.lock().open -= 1;
                        self.available.notify_one();
                        Err(e)
                    }
                };
            }
            if !waited {
                waited = true;
                crate::telemetry::metrics::get().session_wait(false);
            }
            if self.available.wait_until(&mut st, deadline).timed_out() {
                crate::telemetry::metrics::get().session_wait(true);
                return Err(Error::unavailable(
                    "HSM session pool exhausted: every session stayed busy past the wait",
                ));
            }
        }
    }

    /// Opens a session, re-establishing the anchor and the login (and,
    /// after a module re-initialisation, finding the slot again) if a
    /// failure lost them.
    fn open(&self, need_anchor: bool) -> Result<Session> {
        let ctx = self.module.ctx();
        if need_anchor {
            if self.pin_refused.load(Ordering::Acquire) {
                return Err(Error::unavailable("PKCS#11 login refused (not retried)"));
            }
            let epoch = self.module.epoch();
            if self.state.lock().epoch != epoch {
                let slot = self.module.find_token(&self.token)?;
                let mut st = self.state.lock();
                st.slot = slot;
                st.epoch = epoch;
            }
            let slot = self.state.lock().slot;
            let anchor = ctx
                .open_rw_session(slot)
                .map_err(|e| self.fail("open session", e))?;
            if let Err(e) = login(&anchor, &self.pin) {
                if is_token_failure(&e) {
                    self.mark_failed("login", &e);
                }
                let (err, refused) = login_error(e);
                if refused {
                    self.pin_refused.store(true, Ordering::Release);
                    self.failed.store(true, Ordering::Release);
                    tracing::error!(token = %self.token, "PKCS#11 login refused for the configured PIN; not retried until restart");
                }
                return Err(err);
            }
            self.state.lock().anchor = Some(anchor);
        }
        let slot = self.state.lock().slot;
        ctx.open_rw_session(slot)
            .map_err(|e| self.fail("open session", e))
    }

    pub(super) fn module(&self) -> &Arc<Module> {
        &self.module
    }

    pub(super) fn slot(&self) -> Slot {
        self.state.lock().slot
    }

    fn checkin(&self, s: Session) {
        self.state.lock().idle.push(s);
        self.available.notify_one();
    }

    fn discard(&self, s: Session) {
        drop(s);
        self.state.lock().open -= 1;
        self.close_all();
    }

    /// Drops every idle session and the anchor (and with it the login), so
    /// the next checkout logs in again, and makes every cached object
    /// handle stale. Sessions checked out now are dropped when they fail.
    pub(super) fn close_all(&self) {
        let mut st = self.state.lock();
        st.open -= st.idle.len();
        let idle = std::mem::take(&mut st.idle);
        let anchor = st.anchor.take();
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(st);
        drop(idle);
        drop(anchor);
        self.available.notify_all();
    }

    /// Fails while the token is failed (trying to recover it at most once
    /// per [`RETRY`]); otherwise probes it: `C_GetTokenInfo` and a
    /// logged-in session, through [`Pool::with`] so a lost session or
    /// login is renewed rather than reported.
    pub(super) fn health(&self) -> Result<()> {
        self.with("health check", |s| {
            self.check_token()?;
            s.get_session_info().map(|_| ())
        })
    }
}

pub(super) fn logged_in(session: &Session) -> bool {
    use cryptoki::session::SessionState;
    session.get_session_info().is_ok_and(|i| {
        matches!(
            i.session_state(),
            SessionState::RoUser | SessionState::RwUser
        )
    })
}

fn login(session: &Session, pin: &AuthPin) -> std::result::Result<(), CkError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A failed login as a signet error, and whether the PIN was refused
/// (then it is never tried again: retries could lock the token).
fn login_error(e: CkError) -> (Error, bool) {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _) => (
            Error::unavailable("PKCS#11 login refused: wrong PIN (not retried)"),
            true,
        ),
        CkError::Pkcs11(RvError::PinLocked, _) => (
            Error::unavailable("PKCS#11 login refused: the user PIN is locked"),
            true,
        ),
        e => (map_err("login", e), false),
    }
}
