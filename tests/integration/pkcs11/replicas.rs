//! Several processes on one token: a rotation on one is seen by the
//! other, and racing record writes have at most one winner.

use std::path::PathBuf;

use signet::api::pb;
use signet::config::Pkcs11Config;
use signet::keys::Algorithm;

use super::*;

/// Two `signet serve` processes on one token: a rotation on one is seen
/// by the other within a tick, and a DESTROYED version's objects leave the
/// token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_agree_and_destroyed_versions_leave_the_token() {
    let cfg = new_token(&fresh_label());
    let a = Child::spawn(&cfg);
    let b = Child::spawn(&cfg);
    let mut admin_a = a.admin().await;
    let mut admin_b = b.admin().await;
    admin_a
        .create_key(pb::CreateKeyRequest {
            name: "duo".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let rotated = admin_a
        .rotate_key(pb::RotateKeyRequest {
            name: "duo".into(),
            promote: true,
            grace_period: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(rotated.active_version, 2);

    // B picks the change up on its own (tick: 100 ms) and signs with v2.
    let mut seen = None;
    for _ in 0..50 {
        let k = admin_b
            .get_key(pb::GetKeyRequest { name: "duo".into() })
            .await
            .map(|r| r.into_inner().key.unwrap());
        if let Ok(k) = k {
            if k.active_version == 2 {
                seen = Some(k);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen.is_some(), "process B never saw the rotation");
    let sig = b
        .signer()
        .await
        .sign(pb::SignRequest {
            key: "duo".into(),
            input: Some(pb::sign_request::Input::Message(b"duo".to_vec())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sig.version, 2);

    // v1's grace ends after 1 s; A then disables and destroys it (no delay).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let v1_label = {
        let store =
            signet::keys::pkcs11::store::TokenStore::new(std::sync::Arc::new(open_backend(&cfg)));
        let records = store.read_now().unwrap();
        records[0].versions[0].label.clone()
    };
    admin_a
        .destroy_key_version(pb::DestroyKeyVersionRequest {
            name: "duo".into(),
            version: 1,
        })
        .await
        .unwrap();
    let backend = open_backend(&cfg);
    let mut gone = false;
    for _ in 0..50 {
        let labels = backend.key_labels().unwrap();
        if !labels.contains(&v1_label) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the DESTROYED version's objects are still on the token"
    );
    let k = admin_b
        .get_key(pb::GetKeyRequest { name: "duo".into() })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(k.versions.len(), 2);
}

/// A record of key "raced" naming its writer and round.
fn raced_record(writer: &str, round: u32) -> signet::keys::record::KeyRecord {
    use signet::keys::record::{KeyRecord, VersionRecord, VersionState};
    KeyRecord {
        name: "raced".into(),
        algorithm: Algorithm::HmacSha256,
        labels: [("writer".to_string(), format!("{writer}-{round}"))].into(),
        policy: None,
        create_time: std::time::SystemTime::UNIX_EPOCH,
        verify_only: false,
        exportable: false,
        versions: vec![VersionRecord::new(
            1,
            VersionState::Active,
            format!("raced:v1:{round:08x}"),
            std::time::SystemTime::UNIX_EPOCH,
        )],
    }
}

/// The writer process of [`racing_registry_writes_have_at_most_one_winner`]:
/// a no-op unless that test started it (SoftHSM2 serialises writers only
/// across processes, as replicas are).
#[test]
fn race_writer_process() {
    let Ok(dir) = std::env::var("SIGNET_RACE_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let writer = std::env::var("SIGNET_RACE_WRITER").unwrap();
    let round: u32 = std::env::var("SIGNET_RACE_ROUND").unwrap().parse().unwrap();
    let cfg = Pkcs11Config {
        module: std::env::var("SIGNET_RACE_MODULE").unwrap().into(),
        token_label: Some(std::env::var("SIGNET_RACE_TOKEN").unwrap()),
        token_serial: None,
        pin_file: Some(std::env::var("SIGNET_RACE_PIN_FILE").unwrap().into()),
        pin_env: None,
        max_sessions: 2,
        session_wait: std::time::Duration::from_secs(5),
        threads: 1,
        destroy_orphans: false,
    };
    let store =
        signet::keys::pkcs11::store::TokenStore::new(std::sync::Arc::new(open_backend(&cfg)));
    store.read_now().unwrap();
    std::fs::write(dir.join(format!("ready-{writer}")), b"").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("go").exists() {
        assert!(std::time::Instant::now() < deadline, "no go");
        std::thread::yield_now();
    }
    let outcome = match store.write_now(&raced_record(&writer, round)) {
        Ok(()) => "ok".to_string(),
        Err(e) if e.kind() == signet::error::ErrorKind::Aborted => "aborted".to_string(),
        Err(e) => format!("error: {e}"),
    };
    std::fs::write(dir.join(format!("result-{writer}")), outcome).unwrap();
}

/// Two processes writing the same key's record at the same moment (two
/// replicas running a due scheduled rotation, say): PKCS#11 has no
/// compare-and-swap, so the store detects the race after the fact. At most
/// one write succeeds per round, the other gets ABORTED, and every reader
/// then sees the winner's record. (On SoftHSM2 both writers occasionally
/// miss each other; see the comment in the loop.)
#[test]
fn racing_registry_writes_have_at_most_one_winner() {
    let label = fresh_label();
    let cfg = new_token(&label);
    let reader =
        signet::keys::pkcs11::store::TokenStore::new(std::sync::Arc::new(open_backend(&cfg)));
    reader.write_now(&raced_record("seed", 0)).unwrap();
    let mut expected = raced_record("seed", 0).labels;
    let exe = std::env::current_exe().unwrap();
    let (mut won, mut contested, mut both) = (0, 0, 0);
    for round in 1..=20u32 {
        let dir = tempfile::tempdir().unwrap();
        // One at a time until both are ready: SoftHSM2 fails a process
        // that opens the token while another one logs in (its token file
        // is being rewritten); replicas start one by one too.
        let mut children = Vec::new();
        for w in ["a", "b"] {
            let mut c = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "pkcs11::replicas::race_writer_process",
                    "--test-threads",
                    "1",
                ])
                .env("SIGNET_RACE_DIR", dir.path())
                .env("SIGNET_RACE_WRITER", w)
                .env("SIGNET_RACE_ROUND", round.to_string())
                .env("SIGNET_RACE_MODULE", &cfg.module)
                .env("SIGNET_RACE_TOKEN", &label)
                .env("SIGNET_RACE_PIN_FILE", cfg.pin_file.as_ref().unwrap())
                .stdout(std::fs::File::create(dir.path().join(format!("out-{w}"))).unwrap())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !dir.path().join(format!("ready-{w}")).exists() {
                if let Some(st) = c.try_wait().unwrap() {
                    let out = std::fs::read_to_string(dir.path().join(format!("out-{w}")));
                    panic!("writer {w} exited before it was ready ({st}): {out:?}");
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "writer {w} did not start"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            children.push(c);
        }
        std::fs::write(dir.path().join("go"), b"").unwrap();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let result =
            |w: &str| std::fs::read_to_string(dir.path().join(format!("result-{w}"))).unwrap();
        let (a, b) = (result("a"), result("b"));
        for r in [&a, &b] {
            assert!(r == "ok" || r == "aborted", "round {round}: {r}");
        }
        let loaded = reader.read_now().unwrap();
        assert_eq!(loaded.len(), 1);
        match (a.as_str(), b.as_str()) {
            ("ok", "ok") => {
                // SoftHSM2 does not always show one process's new object
                // to another at once (its own generation update can mask
                // the other's), so both writers may miss each other. Every
                // reader still picks the same record, the registry
                // converges on it (see Registry::refresh), and it stays
                // picked until the next write.
                both += 1;
                let mine = [
                    raced_record("a", round).labels,
                    raced_record("b", round).labels,
                ];
                assert!(mine.contains(&loaded[0].labels), "round {round}");
                expected = loaded[0].labels.clone();
                assert_eq!(reader.read_now().unwrap()[0].labels, expected);
            }
            ("ok", _) => expected = raced_record("a", round).labels,
            (_, "ok") => expected = raced_record("b", round).labels,
            _ => contested += 1,
        }
        if a == "ok" || b == "ok" {
            won += 1;
        }
        assert_eq!(loaded[0].labels, expected, "round {round}");
    }
    // Some rounds must have had a winner, or ABORTED would be all we test.
    assert!(won > 0, "no round had a winner");
    // Without the withdraw-on-rival rule both writers succeed in nearly
    // every round; with it, only when SoftHSM2 hides the other's object,
    // which on a loaded machine happened in up to 6 of 20 (this is the
    // race the PostgreSQL store exists to close; see postgres::races).
    assert!(both <= 10, "both writers succeeded in {both} of 20 rounds");
    eprintln!(
        "rounds with one winner: {} of 20; none: {contested}; both: {both}",
        won - both
    );
}
