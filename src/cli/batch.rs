//! `signet sign-batch` and `signet verify-batch`: a file of messages (JSON
//! Lines) through `SignBatch` / `VerifyBatch`, in calls of at most
//! `--batch-size` items and `--batch-bytes` bytes, one output line per
//! input line.
//!
//! An input line is an object: `key` (or `--key`), optional `version`, one
//! of `message` (UTF-8 text), `message_base64` or `digest_hex`, and for
//! verification `signature` (base64). Blank lines are skipped; line numbers
//! count them, so an output line points at its input line.

use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use super::client::{connect, read_input, write_output, CliError, CliResult, EXIT_INVALID};
use super::sign::{decode, Encoding, SigFormat};
use super::Global;
use crate::api::pb;
use crate::api::pb::signer_client::SignerClient;

/// What `sign-batch` and `verify-batch` share.
#[derive(Debug, Args)]
pub(crate) struct BatchArgs {
    /// JSON Lines input ("-" or absent: standard input).
    #[arg(long = "in", short)]
    pub input: Option<PathBuf>,
    /// Write the results (JSON Lines) here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The key for lines that do not name one.
    #[arg(long, short)]
    pub key: Option<String>,
    /// ECDSA signature encoding (other algorithms ignore it).
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    pub format: SigFormat,
    /// Most items per call (the server's [limits] max_batch_items, 1000 by
    /// default, is the most it takes).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Most bytes of names, inputs and signatures per call (the server's
    /// max_batch_bytes, 4 MiB by default).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub batch_bytes: usize,
}

/// `signet sign-batch`.
#[derive(Debug, Args)]
#[command(after_help = "Input lines: {\"key\":\"K\",\"message\":\"text\"}, or \
    message_base64 / digest_hex instead of message; \"version\":N names a version.\n\
    Output lines: {\"line\":N,\"signature\":BASE64,\"version\":V,\"key_version_id\":ID} \
    or {\"line\":N,\"key\":K,\"error\":{\"code\":NAME,\"message\":TEXT}}.\n\
    Exit codes: 0 every line signed, 1 a line or the server failed, 2 usage or I/O error.")]
pub(crate) struct SignBatchArgs {
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// `signet verify-batch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Input lines as sign-batch's, with \"signature\":BASE64.\n\
    Output lines: {\"line\":N,\"valid\":BOOL,\"version\":V,\"key_version_id\":ID} or an error.\n\
    Exit codes: 0 every line valid, 3 a signature did not verify, \
    1 a line or the server failed, 2 usage or I/O error."
)]
pub(crate) struct VerifyBatchArgs {
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// One input line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: Option<String>,
    version: Option<u32>,
    message: Option<String>,
    message_base64: Option<String>,
    digest_hex: Option<String>,
    signature: Option<String>,
}

/// A parsed line: its number, key, version, input and signature.
struct Entry {
    line: usize,
    key: String,
    version: u32,
    input: Input,
    signature: Option<Vec<u8>>,
}

enum Input {
    Message(Vec<u8>),
    Digest(Vec<u8>),
}

impl Entry {
    fn bytes(&self) -> usize {
        let input = match &self.input {
            Input::Message(b) | Input::Digest(b) => b.len(),
        };
        self.key.len() + input + self.signature.as_ref().map_or(0, Vec::len)
    }
}

/// Parses every line, or names the first that is wrong.
fn parse(text: &[u8], default_key: Option<&str>, verify: bool) -> CliResult<Vec<Entry>> {
    let text = std::str::from_utf8(text)
        .map_err(|_| CliError::usage("the input is not UTF-8 text (JSON Lines)"))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |why: String| CliError::usage(format!("line {n}: {why}"));
        let l: Line = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        let key = l
            .key
            .or_else(|| default_key.map(str::to_owned))
            .ok_or_else(|| bad("no \"key\", and no --key".into()))?;
        let input = match (l.message, l.message_base64, l.digest_hex) {
            (Some(m), None, None) => Input::Message(m.into_bytes()),
            (None, Some(b), None) => Input::Message(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| bad("message_base64 is not valid base64".into()))?,
            ),
            (None, None, Some(h)) => Input::Digest(
                hex::decode(h).map_err(|_| bad("digest_hex is not valid hex".into()))?,
            ),
            _ => {
                return Err(bad(
                    "give exactly one of \"message\", \"message_base64\" and \"digest_hex\"".into(),
                ))
            }
        };
        let signature = match (verify, l.signature) {
            (true, Some(s)) => Some(decode(Encoding::Base64, s.as_bytes()).map_err(bad)?),
            (true, None) => return Err(bad("no \"signature\"".into())),
            (false, Some(_)) => return Err(bad("\"signature\" is for verify-batch".into())),
            (false, None) => None,
        };
        if l.version == Some(0) {
            return Err(bad("\"version\" must be 1 or more".into()));
        }
        out.push(Entry {
            line: n,
            key,
            version: l.version.unwrap_or(0),
            input,
            signature,
        });
    }
    Ok(out)
}

/// Splits the entries into calls within both bounds (an entry larger than
/// the byte bound goes alone, for the server to refuse by name).
fn chunks(entries: Vec<Entry>, items: usize, bytes: usize) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    let mut size = 0;
    for e in entries {
        let b = e.bytes();
        match out.last_mut() {
            Some(c) if c.len() < items && size + b <= bytes => {
                size += b;
                c.push(e);
            }
            _ => {
                size = b;
                out.push(vec![e]);
            }
        }
    }
    out
}

fn error_json(line: usize, key: &str, e: &pb::BatchItemError) -> serde_json::Value {
    let mut j = json!({
        "line": line,
        "key": key,
        "error": {"code": e.code_name, "message": e.message},
    });
    if e.retry_after_ms > 0 {
        j["error"]["retry_after_ms"] = e.retry_after_ms.into();
    }
    j
}

/// What a run found: output lines, errors, invalid signatures.
#[derive(Default)]
struct Tally {
    out: Vec<u8>,
    done: usize,
    failed: usize,
    invalid: usize,
}

impl Tally {
    fn push(&mut self, j: serde_json::Value) {
        self.out.extend_from_slice(j.to_string().as_bytes());
        self.out.push(b'\n');
    }

    /// Writes the lines, reports on standard error, and picks the exit.
    fn finish(self, a: &BatchArgs, verb: &str) -> CliResult {
        write_output(a.out.as_ref(), &self.out)?;
        let total = self.done + self.failed;
        eprintln!(
            "{verb} {} of {total} lines; {} failed{}",
            self.done,
            self.failed,
            if verb == "verified" {
                format!(", {} invalid", self.invalid)
            } else {
                String::new()
            }
        );
        if self.failed > 0 {
            Err(CliError::rpc(format!(
                "{} of {total} lines failed",
                self.failed
            )))
        } else if self.invalid > 0 {
            Err(CliError {
                code: EXIT_INVALID,
                message: String::new(),
                status: None,
            })
        } else {
            Ok(())
        }
    }
}

fn load(a: &BatchArgs, verify: bool) -> CliResult<Vec<Vec<Entry>>> {
    let text = read_input(a.input.as_deref())?;
    let entries = parse(&text, a.key.as_deref(), verify)?;
    Ok(chunks(entries, a.batch_size as usize, a.batch_bytes))
}

/// Runs `signet sign-batch`.
pub(crate) async fn sign(global: &Global, a: SignBatchArgs) -> CliResult {
    use pb::sign_batch_result::Result as R;
    let a = a.batch;
    let calls = load(&a, false)?;
    let mut client = SignerClient::new(connect(global).await?);
    let mut t = Tally::default();
    for call in calls {
        let items = call
            .iter()
            .map(|e| pb::SignRequest {
                key: e.key.clone(),
                version: e.version,
                input: Some(match &e.input {
                    Input::Message(m) => pb::sign_request::Input::Message(m.clone()),
                    Input::Digest(d) => pb::sign_request::Input::Digest(d.clone()),
                }),
                signature_format: a.format.pb(),
            })
            .collect();
        let results = client
            .sign_batch(pb::SignBatchRequest { items })
            .await?
            .into_inner()
            .results;
        check_count(call.len(), results.len())?;
        for (e, r) in call.iter().zip(results) {
            match r.result {
                Some(R::Signed(s)) => {
                    t.done += 1;
                    t.push(json!({
                        "line": e.line,
                        "signature": base64::engine::general_purpose::STANDARD.encode(&s.signature),
                        "version": s.version,
                        "key_version_id": s.key_version_id,
                    }));
                }
                Some(R::Error(err)) => {
                    t.failed += 1;
                    t.push(error_json(e.line, &e.key, &err));
                }
                None => return Err(CliError::rpc("the server sent a result without an outcome")),
            }
        }
    }
    t.finish(&a, "signed")
}

/// Runs `signet verify-batch`.
pub(crate) async fn verify(global: &Global, a: VerifyBatchArgs) -> CliResult {
    use pb::verify_batch_result::Result as R;
    let a = a.batch;
    let calls = load(&a, true)?;
    let mut client = SignerClient::new(connect(global).await?);
    let mut t = Tally::default();
    for call in calls {
        let items = call
            .iter()
            .map(|e| pb::VerifyRequest {
                key: e.key.clone(),
                version: e.version,
                input: Some(match &e.input {
                    Input::Message(m) => pb::verify_request::Input::Message(m.clone()),
                    Input::Digest(d) => pb::verify_request::Input::Digest(d.clone()),
                }),
                signature: e.signature.clone().unwrap_or_default(),
                signature_format: a.format.pb(),
            })
            .collect();
        let results = client
            .verify_batch(pb::VerifyBatchRequest { items })
            .await?
            .into_inner()
            .results;
        check_count(call.len(), results.len())?;
        for (e, r) in call.iter().zip(results) {
            match r.result {
                Some(R::Verified(v)) => {
                    t.done += 1;
                    if !v.valid {
                        t.invalid += 1;
                    }
                    t.push(json!({
                        "line": e.line,
                        "valid": v.valid,
                        "version": v.version,
                        "key_version_id": v.key_version_id,
                    }));
                }
                Some(R::Error(err)) => {
                    t.failed += 1;
                    t.push(error_json(e.line, &e.key, &err));
                }
                None => return Err(CliError::rpc("the server sent a result without an outcome")),
            }
        }
    }
    t.finish(&a, "verified")
}

fn check_count(sent: usize, got: usize) -> CliResult {
    if sent == got {
        Ok(())
    } else {
        Err(CliError::rpc(format!(
            "the server answered {got} results for {sent} items"
        )))
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
