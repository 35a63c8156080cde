//! Two replicas racing admin writes on the same keys while clients sign
//! on both: the registry's compare-and-set lets exactly one writer of
//! each change commit, and nothing either replica signed meanwhile stops
//! verifying.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::replica::{eventually, same_everywhere, Replicas};
use crate::support::postgres::Postgres;
use crate::support::{openssl, openssl_verify_args};

const KEYS: usize = 10;
// 510 pairs, so that at least 500 count even if a few rounds are spoiled
// by SoftHSM2 (below).
const ROUNDS: usize = 51;
const SIGNERS: usize = 4;

/// One signature a replica returned.
#[derive(Debug)]
struct Signed {
    replica: usize,
    key: usize,
    message: Vec<u8>,
    signature: Vec<u8>,
    version: u32,
    key_version_id: String,
}

fn key_name(k: usize) -> String {
    format!("race-{k}")
}

/// Even keys Ed25519, odd ones ECDSA P-256: both generate in milliseconds
/// on SoftHSM2.
fn algorithm(k: usize) -> Algorithm {
    if k.is_multiple_of(2) {
        Algorithm::Ed25519
    } else {
        Algorithm::EcdsaP256Sha256
    }
}

fn rotate_request(k: usize) -> pb::RotateKeyRequest {
    pb::RotateKeyRequest {
        name: key_name(k),
        promote: true,
        grace_period: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
    }
}

/// 500 rounds (10 keys × 50): each sends the same RotateKey to both
/// replicas at once, while four clients sign on both. At most one caller
/// is told it created each version, the other is told ABORTED (or, when
/// the two calls did not overlap, created the next version); every
/// signature verifies on both replicas (a sample with OpenSSL too); both
/// replicas end with the same keys, versions 1..N, one ACTIVE.
///
/// Takes 45-70 s here (2 cores, debug build, other tests running): ~2 s
/// to start, 40-65 s of rounds, ~2 s of verification. The rounds slow down
/// as versions pile up: SoftHSM2 keeps one file per object and checks each
/// object's file on every C_FindObjects, ~1000 of them by the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_admin_writes_have_one_winner_and_every_signature_verifies() {
    let t0 = Instant::now();
    let pg = Postgres::start();
    let replicas = Replicas::new(&pg);
    let r = [replicas.spawn(""), replicas.spawn("")];
    let admin = [r[0].admin(), r[1].admin()];
    for k in 0..KEYS {
        admin[k % 2]
            .clone()
            .create_key(pb::CreateKeyRequest {
                name: key_name(k),
                algorithm: pb::Algorithm::from(algorithm(k)) as i32,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    eventually(
        "both replicas see every key",
        Duration::from_secs(20),
        || async {
            for rep in &r {
                for k in 0..KEYS {
                    if rep.get_key(&key_name(k)).await.is_err() {
                        return false;
                    }
                }
            }
            true
        },
    )
    .await;
    let started = t0.elapsed();

    // Clients signing on both replicas, alternately, until the races end.
    let stop = Arc::new(AtomicBool::new(false));
    let signers: Vec<_> = (0..SIGNERS)
        .map(|t| {
            let clients = [r[0].signer(), r[1].signer()];
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::from_entropy();
                let (mut signed, mut failed) = (Vec::new(), Vec::new());
                let mut n = t;
                while !stop.load(Ordering::SeqCst) {
                    let replica = n % 2;
                    n += 1;
                    let key = rng.gen_range(0..KEYS);
                    let message: Vec<u8> = (0..32).map(|_| rng.gen()).collect();
                    let res = clients[replica]
                        .clone()
                        .sign(pb::SignRequest {
                            key: key_name(key),
                            input: Some(pb::sign_request::Input::Message(message.clone())),
                            ..Default::default()
                        })
                        .await;
                    match res {
                        Ok(s) => {
                            let s = s.into_inner();
                            signed.push(Signed {
                                replica,
                                key,
                                message,
                                signature: s.signature,
                                version: s.version,
                                key_version_id: s.key_version_id,
                            })
                        }
                        Err(e) => failed.push((replica, key, e.code(), e.message().to_string())),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (signed, failed)
            })
        })
        .collect();

    // The races. Who created which version: (key, version) → replica.
    let mut created: HashMap<(usize, u32), usize> = HashMap::new();
    let (mut raced, mut apart) = (0, 0);
    let mut spoiled: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        for k in 0..KEYS {
            let (mut x, mut y) = (admin[0].clone(), admin[1].clone());
            let (a, b) = tokio::join!(
                x.rotate_key(rotate_request(k)),
                y.rotate_key(rotate_request(k)),
            );
            let (mut winners, mut hsm_failed) = (0, false);
            for (replica, res) in [a, b].into_iter().enumerate() {
                match res {
                    Ok(resp) => {
                        let resp = resp.into_inner();
                        let v = resp.version.expect("version in RotateKeyResponse").version;
                        let key = resp.key.expect("key in RotateKeyResponse");
                        assert_eq!(key.active_version, v, "promoted at once");
                        if let Some(other) = created.insert((k, v), replica) {
                            panic!(
                                "round {round}: replicas {other} and {replica} were both told \
                                 they created version {v} of {}",
                                key_name(k)
                            );
                        }
                        winners += 1;
                    }
                    // SoftHSM2's file store, shared by two processes that
                    // re-initialise it (visibility.rs), once in a while
                    // refuses a key generation outright (seen once in CI:
                    // CKR_TEMPLATE_INCONSISTENT right after a
                    // re-initialisation). Nothing was recorded for it; such
                    // a round is not counted as a race, and it must stay rare.
                    Err(e) if e.code() == Code::Internal => {
                        hsm_failed = true;
                        spoiled.push(format!("round {round}, {}: {e:?}", key_name(k)));
                    }
                    Err(e) => assert_eq!(
                        e.code(),
                        Code::Aborted,
                        "round {round}, {}, replica {replica}: {e:?}",
                        key_name(k)
                    ),
                }
            }
            match (winners, hsm_failed) {
                (_, true) => {}
                (0, false) => panic!("round {round}: neither replica's rotation of {k} committed"),
                (1, false) => raced += 1,
                _ => apart += 1,
            }
        }
    }
    let racing = t0.elapsed() - started;
    stop.store(true, Ordering::SeqCst);
    let (mut signed, mut failed) = (Vec::new(), Vec::new());
    for s in signers {
        let (ok, bad) = s.await.unwrap();
        signed.extend(ok);
        failed.extend(bad);
    }
    eprintln!(
        "{} rounds: {raced} with one winner and one ABORTED, {apart} that did not overlap; \
         {} signatures, {} sign errors; start {started:?}, races {racing:?}",
        ROUNDS * KEYS,
        signed.len(),
        failed.len()
    );
    // SoftHSM2 may hide a version one replica has just created from the
    // other (see visibility.rs): until that one opens it (at its next look,
    // re-initialising the module at most every 3 s), it answers UNAVAILABLE
    // for the key. Nothing else may fail, and that only rarely.
    let unexpected: Vec<_> = failed
        .iter()
        .filter(|f| !(f.2 == Code::Unavailable && f.3.ends_with("is not available")))
        .collect();
    assert!(unexpected.is_empty(), "signing failed: {unexpected:?}");
    assert!(
        failed.len() * 10 < signed.len(),
        "{} of {} signs failed",
        failed.len(),
        failed.len() + signed.len()
    );
    assert!(
        spoiled.len() <= 5,
        "{} rotations failed on the token: {spoiled:?}",
        spoiled.len()
    );
    if !spoiled.is_empty() {
        eprintln!("rounds spoiled by SoftHSM2, not counted: {spoiled:?}");
    }
    assert!(
        raced + apart >= 500,
        "only {} racing pairs counted",
        raced + apart
    );
    // Most rounds must really race, or ABORTED would be all this tests.
    assert!(
        raced >= ROUNDS * KEYS / 2,
        "only {raced} of {} rounds raced",
        ROUNDS * KEYS
    );
    for replica in 0..2 {
        let n = signed.iter().filter(|s| s.replica == replica).count();
        assert!(n >= 100, "replica {replica} signed only {n} times");
    }

    // Both replicas converge on the same keys: versions 1..N, each of
    // 2..N created by exactly the one caller told so, N ACTIVE, the rest
    // RETIRING (an hour's grace).
    let mut last = BTreeMap::new();
    for k in 0..KEYS {
        let name = key_name(k);
        let key = same_everywhere(&[&r[0], &r[1]], &name, Duration::from_secs(20)).await;
        let n = key.versions.len() as u32;
        let numbers: Vec<u32> = key.versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, (1..=n).collect::<Vec<_>>(), "{name}");
        let mine: BTreeSet<u32> = created
            .keys()
            .filter(|(kk, _)| *kk == k)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(
            mine,
            (2..=n).collect::<BTreeSet<_>>(),
            "{name}: every version after 1 was created by exactly one told caller"
        );
        assert_eq!(key.active_version, n, "{name}");
        let active = pb::KeyVersionState::Active as i32;
        let retiring = pb::KeyVersionState::Retiring as i32;
        for v in &key.versions {
            let want = if v.version == n { active } else { retiring };
            assert_eq!(v.state, want, "{name} v{}: {v:?}", v.version);
            assert_eq!(v.key_version_id, format!("{name}:v{}", v.version));
        }
        last.insert(k, n);
    }

    // Every version comes into service on both replicas (opened on the
    // token: see the sign errors above), even with no further writes.
    let t_open = Instant::now();
    for k in 0..KEYS {
        for v in 1..=last[&k] {
            for rep in &r {
                let c = rep.signer();
                eventually(
                    "every version is in service on both replicas",
                    Duration::from_secs(20),
                    || {
                        let req = pb::GetPublicKeyRequest {
                            key: key_name(k),
                            version: v,
                            format: pb::PublicKeyFormat::Der as i32,
                        };
                        let mut c = c.clone();
                        async move { c.get_public_key(req).await.is_ok() }
                    },
                )
                .await;
            }
        }
    }
    let opening = t_open.elapsed();

    // Every signature verifies on both replicas, with the version that
    // made it.
    let t_verify = Instant::now();
    for s in &signed {
        assert_eq!(
            s.key_version_id,
            format!("{}:v{}", key_name(s.key), s.version)
        );
        assert!(s.version >= 1 && s.version <= last[&s.key], "{s:?}");
    }
    let signed = Arc::new(signed);
    let checkers: Vec<_> = (0..SIGNERS)
        .map(|t| {
            let clients = [r[0].signer(), r[1].signer()];
            let signed = signed.clone();
            tokio::spawn(async move {
                for s in signed.iter().skip(t).step_by(SIGNERS) {
                    for (replica, c) in clients.iter().enumerate() {
                        let v = c
                            .clone()
                            .verify(pb::VerifyRequest {
                                key: key_name(s.key),
                                version: s.version,
                                input: Some(pb::verify_request::Input::Message(s.message.clone())),
                                signature: s.signature.clone(),
                                ..Default::default()
                            })
                            .await
                            .unwrap_or_else(|e| panic!("verify on {replica}: {e:?} for {s:?}"))
                            .into_inner();
                        assert!(v.valid, "replica {replica} rejects {s:?}");
                        assert_eq!(v.version, s.version);
                        assert_eq!(v.key_version_id, s.key_version_id);
                    }
                }
            })
        })
        .collect();
    for c in checkers {
        c.await.unwrap();
    }
    let verifying = t_verify.elapsed();

    // A sample against the exported public key, with OpenSSL: exported by
    // the replica that did not sign it.
    let dir = tempfile::tempdir().unwrap();
    let step = (signed.len() / 20).max(1);
    for s in signed.iter().step_by(step) {
        let pem = r[1 - s.replica]
            .signer()
            .get_public_key(pb::GetPublicKeyRequest {
                key: key_name(s.key),
                version: s.version,
                format: pb::PublicKeyFormat::Pem as i32,
            })
            .await
            .unwrap()
            .into_inner()
            .public_key;
        std::fs::write(dir.path().join("pub.pem"), pem).unwrap();
        std::fs::write(dir.path().join("msg.bin"), &s.message).unwrap();
        std::fs::write(dir.path().join("sig.bin"), &s.signature).unwrap();
        let (ok, out) = openssl(dir.path(), &openssl_verify_args(algorithm(s.key)));
        assert!(ok, "openssl rejects {s:?}: {out}");
    }

    // The database: one committed change per generation, each with its
    // audit row, and nothing else written (no scheduler change is due).
    let schema = &replicas.schema;
    let rows = pg.psql(&format!(
        "SELECT k.name, k.generation, \
           (SELECT count(*) FROM {schema}.audit a WHERE a.key = k.name), \
           (SELECT count(DISTINCT generation) FROM {schema}.audit a WHERE a.key = k.name), \
           (SELECT count(*) FROM {schema}.audit a WHERE a.key = k.name \
              AND a.rpc = 'signet.v1.KeyAdmin/RotateKey') \
         FROM {schema}.keys k ORDER BY k.name"
    ));
    let want: String = (0..KEYS)
        .map(|k| (key_name(k), last[&k] as u64))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .map(|(name, n)| format!("{name}|{n}|{n}|{n}|{}\n", n - 1))
        .collect();
    assert_eq!(
        rows, want,
        "name|generation|audit rows|distinct generations|rotations"
    );

    // The losers' material left the token: every key object there is a
    // version some record names.
    let labels: BTreeSet<String> = pg
        .psql(&format!(
            "SELECT v->>'label' FROM {schema}.keys, jsonb_array_elements(record->'versions') v"
        ))
        .lines()
        .map(str::to_string)
        .collect();
    let total: u32 = last.values().sum();
    assert_eq!(labels.len() as u32, total);
    let on_token: BTreeSet<String> = {
        let token = replicas.token.clone();
        tokio::task::spawn_blocking(move || {
            let backend =
                signet::keys::pkcs11::Pkcs11Backend::open(signet::keys::pkcs11::Pkcs11Settings {
                    module: token.module.clone(),
                    token: signet::keys::pkcs11::TokenSelector::Label(
                        token.token_label.clone().unwrap(),
                    ),
                    pin: token.read_pin().unwrap(),
                    max_sessions: 2,
                    session_wait: Duration::from_secs(5),
                    threads: 1,
                })
                .unwrap();
            backend.key_labels().unwrap()
        })
        .await
        .unwrap()
        .into_iter()
        .collect()
    };
    let leaked: Vec<_> = on_token.difference(&labels).collect();
    assert!(
        leaked.is_empty(),
        "key material no record names: {leaked:?}"
    );
    let missing: Vec<_> = labels.difference(&on_token).collect();
    assert!(
        missing.is_empty(),
        "recorded versions not on the token: {missing:?}"
    );
    eprintln!(
        "all versions in service after {opening:?}; verified {} signatures twice in \
         {verifying:?}; whole test {:?}",
        signed.len(),
        t0.elapsed()
    );
}
