//! SIGHUP: re-reads the configuration file and installs what a reload
//! may change; a file that does not load changes nothing.

use std::sync::Arc;

use super::settings::Settings;
use super::warn_missing_keys;
use crate::auth::Security;
use crate::config::Config;
use crate::error::{ConfigError, StartupError};
use crate::keys::registry::Registry;

/// What a SIGHUP reloads.
pub(super) struct Reload {
    pub(super) path: std::path::PathBuf,
    /// The configuration serving started with: restart-only settings are
    /// compared with it.
    pub(super) in_force: Config,
    pub(super) listen_override: Option<std::net::SocketAddr>,
    pub(super) security: Arc<Security>,
    pub(super) profiles: Arc<crate::httpsig::profile::ProfileSet>,
    pub(super) tls: Option<Arc<crate::tls::TlsState>>,
    pub(super) registry: Arc<Registry>,
}

impl Reload {
    /// Loads everything first and installs only if all of it loads: a bad
    /// file changes nothing.
    fn once(&self) -> Result<(), StartupError> {
        let mut c = Config::load(&self.path)?;
        c.override_listen(self.listen_override);
        // The same check as start-up and `signet check-config`.
        let Settings {
            policy, profiles, ..
        } = Settings::from_config(&c).map_err(|source| StartupError::InFile {
            path: self.path.clone(),
            source,
        })?;
        let tls = match (&self.tls, &c.server.tls) {
            (Some(_), Some(section)) => {
                Some((section.clone(), crate::tls::TlsState::prepare(section)?))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "server.tls",
                    "switching between TLS and plaintext needs a restart",
                )
                .into())
            }
        };
        warn_missing_keys(&self.registry, &profiles);
        let n = profiles.len();
        self.security.set_policy(policy);
        self.profiles.replace(profiles);
        if let (Some(state), Some((section, cfg))) = (&self.tls, tls) {
            state.install(section, cfg);
        }
        for setting in crate::config::restart_only_changes(&self.in_force, &c) {
            tracing::warn!(
                setting = %setting,
                "SIGHUP: {setting} changed in the file but takes effect only on restart; \
                 the running value stays in force"
            );
        }
        tracing::info!(
            path = %self.path.display(),
            profiles = n,
            "SIGHUP: reloaded [auth] (and auth.tokens_file), [[limits.keys]], [[profiles]] and the TLS files"
        );
        Ok(())
    }
}

/// On SIGHUP, re-reads the config file: `[auth]` (with `tokens_file`),
/// `[[limits.keys]]`, `[[profiles]]` and the TLS files apply to the next
/// request or connection. A file that does not load keeps everything in
/// force and says why. Everything else needs a restart.
pub(super) fn spawn_reload(reload: Reload) -> tokio::task::JoinHandle<()> {
    // The handler is installed here, before the caller logs that signet is
    // listening, not in the task: a SIGHUP arriving before the task first
    // ran would meet the default disposition and end the process.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hup) = hup else {
            return;
        };
        let reload = Arc::new(reload);
        while hup.recv().await.is_some() {
            let r = reload.clone();
            let outcome = tokio::task::spawn_blocking(move || r.once())
                .await
                .unwrap_or_else(|e| Err(StartupError::failed("reload task", e)));
            if let Err(e) = outcome {
                tracing::error!(error = %e, path = %reload.path.display(), "SIGHUP: config not reloaded; keeping the configuration in force");
            }
        }
    })
}
