//! The one error type of signet and the one place it becomes a `tonic::Status`.
//!
//! Every error carries a kind (which gRPC code it maps to), a short public
//! message written by us (safe to send to the caller: it never contains key
//! material, PINs, or text from a library), and optionally a boxed source
//! that only goes to the server log.

mod codes;
mod startup;

use std::borrow::Cow;
use std::fmt;

pub(crate) use codes::code_name;
pub use startup::{ConfigError, StartupError};

/// What went wrong, as far as the caller is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such key, version or profile.
    NotFound,
    /// Malformed input, wrong digest length, bad algorithm for the operation.
    InvalidArgument,
    /// The version's state forbids the operation.
    FailedPrecondition,
    /// The name is taken.
    AlreadyExists,
    /// No or bad credentials.
    Unauthenticated,
    /// Not allowed.
    PermissionDenied,
    /// Rate limit or overload.
    ResourceExhausted,
    /// The backend cannot be reached.
    Unavailable,
    /// Another signet process changed the key first; retry.
    Aborted,
    /// No such method, or a request encoding signet does not speak.
    Unimplemented,
    /// The caller's deadline passed first.
    DeadlineExceeded,
    /// The client reset the stream or lost the connection before its
    /// request was read: no one is left to answer.
    Cancelled,
    /// Anything else: the caller sees only "internal error" and a request id.
    Internal,
}

impl ErrorKind {
    /// The gRPC code.
    pub fn code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::ResourceExhausted => Code::ResourceExhausted,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Aborted => Code::Aborted,
            ErrorKind::Unimplemented => Code::Unimplemented,
            ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorKind::Cancelled => Code::Cancelled,
            ErrorKind::Internal => Code::Internal,
        }
    }
}

/// signet's error: a kind, a public message and an optional private cause.
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    retry_after: Option<std::time::Duration>,
}

/// The metadata key of the request id, made once (a `&str` key is parsed
/// and checked on every insert).
pub(crate) fn request_id_key() -> tonic::metadata::AsciiMetadataKey {
    static KEY: std::sync::LazyLock<tonic::metadata::AsciiMetadataKey> =
        std::sync::LazyLock::new(|| tonic::metadata::AsciiMetadataKey::from_static("x-request-id"));
    KEY.clone()
}

/// The `x-request-id` value for `id`, marked sensitive, so HTTP/2 sends it
/// as a never-indexed literal. Every answer's id is new: indexed, each one
/// took a slot in the connection's HPACK table and pushed out the headers
/// that do repeat (content-type, grpc-status), on both ends.
pub(crate) fn request_id_metadata(id: &str) -> Option<tonic::metadata::AsciiMetadataValue> {
    let mut v: tonic::metadata::AsciiMetadataValue = id.parse().ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// [`request_id_metadata`] as a plain header value, for answers made
/// below tonic.
pub(crate) fn request_id_header(id: &str) -> Option<http::HeaderValue> {
    let mut v = http::HeaderValue::from_str(id).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Shorthand for results in signet.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a public message. The message must never contain secrets.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// `RESOURCE_EXHAUSTED`, with a retry hint (`retry-after-ms` and
    /// `retry-after` in seconds, in the response metadata).
    pub fn exhausted(
        message: impl Into<Cow<'static, str>>,
        retry_after: std::time::Duration,
    ) -> Self {
        let mut e = Self::new(ErrorKind::ResourceExhausted, message);
        e.retry_after = Some(retry_after);
        e
    }

    /// `PERMISSION_DENIED`, always with the same text: it says nothing of
    /// whether the key or profile exists.
    pub fn denied() -> Self {
        Self::new(ErrorKind::PermissionDenied, "permission denied")
    }

    /// `UNAUTHENTICATED`.
    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            "unauthenticated: present a client certificate or a bearer token",
        )
    }

    /// Attaches a cause that is logged on the server but never sent.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// `NOT_FOUND`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// `INVALID_ARGUMENT`.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    /// `FAILED_PRECONDITION`.
    pub fn precondition(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }
    /// `ALREADY_EXISTS`.
    pub fn exists(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    /// `UNAVAILABLE`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// `INTERNAL`, with a cause for the log.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::new(ErrorKind::Internal, "internal error").with_source(source)
    }

    /// An answer the gRPC library made before any handler ran (a body that
    /// does not decode, a message over the transport limit, an unknown
    /// method or compression) as signet's own error, so the caller gets
    /// the right code and signet's text, never the library's, which goes
    /// to the log only.
    pub fn from_library(status: &tonic::Status) -> Self {
        use tonic::Code;
        let text = status.message();
        let cause = format!("{}: {text}", crate::error::code_name(status.code()));
        let e = match status.code() {
            // The transport failed under the request body: the client reset
            // the stream or the connection went away mid-request. Nothing
            // on the server failed, and nobody reads the answer.
            _ if text.starts_with("h2 protocol error") => Error::new(
                ErrorKind::Cancelled,
                "the client went away before its request was read",
            ),
            // A stream that ended after its headers, with no message: the
            // client closed it early or sent an empty unary request.
            Code::Internal if text.contains("Missing request message") => {
                Error::invalid("malformed request: the stream ended without a request message")
            }
            Code::Internal | Code::InvalidArgument if text.contains("decod") => Error::invalid(
                "malformed request: the message is not a valid protobuf encoding of this method's request",
            ),
            Code::Internal | Code::InvalidArgument | Code::Unimplemented
                if text.contains("compress") =>
            {
                Error::new(
                    ErrorKind::Unimplemented,
                    "unsupported request compression: send gzip or none",
                )
            }
            Code::OutOfRange | Code::ResourceExhausted => {
                Error::invalid("request message too large for this server")
            }
            Code::Unimplemented => Error::new(ErrorKind::Unimplemented, "unknown method"),
            Code::Unauthenticated => Error::unauthenticated(),
            Code::PermissionDenied => Error::denied(),
            Code::Unavailable => Error::unavailable("service unavailable"),
            Code::Cancelled | Code::DeadlineExceeded => {
                Error::new(ErrorKind::DeadlineExceeded, "deadline exceeded")
            }
            _ => Error::internal(cause.clone()),
        };
        e.with_source(cause)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Converts to a gRPC status, logging the full cause with the request id.
    /// (See [`ErrorKind::code`] for the mapping.)
    /// `INTERNAL` errors send only the fixed text and the request id.
    pub fn into_status(self, request_id: &str) -> tonic::Status {
        let (code, text, retry_after) = self.into_answer(request_id);
        let mut status = tonic::Status::new(code, text);
        if let Some(v) = request_id_metadata(request_id) {
            status.metadata_mut().insert(request_id_key(), v);
        }
        if let Some(wait) = retry_after {
            let ms = wait.as_millis().max(1);
            if let Ok(v) = ms
                .to_string()
                .parse::<tonic::metadata::AsciiMetadataValue>()
            {
                // gRPC's own retry policy waits this long before the next
                // attempt (gRFC A6); retry-after-ms is for everyone else.
                status
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", v.clone());
                status.metadata_mut().insert("retry-after-ms", v);
            }
            if let Ok(v) = ms.div_ceil(1000).to_string().parse() {
                status.metadata_mut().insert("retry-after", v);
            }
        }
        status
    }

    /// What the caller is told: the code, the text (an internal error's
    /// only as its request id) and how long to wait before retrying; logged
    /// as [`Error::into_status`] logs it. For the items of a batch, which
    /// each carry their own error inside an `OK` answer.
    pub(crate) fn into_answer(
        self,
        request_id: &str,
    ) -> (tonic::Code, String, Option<std::time::Duration>) {
        let code = self.kind.code();
        match (&self.kind, &self.source) {
            (ErrorKind::Internal, _) | (ErrorKind::Unavailable, Some(_)) => {
                tracing::error!(request_id, error = %self, "request failed")
            }
            (
                ErrorKind::Unauthenticated
                | ErrorKind::PermissionDenied
                | ErrorKind::ResourceExhausted,
                _,
            ) => tracing::info!(request_id, error = %self, "request denied"),
            _ => tracing::debug!(request_id, error = %self, "request refused"),
        }
        let text = match self.kind {
            ErrorKind::Internal => format!("internal error (request id {request_id})"),
            _ => self.message.into_owned(),
        };
        (code, text, self.retry_after)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}
