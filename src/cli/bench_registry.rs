//! `signet bench-registry`: how fast admin changes are, and how soon
//! another replica serves them, between two servers that share a registry
//! (PostgreSQL, or a token).
//!
//! * Propagation: a change returns on `--endpoint`, and the clock runs
//!   until `--other` first answers with the new state (polled back to
//!   back). State changes (DisableKeyVersion / EnableKeyVersion, no HSM
//!   work) and rotations (RotateKey with promote: the other replica must
//!   also open the new version on the HSM before it signs with it).
//! * Admin throughput: `--concurrency` callers, each on a key of its own,
//!   spread over both servers, toggling a version's state for
//!   `--duration`.

use std::time::{Duration, Instant};

use clap::Args;
use tokio::task::JoinSet;

use super::client::{connect, parse_duration, print_json, CliError, CliResult, Conn};
use super::Global;
use crate::api::pb;
use crate::api::pb::key_admin_client::KeyAdminClient;
use crate::api::pb::signer_client::SignerClient;

/// `signet bench-registry`.
#[derive(Debug, Args)]
pub(crate) struct BenchRegistryArgs {
    /// The second server (the first is --endpoint).
    #[arg(long)]
    pub other: String,
    /// Prefix of the keys the bench creates (Ed25519) and changes.
    #[arg(long, default_value = "bench-registry")]
    pub key: String,
    /// State changes timed for propagation (rotations: a quarter as many).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rounds: u32,
    /// Callers for the admin throughput run.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// How long the admin throughput run lasts.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

type Admin = KeyAdminClient<Conn>;

async fn clients(g: &Global, other: &str) -> CliResult<(Admin, Admin, SignerClient<Conn>)> {
    let a = KeyAdminClient::new(connect(g).await?);
    let mut g2 = g.clone();
    g2.endpoint = other.to_string();
    let conn = connect(&g2).await?;
    Ok((
        a,
        KeyAdminClient::new(conn.clone()),
        SignerClient::new(conn),
    ))
}

fn failed(what: &str, s: tonic::Status) -> CliError {
    CliError::rpc(format!("{what}: {} {}", s.code(), s.message()))
}

/// A fresh Ed25519 key with v2 ACTIVE and v1 RETIRING (one hour).
async fn prepare(a: &mut Admin, name: &str) -> CliResult<()> {
    a.create_key(pb::CreateKeyRequest {
        name: name.into(),
        algorithm: pb::Algorithm::Ed25519 as i32,
        ..Default::default()
    })
    .await
    .map_err(|s| failed("CreateKey", s))?;
    a.rotate_key(pb::RotateKeyRequest {
        name: name.into(),
        promote: true,
        grace_period: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
    })
    .await
    .map_err(|s| failed("RotateKey", s))?;
    Ok(())
}

/// The state of version `v` of the key an admin call answered with.
fn state_of(k: Option<&pb::Key>, v: u32) -> i32 {
    k.and_then(|k| k.versions.iter().find(|x| x.version == v))
        .map_or(0, |x| x.state)
}

/// True when the key an admin call answered with has `v` ACTIVE.
fn active_is(k: Option<&pb::Key>, v: u32) -> bool {
    k.is_some_and(|k| k.active_version == v)
}

/// Disables v1 when it verifies, enables it when disabled; the new state.
async fn toggle(a: &mut Admin, name: &str, disabled: bool) -> Result<i32, tonic::Status> {
    let k = if disabled {
        a.enable_key_version(pb::EnableKeyVersionRequest {
            name: name.into(),
            version: 1,
            grace_period: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        })
        .await?
        .into_inner()
        .key
    } else {
        a.disable_key_version(pb::DisableKeyVersionRequest {
            name: name.into(),
            version: 1,
        })
        .await?
        .into_inner()
        .key
    };
    Ok(state_of(k.as_ref(), 1))
}

/// Polls `until` back to back for at most 10 s; the time it took.
async fn wait_for<F, Fut>(start: Instant, mut until: F) -> CliResult<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !until().await {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(CliError::rpc(
                "the other server did not see a change within 10 s",
            ));
        }
    }
    Ok(start.elapsed())
}

fn percentiles(mut d: Vec<Duration>) -> serde_json::Value {
    d.sort();
    let at = |q: f64| {
        let i = ((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1;
        d[i].as_secs_f64() * 1000.0
    };
    serde_json::json!({
        "n": d.len(), "p50_ms": at(0.50), "p90_ms": at(0.90),
        "p99_ms": at(0.99), "max_ms": at(1.0),
    })
}

pub(crate) async fn run(g: &Global, a: BenchRegistryArgs) -> CliResult {
    let (mut admin, other, signer) = clients(g, &a.other).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{}-{}", a.key, &run_id[..8]);
    prepare(&mut admin, &name).await?;
    wait_for(Instant::now(), || {
        let (mut o, n) = (other.clone(), name.clone());
        async move {
            o.get_key(pb::GetKeyRequest { name: n })
                .await
                .is_ok_and(|k| active_is(k.into_inner().key.as_ref(), 2))
        }
    })
    .await?;

    // Propagation of state changes.
    let mut states = Vec::new();
    let mut disabled = false;
    for _ in 0..a.rounds {
        let want = toggle(&mut admin, &name, disabled)
            .await
            .map_err(|s| failed("state change", s))?;
        disabled = !disabled;
        let t0 = Instant::now();
        states.push(
            wait_for(t0, || {
                let (mut o, n) = (other.clone(), name.clone());
                async move {
                    o.get_key(pb::GetKeyRequest { name: n })
                        .await
                        .is_ok_and(|k| state_of(k.into_inner().key.as_ref(), 1) == want)
                }
            })
            .await?,
        );
    }
    // Propagation of rotations: the other server signs with the new version.
    let mut rotations = Vec::new();
    for _ in 0..a.rounds.div_ceil(4) {
        let k = admin
            .rotate_key(pb::RotateKeyRequest {
                name: name.clone(),
                promote: true,
                grace_period: Some(prost_types::Duration {
                    seconds: 3600,
                    nanos: 0,
                }),
            })
            .await
            .map_err(|s| failed("RotateKey", s))?
            .into_inner();
        let want = format!("{name}:v{}", k.key.map_or(0, |k| k.active_version));
        let t0 = Instant::now();
        rotations.push(
            wait_for(t0, || {
                let (n, w, mut s) = (name.clone(), want.clone(), signer.clone());
                async move {
                    s.sign(pb::SignRequest {
                        key: n,
                        input: Some(pb::sign_request::Input::Message(b"probe".to_vec())),
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().key_version_id == w)
                }
            })
            .await?,
        );
    }

    // Admin throughput: callers on keys of their own, over both servers.
    let mut keys = Vec::new();
    for i in 0..a.concurrency {
        let k = format!("{name}-t{i}");
        prepare(&mut admin, &k).await?;
        keys.push(k);
    }
    // Both servers must see every key before the run: a caller on the
    // other one would otherwise be refused until it does.
    for k in &keys {
        wait_for(Instant::now(), || {
            let (mut o, n) = (other.clone(), k.clone());
            async move {
                o.get_key(pb::GetKeyRequest { name: n })
                    .await
                    .is_ok_and(|k| active_is(k.into_inner().key.as_ref(), 2))
            }
        })
        .await?;
    }
    let end = Instant::now() + a.duration;
    let mut tasks = JoinSet::new();
    for (i, k) in keys.into_iter().enumerate() {
        let mut c = if i % 2 == 0 {
            admin.clone()
        } else {
            other.clone()
        };
        tasks.spawn(async move {
            let (mut lat, mut errors, mut disabled) = (Vec::new(), 0u64, false);
            while Instant::now() < end {
                let t = Instant::now();
                match toggle(&mut c, &k, disabled).await {
                    Ok(_) => {
                        lat.push(t.elapsed());
                        disabled = !disabled;
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        let (l, e) = r.map_err(|e| CliError::rpc(format!("a caller failed: {e}")))?;
        lat.extend(l);
        errors += e;
    }
    let ops = lat.len() as f64 / a.duration.as_secs_f64();
    let report = serde_json::json!({
        "propagation_state_change": percentiles(states),
        "propagation_rotation": percentiles(rotations),
        "admin": {
            "callers": a.concurrency,
            "ops_per_second": ops,
            "errors": errors,
            "latency": percentiles(lat),
        },
    });
    if g.json {
        return print_json(&report);
    }
    let line = |what: &str, v: &serde_json::Value| {
        println!(
            "{what}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
            v["n"],
            v["p50_ms"].as_f64().unwrap_or(0.0),
            v["p90_ms"].as_f64().unwrap_or(0.0),
            v["p99_ms"].as_f64().unwrap_or(0.0),
            v["max_ms"].as_f64().unwrap_or(0.0)
        )
    };
    line(
        "propagation, state change",
        &report["propagation_state_change"],
    );
    line("propagation, rotation", &report["propagation_rotation"]);
    println!(
        "admin: {ops:.1} changes/s with {} callers, {errors} errors",
        a.concurrency
    );
    line("admin latency", &report["admin"]["latency"]);
    Ok(())
}
