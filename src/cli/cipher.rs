//! `signet encrypt`, `decrypt`, `reencrypt` and `datakey`, through the
//! CipherService (docs/encryption.md).
//!
//! Outputs are bytes: to `--out`, or to standard output when it is not a
//! terminal. With `--json`, standard output gets a JSON object with the
//! bytes in base64 instead.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::Args;
use serde_json::json;

use super::client::{connect, print_json, read_input, write_binary, CliError, CliResult};
use super::Global;
use crate::api::pb;
use crate::api::pb::cipher_service_client::CipherServiceClient;

/// The key, the input and the associated data, shared by the commands.
#[derive(Debug, Args)]
pub(crate) struct CipherInput {
    /// The key's name (an AES_256_GCM key).
    #[arg(long, short)]
    pub key: String,
    /// Read the input from this file ("-" or absent: standard input).
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// Associated data, as text: authenticated, not encrypted; decrypting
    /// needs the same.
    #[arg(long, conflicts_with = "aad_file")]
    pub aad: Option<String>,
    /// Associated data read from a file.
    #[arg(long)]
    pub aad_file: Option<PathBuf>,
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

impl CipherInput {
    fn aad(&self) -> CliResult<Vec<u8>> {
        match (&self.aad, &self.aad_file) {
            (Some(t), _) => Ok(t.as_bytes().to_vec()),
            (None, Some(f)) => read_input(Some(f)),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// `signet encrypt`.
#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    #[command(flatten)]
    pub input: CipherInput,
    /// Write a JWE (compact, alg dir, enc A256GCM) instead of signet's
    /// format: for a partner who holds the same key. No --aad.
    #[arg(long)]
    pub jwe: bool,
}

/// `signet decrypt` and `signet reencrypt`.
#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    #[command(flatten)]
    pub input: CipherInput,
}

/// `signet datakey`.
#[derive(Debug, Args)]
pub(crate) struct DataKeyArgs {
    /// The key that encrypts the data key.
    #[arg(long, short)]
    pub key: String,
    /// Associated data for the encrypted data key, as text.
    #[arg(long)]
    pub aad: Option<String>,
    /// Write the encrypted data key here (standard output when absent).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Write the plaintext data key (32 bytes) to this file, created
    /// readable by its owner only. Without it, no plaintext is asked for
    /// (GenerateDataKeyWithoutPlaintext).
    #[arg(long)]
    pub plaintext_out: Option<PathBuf>,
}

/// Writes `bytes` where `out` says, or describes them as JSON.
fn emit(
    global: &Global,
    out: Option<&PathBuf>,
    bytes: &[u8],
    mut j: serde_json::Value,
) -> CliResult {
    if global.json && out.is_none() {
        j["output"] = STANDARD.encode(bytes).into();
        return print_json(&j);
    }
    write_binary(out, bytes)?;
    if global.json {
        return print_json(&j);
    }
    Ok(())
}

/// Runs `signet encrypt`.
pub(crate) async fn encrypt(global: &Global, a: EncryptArgs) -> CliResult {
    let plaintext = read_input(a.input.file.as_deref())?;
    let format = if a.jwe {
        pb::CiphertextFormat::JweCompact
    } else {
        pb::CiphertextFormat::Signet
    };
    let req = pb::EncryptRequest {
        key: a.input.key.clone(),
        plaintext,
        associated_data: a.input.aad()?,
        format: format as i32,
    };
    let mut client = CipherServiceClient::new(connect(global).await?);
    let r = client.encrypt(req).await?.into_inner();
    let j = json!({"version": r.version, "key_version_id": r.key_version_id});
    emit(global, a.input.out.as_ref(), &r.ciphertext, j)?;
    eprintln!("encrypted with {}", r.key_version_id);
    Ok(())
}

/// Runs `signet decrypt`.
pub(crate) async fn decrypt(global: &Global, a: DecryptArgs) -> CliResult {
    let req = pb::DecryptRequest {
        key: a.input.key.clone(),
        ciphertext: read_input(a.input.file.as_deref())?,
        associated_data: a.input.aad()?,
    };
    let mut client = CipherServiceClient::new(connect(global).await?);
    let r = client.decrypt(req).await?.into_inner();
    let j = json!({"version": r.version, "key_version_id": r.key_version_id});
    emit(global, a.input.out.as_ref(), &r.plaintext, j)?;
    eprintln!("decrypted with {}", r.key_version_id);
    Ok(())
}

/// Runs `signet reencrypt`.
pub(crate) async fn reencrypt(global: &Global, a: DecryptArgs) -> CliResult {
    let req = pb::ReEncryptRequest {
        key: a.input.key.clone(),
        ciphertext: read_input(a.input.file.as_deref())?,
        associated_data: a.input.aad()?,
    };
    let mut client = CipherServiceClient::new(connect(global).await?);
    let r = client.re_encrypt(req).await?.into_inner();
    let j = json!({
        "version": r.version,
        "key_version_id": r.key_version_id,
        "source_version": r.source_version,
    });
    emit(global, a.input.out.as_ref(), &r.ciphertext, j)?;
    eprintln!(
        "re-encrypted from version {} to {}",
        r.source_version, r.key_version_id
    );
    Ok(())
}

/// Writes a secret to a new file only its owner can read.
fn write_private(path: &PathBuf, bytes: &[u8]) -> CliResult {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))
}

/// Runs `signet datakey`.
pub(crate) async fn datakey(global: &Global, a: DataKeyArgs) -> CliResult {
    let aad = a.aad.clone().unwrap_or_default().into_bytes();
    let mut client = CipherServiceClient::new(connect(global).await?);
    let (ciphertext, version, kid) = match &a.plaintext_out {
        Some(p) => {
            let r = client
                .generate_data_key(pb::GenerateDataKeyRequest {
                    key: a.key.clone(),
                    associated_data: aad,
                })
                .await?
                .into_inner();
            write_private(p, &r.plaintext)?;
            (r.ciphertext, r.version, r.key_version_id)
        }
        None => {
            let r = client
                .generate_data_key_without_plaintext(pb::GenerateDataKeyWithoutPlaintextRequest {
                    key: a.key.clone(),
                    associated_data: aad,
                })
                .await?
                .into_inner();
            (r.ciphertext, r.version, r.key_version_id)
        }
    };
    let j = json!({"version": version, "key_version_id": kid});
    emit(global, a.out.as_ref(), &ciphertext, j)?;
    eprintln!("data key encrypted with {kid}");
    Ok(())
}
