//! `signet bench --in-process`: no RPC, no server. Generates a key in a
//! fresh [`MemoryBackend`] and drives [`KeyHandle::sign`] from OS threads,
//! to show what the cryptography alone costs on this machine.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use super::bench::BenchArgs;
use super::bench_report::{Progress, Report};
use super::bench_stats::{process_cpu, Counters, Outcome};
use super::client::{CliError, CliResult};
use crate::error::ErrorKind;
use crate::keys::memory::MemoryBackend;
use crate::keys::{Algorithm, KeyBackend, KeyHandle, SignInput};

/// The algorithm implied by a demo key name, as `signet serve` creates them.
pub fn demo_algorithm(key: &str) -> Option<Algorithm> {
    crate::server::DEMO_KEYS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, alg)| *alg)
}

/// The gRPC code name of a backend error kind.
fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
        ErrorKind::AlreadyExists => "ALREADY_EXISTS",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::Aborted => "ABORTED",
        ErrorKind::Internal => "INTERNAL",
    }
}

/// Runs the in-process bench (blocking: call from a blocking thread).
pub fn run(a: BenchArgs) -> CliResult<Report> {
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

    let backend = MemoryBackend::new();
    let handle: Arc<dyn KeyHandle> = backend
        .generate("bench-in-process-v1", alg)
        .map_err(|e| CliError::rpc(format!("cannot generate a {alg} key: {e}")))?;
    let mut message = vec![0u8; a.message_size];
    rand::thread_rng().fill_bytes(&mut message);
    let message = Arc::new(message);

    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let measure_start = start + a.warmup;
    let end = measure_start + a.duration;
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (handle, message, counters) = (handle.clone(), message.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("bench-{i}"))
                .spawn(move || worker(&*handle, &message, &counters, measure_start, end))
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
    Ok(Report {
        mode: "in-process",
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
    })
}

/// Signs in a loop until `end`; records what falls in the measured window.
fn worker(
    handle: &dyn KeyHandle,
    message: &[u8],
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
        let result = handle.sign(SignInput::Message(message));
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
