//! PostgreSQL stopped or frozen under two `signet serve` replicas that
//! share it (one token, one schema), while both sign under load: signing
//! serves from the cached view and never waits for the database; admin
//! calls fail `UNAVAILABLE` within `postgres.statement_timeout`; both
//! recover by themselves; and past `registry.max_staleness` signing fails
//! closed and readiness goes NOT_SERVING, until the database is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use signet::api::pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use super::procs::*;

/// `registry.max_staleness` in these tests.
const STALENESS: Duration = Duration::from_secs(6);
/// Every wait for a recovery.
const BOUND: Duration = Duration::from_secs(20);

/// How the database goes away.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outage {
    /// `pg_ctl stop -m fast` for about 2 s, then started again.
    Stopped,
    /// SIGSTOP for about 2 s, then SIGCONT.
    Frozen,
    /// SIGSTOP for about 9 s: past max_staleness.
    FrozenPastStaleness,
}

/// One Sign call's outcome: when it returned, on which replica, the code
/// and (for a failure) the message.
type Outcomes = Arc<Mutex<Vec<(Instant, usize, Code, String)>>>;

struct Load {
    outcomes: Outcomes,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Three clients per replica, each signing in a loop with each key in
/// turn, every call bounded at 5 s (a hang is seen as one).
fn start_load(channels: &[tonic::transport::Channel], keys: &[&'static str]) -> Load {
    let outcomes: Outcomes = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (replica, ch) in channels.iter().enumerate() {
        for i in 0..3 {
            let (outcomes, stop, ch) = (outcomes.clone(), stop.clone(), ch.clone());
            let keys = keys.to_vec();
            tasks.push(tokio::spawn(async move {
                let mut c = signer(&ch);
                for j in 0usize.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = keys[(i + j) % keys.len()];
                    let call = c.sign(sign_req(key, b"under load"));
                    let (code, message) =
                        match tokio::time::timeout(Duration::from_secs(5), call).await {
                            Ok(Ok(_)) => (Code::Ok, String::new()),
                            Ok(Err(st)) => (st.code(), st.message().to_string()),
                            Err(_) => (Code::DeadlineExceeded, "no answer in 5 s".into()),
                        };
                    let failed = code != Code::Ok;
                    outcomes
                        .lock()
                        .push((Instant::now(), replica, code, message));
                    if failed {
                        // Do not spin on a replica that refuses at once.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
    }
    Load {
        outcomes,
        stop,
        tasks,
    }
}

impl Load {
    fn count_since(&self, since: Instant, replica: usize, code: Code) -> usize {
        self.outcomes
            .lock()
            .iter()
            .filter(|(t, r, c, _)| *t > since && *r == replica && *c == code)
            .count()
    }

    async fn wait_ok_on_both(&self, since: Instant, n: usize, what: &str) {
        eventually(BOUND, what, || async {
            (0..2).all(|r| self.count_since(since, r, Code::Ok) >= n)
        })
        .await;
    }

    async fn finish(self) -> Vec<(Instant, usize, Code, String)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let all = self.outcomes.lock().clone();
        all
    }
}

/// A CreateKey made while the database is away, with a 5 s deadline:
/// `UNAVAILABLE`, well within the deadline (statement_timeout is 1 s),
/// saying nothing of the URL or the driver.
async fn admin_call_during_outage(
    ch: &tonic::transport::Channel,
    d: &Deployment,
    name: &str,
) -> Duration {
    let mut req = tonic::Request::new(pb::CreateKeyRequest {
        name: name.into(),
        algorithm: pb::Algorithm::HmacSha256 as i32,
        ..Default::default()
    });
    req.set_timeout(Duration::from_secs(5));
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(6), admin(ch).create_key(req))
        .await
        .expect("CreateKey hung past its deadline");
    let took = t.elapsed();
    let e = r.expect_err("CreateKey succeeded with the database away");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        took < Duration::from_secs(3),
        "CreateKey took {took:?} to fail (statement_timeout is 1 s)"
    );
    assert!(e.message().contains("database"), "{e:?}");
    assert_no_leak(e.message(), &d.pg);
    took
}

/// After the database is back: an admin call on `from` succeeds within
/// the bound (retrying `UNAVAILABLE` only), and `to` sees its result.
async fn change_reaches_other(
    from: &tonic::transport::Channel,
    to: &tonic::transport::Channel,
    name: &str,
) -> Duration {
    let t = Instant::now();
    loop {
        match create(from, name, pb::Algorithm::Ed25519).await {
            Ok(k) => {
                assert_eq!(k.active_version, 1);
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                assert!(t.elapsed() < BOUND, "admin calls did not recover: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let recovered = t.elapsed();
    eventually(BOUND, "the other replica sees the new key", || async {
        get(to, name).await.is_ok()
    })
    .await;
    recovered
}

async fn outage_under_load(kind: Outage) {
    let d = Deployment::new();
    let config = d.registry_config("6s", "1s");
    let replicas = [spawn(&config), spawn(&config)];
    let channels = [replicas[0].channel().await, replicas[1].channel().await];
    for s in &replicas {
        wait_readiness(s, ServingStatus::Serving, BOUND).await;
    }
    create(&channels[0], "load-ec", pb::Algorithm::EcdsaP256Sha256)
        .await
        .unwrap();
    create(&channels[1], "load-mac", pb::Algorithm::HmacSha256)
        .await
        .unwrap();
    // Both replicas sign with both keys before the load starts: SoftHSM2
    // shows one process's new objects to another only after a while, and
    // the replica that did not create a key opens its material again on a
    // later tick.
    for ch in &channels {
        eventually(BOUND, "both replicas sign with both keys", || async {
            let mut c = signer(ch);
            c.sign(sign_req("load-ec", b"ready")).await.is_ok()
                && c.sign(sign_req("load-mac", b"ready")).await.is_ok()
        })
        .await;
    }
    let tag = signer(&channels[0])
        .sign(sign_req("load-mac", b"before the outage"))
        .await
        .unwrap()
        .into_inner()
        .signature;
    let load_started = Instant::now();
    let load = start_load(&channels, &["load-ec", "load-mac"]);
    load.wait_ok_on_both(load_started, 20, "load running on both replicas")
        .await;

    let away_at = Instant::now();
    match kind {
        Outage::Stopped => tokio::task::block_in_place(|| d.pg.stop()),
        Outage::Frozen | Outage::FrozenPastStaleness => d.pg.freeze(),
    }
    // Signing goes on from the cached view on both replicas.
    load.wait_ok_on_both(Instant::now(), 10, "signing while the database is away")
        .await;
    let refused_in = [
        admin_call_during_outage(&channels[0], &d, "during-a").await,
        admin_call_during_outage(&channels[1], &d, "during-b").await,
    ];

    let outage = match kind {
        Outage::FrozenPastStaleness => Duration::from_secs(9),
        _ => Duration::from_secs(2),
    };
    let mut not_serving_at: [Option<Instant>; 2] = [None, None];
    while away_at.elapsed() < outage {
        for (i, s) in replicas.iter().enumerate() {
            let (on_admin, on_grpc) = readiness(s).await;
            if not_serving_at[i].is_none()
                && (on_admin == Some(ServingStatus::NotServing)
                    || on_grpc == Some(ServingStatus::NotServing))
            {
                not_serving_at[i] = Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if kind == Outage::FrozenPastStaleness {
        // Past max_staleness: every Sign on both replicas is refused, and
        // both ports say NOT_SERVING.
        let past = away_at + STALENESS + Duration::from_secs(1);
        for (i, s) in replicas.iter().enumerate() {
            let e = signer(&channels[i])
                .verify(verify_req("load-mac", b"before the outage", &tag))
                .await
                .expect_err("verified from a view older than max_staleness");
            assert_eq!(e.code(), Code::Unavailable, "{e:?}");
            assert!(e.message().contains("max_staleness"), "{e:?}");
            let n = load.count_since(past, i, Code::Unavailable);
            assert!(n > 0, "replica {i} still signing past max_staleness");
            assert_eq!(
                load.count_since(past, i, Code::Ok),
                0,
                "replica {i} signed from a view older than max_staleness"
            );
            assert_eq!(
                readiness(s).await,
                (
                    Some(ServingStatus::NotServing),
                    Some(ServingStatus::NotServing)
                ),
                "replica {i}"
            );
            let at = not_serving_at[i].expect("readiness never went NOT_SERVING");
            assert!(
                at - away_at > STALENESS - Duration::from_secs(1),
                "replica {i} NOT_SERVING after only {:?}",
                at - away_at
            );
        }
    } else {
        assert_eq!(
            not_serving_at,
            [None, None],
            "readiness went off in a short outage"
        );
    }

    let back_at = Instant::now();
    match kind {
        Outage::Stopped => tokio::task::block_in_place(|| d.pg.start_again()),
        Outage::Frozen | Outage::FrozenPastStaleness => d.pg.thaw(),
    }
    let mut ready_after = Duration::ZERO;
    for s in &replicas {
        ready_after = ready_after.max(wait_readiness(s, ServingStatus::Serving, BOUND).await);
    }
    load.wait_ok_on_both(Instant::now(), 20, "signing after the database is back")
        .await;
    for ch in &channels {
        let v = signer(ch)
            .verify(verify_req("load-mac", b"before the outage", &tag))
            .await
            .unwrap();
        assert!(v.into_inner().valid);
    }
    let admin_a = change_reaches_other(&channels[0], &channels[1], "after-a").await;
    let admin_b = change_reaches_other(&channels[1], &channels[0], "after-b").await;
    // The calls refused during the outage left nothing behind.
    for ch in &channels {
        for name in ["during-a", "during-b"] {
            assert_eq!(get(ch, name).await.unwrap_err().code(), Code::NotFound);
        }
    }
    let all = load.finish().await;

    let failures: Vec<_> = all.iter().filter(|o| o.2 != Code::Ok).collect();
    match kind {
        Outage::Stopped | Outage::Frozen => assert!(
            failures.is_empty(),
            "{} of {} Sign calls failed: {:?}",
            failures.len(),
            all.len(),
            &failures[..failures.len().min(5)]
        ),
        Outage::FrozenPastStaleness => {
            for (t, replica, code, message) in &failures {
                assert_eq!(*code, Code::Unavailable, "{message}");
                assert!(message.contains("max_staleness"), "{message}");
                assert_no_leak(message, &d.pg);
                assert!(
                    *t - away_at > STALENESS - Duration::from_secs(1),
                    "replica {replica} refused to sign {:?} into the outage",
                    *t - away_at
                );
                assert!(*t < back_at + BOUND, "{replica}");
            }
        }
    }
    for (i, s) in replicas.iter().enumerate() {
        let log = s.log_text();
        assert!(!log.contains(crate::support::postgres::PASSWORD), "{i}");
    }
    eprintln!(
        "{kind:?}: {} Sign calls, {} failed; admin calls refused in {refused_in:?}; SERVING \
         {ready_after:?} after the database came back; admin calls working after {admin_a:?} / \
         {admin_b:?}",
        all.len(),
        failures.len()
    );
    drop(replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_briefly_under_load() {
    outage_under_load(Outage::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_frozen_briefly_under_load() {
    outage_under_load(Outage::Frozen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_frozen_past_max_staleness_fails_closed_and_recovers() {
    outage_under_load(Outage::FrozenPastStaleness).await;
}
