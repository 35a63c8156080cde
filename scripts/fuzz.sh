#!/usr/bin/env bash
# Fuzzes signet's parsers of outside input (docs/fuzzing.md): builds the
# cargo-fuzz targets of fuzz/ and runs each for SECONDS on a scratch copy
# of its seed corpus (fuzz/corpus/TARGET/, never grown by a run). Fails
# on any crash, panic, timeout or out-of-memory, and names the input that
# caused it.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   # default: 30 s, every target
#   bash scripts/fuzz.sh --list                  # the targets
#
# SIGNET_FUZZ_WORK=DIR keeps the scratch corpora and logs in DIR (the long
# run measures and minimizes what it found there); otherwise they go in a
# temporary directory that is removed. SIGNET_FUZZ_SEEDS=DIR adds DIR's
# files to every target's scratch corpus. A failing input is copied to
# fuzz/artifacts/TARGET/ and printed in base64 when small, so a CI log is
# enough to reproduce it:
#
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-...
#
# The stable toolchain builds the targets with RUSTC_BOOTSTRAP=1 (cargo
# fuzz passes nightly-only -Z flags); scripts/setup.sh installs cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
bin_dir="fuzz/target/$triple/release"
# No sanitizer: the parsers are safe Rust, and AddressSanitizer adds
# nothing there but a slower build of the whole tree (docs/fuzzing.md).
# Debug assertions and overflow checks are on (-a).
sanitizer="${SIGNET_FUZZ_SANITIZER:-none}"
rss_mb=2048        # an input that needs more is an out-of-memory finding
timeout_s=10       # one input running longer is a hang

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^signet-fuzz$'; }

if [ "${1:-}" = "--list" ]; then
  targets
  exit 0
fi
seconds=30
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
mapfile -t all < <(targets)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${all[@]}")
for t in "${chosen[@]}"; do
  if ! printf '%s\n' "${all[@]}" | grep -qx -- "$t"; then
    echo "fuzz.sh: unknown target $t (targets: ${all[*]})" >&2
    exit 2
  fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is not installed: bash scripts/setup.sh installs it" >&2
  exit 1
fi

if [ -n "${SIGNET_FUZZ_WORK:-}" ]; then
  work=$SIGNET_FUZZ_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/signet-fuzz.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

echo "==> fuzz: building ${chosen[*]} (sanitizer $sanitizer, release with debug assertions)"
start=$(date +%s)
build=(cargo fuzz build -O -a --sanitizer "$sanitizer")
if [ ${#chosen[@]} -eq ${#all[@]} ]; then
  RUSTC_BOOTSTRAP=1 "${build[@]}"
else
  for t in "${chosen[@]}"; do RUSTC_BOOTSTRAP=1 "${build[@]}" "$t"; done
fi
echo "==> fuzz: built in $(($(date +%s) - start)) s"

failed=()
for t in "${chosen[@]}"; do
  corpus="$work/corpus/$t"
  art="$work/artifacts/$t"
  log="$work/$t.log"
  rm -rf "$corpus" "$art"
  mkdir -p "$corpus" "$art"
  cp fuzz/corpus/"$t"/* "$corpus"/
  if [ -n "${SIGNET_FUZZ_SEEDS:-}" ]; then
    cp "$SIGNET_FUZZ_SEEDS"/* "$corpus"/
  fi
  flags=(-max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout="$timeout_s"
         -artifact_prefix="$art/" -print_final_stats=1)
  case "$t" in
    canonical_json|webhook_headers) flags+=(-dict=fuzz/dict/json.dict) ;;
    config) flags+=(-dict=fuzz/dict/config.dict) ;;
  esac
  echo "==> fuzz: $t for $seconds s"
  status=0
  "$bin_dir/$t" "${flags[@]}" "$corpus" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "    $t: exit $status, ${execs:-?} executions, corpus $(find "$corpus" -type f | wc -l) files"
  mapfile -t found < <(find "$art" -type f | sort)
  if [ "$status" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
    failed+=("$t")
    mkdir -p "fuzz/artifacts/$t"
    cp "$log" "fuzz/artifacts/$t/"
    echo "fuzz.sh: $t FAILED (exit $status); from its log (fuzz/artifacts/$t/$t.log):" >&2
    # The panic's message, then libFuzzer's verdict, without the backtrace.
    grep -m1 -A4 'panicked at' "$log" >&2 || true
    grep -v '^#[0-9]' "$log" | grep -A12 -m1 '^==[0-9]*== ERROR' >&2 || tail -20 "$log" >&2
    for f in "${found[@]}"; do
      cp "$f" "fuzz/artifacts/$t/"
      kept="fuzz/artifacts/$t/$(basename "$f")"
      echo "fuzz.sh: $t: failing input $kept ($(wc -c <"$f") bytes)" >&2
      if [ "$(wc -c <"$f")" -le 4096 ]; then
        echo "fuzz.sh: its base64: $(base64 -w0 "$f")" >&2
      fi
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "==> fuzz: ${#chosen[@]} target(s), $seconds s each, nothing found"
