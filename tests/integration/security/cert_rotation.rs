//! A certificate rotation on disk, new CA included, under a steady
//! stream of TLS calls: picked up within a few reload intervals with no
//! failed request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signet::api::pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::{setup, sign_req, tls_channel, uri, with_token, write, Ca, CUSTODIAN_TOKEN};

/// The certificate and its CA change on disk under a steady stream of
/// calls, some on a long-lived connection and some on new ones: nothing
/// fails, and new connections get the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_on_disk_drops_no_request() {
    let s = setup("").await;
    let dir = s.audit.parent().unwrap().to_path_buf();
    let payments =
        s.ca.issue(vec![uri("spiffe://test/payments")], "payments", false);
    let anon = tls_channel(&s.server, &s.ca.pem, None).await.unwrap();
    pb::key_admin_client::KeyAdminClient::new(anon)
        .create_key(with_token(
            tonic::Request::new(pb::CreateKeyRequest {
                name: "pay-rot".into(),
                algorithm: pb::Algorithm::HmacSha256 as i32,
                ..Default::default()
            }),
            CUSTODIAN_TOKEN,
        ))
        .await
        .unwrap();

    // The new server certificate comes from a new CA; clients trust both
    // while it rolls out.
    let new_ca = Ca::new("signet test server CA 2");
    let both = format!("{}{}", s.ca.pem, new_ca.pem);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Waits until the stream has made `n` more calls.
    let more = |n: usize| {
        let count = count.clone();
        async move {
            let target = count.load(Ordering::Relaxed) + n;
            for _ in 0..3000 {
                if count.load(Ordering::Relaxed) >= target {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the call stream stalled");
        }
    };
    let long_lived = tls_channel(&s.server, &both, Some(&payments))
        .await
        .unwrap();
    let stream = {
        let (stop, both, payments) = (stop.clone(), both.clone(), payments.clone());
        let count = count.clone();
        let addr = s.server.addr;
        tokio::spawn(async move {
            let mut calls = 0;
            let mut failures = Vec::new();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Every fourth call on a fresh connection.
                let ch = if i.is_multiple_of(4) {
                    let mut tls = ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(&both))
                        .domain_name("localhost")
                        .identity(Identity::from_pem(&payments.0, &payments.1));
                    tls = tls.clone();
                    match Channel::from_shared(format!("https://{addr}"))
                        .unwrap()
                        .tls_config(tls)
                        .unwrap()
                        .connect()
                        .await
                    {
                        Ok(c) => c,
                        Err(e) => {
                            failures.push(format!("connect: {e}"));
                            continue;
                        }
                    }
                } else {
                    long_lived.clone()
                };
                calls += 1;
                count.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = pb::signer_client::SignerClient::new(ch)
                    .sign(sign_req("pay-rot"))
                    .await
                {
                    failures.push(format!("{e:?}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (calls, failures)
        })
    };
    more(10).await;
    // A client trusting only the new CA cannot connect yet.
    assert!(tls_channel(&s.server, &new_ca.pem, Some(&payments))
        .await
        .is_err());
    let (cert, key) = new_ca.server_cert("signet test server");
    write(&dir, "server.key", &key);
    write(&dir, "server.crt", &cert);
    // Picked up within a few reload intervals.
    let mut switched = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tls_channel(&s.server, &new_ca.pem, Some(&payments))
            .await
            .is_ok()
        {
            switched = true;
            break;
        }
    }
    assert!(switched, "the new certificate was never served");
    // Calls go on, on the old connection and on new ones, after the switch.
    more(10).await;
    stop.store(true, Ordering::Relaxed);
    let (calls, failures) = stream.await.unwrap();
    assert!(calls >= 20, "only {calls} calls");
    assert!(failures.is_empty(), "{failures:?}");
    s.server.stop().await.unwrap();
}
