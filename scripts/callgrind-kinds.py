#!/usr/bin/env python3
"""Where signet's instructions per call go beyond the floor's, by kind of
work: the last step of scripts/profile-callgrind.sh.

    python3 scripts/callgrind-kinds.py WORKDIR

WORKDIR holds floor.json / signet.json (the bench results, for the call
counts) and floor.callgrind.1 / signet.callgrind.1. Each function's self
cost per call in the floor is subtracted from the same function's in
signet, and the differences are summed by kind (the first pattern below
that matches the function's name wins). SHA-256 is left out, as the
script's headline figure leaves it out. Prints a Markdown table.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys

# (kind, pattern on the function name); order matters.
KINDS = [
    ("audit JSON: serde_json, the timestamp, the digest's hex", r"serde|humantime|audit::|core::fmt|alloc::fmt"),
    ("metrics: OpenTelemetry and the hashing of attribute sets", r"opentelemetry|sip::|hash_one|KeyValue|SlicePartialEq"),
    ("HPACK strings: the authorization header in, x-request-id out", r"hpack"),
    ("memory: memcpy, malloc, free", r"memcpy|malloc|free|realloc|unlink_chunk|__rdl|memcmp|finish_grow|reserve"),
    ("header maps and gRPC metadata", r"http::header|tonic::metadata|HeaderName|as_header_name|extensions"),
    ("signet's own code: auth, registry, handlers, layers", r"signet::"),
    ("tokio", r"tokio"),
    ("h2 framing and streams", r"h2::"),
    ("rand: the request id", r"rand"),
]
LINE = re.compile(r"\s*([\d,]+) \([^)]*\)\s+(.*)$")


def per_call(workdir: str, name: str) -> collections.Counter:
    with open(f"{workdir}/{name}.json", encoding="utf-8") as f:
        calls = json.load(f)["requests"]
    if not calls:
        sys.exit(f"callgrind-kinds: {name} made no calls")
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", f"{workdir}/{name}.callgrind.1"],
        capture_output=True, text=True, check=True,
    ).stdout
    cost: collections.Counter = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in m.group(2):
            continue
        where = re.sub(r" \[[^\]]*\]$", "", m.group(2))
        function = where.split(":", 1)[1] if ":" in where else where
        cost[function] += int(m.group(1).replace(",", "")) / calls
    return cost


def by_kind(floor: collections.Counter, signet: collections.Counter) -> tuple[dict, float]:
    """Signet's self cost per call minus the floor's, summed by kind; and
    what no kind matched."""
    sums = {kind: 0.0 for kind, _ in KINDS}
    other = 0.0
    for function in set(floor) | set(signet):
        if "sha2::" in function:
            continue
        extra = signet[function] - floor[function]
        for kind, pattern in KINDS:
            if re.search(pattern, function):
                sums[kind] += extra
                break
        else:
            other += extra
    return sums, other


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sums, other = by_kind(per_call(sys.argv[1], "floor"), per_call(sys.argv[1], "signet"))
    print("| kind of work | instructions per call over the floor |")
    print("|---|---|")
    for kind, _ in KINDS:
        print(f"| {kind} | {sums[kind]:,.0f} |")
    print(f"| everything else | {other:,.0f} |")
    print(f"| **total** | {sum(sums.values()) + other:,.0f} |")


if __name__ == "__main__":
    main()
