//! `signet sign` and `signet verify`, through the `Signer` service, and the
//! signature encodings they share.

use std::path::PathBuf;

use base64::Engine as _;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::client::{
    algorithm_name, connect, print_json, read_input, write_binary, write_output, CliError,
    CliResult, EXIT_INVALID,
};
use super::Global;
use crate::api::pb;
use crate::api::pb::signer_client::SignerClient;

/// How signatures are written and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Encoding {
    /// Standard base64 (reading also accepts URL-safe and unpadded forms).
    Base64,
    /// Lower-case hex.
    Hex,
    /// The bytes themselves.
    Raw,
}

/// ECDSA signature encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum SigFormat {
    /// DER ECDSA-Sig-Value (what openssl produces and expects).
    #[default]
    Der,
    /// r||s, fixed width (JWS / IEEE P1363).
    Raw,
}

impl SigFormat {
    pub(crate) fn pb(self) -> i32 {
        match self {
            SigFormat::Der => pb::SignatureFormat::Der as i32,
            SigFormat::Raw => pb::SignatureFormat::Raw as i32,
        }
    }
}

/// What to sign or verify, shared by `sign` and `verify`.
#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// The key's name.
    #[arg(long, short)]
    pub key: String,
    /// Version number; default: the ACTIVE version (sign) or every version
    /// that may verify (verify).
    #[arg(long, short)]
    pub version: Option<u32>,
    /// Read the message from this file ("-" or absent: standard input).
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// The input is a precomputed digest (raw bytes) with the key's hash,
    /// not the message. Not for Ed25519 or HMAC keys.
    #[arg(long)]
    pub digest: bool,
    /// ECDSA signature encoding (other algorithms ignore it).
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    pub format: SigFormat,
}

/// `signet sign`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints the signature (base64 by default) on standard output; \
    with --out, writes raw bytes unless --encoding says otherwise.\n\
    Exit codes: 0 signed, 1 server error (e.g. NOT_FOUND), 2 usage or I/O error."
)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Signature encoding [default: base64 on standard output, raw with --out].
    #[arg(long, short, value_enum)]
    pub encoding: Option<Encoding>,
    /// Write the signature to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `signet verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 valid, 3 invalid (the signature does not verify), \
    1 server error (e.g. NOT_FOUND), 2 usage or I/O error."
)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The signature, as text (base64 by default, or hex).
    #[arg(
        long,
        short,
        required_unless_present = "signature_file",
        conflicts_with = "signature_file"
    )]
    pub signature: Option<String>,
    /// Read the signature from this file (raw bytes by default).
    #[arg(long)]
    pub signature_file: Option<PathBuf>,
    /// Signature encoding [default: base64 for --signature, raw for
    /// --signature-file].
    #[arg(long, value_enum)]
    pub encoding: Option<Encoding>,
}

/// Encodes a signature as text (base64, hex) or leaves it raw.
pub(crate) fn encode(enc: Encoding, sig: &[u8]) -> Vec<u8> {
    match enc {
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .encode(sig)
            .into_bytes(),
        Encoding::Hex => hex::encode(sig).into_bytes(),
        Encoding::Raw => sig.to_vec(),
    }
}

/// Decodes a signature written as text (whitespace ignored) or raw bytes.
pub(crate) fn decode(enc: Encoding, data: &[u8]) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if enc == Encoding::Raw {
        return Ok(data.to_vec());
    }
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty() {
        return Err("the signature is empty".into());
    }
    match enc {
        Encoding::Hex => hex::decode(&text).map_err(|e| format!("signature is not valid hex: {e}")),
        _ => [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(&text).ok())
            .ok_or_else(|| "signature is not valid base64".to_string()),
    }
}

/// A `--version` flag as the proto wants it: 0 when absent.
pub(crate) fn version(v: Option<u32>) -> CliResult<u32> {
    match v {
        Some(0) => Err(CliError::usage("--version must be 1 or more")),
        v => Ok(v.unwrap_or(0)),
    }
}

/// Runs `signet sign`.
pub(crate) async fn sign(global: &Global, a: SignArgs) -> CliResult {
    let data = read_input(a.input.file.as_deref())?;
    let input = if a.input.digest {
        pb::sign_request::Input::Digest(data)
    } else {
        pb::sign_request::Input::Message(data)
    };
    let req = pb::SignRequest {
        key: a.input.key,
        version: version(a.input.version)?,
        input: Some(input),
        signature_format: a.input.format.pb(),
    };
    let mut client = SignerClient::new(connect(global).await?);
    let resp = client.sign(req).await?.into_inner();
    // --out always receives the signature itself; --json describes it on
    // standard output (with the file's name when there is one).
    if let Some(out) = &a.out {
        let enc = a.encoding.unwrap_or(Encoding::Raw);
        let mut bytes = encode(enc, &resp.signature);
        if enc == Encoding::Raw {
            write_binary(Some(out), &bytes)?;
        } else {
            bytes.push(b'\n');
            write_output(Some(out), &bytes)?;
        }
    }
    if global.json {
        let mut j = json!({
            "signature": base64::engine::general_purpose::STANDARD.encode(&resp.signature),
            "version": resp.version,
            "key_version_id": resp.key_version_id,
            "algorithm": algorithm_name(resp.algorithm),
        });
        if let Some(out) = &a.out {
            j["out"] = out.display().to_string().into();
        }
        return print_json(&j);
    }
    if a.out.is_none() {
        let mut bytes = encode(a.encoding.unwrap_or(Encoding::Base64), &resp.signature);
        if a.encoding == Some(Encoding::Raw) {
            write_binary(None, &bytes)?;
        } else {
            bytes.push(b'\n');
            write_output(None, &bytes)?;
        }
    }
    eprintln!(
        "signed with {} (version {}, {})",
        resp.key_version_id,
        resp.version,
        algorithm_name(resp.algorithm)
    );
    Ok(())
}

/// Runs `signet verify`; an invalid signature is exit code 3.
pub(crate) async fn verify(global: &Global, a: VerifyArgs) -> CliResult {
    let signature = match (&a.signature, &a.signature_file) {
        (Some(s), _) => {
            let enc = a.encoding.unwrap_or(Encoding::Base64);
            if enc == Encoding::Raw {
                return Err(CliError::usage(
                    "--encoding raw needs --signature-file (a command-line argument is text)",
                ));
            }
            decode(enc, s.as_bytes()).map_err(CliError::usage)?
        }
        (None, Some(f)) => {
            let message_on_stdin = a.input.file.as_ref().is_none_or(|p| p.as_os_str() == "-");
            if message_on_stdin && f.as_os_str() == "-" {
                return Err(CliError::usage(
                    "the message and the signature cannot both come from standard input",
                ));
            }
            let raw = read_input(Some(f))?;
            decode(a.encoding.unwrap_or(Encoding::Raw), &raw).map_err(CliError::usage)?
        }
        (None, None) => {
            return Err(CliError::usage(
                "--signature or --signature-file is required",
            ))
        }
    };
    let data = read_input(a.input.file.as_deref())?;
    let input = if a.input.digest {
        pb::verify_request::Input::Digest(data)
    } else {
        pb::verify_request::Input::Message(data)
    };
    let req = pb::VerifyRequest {
        key: a.input.key.clone(),
        version: version(a.input.version)?,
        input: Some(input),
        signature,
        signature_format: a.input.format.pb(),
    };
    let mut client = SignerClient::new(connect(global).await?);
    let resp = client.verify(req).await?.into_inner();
    if global.json {
        print_json(&json!({
            "valid": resp.valid,
            "version": resp.version,
            "key_version_id": resp.key_version_id,
        }))?;
    } else if resp.valid {
        let id = if resp.key_version_id.is_empty() {
            format!("{}:v{}", a.input.key, resp.version)
        } else {
            resp.key_version_id.clone()
        };
        write_output(None, format!("valid ({id})\n").as_bytes())?;
    } else {
        write_output(None, b"invalid\n")?;
    }
    if resp.valid {
        Ok(())
    } else {
        Err(CliError {
            code: EXIT_INVALID,
            message: String::new(),
            status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let sig = [0u8, 1, 2, 250, 251, 255, 62, 63];
        for enc in [Encoding::Base64, Encoding::Hex, Encoding::Raw] {
            assert_eq!(decode(enc, &encode(enc, &sig)).unwrap(), sig, "{enc:?}");
        }
        assert_eq!(encode(Encoding::Hex, &[0xab, 1]), b"ab01");
        assert_eq!(encode(Encoding::Base64, &[0xfb, 0xff]), b"+/8=");
    }

    #[test]
    fn lenient_decoding() {
        assert_eq!(decode(Encoding::Base64, b"-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode(Encoding::Base64, b"+/8=\n").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode(Encoding::Hex, b"AB 01\n").unwrap(), [0xab, 1]);
        assert!(decode(Encoding::Hex, b"abc").is_err());
        assert!(decode(Encoding::Base64, b"!!").is_err());
        assert!(decode(Encoding::Base64, b" \n").is_err());
        assert_eq!(decode(Encoding::Raw, b" x").unwrap(), b" x");
    }

    #[test]
    fn versions() {
        assert_eq!(version(None).unwrap(), 0);
        assert_eq!(version(Some(3)).unwrap(), 3);
        assert!(version(Some(0)).is_err());
    }
}
