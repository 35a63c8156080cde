//! `signet serve` processes as replicas: one SoftHSM2 token (the keys) and
//! one PostgreSQL schema (the registry) for all of them, so a test can
//! start several, kill one, and read what each logged.
//!
//! [`Replicas`] holds what they share and writes their config files:
//! `[server]` (plaintext on 127.0.0.1:0), `[backend]` (the token),
//! `[registry]`, `[postgres]` and `[keys]` from [`Replicas::settings`]
//! (short heartbeats and timeouts by default; a test changes any of them
//! with [`Replicas::set`]), then whatever `extra` TOML a spawn is given
//! (other tables only: a table may not appear twice).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use signet::api::pb;
use signet::config::Pkcs11Config;
use tonic::transport::Channel;

use crate::pkcs11::{fresh_label, new_token};
use crate::support::postgres::{fresh_schema, Postgres};
use crate::support::process::{serve, Serve, WaitFor};

/// The log line of a replica that takes the scheduler's lock.
pub const BECAME_SCHEDULER: &str = "this replica now runs the key scheduler";
/// The log line of a replica that loses it.
pub const LOST_SCHEDULER: &str = "this replica no longer runs the key scheduler";

/// How long a replica may take to report its gRPC address.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// What replicas share: a token, a schema, their settings.
pub struct Replicas {
    /// The token every replica opens.
    pub token: Pkcs11Config,
    /// The schema of the registry.
    pub schema: String,
    /// `table → key → TOML value` for `[registry]`, `[postgres]` and
    /// `[keys]` (and any other table a test adds with [`Replicas::set`]).
    pub settings: BTreeMap<String, BTreeMap<String, String>>,
    /// The URL file and the config files.
    dir: tempfile::TempDir,
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Replicas {
    /// A fresh token and a fresh schema on `pg`.
    pub fn new(pg: &Postgres) -> Replicas {
        Self::on(pg, new_token(&fresh_label()), &fresh_schema())
    }

    /// Replicas on `token` with the registry in `schema` of `pg`.
    pub fn on(pg: &Postgres, token: Pkcs11Config, schema: &str) -> Replicas {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("postgres.url");
        std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
        let mut r = Replicas {
            token,
            schema: schema.to_string(),
            settings: BTreeMap::new(),
            dir,
        };
        r.set("registry", "store", &quoted("postgres"));
        r.set("postgres", "url_file", &quoted(url_file.to_str().unwrap()));
        r.set("postgres", "schema", &quoted(schema));
        r.set("postgres", "heartbeat", &quoted("100ms"));
        r.set("postgres", "statement_timeout", &quoted("2s"));
        r.set("postgres", "connect_timeout", &quoted("2s"));
        r.set("postgres", "resync_interval", &quoted("5s"));
        r.set("keys", "tick_interval", &quoted("100ms"));
        r
    }

    /// Sets `table.key` to the TOML `value` (`"\"10s\""`, `"4"`) in the
    /// config of every replica spawned from now on.
    pub fn set(&mut self, table: &str, key: &str, value: &str) -> &mut Self {
        self.settings
            .entry(table.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// The config file's text, with `extra` at the end.
    pub fn config_text(&self, extra: &str) -> String {
        let t = &self.token;
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nplaintext = true\n\
             [backend]\ntype = \"pkcs11\"\nmodule = {}\ntoken_label = {}\npin_file = {}\n",
            quoted(t.module.to_str().unwrap()),
            quoted(t.token_label.as_deref().unwrap()),
            quoted(t.pin_file.as_ref().unwrap().to_str().unwrap()),
        );
        for (table, entries) in &self.settings {
            text.push_str(&format!("[{table}]\n"));
            for (k, v) in entries {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text.push_str(extra);
        text
    }

    /// Writes a config file with `extra` at the end; returns its path.
    pub fn write_config(&self, extra: &str) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, self.config_text(extra)).unwrap();
        path
    }

    /// Starts a replica and waits (at most 60 s) for its gRPC address.
    pub fn spawn(&self, extra: &str) -> Replica {
        let mut r = self.start(extra);
        r.wait_ready(READY_WITHIN);
        r
    }

    /// Starts a replica without waiting for anything: see
    /// [`Replica::wait_ready`].
    pub fn start(&self, extra: &str) -> Replica {
        let conf = std::env::var_os("SOFTHSM2_CONF").expect("new_token sets SOFTHSM2_CONF");
        let serve = serve()
            .config(self.write_config(extra))
            .env("SOFTHSM2_CONF", conf)
            .wait_for(WaitFor::Nothing)
            .start();
        Replica {
            serve,
            endpoint: None,
        }
    }
}

/// One `signet serve` process; killed on drop.
pub struct Replica {
    /// The process, its log.
    pub serve: Serve,
    /// `http://ADDRESS` once it reported its gRPC address.
    endpoint: Option<String>,
}

impl Replica {
    /// Waits (at most `within`) until it reports its gRPC address; panics,
    /// with its log, if it does not.
    pub fn wait_ready(&mut self, within: Duration) -> &str {
        if self.endpoint.is_none() {
            let line = self.serve.wait_log_within(0, "signet listening", within);
            let addr = line
                .split("address=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or_else(|| panic!("no address in {line:?}"));
            self.endpoint = Some(format!("http://{addr}"));
        }
        self.endpoint.as_deref().unwrap()
    }

    /// `http://ADDRESS` of the gRPC port (after [`Replica::wait_ready`]).
    pub fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .expect("the replica is not ready: call wait_ready")
    }

    /// A channel that connects on first use (and again after failures).
    pub fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint().to_string())
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .connect_lazy()
    }

    pub fn admin(&self) -> pb::key_admin_client::KeyAdminClient<Channel> {
        pb::key_admin_client::KeyAdminClient::new(self.channel())
    }

    pub fn signer(&self) -> pb::signer_client::SignerClient<Channel> {
        pb::signer_client::SignerClient::new(self.channel())
    }

    pub async fn get_key(&self, name: &str) -> Result<pb::Key, tonic::Status> {
        self.admin()
            .get_key(pb::GetKeyRequest { name: name.into() })
            .await
            .map(|r| r.into_inner().key.unwrap())
    }

    /// Whether its log says it runs the scheduler now: its last line about
    /// the scheduler's lock is that it took it (it may have lost and taken
    /// it again after a reconnection).
    pub fn says_it_leads(&self) -> bool {
        self.serve
            .log_text()
            .lines()
            .rfind(|l| l.contains(BECAME_SCHEDULER) || l.contains(LOST_SCHEDULER))
            .is_some_and(|l| l.contains(BECAME_SCHEDULER))
    }

    /// How many times its log says it took the scheduler's lock.
    pub fn times_it_became_scheduler(&self) -> usize {
        self.serve
            .log_text()
            .lines()
            .filter(|l| l.contains(BECAME_SCHEDULER))
            .count()
    }

    /// SIGKILL, reaped: no shutdown path runs.
    pub fn kill(&mut self) {
        self.serve.kill();
    }
}

/// Polls `f` every 50 ms until it holds; panics naming `what` after
/// `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls GetKey `name` on every replica in `on` until they all show the
/// same key, which it returns; panics after `within`.
pub async fn same_everywhere(on: &[&Replica], name: &str, within: Duration) -> pb::Key {
    let deadline = Instant::now() + within;
    loop {
        let mut keys = Vec::new();
        for r in on {
            keys.push(r.get_key(name).await);
        }
        if let Some(Ok(first)) = keys.first() {
            if keys.iter().all(|k| k.as_ref().is_ok_and(|k| k == first)) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the replicas never agreed on key {name}: {keys:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
