//! The replay stores side by side: in memory, Redis and PostgreSQL, the
//! same load (concurrent inserts of fresh 24-byte nonces, as webhook
//! verification makes), throughput and latency.
//!
//!     SIGNET_BENCH_REDIS_URL=redis://127.0.0.1:6390 \
//!     SIGNET_BENCH_PG_URL_FILE=/path/to/url \
//!     cargo bench --bench replay -- [SECONDS] [TASKS]
//!
//! `scripts/bench-registry.sh` starts both servers and runs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use signet::config::PostgresConfig;
use signet::httpsig::replay::{MemoryReplayStore, RedisReplayStore, ReplayStore};
use signet::postgres::replay::PgReplayStore;
use signet::postgres::Database;

async fn measure(store: Arc<dyn ReplayStore>, run: Duration, tasks: usize) {
    let end = Instant::now() + run;
    // Nonces differ from run to run: a store may still hold the last run's.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let s = store.clone();
        set.spawn(async move {
            let (mut lat, mut n) = (Vec::new(), 0u64);
            while Instant::now() < end {
                let mut nonce = [0u8; 24];
                nonce[..8].copy_from_slice(&run_id.to_be_bytes());
                nonce[8..16].copy_from_slice(&(t as u64).to_be_bytes());
                nonce[16..].copy_from_slice(&n.to_be_bytes());
                n += 1;
                let t0 = Instant::now();
                let fresh = s
                    .insert("bench", &nonce, Duration::from_secs(300))
                    .await
                    .expect("insert");
                assert!(fresh, "every nonce is new");
                lat.push(t0.elapsed());
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(l) = set.join_next().await {
        lat.extend(l.unwrap());
    }
    if lat.is_empty() {
        return;
    }
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "{:<9} {tasks} tasks: {:>9.0} inserts/s  p50 {:.3} ms  p99 {:.3} ms",
        store.kind(),
        lat.len() as f64 / run.as_secs_f64(),
        q(0.50),
        q(0.99)
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` runs this too, without `--bench`: a quick
    // check that it works, no figures.
    if !all.iter().any(|a| a == "--bench") {
        measure(
            Arc::new(MemoryReplayStore::new(1_000_000)),
            Duration::from_millis(100),
            2,
        )
        .await;
        return;
    }
    let args: Vec<&String> = all.iter().filter(|a| *a != "--bench").collect();
    let secs = Duration::from_secs(args.first().and_then(|s| s.parse().ok()).unwrap_or(5));
    let tasks = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(16);
    // The memory store holds every entry until it expires: 2 s of inserts
    // fit in its capacity, a longer run would fill it.
    let short = secs.min(Duration::from_secs(2));
    measure(Arc::new(MemoryReplayStore::new(10_000_000)), short, tasks).await;
    if let Ok(url) = std::env::var("SIGNET_BENCH_REDIS_URL") {
        let redis = RedisReplayStore::connect(&url).await.expect("Redis");
        measure(Arc::new(redis), secs, tasks).await;
    }
    if let Ok(file) = std::env::var("SIGNET_BENCH_PG_URL_FILE") {
        let cfg: PostgresConfig = toml::from_str(&format!(
            "url_file = {file:?}\nschema = \"bench_replay\"\npool_size = {tasks}\n"
        ))
        .expect("config");
        let db = Database::open(&cfg).await.expect("PostgreSQL");
        measure(PgReplayStore::new(db), secs, tasks).await;
    }
}
