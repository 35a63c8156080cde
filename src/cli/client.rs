//! What every client sub-command shares: the error type and exit codes,
//! connecting to the server, argument parsers, and input / output helpers.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use crate::api::pb;
use crate::keys::Algorithm;

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
        let mut e = CliError::rpc(status_message(&s));
        e.status = Some((code_name(s.code()), status_detail(&s), request_id));
        e
    }
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
    CliError::rpc(format!(
        "cannot connect to {uri}: {} (is `signet serve` running there? set --endpoint or SIGNET_ENDPOINT)",
        error_chain(e).trim_start_matches("transport error: ")
    ))
}

/// Parses an algorithm by its proto name, case-insensitively.
pub(crate) fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!("unknown algorithm {s:?}; one of: {}", names.join(", "))
    })
}

/// The proto enum value of an algorithm.
pub(crate) fn algorithm_pb(a: Algorithm) -> i32 {
    pb::Algorithm::from_str_name(a.name())
        .map(|p| p as i32)
        .unwrap_or_default()
}

/// The proto name of an algorithm enum value.
pub(crate) fn algorithm_name(v: i32) -> String {
    pb::Algorithm::try_from(v)
        .map(|a| a.as_str_name().to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({v})"))
}

/// Parses a humantime duration ("90d", "1h 30m", "10s").
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// A std duration as a proto duration.
pub(crate) fn duration_pb(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

/// Parses one `--label key=value`.
pub(crate) fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("invalid label {s:?}: expected key=value")),
    }
}

/// Collects labels, refusing a key given twice.
pub(crate) fn labels_map(labels: &[(String, String)]) -> CliResult<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (k, v) in labels {
        if map.insert(k.clone(), v.clone()).is_some() {
            return Err(CliError::usage(format!("label {k:?} given more than once")));
        }
    }
    Ok(map)
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
    fn durations() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86400)
        );
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration(" 1h 30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        let p = duration_pb(Duration::from_millis(1500));
        assert_eq!((p.seconds, p.nanos), (1, 500_000_000));
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("env=prod").unwrap(),
            ("env".into(), "prod".into())
        );
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(
            parse_label("empty=").unwrap(),
            ("empty".into(), String::new())
        );
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
        let dup = [("a".to_string(), "1".to_string()), ("a".into(), "2".into())];
        assert_eq!(labels_map(&dup).unwrap_err().code, EXIT_USAGE);
        let ok = [("b".to_string(), "1".to_string()), ("a".into(), "2".into())];
        assert_eq!(labels_map(&ok).unwrap().len(), 2);
    }

    #[test]
    fn algorithms() {
        assert_eq!(
            parse_algorithm("ecdsa_p256_sha256").unwrap(),
            Algorithm::EcdsaP256Sha256
        );
        assert_eq!(parse_algorithm("ED25519").unwrap(), Algorithm::Ed25519);
        let err = parse_algorithm("rsa").unwrap_err();
        assert!(err.contains("HMAC_SHA256"), "{err}");
        for a in Algorithm::ALL {
            assert_eq!(algorithm_name(algorithm_pb(a)), a.name());
        }
        assert_eq!(algorithm_name(99), "UNKNOWN(99)");
    }

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
    }
}
