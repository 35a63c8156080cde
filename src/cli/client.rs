//! What every client sub-command shares: the error type and exit codes,
//! connecting to the server, argument parsers, and input / output helpers.

use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

pub(crate) use super::args::{
    algorithm_name, algorithm_pb, duration_pb, labels_map, parse_duration, parse_label,
};

/// Exit code of a failed RPC or an unreachable server.
pub(crate) const EXIT_RPC: u8 = 1;
/// Exit code of a usage, input or output error.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code of `signet verify` when the signature does not verify.
pub(crate) const EXIT_INVALID: u8 = 3;

/// How long connecting to the server may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one administrative or signing RPC may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed command: the message printed after `signet: ` and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliError {
    /// The process exit code.
    pub code: u8,
    /// What went wrong, for a human; never carries secret material.
    pub message: String,
    /// The server's answer, when the error is one: gRPC code name, the
    /// server's message and its request id (for `--json`).
    pub status: Option<(&'static str, String, Option<String>)>,
}

impl CliError {
    /// A usage, input or output error (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
            status: None,
        }
    }

    /// A server-side or connection error (exit code 1).
    pub(crate) fn rpc(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_RPC,
            message: message.into(),
            status: None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Status> for CliError {
    fn from(s: Status) -> Self {
        let request_id = s
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(hint) = transport_hint(&s, request_id.is_some()) {
            // The connection failed under the call: no server answered, so
            // the code is the one gRPC gives an unreachable server.
            let mut e = CliError::rpc(format!("UNAVAILABLE: {hint}"));
            e.status = Some(("UNAVAILABLE", hint, None));
            return e;
        }
        let mut e = CliError::rpc(status_message(&s));
        e.status = Some((code_name(s.code()), status_detail(&s), request_id));
        e
    }
}

/// For a call that failed in the transport (no server answer, a source
/// error): what mistake it points to, when it points to one.
fn transport_hint(s: &Status, answered: bool) -> Option<String> {
    if answered {
        return None;
    }
    let dial = super::transport::dial()?;
    // tonic sometimes reports a connection the server closed at once as
    // CANCELLED "connection was not ready", with no source error.
    let chain = match std::error::Error::source(s) {
        Some(src) => format!("{}: {}", s.message(), error_chain(src)),
        None if s.message().contains("connection was not ready") => s.message().to_string(),
        None => return None,
    };
    super::transport::diagnose(&dial.endpoint, &chain, dial.client_cert)
}

impl CliError {
    /// The error as `--json` prints it: one object on standard error.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "message": self.message,
            "exit_code": self.code,
        });
        if let Some((code, detail, request_id)) = &self.status {
            error["code"] = (*code).into();
            error["message"] = detail.clone().into();
            if let Some(id) = request_id {
                error["request_id"] = id.clone().into();
            }
        }
        serde_json::json!({ "error": error })
    }
}

/// Result of a client command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// The canonical gRPC name of a status code, e.g. `NOT_FOUND`.
pub(crate) use crate::error::code_name;

/// `CODE: message` (see [`status_detail`]).
pub(crate) fn status_message(s: &Status) -> String {
    let detail = status_detail(s);
    if detail.is_empty() {
        code_name(s.code()).to_string()
    } else {
        format!("{}: {detail}", code_name(s.code()))
    }
}

/// A status's message, plus what only its source says (client-side
/// transport failures hide e.g. "Connection refused" there), plus, for
/// internal errors, the request id the server logged the details under.
pub(crate) fn status_detail(s: &Status) -> String {
    let mut out = s.message().to_string();
    if s.code() == Code::Cancelled && s.message() == "Timeout expired" {
        out = format!(
            "no answer from the server within {} s",
            REQUEST_TIMEOUT.as_secs()
        );
    } else if let Some(src) = std::error::Error::source(s) {
        let chain = error_chain(src);
        let extra = chain
            .split(": ")
            .filter(|part| *part != "transport error" && !s.message().contains(part))
            .collect::<Vec<_>>()
            .join(": ");
        if !extra.is_empty() {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&extra);
        }
    }
    if let Some(id) = s
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        if matches!(s.code(), Code::Internal | Code::Unknown) && !s.message().contains(id) {
            out.push_str(&format!(" (request id {id})"));
        }
    }
    out
}

/// An error and its causes, joined by `: ` (transport errors hide the
/// useful part, e.g. "Connection refused", in their sources).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// The endpoint for `uri`, with signet's timeouts, not yet connected.
pub(crate) fn endpoint(uri: &str) -> CliResult<Endpoint> {
    super::transport::check_scheme(uri).map_err(CliError::usage)?;
    let ep = Endpoint::from_shared(uri.to_string())
        .map_err(|e| CliError::usage(format!("invalid --endpoint {uri:?}: {e}")))?;
    Ok(ep
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(false))
}

/// The endpoint the global options describe: TLS for `https://` (with
/// --ca-file, and --cert-file/--key-file for mutual TLS).
pub(crate) fn secure_endpoint(g: &super::Global) -> CliResult<Endpoint> {
    let ep = endpoint(&g.endpoint)?;
    super::transport::remember(&g.endpoint, g.cert_file.is_some());
    let https = g.endpoint.starts_with("https://");
    if !https {
        if g.ca_file.is_some() || g.cert_file.is_some() {
            return Err(CliError::usage(
                "--ca-file and --cert-file need an https:// --endpoint",
            ));
        }
        return Ok(ep);
    }
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p)
            .map_err(|e| CliError::usage(format!("cannot read {what} {}: {e}", p.display())))
    };
    let mut tls = ClientTlsConfig::new();
    tls = match &g.ca_file {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca, "--ca-file")?)),
        None => tls.with_enabled_roots(),
    };
    if let (Some(c), Some(k)) = (&g.cert_file, &g.key_file) {
        tls = tls.identity(Identity::from_pem(
            read(c, "--cert-file")?,
            read(k, "--key-file")?,
        ));
    }
    ep.tls_config(tls)
        .map_err(|e| CliError::usage(format!("TLS settings: {}", error_chain(&e))))
}

/// Adds `authorization: Bearer …` to every call when a token is set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connection with the caller's credentials.
pub(crate) type Conn = tonic::codegen::InterceptedService<Channel, Bearer>;

/// The bearer token: SIGNET_TOKEN, else the content of --token-file.
pub(crate) fn bearer(g: &super::Global) -> CliResult<Bearer> {
    let token = match std::env::var("SIGNET_TOKEN") {
        Ok(t) if !t.is_empty() => Some(t),
        _ => match &g.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        CliError::usage(format!("cannot read --token-file {}: {e}", p.display()))
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        },
    };
    match token {
        None => Ok(Bearer(None)),
        Some(t) => format!("Bearer {t}")
            .parse()
            .map(|v| Bearer(Some(v)))
            .map_err(|_| CliError::usage("the token is not printable ASCII")),
    }
}

/// Connects now, with TLS and the token the options give, so an
/// unreachable server is reported clearly.
pub(crate) async fn connect(g: &super::Global) -> CliResult<Conn> {
    let channel = secure_endpoint(g)?
        .timeout(REQUEST_TIMEOUT)
        .connect()
        .await
        .map_err(|e| connect_error(&g.endpoint, &e))?;
    Ok(tonic::codegen::InterceptedService::new(channel, bearer(g)?))
}

/// The "cannot connect" error for `uri`.
pub(crate) fn connect_error(uri: &str, e: &tonic::transport::Error) -> CliError {
    let client_cert = super::transport::dial().is_some_and(|d| d.client_cert);
    if let Some(hint) = super::transport::diagnose(uri, &error_chain(e), client_cert) {
        return CliError::rpc(format!("cannot connect to {uri}: {hint}"));
    }
    CliError::rpc(format!(
        "cannot connect to {uri}: {} (is `signet serve` running there? set --endpoint or SIGNET_ENDPOINT)",
        error_chain(e).trim_start_matches("transport error: ")
    ))
}

/// Reads `path`, or standard input when it is `None` or `-`.
pub(crate) fn read_input(path: Option<&Path>) -> CliResult<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        None => read_stdin(&mut buf)?,
        Some(p) if p == Path::new("-") => read_stdin(&mut buf)?,
        Some(p) => {
            buf = std::fs::read(p)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?;
        }
    }
    Ok(buf)
}

fn read_stdin(buf: &mut Vec<u8>) -> CliResult<()> {
    std::io::stdin()
        .lock()
        .read_to_end(buf)
        .map(|_| ())
        .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))
}

/// Writes `bytes` to `path` (or standard output for `None` / `-`).
pub(crate) fn write_output(path: Option<&PathBuf>, bytes: &[u8]) -> CliResult<()> {
    match path {
        Some(p) if p.as_os_str() != "-" => std::fs::write(p, bytes)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", p.display()))),
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|_| out.flush())
                .map_err(|e| CliError::usage(format!("cannot write standard output: {e}")))
        }
    }
}

/// Writes raw bytes, refusing to dump binary onto a terminal.
pub(crate) fn write_binary(path: Option<&PathBuf>, bytes: &[u8]) -> CliResult<()> {
    let to_stdout = path.is_none_or(|p| p.as_os_str() == "-");
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "refusing to write raw bytes to a terminal: use --out FILE or a text encoding",
        ));
    }
    write_output(path, bytes)
}

/// Prints a JSON value on standard output, pretty, with a final newline.
pub(crate) fn print_json(v: &serde_json::Value) -> CliResult<()> {
    let mut text = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::usage(format!("cannot encode JSON: {e}")))?;
    text.push('\n');
    write_output(None, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages() {
        let s = Status::not_found("key foo not found");
        assert_eq!(status_message(&s), "NOT_FOUND: key foo not found");
        assert_eq!(CliError::from(s).code, EXIT_RPC);
        assert_eq!(status_message(&Status::unavailable("")), "UNAVAILABLE");
        let mut s = Status::internal("internal error");
        s.metadata_mut()
            .insert("x-request-id", "abc".parse().unwrap());
        assert_eq!(
            status_message(&s),
            "INTERNAL: internal error (request id abc)"
        );
    }

    #[test]
    fn bad_endpoint_is_usage() {
        assert_eq!(endpoint("not a uri").unwrap_err().code, EXIT_USAGE);
        assert!(endpoint("http://127.0.0.1:1").is_ok());
        let e = endpoint("127.0.0.1:1").unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        assert!(e.message.contains("http://127.0.0.1:1"), "{}", e.message);
    }
}
