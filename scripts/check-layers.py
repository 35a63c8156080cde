#!/usr/bin/env python3
"""The import rules of docs/architecture.md, checked on src/.

Reads every `crate::...` path in src/**/*.rs (use lines and inline paths,
comments and doc links excluded), maps it to the file that defines the
module, and fails when

  * files form an import circle larger than two files (a strongly
    connected component of the file graph with three or more files), or
  * a module imports one from a higher layer (LAYERS below).

Prints the graph's worst offenders so a failure says what to move.
Usage: python3 scripts/check-layers.py [--graph]
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Layer of each top-level module, from the bottom up (docs/architecture.md).
# A module may import only modules of its own layer or below.
LAYERS = {
    "error": 1,
    "net": 1,
    "bounds": 1,
    "rpcs": 1,
    "telemetry": 1,
    "config": 2,
    "keys": 3,
    "httpsig": 3,
    "audit": 3,
    "postgres": 3,
    "auth": 4,
    "tls": 4,
    "listener": 4,
    "api": 5,
    "server": 6,
    "admin": 6,
    "cli": 6,
    "fuzz_entry": 6,
    "lib": 6,
    "main": 6,
}
# auth::policy is domain (layer 3); the rest of auth is the tower layer.
SUBLAYERS = {("auth", "policy"): 3}

PATH_RE = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)")
USE_GROUP_RE = re.compile(r"use\s+crate::\{([^;]*)\};", re.S)


def module_files() -> dict[tuple[str, ...], Path]:
    mods = {}
    for f in SRC.rglob("*.rs"):
        rel = f.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            mods[(parts[0],)] = f
            continue
        mods[tuple(parts)] = f
    return mods


def strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        s = line.lstrip()
        if s.startswith("//"):
            continue
        # Drop trailing comments (rough: no "//" inside strings in paths we care about).
        out.append(line.split("//", 1)[0] if "crate::" in line else line)
    return "\n".join(out)


def targets(text: str) -> set[tuple[str, ...]]:
    found = set()
    for m in PATH_RE.finditer(text):
        found.add(tuple(m.group(1).split("::")))
    for m in USE_GROUP_RE.finditer(text):
        for item in re.split(r",\s*", m.group(1)):
            item = item.strip().split("{")[0].strip(":").strip()
            if item:
                found.add(tuple(item.split("::")))
    return found


def resolve(path: tuple[str, ...], mods: dict) -> tuple[str, ...] | None:
    for n in range(len(path), 0, -1):
        if path[:n] in mods:
            return path[:n]
    return None


def layer(mod: tuple[str, ...]) -> int:
    for n in range(len(mod), 0, -1):
        if mod[:n] in SUBLAYERS:
            return SUBLAYERS[mod[:n]]
    return LAYERS.get(mod[0], 6)


def tarjan(graph: dict) -> list[list]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    mods = module_files()
    graph: dict[tuple, set] = defaultdict(set)
    upward = []
    for mod, f in sorted(mods.items()):
        if mod[-1].endswith("_tests") or mod[-1] == "tests":
            continue  # tests may reach anywhere in their own crate
        text = strip_comments(f.read_text())
        # Unit tests inside the file may reach anywhere too.
        text = re.split(r"#\[cfg\(test\)\]", text, maxsplit=1)[0]
        for t in targets(text):
            r = resolve(t, mods)
            if r is None or r == mod:
                continue
            # A parent module file declaring its children is not an import.
            if r[: len(mod)] == mod:
                continue
            graph[mod].add(r)
            if layer(r) > layer(mod):
                upward.append((mod, r))
    problems = 0
    for comp in tarjan(graph):
        if len(comp) > 2:
            problems += 1
            names = sorted("/".join(c) for c in comp)
            print(f"import circle of {len(comp)} files: {', '.join(names)}")
    for a, b in sorted(set(upward)):
        problems += 1
        print(f"upward import: {'/'.join(a)} (layer {layer(a)}) -> {'/'.join(b)} (layer {layer(b)})")
    if "--graph" in sys.argv:
        for a in sorted(graph):
            print("/".join(a), "->", ", ".join(sorted("/".join(b) for b in graph[a])))
    if problems:
        print(f"check-layers: {problems} problem(s); see docs/architecture.md")
        return 1
    print(f"check-layers: {len(mods)} modules, no circle over two files, no upward import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
