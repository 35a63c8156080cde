//! `signet public-key`: export a version's public key or the key's JWKS.

use std::path::PathBuf;

use base64::Engine as _;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::client::{algorithm_name, connect, print_json, write_output, CliError, CliResult};
use super::render::state_name;
use super::sign::{encode, version, Encoding};
use super::Global;
use crate::api::names::ShortName;
use crate::api::pb;
use crate::api::pb::signer_client::SignerClient;

/// Public key encodings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyFormat {
    /// SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY").
    #[default]
    Pem,
    /// PKCS#1 PEM ("BEGIN RSA PUBLIC KEY"), RSA only.
    PemPkcs1,
    /// SubjectPublicKeyInfo DER: raw bytes to --out, base64 on standard output.
    Der,
    /// One JSON Web Key.
    Jwk,
    /// The key's JWKS document (PENDING, ACTIVE and RETIRING versions).
    Jwks,
    /// Standard Webhooks' `whpk_` + base64 of the raw key, Ed25519 only.
    Whpk,
}

/// `signet public-key`.
#[derive(Debug, Args)]
pub(crate) struct PublicKeyArgs {
    /// The key's name.
    #[arg(long, short)]
    pub key: String,
    /// Version number; default: the ACTIVE version.
    #[arg(long, short)]
    pub version: Option<u32>,
    /// Encoding of the public key.
    #[arg(long, value_enum, default_value_t = KeyFormat::Pem)]
    pub format: KeyFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Runs `signet public-key`.
pub(crate) async fn run(global: &Global, a: PublicKeyArgs) -> CliResult {
    let mut client = SignerClient::new(connect(global).await?);
    if a.format == KeyFormat::Jwks {
        if a.version.is_some() {
            return Err(CliError::usage("--version does not apply to --format jwks"));
        }
        let resp = client
            .get_jwks(pb::GetJwksRequest { key: a.key })
            .await?
            .into_inner();
        let text = match serde_json::from_str::<serde_json::Value>(&resp.jwks) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(resp.jwks),
            Err(_) => resp.jwks,
        };
        return write_output(a.out.as_ref(), format!("{}\n", text.trim_end()).as_bytes());
    }
    if a.format == KeyFormat::Whpk {
        let resp = client
            .get_public_key(pb::GetPublicKeyRequest {
                key: a.key,
                version: version(a.version)?,
                format: pb::PublicKeyFormat::Der as i32,
            })
            .await?
            .into_inner();
        let whpk = crate::httpsig::whsk::encode_public(&resp.public_key)
            .ok_or_else(|| CliError::usage("--format whpk is for Ed25519 keys"))?;
        return write_output(a.out.as_ref(), format!("{whpk}\n").as_bytes());
    }
    let format = match a.format {
        KeyFormat::Pem => pb::PublicKeyFormat::Pem,
        KeyFormat::PemPkcs1 => pb::PublicKeyFormat::PemPkcs1,
        // (whpk was answered above, from the DER.)
        KeyFormat::Der | KeyFormat::Whpk => pb::PublicKeyFormat::Der,
        KeyFormat::Jwk | KeyFormat::Jwks => pb::PublicKeyFormat::Jwk,
    };
    let req = pb::GetPublicKeyRequest {
        key: a.key,
        version: version(a.version)?,
        format: format as i32,
    };
    let resp = client.get_public_key(req).await?.into_inner();
    let binary = a.format == KeyFormat::Der;
    let jwk = (a.format == KeyFormat::Jwk)
        .then(|| serde_json::from_slice::<serde_json::Value>(&resp.public_key).ok())
        .flatten();
    // What a file (or, without --json, standard output) receives.
    let material = match &jwk {
        Some(v) => serde_json::to_vec_pretty(v).unwrap_or_else(|_| resp.public_key.clone()),
        None => resp.public_key.clone(),
    };
    if let Some(out) = &a.out {
        write_output(Some(out), &with_newline(material.clone(), binary))?;
    }
    if global.json {
        // A JWK is JSON itself: an object, not a string holding one.
        let public_key = match (jwk, binary) {
            (Some(v), _) => v,
            (None, true) => base64::engine::general_purpose::STANDARD
                .encode(&resp.public_key)
                .into(),
            (None, false) => String::from_utf8_lossy(&resp.public_key).into(),
        };
        let mut j = json!({
            "public_key": public_key,
            "format": format.short_name(),
            "algorithm": algorithm_name(resp.algorithm),
            "version": resp.version,
            "key_version_id": resp.key_version_id,
            "state": state_name(resp.state),
        });
        if let Some(out) = &a.out {
            j["out"] = out.display().to_string().into();
        }
        return print_json(&j);
    }
    if a.out.is_some() {
        return Ok(());
    }
    if binary {
        let mut b = encode(Encoding::Base64, &resp.public_key);
        b.push(b'\n');
        write_output(None, &b)
    } else {
        write_output(None, &with_newline(material, false))
    }
}

/// Text ends with a newline; DER is written as it is.
fn with_newline(mut bytes: Vec<u8>, binary: bool) -> Vec<u8> {
    if !binary && bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    bytes
}
