//! `signet bench`: a load generator for `Sign` (or `SignBatch`, `--batch`,
//! or a `CipherService` call, `--rpc`: [`super::bench_cipher`]) over
//! several HTTP/2 connections, or (`--in-process`) straight against the
//! in-memory backend.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rand::RngCore;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::bench_cipher::{BenchRpc, CipherLoad, Shape};
use super::bench_report::{Progress, Report};
use super::bench_stats::{process_cpu, Counters, Outcome};
use super::client::{
    bearer, code_name, connect_error, parse_duration, print_json, secure_endpoint, status_detail,
    status_message, write_output, Bearer, CliError, CliResult, Conn,
};
use super::Global;
use crate::api::pb;
use crate::api::pb::cipher_service_client::CipherServiceClient;
use crate::api::pb::signer_client::SignerClient;
use crate::keys::Algorithm;

/// Pause after a failed call, so a down server does not turn the bench
/// into a busy loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(5);

/// How long the one call before the run may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `signet bench`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints the report on standard output and a progress line on \
    standard error about once a second. Latency percentiles cover successful calls in \
    the measured window (after --warmup). CPU µs per request divide the CPU time used \
    in that window by the calls completed in it.\n\
    With --floor, the report of the signet run comes first, then the floor's, the \
    signing run's and the limit (in JSON: objects \"floor\", \"signing\", \"limit\").\n\
    Exit codes: 0 done with at least one success (with --floor: in every part), 1 \
    nothing succeeded (or the key cannot sign), 2 usage error."
)]
pub(crate) struct BenchArgs {
    /// The key to sign with (with --in-process: demo-hmac, demo-rsa,
    /// demo-ecdsa or demo-ed25519 imply the algorithm).
    #[arg(long, short, required_unless_present = "in_process")]
    pub key: Option<String>,
    /// Concurrent requests in flight (tasks; threads with --in-process,
    /// capped at the number of CPUs).
    #[arg(long, short, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// How long to measure, e.g. "10s".
    #[arg(long, short, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Separate HTTP/2 connections; tasks are spread over them round-robin.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    /// Bytes per message (one random message, signed over and over).
    #[arg(long, default_value_t = 32)]
    pub message_size: usize,
    /// Load before the measured window, excluded from every figure.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// No RPC: sign with a freshly generated in-memory key from OS threads.
    #[arg(long)]
    pub in_process: bool,
    /// With --in-process: the algorithm, by name (e.g. ED25519).
    #[arg(long, short, requires = "in_process", value_parser = super::args::AlgorithmArg)]
    pub algorithm: Option<Algorithm>,
    /// With --in-process: sign through the backend of this config file
    /// (a PKCS#11 token) instead of a fresh in-memory key. A temporary key
    /// is generated on the token and destroyed at the end.
    #[arg(long, requires = "in_process")]
    pub backend_config: Option<std::path::PathBuf>,
    /// With --backend-config: time bare `C_Sign` calls, one session per
    /// thread kept open, with nothing of signet in between (the token's
    /// raw cost).
    #[arg(long, requires = "backend_config")]
    pub raw: bool,
    /// Also measure this server process's CPU time (from /proc/PID/stat).
    #[arg(long, conflicts_with = "in_process")]
    pub server_pid: Option<u32>,
    /// Measure the floor in the same run: a bare tonic server of the same
    /// Signer service (a process of its own, plaintext on loopback; no
    /// auth, audit, metrics or signature, an answer of the same size)
    /// loaded first with the same settings, then signet, then the
    /// in-process signing cost (1 thread). Prints the limit, CPUs / (floor
    /// CPU per call + signing CPU per call), and signet's share of it.
    #[arg(long, conflicts_with = "in_process")]
    pub floor: bool,
    /// Async worker threads driving the RPCs. One is the default: on a host
    /// the server shares, a second client thread mostly adds wake-ups and
    /// cross-thread hand-offs that take CPU from the server (measured in
    /// docs/benchmarks.md).
    #[arg(long, default_value_t = 1, conflicts_with = "in_process",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub client_threads: u32,
    /// Send SignBatch calls of this many items (the same message, the same
    /// key) instead of Sign; throughput and CPU are then per item,
    /// latencies per call. With --floor, the floor serves SignBatch too.
    #[arg(long, conflicts_with = "in_process",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: Option<u32>,
    /// The RPC to send: sign, or a CipherService call with an AES_256_GCM
    /// key (encrypt and decrypt a --message-size plaintext, data-key a
    /// GenerateDataKey). With --in-process, the same operation on a fresh
    /// key (or the --backend-config token).
    #[arg(long, value_enum, default_value_t = BenchRpc::Sign, conflicts_with = "batch")]
    pub rpc: BenchRpc,
}

/// Runs `signet bench`.
pub(crate) async fn run(global: &Global, a: BenchArgs) -> CliResult {
    if a.duration.is_zero() {
        return Err(CliError::usage("--duration must be more than 0"));
    }
    // Bounded, so that `start + warmup + duration` cannot overflow.
    const DAY: Duration = Duration::from_secs(86_400);
    if a.duration > DAY || a.warmup > DAY {
        return Err(CliError::usage(
            "--duration and --warmup must be at most 1d",
        ));
    }
    if a.floor {
        let r = super::bench_limit::run(global, a).await?;
        if global.json {
            print_json(&r.json())?;
        } else {
            write_output(None, r.text().as_bytes())?;
        }
        return r.check();
    }
    let report = if a.in_process {
        tokio::task::spawn_blocking(move || super::bench_local::run(a))
            .await
            .map_err(|e| CliError::usage(format!("bench thread failed: {e}")))??
    } else {
        rpc(global, a).await?
    };
    if global.json {
        print_json(&report.json())?;
    } else {
        write_output(None, report.text().as_bytes())?;
    }
    if report.outcome.ok == 0 {
        return Err(CliError::rpc(format!(
            "no {} succeeded in the measured window",
            report.unit
        )));
    }
    Ok(())
}

/// Connects `n` separate channels (each its own HTTP/2 connection). When
/// none connects there is nothing to measure: the command fails at once
/// with the reason. When only some do, the others are lazy channels and a
/// warning, so the run still ends on time and counts the failures.
async fn channels(g: &Global, n: usize, bearer: Bearer) -> CliResult<(Vec<Conn>, Option<String>)> {
    let uri = g.endpoint.as_str();
    let ep = secure_endpoint(g)?;
    let mut set = JoinSet::new();
    for i in 0..n {
        let ep = ep.clone();
        set.spawn(async move { (i, ep.connect().await) });
    }
    let mut out: Vec<Option<Channel>> = vec![None; n];
    let mut failure = None;
    let mut connected = 0;
    while let Some(r) = set.join_next().await {
        let (i, r) = r.map_err(|e| CliError::usage(format!("connect task failed: {e}")))?;
        out[i] = Some(match r {
            Ok(ch) => {
                connected += 1;
                ch
            }
            Err(e) => {
                let e = connect_error(uri, &e);
                if failure.is_none() {
                    failure = Some(e);
                }
                ep.connect_lazy()
            }
        });
    }
    let failure = match failure {
        Some(e) if connected == 0 => return Err(e),
        f => f.map(|e| e.message),
    };
    Ok((
        out.into_iter()
            .flatten()
            .map(|c| Conn::new(c, bearer.clone()))
            .collect(),
        failure,
    ))
}

/// Where a run sends its load: the connections and the one request.
pub(crate) struct Target {
    /// The server, as given.
    pub endpoint: String,
    /// One client connection per `--connections`.
    pub chans: Vec<Conn>,
    /// What every call sends.
    pub request: pb::SignRequest,
    /// Why some connections did not connect, if they did not.
    pub failure: Option<String>,
    /// Items per SignBatch call; `None` for Sign.
    pub batch: Option<usize>,
    /// The cipher call sent instead of `request` (`--rpc`).
    pub cipher: Option<CipherLoad>,
}

impl Target {
    /// Connects to `g.endpoint` with `bearer` (`--connections` of them).
    pub(crate) async fn connect(
        g: &Global,
        a: &BenchArgs,
        bearer: Bearer,
        request: pb::SignRequest,
    ) -> CliResult<Target> {
        let (chans, failure) = channels(g, a.connections as usize, bearer).await?;
        Ok(Target {
            endpoint: g.endpoint.clone(),
            chans,
            request,
            failure,
            batch: a.batch.map(|n| n as usize),
            cipher: None,
        })
    }

    /// Makes the run send `rpc` (a cipher call, with the request's key and
    /// message as the plaintext) and returns the shape of one call, from
    /// one call made now.
    pub(crate) async fn prepare_cipher(&mut self, rpc: BenchRpc) -> CliResult<Shape> {
        let message = match &self.request.input {
            Some(pb::sign_request::Input::Message(m)) => m.clone(),
            _ => Vec::new(),
        };
        let (load, shape) =
            CipherLoad::prepare(&self.chans[0], rpc, &self.request.key, message).await?;
        self.cipher = Some(load);
        Ok(shape)
    }

    /// One probe call: a key that cannot sign is a mistake worth stopping
    /// for (the error); an unavailable server is what the run will
    /// measure (a warning and `None`).
    pub(crate) async fn probe(&self) -> CliResult<Option<pb::SignResponse>> {
        if let Some(msg) = &self.failure {
            eprintln!("signet: warning: {msg}; the run will count the failures");
            return Ok(None);
        }
        let mut client = SignerClient::new(self.chans[0].clone());
        let probe = tokio::time::timeout(PROBE_TIMEOUT, client.sign(self.request.clone()));
        match probe.await {
            Ok(Ok(resp)) => return Ok(Some(resp.into_inner())),
            Ok(Err(s)) if is_fatal(s.code()) => return Err(CliError::from(s)),
            Ok(Err(s)) => eprintln!("signet: warning: probe call failed: {}", status_message(&s)),
            Err(_) => eprintln!(
                "signet: warning: probe call timed out after {} s",
                PROBE_TIMEOUT.as_secs()
            ),
        }
        Ok(None)
    }
}

/// `--key`'s request: one random message of `--message-size` bytes.
pub(crate) fn sign_request(a: &BenchArgs) -> pb::SignRequest {
    let mut message = vec![0u8; a.message_size];
    rand::thread_rng().fill_bytes(&mut message);
    pb::SignRequest {
        key: a.key.clone().unwrap_or_default(),
        version: 0,
        input: Some(pb::sign_request::Input::Message(message)),
        signature_format: 0,
    }
}

/// Refuses a `--server-pid` whose CPU time cannot be read.
pub(crate) fn check_server_pid(pid: Option<u32>) -> CliResult {
    if let Some(pid) = pid {
        process_cpu(Some(pid)).map_err(|e| {
            CliError::usage(format!(
                "--server-pid {pid}: cannot read /proc/{pid}/stat: {e}"
            ))
        })?;
    }
    Ok(())
}

async fn rpc(global: &Global, a: BenchArgs) -> CliResult<Report> {
    check_server_pid(a.server_pid)?;
    let mut target = Target::connect(global, &a, bearer(global)?, sign_request(&a)).await?;
    let algorithm = if a.rpc == BenchRpc::Sign {
        target
            .probe()
            .await?
            .map(|r| super::client::algorithm_name(r.algorithm))
    } else {
        target.prepare_cipher(a.rpc).await?;
        Some(crate::keys::Algorithm::Aes256Gcm.name().to_string())
    };
    Ok(load(&target, &a, a.server_pid, algorithm).await)
}

/// Runs the load of `a` against `target` (warm-up, then the measured
/// window), with the CPU time of this process and of `server_pid`.
pub(crate) async fn load(
    target: &Target,
    a: &BenchArgs,
    server_pid: Option<u32>,
    algorithm: Option<String>,
) -> Report {
    let chans = &target.chans;
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let measure_start = start + a.warmup;
    let end = measure_start + a.duration;
    let mut workers = JoinSet::new();
    for i in 0..a.concurrency as usize {
        let conn = &chans[i % chans.len()];
        let client = Clients {
            signer: SignerClient::new(conn.clone()),
            cipher: CipherServiceClient::new(conn.clone()),
        };
        workers.spawn(worker(
            client,
            Load::of(target),
            counters.clone(),
            measure_start,
            end,
        ));
    }
    let progress = {
        let counters = counters.clone();
        let mut p = Progress::new(start, a.warmup, "requests");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                (start + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            loop {
                tick.tick().await;
                p.tick(&counters);
            }
        })
    };

    tokio::time::sleep_until(measure_start.into()).await;
    let server0 = server_pid.map(|p| process_cpu(Some(p)));
    let client0 = process_cpu(None).ok();
    let t0 = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let server1 = server_pid.map(|p| process_cpu(Some(p)));
    let client1 = process_cpu(None).ok();
    let elapsed = t0.elapsed();

    let mut outcome = Outcome::new();
    while let Some(r) = workers.join_next().await {
        match r {
            Ok(o) => outcome.merge(&o),
            Err(e) => eprintln!("signet: warning: a bench task failed: {e}"),
        }
    }
    progress.abort();
    let _ = progress.await;
    Progress::finish_line();

    let server_cpu = match (server0, server1) {
        (Some(Ok(b)), Some(Ok(e))) => Some(e.saturating_sub(b)),
        (Some(_), Some(_)) => {
            eprintln!(
                "signet: warning: server process exited during the run; no server CPU figure"
            );
            None
        }
        _ => None,
    };
    Report {
        mode: "rpc",
        unit: "requests",
        key: target.request.key.clone(),
        algorithm,
        endpoint: Some(target.endpoint.clone()),
        connections: Some(chans.len()),
        concurrency: a.concurrency as usize,
        message_size: a.message_size,
        warmup: a.warmup,
        elapsed,
        outcome,
        server_cpu,
        client_cpu: client0.zip(client1).map(|(b, e)| e.saturating_sub(b)),
        batch: target.batch,
    }
}

/// A worker's clients, on its one connection.
struct Clients {
    signer: SignerClient<Conn>,
    cipher: CipherServiceClient<Conn>,
}

/// What a worker sends, over and over.
#[derive(Clone)]
enum Load {
    Sign(pb::SignRequest),
    Batch(pb::SignBatchRequest),
    Cipher(CipherLoad),
}

impl Load {
    fn of(target: &Target) -> Load {
        if let Some(c) = &target.cipher {
            return Load::Cipher(c.clone());
        }
        match target.batch {
            Some(n) => Load::Batch(pb::SignBatchRequest {
                items: vec![target.request.clone(); n],
            }),
            None => Load::Sign(target.request.clone()),
        }
    }

    /// One call; a batch whose items did not all sign fails with the first
    /// item's error.
    async fn send(&self, clients: &mut Clients) -> Result<(), tonic::Status> {
        let client = &mut clients.signer;
        match self {
            Load::Cipher(c) => c.send(&mut clients.cipher).await,
            Load::Sign(r) => client.sign(r.clone()).await.map(drop),
            Load::Batch(b) => {
                let results = client.sign_batch(b.clone()).await?.into_inner().results;
                let failed = results.iter().find_map(|r| match &r.result {
                    Some(pb::sign_batch_result::Result::Error(e)) => Some(e),
                    _ => None,
                });
                match failed {
                    Some(e) => Err(tonic::Status::new(
                        tonic::Code::from(i32::try_from(e.code).unwrap_or(2)),
                        e.message.clone(),
                    )),
                    None if results.len() != b.items.len() => Err(tonic::Status::internal(
                        "the server answered a different number of results",
                    )),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Codes that mean the bench is misconfigured rather than the server
/// overloaded or down.
fn is_fatal(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        NotFound
            | InvalidArgument
            | FailedPrecondition
            | Unauthenticated
            | PermissionDenied
            | Unimplemented
    )
}

/// Signs in a loop until `end`; records what falls in the measured window.
async fn worker(
    mut client: Clients,
    request: Load,
    counters: Arc<Counters>,
    measure_start: Instant,
    end: Instant,
) -> Outcome {
    let mut out = Outcome::new();
    // One timer for the whole run: calls in flight at the end are dropped.
    let deadline = tokio::time::sleep_until(end.into());
    tokio::pin!(deadline);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let result = tokio::select! {
            r = request.send(&mut client) => r,
            _ = &mut deadline => {
                // A call outstanding for the whole measured window is a
                // stall worth reporting; others were merely cut off.
                if t0 < measure_start {
                    out.failure("DEADLINE_EXCEEDED", || {
                        "no answer during the whole measured window".into()
                    });
                }
                break;
            }
        };
        let t1 = Instant::now();
        let measured = t0 >= measure_start && t1 <= end;
        match result {
            Ok(_) => {
                counters.ok.fetch_add(1, Ordering::Relaxed);
                if measured {
                    out.success(t1 - t0);
                }
            }
            Err(s) => {
                counters.err.fetch_add(1, Ordering::Relaxed);
                if measured {
                    out.failure(code_name(s.code()), || status_detail(&s));
                }
                tokio::select! {
                    _ = tokio::time::sleep(ERROR_BACKOFF) => {}
                    _ = &mut deadline => break,
                }
            }
        }
    }
    out
}
