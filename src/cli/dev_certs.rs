//! `signet dev-certs DIR`: a throw-away certificate authority, a server
//! certificate for the listener and a client certificate for one identity,
//! so that TLS and mutual TLS can be tried in one command.
//!
//! The CA's private key is never written: nothing but these two
//! certificates can ever chain to `ca.crt`, and a copied directory cannot
//! mint more identities. Run the command again for new ones.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};

use super::client::{print_json, write_output, CliError, CliResult};
use super::Global;

/// `signet dev-certs`.
#[derive(Debug, Args)]
pub(crate) struct DevCertsArgs {
    /// Directory to write ca.crt, server.crt, server.key, client.crt,
    /// client.key and signet-tls.toml into (created when missing).
    pub dir: PathBuf,
    /// A name clients use to reach the server: a DNS name or an IP
    /// address (an IP SAN). Repeat for several. Default: localhost,
    /// 127.0.0.1 and ::1.
    #[arg(long = "server-name", value_name = "NAME")]
    pub server_names: Vec<String>,
    /// The client certificate's identity, the `name` of its
    /// [[auth.identities]]: a URI such as a SPIFFE id (a URI SAN) or a DNS
    /// name (a DNS SAN).
    #[arg(long, default_value = "spiffe://signet.dev/admin")]
    pub client_identity: String,
    /// The listen address written into the config snippet.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: std::net::SocketAddr,
    /// Days the certificates are valid (1 to 825).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u16).range(1..=825))]
    pub days: u16,
    /// Replace files already in DIR.
    #[arg(long)]
    pub force: bool,
}

/// The files the command writes, in order.
const FILES: [&str; 6] = [
    "ca.crt",
    "server.crt",
    "server.key",
    "client.crt",
    "client.key",
    "signet-tls.toml",
];

/// A certificate and its private key, PEM.
struct Pair {
    cert: String,
    key: zeroize::Zeroizing<String>,
}

/// Runs `signet dev-certs`.
pub(crate) fn run(g: &Global, a: DevCertsArgs) -> CliResult<()> {
    let names = if a.server_names.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    } else {
        a.server_names.clone()
    };
    let server_sans = names
        .iter()
        .map(|n| server_san(n))
        .collect::<CliResult<Vec<_>>>()?;
    let client_san = client_san(&a.client_identity)?;
    prepare_dir(&a.dir, a.force)?;
    let dir = a.dir.canonicalize().map_err(|e| io_error(&a.dir, e))?;

    let validity = std::time::Duration::from_secs(u64::from(a.days) * 86_400);
    let (ca_pem, issuer) = make_ca(validity)?;
    let server = leaf(
        &issuer,
        server_sans,
        &names[0],
        ExtendedKeyUsagePurpose::ServerAuth,
        validity,
    )?;
    let client = leaf(
        &issuer,
        vec![client_san],
        "signet dev client",
        ExtendedKeyUsagePurpose::ClientAuth,
        validity,
    )?;
    let snippet = config_snippet(&dir, a.listen, &a.client_identity);

    write_file(&dir.join("ca.crt"), ca_pem.as_bytes(), false)?;
    write_file(&dir.join("server.crt"), server.cert.as_bytes(), false)?;
    write_file(&dir.join("server.key"), server.key.as_bytes(), true)?;
    write_file(&dir.join("client.crt"), client.cert.as_bytes(), false)?;
    write_file(&dir.join("client.key"), client.key.as_bytes(), true)?;
    write_file(&dir.join("signet-tls.toml"), snippet.as_bytes(), false)?;

    let endpoint = client_endpoint(&names[0], a.listen.port());
    let flags = format!(
        "--endpoint {endpoint} --ca-file {d}/ca.crt --cert-file {d}/client.crt --key-file {d}/client.key",
        d = dir.display()
    );
    if g.json {
        return print_json(&serde_json::json!({
            "dir": dir.display().to_string(),
            "files": FILES,
            "server_names": names,
            "client_identity": a.client_identity,
            "config": dir.join("signet-tls.toml").display().to_string(),
            "client_flags": flags,
        }));
    }
    let text = format!(
        "wrote {files} in {d}\n\
         server certificate for: {names}; client identity: {id}; valid {days} days\n\n\
         serve with TLS and mutual TLS:\n  signet serve --config {d}/signet-tls.toml\n\
         call it:\n  signet {flags} keys list\n",
        files = FILES.join(", "),
        d = dir.display(),
        names = names.join(", "),
        id = a.client_identity,
        days = a.days,
    );
    write_output(None, text.as_bytes())
}

/// The SAN for a server name: an IP address or a DNS name.
fn server_san(name: &str) -> CliResult<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        });
    if !valid {
        return Err(CliError::usage(format!(
            "--server-name {name:?} is neither an IP address nor a DNS name"
        )));
    }
    let ia5 = name
        .try_into()
        .map_err(|_| CliError::usage(format!("--server-name {name:?} is not ASCII")))?;
    Ok(SanType::DnsName(ia5))
}

/// The SAN that carries a client identity: a URI SAN for a URI (signet
/// takes the first URI SAN as the identity), else a DNS SAN.
fn client_san(identity: &str) -> CliResult<SanType> {
    if identity.contains("://") {
        let (scheme, rest) = identity.split_once("://").unwrap_or_default();
        let ok = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !rest.is_empty()
            && identity.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(CliError::usage(format!(
                "--client-identity {identity:?} is not a valid URI"
            )));
        }
        let ia5 = identity
            .try_into()
            .map_err(|_| CliError::usage("--client-identity is not ASCII"))?;
        return Ok(SanType::URI(ia5));
    }
    match server_san(identity) {
        Ok(SanType::DnsName(n)) => Ok(SanType::DnsName(n)),
        _ => Err(CliError::usage(format!(
            "--client-identity {identity:?} is neither a URI (spiffe://...) nor a DNS name"
        ))),
    }
}

/// Refuses to overwrite files unless `force`.
fn prepare_dir(dir: &Path, force: bool) -> CliResult<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    if !force {
        let existing: Vec<&str> = FILES
            .iter()
            .copied()
            .filter(|f| dir.join(f).exists())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::usage(format!(
                "{} already holds {}; pass --force to replace them",
                dir.display(),
                existing.join(", ")
            )));
        }
    }
    Ok(())
}

fn io_error(p: &Path, e: std::io::Error) -> CliError {
    CliError::usage(format!("cannot write {}: {e}", p.display()))
}

/// Validity from now: backdated an hour for clocks slightly behind.
fn set_validity(p: &mut CertificateParams, validity: std::time::Duration) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + validity;
}

fn cert_error(e: rcgen::Error) -> CliError {
    CliError::usage(format!("cannot make the certificates: {e}"))
}

/// A CA that may sign end-entity certificates only (path length 0).
fn make_ca(validity: std::time::Duration) -> CliResult<(String, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_error)?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // A name of its own: two runs' CAs must not look like one issuer.
    let mut id = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    p.distinguished_name.push(
        DnType::CommonName,
        format!("signet dev-certs CA {} (throw-away)", hex::encode(id)),
    );
    set_validity(&mut p, validity);
    let pem = p.self_signed(&key).map_err(cert_error)?.pem();
    Ok((pem, Issuer::new(p, key)))
}

/// An end-entity certificate (`CA:FALSE`) for one purpose.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    sans: Vec<SanType>,
    cn: &str,
    purpose: ExtendedKeyUsagePurpose,
    validity: std::time::Duration,
) -> CliResult<Pair> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_error)?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    p.subject_alt_names = sans;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![purpose];
    p.distinguished_name.push(DnType::CommonName, cn);
    set_validity(&mut p, validity);
    let cert = p.signed_by(&key, issuer).map_err(cert_error)?;
    Ok(Pair {
        cert: cert.pem(),
        key: zeroize::Zeroizing::new(key.serialize_pem()),
    })
}

/// The `https://` URL for the first server name.
fn client_endpoint(name: &str, port: u16) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{port}"),
        _ => format!("https://{name}:{port}"),
    }
}

/// A complete configuration that serves mutual TLS with the new files and
/// lets the client identity administer keys and sign with them.
fn config_snippet(dir: &Path, listen: std::net::SocketAddr, identity: &str) -> String {
    let d = dir.display().to_string();
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "# Written by `signet dev-certs`: throw-away certificates for trying TLS.\n\
         [server]\nlisten = {listen}\n\n[server.tls]\n\
         cert_file = {cert}\nkey_file = {key}\nclient_ca_file = {ca}\n\
         require_client_cert = true\n\n\
         [backend]\ntype = \"memory\"\ndemo_keys = true\n\n\
         # The client certificate's identity: every admin operation and\n\
         # signing on every key. Narrow the grants before real use.\n\
         [[auth.identities]]\nname = {id}\n\
         [[auth.identities.grants]]\noperations = [\"admin.*\", \"sign\", \"verify\", \"public_key\"]\nkeys = [\"*\"]\n",
        listen = q(&listen.to_string()),
        cert = q(&format!("{d}/server.crt")),
        key = q(&format!("{d}/server.key")),
        ca = q(&format!("{d}/ca.crt")),
        id = q(identity),
    )
}

/// Writes a file; keys are created readable by their owner only.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> CliResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    opts.mode(if secret { 0o600 } else { 0o644 });
    let mut f = opts.open(path).map_err(|e| io_error(path, e))?;
    if secret {
        // An existing file keeps its mode on open: narrow it first.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(path, e))?;
    }
    f.write_all(bytes).map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_the_right_sans() {
        assert!(matches!(
            server_san("127.0.0.1").unwrap(),
            SanType::IpAddress(_)
        ));
        assert!(matches!(server_san("::1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(
            server_san("signet.payments.svc").unwrap(),
            SanType::DnsName(_)
        ));
        for bad in [
            "",
            "a b",
            "-x.example",
            "x..y",
            "127.0.0.1:50051",
            "https://x",
        ] {
            assert!(server_san(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            client_san("spiffe://example.org/payments-api").unwrap(),
            SanType::URI(_)
        ));
        assert!(matches!(
            client_san("payments.internal").unwrap(),
            SanType::DnsName(_)
        ));
        for bad in ["://x", "spiffe://", "a b://x", "not a name"] {
            assert!(client_san(bad).is_err(), "{bad:?}");
        }
        assert_eq!(client_endpoint("::1", 7), "https://[::1]:7");
        assert_eq!(client_endpoint("localhost", 7), "https://localhost:7");
    }
}
