//! SIGHUP on a real `signet serve`: profiles and tokens are reloaded with
//! no restart, a removed token stops working, and a broken file changes
//! nothing and is named in the log without quoting it.

use std::path::Path;
use std::time::Duration;

use signet::api::pb;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::security::with_token;
use crate::support::process::{serve, write_file, WaitFor, DEMO_WITH_ADMIN};

async fn profile_names(
    ch: &tonic::transport::Channel,
    token: &str,
) -> Result<Vec<String>, tonic::Status> {
    let mut req = tonic::Request::new(pb::ListHttpProfilesRequest::default());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut v: Vec<String> = pb::signer_client::SignerClient::new(ch.clone())
        .list_http_profiles(req)
        .await?
        .into_inner()
        .profiles
        .into_iter()
        .map(|p| p.name)
        .collect();
    v.sort();
    Ok(v)
}

fn reload_config(profile: &str, tokens: &Path) -> String {
    format!(
        "{DEMO_WITH_ADMIN}\n[auth]\ntokens_file = \"{}\"\n[[auth.identities]]\nname = \"ops\"\n\
         [[auth.identities.grants]]\noperations = [\"http_profiles\"]\nprofiles = [\"*\"]\n\
         [[profiles]]\nname = \"{profile}\"\npreset = \"github\"\nkey = \"demo-hmac\"\n",
        tokens.display()
    )
}

fn tokens_file(token: &str) -> String {
    format!(
        "[[tokens]]\nidentity = \"ops\"\nsha256 = \"{}\"\n",
        signet::auth::policy::token_hash(token)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_profiles_and_tokens_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write_file(
        dir.path(),
        "tokens.toml",
        &tokens_file("token-one-0123456789abcdef"),
    );
    let config = write_file(dir.path(), "signet.toml", &reload_config("first", &tokens));
    let s = serve().config(&config).wait_for(WaitFor::Both).start();
    let ch = s.channel().await;
    assert_eq!(
        profile_names(&ch, "token-one-0123456789abcdef")
            .await
            .unwrap(),
        ["first"]
    );

    // A new profile and a rotated token, picked up by SIGHUP.
    write_file(
        dir.path(),
        "tokens.toml",
        &tokens_file("token-two-0123456789abcdef"),
    );
    write_file(dir.path(), "signet.toml", &reload_config("second", &tokens));
    let from = s.log_len();
    s.signal("-HUP");
    s.wait_log(from, "SIGHUP: reloaded");
    assert_eq!(
        profile_names(&ch, "token-two-0123456789abcdef")
            .await
            .unwrap(),
        ["second"]
    );
    let e = profile_names(&ch, "token-one-0123456789abcdef")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);

    // A broken profile: nothing changes, and the log says why.
    let broken = reload_config("third", &tokens)
        .replace("preset = \"github\"", "preset = \"no-such-preset\"");
    write_file(dir.path(), "signet.toml", &broken);
    let from = s.log_len();
    s.signal("-HUP");
    s.wait_log(from, "config not reloaded");
    let said = s.since(from);
    assert!(said.contains("no-such-preset"), "{said}");
    assert_eq!(
        profile_names(&ch, "token-two-0123456789abcdef")
            .await
            .unwrap(),
        ["second"]
    );

    // A broken tokens file: nothing changes either, and the error does not
    // quote the file.
    write_file(dir.path(), "signet.toml", &reload_config("fourth", &tokens));
    write_file(
        dir.path(),
        "tokens.toml",
        "[[tokens]]\nidentity = \"ops\"\nsha256 = \"token-in-the-wrong-place\nbroken",
    );
    let from = s.log_len();
    s.signal("-HUP");
    let line = s.wait_log(from, "config not reloaded");
    assert!(line.contains("tokens_file"), "{line}");
    assert!(!line.contains("token-in-the-wrong-place"), "{line}");
    assert_eq!(
        profile_names(&ch, "token-two-0123456789abcdef")
            .await
            .unwrap(),
        ["second"]
    );
    assert_eq!(s.admin_health("").await, ServingStatus::Serving);
}

/// A token removed from the config file stops working after SIGHUP, with
/// no restart; its replacement, added in the same edit, works at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_revokes_a_token_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signet.toml");
    let write_config = |tokens: &[&str]| {
        let mut text = String::from(
            "[server]\nlisten = \"127.0.0.1:0\"\nplaintext = true\n[audit]\noutput = \"off\"\n\
             [[auth.identities]]\nname = \"app\"\n[[auth.identities.grants]]\n\
             operations = [\"public_key\"]\nkeys = [\"*\"]\n",
        );
        for t in tokens {
            text.push_str(&format!(
                "[[auth.tokens]]\nidentity = \"app\"\nsha256 = \"{}\"\n",
                signet::auth::policy::token_hash(t)
            ));
        }
        std::fs::write(&config, text).unwrap();
    };
    write_config(&["sgt_old"]);
    let p = serve().config(&config).keep_log(false).start();
    let ch = p.channel().await;
    let call = |token: &'static str| {
        let ch = ch.clone();
        async move {
            let r = with_token(
                tonic::Request::new(pb::GetPublicKeyRequest {
                    key: "k".into(),
                    ..Default::default()
                }),
                token,
            );
            pb::signer_client::SignerClient::new(ch)
                .get_public_key(r)
                .await
                .unwrap_err()
                .code()
        }
    };
    // Admitted (the key does not exist), then the new one is refused.
    assert_eq!(call("sgt_old").await, tonic::Code::NotFound);
    assert_eq!(call("sgt_new").await, tonic::Code::Unauthenticated);
    write_config(&["sgt_new"]);
    p.signal("-HUP");
    let mut revoked = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if call("sgt_old").await == tonic::Code::Unauthenticated {
            revoked = true;
            break;
        }
    }
    assert!(revoked, "the removed token still works after SIGHUP");
    assert_eq!(call("sgt_new").await, tonic::Code::NotFound);
    // A broken file keeps the policy in force.
    std::fs::write(&config, "[auth\n").unwrap();
    // Not asserted: the check is that the policy stays in force.
    std::process::Command::new("kill")
        .args(["-HUP", &p.pid().to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(call("sgt_new").await, tonic::Code::NotFound);
    drop(p);
}
