//! Test support: a signet server on 127.0.0.1:0 with a manual clock, gRPC
//! clients, and helpers that check results with OpenSSL's command line.
//! [`process`] runs the `signet serve` binary; [`otlp`] is a collector
//! for what it exports; [`postgres`] starts a PostgreSQL server of the
//! test's own.

#![allow(dead_code)]

pub mod ca;
pub mod otlp;
pub mod postgres;
pub mod process;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use signet::api::pb::cipher_service_client::CipherServiceClient;
use signet::api::pb::key_admin_client::KeyAdminClient;
use signet::api::pb::signer_client::SignerClient;
use signet::config::Config;
use signet::keys::clock::ManualClock;
use signet::keys::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A running server and what a test needs to drive it.
pub struct TestServer {
    pub endpoint: String,
    pub addr: std::net::SocketAddr,
    pub registry: Arc<Registry>,
    pub clock: ManualClock,
    channel: Channel,
    /// What the server needs for as long as it runs (a database server).
    pub keep: Vec<Box<dyn std::any::Any + Send + Sync>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl TestServer {
    /// Starts a server with `config` (its listen address is ignored).
    pub async fn start(config: Config) -> TestServer {
        Self::start_with(config, true).await
    }

    /// Starts a server whose clients the test makes itself (TLS, tokens):
    /// the built-in channel connects lazily.
    pub async fn start_lazy(config: Config) -> TestServer {
        Self::start_with(config, false).await
    }

    async fn start_with(mut config: Config, connect: bool) -> TestServer {
        capture_logs();
        // A long tick: tests drive time-driven transitions themselves.
        config.keys.tick_interval = Duration::from_secs(60);
        config.server.shutdown_timeout = Duration::from_secs(10);
        // Audit lines on stdout would interleave with the test output;
        // tests that read the trail configure a file.
        if config.audit.output == signet::config::AuditOutput::Stdout {
            config.audit.output = signet::config::AuditOutput::Off;
        }
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let registry = signet::server::build_registry(&config, Arc::new(clock.clone()))
            .await
            .expect("registry");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let reg = registry.clone();
        let task = tokio::spawn(async move {
            signet::server::serve(&config, reg, listener, async {
                let _ = rx.await;
            })
            .await
            .map_err(|e| e.to_string())
        });
        let endpoint = format!("http://{addr}");
        let ep = Channel::from_shared(endpoint.clone()).unwrap();
        let channel = if connect {
            ep.connect().await.expect("connect to test server")
        } else {
            ep.connect_lazy()
        };
        TestServer {
            endpoint,
            addr,
            registry,
            clock,
            channel,
            keep: Vec::new(),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The in-memory backend, default settings.
    pub async fn memory() -> TestServer {
        Self::start(Config::default()).await
    }

    pub fn signer(&self) -> SignerClient<Channel> {
        SignerClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> KeyAdminClient<Channel> {
        KeyAdminClient::new(self.channel.clone())
    }

    pub fn cipher(&self) -> CipherServiceClient<Channel> {
        CipherServiceClient::new(self.channel.clone())
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Moves the clock and applies what is due, as the ticker would.
    pub async fn advance(&self, d: Duration) {
        self.clock.advance(d);
        self.registry.tick().await;
    }

    pub fn now(&self) -> SystemTime {
        use signet::keys::clock::Clock;
        self.clock.now()
    }

    /// Graceful stop; returns the server's result.
    pub async fn stop(mut self) -> Result<(), String> {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

/// Runs `openssl` with `args` in `dir`; returns (success, stdout+stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `openssl` arguments that verify a signature over `msg.bin` made with `alg`
/// (given its SPKI PEM in `pub.pem` and the signature in `sig.bin`).
pub fn openssl_verify_args(alg: signet::keys::Algorithm) -> Vec<&'static str> {
    use signet::keys::{Family, Hash};
    let hash = match alg.hash() {
        Some(Hash::Sha256) => "-sha256",
        Some(Hash::Sha384) => "-sha384",
        Some(Hash::Sha512) => "-sha512",
        None => "",
    };
    match alg.family() {
        Family::Ed25519 => vec![
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg.bin",
            "-sigfile", "sig.bin",
        ],
        Family::RsaPss => {
            let salt = if alg.hash() == Some(Hash::Sha512) {
                "rsa_pss_saltlen:64"
            } else {
                "rsa_pss_saltlen:32"
            };
            vec![
                "dgst",
                hash,
                "-verify",
                "pub.pem",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                salt,
                "-signature",
                "sig.bin",
                "msg.bin",
            ]
        }
        _ => vec![
            "dgst",
            hash,
            "-verify",
            "pub.pem",
            "-signature",
            "sig.bin",
            "msg.bin",
        ],
    }
}

/// The gRPC code of an error result.
pub fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Code {
    r.expect_err("expected an error").code()
}

/// Where this test process writes its log and the secrets it handed out:
/// `target/tmp/integration-logs/PID.{log,secrets}` (`target` being
/// `CARGO_TARGET_DIR` if set), and [`process`] the logs of the `signet
/// serve` processes it starts (`PID.serve-N.log`). `scripts/sweep-logs.py`
/// (run by scripts/test.sh after the tests) checks that no secret is in
/// any log.
pub fn log_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("integration-logs")
}

/// Sends every log line of the servers in this process to the log file,
/// at debug level for signet. Idempotent.
pub fn capture_logs() {
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = log_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let file = std::fs::File::create(dir.join(format!("{}.log", std::process::id()))).unwrap();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("signet=debug,info")
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// Records a secret a test hands to a server, for the log sweep.
pub fn remember_secret(secret: &[u8]) {
    use std::io::Write;
    let dir = log_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.secrets", std::process::id())))
        .unwrap();
    writeln!(f, "hex:{}", hex::encode(secret)).unwrap();
    if let Ok(text) = std::str::from_utf8(secret) {
        if !text.contains('\n') && text.len() >= 8 {
            writeln!(f, "text:{text}").unwrap();
        }
    }
}
