//! The host side of the test PostgreSQL servers: the binaries, the
//! `postgres` user, the initdb template, free ports, private directories,
//! and the processes under a postmaster (for freeze and thaw).

use super::*;

/// Whether the tests run as root: then PostgreSQL runs as `postgres`.
pub(super) fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of the `postgres` system user.
pub(super) fn postgres_user() -> (u32, u32) {
    static USER_IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *USER_IDS.get_or_init(|| {
        let name = std::ffi::CString::new("postgres").unwrap();
        // SAFETY: a NUL-terminated name; the result is read at once, and
        // only from this OnceLock initialisation.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        assert!(
            !pw.is_null(),
            "the tests run as root, and PostgreSQL needs a `postgres` system \
             user to run as (apt-get install postgresql creates it)"
        );
        // SAFETY: non-null, as just checked.
        unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
    })
}

/// As root: `path` becomes the `postgres` user's.
pub(super) fn owned_by_postgres(path: &Path) {
    if as_root() {
        let (uid, gid) = postgres_user();
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// Where the temporary directories go: as root `/tmp`, which the
/// `postgres` user can reach whatever `TMPDIR` is.
pub(super) fn base_dir() -> PathBuf {
    if as_root() {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    }
}

/// The PostgreSQL program `name`, run as the `postgres` user if root.
pub(super) fn pg_command(name: &str) -> Command {
    if as_root() {
        postgres_user();
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin(name));
        c
    } else {
        Command::new(bin(name))
    }
}

/// `name` in PostgreSQL's bin directory.
pub(super) fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The highest-versioned `/usr/lib/postgresql/*/bin` with `initdb` in it,
/// else `pg_config --bindir`; panics if there is neither.
pub(super) fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e
                    .file_name()
                    .to_str()?
                    .split('.')
                    .map(|n| n.parse().ok())
                    .collect::<Option<Vec<u32>>>()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        found.sort();
        if let Some((_, bin)) = found.pop() {
            return bin;
        }
        let from_pg_config = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|b| b.join("initdb").exists());
        from_pg_config.unwrap_or_else(|| {
            panic!(
                "PostgreSQL is required for these tests (apt-get install postgresql): \
                 no /usr/lib/postgresql/*/bin/initdb, and no pg_config --bindir with initdb"
            )
        })
    })
}

/// The template data directory (`TEMPLATE/data`), made by `initdb` once
/// per process and removed when the process exits.
pub(super) fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove_template() {
        if let Some(dir) = TEMPLATE.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    TEMPLATE.get_or_init(|| {
        // First what panics if PostgreSQL or its user is missing, so that
        // no directory is left behind.
        let mut initdb = pg_command("initdb");
        let dir = private_dir("signet-pg-template-");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD_BYTES).unwrap();
        owned_by_postgres(&pwfile);
        let out = initdb
            .current_dir(dir.path())
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", USER])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["--no-sync", "-E", "UTF8", "--locale=C"])
            .stdin(Stdio::null())
            .output()
            .expect("initdb");
        let _ = std::fs::remove_file(&pwfile);
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // SAFETY: registers a function that takes no arguments and only
        // removes a directory.
        unsafe { libc::atexit(remove_template) };
        dir.keep()
    })
}

/// A new temporary directory only its owner may enter, owned by the
/// `postgres` user if root.
pub(super) fn private_dir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base_dir())
        .expect("a temporary directory for PostgreSQL");
    owned_by_postgres(dir.path());
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `kill(pid, sig)`; a process already gone is no error.
pub(super) fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// The state letter and parent of `pid`, from `/proc/PID/stat`.
pub(super) fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses.
    let mut rest = text[text.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Every process under `root` (children, theirs, …), from `/proc/*/stat`.
pub(super) fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some((_, ppid)) = proc_stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// Waits (at most 5 s) until `pid` is stopped, a zombie or gone.
pub(super) fn wait_stopped(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match proc_stat(pid) {
            None | Some(('T' | 't' | 'Z' | 'X', _)) => return,
            Some((state, _)) => assert!(
                Instant::now() < deadline,
                "process {pid} did not stop (state {state})"
            ),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
