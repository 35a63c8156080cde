//! A token that goes away and comes back, as an attacker (or a failing
//! disk, or an operator's mistake) does it from outside: `signet serve` on
//! a SoftHSM2 token in a directory of its own, signing under load from
//! concurrent clients, while the token directory is moved away or made
//! unreadable for a few seconds.
//!
//! Each test runs signet as a child process with its own `SOFTHSM2_CONF`:
//! recovering a SoftHSM2 token re-initialises the module, which is
//! process-wide, and must not touch the other tests' tokens.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use signet::api::pb;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::process::{serve, Serve, WaitFor};

/// A SoftHSM2 installation of its own: config, token directory, one token.
pub(super) struct Store {
    pub(super) dir: PathBuf,
    conf: PathBuf,
    pub(super) tokens: PathBuf,
    label: String,
    pin_file: PathBuf,
}

impl Store {
    pub(super) fn new() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("signet-outage-")
            .tempdir()
            .unwrap()
            .keep();
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let label = super::fresh_label();
        let (so, user) = (format!("so-{label}"), format!("user-{label}"));
        crate::support::remember_secret(so.as_bytes());
        crate::support::remember_secret(user.as_bytes());
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", &label])
            .args(["--so-pin", &so, "--pin", &user])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util (softhsm2) is required");
        assert!(out.status.success(), "{out:?}");
        let pin_file = dir.join("user.pin");
        std::fs::write(&pin_file, format!("{user}\n")).unwrap();
        Store {
            dir,
            conf,
            tokens,
            label,
            pin_file,
        }
    }

    fn config(&self) -> PathBuf {
        let path = self.dir.join("signet.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\nplaintext = true\n[backend]\ntype = \"pkcs11\"\nmodule = \"{}\"\n\
                 token_label = \"{}\"\npin_file = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
                 [log]\nlevel = \"info\"\n",
                super::env().module.display(),
                self.label,
                self.pin_file.display()
            ),
        )
        .unwrap();
        path
    }

    /// The directory of the store's one token (SoftHSM2 names it by a
    /// UUID of its own).
    pub(super) fn token_dir(&self) -> PathBuf {
        std::fs::read_dir(&self.tokens)
            .unwrap()
            .next()
            .expect("the store has its token")
            .unwrap()
            .path()
    }

    /// Everything readable by `uid` only (for the unreadable-token test).
    fn chown(&self, uid: u32, gid: u32) {
        fn walk(p: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            if p.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), uid, gid);
                }
            }
        }
        walk(&self.dir, uid, gid);
    }
}

/// Runs `signet serve` (as `user`, if given: uid and gid) on `store`,
/// waiting (with no bound) for what `wait_for` names.
pub(super) fn serve_on(store: &Store, user: Option<(u32, u32)>, wait_for: WaitFor) -> Serve {
    let config = store.config();
    serve()
        .args(["--listen", "127.0.0.1:0"])
        .config(&config)
        .env("SOFTHSM2_CONF", &store.conf)
        .log_level_from_config()
        .run_as(user)
        .wait_for(wait_for)
        .ready_within(None)
        .start()
}

/// What the outage tests ask of a [`Serve`] beyond its addresses and log.
impl Serve {
    /// grpc.health.v1 for the whole server, on the gRPC port.
    pub(super) async fn health(&self) -> ServingStatus {
        let mut c = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        let s = c
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        ServingStatus::try_from(s).unwrap()
    }

    /// `signet_ready` on the admin port's /metrics.
    fn ready_metric(&self) -> f64 {
        let mut s = std::net::TcpStream::connect(&self.admin).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: signet\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.lines()
            .find_map(|l| l.strip_prefix("signet_ready "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no signet_ready in {out}"))
    }

    /// Waits (at most `bound`) until readiness is `want` on both the gRPC
    /// health service and the metric.
    async fn wait_ready(&self, want: ServingStatus, bound: Duration) -> Duration {
        let start = Instant::now();
        let metric = if want == ServingStatus::Serving {
            1.0
        } else {
            0.0
        };
        loop {
            if self.health().await == want && self.ready_metric() == metric {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < bound,
                "readiness not {want:?} after {bound:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(super) const BOUND: Duration = Duration::from_secs(10);

pub(super) fn sign_req(key: &str, msg: &[u8]) -> pb::SignRequest {
    pb::SignRequest {
        key: key.into(),
        input: Some(pb::sign_request::Input::Message(msg.to_vec())),
        ..Default::default()
    }
}

pub(super) fn verify_req(key: &str, msg: &[u8], sig: &[u8]) -> pb::VerifyRequest {
    pb::VerifyRequest {
        key: key.into(),
        input: Some(pb::verify_request::Input::Message(msg.to_vec())),
        signature: sig.to_vec(),
        ..Default::default()
    }
}

pub(super) async fn create(ch: &Channel, name: &str, alg: &str) -> Result<pb::Key, tonic::Status> {
    pb::key_admin_client::KeyAdminClient::new(ch.clone())
        .create_key(pb::CreateKeyRequest {
            name: name.into(),
            algorithm: pb::Algorithm::from(signet::keys::Algorithm::from_name(alg).unwrap()) as i32,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().key.unwrap())
}

/// Waits (at most `bound`) for `f`.
async fn until(bound: Duration, what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < bound, "no {what} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the token is taken away.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// `mv tokens tokens.away`.
    Moved,
    /// `chmod 000 tokens`, signet running as an unprivileged user.
    Unreadable,
}

/// What the load saw: when, and the gRPC code (`Ok` for success).
type Outcomes = Arc<Mutex<Vec<(Instant, Code)>>>;

async fn token_lost_and_returned(loss: Loss) {
    let store = Store::new();
    let user = match loss {
        Loss::Moved => None,
        Loss::Unreadable => {
            // root ignores file modes: run signet as nobody.
            store.chown(65534, 65534);
            Some((65534, 65534))
        }
    };
    let s = serve_on(&store, user, WaitFor::Both);
    let ch = s.channel().await;
    create(&ch, "lost-ec", "ECDSA_P256_SHA256").await.unwrap();
    create(&ch, "lost-mac", "HMAC_SHA256").await.unwrap();
    let mut signer = pb::signer_client::SignerClient::new(ch.clone());
    let old_ec = signer
        .sign(sign_req("lost-ec", b"before"))
        .await
        .unwrap()
        .into_inner();
    let old_mac = signer
        .sign(sign_req("lost-mac", b"before"))
        .await
        .unwrap()
        .into_inner();
    s.wait_ready(ServingStatus::Serving, BOUND).await;

    // Load: four clients signing and verifying MACs (both on the token),
    // each call bounded so a hang is seen as one.
    let outcomes: Outcomes = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (outcomes, stop, ch) = (outcomes.clone(), stop.clone(), ch.clone());
        let tag = old_mac.signature.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = pb::signer_client::SignerClient::new(ch);
            for j in 0u64.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let call = async {
                    match (i + j) % 3 {
                        0 => c.sign(sign_req("lost-ec", b"load")).await.map(|_| ()),
                        1 => c.sign(sign_req("lost-mac", b"load")).await.map(|_| ()),
                        _ => c
                            .verify(verify_req("lost-mac", b"before", &tag))
                            .await
                            .map(|r| assert!(r.into_inner().valid, "old MAC invalid")),
                    }
                };
                let code = match tokio::time::timeout(Duration::from_secs(5), call).await {
                    Ok(Ok(())) => Code::Ok,
                    Ok(Err(st)) => st.code(),
                    Err(_) => Code::DeadlineExceeded,
                };
                outcomes.lock().push((Instant::now(), code));
            }
        }));
    }
    let count = |code: Code| outcomes.lock().iter().filter(|(_, c)| *c == code).count();
    until(BOUND, "load running", || count(Code::Ok) >= 20).await;

    // Take the token away for about 3 s (and at least until readiness
    // has gone off).
    let away = store.dir.join("tokens.away");
    let lost_at = Instant::now();
    match loss {
        Loss::Moved => std::fs::rename(&store.tokens, &away).unwrap(),
        Loss::Unreadable => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&store.tokens, std::fs::Permissions::from_mode(0o000)).unwrap()
        }
    }
    let off_after = s.wait_ready(ServingStatus::NotServing, BOUND).await;
    let r = create(&ch, "during", "HMAC_SHA256").await;
    assert_eq!(r.map(|_| ()).unwrap_err().code(), Code::Unavailable);
    let failing = |c: Code| outcomes.lock().iter().any(|(t, x)| *t > lost_at && *x == c);
    until(BOUND, "UNAVAILABLE under load", || {
        failing(Code::Unavailable)
    })
    .await;
    let outage = Duration::from_secs(3);
    if lost_at.elapsed() < outage {
        tokio::time::sleep(outage - lost_at.elapsed()).await;
    }
    // Still off while the token is away.
    assert_eq!(s.health().await, ServingStatus::NotServing);

    // Bring it back: readiness, Sign, Verify and CreateKey recover by
    // themselves within the bound.
    match loss {
        Loss::Moved => std::fs::rename(&away, &store.tokens).unwrap(),
        Loss::Unreadable => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&store.tokens, std::fs::Permissions::from_mode(0o755)).unwrap()
        }
    }
    let back_at = Instant::now();
    let on_after = s.wait_ready(ServingStatus::Serving, BOUND).await;
    let created = loop {
        match create(&ch, "after", "ED25519").await {
            Ok(k) => break k,
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                assert!(
                    back_at.elapsed() < BOUND,
                    "CreateKey did not recover: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(created.active_version, 1);
    let ok_since = Instant::now();
    until(BOUND, "load succeeding again", || {
        outcomes
            .lock()
            .iter()
            .filter(|(t, c)| *t > ok_since && *c == Code::Ok)
            .count()
            >= 20
    })
    .await;
    let recovered = back_at.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // Every failure was UNAVAILABLE: never INTERNAL, never a hang.
    let all = outcomes.lock().clone();
    let failures: Vec<Code> = all
        .iter()
        .map(|(_, c)| *c)
        .filter(|c| *c != Code::Ok)
        .collect();
    assert!(!failures.is_empty(), "the outage was not seen");
    assert!(
        failures.iter().all(|c| *c == Code::Unavailable),
        "{:?}\n{}",
        failures
            .iter()
            .filter(|c| **c != Code::Unavailable)
            .collect::<Vec<_>>(),
        s.log_text()
    );

    // Keys from before the outage still sign, and their signatures from
    // before still verify; the key made after it signs too.
    for key in ["lost-ec", "lost-mac", "after"] {
        let sig = signer
            .sign(sign_req(key, b"after"))
            .await
            .unwrap()
            .into_inner();
        let v = signer
            .verify(verify_req(key, b"after", &sig.signature))
            .await
            .unwrap();
        assert!(v.into_inner().valid, "{key}");
    }
    for (key, sig) in [("lost-ec", &old_ec), ("lost-mac", &old_mac)] {
        let v = signer
            .verify(verify_req(key, b"before", &sig.signature))
            .await
            .unwrap();
        assert!(v.into_inner().valid, "{key}");
    }
    assert_eq!(s.ready_metric(), 1.0);
    let log = s.log_text();
    assert!(!log.contains(
        &std::fs::read_to_string(&store.pin_file)
            .unwrap()
            .trim()
            .to_string()
    ));
    eprintln!(
        "{loss:?}: {} calls, {} UNAVAILABLE; NOT_SERVING {off_after:?} after the loss; \
         SERVING {on_after:?} and all calls working {recovered:?} after the return",
        all.len(),
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_directory_moved_away_and_back_under_load() {
    token_lost_and_returned(Loss::Moved).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_directory_unreadable_and_readable_again_under_load() {
    token_lost_and_returned(Loss::Unreadable).await;
}

/// Starting with the token directory missing names the token and says
/// what to check, not "internal error".
#[test]
fn start_with_token_directory_missing_says_so() {
    let store = Store::new();
    std::fs::rename(&store.tokens, store.dir.join("elsewhere")).unwrap();
    let mut proc = serve_on(&store, None, WaitFor::Nothing);
    let status = proc.wait().unwrap();
    let log = proc.log_text();
    assert!(!status.success(), "{log}");
    let want = format!(
        "PKCS#11 token with label \"{}\" not found or not readable",
        store.label
    );
    assert!(log.contains(&want), "{log}");
    assert!(!log.contains("internal error"), "{log}");
}
