//! What a verification costs: the work over the input is done once per
//! version, however many signatures the caller offers, and nothing is
//! done for signatures that cannot be the algorithm's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use super::*;
use crate::keys::clock::ManualClock;
use crate::keys::ecdsa_sig::{raw_to_der, SignatureFormat};
use crate::keys::memory::MemoryBackend;
use crate::keys::store::NullStore;
use crate::keys::{KeyBackend, KeyHandle, ProtectionLevel, PublicKey, SignInput};

/// Counts the MACs its handles compute.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryBackend,
    macs: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct CountedKey {
    inner: Arc<dyn KeyHandle>,
    macs: Arc<AtomicUsize>,
}

impl KeyHandle for CountedKey {
    fn algorithm(&self) -> Algorithm {
        self.inner.algorithm()
    }
    fn public_key(&self) -> Option<&PublicKey> {
        self.inner.public_key()
    }
    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>> {
        self.inner.sign(input)
    }
    fn verify_mac(&self, input: SignInput<'_>, tags: &[Vec<u8>]) -> Result<bool> {
        self.macs.fetch_add(1, Ordering::SeqCst);
        self.inner.verify_mac(input, tags)
    }
}

impl KeyBackend for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn protection_level(&self) -> ProtectionLevel {
        ProtectionLevel::Software
    }
    fn check_algorithm(&self, alg: Algorithm) -> Result<()> {
        self.inner.check_algorithm(alg)
    }
    fn generate(&self, label: &str, alg: Algorithm) -> Result<Arc<dyn KeyHandle>> {
        Ok(Arc::new(CountedKey {
            inner: self.inner.generate(label, alg)?,
            macs: self.macs.clone(),
        }))
    }
}

fn registry() -> (Registry, Arc<AtomicUsize>) {
    let backend = Arc::new(Counting::default());
    let macs = backend.macs.clone();
    let reg = Registry::new(
        backend,
        Arc::new(NullStore),
        Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )),
        RegistrySettings::default(),
    );
    (reg, macs)
}

const BODY: &[u8] = b"a webhook body";

fn message() -> Input {
    Input::Message(BODY.to_vec())
}

async fn sign(reg: &Registry, name: &str, format: SignatureFormat) -> Vec<u8> {
    reg.sign(name, None, message(), format)
        .await
        .unwrap()
        .signature
}

fn flipped(sig: &[u8], at: usize) -> Vec<u8> {
    let mut s = sig.to_vec();
    s[at] ^= 0x01;
    s
}

#[tokio::test]
async fn one_mac_per_version_whatever_the_number_of_tags() {
    let (reg, macs) = registry();
    reg.create_key("k", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap();
    let old = sign(&reg, "k", SignatureFormat::Der).await;
    // v1 RETIRING, v2 ACTIVE: two versions verify.
    reg.rotate("k", true, None).await.unwrap();
    let new = sign(&reg, "k", SignatureFormat::Der).await;
    assert_ne!(old, new);

    let forged: Vec<Vec<u8>> = (0..16).map(|i| flipped(&new, i)).collect();
    let verify = |sigs: Vec<Vec<u8>>| reg.verify("k", None, message(), sigs, SignatureFormat::Der);

    macs.store(0, Ordering::SeqCst);
    assert!(!verify(forged.clone()).await.unwrap().valid);
    assert_eq!(macs.load(Ordering::SeqCst), 2, "one MAC per version");

    // The good tag among the forged ones, last: found, still one MAC for
    // the newest version (it matched there).
    let mut with_new = forged.clone();
    with_new.push(new.clone());
    macs.store(0, Ordering::SeqCst);
    let v = verify(with_new).await.unwrap();
    assert_eq!((v.valid, v.version), (true, Some(2)));
    assert_eq!(macs.load(Ordering::SeqCst), 1);

    // The RETIRING version's tag, repeated: two MACs, version 1.
    let mut with_old = forged;
    with_old.extend([old.clone(), old]);
    macs.store(0, Ordering::SeqCst);
    let v = verify(with_old).await.unwrap();
    assert_eq!((v.valid, v.version), (true, Some(1)));
    assert_eq!(macs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn signatures_of_the_wrong_length_cost_nothing() {
    let (reg, macs) = registry();
    reg.create_key("k", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap();
    let good = sign(&reg, "k", SignatureFormat::Der).await;
    let wrong = vec![
        vec![],
        good[..31].to_vec(),
        [&good[..], &[0]].concat(),
        vec![0; 64],
    ];
    macs.store(0, Ordering::SeqCst);
    let v = reg
        .verify("k", None, message(), wrong, SignatureFormat::Der)
        .await
        .unwrap();
    assert!(!v.valid);
    assert_eq!(macs.load(Ordering::SeqCst), 0, "no MAC for impossible tags");
    // Nor for no signature at all.
    let v = reg
        .verify("k", None, message(), vec![], SignatureFormat::Der)
        .await
        .unwrap();
    assert!(!v.valid);
    assert_eq!(macs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn any_of_several_asymmetric_signatures_verifies() {
    let (reg, _) = registry();
    for alg in [
        Algorithm::EcdsaP256Sha256,
        Algorithm::EcdsaP384Sha384,
        Algorithm::RsaPss2048Sha256,
        Algorithm::Ed25519,
    ] {
        let name = alg.name().to_ascii_lowercase().replace('_', "-");
        reg.create_key(&name, alg, BTreeMap::new(), None, false)
            .await
            .unwrap();
        let formats: &[SignatureFormat] = if alg.curve().is_some() {
            &[SignatureFormat::Der, SignatureFormat::Raw]
        } else {
            &[SignatureFormat::Der]
        };
        for &format in formats {
            let good = sign(&reg, &name, format).await;
            let last = good.len() - 1;
            let mut sigs: Vec<Vec<u8>> = (0..4).map(|i| flipped(&good, last - i)).collect();
            let verify = |s: Vec<Vec<u8>>| reg.verify(&name, None, message(), s, format);
            assert!(
                !verify(sigs.clone()).await.unwrap().valid,
                "{alg} {format:?}"
            );
            sigs.insert(2, good.clone());
            assert!(verify(sigs).await.unwrap().valid, "{alg} {format:?}");
            // Alone, as the gRPC Verify passes it.
            assert!(verify(vec![good]).await.unwrap().valid, "{alg} {format:?}");
        }
        if let Some(c) = alg.curve() {
            // The longest DER a curve allows still reaches the verifier:
            // both integers with their leading zero byte.
            let n = c.size();
            let mut raw = vec![0x80; 2 * n];
            raw[n] = 0x80;
            let der = raw_to_der(c, &raw).unwrap();
            assert_eq!(der.len(), 2 * n + 8, "{c:?}");
            assert!(super::sign::plausible_len(
                alg,
                SignatureFormat::Der,
                der.len()
            ));
            assert!(!super::sign::plausible_len(
                alg,
                SignatureFormat::Der,
                der.len() + 1
            ));
        }
    }
}
