#!/usr/bin/env bash
# Reproduces the shared-registry figures of docs/benchmarks.md, on one
# SoftHSM2 token and one PostgreSQL server of its own (fsync on, as in
# production):
#
#   * propagation (p50/p99) and admin changes per second between two
#     replicas, with the registry in PostgreSQL and, for comparison, on the
#     token (polled every keys.tick_interval, 1 s);
#   * Sign throughput with the registry in PostgreSQL and on the token;
#   * the replay stores side by side: memory, Redis, PostgreSQL.
#
#   scripts/bench-registry.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --locked -q
bin=$PWD/target/release/signet
work=$(mktemp -d)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  kill $(jobs -p) $(cat "$work/pids" 2>/dev/null) 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

softhsm/make-token.sh "$work/token" bench >/dev/null
export SOFTHSM2_CONF=$work/token/softhsm2.conf

mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$pw" > "$work/pw"
chmod 644 "$work/pw"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U signet --pwfile="$work/pw" --auth-local=trust \
  --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
rm "$work/pw"
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p 55432 -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
umask 077
echo "postgres://signet:$pw@127.0.0.1:55432/postgres" > "$work/pg.url"

base=$(grep -v '^\[server\]\|^plaintext' "$work/token/signet.toml")
write_cfg() { # NAME PORT STORE
  {
    printf '[server]\nlisten = "127.0.0.1:%s"\nplaintext = true\n' "$2"
    echo "$base"
    printf '[audit]\noutput = "off"\n'
    if [ "$3" = postgres ]; then
      printf '[registry]\nstore = "postgres"\n[postgres]\nurl_file = "%s"\n' "$work/pg.url"
    fi
  } > "$work/$1.toml"
}
start() { # NAME -> pid
  $bin serve --config "$work/$1.toml" >"$work/$1.out" 2>"$work/$1.log" &
  echo $! | tee -a "$work/pids"
}
wait_up() { for _ in $(seq 100); do $bin --endpoint "$1" keys list >/dev/null 2>&1 && return; sleep 0.1; done; echo "server $1 did not start" >&2; exit 1; }

write_cfg pg-a 50091 postgres; write_cfg pg-b 50092 postgres
# One at a time: SoftHSM2 fails a process that opens the token while
# another one logs in.
a=$(start pg-a); wait_up http://127.0.0.1:50091
b=$(start pg-b); wait_up http://127.0.0.1:50092
echo "== registry in PostgreSQL: two replicas"
$bin --endpoint http://127.0.0.1:50091 bench-registry --other http://127.0.0.1:50092 \
  --key pg --rounds 400 --concurrency 4 --duration ${secs}s
$bin --endpoint http://127.0.0.1:50091 keys create sign-ecdsa --algorithm ECDSA_P256_SHA256 >/dev/null
summary() { grep -E '^(throughput|latency|server CPU)' ; }
echo "== Sign ECDSA P-256, registry in PostgreSQL"
$bin bench --endpoint http://127.0.0.1:50091 --key sign-ecdsa --concurrency 64 \
  --duration ${secs}s --server-pid "$a" | summary
kill "$a" "$b"; wait "$a" "$b" 2>/dev/null || true
echo "(versions the other replica could not open at once: $(cat "$work"/pg-?.log | grep -c 'cannot be opened' || true))"

# The same token, its registry on the token (a fresh token: the keys above
# are recorded in PostgreSQL only).
softhsm/make-token.sh "$work/token2" bench2 >/dev/null
export SOFTHSM2_CONF=$work/token2/softhsm2.conf
base=$(grep -v '^\[server\]\|^plaintext' "$work/token2/signet.toml")
write_cfg tok-a 50093 token; write_cfg tok-b 50094 token
a=$(start tok-a); wait_up http://127.0.0.1:50093
b=$(start tok-b); wait_up http://127.0.0.1:50094
echo "== registry on the token: two replicas (polled every 1 s)"
$bin --endpoint http://127.0.0.1:50093 bench-registry --other http://127.0.0.1:50094 \
  --key tok --rounds 40 --concurrency 4 --duration ${secs}s || true
$bin --endpoint http://127.0.0.1:50093 keys create sign-ecdsa --algorithm ECDSA_P256_SHA256 >/dev/null
echo "== Sign ECDSA P-256, registry on the token"
$bin bench --endpoint http://127.0.0.1:50093 --key sign-ecdsa --concurrency 64 \
  --duration ${secs}s --server-pid "$a" | summary
kill "$a" "$b"; wait "$a" "$b" 2>/dev/null || true

echo "== replay stores, 1 and 16 concurrent inserts"
redis-server --bind 127.0.0.1 --port 56390 --save '' --appendonly no >/dev/null &
sleep 0.5
for tasks in 1 16; do
  SIGNET_BENCH_REDIS_URL=redis://127.0.0.1:56390 SIGNET_BENCH_PG_URL_FILE=$work/pg.url \
    cargo bench --locked -q --bench replay -- "$secs" "$tasks"
done
