#!/usr/bin/env bash
# Reproduces the PKCS#11 figures of docs/benchmarks.md: signet over gRPC on
# a throw-away SoftHSM2 token at concurrency 1, 8 and 64, next to the
# token's raw C_Sign cost and signet's backend with no RPC (1 thread and
# one per CPU). Each gRPC run is a `--floor` run: the bare tonic server it
# is compared with is measured first, in the same run. Prints the
# section's tables in Markdown. `bash scripts/bench.sh pkcs11` runs it.
#
#   scripts/bench-pkcs11.sh [SECONDS]
#
# SIGNET_BIN (default: ./target/release/signet, built when unset),
# SIGNET_BENCH_DIR and SIGNET_BENCH_KEEP: see scripts/bench-lib.sh. Every
# server writes its audit trail to a file and its log to a file there.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
secs=${1:-8}
command -v softhsm2-util >/dev/null || bench_die "needs SoftHSM2 (apt-get install softhsm2)"
bench_init
cpus=$(nproc)
threads=1
[ "$cpus" -gt 1 ] && threads="1 $cpus"

token_config bench pkcs11
cfg=$work/pkcs11.toml

bench_note "== pkcs11: signet serve on SoftHSM2, keys created through the service"
serve pkcs11 "$cfg"
"$bin" --endpoint "$EP" keys create bench-ecdsa --algorithm ECDSA_P256_SHA256 >/dev/null
"$bin" --endpoint "$EP" keys create bench-rsa --algorithm RSA_PKCS1_2048_SHA256 >/dev/null
"$bin" --endpoint "$EP" keys create bench-hmac --algorithm HMAC_SHA256 >/dev/null
for k in ecdsa rsa hmac; do
  for c in 1 8 64; do
    bench_note "== pkcs11: Sign bench-$k over gRPC, concurrency $c"
    bench "rpc-$k-$c" --endpoint "$EP" --key "bench-$k" --concurrency "$c" \
      --connections $((c < 4 ? c : 4)) --duration "${secs}s" --server-pid "$SP" --floor
  done
done
# SoftHSM2 fails a process that opens the token while another one is
# logged in: the in-process runs come after the server is gone.
bench_stop "$SP"

for a in ECDSA_P256_SHA256 RSA_PKCS1_2048_SHA256 HMAC_SHA256; do
  for t in $threads; do
    bench_note "== pkcs11: raw C_Sign and signet's backend, $a, $t thread(s), no RPC"
    bench "raw-$a-$t" --in-process --backend-config "$cfg" --raw -a "$a" \
      --concurrency "$t" --duration "${secs}s"
    bench "backend-$a-$t" --in-process --backend-config "$cfg" -a "$a" \
      --concurrency "$t" --duration "${secs}s"
  done
done

tables pkcs11 "$work"
[ "$bench_own_work" = 1 ] && bench_check_outputs "$work"
exit 0
