#!/usr/bin/env bash
# Two builds of signet side by side in one window: both serve with the same
# config (a token identity with a sign grant, the audit trail to a file,
# the in-memory demo keys), and `signet bench` loads each in turn, build A
# then build B, for every key and shape, ROUNDS times. Prints server CPU
# per call and throughput, each round's figure and the median, as a
# Markdown table (docs/benchmarks.md, "Before and after by CPU time").
#
#   scripts/bench-ab.sh [SECONDS] BIN_A BIN_B
#
# SIGNET_BENCH_ROUNDS (default 3), SIGNET_AB_KEYS (default "demo-hmac
# demo-ecdsa"), SIGNET_AB_SHAPES (default "64x4 8x2": in flight x
# connections) and SIGNET_AB_MESSAGE (bytes, default 1024) choose the runs.
# The load generator is build B's. SIGNET_BENCH_DIR / SIGNET_BENCH_KEEP:
# see scripts/bench-lib.sh.
set -euo pipefail
secs=6
if [ $# -eq 3 ]; then
  secs=$1
  shift
fi
[ $# -eq 2 ] || {
  echo "usage: bash scripts/bench-ab.sh [SECONDS] BIN_A BIN_B" >&2
  exit 2
}
a=$(realpath "$1")
b=$(realpath "$2")
export SIGNET_BIN=$b
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
[ -x "$a" ] || bench_die "$a is not an executable"
bench_init
rounds=${SIGNET_BENCH_ROUNDS:-3}
read -r -a keys <<<"${SIGNET_AB_KEYS:-demo-hmac demo-ecdsa}"
read -r -a shapes <<<"${SIGNET_AB_SHAPES:-64x4 8x2}"

make_token "$work/bench.token"
memory_config a file token
memory_config b file token
bin=$a serve a "$work/a.toml"
a_ep=$EP a_pid=$SP
bin=$b serve b "$work/b.toml"
b_ep=$EP b_pid=$SP
echo "A: $a" >"$work/builds.txt"
echo "B: $b" >>"$work/builds.txt"

for r in $(seq "$rounds"); do
  for shape in "${shapes[@]}"; do
    for k in "${keys[@]}"; do
      for side in a b; do
        if [ "$side" = a ]; then ep=$a_ep pid=$a_pid; else ep=$b_ep pid=$b_pid; fi
        bench_note "== round $r: $k, ${shape%x*} in flight, build ${side^^}"
        bench "ab/$r.${shape}.$k.$side" --endpoint "$ep" --key "$k" \
          --concurrency "${shape%x*}" --connections "${shape#*x}" --duration "${secs}s" \
          --server-pid "$pid" --token-file "$work/bench.token" \
          --message-size "${SIGNET_AB_MESSAGE:-1024}"
      done
    done
  done
done
bench_stop "$a_pid"
bench_stop "$b_pid"
tables ab "$work"
[ "$bench_own_work" = 1 ] && bench_check_outputs "$work"
exit 0
