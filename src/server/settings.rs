//! The composition root's first step: a parsed [`Config`] becomes the
//! objects signet runs with. [`Settings::from_config`] is the one check
//! `signet serve` (once `--listen` is applied), `signet check-config` and
//! a SIGHUP reload share, so none of them accepts what another refuses.
//!
//! Each section has checked its own values when it was parsed
//! ([`Config::validate`], called again here so a configuration built in
//! code passes the same rules); here come the rules that need domain types
//! or more than one section: the profiles (resolved, unique names, against
//! `limits.max_template_bytes`), the policy (`[auth]` with
//! `[[limits.keys]]`), a Redis URL written in the file, and the listener
//! rules. Only what needs the files or the environment a configuration
//! names (TLS files, the PIN, `tokens_file`, `redis_url_env`, the audit
//! file) is left to `serve` and the reload.

use crate::api::signer::SignerLimits;
use crate::auth::Policy;
use crate::config::{BackendConfig, Config};
use crate::error::ConfigError;
use crate::httpsig::profile::Profile;
use crate::keys::registry::RegistrySettings;

/// What a configuration turns into before anything is opened.
pub(crate) struct Settings {
    /// Who may call what (`[auth]`, `[[limits.keys]]`).
    pub policy: Policy,
    /// The HTTP profiles, resolved; names are unique.
    pub profiles: Vec<Profile>,
    /// Input sizes checked before any work (`[server]`, `[limits]`).
    pub signer: SignerLimits,
}

impl Settings {
    /// Checks `config` and builds the settings; the error names the field.
    pub(crate) fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let settings = Self::for_bound_listener(config)?;
        check_listener(config)?;
        Ok(settings)
    }

    /// [`Settings::from_config`] without the listener rules, for a server
    /// given a listener its caller bound (an in-process server, in tests):
    /// `server.listen`, `server.plaintext` and `server.tls` describe no
    /// socket then.
    pub(crate) fn for_bound_listener(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let profiles = resolve_profiles(config)?;
        let policy = Policy::new(&config.auth, &config.limits)
            .map_err(|e| ConfigError::naming("auth", e))?;
        if let Some(url) = &config.http.redis_url {
            crate::httpsig::replay::parse_url(url)
                .map_err(|e| ConfigError::naming("http.redis_url", e))?;
        }
        Ok(Self {
            policy,
            profiles,
            signer: SignerLimits::from_config(config),
        })
    }
}

/// The registry's settings.
pub(crate) fn registry_settings(config: &Config) -> RegistrySettings {
    RegistrySettings {
        default_grace: config.keys.default_grace_period,
        destroy_delay: config.keys.destroy_delay,
        destroy_orphans: matches!(&config.backend, BackendConfig::Pkcs11(p) if p.destroy_orphans),
        max_staleness: config.registry.max_staleness,
        max_encryptions: config.keys.max_encryptions_per_version,
        refuse_plaintext_import: config.keys.refuse_plaintext_import,
    }
}

/// The profiles, resolved: names unique, templates within
/// `limits.max_template_bytes`.
fn resolve_profiles(config: &Config) -> Result<Vec<Profile>, ConfigError> {
    let mut out: Vec<Profile> = Vec::new();
    let max = config.limits.max_template_bytes;
    for p in &config.profiles {
        let r = p.resolve()?;
        if out.iter().any(|o| o.name == r.name) {
            return Err(ConfigError::naming(
                "profiles",
                format!("profile {:?}: name: defined twice", r.name),
            ));
        }
        for (t, field) in [
            (r.payload_template.to_string(), "payload_template"),
            (r.signature_template.to_string(), "signature_template"),
        ] {
            if t.len() > max {
                return Err(ConfigError::naming(
                    "limits.max_template_bytes",
                    format!(
                        "profile {}: {field} is {} bytes; limits.max_template_bytes is {max}",
                        r.name,
                        t.len(),
                    ),
                ));
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// The rules for the listener, checked once its address is final (after
/// `--listen`): plaintext only on loopback and only when said;
/// authorization off only on loopback.
fn check_listener(config: &Config) -> Result<(), ConfigError> {
    let s = &config.server;
    let loopback = s.listen.ip().is_loopback();
    match (&s.tls, s.plaintext) {
        (Some(_), true) => {
            return Err(ConfigError::new(
                "server",
                "set either server.tls or server.plaintext, not both",
            ))
        }
        (None, false) => {
            return Err(ConfigError::new(
                format!("server.listen {}", s.listen),
                "configure [server.tls], or set server.plaintext = true (loopback addresses only)",
            ))
        }
        (None, true) if !loopback => {
            return Err(ConfigError::naming(
                "server.plaintext",
                format!(
                    "server.listen {} is not a loopback address: plaintext is refused; \
                     configure [server.tls]",
                    s.listen
                ),
            ))
        }
        _ => {}
    }
    if config.auth.identities.is_empty() && !loopback {
        return Err(ConfigError::naming(
            "auth.identities",
            format!(
                "server.listen {} is not a loopback address: configure [[auth.identities]] \
                 (without them every caller may do everything)",
                s.listen
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
