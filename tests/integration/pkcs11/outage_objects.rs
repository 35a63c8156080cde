//! The token stays, its objects go: every object file of a SoftHSM2
//! token (key objects and registry records, not `token.object`) moved
//! away for a while and back. The token answers throughout, but SoftHSM2
//! never shows an object again whose file failed once, until the module
//! is re-initialised: signet must notice that known keys are missing and
//! recover them by itself.

use std::time::{Duration, Instant};

use signet::api::pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use super::outage::{create, serve_on, sign_req, verify_req, Store, BOUND};
use crate::support::process::WaitFor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_object_files_moved_away_and_back() {
    let store = Store::new();
    let s = serve_on(&store, None, WaitFor::Both);
    let ch = s.channel().await;
    create(&ch, "obj-ec", "ECDSA_P256_SHA256").await.unwrap();
    create(&ch, "obj-mac", "HMAC_SHA256").await.unwrap();
    let mut signer = pb::signer_client::SignerClient::new(ch.clone());
    let old_mac = signer
        .sign(sign_req("obj-mac", b"before"))
        .await
        .unwrap()
        .into_inner();

    let token_dir = store.token_dir();
    let side = store.dir.join("objects.away");
    std::fs::create_dir(&side).unwrap();
    let moved: Vec<_> = std::fs::read_dir(&token_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".object") && n != "token.object"
        })
        .collect();
    assert!(moved.len() >= 4, "{moved:?}");
    for p in &moved {
        std::fs::rename(p, side.join(p.file_name().unwrap())).unwrap();
    }
    for key in ["obj-ec", "obj-mac"] {
        let e = signer.sign(sign_req(key, b"during")).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{key}: {e:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for p in &moved {
        std::fs::rename(side.join(p.file_name().unwrap()), p).unwrap();
    }
    let back = Instant::now();
    for key in ["obj-ec", "obj-mac"] {
        let sig = loop {
            match signer.sign(sign_req(key, b"after")).await {
                Ok(r) => break r.into_inner(),
                Err(e) => {
                    assert_eq!(e.code(), Code::Unavailable, "{key}: {e:?}");
                    assert!(back.elapsed() < BOUND, "{key} did not recover: {e:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let v = signer
            .verify(verify_req(key, b"after", &sig.signature))
            .await
            .unwrap();
        assert!(v.into_inner().valid, "{key}");
    }
    let v = signer
        .verify(verify_req("obj-mac", b"before", &old_mac.signature))
        .await
        .unwrap();
    assert!(v.into_inner().valid);
    create(&ch, "obj-after", "HMAC_SHA256").await.unwrap();
    assert_eq!(s.health().await, ServingStatus::Serving);
    eprintln!(
        "key objects recovered {:?} after their files came back",
        back.elapsed()
    );
}
