//! TLS to the database: the connector the pool and the listener share.
//!
//! Without `postgres.ca_file` the connections are plaintext, as before,
//! and a URL asking for TLS (`sslmode=require`) is refused, because TLS
//! without a CA to verify the server against would only look safe. With
//! it, TLS is required (whatever the URL's `sslmode` says, bar `disable`,
//! which is refused), TLS 1.2 or 1.3 only (rustls offers nothing older),
//! and the server's certificate must chain to a CA in that file and name
//! the URL's host (a DNS name, or an IP address in an IP SAN). A client
//! certificate (`client_cert_file`, `client_key_file`) is offered when
//! configured, for servers that ask for one (`clientcert=` in pg_hba).
//!
//! The files are read once, at start-up; errors name the file, never what
//! is in it.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PostgresConfig;
use crate::error::ConfigError;

/// How connections to the database are made.
#[derive(Clone)]
pub(crate) enum Connector {
    /// Plaintext (no `postgres.ca_file`).
    Plain,
    /// TLS, verified against `postgres.ca_file`.
    Tls(MakeRustlsConnect),
}

impl Connector {
    /// Whether connections use TLS.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Connector::Tls(_))
    }
}

/// The connector `cfg` asks for, after checking it against the URL's
/// `sslmode` and hosts; with TLS, `config` is set to require it.
pub(crate) fn connector(
    cfg: &PostgresConfig,
    config: &mut tokio_postgres::Config,
) -> Result<Connector, ConfigError> {
    let mode = config.get_ssl_mode();
    let Some(ca_file) = &cfg.ca_file else {
        if mode == SslMode::Require {
            return Err(ConfigError::naming(
                "postgres.ca_file",
                "the database URL says sslmode=require, but postgres.ca_file is not set: set \
                 postgres.ca_file to the PEM file of the CA that signs the database server's \
                 certificate (signet verifies the server; it has no TLS without verification)",
            ));
        }
        // `prefer` (the default) with no way to make TLS is plaintext.
        return Ok(Connector::Plain);
    };
    if mode == SslMode::Disable {
        return Err(ConfigError::naming(
            "postgres.ca_file",
            "postgres.ca_file is set, so TLS is required, but the database URL says \
             sslmode=disable: remove sslmode from the URL (or set sslmode=require), or unset \
             postgres.ca_file",
        ));
    }
    if config
        .get_hosts()
        .iter()
        .any(|h| matches!(h, Host::Unix(_)))
    {
        return Err(ConfigError::naming(
            "postgres.ca_file",
            "postgres.ca_file is set, so TLS is required, but the database URL names a unix \
             socket, over which PostgreSQL has no TLS: use a TCP host, or unset postgres.ca_file",
        ));
    }
    config.ssl_mode(SslMode::Require);
    Ok(Connector::Tls(MakeRustlsConnect::new(client_config(
        cfg, ca_file,
    )?)))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls client configuration: the CA bundle as the only roots,
/// TLS 1.3 and 1.2, the client certificate if configured.
fn client_config(cfg: &PostgresConfig, ca_file: &Path) -> Result<ClientConfig, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file, "postgres.ca_file")? {
        roots.add(cert).map_err(|_| {
            refused(
                "postgres.ca_file",
                ca_file,
                "holds a certificate that is not a usable CA certificate",
            )
        })?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::new("postgres.ca_file", e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&cfg.client_cert_file, &cfg.client_key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certs = read_certs(cert_file, "postgres.client_cert_file")?;
            // The key's content never reaches a message: only its path.
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|_| {
                refused(
                    "postgres.client_key_file",
                    key_file,
                    "no readable PEM private key",
                )
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|_| {
                ConfigError::naming(
                    "postgres.client_key_file",
                    format!(
                        "postgres.client_cert_file {} and postgres.client_key_file {} do not \
                         make a pair (or the key's type is not supported)",
                        cert_file.display(),
                        key_file.display()
                    ),
                )
            })?
        }
        // The config check requires both or neither.
        _ => builder.with_no_client_auth(),
    };
    // What libpq 17 sends, and what a server accepting direct TLS
    // (sslnegotiation=direct) requires.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// `field PATH: why`, naming the file and never its content.
fn refused(field: &'static str, path: &Path, why: &str) -> ConfigError {
    ConfigError::naming(field, format!("{field} {}: {why}", path.display()))
}

/// The PEM certificates in `path`: at least one.
fn read_certs(
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    use rustls_pki_types::pem::Error;
    // pem's own messages may quote a line of the file: not shown.
    let why = |e: Error| match e {
        Error::Io(e) => e.to_string(),
        _ => "not a well-formed PEM file".to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| refused(field, path, &why(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(field, path, &why(e)))?;
    if certs.is_empty() {
        return Err(refused(field, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// What a failed TLS handshake means, in words an operator can act on,
/// when the cause is the server's certificate.
pub(crate) fn explain(e: &tokio_postgres::Error) -> Option<&'static str> {
    use rustls::CertificateError as C;
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let tls = c.downcast_ref::<rustls::Error>().or_else(|| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(cert)) = tls {
            return Some(match cert {
                C::UnknownIssuer | C::BadSignature => {
                    "the server's certificate is not trusted: no CA in postgres.ca_file \
                     signed it"
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the server's certificate does not name the URL's host, as a DNS name or an \
                     IP address SAN"
                }
                C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired",
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet"
                }
                C::Revoked => "the server's certificate is revoked",
                _ => "the server's certificate is refused",
            });
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use super::*;

    fn cfg(ca: Option<&str>) -> PostgresConfig {
        PostgresConfig {
            url_file: None,
            url_env: Some("X".into()),
            schema: "signet".into(),
            pool_size: 1,
            connect_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
            heartbeat: Duration::from_secs(1),
            resync_interval: Duration::from_secs(1),
            ca_file: ca.map(Into::into),
            client_cert_file: None,
            client_key_file: None,
        }
    }

    fn url(s: &str) -> tokio_postgres::Config {
        tokio_postgres::Config::from_str(s).unwrap()
    }

    #[test]
    fn without_a_ca_plaintext_and_no_require() {
        for u in [
            "postgres://u@h/d",
            "postgres://u@h/d?sslmode=prefer",
            "postgres://u@h/d?sslmode=disable",
        ] {
            let c = connector(&cfg(None), &mut url(u)).unwrap();
            assert!(!c.is_tls(), "{u}");
        }
        let e = connector(&cfg(None), &mut url("postgres://u@h/d?sslmode=require"))
            .err()
            .unwrap();
        assert_eq!(e.field(), "postgres.ca_file");
        assert!(e.to_string().contains("set postgres.ca_file"), "{e}");
    }

    #[test]
    fn a_ca_requires_tls_and_refuses_disable_and_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        // Not parsed before the checks on the URL.
        let e = connector(
            &cfg(Some(ca.to_str().unwrap())),
            &mut url("postgres://u@h/d?sslmode=disable"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("sslmode=disable"), "{e}");
        let e = connector(
            &cfg(Some(ca.to_str().unwrap())),
            &mut url("host=/run/postgresql user=u dbname=d"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("unix socket"), "{e}");
        // A missing file is named, with the reason.
        let e = connector(
            &cfg(Some(ca.to_str().unwrap())),
            &mut url("postgres://u@h/d"),
        )
        .err()
        .unwrap();
        let shown = e.to_string();
        assert!(
            shown.contains("postgres.ca_file") && shown.contains("ca.pem"),
            "{shown}"
        );
        // A file that is no PEM: named, its content not shown.
        std::fs::write(&ca, "-----BEGIN hunter2-secret\nxyz\n").unwrap();
        let e = connector(
            &cfg(Some(ca.to_str().unwrap())),
            &mut url("postgres://u@h/d"),
        )
        .err()
        .unwrap();
        let shown = e.to_string();
        assert!(shown.contains("ca.pem"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        std::fs::write(&ca, "no PEM at all\n").unwrap();
        let e = connector(
            &cfg(Some(ca.to_str().unwrap())),
            &mut url("postgres://u@h/d"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn a_ca_bundle_makes_a_tls_connector_with_an_optional_client_certificate() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = p.self_signed(&key).unwrap().pem();
        let issuer = Issuer::new(p, key);
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &ca_pem).unwrap();
        let mut c = cfg(Some(ca.to_str().unwrap()));
        // prefer (the default) becomes require.
        let mut config = url("postgres://u@127.0.0.1/d");
        assert!(connector(&c, &mut config).unwrap().is_tls());
        assert_eq!(config.get_ssl_mode(), SslMode::Require);

        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["signet".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();
        c.client_cert_file = Some(cert_file.clone());
        c.client_key_file = Some(key_file.clone());
        assert!(connector(&c, &mut url("postgres://u@h/d"))
            .unwrap()
            .is_tls());
        // Another key: not a pair, and the key is not shown.
        let other = KeyPair::generate().unwrap().serialize_pem();
        std::fs::write(&key_file, &other).unwrap();
        let e = connector(&c, &mut url("postgres://u@h/d")).err().unwrap();
        assert!(e.to_string().contains("do not make a pair"), "{e}");
        std::fs::write(&key_file, "garbage").unwrap();
        let e = connector(&c, &mut url("postgres://u@h/d")).err().unwrap();
        assert!(e.to_string().contains("no readable PEM private key"), "{e}");
        assert!(!e.to_string().contains("garbage"), "{e}");
    }
}
