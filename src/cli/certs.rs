//! `signet keys csr`, `signet keys import-chain` and `signet keys chain`:
//! a certificate for a key version, from the request to the chain a CA
//! returns (docs/certificates.md).

use std::path::PathBuf;

use clap::Args;

use super::client::{connect, print_json, read_input, write_output, CliError, CliResult};
use super::Global;
use crate::api::pb;
use crate::api::pb::key_admin_client::KeyAdminClient;
use crate::api::pb::signer_client::SignerClient;

/// `signet keys csr`.
#[derive(Debug, Args)]
pub(crate) struct CsrArgs {
    /// The key's name.
    pub name: String,
    /// The version (default: the ACTIVE one); PENDING or ACTIVE.
    #[arg(long)]
    pub version: Option<u32>,
    /// A subject attribute, TYPE=VALUE, most significant first; repeat
    /// (e.g. --subject C=DE --subject "O=Zahlung GmbH" --subject
    /// organizationIdentifier=PSDDE-BAFIN-123456 --subject "CN=Zahlung").
    #[arg(long = "subject", value_name = "TYPE=VALUE", value_parser = parse_attribute)]
    pub subject: Vec<(String, String)>,
    /// A subjectAltName DNS name; repeat for more.
    #[arg(long = "dns", value_name = "NAME")]
    pub dns_names: Vec<String>,
    /// A subjectAltName URI; repeat for more.
    #[arg(long = "uri", value_name = "URI")]
    pub uris: Vec<String>,
    /// A subjectAltName email address; repeat for more.
    #[arg(long = "email", value_name = "ADDRESS")]
    pub emails: Vec<String>,
    /// Write the request (PEM) here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `signet keys import-chain`.
#[derive(Debug, Args)]
pub(crate) struct ImportChainArgs {
    /// The key's name.
    pub name: String,
    /// The version (default: the ACTIVE one).
    #[arg(long)]
    pub version: Option<u32>,
    /// The chain: PEM certificates, leaf first, or one DER certificate
    /// ("-" for standard input).
    #[arg(long, short)]
    pub file: PathBuf,
}

/// `signet keys chain`.
#[derive(Debug, Args)]
pub(crate) struct ChainArgs {
    /// The key's name.
    pub name: String,
    /// The version (default: the ACTIVE one).
    #[arg(long)]
    pub version: Option<u32>,
    /// Write the chain (PEM) here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `TYPE=VALUE`, split at the first `=`.
fn parse_attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((t, v)) if !t.is_empty() && !v.is_empty() => Ok((t.into(), v.into())),
        _ => Err(format!("{s:?} is not TYPE=VALUE")),
    }
}

fn not_after(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| {
        let secs = u64::try_from(t.seconds).ok()?;
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        Some(humantime::format_rfc3339_seconds(at).to_string())
    })
    .unwrap_or_default()
}

/// Runs `signet keys csr`: the PEM to `--out` or standard output.
pub(crate) async fn csr(global: &Global, a: CsrArgs) -> CliResult {
    let mut client = KeyAdminClient::new(connect(global).await?);
    let r = client
        .create_certificate_request(pb::CreateCertificateRequestRequest {
            name: a.name,
            version: a.version.unwrap_or(0),
            subject: a
                .subject
                .into_iter()
                .map(|(r#type, value)| pb::NameAttribute { r#type, value })
                .collect(),
            dns_names: a.dns_names,
            uris: a.uris,
            emails: a.emails,
        })
        .await?
        .into_inner();
    write_output(a.out.as_ref(), r.csr_pem.as_bytes())?;
    eprintln!("certificate request signed by {}", r.key_version_id);
    Ok(())
}

/// Runs `signet keys import-chain`.
pub(crate) async fn import_chain(global: &Global, a: ImportChainArgs) -> CliResult {
    let chain = read_input(Some(&a.file))?;
    if chain.is_empty() {
        return Err(CliError::usage(format!("{} is empty", a.file.display())));
    }
    let mut client = KeyAdminClient::new(connect(global).await?);
    let r = client
        .import_certificate_chain(pb::ImportCertificateChainRequest {
            name: a.name,
            version: a.version.unwrap_or(0),
            chain,
        })
        .await?
        .into_inner();
    let not_after = not_after(r.not_after.as_ref());
    if global.json {
        print_json(&serde_json::json!({
            "key_version_id": r.key_version_id,
            "certificates": r.certificates,
            "not_after": not_after,
        }))
    } else {
        let line = format!(
            "{}: {} certificates attached, the leaf valid until {not_after}\n",
            r.key_version_id, r.certificates
        );
        write_output(None, line.as_bytes())
    }
}

/// Runs `signet keys chain`: the PEM to `--out` or standard output; with
/// --json, what the leaf says (and the PEM) as JSON.
pub(crate) async fn chain(global: &Global, a: ChainArgs) -> CliResult {
    let mut client = SignerClient::new(connect(global).await?);
    let r = client
        .get_certificate_chain(pb::GetCertificateChainRequest {
            key: a.name,
            version: a.version.unwrap_or(0),
        })
        .await?
        .into_inner();
    if global.json && a.out.is_none() {
        return print_json(&serde_json::json!({
            "key_version_id": r.key_version_id,
            "certificates": r.certificates.len(),
            "not_after": not_after(r.not_after.as_ref()),
            "serial": r.serial,
            "issuer": r.issuer,
            "chain_pem": r.chain_pem,
        }));
    }
    write_output(a.out.as_ref(), r.chain_pem.as_bytes())
}
