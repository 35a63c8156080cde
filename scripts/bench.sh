#!/usr/bin/env bash
# Reproduces the tables of docs/benchmarks.md that the current tree can
# measure, and prints each one in Markdown with the columns of the doc's
# table, ready to paste.
#
#   bash scripts/bench.sh [--keep] [SECONDS] [SECTION...]
#   bash scripts/bench.sh --list
#
# SECONDS is the measured window of each run (default 8, as in the doc;
# in-process runs take at most 5); each run has a 1 s warm-up before it.
# With no SECTION, every section runs, in the order --list shows (about
# 10 minutes on 2 cores at the default, plus building what is not built).
#
# Environment:
#   SIGNET_BIN           the signet binary (default ./target/release/signet,
#                        built with `cargo build --release --locked` when
#                        this is unset)
#   SIGNET_BENCH_KEEP=1  keep the work directory (as --keep does): every
#                        server's config, log and audit trail, and the JSON
#                        report of every run. Kept anyway when a run fails.
#   SIGNET_BENCH_ROUNDS  rounds of the A/B sections (security, telemetry),
#                        servers alternating run by run (default 1)
#   SIGNET_BENCH_PYTHON  a Python with grpcio, for the telemetry section's
#                        OTLP sink (default: .venv/bin/python, which
#                        tests/python/run.sh makes, else python3)
#   SIGNET_REPLAY_BENCH  for the registry section: see scripts/bench-registry.sh
#
# Exit status: 0; 1 when a section failed (the others still run, and the
# work directory is kept); 2 for a usage error; 3 when a section was
# skipped for want of a prerequisite (it says which).
#
# Every server gets a config file with its audit trail in a file
# ([audit] output = "file"; only the servers measured with the trail off
# have output = "off") and its log in a file of the work directory; nothing
# a server writes reaches this script's output. Servers listen on port 0
# of 127.0.0.1, plaintext (no TLS in any figure), and are stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"

sections=(grpc batch cipher keys security telemetry pkcs11 registry)
describe() {
  case $1 in
    grpc) echo "Sign per demo key over gRPC (1 KiB messages, 64 in flight, 4 connections) with today's defaults (a token identity with a sign grant, audit trail to a file), the same with the security layer off, RSA at 2 in flight, in-process signing, and each key's share of the limit that a bare tonic server measured in the same run (signet bench --floor) sets (\"Results\", \"Against the target\")" ;;
    batch) echo "SignBatch of 1000 items (100 for RSA) per demo key, 1 KiB messages, 4 in flight over 2 connections, today's defaults, each against a floor serving SignBatch; per-call Sign HMAC for the 10x target, in-process signing on 2 threads for the 70 % target (\"Batches\")" ;;
    cipher) echo "CipherService Encrypt, Decrypt (1 KiB plaintexts) and GenerateDataKey with an AES_256_GCM key, next to Sign HMAC, each a --floor run (the floor moves the same bytes each way), 64 in flight over 4 connections: the memory backend with today's defaults, then a SoftHSM2 token when softhsm2 is installed (\"Encryption\")" ;;
    keys) echo "10,000 HMAC keys (SIGNET_BENCH_KEYS) on the in-memory backend: resident memory per key, the registry's background CPU, Sign on one key among them against Sign before they existed, creating them and paging through them with ListKeys (\"Scale in keys\"; needs Python grpcio)" ;;
    security) echo "the cost of authentication, authorization and the audit trail: audit off / audit to a file / token auth, HMAC and ECDSA" ;;
    telemetry) echo "the cost of telemetry: metrics only / OTLP all sampled / OTLP 10 %, into a discarding OTLP sink (needs Python grpcio)" ;;
    pkcs11) echo "the PKCS#11 backend on SoftHSM2: over gRPC, the token alone, against the target (scripts/bench-pkcs11.sh; needs softhsm2)" ;;
    registry) echo "the key registry in PostgreSQL: propagation, admin changes, Sign, replay stores (scripts/bench-registry.sh; needs softhsm2, postgresql, redis-server)" ;;
  esac
}

# usage STATUS: the synopsis (on standard output for --help, else on
# standard error), then exit STATUS.
usage() {
  {
    echo "usage: bash scripts/bench.sh [--keep] [SECONDS] [SECTION...]"
    echo "       bash scripts/bench.sh --list"
    echo "sections: ${sections[*]} (--list says what each measures; the"
    echo "comment at the top of scripts/bench.sh lists the environment variables)"
  } >&"$(($1 == 0 ? 1 : 2))"
  exit "$1"
}

secs=8
chosen=()
while [ $# -gt 0 ]; do
  case $1 in
    --list)
      for s in "${sections[@]}"; do printf '%-10s %s\n' "$s" "$(describe "$s")"; done
      exit 0
      ;;
    --keep) export SIGNET_BENCH_KEEP=1 ;;
    -h | --help) usage 0 ;;
    -*) echo "bench.sh: unknown option $1" >&2; usage 2 ;;
    *)
      if [[ $1 =~ ^[1-9][0-9]*$ ]] && [ ${#chosen[@]} = 0 ]; then
        secs=$1
      elif [[ " ${sections[*]} " == *" $1 "* ]]; then
        chosen+=("$1")
      else
        echo "bench.sh: unknown section $1" >&2
        usage 2
      fi
      ;;
  esac
  shift
done
[ ${#chosen[@]} -gt 0 ] || chosen=("${sections[@]}")
rounds=${SIGNET_BENCH_ROUNDS:-1}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || bench_die "SIGNET_BENCH_ROUNDS must be a positive integer"
inproc_secs=$((secs < 5 ? secs : 5))
demo_keys=(demo-hmac demo-ecdsa demo-rsa demo-ed25519)

# A Python that can run scripts/otlp-sink.py.
sink_python() {
  local p
  for p in "${SIGNET_BENCH_PYTHON:-}" "$root/.venv/bin/python" python3; do
    [ -n "$p" ] && command -v "$p" >/dev/null && "$p" -c 'import grpc' 2>/dev/null &&
      { echo "$p"; return 0; }
  done
  return 1
}

# What SECTION needs that this machine lacks, or nothing.
missing() {
  case $1 in
    keys) sink_python >/dev/null || echo "a Python with grpcio (bash tests/python/run.sh makes .venv with it, or set SIGNET_BENCH_PYTHON)" ;;
    telemetry) sink_python >/dev/null || echo "a Python with grpcio (bash tests/python/run.sh makes .venv with it, or set SIGNET_BENCH_PYTHON)" ;;
    pkcs11) command -v softhsm2-util >/dev/null || echo "softhsm2" ;;
    registry)
      local m=()
      command -v softhsm2-util >/dev/null || m+=(softhsm2)
      compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || m+=(postgresql)
      command -v redis-server >/dev/null || m+=(redis-server)
      [ ${#m[@]} = 0 ] || echo "${m[*]}"
      ;;
  esac
}

bench_init
top=$work

# rpc OUT ENDPOINT PID KEY [ARGS...]: Sign for the window, server CPU
# from PID, 64 in flight over 4 connections unless RPC_SHAPE says
# otherwise ("CONCURRENCY CONNECTIONS").
rpc() {
  local out=$1 ep=$2 pid=$3 key=$4 shape
  shift 4
  read -r -a shape <<<"${RPC_SHAPE:-64 4}"
  bench "$out" --endpoint "$ep" --key "$key" --concurrency "${shape[0]}" \
    --connections "${shape[1]}" --duration "${secs}s" --server-pid "$pid" "$@"
}

section_grpc() {
  # 1 KiB messages, as issue 18 measures: the audit digest and the copies
  # of the message are part of the per-call cost.
  local k on_ep on_pid off_ep off_pid tok=(--token-file "$top/bench.token") msg=(--message-size 1024)
  memory_config on file token
  memory_config off off none
  serve on "$work/on.toml"
  on_ep=$EP on_pid=$SP
  serve off "$work/off.toml"
  off_ep=$EP off_pid=$SP
  for k in "${demo_keys[@]}"; do
    # --floor: the bare tonic floor first, then this server, then the
    # signing cost, in one run; its report is this server's plus the limit.
    bench_note "== grpc: $k, the floor, then security layer on (token identity, audit to a file)"
    rpc "on-$k" "$on_ep" "$on_pid" "$k" "${tok[@]}" "${msg[@]}" --floor
    bench_note "== grpc: $k, security layer off"
    rpc "off-$k" "$off_ep" "$off_pid" "$k" "${msg[@]}"
  done
  bench_note "== grpc: demo-rsa at 2 in flight over 2 connections, security layer on"
  RPC_SHAPE="2 2" rpc on-demo-rsa-c2 "$on_ep" "$on_pid" demo-rsa "${tok[@]}" "${msg[@]}"
  # The per-call target holds at 1 and 8 in flight too, and p99 at one in
  # flight against the floor's p99 plus the signature's.
  for k in "${demo_keys[@]}"; do
    bench_note "== grpc: $k at 1 in flight (1 connection), after the floor"
    RPC_SHAPE="1 1" rpc "c1-$k" "$on_ep" "$on_pid" "$k" "${tok[@]}" "${msg[@]}" --floor
    bench_note "== grpc: $k at 8 in flight (2 connections), after the floor"
    RPC_SHAPE="8 2" rpc "c8-$k" "$on_ep" "$on_pid" "$k" "${tok[@]}" "${msg[@]}" --floor
  done
  bench_stop "$on_pid"
  bench_stop "$off_pid"
  for k in "${demo_keys[@]}"; do
    bench_note "== grpc: $k in-process, no RPC, one thread per CPU"
    bench "inproc-$k" --in-process --key "$k" --concurrency "$(nproc)" "${msg[@]}" --duration "${inproc_secs}s"
  done
  tables grpc "$work"
}

# SignBatch per demo key (1 KiB messages, 4 calls in flight over 2
# connections), each run against the floor serving SignBatch, then Sign
# HMAC per call and in-process signing on 2 threads: the two baselines of
# the batch targets, measured in the same section.
section_batch() {
  local k n tok=(--token-file "$top/bench.token")
  memory_config on file token
  serve on "$work/on.toml"
  for k in "${demo_keys[@]}"; do
    n=1000
    [ "$k" = demo-rsa ] && n=100
    bench_note "== batch: $k, SignBatch of $n items, after the floor"
    RPC_SHAPE="4 2" rpc "batch-$k" "$EP" "$SP" "$k" "${tok[@]}" --floor --batch "$n" --message-size 1024
  done
  bench_note "== batch: demo-hmac, Sign per call (64 in flight, 4 connections)"
  rpc sign-demo-hmac "$EP" "$SP" demo-hmac "${tok[@]}" --message-size 1024
  bench_stop "$SP"
  for k in "${demo_keys[@]}"; do
    bench_note "== batch: $k in-process on 2 threads"
    bench "inproc2-$k" --in-process --key "$k" --concurrency 2 --message-size 1024 --duration "${inproc_secs}s"
  done
  tables batch "$work"
}

# CipherService next to Sign, each run against its own floor (a bare tonic
# call moving as many bytes in and out: `signet bench --rpc`): the memory
# backend with today's defaults (the bench token, its grants on the AES
# key, the trail to a file), then a SoftHSM2 token (no identities, as the
# pkcs11 section) when SoftHSM2 is installed.
section_cipher() {
  local r tok=(--token-file "$top/bench.token") msg=(--message-size 1024)
  memory_config cipher file token
  printf '[[auth.identities.grants]]\noperations = ["encrypt", "decrypt", "generate_data_key", "admin.create"]\nkeys = ["bench-aes"]\n' \
    >>"$work/cipher.toml"
  serve cipher "$work/cipher.toml"
  "$bin" --endpoint "$EP" "${tok[@]}" keys create bench-aes --algorithm AES_256_GCM >/dev/null
  bench_note "== cipher: Sign demo-hmac on the memory backend, after the floor"
  rpc mem-sign "$EP" "$SP" demo-hmac "${tok[@]}" "${msg[@]}" --floor
  for r in encrypt decrypt data-key; do
    bench_note "== cipher: $r with bench-aes on the memory backend, after the floor"
    rpc "mem-$r" "$EP" "$SP" bench-aes "${tok[@]}" "${msg[@]}" --floor --rpc "$r"
  done
  bench_stop "$SP"
  if command -v softhsm2-util >/dev/null; then
    token_config bench-cipher hsm-cipher
    serve hsm-cipher "$work/hsm-cipher.toml"
    "$bin" --endpoint "$EP" keys create bench-aes --algorithm AES_256_GCM >/dev/null
    "$bin" --endpoint "$EP" keys create bench-hmac --algorithm HMAC_SHA256 >/dev/null
    bench_note "== cipher: Sign bench-hmac on SoftHSM2, after the floor"
    rpc hsm-sign "$EP" "$SP" bench-hmac "${msg[@]}" --floor
    for r in encrypt decrypt data-key; do
      bench_note "== cipher: $r with bench-aes on SoftHSM2, after the floor"
      rpc "hsm-$r" "$EP" "$SP" bench-aes "${msg[@]}" --floor --rpc "$r"
    done
    bench_stop "$SP"
    # The token alone (signet's backend, no RPC), once the server has let
    # go of the token: SoftHSM2 takes one logged-in process at a time.
    for r in encrypt decrypt data-key; do
      bench_note "== cipher: $r on SoftHSM2 through signet's backend, no RPC, one thread per CPU"
      bench "hsm-backend-$r" --in-process --backend-config "$work/hsm-cipher.toml" -a AES_256_GCM \
        --rpc "$r" --concurrency "$(nproc)" "${msg[@]}" --duration "${inproc_secs}s"
    done
  else
    bench_note "== cipher: no SoftHSM2, the token part is not measured"
  fi
  tables cipher "$work"
}

# proc_figures PID NAME SECONDS: the server's resident memory (kB) now and
# its CPU time (clock ticks) over the next SECONDS, idle, into
# $work/NAME.proc ("rss_kb TICKS_PER_S cpu_ticks seconds").
proc_figures() {
  local pid=$1 name=$2 s=$3 rss t0 t1
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  sleep "$s"
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  printf '%s %s %s %s\n' "$rss" "$(getconf CLK_TCK)" "$((t1 - t0))" "$s" >"$work/$name.proc"
}

# One server, the demo keys, then SIGNET_BENCH_KEYS (10,000) HMAC keys
# created through CreateKey: memory and idle CPU before and after, Sign on
# demo-hmac before and on one of the new keys after, the creation and a
# ListKeys walk through every key.
section_keys() {
  local py n=${SIGNET_BENCH_KEYS:-10000}
  py=$(sink_python)
  memory_config keys file none
  serve keys "$work/keys.toml"
  proc_figures "$SP" before 5
  bench_note "== keys: Sign on demo-hmac with the 4 demo keys"
  rpc sign-before "$EP" "$SP" demo-hmac
  bench_note "== keys: creating $n HMAC keys, then ListKeys through them"
  "$py" "$here/bench-keys.py" "${EP#http://}" "$n" HMAC_SHA256 merchant >"$work/create.json" 2>>"$work/bench.log" ||
    bench_die "bench-keys.py failed (see $work/bench.log)"
  proc_figures "$SP" after 5
  bench_note "== keys: Sign on merchant-$(printf '%05d' $((n / 2))) among $((n + 4)) keys"
  rpc sign-after "$EP" "$SP" "merchant-$(printf '%05d' $((n / 2)))"
  bench_stop "$SP"
  section_keys_token
  tables keys "$work"
}

# The same on a SoftHSM2 token with SIGNET_BENCH_TOKEN_KEYS (1,000) keys:
# SoftHSM2's file store re-reads every object file for each object it
# writes, so creating them slows as they grow (docs/benchmarks.md).
# Then a restart: the start-up time with them all, memory, Sign.
section_keys_token() {
  local py count=${SIGNET_BENCH_TOKEN_KEYS:-1000} t0
  if ! command -v softhsm2-util >/dev/null; then
    bench_note "== keys: no SoftHSM2, the token part is not measured"
    return
  fi
  py=$(sink_python)
  token_config keys hsm
  serve hsm "$work/hsm.toml"
  bench_note "== keys: creating $count HMAC keys on the token"
  "$py" "$here/bench-keys.py" "${EP#http://}" "$count" HMAC_SHA256 merchant >"$work/hsm-create.json" 2>>"$work/bench.log" ||
    bench_die "bench-keys.py failed on the token (see $work/bench.log)"
  bench_stop "$SP"
  bench_note "== keys: restart with $count keys on the token"
  t0=$(date +%s%N)
  serve hsm-restart "$work/hsm.toml"
  echo $((($(date +%s%N) - t0) / 1000000)) >"$work/hsm-startup.ms"
  proc_figures "$SP" hsm-after 5
  rpc hsm-sign "$EP" "$SP" "merchant-$(printf '%05d' $((count / 2)))"
  bench_stop "$SP"
}

# The servers of an A/B section, in the order their runs alternate.
ab_names=() ab_eps=() ab_pids=() ab_tokens=()

# ab_serve NAME AUTH [VAR=VALUE...]: starts server NAME on $work/NAME.toml
# (its environment plus the VAR=VALUE pairs) for the A/B runs; AUTH
# "token" sends it the bench token.
ab_serve() {
  local name=$1 auth=$2
  shift 2
  serve "$name" "$work/$name.toml" "$@"
  ab_names+=("$name") ab_eps+=("$EP") ab_pids+=("$SP") ab_tokens+=("$auth")
}

# ab: every ab_serve'd server runs HMAC and ECDSA, servers alternating
# run by run, $rounds times; then they are stopped.
ab() {
  local r i k p tok
  for r in $(seq "$rounds"); do
    for i in "${!ab_names[@]}"; do
      tok=()
      [ "${ab_tokens[$i]}" = token ] && tok=(--token-file "$top/bench.token")
      for k in demo-hmac demo-ecdsa; do
        bench_note "== ${work##*/}: ${ab_names[$i]}, $k, round $r of $rounds"
        rpc "${ab_names[$i]}-$k-$r" "${ab_eps[$i]}" "${ab_pids[$i]}" "$k" "${tok[@]}"
      done
    done
  done
  for p in "${ab_pids[@]}"; do bench_stop "$p"; done
  ab_names=() ab_eps=() ab_pids=() ab_tokens=()
}

section_security() {
  memory_config off off none
  memory_config file file none
  memory_config token file token
  ab_serve off none
  ab_serve file none
  ab_serve token token
  ab
  tables security "$work"
}

section_telemetry() {
  local py sink port otlp
  py=$(sink_python)
  bench_spawn otlp-sink "$py" "$here/otlp-sink.py" "$work/otlp-sink.port"
  sink=$spawned
  for _ in $(seq 100); do
    [ -s "$work/otlp-sink.port" ] && break
    kill -0 "$sink" 2>/dev/null || bench_die "the OTLP sink did not start (log: $work/otlp-sink.log)"
    sleep 0.1
  done
  [ -s "$work/otlp-sink.port" ] || bench_die "the OTLP sink did not start within 10 s"
  port=$(cat "$work/otlp-sink.port")
  otlp=OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$port
  memory_config metrics file none admin
  memory_config otlp file none admin
  memory_config otlp10 file none admin
  memory_config otlp0 file none admin
  memory_config otlpm file none admin
  ab_serve metrics none
  # OTLP on turns on the metrics push too (a second reader that every
  # measurement also feeds): traces are judged against it, not against
  # metrics only.
  ab_serve otlpm none "$otlp" OTEL_TRACES_EXPORTER=none
  ab_serve otlp0 none "$otlp" OTEL_TRACES_SAMPLER=always_off
  ab_serve otlp none "$otlp"
  ab_serve otlp10 none "$otlp" OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
  ab
  bench_stop "$sink"
  tables telemetry "$work"
}

section_pkcs11() {
  SIGNET_BENCH_DIR=$work bash "$here/bench-pkcs11.sh" "$secs"
}

section_registry() {
  SIGNET_BENCH_DIR=$work bash "$here/bench-registry.sh" "$secs"
}

# run_section SECTION, in a subshell: a section that fails stops its own
# servers (this trap) and the others still run.
run_section() {
  bench_own_work=0
  bench_pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "section_$1"
}

make_token "$top/bench.token"
skipped=() failed=()
started=$SECONDS
for s in "${chosen[@]}"; do
  why=$(missing "$s")
  if [ -n "$why" ]; then
    bench_note "== $s: skipped, needs $why"
    printf '\n## %s\n\nskipped: needs %s\n' "$s" "$why"
    skipped+=("$s")
    continue
  fi
  work=$top/$s
  mkdir -p "$work"
  t0=$SECONDS
  printf '\n## %s (%s s windows)\n' "$s" "$secs"
  # Not `if (run_section ...)`: errexit would be off in the whole section.
  set +e
  (
    set -e
    run_section "$s"
  )
  rc=$?
  set -e
  bench_check_outputs "$work"
  # A full run's trails come to more than a gigabyte: unless kept, each
  # section's go once counted.
  if [ "${SIGNET_BENCH_KEEP:-0}" != 1 ]; then
    find "$work" -name '*.audit.jsonl' -delete
  fi
  if [ "$rc" = 0 ]; then
    bench_note "== $s: done in $((SECONDS - t0)) s"
  else
    # Interrupted: stop here.
    [ "$rc" -lt 128 ] || exit "$rc"
    bench_note "== $s: FAILED after $((SECONDS - t0)) s (its files: $work)"
    printf '\nfailed: see %s\n' "$work"
    failed+=("$s")
  fi
done
work=$top
bench_note "== all done in $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  bench_note "failed: ${failed[*]}"
  exit 1
fi
if [ ${#skipped[@]} -gt 0 ]; then
  bench_note "skipped (missing prerequisites): ${skipped[*]}"
  exit 3
fi
