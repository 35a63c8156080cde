#!/usr/bin/env bash
# Instructions per call, counted by callgrind: repeatable where CPU time on
# a shared 2-core machine is not (docs/benchmarks.md, "Counted
# instructions (callgrind, issue 18)"). Runs the bare tonic floor and
# signet (a token identity with a sign grant, audit trail to a file,
# metrics on) under valgrind, loads each with
# HMAC Sign of 1 KiB messages at 8 in flight, and prints instructions per
# call, without and with SHA-256: valgrind does not emulate the SHA
# extensions, so its software SHA-256 (the HMAC itself and the audit
# digest) would otherwise swamp the rest. Kernel work (system calls) is not
# counted.
#
#   scripts/profile-callgrind.sh [SECONDS] [VAR=VALUE...]
#
# VAR=VALUE pairs go to signet's environment (not the floor's), e.g.
# OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_TRACES_SAMPLER=always_off
# to count what tracing adds to a call that is not sampled.
#
# SIGNET_BIN (default: ./target/release/signet, built when unset) and
# SIGNET_BENCH_DIR / SIGNET_BENCH_KEEP: see scripts/bench-lib.sh. The
# callgrind files stay in the work directory for callgrind_annotate;
# scripts/callgrind-kinds.py sums the difference by kind of work.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
secs=${1:-10}
[ $# -gt 0 ] && shift
signet_env=("$@")
command -v valgrind >/dev/null || bench_die "needs valgrind (apt-get install valgrind)"
bench_init

make_token "$work/token"
memory_config signet file token admin

# profile NAME ENDPOINT PID [ARGS...]: warm up, count instructions over
# one measured window, print the figures.
profile() {
  local name=$1 ep=$2 pid=$3 calls
  shift 3
  "$bin" bench --endpoint "$ep" --key demo-hmac --message-size 1024 --concurrency 8 \
    --connections 2 --duration 3s "$@" >/dev/null 2>>"$work/bench.log"
  callgrind_control -i on "$pid" >/dev/null 2>&1
  "$bin" --json bench --endpoint "$ep" --key demo-hmac --message-size 1024 --concurrency 8 \
    --connections 2 --duration "${secs}s" --warmup 0s "$@" >"$work/$name.json" 2>>"$work/bench.log"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  calls=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["requests"])' "$work/$name.json")
  callgrind_annotate --auto=no --threshold=100 "$work/$name.callgrind.1" 2>/dev/null |
    awk -v c="$calls" -v name="$name" '
      /PROGRAM TOTALS/ { gsub(",", "", $1); t = $1; next }
      /sha2::/ { gsub(",", "", $1); s += $1 }
      END { printf "%-7s %6d calls  %7d instructions per call without SHA-256 (%d with it)\n", name, c, (t - s) / c, t / c }'
}

vg=(valgrind --tool=callgrind --instr-atstart=no)

bench_note "== callgrind: the floor"
# The floor server exits when its standard input closes: a FIFO this shell
# holds open for reading and writing never does.
mkfifo "$work/floor.stdin"
exec 7<>"$work/floor.stdin"
# Not through bench_spawn: a command put in the background there gets
# /dev/null as its standard input.
"${vg[@]}" "--callgrind-out-file=$work/floor.callgrind" \
  "$bin" bench-floor-server --signature-length 32 --key-version-id demo-hmac:v1 \
  <&7 >"$work/floor.out" 2>"$work/floor.log" &
spawned=$!
bench_pids+=("$spawned")
addr=
for _ in $(seq 300); do
  addr=$(grep -Eo '^127\.0\.0\.1:[0-9]+' "$work/floor.out" | head -1 || true)
  [ -n "$addr" ] && break
  sleep 0.2
done
[ -n "$addr" ] || bench_die "the floor server did not start under valgrind (log: $work/floor.log)"
profile floor "http://$addr" "$spawned"
bench_stop "$spawned"

bench_note "== callgrind: signet"
serve_wrap=("${vg[@]}" "--callgrind-out-file=$work/signet.callgrind")
serve signet "$work/signet.toml" "${signet_env[@]}"
serve_wrap=()
profile signet "$EP" "$SP" --token-file "$work/token"
bench_stop "$SP"
bench_note "== where signet's extra instructions go (self cost per call minus the floor's, SHA-256 left out)"
python3 "$(dirname "$0")/callgrind-kinds.py" "$work"
[ "$bench_own_work" = 1 ] && bench_check_outputs "$work"
exit 0
