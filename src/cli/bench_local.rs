//! `signet bench --in-process`: no RPC, no server. Generates a key in a
//! fresh [`MemoryBackend`] and drives [`KeyHandle::sign`] from OS threads,
//! to show what the cryptography alone costs on this machine.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use super::bench::BenchArgs;
use super::bench_cipher::BenchRpc;
use super::bench_report::{Progress, Report};
use super::bench_stats::{process_cpu, Counters, Outcome};
use super::client::{CliError, CliResult};
use crate::config::{BackendConfig, Config};
use crate::error::ErrorKind;
use crate::keys::memory::MemoryBackend;
use crate::keys::pkcs11::{Pkcs11Backend, Pkcs11Settings, TokenSelector};
use crate::keys::{Algorithm, KeyBackend, KeyHandle, SignInput};

/// The algorithm implied by a demo key name, as `signet serve` creates them.
pub(crate) fn demo_algorithm(key: &str) -> Option<Algorithm> {
    crate::server::DEMO_KEYS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, alg)| *alg)
}

/// The gRPC code name of a backend error kind.
fn kind_name(k: ErrorKind) -> &'static str {
    crate::error::code_name(k.code())
}

/// Runs the in-process bench (blocking: call from a blocking thread).
pub(crate) fn run(a: BenchArgs) -> CliResult<Report> {
    let key = a.key.clone().unwrap_or_else(|| "in-process".into());
    let alg = match a.algorithm {
        Some(alg) => alg,
        None => demo_algorithm(&key).ok_or_else(|| {
            CliError::usage(format!(
                "--in-process needs --algorithm (or --key demo-hmac, demo-rsa, demo-ecdsa or demo-ed25519); got --key {key}"
            ))
        })?,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (a.concurrency as usize).min(cpus);
    if threads < a.concurrency as usize {
        eprintln!(
            "signet: {threads} threads (one per CPU) instead of --concurrency {}",
            a.concurrency
        );
    }

    let mut message = vec![0u8; a.message_size];
    rand::thread_rng().fill_bytes(&mut message);
    let message = Arc::new(message);
    let target = Target::new(&a, alg, &message)?;
    let mode = target.mode();

    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let measure_start = start + a.warmup;
    let end = measure_start + a.duration;
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let mut sign = target.signer(&message, a.rpc)?;
            let counters = counters.clone();
            std::thread::Builder::new()
                .name(format!("bench-{i}"))
                .spawn(move || worker(&mut *sign, &counters, measure_start, end))
                .map_err(|e| CliError::usage(format!("cannot start a bench thread: {e}")))
        })
        .collect::<Result<_, _>>()?;

    let mut progress = Progress::new(start, a.warmup, "ops");
    let mut next_tick = start + Duration::from_secs(1);
    let mut window: Option<(Instant, Option<Duration>)> = None;
    loop {
        let now = Instant::now();
        if window.is_none() && now >= measure_start {
            window = Some((now, process_cpu(None).ok()));
        }
        if now >= end {
            break;
        }
        if now >= next_tick {
            progress.tick(&counters);
            next_tick += Duration::from_secs(1);
        }
        let mut wake = next_tick.min(end);
        if window.is_none() {
            wake = wake.min(measure_start);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let cpu1 = process_cpu(None).ok();
    let (t0, cpu0) = window.unwrap_or((measure_start, None));
    let elapsed = t0.elapsed();

    let mut outcome = Outcome::new();
    for w in workers {
        match w.join() {
            Ok(o) => outcome.merge(&o),
            Err(_) => eprintln!("signet: warning: a bench thread panicked"),
        }
    }
    Progress::finish_line();
    target.cleanup();
    Ok(Report {
        mode,
        unit: "ops",
        key,
        algorithm: Some(alg.name().to_string()),
        endpoint: None,
        connections: None,
        concurrency: threads,
        message_size: a.message_size,
        warmup: a.warmup,
        elapsed,
        outcome,
        server_cpu: None,
        client_cpu: cpu0.zip(cpu1).map(|(b, e)| e.saturating_sub(b)),
        batch: None,
    })
}

/// One thread's signing call.
type SignFn = Box<dyn FnMut() -> crate::error::Result<Vec<u8>> + Send>;

/// What the in-process bench signs with.
enum Target {
    /// A fresh in-memory key.
    Memory(Arc<dyn KeyHandle>),
    /// A temporary key on a PKCS#11 token, through signet's backend or raw.
    Pkcs11 {
        backend: Arc<Pkcs11Backend>,
        handle: Arc<dyn KeyHandle>,
        label: String,
        alg: Algorithm,
        raw: bool,
    },
}

impl Target {
    fn new(a: &BenchArgs, alg: Algorithm, _message: &[u8]) -> CliResult<Self> {
        let Some(path) = &a.backend_config else {
            let handle = MemoryBackend::new()
                .generate("bench-in-process-v1", alg)
                .map_err(|e| CliError::rpc(format!("cannot generate a {alg} key: {e}")))?;
            return Ok(Target::Memory(handle));
        };
        let config = Config::load(path).map_err(|e| CliError::usage(e.to_string()))?;
        let BackendConfig::Pkcs11(p) = &config.backend else {
            return Err(CliError::usage(
                "--backend-config: the file's [backend] must be type = \"pkcs11\"",
            ));
        };
        let token = match (&p.token_label, &p.token_serial) {
            (Some(l), _) => TokenSelector::Label(l.clone()),
            (None, Some(s)) => TokenSelector::Serial(s.clone()),
            (None, None) => return Err(CliError::usage("--backend-config: no token selected")),
        };
        let backend = Pkcs11Backend::open(Pkcs11Settings {
            module: p.module.clone(),
            token,
            pin: p.read_pin().map_err(|e| CliError::usage(e.to_string()))?,
            max_sessions: p.max_sessions,
            session_wait: p.session_wait,
            threads: p.worker_threads(),
        })
        .map_err(|e| CliError::rpc(format!("PKCS#11 backend: {}", e.message())))?;
        let mut r = [0u8; 4];
        rand::thread_rng().fill_bytes(&mut r);
        let label = format!("bench-in-process:v1:{}", hex::encode(r));
        let handle = backend
            .generate(&label, alg)
            .map_err(|e| CliError::rpc(format!("cannot generate a {alg} key: {e}")))?;
        Ok(Target::Pkcs11 {
            backend: Arc::new(backend),
            handle,
            label,
            alg,
            raw: a.raw,
        })
    }

    fn mode(&self) -> &'static str {
        match self {
            Target::Memory(_) => "in-process",
            Target::Pkcs11 { raw: false, .. } => "in-process PKCS#11 backend",
            Target::Pkcs11 { raw: true, .. } => "raw PKCS#11 C_Sign",
        }
    }

    fn signer(&self, message: &Arc<Vec<u8>>, rpc: BenchRpc) -> CliResult<SignFn> {
        let message = message.clone();
        if rpc != BenchRpc::Sign {
            return match self {
                Target::Memory(h)
                | Target::Pkcs11 {
                    handle: h,
                    raw: false,
                    ..
                } => super::bench_cipher::local_op(h.clone(), rpc, message),
                Target::Pkcs11 { raw: true, .. } => Err(CliError::usage(
                    "--raw times C_Sign only; drop it for --rpc other than sign",
                )),
            };
        }
        Ok(match self {
            Target::Memory(h)
            | Target::Pkcs11 {
                handle: h,
                raw: false,
                ..
            } => {
                let h = h.clone();
                Box::new(move || h.sign(SignInput::Message(&message)))
            }
            Target::Pkcs11 {
                backend,
                label,
                alg,
                raw: true,
                ..
            } => backend
                .bench_raw_signer(label, *alg, &message)
                .map_err(|e| CliError::rpc(format!("raw PKCS#11 session: {}", e.message())))?,
        })
    }

    /// Removes the temporary token key.
    fn cleanup(&self) {
        if let Target::Pkcs11 { backend, label, .. } = self {
            if let Err(e) = backend.destroy(label) {
                eprintln!(
                    "signet: warning: could not remove bench key {label}: {}",
                    e.message()
                );
            }
        }
    }
}

/// Signs in a loop until `end`; records what falls in the measured window.
fn worker(
    sign: &mut (dyn FnMut() -> crate::error::Result<Vec<u8>> + Send),
    counters: &Counters,
    measure_start: Instant,
    end: Instant,
) -> Outcome {
    let mut out = Outcome::new();
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let result = sign();
        let t1 = Instant::now();
        let measured = t0 >= measure_start && t1 <= end;
        match result {
            Ok(sig) => {
                drop(std::hint::black_box(sig));
                counters.ok.fetch_add(1, Ordering::Relaxed);
                if measured {
                    out.success(t1 - t0);
                }
            }
            Err(e) => {
                counters.err.fetch_add(1, Ordering::Relaxed);
                if measured {
                    out.failure(kind_name(e.kind()), || e.message().to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_names() {
        assert_eq!(demo_algorithm("demo-hmac"), Some(Algorithm::HmacSha256));
        assert_eq!(
            demo_algorithm("demo-rsa"),
            Some(Algorithm::RsaPkcs1_2048Sha256)
        );
        assert_eq!(
            demo_algorithm("demo-ecdsa"),
            Some(Algorithm::EcdsaP256Sha256)
        );
        assert_eq!(demo_algorithm("demo-ed25519"), Some(Algorithm::Ed25519));
        assert_eq!(demo_algorithm("payments"), None);
    }
}
