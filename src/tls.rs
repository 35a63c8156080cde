//! TLS with rustls: the server configuration built from `[server.tls]`,
//! rebuilt when the files change (certificates rotate), and the client's
//! identity read from its certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{TlsConfig, TlsVersion};
use crate::error::{ConfigError, StartupError};

/// A TLS file or setting that does not load; `sentence` names the field.
fn refused(field: &'static str, sentence: String) -> StartupError {
    StartupError::Config(ConfigError::naming(field, sentence))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, StartupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| refused(what, format!("{what} {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(what, format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(refused(
            what,
            format!("{what} {}: no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// Builds the rustls configuration the section describes.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, StartupError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match cfg.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let certs = read_certs(&cfg.cert_file, "server.tls.cert_file")?;
    // The key file's content never reaches an error message: only its path.
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file).map_err(|_| {
        refused(
            "server.tls.key_file",
            format!(
                "server.tls.key_file {}: no readable PEM private key",
                cfg.key_file.display()
            ),
        )
    })?;
    let verifier = match &cfg.client_ca_file {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca, "server.tls.client_ca_file")? {
                roots.add(c).map_err(|e| {
                    refused(
                        "server.tls.client_ca_file",
                        format!("server.tls.client_ca_file {}: {e}", ca.display()),
                    )
                })?;
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let b = if cfg.require_client_cert {
                b
            } else {
                b.allow_unauthenticated()
            };
            b.build().map_err(|e| {
                refused(
                    "server.tls.client_ca_file",
                    format!("server.tls.client_ca_file {}: {e}", ca.display()),
                )
            })?
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| refused("server.tls", format!("server.tls: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            refused(
                "server.tls",
                format!("server.tls: certificate and key do not make a pair: {e}"),
            )
        })?;
    // gRPC runs over HTTP/2; clients negotiate it with ALPN.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// What identifies a file's version on disk.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The live TLS configuration: new connections use the latest one; a
/// connection keeps what it was accepted with.
pub(crate) struct TlsState {
    section: RwLock<TlsConfig>,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Stamp>>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let section = self.section.read();
        f.debug_struct("TlsState")
            .field("cert_file", &section.cert_file)
            .field("client_ca_file", &section.client_ca_file)
            .finish_non_exhaustive()
    }
}

impl TlsState {
    /// Loads the files; an error stops start-up.
    pub(crate) fn new(section: TlsConfig) -> Result<Arc<Self>, StartupError> {
        let config = server_config(&section)?;
        let stamps = Mutex::new(Self::files_of(&section).iter().map(|p| stamp(p)).collect());
        Ok(Arc::new(Self {
            section: RwLock::new(section),
            current: RwLock::new(config),
            stamps,
        }))
    }

    fn files_of(section: &TlsConfig) -> Vec<PathBuf> {
        let mut v = vec![section.cert_file.clone(), section.key_file.clone()];
        v.extend(section.client_ca_file.clone());
        v
    }

    /// The configuration for the next connection.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// The handshake deadline.
    pub(crate) fn handshake_timeout(&self) -> std::time::Duration {
        self.section.read().handshake_timeout
    }

    /// Loads `section`'s files (a SIGHUP reload), without installing them.
    pub(crate) fn prepare(section: &TlsConfig) -> Result<Arc<ServerConfig>, StartupError> {
        server_config(section)
    }

    /// Installs what [`TlsState::prepare`] loaded from `section`: new
    /// connections use it; open ones keep theirs.
    pub(crate) fn install(&self, section: TlsConfig, config: Arc<ServerConfig>) {
        let stamps = Self::files_of(&section).iter().map(|p| stamp(p)).collect();
        *self.current.write() = config;
        *self.stamps.lock() = stamps;
        *self.section.write() = section;
    }

    /// Rebuilds the configuration when a file changed. A half-written or
    /// mismatched set keeps the previous configuration (and is retried on
    /// the next check): a rotation never leaves the server without TLS.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let section = self.section.read().clone();
        let now: Vec<Stamp> = Self::files_of(&section).iter().map(|p| stamp(p)).collect();
        if *self.stamps.lock() == now {
            return false;
        }
        match server_config(&section) {
            Ok(c) => {
                *self.current.write() = c;
                *self.stamps.lock() = now;
                tracing::info!(cert_file = %section.cert_file.display(), "TLS certificate files reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but do not load; keeping the previous ones");
                false
            }
        }
    }

    /// Checks the files every `reload_interval`.
    pub(crate) fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let interval = me.section.read().reload_interval;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let m = me.clone();
                let _ = tokio::task::spawn_blocking(move || m.reload_if_changed()).await;
            }
        })
    }
}

/// The identity in a client certificate: its first URI SAN (a SPIFFE id,
/// say), else its first DNS SAN, else its subject CN.
pub(crate) fn certificate_identity(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans: Vec<GeneralName> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|s| s.value.general_names.clone())
        .unwrap_or_default();
    let uri = sans.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some(u.to_string()),
        _ => None,
    });
    let dns = || {
        sans.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
    };
    let cn = || {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .map(str::to_string)
    };
    uri.or_else(dns)
        .or_else(cn)
        .filter(|s| !s.is_empty() && s.len() <= 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sans: Vec<rcgen::SanType>, cn: Option<&str>) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::default();
        p.subject_alt_names = sans;
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn identity_order_uri_then_dns_then_cn() {
        let uri = rcgen::SanType::URI("spiffe://example.org/payments".try_into().unwrap());
        let dns = rcgen::SanType::DnsName("payments.internal".try_into().unwrap());
        assert_eq!(
            certificate_identity(&cert(vec![dns.clone(), uri], Some("cn"))).as_deref(),
            Some("spiffe://example.org/payments")
        );
        assert_eq!(
            certificate_identity(&cert(vec![dns], Some("cn"))).as_deref(),
            Some("payments.internal")
        );
        assert_eq!(
            certificate_identity(&cert(vec![], Some("custodian-1"))).as_deref(),
            Some("custodian-1")
        );
        assert_eq!(certificate_identity(&cert(vec![], None)), None);
        assert_eq!(certificate_identity(b"not a certificate"), None);
    }
}
