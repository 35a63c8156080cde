#!/usr/bin/env python3
"""The declared MSRV (`rust-version` in Cargo.toml) is the real one: no
locked package built for this platform needs a newer Rust.

    python3 scripts/check-msrv.py

(clippy's `incompatible_msrv` lint, run with -D warnings in
scripts/test.sh, checks signet's own use of the standard library against
the same version.)"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
declared = tomllib.loads((root / "Cargo.toml").read_text())["package"]["rust-version"]


def version(v: str) -> tuple[int, ...]:
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


host = next(
    line.split(": ", 1)[1]
    for line in subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines()
    if line.startswith("host: ")
)
meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout
)
built = {n["id"] for n in meta["resolve"]["nodes"]}
newer = sorted(
    (version(p["rust_version"]), p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] in built and p.get("rust_version") and version(p["rust_version"]) > version(declared)
)
if newer:
    for _, name, v, rv in newer:
        print(f"check-msrv: {name} {v} needs Rust {rv}", file=sys.stderr)
    sys.exit(f"check-msrv: Cargo.toml says rust-version = \"{declared}\"; the lock needs {newer[-1][3]}")
needed = max(
    (version(p["rust_version"]) for p in meta["packages"] if p["id"] in built and p.get("rust_version")),
    default=(0,),
)
print(f"check-msrv: rust-version {declared}; the most any locked package needs is {'.'.join(map(str, needed))}")
