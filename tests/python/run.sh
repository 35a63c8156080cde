#!/usr/bin/env bash
# Python interop tests: a client generated from proto/ with grpcio-tools,
# checked against Python's cryptography, hmac, PyJWT and the openssl CLI.
#
#   bash tests/python/run.sh [PYTEST ARGS...]
#   bash tests/python/run.sh --prepare     # only create / update .venv/
#
# Works from any directory. Creates .venv/ at the repository root on first
# use and reinstalls tests/python/requirements.txt only when it changes.
# Uses $SIGNET_BIN when set, otherwise builds target/debug/signet.
# Needs python3 (with venv), cargo and openssl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

venv="$root/.venv"
req="$here/requirements.txt"
stamp="$venv/.signet-requirements.sha256"

for tool in python3 openssl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 1; }
done

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

want="$("$py" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$req")"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "==> installing $req"
  "$py" -m pip install --quiet --disable-pip-version-check -r "$req"
  printf '%s\n' "$want" >"$stamp"
fi
# `run.sh --prepare`: only the virtual environment (scripts/setup.sh).
if [ "${1:-}" = "--prepare" ]; then
  exit 0
fi

if [ -z "${SIGNET_BIN:-}" ]; then
  command -v cargo >/dev/null || { echo "run.sh: cargo not found and SIGNET_BIN not set" >&2; exit 1; }
  echo "==> cargo build --locked --bin signet"
  cargo build --locked --bin signet
  SIGNET_BIN="$root/target/debug/signet"
fi
# An absolute path, so the tests can run from any directory.
case "$SIGNET_BIN" in
  /*) ;;
  *) SIGNET_BIN="$(cd "$(dirname "$SIGNET_BIN")" && pwd)/$(basename "$SIGNET_BIN")" ;;
esac
[ -x "$SIGNET_BIN" ] || { echo "run.sh: $SIGNET_BIN is not an executable" >&2; exit 1; }
export SIGNET_BIN

echo "==> generating Python stubs from proto/"
gen="$here/gen"
rm -rf "$gen"
mkdir -p "$gen"
"$py" -m grpc_tools.protoc -I"$root/proto" \
  --python_out="$gen" --grpc_python_out="$gen" \
  "$root"/proto/signet/v1/*.proto
touch "$gen/signet/__init__.py" "$gen/signet/v1/__init__.py"

echo "==> pytest tests/python"
status=0
"$py" -m pytest -q -p no:cacheprovider "$here" "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "run.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
