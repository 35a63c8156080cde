//! The token registry's change marker: a polled refresh loads every
//! record only after another process's write (or at the backstop), and an
//! idle server loads nothing.

use std::sync::Arc;
use std::time::Duration;

use signet::api::pb;
use signet::keys::pkcs11::store::TokenStore;
use signet::keys::record::{KeyRecord, VersionRecord, VersionState};
use signet::keys::Algorithm;

use super::*;
use crate::support::process::{sample, scrape, WaitFor};

/// A record of key `name` whose label `note` tells writes apart.
fn record(name: &str, note: &str) -> KeyRecord {
    KeyRecord {
        name: name.into(),
        algorithm: Algorithm::HmacSha256,
        labels: [("note".to_string(), note.to_string())].into(),
        policy: None,
        create_time: std::time::SystemTime::UNIX_EPOCH,
        verify_only: false,
        exportable: false,
        versions: vec![VersionRecord::new(
            1,
            VersionState::Active,
            format!("{name}:v1:0000000a"),
            std::time::SystemTime::UNIX_EPOCH,
        )],
    }
}

fn note(records: &[KeyRecord], name: &str) -> Option<String> {
    records
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.labels["note"].clone())
}

/// Two stores on one token: the reader's check asks for a load after each
/// of the writer's writes (a new key, its next generation), and for none
/// while nothing is written; the marker is never among the records.
#[test]
fn a_write_is_seen_through_the_marker_and_an_idle_check_loads_nothing() {
    let cfg = new_token(&fresh_label());
    let writer = TokenStore::new(Arc::new(open_backend(&cfg)));
    let reader = TokenStore::new(Arc::new(open_backend(&cfg)));
    assert!(reader.changed_now().unwrap(), "nothing loaded yet");
    assert!(reader.read_now().unwrap().is_empty());
    // A fresh token has no marker: the check makes one and asks for the
    // load that remembers it; from then on, nothing changed.
    assert!(reader.changed_now().unwrap());
    assert!(
        reader.read_now().unwrap().is_empty(),
        "the marker is no record"
    );
    for _ in 0..3 {
        assert!(!reader.changed_now().unwrap());
    }

    writer.read_now().unwrap();
    writer.write_now(&record("m", "one")).unwrap();
    assert!(reader.changed_now().unwrap(), "a new key");
    assert_eq!(
        note(&reader.read_now().unwrap(), "m").as_deref(),
        Some("one")
    );
    assert!(!reader.changed_now().unwrap());

    writer.write_now(&record("m", "two")).unwrap();
    assert!(reader.changed_now().unwrap(), "a new generation");
    let records = reader.read_now().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(note(&records, "m").as_deref(), Some("two"));
    assert!(!reader.changed_now().unwrap());

    // The writer's own check sees its own marker: one load, then quiet.
    assert!(writer.changed_now().unwrap());
    writer.read_now().unwrap();
    assert!(!writer.changed_now().unwrap());
}

/// A writer that stored its record but not the marker (it crashed in
/// between): the reader's check says nothing changed until the backstop,
/// whose load brings the record in.
#[test]
fn the_backstop_load_picks_up_a_write_without_a_marker() {
    let cfg = new_token(&fresh_label());
    let writer = TokenStore::new(Arc::new(open_backend(&cfg)));
    let reader = TokenStore::new(Arc::new(open_backend(&cfg)));
    writer.write_now(&record("b", "one")).unwrap();
    reader.set_backstop(Duration::from_millis(500));
    reader.read_now().unwrap();
    assert!(!reader.changed_now().unwrap());
    writer.write_now_unmarked(&record("b", "two")).unwrap();
    assert!(!reader.changed_now().unwrap(), "no marker, no change yet");
    std::thread::sleep(Duration::from_millis(600));
    assert!(reader.changed_now().unwrap(), "the backstop is due");
    assert_eq!(
        note(&reader.read_now().unwrap(), "b").as_deref(),
        Some("two")
    );
    assert!(!reader.changed_now().unwrap());
}

/// Markers left by two processes at once (two readers of a token with
/// none each made one; two writers at once each destroy only the markers
/// they found): a reader remembers them all, and a write replaces them.
#[test]
fn several_markers_are_all_watched() {
    let cfg = new_token(&fresh_label());
    let stores: Vec<TokenStore> = (0..3)
        .map(|_| TokenStore::new(Arc::new(open_backend(&cfg))))
        .collect();
    let (x, y, reader) = (&stores[0], &stores[1], &stores[2]);
    x.read_now().unwrap();
    y.read_now().unwrap();
    assert!(x.changed_now().unwrap());
    assert!(y.changed_now().unwrap());
    reader.read_now().unwrap();
    assert!(!reader.changed_now().unwrap());
    x.write_now(&record("s", "one")).unwrap();
    assert!(reader.changed_now().unwrap());
    assert_eq!(
        note(&reader.read_now().unwrap(), "s").as_deref(),
        Some("one")
    );
    assert!(!reader.changed_now().unwrap());
}

/// Counts of the registry store's `load` and `poll` on a server's
/// `/metrics`.
fn store_ops(admin: &str) -> (f64, f64) {
    let text = scrape(admin);
    let count = |op: &str| {
        sample(
            &text,
            &format!(
                "signet_backend_duration_seconds_count{{backend=\"pkcs11\",operation=\"{op}\",outcome=\"ok\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    (count("load"), count("poll"))
}

/// Two `signet serve` processes on one token (ticks of 100 ms): idle, B
/// polls the marker on every tick and loads nothing; a key A creates
/// then reaches B within a few ticks, with one load; and B never reports
/// the marker as an unreadable record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_replica_polls_without_loading_and_still_sees_a_new_key() {
    let cfg = new_token(&fresh_label());
    let a = Child::spawn(&cfg);
    let path = write_config(
        &cfg,
        "[admin]\nlisten = \"127.0.0.1:0\"\n[keys]\ntick_interval = \"100ms\"\n[log]\nlevel = \"info\"\n",
    );
    let b = serve()
        .args(["--listen", "127.0.0.1:0"])
        .config(&path)
        .env("SOFTHSM2_CONF", env().dir.join("softhsm2.conf"))
        .log_level_from_config()
        .wait_for(WaitFor::Both)
        .start();
    let mut admin_a = a.admin().await;
    admin_a
        .create_key(pb::CreateKeyRequest {
            name: "first".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let admin_b = pb::key_admin_client::KeyAdminClient::connect(b.endpoint())
        .await
        .unwrap();
    let seen = |name: &'static str| {
        let mut admin_b = admin_b.clone();
        async move {
            for _ in 0..50 {
                let got = admin_b
                    .get_key(pb::GetKeyRequest { name: name.into() })
                    .await;
                if got.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(seen("first").await, "B never saw the first key");

    // Idle: 15 ticks of polls, no load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (loads0, polls0) = store_ops(&b.admin);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (loads1, polls1) = store_ops(&b.admin);
    assert_eq!(loads1, loads0, "an idle replica loaded the registry");
    assert!(polls1 - polls0 >= 5.0, "polls {polls0} → {polls1}");

    admin_a
        .create_key(pb::CreateKeyRequest {
            name: "second".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(seen("second").await, "B never saw the second key");
    let (loads2, _) = store_ops(&b.admin);
    assert!(loads2 > loads1, "B saw it without a load?");
    for log in [b.log_text(), a.serve.log_text()] {
        assert!(
            !log.contains("unreadable registry object"),
            "the marker was taken for a record: {log}"
        );
    }
}
