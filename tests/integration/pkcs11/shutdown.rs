//! Shutdown on a token: the registry sends every PKCS#11 call, admin ones
//! included, to the backend's own threads, so once `shutdown_backend` has
//! returned none is inside the module (SoftHSM2 tears itself down at exit
//! under any thread still calling it), and calls made later fail cleanly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signet::error::ErrorKind;
use signet::keys::clock::SystemClock;
use signet::keys::ecdsa_sig::SignatureFormat;
use signet::keys::pkcs11::store::TokenStore;
use signet::keys::registry::{Input, Registry, RegistrySettings};
use signet::keys::Algorithm;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_call_in_flight_and_later_calls_fail_cleanly() {
    let cfg = new_token(&fresh_label());
    let backend = Arc::new(open_backend(&cfg));
    let store = Arc::new(TokenStore::new(backend.clone()));
    let reg = Arc::new(Registry::new(
        backend.clone(),
        store,
        Arc::new(SystemClock),
        RegistrySettings::default(),
    ));
    reg.load().await.unwrap();
    reg.create_key(
        "k",
        Algorithm::EcdsaP256Sha256,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    // An admin call in flight when shutdown begins: RSA-4096 generation
    // takes the token a while.
    let r = reg.clone();
    let creating = tokio::spawn(async move {
        r.create_key(
            "big",
            Algorithm::RsaPss4096Sha256,
            BTreeMap::new(),
            None,
            false,
        )
        .await
    });
    let start = Instant::now();
    while backend.calls_in_flight() == 0 && !creating.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(10), "no call started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    reg.shutdown_backend().await;
    assert_eq!(
        backend.calls_in_flight(),
        0,
        "a PKCS#11 call outlived shutdown"
    );
    // Finished before shutdown, or refused at its next call: never hung.
    if let Err(e) = creating.await.unwrap() {
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", e.message());
    }
    let shut = "the PKCS#11 backend is shutting down";
    let e = reg
        .create_key(
            "late",
            Algorithm::EcdsaP256Sha256,
            BTreeMap::new(),
            None,
            false,
        )
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Unavailable, shut));
    let e = reg.rotate("k", false, None).await.unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Unavailable, shut));
    let e = reg
        .sign(
            "k",
            None,
            Input::Message(b"m".to_vec()),
            SignatureFormat::Der,
        )
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Unavailable, shut));
    assert_eq!(
        reg.health().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(backend.calls_in_flight(), 0);
}
