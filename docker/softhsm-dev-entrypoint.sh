#!/usr/bin/env bash
# Entry point of the softhsm-dev image (Dockerfile target softhsm-dev).
# DEVELOPMENT ONLY: the token's PINs are written next to it, in the
# container's writable directory, by softhsm/make-token.sh.
#
# On first start it creates a SoftHSM2 token "signet-dev" in
# $SIGNET_DEV_DIR/token (a volume there keeps it across restarts), then runs
# signet with SOFTHSM2_CONF pointing at it. `serve` with no --config uses the
# generated configuration (plaintext on 127.0.0.1:50051: reach it from the
# same network namespace, e.g. `docker run --network host`, or through
# `docker exec`). Any other arguments are passed to signet as they are.
set -euo pipefail

dev_dir=${SIGNET_DEV_DIR:-/var/lib/signet-dev}
signet=${SIGNET_BIN:-/usr/local/bin/signet}
make_token=${SIGNET_MAKE_TOKEN:-/usr/local/lib/signet/make-token.sh}
token_dir="$dev_dir/token"

if [ ! -f "$token_dir/signet.toml" ]; then
  echo "softhsm-dev: creating a SoftHSM2 token in $token_dir (development only)" >&2
  bash "$make_token" "$token_dir" signet-dev >/dev/null
fi
export SOFTHSM2_CONF="$token_dir/softhsm2.conf"

if [ "${1:-serve}" = serve ]; then
  if [ "$#" -gt 0 ]; then shift; fi
  for arg in "$@"; do
    case "$arg" in
      --config|--config=*) exec "$signet" serve "$@" ;;
    esac
  done
  exec "$signet" serve --config "$token_dir/signet.toml" "$@"
fi
exec "$signet" "$@"
