//! What a failed connection means: the transport mistakes a person makes
//! (a missing scheme, `http://` to a TLS server and the reverse, a server
//! certificate TLS refuses, a missing client certificate), each named with
//! its fix instead of the library's words.

use std::sync::OnceLock;

/// How this process connects, for the hints of errors that surface on a
/// call rather than on connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dial {
    /// The `--endpoint`.
    pub endpoint: String,
    /// Whether a client certificate is presented (`--cert-file`).
    pub client_cert: bool,
}

static DIAL: OnceLock<Dial> = OnceLock::new();

/// Remembers how the command connects.
pub(crate) fn remember(endpoint: &str, client_cert: bool) {
    let _ = DIAL.set(Dial {
        endpoint: endpoint.to_string(),
        client_cert,
    });
}

/// How the command connects, once [`remember`]ed.
pub(crate) fn dial() -> Option<&'static Dial> {
    DIAL.get()
}

/// Refuses an endpoint without a scheme, saying which to add.
pub(crate) fn check_scheme(uri: &str) -> Result<(), String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return Ok(());
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        return Err(format!(
            "--endpoint {uri:?}: scheme {scheme:?} is not http or https"
        ));
    }
    Err(format!(
        "--endpoint {uri:?} has no scheme: use http://{uri} for a plaintext server \
         (the demo mode) or https://{uri} for one with [server.tls]"
    ))
}

/// The host of an `http(s)://host:port/...` URI, for messages.
fn host_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The mistake a transport error (its whole source chain, as text) points
/// to, and how to fix it; `None` when it names nothing more specific than
/// an unreachable server. `client_cert`: whether one was presented.
pub(crate) fn diagnose(uri: &str, chain: &str, client_cert: bool) -> Option<String> {
    let https = uri.starts_with("https://");
    let host = host_of(uri);
    let lower = chain.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(&needle.to_ascii_lowercase());
    if https && (has("InvalidContentType") || has("corrupt message")) {
        let plain = uri.replacen("https://", "http://", 1);
        return Some(format!(
            "the server answered in plaintext, not TLS: use {plain} (a plaintext signet), \
             or configure [server.tls] on the server"
        ));
    }
    if has("CaUsedAsEndEntity") {
        return Some(
            "the server's certificate is a CA certificate (basicConstraints CA:TRUE), which \
             TLS refuses as a server certificate: serve a leaf certificate (CA:FALSE) signed \
             by a CA and give that CA to --ca-file; `signet dev-certs DIR` makes both \
             (docs/security.md)"
                .to_string(),
        );
    }
    if has("NotValidForName") || has("not valid for name") {
        return Some(format!(
            "the server's certificate does not name {host:?}: its subjectAltName must list \
             it (an IP SAN for an IP address, a DNS SAN for a name); e.g. \
             `signet dev-certs DIR --server-name {host}`"
        ));
    }
    // BadSignature: a CA of the same name as the trusted one, but another
    // key (e.g. a second `signet dev-certs` run).
    if has("UnknownIssuer") || has("BadSignature") {
        return Some(
            "the server's certificate is not signed by a CA this client trusts: give the CA \
             that signed it to --ca-file (without --ca-file, the system's bundle is used)"
                .to_string(),
        );
    }
    if has("Expired") || has("NotValidYet") {
        return Some(
            "the server's certificate has expired or is not valid yet (check the clocks): \
             renew it"
                .to_string(),
        );
    }
    if has("CertificateRequired") || has("certificate required") {
        return Some(
            "the server requires a client certificate (mutual TLS): pass --cert-file and \
             --key-file (or SIGNET_CERT_FILE and SIGNET_KEY_FILE)"
                .to_string(),
        );
    }
    if has("BadCertificate") || has("UnknownCA") || has("unknown ca") {
        return Some(
            "the server refused this client certificate: it must be signed by a CA in the \
             server's client_ca_file and be valid now"
                .to_string(),
        );
    }
    let closed = [
        "connection closed",
        "connection reset",
        "broken pipe",
        "frame with invalid size",
        "h2 protocol error",
        "unexpected end of file",
        "connection was not ready",
    ];
    if !closed.iter().any(|c| has(c)) {
        return None;
    }
    if !https {
        let tls = uri.replacen("http://", "https://", 1);
        return Some(format!(
            "the server closed the connection without answering, as a TLS server does with \
             a plaintext client: if it serves TLS, use {tls} with --ca-file"
        ));
    }
    // With TLS 1.3 a server checks the client's certificate after the
    // handshake has completed for the client, so a refusal surfaces as a
    // connection closed under the first call.
    Some(if client_cert {
        "the server closed the connection after the TLS handshake: it refused this \
         client certificate (it must be signed by a CA in the server's client_ca_file and \
         be valid now)"
            .to_string()
    } else {
        "the server closed the connection after the TLS handshake: it requires a client \
         certificate (mutual TLS): pass --cert-file and --key-file (or SIGNET_CERT_FILE and \
         SIGNET_KEY_FILE)"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_scheme_names_both_fixes() {
        let e = check_scheme("127.0.0.1:50051").unwrap_err();
        assert!(e.contains("http://127.0.0.1:50051"), "{e}");
        assert!(e.contains("https://127.0.0.1:50051"), "{e}");
        assert!(check_scheme("grpc://x:1").unwrap_err().contains("grpc"));
        assert!(check_scheme("http://x:1").is_ok());
        assert!(check_scheme("https://x:1").is_ok());
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://127.0.0.1:50051"), "127.0.0.1");
        assert_eq!(host_of("https://[::1]:50051/"), "::1");
        assert_eq!(host_of("https://signet.internal"), "signet.internal");
    }

    #[test]
    fn each_mistake_has_its_fix() {
        let tls = "https://127.0.0.1:1";
        let plain = "http://127.0.0.1:1";
        let cases = [
            (
                tls,
                "received corrupt message of type InvalidContentType",
                "http://127.0.0.1:1",
            ),
            (
                tls,
                "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
                "CA:FALSE",
            ),
            (tls, "invalid peer certificate: NotValidForName", "IP SAN"),
            (tls, "invalid peer certificate: UnknownIssuer", "--ca-file"),
            (tls, "invalid peer certificate: BadSignature", "--ca-file"),
            (tls, "invalid peer certificate: Expired", "expired"),
            (
                tls,
                "received fatal alert: CertificateRequired",
                "--cert-file",
            ),
            (tls, "received fatal alert: UnknownCA", "client_ca_file"),
            (plain, "connection closed", "https://127.0.0.1:1"),
            // The same mistake, as tonic reports it now and then.
            (
                plain,
                "operation was canceled: connection was not ready",
                "https://127.0.0.1:1",
            ),
        ];
        for (uri, chain, want) in cases {
            let hint = diagnose(uri, chain, false).unwrap_or_default();
            assert!(hint.contains(want), "{chain}: {hint}");
        }
        assert_eq!(
            diagnose(plain, "Connection refused (os error 111)", false),
            None
        );
        // Over TLS, a closed connection is a refused (or missing) client
        // certificate.
        let closed = "connection error: stream closed because of a Broken pipe";
        let hint = diagnose(tls, closed, false).unwrap();
        assert!(hint.contains("requires a client certificate"), "{hint}");
        let hint = diagnose(tls, closed, true).unwrap();
        assert!(hint.contains("refused this client certificate"), "{hint}");
    }
}
