//! `signet keys wrapping-key`, `signet keys wrap` and `signet keys
//! export`: what a custodian needs to move a key in or out without it
//! ever crossing the wire in the clear (docs/byok.md). `wrap` runs locally
//! and talks to no server.

use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use super::client::{connect, read_input, write_binary, write_output, CliError, CliResult};
use super::Global;
use crate::api::pb;
use crate::api::pb::key_admin_client::KeyAdminClient;

/// `signet keys wrapping-key`.
#[derive(Debug, Args)]
pub(crate) struct WrappingKeyArgs {
    /// Write the PEM to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `signet keys wrap`.
#[derive(Debug, Args)]
pub(crate) struct WrapArgs {
    /// The import wrapping key, PEM (what `keys wrapping-key` wrote).
    #[arg(long)]
    pub public_key: PathBuf,
    /// The key to wrap: a raw HMAC secret or AES key, or a private key as
    /// PKCS#8 (PEM or DER).
    #[arg(long, short)]
    pub file: PathBuf,
    /// Write the wrapped material here (standard output when absent).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The scheme the server named (`keys wrapping-key` prints it):
    /// RSA_OAEP_3072_SHA256_AES_256 or RSA_OAEP_3072_SHA1_AES_256.
    #[arg(long, default_value = "RSA_OAEP_3072_SHA256_AES_256")]
    pub scheme: String,
}

/// `signet keys export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The key's name (created with --exportable).
    pub name: String,
    /// The recipient's RSA public key (2048 to 8192 bits), PEM or DER:
    /// the key is wrapped to it.
    #[arg(long, value_name = "PUB.pem")]
    pub wrap_to: PathBuf,
    /// The version to export (default: the ACTIVE one).
    #[arg(long)]
    pub version: Option<u32>,
    /// RSA_OAEP_3072_SHA256_AES_256 or RSA_OAEP_3072_SHA1_AES_256; by
    /// default the best the server's backend offers (it prints which).
    #[arg(long)]
    pub scheme: Option<String>,
    /// Write the wrapped material here (standard output when absent).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Runs `signet keys export`: the wrapped bytes to `--out`, what they
/// are to standard error (or, with --json, standard output when --out is
/// given).
pub(crate) async fn export(global: &Global, a: ExportArgs) -> CliResult {
    let recipient = read_input(Some(&a.wrap_to))?;
    let mut client = KeyAdminClient::new(connect(global).await?);
    let r = client
        .export_key(pb::ExportKeyRequest {
            name: a.name,
            version: a.version.unwrap_or(0),
            wrapping_public_key: recipient,
            wrapping_scheme: a.scheme.unwrap_or_default(),
        })
        .await?
        .into_inner();
    write_binary(a.out.as_ref(), &r.wrapped_material)?;
    let alg = super::client::algorithm_name(r.algorithm);
    if global.json && a.out.is_some() {
        let v = serde_json::json!({
            "key_version_id": r.key_version_id,
            "algorithm": alg,
            "wrapping_scheme": r.wrapping_scheme,
            "wrapping_key_sha256": r.wrapping_key_sha256,
            "wrapped_bytes": r.wrapped_material.len(),
        });
        super::client::print_json(&v)?;
    } else {
        eprintln!(
            "exported {} ({alg}) wrapped with {} to the key with SHA-256 {}",
            r.key_version_id, r.wrapping_scheme, r.wrapping_key_sha256
        );
    }
    Ok(())
}

/// Runs `signet keys wrapping-key`.
pub(crate) async fn wrapping_key(global: &Global, a: WrappingKeyArgs) -> CliResult {
    let mut client = KeyAdminClient::new(connect(global).await?);
    let r = client
        .get_import_wrapping_key(pb::GetImportWrappingKeyRequest {})
        .await?
        .into_inner();
    write_output(a.out.as_ref(), r.public_key_pem.as_bytes())?;
    eprintln!(
        "import wrapping key; wrap with --scheme {}",
        r.wrapping_scheme
    );
    Ok(())
}

/// Runs `signet keys wrap`: PKCS#8 PEM becomes DER first, anything else
/// is wrapped as it is.
pub(crate) fn wrap(a: WrapArgs) -> CliResult {
    let pem = read_input(Some(&a.public_key))?;
    let text = std::str::from_utf8(&pem)
        .map_err(|_| CliError::usage("--public-key must be a PEM file"))?;
    let (label, spki) = der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|_| CliError::usage("--public-key must be a PEM file"))?;
    if label != "PUBLIC KEY" {
        return Err(CliError::usage("--public-key must be a PUBLIC KEY PEM"));
    }
    let material = Zeroizing::new(read_input(Some(&a.file))?);
    let trimmed = material.trim_ascii();
    let material = if trimmed.starts_with(b"-----BEGIN PRIVATE KEY-----") {
        let (_, der) = der::pem::decode_vec(trimmed)
            .map_err(|_| CliError::usage(format!("{}: malformed PEM", a.file.display())))?;
        Zeroizing::new(der)
    } else if trimmed.starts_with(b"-----BEGIN ") {
        return Err(CliError::usage(
            "only PKCS#8 (PRIVATE KEY) PEM is wrapped; convert with `openssl pkcs8 -topk8 -nocrypt`",
        ));
    } else {
        material
    };
    let hash = crate::keys::wrap::OaepHash::from_scheme(&a.scheme)
        .ok_or_else(|| CliError::usage(format!("unknown --scheme {:?}", a.scheme)))?;
    let wrapped = crate::keys::wrap::wrap(&spki, hash, &material)
        .map_err(|e| CliError::usage(e.message().to_owned()))?;
    write_binary(a.out.as_ref(), &wrapped)?;
    eprintln!("wrapped {} bytes of material", material.len());
    Ok(())
}
