//! Three replicas, one of them the scheduler: a rotation policy acts once
//! per period whichever replica runs it, every replica shows one ACTIVE
//! version at a time, and when the scheduler is killed another replica
//! takes over without applying a rotation twice or skipping one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use signet::api::pb;

use super::replica::{eventually, same_everywhere, Replica, Replicas, BECAME_SCHEDULER};
use crate::support::postgres::Postgres;

const KEY: &str = "ticking";
/// How long the policy runs, from the key's creation.
const RUN: Duration = Duration::from_secs(60);
/// The policy's rotation period.
const PERIOD: Duration = Duration::from_secs(1);
/// How long after signing each signature is verified on every replica.
const VERIFY_AFTER: Duration = Duration::from_millis(300);

fn time(t: &Option<prost_types::Timestamp>) -> SystemTime {
    let t = t.as_ref().expect("a timestamp");
    SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32)
}

/// Which replicas are up: a request to one that is down may fail.
type Alive = Arc<[AtomicBool; 3]>;

fn pick_alive(alive: &Alive, rng: &mut impl Rng) -> usize {
    let up: Vec<usize> = (0..3)
        .filter(|&i| alive[i].load(Ordering::SeqCst))
        .collect();
    up[rng.gen_range(0..up.len())]
}

/// One replica's view of the key, checked as it is polled: versions 1..n,
/// at most one ACTIVE, never fewer versions than before, and every
/// version the same (creation time, id) as every other replica saw it.
struct Views {
    /// version → (create time, key version id), as first seen.
    versions: BTreeMap<u32, (SystemTime, String)>,
    /// Per replica: versions in its last view.
    last: [usize; 3],
    polls: usize,
    failures: Vec<String>,
}

impl Views {
    fn check(&mut self, replica: usize, key: &pb::Key) {
        self.polls += 1;
        let n = key.versions.len();
        let numbers: Vec<u32> = key.versions.iter().map(|v| v.version).collect();
        if numbers != (1..=n as u32).collect::<Vec<_>>() {
            self.failures
                .push(format!("replica {replica}: versions {numbers:?}"));
        }
        let active = key
            .versions
            .iter()
            .filter(|v| v.state == pb::KeyVersionState::Active as i32)
            .count();
        if active > 1 {
            self.failures.push(format!(
                "replica {replica}: {active} ACTIVE versions: {key:?}"
            ));
        }
        if n < self.last[replica] {
            self.failures.push(format!(
                "replica {replica}: {n} versions after {}",
                self.last[replica]
            ));
        }
        self.last[replica] = n;
        for v in &key.versions {
            let seen = (time(&v.create_time), v.key_version_id.clone());
            let first = self.versions.entry(v.version).or_insert(seen.clone());
            if *first != seen {
                self.failures.push(format!(
                    "replica {replica}: version {} is {seen:?}, elsewhere {first:?}",
                    v.version
                ));
            }
        }
    }
}

/// A 1 s CreateAndPromote policy (3 s grace) for 60 s on three replicas;
/// half way the scheduler is killed with SIGKILL. Polled on every replica
/// every 100 ms: one ACTIVE version at most, versions gap-free and the same
/// everywhere. Signatures made on random replicas verify on every replica
/// 300 ms later. Another replica takes the scheduler over within seconds;
/// versions are created exactly one period apart (the schedule counts from
/// the previous version, not from the tick), so their number follows the
/// elapsed time; the audit trail holds one scheduler row per version, from
/// the old scheduler and then from the new one.
///
/// Takes about 75 s: ~10 s to start three replicas, the 60 s run, checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_rotate_once_per_period_and_a_killed_scheduler_is_replaced() {
    let t0 = Instant::now();
    let pg = Postgres::start();
    let replicas = Replicas::new(&pg);
    let mut r: Vec<Replica> = (0..3).map(|_| replicas.spawn("")).collect();
    eventually(
        "one replica runs the scheduler",
        Duration::from_secs(10),
        || async { r.iter().filter(|x| x.says_it_leads()).count() == 1 },
    )
    .await;

    r[1].admin()
        .create_key(pb::CreateKeyRequest {
            name: KEY.into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: Some(prost_types::Duration {
                    seconds: PERIOD.as_secs() as i64,
                    nanos: 0,
                }),
                pending_period: Some(prost_types::Duration::default()),
                grace_period: Some(prost_types::Duration {
                    seconds: 3,
                    nanos: 0,
                }),
                rotate_after_encryptions: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let created = Instant::now();
    for rep in &r {
        eventually(
            "every replica sees the key",
            Duration::from_secs(10),
            || async { rep.get_key(KEY).await.is_ok() },
        )
        .await;
    }

    let alive: Alive = Arc::new([
        AtomicBool::new(true),
        AtomicBool::new(true),
        AtomicBool::new(true),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let admins: Vec<_> = r.iter().map(Replica::admin).collect();
    let signers: Vec<_> = r.iter().map(Replica::signer).collect();

    // Every replica's view, every 100 ms.
    let views = Arc::new(Mutex::new(Views {
        versions: BTreeMap::new(),
        last: [0; 3],
        polls: 0,
        failures: Vec::new(),
    }));
    let poller = {
        let (admins, alive, stop, views) =
            (admins.clone(), alive.clone(), stop.clone(), views.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let next = tokio::time::Instant::now() + Duration::from_millis(100);
                for (i, a) in admins.iter().enumerate() {
                    if !alive[i].load(Ordering::SeqCst) {
                        continue;
                    }
                    let res = a
                        .clone()
                        .get_key(pb::GetKeyRequest { name: KEY.into() })
                        .await;
                    match res {
                        Ok(r) => match r.into_inner().key {
                            Some(k) => views.lock().check(i, &k),
                            None => views.lock().failures.push(format!("GetKey on {i}: no key")),
                        },
                        Err(e) if alive[i].load(Ordering::SeqCst) => {
                            views.lock().failures.push(format!("GetKey on {i}: {e:?}"))
                        }
                        Err(_) => {}
                    }
                }
                tokio::time::sleep_until(next).await;
            }
        })
    };

    // Signatures on random replicas, each verified on every replica
    // 300 ms later (well within the 3 s grace of the version that made it).
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let verified = Arc::new(AtomicUsize::new(0));
    let signing: Vec<_> = (0..2)
        .map(|_| {
            let (signers, alive, stop, failures, verified) = (
                signers.clone(),
                alive.clone(),
                stop.clone(),
                failures.clone(),
                verified.clone(),
            );
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::from_entropy();
                let mut checks = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let i = pick_alive(&alive, &mut rng);
                    let message: Vec<u8> = (0..32).map(|_| rng.gen()).collect();
                    let res = signers[i]
                        .clone()
                        .sign(pb::SignRequest {
                            key: KEY.into(),
                            input: Some(pb::sign_request::Input::Message(message.clone())),
                            ..Default::default()
                        })
                        .await;
                    let signed_at = tokio::time::Instant::now();
                    let s = match res {
                        Ok(s) => s.into_inner(),
                        Err(e) => {
                            if alive[i].load(Ordering::SeqCst) {
                                failures.lock().push(format!("Sign on {i}: {e:?}"));
                            }
                            continue;
                        }
                    };
                    let (signers, alive, failures, verified) = (
                        signers.clone(),
                        alive.clone(),
                        failures.clone(),
                        verified.clone(),
                    );
                    checks.push(tokio::spawn(async move {
                        tokio::time::sleep_until(signed_at + VERIFY_AFTER).await;
                        for (j, c) in signers.iter().enumerate() {
                            if !alive[j].load(Ordering::SeqCst) {
                                continue;
                            }
                            let res = c
                                .clone()
                                .verify(pb::VerifyRequest {
                                    key: KEY.into(),
                                    version: s.version,
                                    input: Some(pb::verify_request::Input::Message(
                                        message.clone(),
                                    )),
                                    signature: s.signature.clone(),
                                    ..Default::default()
                                })
                                .await;
                            match res {
                                Ok(v) if v.get_ref().valid => {
                                    verified.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(v) => failures.lock().push(format!(
                                    "replica {j} rejects v{} signed on {i}: {:?}",
                                    s.version,
                                    v.into_inner()
                                )),
                                Err(e) if alive[j].load(Ordering::SeqCst) => failures
                                    .lock()
                                    .push(format!("Verify on {j} of v{}: {e:?}", s.version)),
                                Err(_) => {}
                            }
                        }
                    }));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                for c in checks {
                    c.await.unwrap();
                }
            })
        })
        .collect();

    // Half way: kill the scheduler; another replica must take over.
    tokio::time::sleep_until((created + RUN / 2).into()).await;
    let leaders: Vec<usize> = (0..3).filter(|&i| r[i].says_it_leads()).collect();
    assert_eq!(
        leaders.len(),
        1,
        "replicas whose log says they lead: {leaders:?}"
    );
    let old = leaders[0];
    let old_replica = format!("{}", r[old].serve.pid());
    let marks: Vec<usize> = r.iter().map(|x| x.serve.log_len()).collect();
    alive[old].store(false, Ordering::SeqCst);
    let killed = Instant::now();
    r[old].kill();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let new = loop {
        if let Some(&i) = survivors
            .iter()
            .find(|&&i| r[i].serve.since(marks[i]).contains(BECAME_SCHEDULER))
        {
            break i;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "no replica took the scheduler over within 5 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let takeover = killed.elapsed();
    let new_replica = format!("{}", r[new].serve.pid());

    tokio::time::sleep_until((created + RUN).into()).await;
    stop.store(true, Ordering::SeqCst);
    poller.await.unwrap();
    for s in signing {
        s.await.unwrap();
    }
    let views = std::mem::replace(
        &mut *views.lock(),
        Views {
            versions: BTreeMap::new(),
            last: [0; 3],
            polls: 0,
            failures: Vec::new(),
        },
    );
    assert!(views.failures.is_empty(), "{:#?}", views.failures);
    let failures = failures.lock().clone();
    assert!(failures.is_empty(), "{failures:#?}");
    let verified = verified.load(Ordering::Relaxed);
    assert!(verified >= 200, "only {verified} verifications");
    assert!(views.polls >= 300, "only {} polls", views.polls);

    // Still one scheduler: the one that took over.
    for &i in &survivors {
        assert_eq!(r[i].says_it_leads(), i == new, "replica {i}");
    }
    let other = 3 - old - new;
    assert!(
        !r[other]
            .serve
            .since(marks[other])
            .contains(BECAME_SCHEDULER),
        "both survivors took the scheduler over"
    );

    // The survivors agree; versions gap-free, one ACTIVE.
    let key = same_everywhere(
        &[&r[survivors[0]], &r[survivors[1]]],
        KEY,
        Duration::from_secs(10),
    )
    .await;
    let now = SystemTime::now();
    let n = key.versions.len();
    let numbers: Vec<u32> = key.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, (1..=n as u32).collect::<Vec<_>>());
    let active: Vec<u32> = key
        .versions
        .iter()
        .filter(|v| v.state == pb::KeyVersionState::Active as i32)
        .map(|v| v.version)
        .collect();
    assert_eq!(active, vec![n as u32]);
    for v in &key.versions {
        if let Some((t, id)) = views.versions.get(&v.version) {
            assert_eq!(
                (*t, id.as_str()),
                (time(&v.create_time), v.key_version_id.as_str()),
                "v{} as polled and now",
                v.version
            );
        }
    }
    assert!(
        views.versions.len() <= n,
        "polled {:?}",
        views.versions.keys()
    );

    // One version per period: each created exactly one period after the
    // previous one (the schedule counts from it), except where a tick came
    // more than a period late and the schedule restarted then; never
    // sooner (a rotation applied twice), never much later (one skipped).
    let creates: Vec<SystemTime> = key.versions.iter().map(|v| time(&v.create_time)).collect();
    let gaps: Vec<Duration> = creates
        .windows(2)
        .map(|w| {
            w[1].duration_since(w[0])
                .expect("versions in creation order")
        })
        .collect();
    let late: Vec<(usize, Duration)> = gaps
        .iter()
        .enumerate()
        .filter(|(_, g)| **g != PERIOD)
        .map(|(i, g)| (i + 2, *g))
        .collect();
    for &(v, g) in &late {
        assert!(
            g > PERIOD && g <= Duration::from_millis(2500),
            "v{} came {g:?} after v{}: {late:?}",
            v,
            v - 1
        );
    }
    assert!(late.len() <= 3, "restarted schedules: {late:?}");
    // So the number of rotations is the whole periods elapsed since the
    // key's creation, less what restarts lost; never more.
    let periods = now.duration_since(creates[0]).unwrap().as_secs() as usize;
    let rotations = n - 1;
    assert!(
        rotations <= periods && rotations + 3 >= periods,
        "{rotations} rotations in {periods} periods"
    );

    // The audit trail: one row per committed change (generations 1..G),
    // one scheduler row per version created, and those from the first
    // scheduler and then from its successor.
    let schema = &replicas.schema;
    let generation: usize = pg
        .psql(&format!(
            "SELECT generation FROM {schema}.keys WHERE name = '{KEY}'"
        ))
        .trim()
        .parse()
        .unwrap();
    let gens = pg.psql(&format!(
        "SELECT count(*), count(DISTINCT generation), min(generation), max(generation) \
         FROM {schema}.audit WHERE key = '{KEY}'"
    ));
    assert_eq!(
        gens.trim(),
        format!("{generation}|{generation}|1|{generation}")
    );
    let rows = pg.psql(&format!(
        "SELECT n, prev, rpc, split_part(replica, ':', 2) FROM ( \
           SELECT generation, rpc, replica, \
             jsonb_array_length(record->'versions') AS n, \
             lag(jsonb_array_length(record->'versions'), 1, 0) OVER (ORDER BY generation) AS prev \
           FROM {schema}.audit WHERE key = '{KEY}') x \
         WHERE n <> prev ORDER BY generation"
    ));
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), n, "{rows:?}");
    assert_eq!(&rows[0][..3], &["1", "0", "signet.v1.KeyAdmin/CreateKey"]);
    let mut by = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(1) {
        assert_eq!(
            &row[..3],
            &[&(i + 1).to_string(), &i.to_string(), "scheduler"],
            "{rows:?}"
        );
        if by.last() != Some(&row[3]) {
            by.push(row[3]);
        }
    }
    assert_eq!(
        by,
        vec![old_replica.as_str(), new_replica.as_str()],
        "the scheduler rows' replicas (pids), in order"
    );
    eprintln!(
        "{n} versions in {periods} s; schedule restarts {late:?}; takeover {takeover:?}; \
         {} polls, {verified} verifications; took the lock {:?} times; whole test {:?}",
        views.polls,
        r.iter()
            .map(Replica::times_it_became_scheduler)
            .collect::<Vec<_>>(),
        t0.elapsed()
    );
}
