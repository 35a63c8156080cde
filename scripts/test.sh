#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests,
# and the Python interop tests (a client generated from proto/ with
# grpcio-tools, checked with Python's cryptography, hmac and a JOSE library).
# This is what CI runs (.ci/run calls it). It starts with scripts/setup.sh,
# which installs or names everything the suite needs before compiling.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Up front, in seconds: every tool and package the suite needs, installed
# when this machine allows it, else named with the command that would.
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "proto: buf lint, and buf breaking against the previous commit on main (docs/keys-and-api.md)"
bash scripts/check-proto.sh

step "layers: no import circle over two files, no upward import (docs/architecture.md)"
python3 scripts/check-layers.py

step "MSRV: no locked package needs a newer Rust than Cargo.toml's rust-version"
python3 scripts/check-msrv.py

step "dependencies: advisories (offline RustSec snapshot), licences, bans, sources (deny.toml)"
bash scripts/check-deps.sh

step "SBOM of the signet binary (target/sbom/signet.cdx.json)"
bash scripts/sbom.sh

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (unit, conformance and server tests)"
rm -rf target/tmp/integration-logs
cargo test --locked --all-targets

step "no secret in any log line the integration tests produced"
python3 scripts/sweep-logs.py target/tmp/integration-logs

step "fuzz: each target for 30 s from its seeds (scripts/fuzz.sh, docs/fuzzing.md)"
bash scripts/fuzz.sh 30

step "Python interop tests"
bash tests/python/run.sh
