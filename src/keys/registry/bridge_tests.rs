//! The bridge with a backend that blocks: every call, admin ones included,
//! goes through the backend's dispatch, and shutdown leaves none in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;

use super::super::*;
use crate::error::ErrorKind;
use crate::keys::clock::ManualClock;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::store::NullStore;
use crate::keys::{ImportMaterial, Job, KeyBackend, KeyHandle};

/// The memory backend behind a thread per call, as an HSM backend would
/// be: it counts calls in flight and refuses new ones once shut down.
#[derive(Debug, Default)]
struct Threaded {
    inner: MemoryBackend,
    in_flight: Arc<AtomicUsize>,
    closed: AtomicBool,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    generated: AtomicUsize,
}

impl KeyBackend for Threaded {
    fn name(&self) -> &'static str {
        "threaded"
    }
    fn protection_level(&self) -> ProtectionLevel {
        ProtectionLevel::Hsm
    }
    fn check_algorithm(&self, alg: Algorithm) -> Result<()> {
        self.inner.check_algorithm(alg)
    }
    fn generate(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        // Slow, like a token: long enough for shutdown to start meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        self.generated.fetch_add(1, Ordering::SeqCst);
        self.inner.generate(label, alg)
    }
    fn import(&self, l: &str, a: Algorithm, m: ImportMaterial) -> Result<Arc<dyn KeyHandle>> {
        self.inner.import(l, a, m)
    }
    fn destroy(&self, label: &str) -> Result<()> {
        self.inner.destroy(label)
    }
    fn blocking(&self) -> bool {
        true
    }
    fn dispatch(&self, job: Job) -> Result<()> {
        let mut threads = self.threads.lock();
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::unavailable("backend stopped"));
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let n = self.in_flight.clone();
        threads.push(std::thread::spawn(move || {
            job();
            n.fetch_sub(1, Ordering::SeqCst);
        }));
        Ok(())
    }
    fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

fn registry(backend: Arc<Threaded>) -> Registry {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    Registry::new(
        backend,
        Arc::new(NullStore),
        Arc::new(clock),
        RegistrySettings::default(),
    )
}

#[tokio::test]
async fn shutdown_waits_for_an_admin_call_and_later_calls_fail_cleanly() {
    let backend = Arc::new(Threaded::default());
    let reg = Arc::new(registry(backend.clone()));
    let r = reg.clone();
    let create = tokio::spawn(async move {
        r.create_key("k", Algorithm::Ed25519, BTreeMap::new(), None, false)
            .await
    });
    // The generation runs on the backend's threads, not tokio's pool.
    let start = std::time::Instant::now();
    while backend.in_flight.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "generate was not dispatched to the backend"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reg.shutdown_backend().await;
    assert_eq!(backend.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(backend.generated.load(Ordering::SeqCst), 1);
    // Its record write came after shutdown: refused, not hung.
    let e = create.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", e.message());
    let e = reg
        .create_key("k2", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.message(), "backend stopped");
    assert_eq!(
        reg.health().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(backend.generated.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn signing_and_store_calls_are_dispatched_too() {
    let backend = Arc::new(Threaded::default());
    let reg = registry(backend.clone());
    reg.create_key("k", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap();
    reg.shutdown_backend().await;
    let e = reg
        .sign(
            "k",
            None,
            Input::Message(b"m".to_vec()),
            SignatureFormat::Der,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = reg.rotate("k", false, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(backend.generated.load(Ordering::SeqCst), 1);
}
