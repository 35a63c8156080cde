#!/usr/bin/env bash
# The API contract's guard, a step of scripts/test.sh (so CI runs it):
#
#   1. `buf lint`: proto/ follows buf's STANDARD rules, with the one
#      exception buf.yaml records.
#   2. `buf breaking`: proto/ at HEAD breaks no client generated from proto/
#      as it was before this change reached main, unless the change says,
#      with a reason, that it breaks on purpose.
#
# Usage: bash scripts/check-proto.sh [--against REV]
#
# What "before" is. CI runs on a fresh clone of main, whose HEAD is the
# change being checked: a commit made on main, or the merge commit that
# brought a branch in. Either way its first parent, HEAD^1, is main as it
# was before, so that is the baseline. (Not HEAD~1 of the branch, nor the
# merge-base: a merge's first parent is the old main, and everything on main
# up to it has passed this check already.) --against REV sets another
# baseline, e.g. `--against main` on a branch before merging it.
#
# A deliberate break. The change is every commit in BASE..HEAD: for a plain
# commit, itself; for a merge, the merge commit and each commit of the
# branch it brought in. When one of them ends its message with a trailer
#
#   Breaking-API: <why clients may break, and what they must change>
#
# the breaking check still runs and prints what breaks, with each commit's
# reason, but does not fail. So the branch's own commit that breaks carries
# the reason, and the merge that brings it to main passes without repeating
# it; a squash merge must keep the trailer. docs/keys-and-api.md ("Changing
# the API") is the rule for when a break is acceptable.
#
# buf is the pinned one of tools/buf (`npm ci --prefix tools/buf`, which
# scripts/setup.sh runs); $BUF names another binary. A missing buf, a
# shallow clone without the baseline, or a baseline that is not a commit
# fails the check with the fix: nothing here is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  printf 'check-proto: %s\n' "$@" >&2
  exit 1
}

against=""
while [ $# -gt 0 ]; do
  case "$1" in
    --against) [ $# -ge 2 ] || fail "--against needs a revision"; against="$2"; shift 2 ;;
    --against=*) against="${1#--against=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument: $1 (usage: bash scripts/check-proto.sh [--against REV])" ;;
  esac
done

buf="${BUF:-tools/buf/node_modules/.bin/buf}"
if ! [ -x "$buf" ] && ! command -v "$buf" >/dev/null; then
  fail "buf is missing ($buf): install the pinned version with 'npm ci --prefix tools/buf' (bash scripts/setup.sh does)"
fi
[ -f buf.yaml ] || fail "no buf.yaml at $(pwd)"

echo "check-proto: buf lint ($("$buf" --version))"
if ! "$buf" lint; then
  fail "buf lint found the problems above: fix the proto (buf.yaml allows one exception, SERVICE_SUFFIX, and no other)"
fi

# --- The baseline.
git rev-parse --git-dir >/dev/null 2>&1 || fail "not a git repository: buf breaking needs the previous commit"
if [ -z "$against" ]; then
  if ! base=$(git rev-parse --verify --quiet 'HEAD^1^{commit}'); then
    if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
      fail "this clone is shallow: HEAD's parent, the proto to compare with, is not here." \
        "Fetch it ('git fetch --deepen=1') or clone without --depth."
    fi
    echo "check-proto: HEAD is the first commit: nothing to compare with"
    exit 0
  fi
else
  base=$(git rev-parse --verify --quiet "$against^{commit}") \
    || fail "--against $against is not a commit here (a shallow clone may lack it: 'git fetch --deepen=N')"
fi
if ! git cat-file -e "$base:proto" 2>/dev/null; then
  echo "check-proto: $(git rev-parse --short "$base") has no proto/: nothing to compare with"
  exit 0
fi

# --- The reasons given, one line per commit that gives one.
reasons=$(git log --format='%h%x09%(trailers:key=Breaking-API,valueonly,separator=%x20)' "$base..HEAD" \
  | awk -F '\t' '$2 ~ /[^[:space:]]/')

label="$(git rev-parse --short "$base")..$(git rev-parse --short HEAD)"
echo "check-proto: buf breaking against $label"
set +e
out=$("$buf" breaking proto --against ".git#ref=$base,subdir=proto" 2>&1)
rc=$?
set -e
[ -n "$out" ] && printf '%s\n' "$out"
case "$rc" in
  0)
    if [ -n "$reasons" ]; then
      echo "check-proto: nothing breaks, although $label says Breaking-API"
    fi
    echo "check-proto: ok"
    ;;
  100)
    # buf's exit status for findings; any other failure is not one.
    if [ -z "$reasons" ]; then
      fail "the change $label breaks generated clients (above)." \
        "Keep the old names and numbers (add, do not rename or renumber; reserve what you remove)," \
        "or, when the break is deliberate, end the message of the commit that makes it with" \
        "  Breaking-API: <why, and what clients must change>" \
        "(docs/keys-and-api.md, \"Changing the API\")."
    fi
    echo "check-proto: the breaks above are deliberate:"
    printf '%s\n' "$reasons" | while IFS=$'\t' read -r commit reason; do
      printf '  %s  Breaking-API: %s\n' "$commit" "$reason"
    done
    echo "check-proto: ok (deliberate break)"
    ;;
  *)
    fail "buf breaking failed (status $rc) without a verdict: see above"
    ;;
esac
