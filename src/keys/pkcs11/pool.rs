//! One login, a bounded pool of sessions checked out per operation.
//!
//! PKCS#11 logs in the application, not a session: every session opened
//! after `C_Login` shares the login for as long as one session stays open.
//! The pool keeps one session (the anchor) open for the life of the backend
//! so the login is never lost by accident, and opens up to `max` more on
//! demand. A session that fails with a device or session error is dropped,
//! not returned; the next checkout opens a fresh one (logging in again if
//! the token was reset), which is how the backend recovers on its own.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

pub(super) struct Pool {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    max: usize,
    wait: std::time::Duration,
    state: Mutex<PoolState>,
    available: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    /// Sessions open (idle or checked out), the anchor excluded.
    open: usize,
    /// Keeps the login alive; `None` after a device failure until reopened.
    anchor: Option<Session>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PIN is never printed.
        f.debug_struct("Pool")
            .field("slot", &self.slot)
            .field("max", &self.max)
            .finish()
    }
}

/// True for errors that say the session or the token is gone, as opposed
/// to a refused operation.
pub(super) fn is_device_error(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::SlotIdInvalid,
            _
        )
    )
}

/// A PKCS#11 error as a signet error: device and session failures are
/// `UNAVAILABLE`; anything else is `INTERNAL` (the cryptoki text, which
/// names the function and return value and never data, stays in the log).
pub(super) fn map_err(what: &'static str, e: CkError) -> Error {
    if is_device_error(&e) {
        Error::unavailable(format!("HSM unavailable during {what}")).with_source(e)
    } else {
        Error::internal(format!("PKCS#11 {what} failed: {e}"))
    }
}

impl Pool {
    /// Opens the anchor session and logs in once. A wrong PIN is reported
    /// at once and never retried (retries could lock the token).
    pub(super) fn new(
        ctx: Pkcs11,
        slot: Slot,
        pin: AuthPin,
        max: usize,
        wait: std::time::Duration,
    ) -> Result<Self> {
        let anchor = ctx
            .open_rw_session(slot)
            .map_err(|e| map_err("open session", e))?;
        login(&anchor, &pin)?;
        crate::telemetry::metrics::get().session_pool_size(max.max(1));
        Ok(Self {
            ctx,
            slot,
            pin,
            max: max.max(1),
            wait,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                anchor: Some(anchor),
            }),
            available: Condvar::new(),
        })
    }

    /// Runs `f` with a session. A device or session error, or a refusal on
    /// a session that is no longer logged in (the application was logged
    /// out under us), drops every session (and the login) and `f` is tried
    /// once more on a fresh session after logging in again: a token that
    /// was reset costs no failed request. If that fails too, the caller
    /// gets `UNAVAILABLE`.
    pub(super) fn with<T>(
        &self,
        what: &'static str,
        f: impl Fn(&Session) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
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
                Err(e) if is_device_error(&e) || !logged_in(&session) => {
                    self.discard(session);
                    if retried {
                        return Err(if is_device_error(&e) {
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

    fn checkout(&self) -> Result<Session> {
        let deadline = std::time::Instant::now() + self.wait;
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

    /// Opens a session, re-establishing the anchor and the login if a
    /// device failure lost them.
    fn open(&self, need_anchor: bool) -> Result<Session> {
        if need_anchor {
            let anchor = self
                .ctx
                .open_rw_session(self.slot)
                .map_err(|e| map_err("open session", e))?;
            login(&anchor, &self.pin)?;
            self.state.lock().anchor = Some(anchor);
        }
        let s = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| map_err("open session", e))?;
        Ok(s)
    }

    pub(super) fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    pub(super) fn slot(&self) -> Slot {
        self.slot
    }

    fn checkin(&self, s: Session) {
        self.state.lock().idle.push(s);
        self.available.notify_one();
    }

    fn discard(&self, s: Session) {
        drop(s);
        let mut st = self.state.lock();
        st.open -= 1;
        // The token may have been reset: drop every session, the anchor too,
        // so the next checkout logs in again.
        st.open -= st.idle.len();
        st.idle.clear();
        st.anchor = None;
        drop(st);
        self.available.notify_all();
    }

    /// Probes the token with a session round trip; recovers the pool when
    /// the token is back.
    pub(super) fn health(&self) -> Result<()> {
        self.with("health check", |s| s.get_session_info().map(|_| ()))
    }
}

fn logged_in(session: &Session) -> bool {
    use cryptoki::session::SessionState;
    session.get_session_info().is_ok_and(|i| {
        matches!(
            i.session_state(),
            SessionState::RoUser | SessionState::RwUser
        )
    })
}

fn login(session: &Session, pin: &AuthPin) -> Result<()> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => Err(
            Error::unavailable("PKCS#11 login refused: wrong PIN (not retried)"),
        ),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Error::unavailable(
            "PKCS#11 login refused: the user PIN is locked",
        )),
        Err(e) => Err(map_err("login", e)),
    }
}
