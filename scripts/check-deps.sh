#!/usr/bin/env bash
# The dependency tree against deny.toml: known advisories (from the RustSec
# snapshot in ../shared/advisory-db, never fetched), licenses, banned or
# duplicate crates, and where crates come from. Fails on any finding that
# deny.toml does not explain. scripts/test.sh runs it; docs/supply-chain.md
# says what each policy is and how to refresh the snapshot.
#
#   bash scripts/check-deps.sh [MANIFEST]
#
# MANIFEST is a Cargo.toml (default: this repository's); its Cargo.lock is
# what is checked, always against this repository's deny.toml.
#
# The snapshot: $SIGNET_ADVISORY_DB, else ../shared/advisory-db beside the
# repository's top directory. Missing, it is an error, never a skip.
# Needs cargo-deny (the version scripts/setup.sh installs) and git; crates
# the lock names and cargo has not downloaded yet come from crates.io.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
deny_version=0.20.2   # keep in step with scripts/setup.sh

die() { echo "check-deps: $*" >&2; exit 1; }

manifest="${1:-$root/Cargo.toml}"
[ -f "$manifest" ] || die "no such manifest: $manifest"
manifest="$(cd "$(dirname "$manifest")" && pwd)/$(basename "$manifest")"
[ -f "$(dirname "$manifest")/Cargo.lock" ] \
  || die "$(dirname "$manifest") has no Cargo.lock: only a locked tree can be checked"

top="$(git -C "$root" rev-parse --show-toplevel 2>/dev/null || echo "$root")"
db="${SIGNET_ADVISORY_DB:-$top/../shared/advisory-db}"
if [ ! -d "$db/crates" ]; then
  die "no RustSec advisory database at $db (expected a copy of github.com/rustsec/advisory-db with its crates/ folder).
  Set SIGNET_ADVISORY_DB to the snapshot, or put it at $top/../shared/advisory-db;
  docs/supply-chain.md says how to make one."
fi
db="$(cd "$db" && pwd)"

command -v git >/dev/null || die "git is needed (cargo-deny reads the database as a git repository)"
have="$(cargo deny --version 2>/dev/null | awk '{print $2}')" \
  || die "cargo-deny is not installed: bash scripts/setup.sh (or cargo install --locked cargo-deny --version $deny_version)"
[ "$have" = "$deny_version" ] \
  || die "cargo-deny $have found, $deny_version wanted: bash scripts/setup.sh (or cargo install --locked --force cargo-deny --version $deny_version)"

# What was scanned, and how old it is. Age is reported, not enforced:
# nothing here can refresh it (docs/supply-chain.md, "Refreshing the
# snapshot").
snapshot=""
if [ -f "$db/SNAPSHOT.txt" ]; then
  snapshot="$(sed -n 's/.*at commit \([0-9a-f]\{7,40\}\) (\([0-9-]*\)).*/\1 \2/;T;p;q' "$db/SNAPSHOT.txt")"
fi
commit="${snapshot%% *}"
date="${snapshot##* }"
count="$(find "$db/crates" -name 'RUSTSEC-*.md' | wc -l)"
[ "$count" -gt 0 ] || die "$db/crates holds no RUSTSEC-*.md advisory"
taken=""
if [ -n "$snapshot" ]; then taken="$(date -d "$date" +%s 2>/dev/null || true)"; fi
if [ -n "$taken" ]; then
  age=$(( ($(date +%s) - taken) / 86400 ))
  echo "==> advisories: $count from the snapshot $db (commit ${commit:0:12}, $date, $age days old)"
  if [ "$age" -gt 90 ]; then
    echo "check-deps: warning: the advisory snapshot is $age days old; advisories published since $date are not checked (docs/supply-chain.md, \"Refreshing the snapshot\")" >&2
  fi
else
  echo "==> advisories: $count from $db (no commit and date in its SNAPSHOT.txt)"
  echo "check-deps: warning: $db/SNAPSHOT.txt does not say which upstream commit this is" >&2
fi

# cargo-deny opens <db-path>/advisory-db-<hash of the db URL> as a git
# repository and never fetches it with --offline. The folder name is the
# one cargo-deny derives from deny.toml's db-urls (the upstream URL).
work="$(mktemp -d "${TMPDIR:-/tmp}/signet-check-deps.XXXXXX")"
trap 'rm -rf "$work"' EXIT
repo="$work/advisory-db-3157b0e258782691"
cp -R "$db" "$repo"
chmod -R u+w "$repo"   # CI's copy of shared/ has no write bits
rm -rf "$repo/.git"
# Not the repository a caller's GIT_DIR (a hook, say) points at.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY
git -C "$repo" init -q
git -C "$repo" add -A
git -C "$repo" -c user.name=signet -c user.email=signet@localhost -c commit.gpgsign=false \
  commit -q -m "RustSec advisory-db snapshot ${commit:-unknown} (${date:-undated})"
export SIGNET_DENY_DB_ROOT="$work"

# Every crate of the lock, for every platform, from crates.io (a no-op once
# they are downloaded): cargo-deny itself then runs with cargo --offline.
echo "==> cargo fetch --locked ($manifest)"
cargo fetch --locked --quiet --manifest-path "$manifest"

echo "==> cargo deny check advisories bans licenses sources"
cargo deny --frozen --manifest-path "$manifest" --config "$root/deny.toml" \
  check --show-stats advisories bans licenses sources
