//! A private PostgreSQL server for the tests that need one (the registry
//! and the replay store): [`Postgres::start`] runs one on a free
//! 127.0.0.1 port with its unix socket in a temporary directory, as the
//! `postgres` system user when the tests run as root (PostgreSQL refuses
//! to run as root), and stops it and removes the directory on drop.
//! PostgreSQL must be installed (CI installs it; missing is a failure,
//! not a skip). `initdb` runs once per test process into a template that
//! every server copies, so a server starts in a fraction of a second.
//! Tests can stop, restart, freeze (SIGSTOP) and thaw a server, and run
//! `psql` against it. [`Postgres::start_tls`] starts one that takes TLS
//! connections only over TCP (`hostssl` in its pg_hba.conf), with the
//! certificate and key it is given, and optionally requires a client
//! certificate. Its log is copied into the sweep directory on drop
//! (`PID.postgres-N.log`), where `scripts/sweep-logs.py` checks it for
//! secrets, [`PASSWORD`] among them.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser every server has.
pub const USER: &str = "signet";

/// [`PASSWORD`] as bytes: a byte-string literal with "secret" in it, so
/// the log sweep looks for it in every log.
const PASSWORD_BYTES: &[u8] = b"pg-secret-7Qx2-never-logged";

/// The superuser's password (the same text as `PASSWORD_BYTES`; URL-safe).
pub const PASSWORD: &str = "pg-secret-7Qx2-never-logged";

/// How long a server may take to start or stop.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// What [`Postgres::start_tls`] serves TLS with: PEM texts.
pub struct ServerTls {
    /// The server's certificate (leaf first, then any intermediates).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The CA of client certificates: with it, pg_hba.conf also requires
    /// a client certificate that chains to it (`clientcert=verify-ca`).
    pub client_ca_pem: Option<String>,
}

/// A running PostgreSQL server of this test's own; stopped (immediately)
/// and removed on drop.
pub struct Postgres {
    /// Holds the data directory, the socket and the log; removed on drop.
    dir: tempfile::TempDir,
    port: u16,
    frozen: AtomicBool,
    /// Whether it takes TLS connections only (over TCP).
    tls: bool,
}

impl Postgres {
    /// Starts a new server from the template (running `initdb` for it
    /// first if this is the process's first server) and waits until it
    /// accepts connections. Panics, with its log, if it does not.
    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// [`Postgres::start`], with TLS on (`ssl=on` and `tls`' files) and a
    /// pg_hba.conf that takes TCP connections over TLS only, so that a
    /// plaintext one is refused (the unix socket, for [`Postgres::psql`],
    /// stays as it is).
    pub fn start_tls(tls: &ServerTls) -> Postgres {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Postgres {
        let template = template();
        let mut last_log = String::new();
        // A free port may be taken by someone else before the server binds
        // it: then try another.
        for _ in 0..3 {
            let dir = private_dir("signet-pg-");
            let data = dir.path().join("data");
            let out = Command::new("cp")
                .arg("-a")
                .arg(template.join("data"))
                .arg(&data)
                .output()
                .expect("cp");
            assert!(
                out.status.success(),
                "cp -a of the PostgreSQL template failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let pg = Postgres {
                dir,
                port: free_port(),
                frozen: AtomicBool::new(false),
                tls: tls.is_some(),
            };
            if let Some(tls) = tls {
                pg.configure_tls(tls);
            }
            match pg.try_start() {
                Ok(()) => return pg,
                Err(log) if log.contains("could not bind") => last_log = log,
                Err(log) => panic!("PostgreSQL did not start on port {}: {log}", pg.port),
            }
        }
        panic!("PostgreSQL found no free port: {last_log}");
    }

    /// `postgres://signet:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// [`Postgres::url`] without the password.
    pub fn url_without_password(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port on 127.0.0.1 (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of its unix socket (`.s.PGSQL.PORT`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `pg_ctl stop -m fast`, waiting until it is down (thaws it first if
    /// frozen). Panics if it does not stop.
    pub fn stop(&self) {
        self.thaw();
        let out = self.pg_ctl(&["stop", "-m", "fast"]);
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
    }

    /// Starts it again after [`Postgres::stop`]: the same data directory
    /// and port. Waits until it accepts connections.
    pub fn start_again(&self) {
        if let Err(log) = self.try_start() {
            panic!(
                "PostgreSQL did not start again on port {}: {log}",
                self.port
            );
        }
    }

    /// [`Postgres::stop`] and [`Postgres::start_again`].
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// SIGSTOP to the postmaster and every process under it, waiting until
    /// they are all stopped: connections and queries hang (the kernel still
    /// completes TCP handshakes) until [`Postgres::thaw`]. Only this
    /// server's processes.
    pub fn freeze(&self) {
        let pm = self
            .postmaster_pid()
            .expect("freeze: the server is not running");
        self.frozen.store(true, Ordering::SeqCst);
        // The postmaster first, so that it forks no new process while the
        // others are found.
        signal(pm, libc::SIGSTOP);
        wait_stopped(pm);
        let mut done = vec![pm];
        // Twice: a process forked just before the postmaster stopped.
        for _ in 0..2 {
            for pid in descendants(pm) {
                if !done.contains(&pid) {
                    signal(pid, libc::SIGSTOP);
                    done.push(pid);
                }
            }
        }
        for &pid in &done {
            wait_stopped(pid);
        }
    }

    /// SIGCONT to what [`Postgres::freeze`] stopped. Nothing if not frozen.
    pub fn thaw(&self) {
        if !self.frozen.swap(false, Ordering::SeqCst) {
            return;
        }
        if let Some(pm) = self.postmaster_pid() {
            for pid in descendants(pm) {
                signal(pid, libc::SIGCONT);
            }
            signal(pm, libc::SIGCONT);
        }
    }

    /// Whether it is frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Runs `sql` with `psql -X -A -t -v ON_ERROR_STOP=1` as the superuser
    /// over the unix socket; returns its stdout (rows one a line, columns
    /// separated by `|`). Panics with its stderr if it fails, or if the
    /// server is frozen (it would hang).
    pub fn psql(&self, sql: &str) -> String {
        assert!(!self.is_frozen(), "psql: the server is frozen");
        let mut cmd = pg_command("psql");
        cmd.current_dir(self.dir.path())
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", "postgres"])
            .arg("-c")
            .arg(sql);
        let out = cmd.stdin(Stdio::null()).output().expect("psql");
        assert!(
            out.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("psql output is UTF-8")
    }

    /// Runs `sql` with `psql` over TCP with the password, as a client of
    /// [`Postgres::url`] would, giving up connecting after
    /// `connect_timeout` (libpq's minimum is 2 s): stdout, or stderr on
    /// failure. Never hangs longer than `connect_timeout` + 10 s.
    pub fn psql_tcp(&self, sql: &str, connect_timeout: Duration) -> Result<String, String> {
        let sslmode = if self.tls { "require" } else { "disable" };
        self.psql_tcp_sslmode(sql, connect_timeout, sslmode)
    }

    /// [`Postgres::psql_tcp`] with libpq's `sslmode` (`disable`, `require`).
    pub fn psql_tcp_sslmode(
        &self,
        sql: &str,
        connect_timeout: Duration,
        sslmode: &str,
    ) -> Result<String, String> {
        let secs = connect_timeout.as_secs().max(2);
        let child = Command::new(bin("psql"))
            .current_dir(self.dir.path())
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-w"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", "postgres", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", secs.to_string())
            .env("PGSSLMODE", sslmode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        let pid = child.id() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(Duration::from_secs(secs + 10)) {
            Ok(out) => out.expect("psql"),
            Err(_) => {
                signal(pid, libc::SIGKILL);
                let _ = rx.recv();
                return Err(format!("psql over TCP still running after {secs} s + 10 s"));
            }
        };
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Writes `tls`' files next to the data directory (the key 0600, as
    /// PostgreSQL requires, all owned by the user it runs as) and a
    /// pg_hba.conf that takes TCP connections over TLS only.
    fn configure_tls(&self, tls: &ServerTls) {
        use std::os::unix::fs::PermissionsExt;
        let write = |name: &str, text: &str, mode: u32| {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            owned_by_postgres(&path);
        };
        write("server.crt", &tls.cert_pem, 0o644);
        write("server.key", &tls.key_pem, 0o600);
        let clientcert = match &tls.client_ca_pem {
            Some(ca) => {
                write("client-ca.crt", ca, 0o644);
                " clientcert=verify-ca"
            }
            None => "",
        };
        // No `host` line: a plaintext TCP connection matches nothing, and
        // is refused ("no pg_hba.conf entry ... no encryption").
        let hba = format!(
            "# support::postgres, start_tls: TLS only over TCP\n\
             local   all all              trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256{clientcert}\n"
        );
        let path = self.data_dir().join("pg_hba.conf");
        std::fs::write(&path, hba).unwrap();
        owned_by_postgres(&path);
    }

    /// The server's options for TLS, if on.
    fn tls_options(&self) -> String {
        if !self.tls {
            return String::new();
        }
        let file = |name: &str| {
            let path = self.dir.path().join(name);
            format!("'{}'", path.to_str().expect("a UTF-8 temporary path"))
        };
        let mut options = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            file("server.crt"),
            file("server.key")
        );
        if self.dir.path().join("client-ca.crt").exists() {
            options.push_str(&format!(" -c ssl_ca_file={}", file("client-ca.crt")));
        }
        options
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("server log (tail):\n{}", lines[from..].join("\n"))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `pg_ctl -D DATA -w -t 30 ARGS`.
    fn pg_ctl(&self, args: &[&str]) -> Output {
        pg_command("pg_ctl")
            .current_dir(self.dir.path())
            .args(args)
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", &READY_WITHIN.as_secs().to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl")
    }

    /// `pg_ctl start`, then a TCP connection: `Err(log tail)` if either
    /// fails.
    fn try_start(&self) -> Result<(), String> {
        let sock = self.dir.path().to_str().expect("a UTF-8 temporary path");
        let options = format!(
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c listen_addresses=127.0.0.1 -p {} -k '{sock}' -c max_connections=200{}",
            self.port,
            self.tls_options()
        );
        let log = self.log_path();
        let out = self.pg_ctl(&[
            "start",
            "-l",
            log.to_str().expect("a UTF-8 temporary path"),
            "-o",
            &options,
        ]);
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            ));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_WITHIN;
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("no TCP connection to {addr}\n{}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The first line of `DATA/postmaster.pid`, if that process is alive.
    fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Copies the log into the sweep directory, next to a link to this
    /// process's secrets, as `support::process` does for `signet serve`.
    fn keep_log(&self) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = super::log_dir();
        if std::fs::create_dir_all(&dir).is_err() || !self.log_path().exists() {
            return;
        }
        let pid = std::process::id();
        let stem = format!("{pid}.postgres-{}", N.fetch_add(1, Ordering::Relaxed));
        let _ = std::os::unix::fs::symlink(
            format!("{pid}.secrets"),
            dir.join(format!("{stem}.secrets")),
        );
        let _ = std::fs::copy(self.log_path(), dir.join(format!("{stem}.log")));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.thaw();
        let pm = self.postmaster_pid();
        if pm.is_some() {
            let out = self.pg_ctl(&["stop", "-m", "immediate"]);
            // Should pg_ctl fail, no server outlives the test anyway.
            if !out.status.success() {
                if let Some(pm) = self.postmaster_pid() {
                    for pid in descendants(pm) {
                        signal(pid, libc::SIGKILL);
                    }
                    signal(pm, libc::SIGKILL);
                }
            }
        }
        self.keep_log();
        // Then `dir` is removed.
    }
}

/// A new schema name for this process: `t_PID_N`, lowercase, a valid SQL
/// identifier without quoting.
pub fn fresh_schema() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

mod host;
use host::*;

#[cfg(test)]
#[path = "postgres/tests.rs"]
mod tests;
