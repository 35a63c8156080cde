//! `signet registry migrate --to postgres`: a token registry with keys of
//! every family, rotated, disabled and scheduled for destruction, moves
//! into PostgreSQL exactly (every key, version, state and time; every old
//! signature verifies as before), idempotently, and never over a row
//! changed in PostgreSQL since.

use signet::api::pb;
use tonic::transport::Channel;

use super::procs::*;

/// The keys, and how each is created.
const KEYS: &[(&str, pb::Algorithm)] = &[
    ("m-ec", pb::Algorithm::EcdsaP256Sha256),
    ("m-ed", pb::Algorithm::Ed25519),
    ("m-mac", pb::Algorithm::HmacSha256),
    ("m-rsa", pb::Algorithm::RsaPkcs12048Sha256),
];
/// An imported HMAC key, next to the generated ones.
const IMPORTED: &str = "m-imported";
const IMPORTED_MATERIAL: &[u8] = b"imported-secret-for-migrate-0123";

fn names() -> Vec<&'static str> {
    let mut n: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
    n.push(IMPORTED);
    n.sort();
    n
}

/// A signature to check again after the move: the key, the message, the
/// signature, and whether it verified before.
type Made = (String, Vec<u8>, Vec<u8>, bool);

async fn sign(ch: &Channel, key: &str, msg: &[u8]) -> Vec<u8> {
    signer(ch)
        .sign(sign_req(key, msg))
        .await
        .unwrap()
        .into_inner()
        .signature
}

async fn verifies(ch: &Channel, key: &str, msg: &[u8], sig: &[u8]) -> bool {
    signer(ch)
        .verify(verify_req(key, msg, sig))
        .await
        .unwrap()
        .into_inner()
        .valid
}

async fn version_call(ch: &Channel, what: &str, name: &str, version: u32) -> pb::Key {
    let mut a = admin(ch);
    match what {
        "disable" => a
            .disable_key_version(pb::DisableKeyVersionRequest {
                name: name.into(),
                version,
            })
            .await
            .unwrap()
            .into_inner()
            .key
            .unwrap(),
        "destroy" => a
            .destroy_key_version(pb::DestroyKeyVersionRequest {
                name: name.into(),
                version,
            })
            .await
            .unwrap()
            .into_inner()
            .key
            .unwrap(),
        _ => unreachable!(),
    }
}

/// Every key, from ListKeys and from GetKey (which must agree).
async fn snapshot(ch: &Channel) -> Vec<pb::Key> {
    let listed = admin(ch)
        .list_keys(pb::ListKeysRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.next_page_token.is_empty());
    for k in &listed.keys {
        assert_eq!(&get(ch, &k.name).await.unwrap(), k, "GetKey and ListKeys");
    }
    listed.keys
}

/// `signet registry migrate --to postgres --config FILE` (with `--json`
/// first if asked).
fn migrate(config: &std::path::Path, json: bool) -> Output {
    let path = config.to_str().unwrap();
    let mut args = vec!["registry", "migrate", "--to", "postgres", "--config", path];
    if json {
        args.insert(0, "--json");
    }
    let out = signet(&args);
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains(crate::support::postgres::PASSWORD),
            "the password in the output"
        );
    }
    out
}

/// `NAME: STATUS` lines, in name order.
fn statuses(out: &Output) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| names().contains(n))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    v.sort();
    v
}

fn all(status: &str) -> Vec<(String, String)> {
    names()
        .into_iter()
        .map(|n| (n.to_string(), status.to_string()))
        .collect()
}

/// `generation|record` of one key's row.
fn row(d: &Deployment, name: &str) -> String {
    d.pg.psql(&format!(
        "SELECT generation || '|' || record::text FROM {}.keys WHERE name = '{name}'",
        d.schema
    ))
}

fn audit_rows(d: &Deployment, rpc: &str) -> usize {
    d.pg.psql(&format!(
        "SELECT count(*) FROM {}.audit WHERE rpc = '{rpc}'",
        d.schema
    ))
    .trim()
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_registry_moves_into_postgres_exactly_and_idempotently() {
    let d = Deployment::new();
    let on_token = d.write_config("");
    let migrate_config = d.write_config(&d.postgres_toml("2s"));

    // On the token: keys of every family, rotated, disabled, scheduled
    // for destruction; signatures made along the way.
    let mut s = spawn(&on_token);
    let ch = s.channel().await;
    for (name, alg) in KEYS {
        create(&ch, name, *alg).await.unwrap();
    }
    admin(&ch)
        .import_key(pb::ImportKeyRequest {
            name: IMPORTED.into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            material: IMPORTED_MATERIAL.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    crate::support::remember_secret(IMPORTED_MATERIAL);
    let mut made: Vec<Made> = Vec::new();
    for name in names() {
        let msg = format!("{name} before rotation").into_bytes();
        let sig = sign(&ch, name, &msg).await;
        made.push((name.into(), msg, sig, true));
    }
    // m-ec: v1 RETIRING, v2 ACTIVE. m-mac: v1 DESTROY_SCHEDULED, v2
    // ACTIVE. m-rsa: v2 DISABLED (it was PENDING). m-ed and the imported
    // key as created.
    rotate(&ch, "m-ec", true).await.unwrap();
    rotate(&ch, "m-mac", true).await.unwrap();
    version_call(&ch, "disable", "m-mac", 1).await;
    let k = version_call(&ch, "destroy", "m-mac", 1).await;
    assert_eq!(
        k.versions[0].state,
        pb::KeyVersionState::DestroyScheduled as i32
    );
    rotate(&ch, "m-rsa", false).await.unwrap();
    let k = version_call(&ch, "disable", "m-rsa", 2).await;
    assert_eq!(k.versions[1].state, pb::KeyVersionState::Disabled as i32);
    for name in names() {
        let msg = format!("{name} after rotation").into_bytes();
        let sig = sign(&ch, name, &msg).await;
        made.push((name.into(), msg, sig, true));
    }
    for m in &mut made {
        m.3 = verifies(&ch, &m.0, &m.1, &m.2).await;
    }
    let invalid: Vec<&str> = made.iter().filter(|m| !m.3).map(|m| m.0.as_str()).collect();
    assert_eq!(
        invalid,
        ["m-mac"],
        "only m-mac's v1 (scheduled for destruction) no longer verifies"
    );
    s.kill();

    // The first copy names every key as copied, with one audit row each.
    let first = migrate(&migrate_config, false);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    assert_eq!(statuses(&first), all("copied"), "{}", first.stdout);
    assert!(
        first.stdout.contains("5 key(s) read from the token"),
        "{}",
        first.stdout
    );
    let copy_rpc = "signet registry migrate";
    assert_eq!(audit_rows(&d, copy_rpc), 5);

    // Again: nothing to do, nothing written; in JSON too.
    let again = migrate(&migrate_config, false);
    assert_eq!(again.code, Some(0), "{}{}", again.stdout, again.stderr);
    assert_eq!(
        statuses(&again),
        all("already copied, unchanged"),
        "{}",
        again.stdout
    );
    let json = migrate(&migrate_config, true);
    assert_eq!(json.code, Some(0), "{}{}", json.stdout, json.stderr);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let rows = v["keys"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{v}");
    for r in rows {
        assert_eq!(r["status"], "unchanged", "{v}");
        assert!(r["reason"].is_null(), "{v}");
    }
    assert_eq!(
        audit_rows(&d, copy_rpc),
        5,
        "an unchanged key writes no row"
    );

    // A change made on the token after a copy (the runbook's "copied too
    // early") replaces the copy's row: only that key is updated.
    let mut s = spawn(&on_token);
    let ch = s.channel().await;
    let k = rotate(&ch, "m-rsa", false).await.unwrap();
    assert_eq!(k.versions.len(), 3);
    s.kill();
    let updated = migrate(&migrate_config, false);
    assert_eq!(
        updated.code,
        Some(0),
        "{}{}",
        updated.stdout,
        updated.stderr
    );
    let mut want = all("already copied, unchanged");
    for w in &mut want {
        if w.0 == "m-rsa" {
            w.1 = "updated from the token's newer record".into();
        }
    }
    assert_eq!(statuses(&updated), want, "{}", updated.stdout);

    // What the token server showed last, to compare with.
    let mut s = spawn(&on_token);
    let ch = s.channel().await;
    let before = snapshot(&ch).await;
    assert_eq!(
        before.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        names()
    );
    s.kill();

    // On PostgreSQL: every key, version, state and time as before, and
    // every old signature verifies as it did.
    let on_pg = d.registry_config("60s", "2s");
    let mut s = spawn(&on_pg);
    let ch = s.channel().await;
    assert!(
        s.log_text().contains("PostgreSQL ready"),
        "{}",
        s.log_text()
    );
    let after = snapshot(&ch).await;
    assert_eq!(after, before, "the registry changed in the move");
    for (key, msg, sig, valid) in &made {
        assert_eq!(
            verifies(&ch, key, msg, sig).await,
            *valid,
            "{key}: {}",
            String::from_utf8_lossy(msg)
        );
    }
    // And the moved keys still sign.
    for name in names() {
        let sig = sign(&ch, name, b"on postgres").await;
        assert!(verifies(&ch, name, b"on postgres", &sig).await, "{name}");
    }

    // A change made in PostgreSQL: the next copy refuses that key, fails,
    // and leaves its row alone.
    let k = rotate(&ch, "m-ed", true).await.unwrap();
    assert_eq!(k.versions.len(), 2);
    s.kill();
    let changed_row = row(&d, "m-ed");
    let refused = migrate(&migrate_config, false);
    assert_eq!(
        refused.code,
        Some(1),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    for (name, status) in statuses(&refused) {
        if name == "m-ed" {
            assert!(
                status.starts_with("REFUSED: changed in PostgreSQL since it was copied")
                    && status.ends_with("not overwritten"),
                "{}",
                refused.stdout
            );
        } else {
            assert_eq!(status, "already copied, unchanged", "{}", refused.stdout);
        }
    }
    assert_eq!(statuses(&refused).len(), 5, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("1 key(s) not copied"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        row(&d, "m-ed"),
        changed_row,
        "the changed row was overwritten"
    );
    let json = migrate(&migrate_config, true);
    assert_eq!(json.code, Some(1));
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let ed = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "m-ed")
        .unwrap();
    assert_eq!(ed["status"], "refused", "{v}");
    assert!(
        ed["reason"].as_str().unwrap().contains("not overwritten"),
        "{v}"
    );
    assert_eq!(row(&d, "m-ed"), changed_row);

    // The server on PostgreSQL still has the rotation.
    let s = spawn(&on_pg);
    let ch = s.channel().await;
    let k = get(&ch, "m-ed").await.unwrap();
    assert_eq!(k.active_version, 2);
}
