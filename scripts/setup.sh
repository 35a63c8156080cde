#!/usr/bin/env bash
# Everything the test suite needs, checked (and, where this machine allows,
# installed) in seconds before anything compiles. scripts/test.sh runs it
# first; it can also be run alone:
#
#   bash scripts/setup.sh            # check, install what it can
#   SIGNET_SETUP_NO_INSTALL=1 bash scripts/setup.sh   # check only
#
# It installs Debian packages with apt-get when it runs as root (or with
# sudo that needs no password), Rust components with rustup, cargo tools
# (cargo-deny, cargo-cyclonedx, cargo-fuzz) with cargo install, the Python
# test dependencies into .venv/ from PyPI, and the pinned buf CLI into
# tools/buf/node_modules/ from npm. What it cannot install it names, with
# the command that would, and it exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()    # what is still missing, one line each, with how to get it
note() { printf '  %s\n' "$*"; }
can_install() { [ -z "${SIGNET_SETUP_NO_INSTALL:-}" ]; }

# How to run apt-get here, if at all.
apt=""
if command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt="apt-get"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt="sudo apt-get"
  fi
fi

echo "==> setup: checking what the tests need"

# --- Rust: a toolchain at least as new as Cargo.toml's rust-version.
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if ! command -v cargo >/dev/null; then
  missing+=("cargo (Rust $msrv or newer): install rustup from https://rustup.rs, then 'rustup default stable'")
else
  have=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n%s\n' "$msrv" "$have" | sort -V | head -1)" != "$msrv" ]; then
    missing+=("Rust $msrv or newer (found $have): 'rustup update stable'")
  fi
  for comp in rustfmt clippy; do
    if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
      if command -v rustup >/dev/null && can_install; then
        note "installing the Rust component $comp"
        rustup component add "$comp" >/dev/null
      else
        missing+=("the Rust component $comp: 'rustup component add $comp'")
      fi
    fi
  done
  # Cargo tools at pinned versions, from crates.io: cargo-deny for
  # scripts/check-deps.sh, cargo-cyclonedx for scripts/sbom.sh. Built from
  # source, so the first install takes minutes (about 7 and 5 on two busy
  # cores); later runs only check --version. Keep the versions in step
  # with those scripts.
  for tool in cargo-deny@0.20.2 cargo-cyclonedx@0.5.9; do
    name="${tool%@*}" version="${tool#*@}"
    if [ "$(cargo "${name#cargo-}" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
      if can_install; then
        note "installing $name $version from crates.io (compiles for a few minutes)"
        cargo install --locked --quiet --force "$name" --version "$version" \
          || missing+=("$name $version: 'cargo install --locked $name --version $version' failed (is crates.io reachable?)")
      else
        missing+=("$name $version: 'cargo install --locked $name --version $version'")
      fi
    fi
  done
fi

# --- cargo-fuzz, for scripts/fuzz.sh: a pinned version, built from
# crates.io (about a minute; the fuzz crate builds libFuzzer itself with
# g++, below).
fuzz_version=0.13.2
if command -v cargo >/dev/null \
    && [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $fuzz_version" ]; then
  if can_install; then
    note "installing cargo-fuzz $fuzz_version"
    if ! cargo install --locked --quiet cargo-fuzz --version "$fuzz_version" >/dev/null 2>&1; then
      missing+=("cargo-fuzz $fuzz_version: 'cargo install --locked cargo-fuzz --version $fuzz_version' failed: is crates.io reachable?")
    fi
  else
    missing+=("cargo-fuzz $fuzz_version: 'cargo install --locked cargo-fuzz --version $fuzz_version'")
  fi
fi

# --- Debian packages: command (or file pattern) -> package.
declare -A package=(
  [openssl]=openssl                 # the interop tests' independent verifier
  [softhsm2-util]=softhsm2          # PKCS#11 tests: a software token
  [pkcs11-tool]=opensc              # inspects tokens from outside signet
  [redis-server]=redis-server       # shared replay store tests
  [initdb]=postgresql               # registry and replay store in PostgreSQL
  [yq]=yq                           # the docs test runs the yq pipeline of docs/operations.md
  [shellcheck]=shellcheck           # the scripts (scripts/*.sh) are checked with it
  [npm]=npm                         # installs the pinned buf (tools/buf) that checks proto/
  [g++]=g++                         # libFuzzer, built by the fuzz targets (scripts/fuzz.sh)
)
need=()
for cmd in openssl softhsm2-util pkcs11-tool redis-server initdb yq shellcheck npm g++; do
  if [ "$cmd" = initdb ]; then
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && continue
    command -v initdb >/dev/null && continue
  else
    command -v "$cmd" >/dev/null && continue
  fi
  need+=("${package[$cmd]}")
done
# Python 3.11+ with venv and ensurepip (Debian splits them out).
py_ok=1
if ! command -v python3 >/dev/null; then
  need+=(python3 python3-venv); py_ok=0
elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  missing+=("Python 3.11 or newer (found $(python3 --version 2>&1)): install it and put it first on PATH as python3")
  py_ok=0
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ -n "$apt" ] && can_install; then
    note "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $apt update -q >/dev/null
    $apt install -y -q "${need[@]}" >/dev/null
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then py_ok=0; fi
  else
    missing+=("Debian packages ${need[*]}: 'sudo apt-get install -y ${need[*]}' (the PKCS#11, Redis and PostgreSQL tests fail, never skip, without them)")
    py_ok=0
  fi
fi
# PostgreSQL refuses to run as root: the tests then run it as 'postgres'.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  missing+=("a 'postgres' user to run the test databases as (root cannot): install the postgresql package, or 'useradd --system postgres'")
fi

# --- Python test dependencies, into .venv/ (reinstalled only when
# tests/python/requirements.txt changes).
if [ "$py_ok" = 1 ] && [ ${#missing[@]} -eq 0 ]; then
  if ! bash tests/python/run.sh --prepare >/tmp/signet-setup-venv.$$ 2>&1; then
    tail -5 /tmp/signet-setup-venv.$$ | sed 's/^/  /'
    missing+=("the Python test dependencies (tests/python/requirements.txt) from PyPI: is PyPI reachable (PIP_INDEX_URL for a mirror)? the pip output is above")
  fi
  rm -f /tmp/signet-setup-venv.$$
fi

# --- buf, for scripts/check-proto.sh: the exact version tools/buf pins,
# from npm (the package ships the binary), into tools/buf/node_modules/.
buf_want=$(sed -n 's/^ *"@bufbuild\/buf": "\(.*\)",\{0,1\}$/\1/p' tools/buf/package.json)
buf_bin=tools/buf/node_modules/.bin/buf
buf_have() { [ -x "$buf_bin" ] && "$buf_bin" --version 2>/dev/null; }
if [ "$(buf_have)" != "$buf_want" ]; then
  if command -v npm >/dev/null && can_install; then
    note "installing buf $buf_want (npm ci --prefix tools/buf)"
    if ! npm ci --prefix tools/buf --ignore-scripts --no-audit --no-fund >/tmp/signet-setup-npm.$$ 2>&1; then
      tail -5 /tmp/signet-setup-npm.$$ | sed 's/^/  /'
    fi
    rm -f /tmp/signet-setup-npm.$$
  fi
  if [ "$(buf_have)" != "$buf_want" ]; then
    missing+=("buf $buf_want (proto lint and breaking checks): 'npm ci --prefix tools/buf --ignore-scripts' (needs npm and the npm registry; npm_config_registry for a mirror)")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: the test suite cannot run on this machine yet; missing:" >&2
  for m in "${missing[@]}"; do printf '  - %s\n' "$m" >&2; done
  exit 1
fi
echo "==> setup: ready (Rust $(rustc --version | awk '{print $2}'), $(python3 --version), cargo-deny, cargo-cyclonedx, $(cargo fuzz --version), openssl, SoftHSM2, OpenSC, Redis, PostgreSQL, yq, shellcheck, buf $buf_want)"
