# Shared by scripts/bench.sh, scripts/bench-pkcs11.sh and
# scripts/bench-registry.sh: sourced, not run.
#
# bench_init sets
#   root   the repository
#   bin    the signet binary: $SIGNET_BIN, or ./target/release/signet built
#          with `cargo build --release --locked` when SIGNET_BIN is unset
#   work   the work directory: every config, server log, audit trail and
#          JSON report of the run. $SIGNET_BENCH_DIR when set (the caller's:
#          left in place), otherwise a fresh one, removed at exit unless
#          SIGNET_BENCH_KEEP=1 or the run failed.
# and a trap that stops every process started with bench_spawn or serve.
#
# Nothing a server writes reaches the terminal: its standard output goes to
# $work/NAME.out (empty when the audit trail goes to a file, as it does
# here) and its log to $work/NAME.log.

# shellcheck shell=bash

bench_pids=()
bench_exit_hooks=()
bench_own_work=0

bench_init() {
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  # Paths the caller gave are relative to where it runs, not to $root.
  if [ -n "${SIGNET_BIN:-}" ]; then
    case "$SIGNET_BIN" in
      /*) ;;
      */*) SIGNET_BIN="$(cd "$(dirname "$SIGNET_BIN")" 2>/dev/null && pwd)/$(basename "$SIGNET_BIN")" ;;
      *) SIGNET_BIN=$(command -v "$SIGNET_BIN" || echo "$SIGNET_BIN") ;;
    esac
  fi
  if [ -n "${SIGNET_BENCH_DIR:-}" ]; then
    mkdir -p "$SIGNET_BENCH_DIR"
    SIGNET_BENCH_DIR=$(cd "$SIGNET_BENCH_DIR" && pwd)
  fi
  cd "$root" || exit 1
  # Whatever the caller's shell has must not change what is measured: a
  # token here would be sent instead of the bench's own, an endpoint would
  # turn telemetry on in every server, RUST_LOG would change the log level.
  unset SIGNET_TOKEN SIGNET_TOKEN_FILE SIGNET_ENDPOINT SIGNET_CA_FILE \
    SIGNET_CERT_FILE SIGNET_KEY_FILE RUST_LOG
  local v
  for v in $(compgen -e OTEL_ || true); do unset "$v"; done
  # Tokens, PINs and the database URL are written under this umask.
  umask 077

  if [ -z "${SIGNET_BIN:-}" ]; then
    echo "==> cargo build --release --locked (set SIGNET_BIN to use a built binary)" >&2
    cargo build --release --locked
    SIGNET_BIN=$root/target/release/signet
  fi
  [ -x "$SIGNET_BIN" ] || bench_die "SIGNET_BIN=$SIGNET_BIN is not an executable"
  export SIGNET_BIN
  bin=$SIGNET_BIN

  if [ -n "${SIGNET_BENCH_DIR:-}" ]; then
    work=$SIGNET_BENCH_DIR
  else
    work=$(mktemp -d "${TMPDIR:-/tmp}/signet-bench.XXXXXX")
    bench_own_work=1
  fi
  # $work may be moved to a sub-directory per section; this one is removed.
  bench_work_root=$work
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

# A message for the person running the script (standard error: standard
# output is for the tables).
bench_note() {
  echo "$*" >&2
}

# Stops PID: SIGTERM, then SIGKILL if it is still there after 10 s.
bench_stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    bench_note "process $pid ignored SIGTERM for 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${bench_pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  bench_pids=("${keep[@]}")
}

bench_cleanup() {
  local rc=$? p h
  trap - EXIT INT TERM
  for p in "${bench_pids[@]}"; do bench_stop "$p"; done
  for h in "${bench_exit_hooks[@]}"; do "$h" || true; done
  if [ "$bench_own_work" = 1 ]; then
    if [ "${SIGNET_BENCH_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
      bench_note "work directory (configs, server logs, audit trails, JSON reports): $bench_work_root"
    else
      rm -rf "$bench_work_root"
    fi
  fi
  exit "$rc"
}

# bench_spawn NAME CMD...: runs CMD in the background, standard output to
# $work/NAME.out and standard error to $work/NAME.log; its pid in
# $spawned. Stopped at exit.
bench_spawn() {
  local name=$1
  shift
  # Made here, not only by the child's redirections: whoever reads the log
  # next may run before the child does.
  : >"$work/$name.out"
  : >"$work/$name.log"
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  spawned=$!
  bench_pids+=("$spawned")
}

# serve NAME CONFIG [VAR=VALUE...]: `signet serve --config CONFIG` (its
# environment plus the VAR=VALUE pairs), waiting until it listens. The
# config listens on port 0; the address it got is read from its log. Sets
# SP (the pid) and EP (http://ADDRESS). A command in the serve_wrap array
# (valgrind, say) runs signet, in the same process.
serve_wrap=()
serve() {
  local name=$1 cfg=$2 addr=
  shift 2
  bench_spawn "$name" env "$@" "${serve_wrap[@]}" "$bin" serve --config "$cfg"
  SP=$spawned
  for _ in $(seq 600); do
    addr=$(sed -n 's/.*signet listening address=\([0-9.:]*\).*/\1/p' "$work/$name.log" | head -1)
    [ -n "$addr" ] && break
    if ! kill -0 "$SP" 2>/dev/null; then
      tail -n 20 "$work/$name.log" >&2
      bench_die "server $name exited at start-up (log: $work/$name.log)"
    fi
    sleep 0.1
  done
  [ -n "$addr" ] || bench_die "server $name did not listen within 60 s (log: $work/$name.log)"
  # shellcheck disable=SC2034 # for the callers
  EP=http://$addr
}

# A free TCP port on loopback, for the servers that cannot be told port 0
# (PostgreSQL, Redis, the OTLP sink is told 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench OUT ARGS...: one `signet bench` run; its JSON report goes to
# $work/OUT.json, its progress lines to $work/bench.log.
bench() {
  local out=$1
  shift
  mkdir -p "$(dirname "$work/$out")"
  "$bin" --json bench "$@" >"$work/$out.json" 2>>"$work/bench.log" ||
    bench_die "signet bench $* failed (see $work/bench.log and $work/$out.json)"
}

# token_config LABEL NAME: a throw-away SoftHSM2 token labelled LABEL in
# $work/token (SOFTHSM2_CONF exported for it) and $work/NAME.toml: the
# [server], [log] and [audit] sections of these scripts (the trail in
# $work/NAME.audit.jsonl) over the token's [backend] section (the token
# file's own [server] says only plaintext = true).
token_config() {
  softhsm/make-token.sh "$work/token" "$1" >/dev/null
  export SOFTHSM2_CONF=$work/token/softhsm2.conf
  {
    server_section
    grep -v '^\[server\]\|^plaintext' "$work/token/signet.toml"
    audit_to_file "$2"
  } >"$work/$2.toml"
}

# make_token FILE: a bearer token for the identity "bench", in FILE (mode
# 0600, for the load generator's --token-file), its SHA-256 in $token_hash
# for bench_identity_section. The token is never printed.
make_token() {
  local out
  out=$("$bin" token new --identity bench)
  printf '%s\n' "$out" | awk '$1 == "token:" { print $2; exit }' >"$1"
  chmod 600 "$1"
  token_hash=$(printf '%s\n' "$out" | awk '$1 == "sha256:" { print $2; exit }')
  if [ ! -s "$1" ] || [ ${#token_hash} != 64 ]; then
    bench_die "signet token new gave no token"
  fi
}

# The [[auth]] sections of a server config: the identity "bench" with a
# sign grant on demo-*, admitted by the token of make_token.
bench_identity_section() {
  printf '[[auth.identities]]\nname = "bench"\n'
  printf '[[auth.identities.grants]]\noperations = ["sign"]\nkeys = ["demo-*"]\n'
  printf '[[auth.tokens]]\nidentity = "bench"\nsha256 = "%s"\n' "$token_hash"
}

# The [audit] section of a server config: its trail in $work/NAME.audit.jsonl.
audit_to_file() {
  printf '[audit]\noutput = "file"\npath = "%s"\n' "$work/$1.audit.jsonl"
}

# Common server settings: port 0 on loopback, plaintext (loopback only; no
# TLS in any of these figures), text logs at info, a short shutdown.
server_section() {
  printf '[server]\nlisten = "127.0.0.1:0"\nplaintext = true\nshutdown_timeout = "2s"\n'
  printf '[log]\nlevel = "info"\nformat = "text"\n'
}

# memory_config NAME AUDIT AUTH [admin]: $work/NAME.toml, in-memory backend
# with the demo keys; AUDIT "file" or "off"; AUTH "token" (one identity,
# a sign grant on demo-*, the bench token) or "none" (no identities: every
# caller may do everything, which only a loopback listener allows).
memory_config() {
  local name=$1 audit=$2 auth=$3 admin=${4:-}
  {
    server_section
    printf '[backend]\ntype = "memory"\ndemo_keys = true\n'
    if [ "$audit" = file ]; then audit_to_file "$name"; else printf '[audit]\noutput = "off"\n'; fi
    if [ "$auth" = token ]; then bench_identity_section; fi
    if [ "$admin" = admin ]; then printf '[admin]\nlisten = "127.0.0.1:0"\n'; fi
  } >"$work/$name.toml"
}

# Markdown tables from the JSON reports of a section (scripts/bench-tables.py).
tables() {
  python3 "$root/scripts/bench-tables.py" "$@"
}

# Under DIR (default: the whole work directory): warns about any signet
# server (a NAME.out next to its NAME.toml) that wrote on its standard
# output (an audit record or a log line that should have gone to a file),
# and lists the audit trails with their record counts.
bench_check_outputs() {
  local dir=${1:-$bench_work_root} f
  while IFS= read -r f; do
    [ -e "${f%.out}.toml" ] || continue
    if [ -s "$f" ]; then
      bench_note "warning: a server wrote $(wc -c <"$f") bytes to its standard output: $f"
    fi
  done < <(find "$dir" -name '*.out' | sort)
  while IFS= read -r f; do
    bench_note "audit trail ${f#"$bench_work_root"/}: $(wc -l <"$f") records"
  done < <(find "$dir" -name '*.audit.jsonl' | sort)
}
