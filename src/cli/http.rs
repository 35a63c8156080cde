//! `signet http sign` and `signet http verify`: HTTP request signing and
//! webhook verification by profile, through the `Signer` service.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{
    connect, print_json, read_input, write_output, CliError, CliResult, EXIT_INVALID,
};
use super::Global;
use crate::api::names::ShortName;
use crate::api::pb;
use crate::api::pb::signer_client::SignerClient;

/// `signet http …`.
#[derive(Debug, Subcommand)]
pub(crate) enum HttpCommand {
    /// Sign an outbound request: print the headers to add.
    Sign(HttpSignArgs),
    /// Verify an incoming request (a webhook); exit code 0 when valid, 3
    /// when not (the reason is printed).
    Verify(HttpVerifyArgs),
    /// List the profiles the server loaded, every setting resolved.
    Profiles,
}

/// The request, shared by both.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// The profile's name.
    #[arg(long, short)]
    pub profile: String,
    /// The HTTP method.
    #[arg(long, short = 'X', default_value = "POST")]
    pub method: String,
    /// The URL as sent (absolute or origin-form).
    #[arg(long, short)]
    pub url: String,
    /// Read the body from this file ("-": standard input; absent: empty).
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// A header of the request, as 'Name: value' (repeat for each): what
    /// an RFC 9421 profile covers when signing, what was received when
    /// verifying.
    #[arg(long = "header", short = 'H', value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
}

impl RequestArgs {
    fn headers(&self) -> Vec<pb::HttpHeader> {
        self.headers
            .iter()
            .map(|(name, value)| pb::HttpHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }

    fn body(&self) -> CliResult<Vec<u8>> {
        match &self.body_file {
            None => Ok(Vec::new()),
            Some(p) => read_input(Some(p)),
        }
    }
}

/// `signet http sign`.
#[derive(Debug, Args)]
pub(crate) struct HttpSignArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    /// The nonce to use (profiles with a nonce; default: drawn by signet).
    #[arg(long)]
    pub nonce: Option<String>,
    /// Print a ready curl command instead of the headers.
    #[arg(long)]
    pub curl: bool,
}

/// `signet http verify`.
#[derive(Debug, Args)]
pub(crate) struct HttpVerifyArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    /// The sender's IP address (profiles with allowed_source_ips).
    #[arg(long)]
    pub source_ip: Option<String>,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (n, v) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not 'Name: value'"))?;
    let n = n.trim();
    if n.is_empty() {
        return Err(format!("{s:?} has no header name"));
    }
    Ok((n.to_string(), v.trim_start().to_string()))
}

/// POSIX shell single-quoting.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `signet http …`.
pub(crate) async fn run(global: &Global, cmd: HttpCommand) -> CliResult {
    match cmd {
        HttpCommand::Sign(a) => sign(global, a).await,
        HttpCommand::Verify(a) => verify(global, a).await,
        HttpCommand::Profiles => profiles(global).await,
    }
}

async fn profiles(global: &Global) -> CliResult {
    let mut client = SignerClient::new(connect(global).await?);
    let resp = client
        .list_http_profiles(pb::ListHttpProfilesRequest {})
        .await?
        .into_inner();
    if global.json {
        return print_json(&json!(resp
            .profiles
            .iter()
            .map(|p| json!({"name": p.name, "settings": p.settings.iter().collect::<std::collections::BTreeMap<_, _>>()}))
            .collect::<Vec<_>>()));
    }
    let mut out = String::new();
    for p in &resp.profiles {
        out.push_str(&format!("{}\n", p.name));
        let settings: std::collections::BTreeMap<_, _> = p.settings.iter().collect();
        for (k, v) in settings {
            out.push_str(&format!("  {k} = {v}\n"));
        }
    }
    if resp.profiles.is_empty() {
        out.push_str("no HTTP profiles loaded\n");
    }
    write_output(None, out.as_bytes())
}

async fn sign(global: &Global, a: HttpSignArgs) -> CliResult {
    let body = a.request.body()?;
    let req = pb::SignHttpRequestRequest {
        profile: a.request.profile.clone(),
        method: a.request.method.clone(),
        url: a.request.url.clone(),
        body,
        nonce: a.nonce.clone().unwrap_or_default(),
        headers: a.request.headers(),
    };
    let mut client = SignerClient::new(connect(global).await?);
    let resp = client.sign_http_request(req).await?.into_inner();
    if global.json {
        return print_json(&json!({
            "headers": resp.headers.iter().map(|h| json!({"name": h.name, "value": h.value})).collect::<Vec<_>>(),
            "timestamp": resp.timestamp,
            "nonce": resp.nonce,
            "version": resp.version,
            "key_version_id": resp.key_version_id,
            "string_to_sign": resp.string_to_sign,
        }));
    }
    let mut out = String::new();
    if a.curl {
        out.push_str(&format!(
            "curl -X {} {}",
            shell_quote(&a.request.method.to_ascii_uppercase()),
            shell_quote(&a.request.url)
        ));
        let given = a
            .request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let added = resp
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()));
        for (name, value) in given.chain(added) {
            out.push_str(&format!(
                " \\\n  -H {}",
                shell_quote(&format!("{name}: {value}"))
            ));
        }
        match &a.request.body_file {
            Some(p) if p.as_os_str() != "-" => out.push_str(&format!(
                " \\\n  --data-binary @{}",
                shell_quote(&p.display().to_string())
            )),
            _ => {}
        }
        out.push('\n');
    } else {
        for h in &resp.headers {
            out.push_str(&format!("{}: {}\n", h.name, h.value));
        }
    }
    write_output(None, out.as_bytes())
}

async fn verify(global: &Global, a: HttpVerifyArgs) -> CliResult {
    let body = a.request.body()?;
    let req = pb::VerifyHttpRequestRequest {
        profile: a.request.profile.clone(),
        method: a.request.method.clone(),
        url: a.request.url.clone(),
        body,
        headers: a.request.headers(),
        source_ip: a.source_ip.clone().unwrap_or_default(),
    };
    let mut client = SignerClient::new(connect(global).await?);
    let resp = client.verify_http_request(req).await?.into_inner();
    let reason = pb::VerifyFailureReason::try_from(resp.reason)
        .map(|r| r.short_name().to_string())
        .unwrap_or_else(|_| resp.reason.to_string());
    if global.json {
        print_json(&json!({
            "valid": resp.valid,
            "reason": if resp.valid { serde_json::Value::Null } else { json!(reason) },
            "version": resp.version,
            "key_version_id": resp.key_version_id,
            "timestamp": resp.timestamp,
        }))?;
    } else if resp.valid {
        write_output(
            None,
            format!("valid ({})\n", resp.key_version_id).as_bytes(),
        )?;
    } else {
        write_output(None, format!("invalid: {reason}\n").as_bytes())?;
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
    fn headers_and_quoting() {
        assert_eq!(
            parse_header("Stripe-Signature: t=1,v1=ab").unwrap(),
            ("Stripe-Signature".into(), "t=1,v1=ab".into())
        );
        assert_eq!(parse_header("X:").unwrap(), ("X".into(), String::new()));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": v").is_err());
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
