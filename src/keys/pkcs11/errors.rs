//! What a PKCS#11 return value means for signet, and the one place a
//! cryptoki error becomes a signet error.
//!
//! Three classes:
//!
//! * [`Class::Token`]: the device, the token, the session or the login is
//!   gone or broken (`CKR_GENERAL_ERROR`, `CKR_FUNCTION_FAILED`,
//!   `CKR_DEVICE_*`, `CKR_TOKEN_*`, `CKR_SESSION_*`, `CKR_USER_NOT_LOGGED_IN`,
//!   `CKR_CRYPTOKI_NOT_INITIALIZED`, vendor codes, ...). The pool drops its
//!   sessions, and if a fresh session fails too, marks the token failed
//!   (readiness off) and recovers it (see `pool`).
//! * [`Class::Handle`]: an object handle is not valid (any more). The
//!   caller finds the object again; if it cannot, the error stands.
//! * [`Class::Refused`]: the token refused this one operation (bad
//!   template, mechanism, data): a bug of ours or a bad request.
//!
//! Token and handle errors are `UNAVAILABLE` with a short fixed text; the
//! cryptoki text (function and return value, never data) goes to the
//! server log only. Refusals stay `INTERNAL`, as before.

use cryptoki::error::{Error as CkError, RvError};

use crate::error::Error;

/// See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Token,
    Handle,
    Refused,
}

/// The class of a cryptoki error.
pub(super) fn classify(e: &CkError) -> Class {
    let CkError::Pkcs11(rv, _) = e else {
        // Library loading, null function pointers, conversions: ours.
        return Class::Refused;
    };
    match rv {
        RvError::KeyHandleInvalid
        | RvError::ObjectHandleInvalid
        | RvError::WrappingKeyHandleInvalid
        | RvError::UnwrappingKeyHandleInvalid => Class::Handle,
        RvError::GeneralError
        | RvError::FunctionFailed
        | RvError::HostMemory
        | RvError::Cancel
        | RvError::FunctionCanceled
        | RvError::CantLock
        | RvError::MutexBad
        | RvError::MutexNotLocked
        | RvError::DeviceError
        | RvError::DeviceMemory
        | RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::TokenWriteProtected
        | RvError::SlotIdInvalid
        | RvError::SessionClosed
        | RvError::SessionCount
        | RvError::SessionHandleInvalid
        | RvError::SessionReadOnly
        | RvError::SessionExists
        | RvError::SessionReadOnlyExists
        | RvError::SessionReadWriteSoExists
        | RvError::SessionParallelNotSupported
        // A session left in the middle of another operation is unusable.
        | RvError::OperationActive
        | RvError::OperationNotInitialized
        | RvError::UserNotLoggedIn
        | RvError::UserPinNotInitialized
        | RvError::UserAnotherAlreadyLoggedIn
        | RvError::PinExpired
        | RvError::PinLocked
        | RvError::CryptokiNotInitialized
        | RvError::FipsSelfTestFailed
        | RvError::SavedStateInvalid
        // Network HSMs report lost connections and device faults in
        // vendor codes; a code cryptoki does not know is no caller's fault.
        | RvError::VendorDefined(_)
        | RvError::UnknownErrorCode(_) => Class::Token,
        _ => Class::Refused,
    }
}

/// True for errors that say the device, token, session or login is gone.
pub(super) fn is_token_failure(e: &CkError) -> bool {
    classify(e) == Class::Token
}

/// A PKCS#11 error as a signet error: token and handle failures are
/// `UNAVAILABLE` with a fixed text; refusals are `INTERNAL`. The cryptoki
/// text is the private source either way (logged, never sent).
pub(super) fn map_err(what: &'static str, e: CkError) -> Error {
    match classify(&e) {
        Class::Token => unavailable(what).with_source(e),
        Class::Handle => {
            Error::unavailable(format!("HSM key object unavailable during {what}")).with_source(e)
        }
        Class::Refused => Error::internal(format!("PKCS#11 {what} failed: {e}")),
    }
}

/// The error for an operation refused while the token is failing.
pub(super) fn unavailable(what: &'static str) -> Error {
    Error::unavailable(format!("HSM unavailable during {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use cryptoki::context::Function;

    fn rv(r: RvError) -> CkError {
        CkError::Pkcs11(r, Function::Sign)
    }

    #[test]
    fn token_session_login_and_device_failures_are_unavailable() {
        for r in [
            RvError::GeneralError,
            RvError::FunctionFailed,
            RvError::DeviceError,
            RvError::DeviceMemory,
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::TokenNotRecognized,
            RvError::TokenWriteProtected,
            RvError::SessionHandleInvalid,
            RvError::SessionClosed,
            RvError::SessionCount,
            RvError::UserNotLoggedIn,
            RvError::CryptokiNotInitialized,
            RvError::SlotIdInvalid,
            RvError::OperationActive,
            RvError::VendorDefined(0x8000_0001),
            RvError::UnknownErrorCode(0x0000_0fff),
        ] {
            assert_eq!(classify(&rv(r)), Class::Token, "{r:?}");
            let e = map_err("sign", rv(r));
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{r:?}");
            // A short fixed text: nothing from cryptoki reaches the caller.
            assert_eq!(e.message(), "HSM unavailable during sign", "{r:?}");
            let status = e.into_status("req-1");
            assert_eq!(status.code(), tonic::Code::Unavailable);
            assert!(!status.message().contains("CKR"), "{}", status.message());
            assert!(!status.message().contains("Sign"), "{}", status.message());
        }
    }

    #[test]
    fn handle_errors_are_unavailable_but_do_not_fail_the_token() {
        for r in [RvError::KeyHandleInvalid, RvError::ObjectHandleInvalid] {
            assert_eq!(classify(&rv(r)), Class::Handle);
            assert!(!is_token_failure(&rv(r)));
            let e = map_err("sign", rv(r));
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert_eq!(e.message(), "HSM key object unavailable during sign");
        }
    }

    #[test]
    fn refusals_stay_internal_without_the_cryptoki_text() {
        for r in [
            RvError::DataInvalid,
            RvError::DataLenRange,
            RvError::MechanismInvalid,
            RvError::KeySizeRange,
            RvError::TemplateIncomplete,
            RvError::AttributeValueInvalid,
        ] {
            assert_eq!(classify(&rv(r)), Class::Refused, "{r:?}");
            let e = map_err("sign", rv(r));
            assert_eq!(e.kind(), ErrorKind::Internal, "{r:?}");
            let status = e.into_status("req-2");
            assert_eq!(status.message(), "internal error (request id req-2)");
        }
        assert_eq!(classify(&CkError::NullFunctionPointer), Class::Refused);
    }
}
