//! `signet serve` (and `signet registry migrate`) as child processes on a
//! SoftHSM2 token of the test's own and a PostgreSQL server of its own,
//! for the tests that stop, freeze or restart the database under running
//! servers. Their logs go through `support::process` (or, for the
//! migrate command, a file of the same kind) into the sweep directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use signet::api::pb;
use signet::config::Pkcs11Config;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::pkcs11::{fresh_label, new_token};
use crate::support::postgres::{fresh_schema, Postgres};
use crate::support::process::{serve, Serve, WaitFor};

/// One token, one database server and a schema on it, and a directory
/// for config files.
pub struct Deployment {
    pub pg: Postgres,
    pub token: Pkcs11Config,
    pub schema: String,
    pub dir: tempfile::TempDir,
    url_file: PathBuf,
}

impl Deployment {
    pub fn new() -> Deployment {
        let pg = Postgres::start();
        let token = new_token(&fresh_label());
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("pg.url");
        std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
        Deployment {
            pg,
            token,
            schema: fresh_schema(),
            dir,
            url_file,
        }
    }

    /// `[postgres]` on this deployment's schema, the URL from a file, with
    /// `statement_timeout` (and connect timeout) as given and a 200 ms
    /// heartbeat.
    pub fn postgres_toml(&self, statement_timeout: &str) -> String {
        self.postgres_toml_with_url(&self.url_file, statement_timeout)
    }

    /// [`Deployment::postgres_toml`] with the URL in `url_file`.
    pub fn postgres_toml_with_url(&self, url_file: &Path, statement_timeout: &str) -> String {
        format!(
            "[postgres]\nurl_file = \"{}\"\nschema = \"{}\"\npool_size = 4\n\
             connect_timeout = \"{statement_timeout}\"\nstatement_timeout = \"{statement_timeout}\"\n\
             heartbeat = \"200ms\"\nresync_interval = \"5s\"\n",
            url_file.display(),
            self.schema
        )
    }

    /// A config file: plaintext gRPC, the admin port, the token, a 1-day
    /// destroy delay, `[log] level = "info"`, then `body`.
    pub fn write_config(&self, body: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = self
            .dir
            .path()
            .join(format!("signet-{}.toml", N.fetch_add(1, Ordering::Relaxed)));
        let t = &self.token;
        std::fs::write(
            &path,
            format!(
                "[server]\nplaintext = true\n[admin]\nlisten = \"127.0.0.1:0\"\n\
                 [backend]\ntype = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{}\"\n\
                 pin_file = \"{}\"\n[keys]\ntick_interval = \"200ms\"\ndestroy_delay = \"1d\"\n\
                 [log]\nlevel = \"info\"\n{body}",
                t.module.display(),
                t.token_label.as_deref().unwrap(),
                t.pin_file.as_ref().unwrap().display()
            ),
        )
        .unwrap();
        path
    }

    /// A config with the registry in this deployment's schema.
    pub fn registry_config(&self, max_staleness: &str, statement_timeout: &str) -> PathBuf {
        self.write_config(&format!(
            "[registry]\nstore = \"postgres\"\nmax_staleness = \"{max_staleness}\"\n{}",
            self.postgres_toml(statement_timeout)
        ))
    }
}

/// SoftHSM2's configuration, which `new_token` put in this process's
/// environment.
fn softhsm_conf() -> std::ffi::OsString {
    std::env::var_os("SOFTHSM2_CONF").expect("new_token sets SOFTHSM2_CONF")
}

/// `signet serve --config path`, waiting (at most 60 s) for both ports.
pub fn spawn(config: &Path) -> Serve {
    spawn_waiting(config, WaitFor::Both)
}

/// [`spawn`], waiting for what `wait_for` names.
pub fn spawn_waiting(config: &Path, wait_for: WaitFor) -> Serve {
    serve()
        .args(["--listen", "127.0.0.1:0"])
        .config(config)
        .env("SOFTHSM2_CONF", softhsm_conf())
        .log_level_from_config()
        .wait_for(wait_for)
        .ready_within(Some(Duration::from_secs(60)))
        .start()
}

/// A `signet serve` that must fail at start-up: waits (at most 60 s) for
/// its `signet: ` line and its exit; returns that line and the whole log.
pub fn spawn_failing(config: &Path) -> (String, String) {
    let mut s = spawn_waiting(config, WaitFor::Nothing);
    let line = s.wait_log_within(0, "signet: ", Duration::from_secs(60));
    let status = s.wait().unwrap();
    assert!(!status.success(), "{}", s.log_text());
    (line, s.log_text())
}

/// What a finished command printed.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `signet ARGS` with SoftHSM2's configuration, bounded to 60 s; its
/// stderr is copied into the sweep directory.
pub fn signet(args: &[&str]) -> Output {
    signet_with_env(args, &[])
}

/// [`signet`] with more environment variables.
pub fn signet_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    if let Some(conf) = std::env::var_os("SOFTHSM2_CONF") {
        cmd.env("SOFTHSM2_CONF", conf);
    }
    let mut child = cmd
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let status = crate::support::process::wait_exit(
        &mut child,
        Duration::from_secs(60),
        &format!("signet {args:?} did not exit within 60 s"),
    );
    let (stdout, stderr) = (o.join().unwrap(), e.join().unwrap());
    keep_log(&format!("{stdout}{stderr}"));
    Output {
        code: status.code(),
        stdout,
        stderr,
    }
}

/// Copies a command's output into the sweep directory, as
/// `support::process` does for `signet serve`.
fn keep_log(text: &str) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = crate::support::log_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id();
    let stem = format!("{pid}.pgcli-{}", N.fetch_add(1, Ordering::Relaxed));
    let _ = std::os::unix::fs::symlink(
        format!("{pid}.secrets"),
        dir.join(format!("{stem}.secrets")),
    );
    let mut f = std::fs::File::create(dir.join(format!("{stem}.log"))).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

pub fn admin(ch: &Channel) -> pb::key_admin_client::KeyAdminClient<Channel> {
    pb::key_admin_client::KeyAdminClient::new(ch.clone())
}

pub fn signer(ch: &Channel) -> pb::signer_client::SignerClient<Channel> {
    pb::signer_client::SignerClient::new(ch.clone())
}

/// Readiness of the whole server, on the admin port and on the gRPC port;
/// `None` for a port that did not answer within 2 s.
pub async fn readiness(s: &Serve) -> (Option<ServingStatus>, Option<ServingStatus>) {
    let check = |addr: String| async move {
        let call = async {
            let ch = Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .ok()?;
            let r = tonic_health::pb::health_client::HealthClient::new(ch)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()?;
            Some(r.into_inner().status())
        };
        tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .ok()
            .flatten()
    };
    tokio::join!(check(s.admin.clone()), check(s.grpc.clone()))
}

/// Waits (at most `bound`) until both ports report `want`.
pub async fn wait_readiness(s: &Serve, want: ServingStatus, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let now = readiness(s).await;
        if now == (Some(want), Some(want)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "readiness {now:?}, not {want:?}, after {bound:?}:\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` (at most `bound`) until it holds.
pub async fn eventually<F, Fut>(bound: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

pub async fn create(
    ch: &Channel,
    name: &str,
    alg: pb::Algorithm,
) -> Result<pb::Key, tonic::Status> {
    admin(ch)
        .create_key(pb::CreateKeyRequest {
            name: name.into(),
            algorithm: alg as i32,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().key.unwrap())
}

pub async fn get(ch: &Channel, name: &str) -> Result<pb::Key, tonic::Status> {
    admin(ch)
        .get_key(pb::GetKeyRequest { name: name.into() })
        .await
        .map(|r| r.into_inner().key.unwrap())
}

pub async fn rotate(ch: &Channel, name: &str, promote: bool) -> Result<pb::Key, tonic::Status> {
    admin(ch)
        .rotate_key(pb::RotateKeyRequest {
            name: name.into(),
            promote,
            grace_period: None,
        })
        .await
        .map(|r| r.into_inner().key.expect("key in RotateKeyResponse"))
}

pub fn sign_req(key: &str, msg: &[u8]) -> pb::SignRequest {
    pb::SignRequest {
        key: key.into(),
        input: Some(pb::sign_request::Input::Message(msg.to_vec())),
        ..Default::default()
    }
}

pub fn verify_req(key: &str, msg: &[u8], sig: &[u8]) -> pb::VerifyRequest {
    pb::VerifyRequest {
        key: key.into(),
        input: Some(pb::verify_request::Input::Message(msg.to_vec())),
        signature: sig.to_vec(),
        ..Default::default()
    }
}

/// What an error message shown to a client must never carry: the URL,
/// its password, or the driver's and the pool's own text.
pub fn assert_no_leak(message: &str, pg: &Postgres) {
    for bad in [
        crate::support::postgres::PASSWORD,
        "postgres://",
        &format!(":{}", pg.port()),
        "db error",
        "tokio",
        "deadpool",
        "Error occurred",
        "Connection refused",
        "connection refused",
        "os error",
    ] {
        assert!(!message.contains(bad), "{bad:?} in {message:?}");
    }
}
