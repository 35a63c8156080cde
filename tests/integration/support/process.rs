//! `signet serve` as a child process, started one way for every test:
//! [`serve()`] takes the arguments and environment, starts the binary,
//! waits for the addresses it reports (gRPC, admin, both or none), keeps
//! its log in memory and copies it into the sweep directory, where
//! `scripts/sweep-logs.py` checks it for the secrets the test handed out.
//! Also: the admin port's `/metrics`, and the demo config those tests use.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The memory backend with its demo keys, plaintext gRPC and the admin
/// port, both on 127.0.0.1:0.
pub const DEMO_WITH_ADMIN: &str = r#"
[server]
listen = "127.0.0.1:0"
plaintext = true
[admin]
listen = "127.0.0.1:0"
[backend]
type = "memory"
demo_keys = true
"#;

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits at most `within` for `child` to exit; past it, kills the child
/// and fails the test saying `why`.
pub fn wait_exit(child: &mut Child, within: Duration, why: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which addresses [`ServeOptions::start`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// The gRPC port (`signet listening address=…`).
    Grpc,
    /// The admin port only (`admin port listening address=…`): the gRPC
    /// port may never come up.
    Admin,
    /// Both ports.
    Both,
    /// Neither: the test waits for the process to exit.
    Nothing,
}

/// How to run `signet serve`; see [`serve()`] for the defaults.
pub struct ServeOptions {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    rust_log: Option<String>,
    run_as: Option<(u32, u32)>,
    wait_for: WaitFor,
    ready_within: Option<Duration>,
    keep_log: bool,
    capture: bool,
}

/// `signet serve` with `RUST_LOG=info`, waiting at most 60 s for the gRPC
/// port, keeping the whole log and copying it into the sweep directory.
pub fn serve() -> ServeOptions {
    ServeOptions {
        args: Vec::new(),
        env: Vec::new(),
        rust_log: Some("info".into()),
        run_as: None,
        wait_for: WaitFor::Grpc,
        ready_within: Some(Duration::from_secs(60)),
        keep_log: true,
        capture: true,
    }
}

impl ServeOptions {
    /// One argument after `serve`.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Arguments after `serve`.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// `--config path`.
    pub fn config(self, path: impl AsRef<OsStr>) -> Self {
        self.arg("--config").arg(path)
    }

    /// One environment variable (set after `RUST_LOG`, so it may override it).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Environment variables, as [`ServeOptions::env`].
    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        self.env
            .extend(env.iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// No `RUST_LOG` at all: the config file's `[log] level` applies.
    pub fn log_level_from_config(mut self) -> Self {
        self.rust_log = None;
        self
    }

    /// Runs it as `uid`/`gid` (through `setpriv`) if given.
    pub fn run_as(mut self, user: Option<(u32, u32)>) -> Self {
        self.run_as = user;
        self
    }

    pub fn wait_for(mut self, w: WaitFor) -> Self {
        self.wait_for = w;
        self
    }

    /// How long to wait for the addresses; `None`: until it exits.
    pub fn ready_within(mut self, d: Option<Duration>) -> Self {
        self.ready_within = d;
        self
    }

    /// `false`: keep only the log up to the addresses
    /// ([`Serve::startup_log`]); later lines go to the sweep copy only.
    pub fn keep_log(mut self, keep: bool) -> Self {
        self.keep_log = keep;
        self
    }

    /// `false`: no copy of the log in the sweep directory.
    pub fn capture_log(mut self, capture: bool) -> Self {
        self.capture = capture;
        self
    }

    /// Starts the process and waits for what [`ServeOptions::wait_for`]
    /// names; panics, with the log, if it exits first or takes too long.
    pub fn start(self) -> Serve {
        let exe = env!("CARGO_BIN_EXE_signet");
        let mut cmd = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--", exe]);
                c
            }
            None => Command::new(exe),
        };
        cmd.arg("serve").args(&self.args);
        match &self.rust_log {
            Some(level) => cmd.env("RUST_LOG", level),
            None => cmd.env_remove("RUST_LOG"),
        };
        let mut child = cmd
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let shared: Shared = Arc::new((
            Mutex::new(Log {
                lines: Vec::new(),
                keep: true,
                closed: false,
            }),
            Condvar::new(),
        ));
        let mut copy = self.capture.then(capture_file);
        let sink = shared.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = copy.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let (log, changed) = &*sink;
                let mut log = log.lock().unwrap();
                if log.keep {
                    log.lines.push(line);
                }
                changed.notify_all();
            }
            let (log, changed) = &*sink;
            log.lock().unwrap().closed = true;
            changed.notify_all();
        });
        let mut s = Serve {
            child,
            grpc: String::new(),
            admin: String::new(),
            shared,
            ready_at: 0,
            reader: Some(reader),
        };
        s.wait_addresses(self.wait_for, self.ready_within);
        if !self.keep_log {
            s.log().keep = false;
        }
        s
    }
}

/// The log so far, and whether the process closed its stderr.
struct Log {
    lines: Vec<String>,
    keep: bool,
    closed: bool,
}

type Shared = Arc<(Mutex<Log>, Condvar)>;

/// A new file in the sweep directory for a child's log,
/// `PID.serve-N.log`, next to a `PID.serve-N.secrets` link to this
/// process's `PID.secrets`: the sweep checks a log for the secrets in the
/// file of the same stem, and the test process records them.
fn capture_file() -> std::fs::File {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = super::log_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id();
    let stem = format!("{pid}.serve-{}", N.fetch_add(1, Ordering::Relaxed));
    let _ = std::os::unix::fs::symlink(
        format!("{pid}.secrets"),
        dir.join(format!("{stem}.secrets")),
    );
    std::fs::File::create(dir.join(format!("{stem}.log"))).unwrap()
}

/// A running `signet serve`, killed on drop.
pub struct Serve {
    child: Child,
    /// The gRPC address, empty if not waited for (or not up).
    pub grpc: String,
    /// The admin address, empty if not waited for (or not up).
    pub admin: String,
    shared: Shared,
    ready_at: usize,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.0.lock().unwrap()
    }

    fn wait_addresses(&mut self, wait_for: WaitFor, within: Option<Duration>) {
        let deadline = within.map(|d| Instant::now() + d);
        let (mut grpc, mut admin) = (None, None);
        let mut seen = 0;
        let (lock, changed) = &*self.shared;
        let mut log = lock.lock().unwrap();
        loop {
            while seen < log.lines.len() {
                let line = &log.lines[seen];
                seen += 1;
                let addr = line
                    .find("address=")
                    .map(|i| line[i + 8..].split_whitespace().next().unwrap().to_string());
                if line.contains("admin port listening") {
                    admin = addr;
                    self.ready_at = seen;
                } else if line.contains("signet listening") {
                    grpc = addr;
                    self.ready_at = seen;
                }
            }
            let ready = match wait_for {
                WaitFor::Grpc => grpc.is_some(),
                WaitFor::Admin => admin.is_some(),
                WaitFor::Both => grpc.is_some() && admin.is_some(),
                WaitFor::Nothing => true,
            };
            if ready {
                break;
            }
            assert!(
                !log.closed,
                "signet serve exited before it reported its address: {:#?}",
                log.lines
            );
            log = match deadline {
                None => changed.wait(log).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    assert!(
                        now < d,
                        "signet serve did not report its address: {:#?}",
                        log.lines
                    );
                    changed.wait_timeout(log, d - now).unwrap().0
                }
            };
        }
        drop(log);
        self.grpc = grpc.unwrap_or_default();
        self.admin = admin.unwrap_or_default();
    }

    /// `http://` and the gRPC address.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// A connected channel to the gRPC port.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.endpoint())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// grpc.health.v1 on the admin port, for `service`.
    pub async fn admin_health(&self, service: &str) -> ServingStatus {
        let ch = tonic::transport::Channel::from_shared(format!("http://{}", self.admin))
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(ch)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill sig PID` (`sig` as `-HUP`), which must succeed.
    pub fn signal(&self, sig: &str) {
        let pid = self.pid().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// SIGKILL, and reaps it: no shutdown path runs.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for it to exit, then for the rest of its log.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// How many log lines it has written.
    pub fn log_len(&self) -> usize {
        self.log().lines.len()
    }

    /// The log lines up to the one with the last address waited for.
    pub fn startup_log(&self) -> Vec<String> {
        self.log().lines[..self.ready_at].to_vec()
    }

    /// The log lines from line `from`, joined with newlines.
    pub fn since(&self, from: usize) -> String {
        self.log().lines[from..].join("\n")
    }

    /// The whole log, each line ending in a newline.
    pub fn log_text(&self) -> String {
        self.log().lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Waits (at most 20 s) for a log line containing `needle` after
    /// line `from`.
    pub fn wait_log(&self, from: usize, needle: &str) -> String {
        self.wait_log_within(from, needle, Duration::from_secs(20))
    }

    /// [`Serve::wait_log`], waiting at most `within`.
    pub fn wait_log_within(&self, from: usize, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let (lock, changed) = &*self.shared;
        let mut log = lock.lock().unwrap();
        loop {
            if let Some(l) = log.lines[from..].iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no log line with {needle:?}: {:#?}",
                log.lines
            );
            log = changed.wait_timeout(log, deadline - now).unwrap().0;
        }
    }
}

/// `GET /metrics` on the admin port, over plain HTTP/1.1.
pub fn scrape(admin: &str) -> String {
    let mut s = std::net::TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: signet\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the sample `name{labels}` (labels in the exporter's
/// order, which is sorted by name).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
