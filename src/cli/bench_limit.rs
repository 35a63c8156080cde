//! `signet bench --floor`: signet against the limit measured in the same
//! run, so every figure is a ratio that holds on any machine.
//!
//! One invocation, one round, in this order, with the same concurrency,
//! connections, message size, warm-up and duration for both loads:
//!
//! 1. a probe call to signet, for the signature's length and algorithm;
//! 2. the load against the floor ([`super::bench_floor`]: a bare tonic
//!    server of the same service, in a process of its own, answering as
//!    many bytes), its server CPU read from its pid; then it is stopped;
//! 3. the load against signet (`--server-pid` for its server CPU);
//! 4. the signing cost: a fresh in-memory key of the same algorithm
//!    signing in-process on one thread ([`super::bench_local`]).
//!
//! The limit is the rate at which the floor's round trip (client and
//! server CPU per call) plus the signing cost fill every CPU:
//! `CPUs / (floor server + floor client + signing CPU per call)`.
//! signet's share is its rate over that limit; its overhead is its server
//! CPU per call minus the signing cost, compared with the floor's server
//! CPU per call.

use std::time::Duration;

use serde_json::{json, Value};

use super::bench::{check_server_pid, load, sign_request, BenchArgs, Target};
use super::bench_cipher::BenchRpc;
use super::bench_floor::FloorProcess;
use super::bench_report::Report;
use super::client::{algorithm_name, bearer, Bearer, CliError, CliResult};
use super::Global;
use crate::api::pb;
use crate::keys::Algorithm;

/// Issue #2: `Sign` at 64 in flight reaches at least this share of the
/// limit, in percent.
pub(crate) const TARGET_SHARE_PERCENT: f64 = 90.0;

/// Issue 18: signet's server CPU per call, minus the signature, is at
/// most this many times the floor's.
pub(crate) const TARGET_OVERHEAD_RATIO: f64 = 1.15;

/// The in-process signing run is at most this long (after at most 1 s of
/// warm-up): one thread on a fresh key needs no more for a steady figure.
const SIGNING_WINDOW: Duration = Duration::from_secs(3);

/// Everything one `--floor` invocation measured.
#[derive(Debug)]
pub(crate) struct LimitRun {
    /// CPUs available to this process.
    pub cpus: usize,
    /// The load against the bare tonic server.
    pub floor: Report,
    /// The bare tonic server's process id (stopped by now).
    pub floor_pid: u32,
    /// The load against signet.
    pub signet: Report,
    /// The in-process signing cost of the same algorithm.
    pub signing: Report,
}

/// Runs the floor, then signet, then the signing cost.
pub(crate) async fn run(global: &Global, a: BenchArgs) -> CliResult<LimitRun> {
    check_server_pid(a.server_pid)?;
    let mut signet = Target::connect(global, &a, bearer(global)?, sign_request(&a)).await?;
    // The floor's request: for a cipher call, a message as long as the
    // call's payload (and below, an answer as long as its answer).
    let mut floor_request = signet.request.clone();
    let answer = if a.rpc == BenchRpc::Sign {
        signet.probe().await?.ok_or_else(|| {
            CliError::rpc(
                "--floor: the probe call to signet failed, and the floor needs its answer",
            )
        })?
    } else {
        let shape = signet.prepare_cipher(a.rpc).await?;
        floor_request.input = Some(pb::sign_request::Input::Message(vec![0x5a; shape.request]));
        pb::SignResponse {
            signature: vec![0; shape.answer],
            version: shape.version,
            key_version_id: shape.key_version_id,
            algorithm: pb::Algorithm::Aes256Gcm as i32,
        }
    };
    let alg = crate::api::convert::algorithm(answer.algorithm)
        .map_err(|e| CliError::rpc(format!("--floor: signet answered {e}")))?;
    let alg_name = algorithm_name(answer.algorithm);

    let mut floor = tokio::task::spawn_blocking(move || FloorProcess::spawn(&answer))
        .await
        .map_err(|e| CliError::usage(format!("bench floor start-up failed: {e}")))??;
    let floor_pid = floor.pid();
    eprintln!(
        "signet: bench --floor: the floor (bare tonic, pid {floor_pid}, {}) first, then signet, \
         then {alg_name} signing in-process",
        floor.endpoint()
    );
    // Plaintext on loopback and no token: a bare call.
    let floor_global = Global {
        endpoint: floor.endpoint(),
        json: global.json,
        token_file: None,
        ca_file: None,
        cert_file: None,
        key_file: None,
    };
    let floor_target = Target::connect(&floor_global, &a, Bearer::default(), floor_request).await?;
    let mut floor_report = load(&floor_target, &a, Some(floor_pid), Some(alg_name.clone())).await;
    floor_report.mode = "floor";
    drop(floor_target);
    floor.stop();

    let signet_report = load(&signet, &a, a.server_pid, Some(alg_name)).await;
    drop(signet);

    let args = signing_args(&a, alg);
    let signing = tokio::task::spawn_blocking(move || super::bench_local::run(args))
        .await
        .map_err(|e| CliError::usage(format!("bench thread failed: {e}")))??;
    Ok(LimitRun {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        floor: floor_report,
        floor_pid,
        signet: signet_report,
        signing,
    })
}

/// The in-process run that measures the signing cost: one thread, a fresh
/// in-memory key of `alg`, the same message size, a short window.
fn signing_args(a: &BenchArgs, alg: Algorithm) -> BenchArgs {
    BenchArgs {
        key: Some("in-process".into()),
        concurrency: 1,
        duration: a.duration.min(SIGNING_WINDOW),
        connections: 1,
        message_size: a.message_size,
        warmup: a.warmup.min(Duration::from_secs(1)),
        in_process: true,
        algorithm: Some(alg),
        backend_config: None,
        raw: false,
        server_pid: None,
        client_threads: 1,
        floor: false,
        batch: None,
        rpc: a.rpc,
    }
}

/// The limit and signet's place against it. Figures are per call, in CPU
/// microseconds; `None` where a part was not measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Limit {
    /// CPUs the limit fills.
    pub cpus: usize,
    /// The floor's rate, requests/s.
    pub floor_rate: f64,
    /// The floor server's CPU per call.
    pub floor_server: Option<f64>,
    /// The load generator's CPU per call against the floor.
    pub floor_client: Option<f64>,
    /// CPU per signature, in-process.
    pub signing: Option<f64>,
    /// CPUs / (floor server + floor client + signing), requests/s.
    pub limit: Option<f64>,
    /// signet's rate, requests/s.
    pub signet_rate: f64,
    /// signet's rate over the limit, in percent.
    pub share: Option<f64>,
    /// signet's server CPU per call (with `--server-pid`).
    pub signet_server: Option<f64>,
    /// signet's server CPU per call minus the signing cost.
    pub overhead: Option<f64>,
    /// `overhead` over the floor's server CPU per call.
    pub ratio: Option<f64>,
}

impl Limit {
    /// The arithmetic, from the measured parts.
    pub(crate) fn new(
        cpus: usize,
        floor_rate: f64,
        floor_server: Option<f64>,
        floor_client: Option<f64>,
        signing: Option<f64>,
        signet_rate: f64,
        signet_server: Option<f64>,
    ) -> Self {
        let per_call = match (floor_server, floor_client, signing) {
            (Some(s), Some(c), Some(g)) if s + c + g > 0.0 => Some(s + c + g),
            _ => None,
        };
        let limit = per_call.map(|p| cpus as f64 * 1e6 / p);
        let overhead = signet_server.zip(signing).map(|(s, g)| s - g);
        Limit {
            cpus,
            floor_rate,
            floor_server,
            floor_client,
            signing,
            limit,
            signet_rate,
            share: limit.map(|l| signet_rate / l * 100.0),
            signet_server,
            overhead,
            ratio: overhead
                .zip(floor_server)
                .and_then(|(o, f)| (f > 0.0).then(|| o / f)),
        }
    }
}

impl LimitRun {
    /// The limit, from this run's reports.
    pub(crate) fn limit(&self) -> Limit {
        Limit::new(
            self.cpus,
            self.floor.rate(),
            self.floor.server_cpu_per_op(),
            self.floor.client_cpu_per_op(),
            self.signing.client_cpu_per_op(),
            self.signet.rate(),
            self.signet.server_cpu_per_op(),
        )
    }

    /// Fails unless every part of the run had successes.
    pub(crate) fn check(&self) -> CliResult {
        for (what, r) in [
            ("to the floor", &self.floor),
            ("to signet", &self.signet),
            ("in-process signature", &self.signing),
        ] {
            if r.outcome.ok == 0 {
                return Err(CliError::rpc(format!(
                    "no {what} succeeded in the measured window"
                )));
            }
        }
        Ok(())
    }

    /// signet's report, then the floor's and the signing run's, then the
    /// limit.
    pub(crate) fn text(&self) -> String {
        let mut out = self.signet.text();
        out.push_str(&format!(
            "\nfloor (bare tonic Signer, pid {}, measured before signet):\n",
            self.floor_pid
        ));
        out.push_str(&self.floor.text());
        out.push_str("\nsigning (in-process, 1 thread, after signet):\n");
        out.push_str(&self.signing.text());
        out.push_str("\nagainst the limit:\n");
        out.push_str(&limit_text(&self.limit()));
        out
    }

    /// signet's report (the fields of a plain run), with `floor`, `signing`
    /// and `limit` objects.
    pub(crate) fn json(&self) -> Value {
        let mut v = self.signet.json();
        let mut floor = self.floor.json();
        floor["server_pid"] = json!(self.floor_pid);
        v["floor"] = floor;
        v["signing"] = self.signing.json();
        v["limit"] = limit_json(&self.limit());
        v["order"] = json!(["floor", "signet", "signing"]);
        v
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.1} µs"))
}

/// The limit for people.
pub(crate) fn limit_text(l: &Limit) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{:<13}{v}\n", format!("{k}:")));
    line("CPUs", l.cpus.to_string());
    line(
        "floor",
        format!(
            "{:.0} requests/s; CPU per request: server {}, client {}",
            l.floor_rate,
            us(l.floor_server),
            us(l.floor_client)
        ),
    );
    line("signing", format!("{} CPU per signature", us(l.signing)));
    line(
        "limit",
        match l.limit {
            Some(v) => format!(
                "{} / ({} + {} + {}) = {v:.0} requests/s",
                l.cpus,
                us(l.floor_server),
                us(l.floor_client),
                us(l.signing)
            ),
            None => "n/a".into(),
        },
    );
    line(
        "share",
        match l.share {
            Some(s) => format!(
                "{:.0} requests/s = {s:.1} % of the limit (target: at least {TARGET_SHARE_PERCENT:.0} %)",
                l.signet_rate
            ),
            None => "n/a".into(),
        },
    );
    line(
        "overhead",
        match (l.overhead, l.ratio) {
            (Some(o), Some(r)) => format!(
                "server {} − signing {} = {o:.1} µs per request, {r:.2}× the floor's {} \
                 (target: at most {TARGET_OVERHEAD_RATIO:.2}×)",
                us(l.signet_server),
                us(l.signing),
                us(l.floor_server)
            ),
            _ => "n/a (needs --server-pid)".into(),
        },
    );
    out
}

/// The limit as JSON: every part, the result, and the targets.
pub(crate) fn limit_json(l: &Limit) -> Value {
    json!({
        "cpus": l.cpus,
        "floor_requests_per_second": l.floor_rate,
        "floor_server_cpu_us_per_request": l.floor_server,
        "floor_client_cpu_us_per_request": l.floor_client,
        "signing_cpu_us_per_op": l.signing,
        "limit_requests_per_second": l.limit,
        "signet_requests_per_second": l.signet_rate,
        "share_percent": l.share,
        "signet_server_cpu_us_per_request": l.signet_server,
        "signet_overhead_cpu_us_per_request": l.overhead,
        "overhead_ratio": l.ratio,
        "target_share_percent": TARGET_SHARE_PERCENT,
        "target_overhead_ratio": TARGET_OVERHEAD_RATIO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part measured: 2 CPUs, the floor at 30,000/s with 20 + 15 µs
    /// per call (server + client), signing 5 µs, signet at 40,000/s with
    /// 30 µs of server CPU.
    fn measured() -> Limit {
        Limit::new(
            2,
            30_000.0,
            Some(20.0),
            Some(15.0),
            Some(5.0),
            40_000.0,
            Some(30.0),
        )
    }

    #[test]
    fn arithmetic() {
        let l = measured();
        assert_eq!(l.limit, Some(50_000.0));
        assert_eq!(l.share, Some(80.0));
        assert_eq!(l.overhead, Some(25.0));
        assert_eq!(l.ratio, Some(1.25));
    }

    #[test]
    fn missing_parts_give_no_figure() {
        let l = Limit::new(
            2,
            30_000.0,
            Some(20.0),
            Some(15.0),
            Some(5.0),
            40_000.0,
            None,
        );
        assert_eq!(l.limit, Some(50_000.0));
        assert_eq!((l.overhead, l.ratio), (None, None));
        assert!(limit_text(&l).contains("overhead:    n/a (needs --server-pid)\n"));
        let l = Limit::new(2, 0.0, None, Some(15.0), Some(5.0), 40_000.0, Some(30.0));
        assert_eq!((l.limit, l.share, l.ratio), (None, None, None));
        assert_eq!(l.overhead, Some(25.0));
        let j = limit_json(&l);
        assert!(j["limit_requests_per_second"].is_null());
        // Nothing measured at all: no division by zero.
        let l = Limit::new(2, 0.0, Some(0.0), Some(0.0), Some(0.0), 0.0, Some(0.0));
        assert_eq!((l.limit, l.ratio), (None, None));
    }

    #[test]
    fn text_and_json() {
        let l = measured();
        let t = limit_text(&l);
        assert!(
            t.contains("limit:       2 / (20.0 µs + 15.0 µs + 5.0 µs) = 50000 requests/s\n"),
            "{t}"
        );
        assert!(t.contains("= 80.0 % of the limit"), "{t}");
        assert!(
            t.contains("= 25.0 µs per request, 1.25× the floor's 20.0 µs"),
            "{t}"
        );
        let j = limit_json(&l);
        assert_eq!(j["share_percent"], 80.0);
        assert_eq!(j["overhead_ratio"], 1.25);
        assert_eq!(j["cpus"], 2);
    }
}
