//! Staged rotation of a shared HMAC secret under a steady stream of signed
//! webhooks: a sending signet signs each one, a receiving signet verifies
//! it, and not one delivery may fail while the secret changes hands (the
//! procedure of docs/http-profiles.md). A control test shows the stream
//! does notice lost deliveries when the steps are taken in the wrong order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signet::api::pb;
use signet::config::Config;
use tokio::sync::Mutex;

use crate::support::TestServer;

const OLD: &[u8] = b"old-shared-secret-0123456789abcdef";
const NEW: &[u8] = b"new-shared-secret-fedcba9876543210";
/// Deliveries between two steps of a rotation.
const SETTLE: usize = 10;

async fn party(preset: &str) -> TestServer {
    let extra = if preset == "boxo" {
        "client_id = \"merchant-42\"\n"
    } else {
        ""
    };
    let config = Config::parse(&format!(
        "[[profiles]]\nname = \"hook\"\npreset = \"{preset}\"\nkey = \"hook\"\n{extra}"
    ))
    .unwrap();
    let s = TestServer::start(config).await;
    import(&s, OLD, false).await;
    s
}

async fn import(s: &TestServer, secret: &[u8], as_new_version: bool) -> pb::Key {
    s.admin()
        .import_key(pb::ImportKeyRequest {
            name: "hook".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            material: secret.to_vec(),
            as_new_version,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap()
}

async fn promote(s: &TestServer, version: u32, grace: Duration) {
    s.admin()
        .promote_key_version(pb::PromoteKeyVersionRequest {
            name: "hook".into(),
            version,
            grace_period: Some(prost_types::Duration {
                seconds: grace.as_secs() as i64,
                nanos: 0,
            }),
        })
        .await
        .unwrap();
}

/// One delivery: signed by `from`, verified by `to`.
async fn deliver(from: &TestServer, to: &TestServer, n: u64) -> pb::VerifyHttpRequestResponse {
    let body = format!("{{\"event\":\"payment.captured\",\"seq\":{n}}}").into_bytes();
    let url = "https://merchant.example/hooks";
    let signed = from
        .signer()
        .sign_http_request(pb::SignHttpRequestRequest {
            profile: "hook".into(),
            method: "POST".into(),
            url: url.into(),
            body: body.clone(),
            nonce: String::new(),
            headers: Vec::new(),
        })
        .await
        .expect("the sender always signs")
        .into_inner();
    to.signer()
        .verify_http_request(pb::VerifyHttpRequestRequest {
            profile: "hook".into(),
            method: "POST".into(),
            url: url.into(),
            body,
            headers: signed.headers,
            source_ip: String::new(),
        })
        .await
        .expect("verification answers")
        .into_inner()
}

struct Stream {
    stop: Arc<AtomicBool>,
    /// Deliveries made so far.
    done: Arc<AtomicUsize>,
    /// Held by each delivery, and by the test while it moves both clocks,
    /// so no delivery straddles a clock jump.
    gate: Arc<Mutex<()>>,
    task: tokio::task::JoinHandle<Vec<pb::VerifyHttpRequestResponse>>,
}

fn start_stream(from: Arc<TestServer>, to: Arc<TestServer>) -> Stream {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Mutex::new(()));
    let (s, g, d) = (stop.clone(), gate.clone(), done.clone());
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut n = 0;
        while !s.load(Ordering::Relaxed) {
            let _held = g.lock().await;
            out.push(deliver(&from, &to, n).await);
            n += 1;
            d.fetch_add(1, Ordering::Relaxed);
            drop(_held);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        out
    });
    Stream {
        stop,
        done,
        gate,
        task,
    }
}

impl Stream {
    /// Lets at least `SETTLE` more deliveries through before the next
    /// step, however slow the machine.
    async fn settle(&self) {
        let target = self.done.load(Ordering::Relaxed) + SETTLE;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.done.load(Ordering::Relaxed) < target {
            assert!(tokio::time::Instant::now() < deadline, "the stream stalled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn finish(self) -> Vec<pb::VerifyHttpRequestResponse> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Moves both parties' clocks together (they stand for two machines whose
/// clocks agree) and applies what fell due.
async fn advance_both(stream: &Stream, a: &TestServer, b: &TestServer, d: Duration) {
    let _held = stream.gate.lock().await;
    a.clock.advance(d);
    b.clock.advance(d);
    a.registry.tick().await;
    b.registry.tick().await;
}

fn failures(results: &[pb::VerifyHttpRequestResponse]) -> Vec<String> {
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.valid)
        .map(|(i, r)| {
            format!(
                "#{i}: {:?}",
                pb::VerifyFailureReason::try_from(r.reason).unwrap()
            )
        })
        .collect()
}

/// The old secret alone no longer verifies once the grace has ended: a third
/// party that never rotated signs, the receiver refuses.
async fn assert_old_secret_refused(receiver: &TestServer, preset: &str) {
    let stale = party(preset).await;
    stale.clock.set(receiver.now());
    let r = deliver(&stale, receiver, 9_999).await;
    assert!(!r.valid, "the old secret still verifies after the grace");
    assert_eq!(r.reason, pb::VerifyFailureReason::SignatureMismatch as i32);
    stale.stop().await.unwrap();
}

async fn rotation_loses_nothing(preset: &str) {
    let sender = Arc::new(party(preset).await);
    let receiver = Arc::new(party(preset).await);
    let grace = Duration::from_secs(3600);
    let stream = start_stream(sender.clone(), receiver.clone());
    stream.settle().await;

    if preset == "boxo" {
        // One signature per request: the receiver must accept the new
        // secret before the sender signs with it.
        import(&receiver, NEW, true).await;
        stream.settle().await;
        promote(&receiver, 2, grace).await;
        stream.settle().await;
        import(&sender, NEW, true).await;
        stream.settle().await;
        promote(&sender, 2, grace).await;
    } else {
        // Multi-signature headers: the sender's PENDING version signs next
        // to the ACTIVE one, so either side may move first.
        import(&sender, NEW, true).await;
        stream.settle().await;
        import(&receiver, NEW, true).await;
        stream.settle().await;
        promote(&receiver, 2, grace).await;
        stream.settle().await;
        promote(&sender, 2, grace).await;
    }
    stream.settle().await;
    // The grace ends on both sides; version 1 is disabled by the tick.
    advance_both(&stream, &sender, &receiver, grace + Duration::from_secs(1)).await;
    stream.settle().await;
    let results = stream.finish().await;

    let lost = failures(&results);
    assert!(lost.is_empty(), "{preset}: lost deliveries: {lost:?}");
    // Six settles of SETTLE deliveries each: every step was taken under
    // the stream.
    assert!(
        results.len() >= 6 * SETTLE,
        "only {} deliveries",
        results.len()
    );
    assert_eq!(results.first().unwrap().key_version_id, "hook:v1");
    assert_eq!(results.last().unwrap().key_version_id, "hook:v2");
    let key = receiver
        .admin()
        .get_key(pb::GetKeyRequest {
            name: "hook".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(key.versions[0].state, pb::KeyVersionState::Disabled as i32);
    assert_old_secret_refused(&receiver, preset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boxo_secret_rotation_under_a_webhook_stream_loses_none() {
    rotation_loses_nothing("boxo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_secret_rotation_under_a_webhook_stream_loses_none() {
    rotation_loses_nothing("stripe").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_secret_rotation_under_a_webhook_stream_loses_none() {
    rotation_loses_nothing("standard-webhooks").await;
}

/// The control: a single-signature sender that switches before the
/// receiver has the new secret loses deliveries, and the stream sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_the_sender_first_is_caught_by_the_stream() {
    let sender = Arc::new(party("boxo").await);
    let receiver = Arc::new(party("boxo").await);
    let stream = start_stream(sender.clone(), receiver.clone());
    stream.settle().await;
    import(&sender, NEW, true).await;
    promote(&sender, 2, Duration::from_secs(3600)).await;
    stream.settle().await;
    let results = stream.finish().await;
    let lost = failures(&results);
    assert!(
        !lost.is_empty(),
        "the stream did not notice a lost delivery"
    );
    assert!(
        lost.iter().all(|l| l.ends_with("SignatureMismatch")),
        "{lost:?}"
    );
}
