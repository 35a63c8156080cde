#!/usr/bin/env bash
# Reproduces the shared-registry figures of docs/benchmarks.md, on one
# SoftHSM2 token and one PostgreSQL server of its own (fsync on, as in
# production), and prints them as Markdown tables:
#
#   * propagation (p50/p99) and admin changes per second between two
#     replicas, with the registry in PostgreSQL and, for comparison, on the
#     token (polled every keys.tick_interval, 1 s);
#   * Sign throughput with the registry in PostgreSQL and on the token;
#   * the replay stores side by side: memory, Redis, PostgreSQL.
#
#   scripts/bench-registry.sh [SECONDS]
#
# `bash scripts/bench.sh registry` runs it. SIGNET_BIN (default:
# ./target/release/signet, built when unset), SIGNET_BENCH_DIR and
# SIGNET_BENCH_KEEP: see scripts/bench-lib.sh. The replay stores are timed
# by `cargo bench --bench replay` (compiled on first use);
# SIGNET_REPLAY_BENCH=PATH runs an already built one instead (the
# executable `cargo bench --bench replay --no-run` names), and
# SIGNET_REPLAY_BENCH=skip leaves that table out.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
secs=${1:-10}
command -v softhsm2-util >/dev/null || bench_die "needs SoftHSM2 (apt-get install softhsm2)"
command -v redis-server >/dev/null || bench_die "needs redis-server (apt-get install redis-server)"
pgbin=$(find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || bench_die "needs PostgreSQL (apt-get install postgresql)"
pgbin=$(dirname "$pgbin")
replay=${SIGNET_REPLAY_BENCH:-cargo}
if [ "$replay" = cargo ] && ! command -v cargo >/dev/null; then
  bench_die "the replay stores need cargo (or SIGNET_REPLAY_BENCH=PATH, or =skip)"
fi
bench_init

# PostgreSQL runs as the postgres user when this runs as root, and cannot
# enter the work directory (mode 0700): its cluster lives in a directory of
# its own, its log is copied into the work directory at the end.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/signet-bench-pg.XXXXXX")
[ "$(id -u)" = 0 ] && chown postgres "$pgdir"
# shellcheck disable=SC2317 # run by bench_cleanup
stop_pg() {
  as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
  cp "$pgdir/log" "$work/postgres.log" 2>/dev/null || true
  rm -rf "$pgdir"
}
bench_exit_hooks+=(stop_pg)

softhsm/make-token.sh "$work/token" bench >/dev/null
export SOFTHSM2_CONF=$work/token/softhsm2.conf

pgport=$(free_port)
pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$pw" >"$pgdir/pw"
[ "$(id -u)" = 0 ] && chown postgres "$pgdir/pw"
as_pg "$pgbin/initdb" -D "$pgdir/data" -U signet --pwfile="$pgdir/pw" --auth-local=trust \
  --auth-host=scram-sha-256 -E UTF8 --locale=C >"$work/initdb.log" 2>&1
rm "$pgdir/pw"
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1" start >/dev/null
echo "postgres://signet:$pw@127.0.0.1:$pgport/postgres" >"$work/pg.url"
unset pw

write_cfg() { # NAME TOKEN_DIR STORE
  {
    server_section
    grep -v '^\[server\]\|^plaintext' "$2/signet.toml"
    audit_to_file "$1"
    if [ "$3" = postgres ]; then
      printf '[registry]\nstore = "postgres"\n[postgres]\nurl_file = "%s"\n' "$work/pg.url"
    fi
  } >"$work/$1.toml"
}

# replicas STORE: two replicas (one at a time: SoftHSM2 fails a process
# that opens the token while another one logs in); A and B their
# endpoints, pid_a and pid_b.
replicas() {
  serve "$1-a" "$work/$1-a.toml"
  A=$EP pid_a=$SP
  serve "$1-b" "$work/$1-b.toml"
  B=$EP pid_b=$SP
}

# sign_run STORE: Sign ECDSA P-256 on replica A while B runs.
sign_run() {
  "$bin" --endpoint "$A" keys create sign-ecdsa --algorithm ECDSA_P256_SHA256 >/dev/null
  bench_note "== registry: Sign ECDSA P-256, registry $1"
  bench "sign-$1" --endpoint "$A" --key sign-ecdsa --concurrency 64 --connections 4 \
    --duration "${secs}s" --server-pid "$pid_a"
}

write_cfg pg-a "$work/token" postgres
write_cfg pg-b "$work/token" postgres
replicas pg
bench_note "== registry: in PostgreSQL, two replicas: propagation and admin changes"
"$bin" --json --endpoint "$A" bench-registry --other "$B" --key pg --rounds 400 \
  --concurrency 4 --duration "${secs}s" >"$work/bench-registry-pg.json"
sign_run pg
bench_stop "$pid_a"
bench_stop "$pid_b"
bench_note "(versions the other replica could not open at once: $(cat "$work"/pg-?.log | grep -c 'cannot be opened' || true))"

# The registry on the token: a fresh token (the keys above are recorded in
# PostgreSQL only).
softhsm/make-token.sh "$work/token2" bench2 >/dev/null
export SOFTHSM2_CONF=$work/token2/softhsm2.conf
write_cfg token-a "$work/token2" token
write_cfg token-b "$work/token2" token
replicas token
bench_note "== registry: on the token, two replicas (polled every 1 s)"
"$bin" --json --endpoint "$A" bench-registry --other "$B" --key tok --rounds 40 \
  --concurrency 4 --duration "${secs}s" >"$work/bench-registry-token.json" ||
  bench_note "bench-registry on the token failed (its report: $work/bench-registry-token.json)"
sign_run token
bench_stop "$pid_a"
bench_stop "$pid_b"

if [ "$replay" != skip ]; then
  redis_port=$(free_port)
  bench_spawn redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no
  for _ in $(seq 50); do
    # Without redis-cli: the 5 s this loop lasts.
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  for tasks in 1 16; do
    bench_note "== registry: replay stores, $tasks concurrent insert(s)"
    if [ "$replay" = cargo ]; then
      SIGNET_BENCH_REDIS_URL=redis://127.0.0.1:$redis_port SIGNET_BENCH_PG_URL_FILE=$work/pg.url \
        cargo bench --locked -q --bench replay -- "$secs" "$tasks" >"$work/replay-$tasks.txt"
    else
      SIGNET_BENCH_REDIS_URL=redis://127.0.0.1:$redis_port SIGNET_BENCH_PG_URL_FILE=$work/pg.url \
        "$replay" --bench "$secs" "$tasks" >"$work/replay-$tasks.txt"
    fi
  done
fi

tables registry "$work"
[ "$bench_own_work" = 1 ] && bench_check_outputs "$work"
exit 0
