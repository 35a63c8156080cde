//! The one place the registry calls its backend and its store: every call
//! is timed (metrics and a trace span) and dispatched here, nowhere else.
//!
//! Where a call runs depends on the backend, never on the call site:
//!
//! * a backend that blocks (PKCS#11) runs every call, admin ones included,
//!   on its own threads ([`KeyBackend::dispatch`]), so when
//!   [`Registry::shutdown_backend`] has joined those threads no call is
//!   inside the module, and a call issued after that fails cleanly with the
//!   backend's `UNAVAILABLE`;
//! * a CPU-only backend (memory) is called inline, except the slow admin
//!   calls (RSA generation takes seconds even in memory), which it
//!   dispatches too (tokio's blocking pool by default).

use super::Registry;
use crate::error::Result;

/// What a backend or store call does: its name in metrics and traces and
/// whether it is slow on any backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// `KeyHandle::sign`.
    Sign,
    /// `KeyHandle::verify_mac`.
    Verify,
    /// `KeyHandle::encrypt`.
    Encrypt,
    /// `KeyHandle::decrypt`.
    Decrypt,
    /// `KeyBackend::generate`.
    Generate,
    /// `KeyBackend::import`.
    Import,
    /// `KeyHandle::export_wrapped`.
    Export,
    /// `KeyBackend::open`.
    Open,
    /// `KeyBackend::destroy`.
    Destroy,
    /// `KeyBackend::health` (not timed: readiness probes would swamp the
    /// metrics).
    Health,
    /// `KeyBackend::orphan_check`, at start-up (not timed).
    OrphanCheck,
}

impl Op {
    /// The operation label in metrics and spans; `None` for untimed calls.
    fn metric(self) -> Option<&'static str> {
        Some(match self {
            Op::Sign => "sign",
            Op::Verify => "verify",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Generate => "generate",
            Op::Import => "import",
            Op::Export => "export",
            Op::Open => "open",
            Op::Destroy => "destroy",
            Op::Health | Op::OrphanCheck => return None,
        })
    }

    /// Slow even on a CPU-only backend: never run on the async runtime.
    fn slow(self) -> bool {
        matches!(self, Op::Generate | Op::Import | Op::Export | Op::Destroy)
    }
}

impl Registry {
    /// Runs one backend or store call: timed, and dispatched where the
    /// backend's calls belong (see the module documentation).
    pub(super) async fn call<T: Send + 'static>(
        &self,
        op: Op,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let backend = &*self.backend;
        let run = async move {
            if backend.blocking() || op.slow() {
                crate::keys::dispatched(backend, f).await
            } else {
                f()
            }
        };
        match op.metric() {
            Some(name) => crate::telemetry::rpc::backend(self.kind(), name, run).await,
            None => run.await,
        }
    }

    /// The backend's name in metrics and traces.
    pub(super) fn kind(&self) -> &'static str {
        self.backend.name()
    }
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
