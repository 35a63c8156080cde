//! Answers that no signet handler wrote.
//!
//! Every handler answers through the API layer's `respond` or
//! [`crate::error::Error::into_status`], which put `x-request-id` on the
//! answer, log it and (through the API layer's `run`) audit it. A few answers
//! are made by the gRPC library before any handler runs: a body that does
//! not decode, a message over the transport limit, an unknown method, an
//! unsupported compression. The auth layer passes each answer through
//! [`finish`], which recognises those by the missing request id and turns
//! them into signet's own: the right code, signet's text (never the
//! library's), the request id, a log line and an audit record.

use crate::audit::{Audit, Record};
use crate::error::Error;

/// The response header and metadata key of the request id.
/// (A `HeaderName`, not a `&str`: a lookup by string parses it first.)
pub(crate) const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A library-made error answer, replaced; any other answer without a
/// request id gets one. `rpc` is written to the audit trail only when it
/// is a method signet serves.
pub(crate) fn finish(
    mut response: http::Response<tonic::body::Body>,
    request_id: &str,
    rpc: &str,
    identity: Option<&str>,
    source: std::net::IpAddr,
    audit: &Audit,
) -> http::Response<tonic::body::Body> {
    if response.headers().contains_key(REQUEST_ID) {
        return response;
    }
    let status = tonic::Status::from_header_map(response.headers());
    let Some(status) = status.filter(|s| s.code() != tonic::Code::Ok) else {
        if let Some(v) = crate::error::request_id_header(request_id) {
            response.headers_mut().insert(REQUEST_ID, v);
        }
        return response;
    };
    let error = Error::from_library(&status);
    let mut r = Record::call(audit_name(rpc).to_owned());
    r.request_id = Some(request_id.into());
    r.identity = identity.map(Into::into);
    r.source = Some(source);
    r.operation = super::op_of(rpc).map(|o| o.name());
    let status = error.into_status(request_id);
    audit.record(r.with_code(status.code()));
    tracing::info!(
        request_id,
        rpc = audit_name(rpc),
        %source,
        code = ?status.code(),
        "request refused before reaching a handler"
    );
    status.into_http()
}

/// The method as the trail and the log may show it: a path the caller
/// made up is not written down as given.
pub(crate) fn audit_name(rpc: &str) -> &str {
    if crate::telemetry::rpc::is_known(rpc) {
        rpc
    } else {
        "(unknown method)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: tonic::Status) -> http::Response<tonic::body::Body> {
        finish(
            status.into_http(),
            "req-1",
            "signet.v1.Signer/Sign",
            Some("alice"),
            std::net::IpAddr::from([127, 0, 0, 1]),
            &Audit::off(),
        )
    }

    fn parsed(r: &http::Response<tonic::body::Body>) -> tonic::Status {
        tonic::Status::from_header_map(r.headers()).unwrap()
    }

    #[test]
    fn library_answers_become_signets_own() {
        let cases = [
            (
                tonic::Status::internal(
                    "failed to decode Protobuf message: SignRequest.key: invalid string value: data is not UTF-8 encoded",
                ),
                tonic::Code::InvalidArgument,
            ),
            (
                tonic::Status::out_of_range(
                    "Error, decoded message length too large: found 9999999 bytes, the limit is: 4194304 bytes",
                ),
                tonic::Code::InvalidArgument,
            ),
            (
                tonic::Status::unimplemented(""),
                tonic::Code::Unimplemented,
            ),
            (
                tonic::Status::unimplemented(
                    "Content is compressed with `zstd` which isn't supported",
                ),
                tonic::Code::Unimplemented,
            ),
            (tonic::Status::unknown("h2 said no"), tonic::Code::Internal),
            // What tonic says when the client goes away mid-request (seen
            // at the end of every `signet bench` run with large messages).
            (
                tonic::Status::unknown(
                    "h2 protocol error: error reading a body from connection",
                ),
                tonic::Code::Cancelled,
            ),
            (
                tonic::Status::cancelled("h2 protocol error: stream no longer needed"),
                tonic::Code::Cancelled,
            ),
            (
                tonic::Status::internal("Missing request message."),
                tonic::Code::InvalidArgument,
            ),
        ];
        for (status, want) in cases {
            let library_text = status.message().to_string();
            let r = answer(status);
            assert_eq!(r.headers()[REQUEST_ID], "req-1");
            let s = parsed(&r);
            assert_eq!(s.code(), want, "{library_text}");
            if !library_text.is_empty() {
                assert!(
                    !s.message().contains(&library_text),
                    "library text leaked: {}",
                    s.message()
                );
            }
            for leak in ["Protobuf", "SignRequest", "UTF-8", "4194304", "zstd", "h2"] {
                assert!(!s.message().contains(leak), "{leak} in {}", s.message());
            }
        }
    }

    #[test]
    fn handler_answers_pass_unchanged_and_others_get_an_id() {
        let mine = crate::error::Error::not_found("no such key").into_status("req-9");
        let r = answer(mine);
        assert_eq!(r.headers()[REQUEST_ID], "req-9");
        assert_eq!(parsed(&r).message(), "no such key");
        let ok = finish(
            http::Response::new(tonic::body::Body::empty()),
            "req-2",
            "grpc.health.v1.Health/Check",
            None,
            std::net::IpAddr::from([127, 0, 0, 1]),
            &Audit::off(),
        );
        assert_eq!(ok.headers()[REQUEST_ID], "req-2");
        assert_eq!(audit_name("made/up"), "(unknown method)");
        assert_eq!(audit_name("signet.v1.Signer/Sign"), "signet.v1.Signer/Sign");
    }
}
