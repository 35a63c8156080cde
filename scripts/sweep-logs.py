#!/usr/bin/env python3
"""After the Rust integration tests: no secret a test handed to a server
appears in any log line those servers wrote.

    python3 scripts/sweep-logs.py target/tmp/integration-logs

Secrets are what the tests recorded (PID.secrets: PINs, imported secrets),
every byte-string literal with "secret" in it anywhere under
tests/integration/, and
markers no log line may carry (PEM private keys, bearer tokens).
Exit 1 on a hit (the line is not printed, only where it is)."""

import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
logdir = pathlib.Path(sys.argv[1])
logs = sorted(logdir.glob("*.log"))
if not logs:
    sys.exit(f"sweep-logs: no logs in {logdir}: the integration tests wrote none")

literals = set()
for src in (root / "tests" / "integration").rglob("*.rs"):
    for m in re.finditer(rb'b"([^"\\]*(?:secret|Secret|SECRET)[^"\\]*)"', src.read_bytes()):
        literals.add(m.group(1))
markers = ["PRIVATE KEY-----", "Bearer ", "sgt_"]

lines_checked = 0
for log in logs:
    forms = set(markers)
    for lit in literals:
        forms.add(lit.decode())
        forms.add(lit.hex())
    sec = log.with_suffix(".secrets")
    if sec.exists():
        for line in sec.read_text().splitlines():
            kind, _, value = line.partition(":")
            if value:
                forms.add(value)
    text = log.read_text(errors="replace")
    lines_checked += text.count("\n")
    for n, line in enumerate(text.splitlines(), 1):
        for form in forms:
            if form and form in line:
                sys.exit(f"sweep-logs: a secret ({form[:6]}…) is in {log.name} line {n}")
if lines_checked == 0:
    sys.exit("sweep-logs: the logs are empty")
print(f"sweep-logs: {len(logs)} log(s), {lines_checked} lines, no secret")
