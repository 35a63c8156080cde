#!/usr/bin/env bash
# A CycloneDX SBOM (JSON, spec 1.5) of what the signet binary is built
# from: every crate of Cargo.lock that the binary depends on for one
# platform (normal dependencies, transitively; no dev- or build-only
# dependencies), each with its version, licence expression, purl
# (pkg:cargo/NAME@VERSION) and the SHA-256 Cargo.lock pins. This is what the
# container image contains besides its distroless base (docs/supply-chain.md).
#
#   bash scripts/sbom.sh [OUT]       # default: target/sbom/signet.cdx.json
#
# The platform is this machine's (rustc -vV), or $SIGNET_SBOM_TARGET (a
# target triple, e.g. aarch64-unknown-linux-gnu). Cargo.lock must be up to
# date: the SBOM is of the locked tree, nothing is re-resolved.
# Needs cargo-cyclonedx (the version scripts/setup.sh installs) and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cyclonedx_version=0.5.9   # keep in step with scripts/setup.sh

die() { echo "sbom: $*" >&2; exit 1; }

out="${1:-$root/target/sbom/signet.cdx.json}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

have="$(cargo cyclonedx --version 2>/dev/null | awk '{print $2}')" \
  || die "cargo-cyclonedx is not installed: bash scripts/setup.sh (or cargo install --locked cargo-cyclonedx --version $cyclonedx_version)"
[ "$have" = "$cyclonedx_version" ] \
  || die "cargo-cyclonedx $have found, $cyclonedx_version wanted: bash scripts/setup.sh"
command -v python3 >/dev/null || die "python3 is needed"

target="${SIGNET_SBOM_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
[ -n "$target" ] || die "cannot tell this machine's target triple (rustc -vV); set SIGNET_SBOM_TARGET"
manifest="$root/Cargo.toml"

# cargo-cyclonedx runs cargo metadata without --locked; this fails first
# if Cargo.lock would have to change.
cargo metadata --locked --quiet --format-version 1 --manifest-path "$manifest" >/dev/null \
  || die "Cargo.lock is not up to date with Cargo.toml (cargo metadata --locked failed)"

work="$(mktemp -d "${TMPDIR:-/tmp}/signet-sbom.XXXXXX")"
raw=".signet-sbom-$$"   # cargo-cyclonedx writes beside Cargo.toml: $root/$raw.json
trap 'rm -rf "$work" "${root:?}/$raw.json"' EXIT

cargo cyclonedx --manifest-path "$manifest" --format json --spec-version 1.5 \
  --all --no-build-deps --target "$target" --override-filename "$raw" --quiet
[ -s "$root/$raw.json" ] || die "cargo-cyclonedx wrote no $root/$raw.json"

# What cargo really builds into the binary for that platform: cargo tree
# applies the feature resolver. cargo-cyclonedx reads cargo metadata's
# resolve instead, which also lists optional dependencies that only a weak
# feature (`dep?/feature`) names and that are never built (rust-lang/cargo
# issue 10801); those are dropped below, and a crate the tree has but the
# SBOM lacks is an error.
cargo tree --locked --quiet --manifest-path "$manifest" --target "$target" \
  -e normal --prefix none --format '{p}' >"$work/tree.txt"

mkdir -p "$(dirname "$out")"
python3 - "$root/$raw.json" "$work/tree.txt" "$out.tmp" <<'EOF'
import json
import sys

raw, tree, out = sys.argv[1:]
bom = json.load(open(raw, encoding="utf-8"))
built = set()
for line in open(tree, encoding="utf-8"):
    parts = line.split()
    if len(parts) >= 2 and parts[1].startswith("v"):
        built.add(f"{parts[0]}@{parts[1][1:]}")

top = bom["metadata"]["component"]
built.discard(f"{top['name']}@{top['version']}")
key = lambda c: f"{c['name']}@{c['version']}"
listed = {key(c) for c in bom["components"]}
lacking = sorted(built - listed)
if lacking:
    sys.exit("sbom: cargo tree builds crates the SBOM does not list: " + ", ".join(lacking))

dropped = [c for c in bom["components"] if key(c) not in built]
gone = {c["bom-ref"] for c in dropped}
bom["components"] = [c for c in bom["components"] if key(c) in built]
bom["dependencies"] = [
    {**d, "dependsOn": [r for r in d.get("dependsOn", []) if r not in gone]}
    for d in bom.get("dependencies", [])
    if d["ref"] not in gone
]
if dropped:
    print("sbom: left out, in cargo metadata's resolve but not built (cargo tree): "
          + ", ".join(sorted(key(c) for c in dropped)), file=sys.stderr)
with open(out, "w", encoding="utf-8") as f:
    json.dump(bom, f, indent=2)
    f.write("\n")
print(f"sbom: {len(bom['components'])} crates")
EOF
mv "$out.tmp" "$out"
echo "sbom: wrote $out (CycloneDX 1.5, signet $target)"
