#!/usr/bin/env bash
# Reproduces the PKCS#11 figures of docs/benchmarks.md: signet over gRPC on
# a SoftHSM2 token at concurrency 1, 8 and 64, next to the token's raw
# C_Sign cost and the in-memory HMAC Sign (the bare RPC).
#
#   scripts/bench-pkcs11.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
cargo build --release --locked -q
bin=./target/release/signet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
softhsm/make-token.sh "$work/token" bench >/dev/null
export SOFTHSM2_CONF=$work/token/softhsm2.conf
cfg=$work/token/signet.toml

$bin serve --config "$cfg" --listen 127.0.0.1:50072 2>"$work/server.log" &
sp=$!
sleep 1
ep=http://127.0.0.1:50072
$bin --endpoint $ep keys create bench-ecdsa --algorithm ECDSA_P256_SHA256 >/dev/null
$bin --endpoint $ep keys create bench-rsa --algorithm RSA_PKCS1_2048_SHA256 >/dev/null
$bin --endpoint $ep keys create bench-hmac --algorithm HMAC_SHA256 >/dev/null

summary() { grep -E '^(mode|key|throughput|latency|server CPU|client CPU|CPU|requests)' ; }

for k in bench-ecdsa bench-rsa bench-hmac; do
  for c in 1 8 64; do
    conns=$(( c < 4 ? c : 4 ))
    echo "== PKCS#11 $k concurrency $c"
    $bin bench --endpoint $ep --key $k --concurrency $c --connections $conns \
      --duration ${secs}s --server-pid $sp | summary
  done
done
kill $sp; wait $sp 2>/dev/null || true

for a in ECDSA_P256_SHA256 RSA_PKCS1_2048_SHA256 HMAC_SHA256; do
  for c in 1 2; do
    echo "== raw C_Sign $a threads $c"
    $bin bench --in-process --backend-config "$cfg" --raw -a $a --concurrency $c \
      --duration ${secs}s | summary
    echo "== signet PKCS#11 backend, no RPC, $a threads $c"
    $bin bench --in-process --backend-config "$cfg" -a $a --concurrency $c \
      --duration ${secs}s | summary
  done
done

$bin serve --listen 127.0.0.1:50073 2>/dev/null &
mp=$!
sleep 1
for c in 1 8 64; do
  conns=$(( c < 4 ? c : 4 ))
  echo "== in-memory demo-hmac concurrency $c (the bare RPC)"
  $bin bench --endpoint http://127.0.0.1:50073 --key demo-hmac --concurrency $c \
    --connections $conns --duration ${secs}s --server-pid $mp | summary
done
kill $mp
