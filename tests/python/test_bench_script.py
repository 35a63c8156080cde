"""scripts/bench.sh, the one command that reproduces docs/benchmarks.md,
stays runnable: its scripts parse, every section it lists has its code and
its table renderer and is named in the doc, and the doc names no section
the script lacks. Nothing here runs a benchmark or times anything."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["scripts/bench.sh", "scripts/bench-lib.sh", "scripts/bench-pkcs11.sh", "scripts/bench-registry.sh"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=60)


def _sections() -> list[str]:
    r = _run("bash", "scripts/bench.sh", "--list")
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_parses(script):
    r = _run("bash", "-n", script)
    assert r.returncode == 0, r.stderr


def test_bench_scripts_pass_shellcheck():
    # scripts/setup.sh installs it; a machine without it fails, never skips.
    assert shutil.which("shellcheck"), "shellcheck is not installed: apt-get install -y shellcheck"
    r = _run("shellcheck", "-x", *SCRIPTS)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_listed_section_has_its_code_and_its_tables(tmp_path):
    sections = _sections()
    assert sections, "bench.sh --list lists no section"
    script = (ROOT / "scripts/bench.sh").read_text(encoding="utf-8")
    for s in sections:
        assert re.search(rf"^section_{s}\(\) {{", script, re.M), f"bench.sh has no section_{s}"
        # With no reports at all, the renderer still prints the tables (n/a).
        r = _run(sys.executable, "scripts/bench-tables.py", s, str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert "|---|" in r.stdout, f"bench-tables.py {s} printed no table"


def test_the_doc_names_exactly_the_script_sections():
    doc = (ROOT / "docs/benchmarks.md").read_text(encoding="utf-8")
    how = doc.split("## How to reproduce", 1)[-1].split("\n## ", 1)[0]
    assert re.search(r"^```sh\nbash scripts/bench\.sh\s", how, re.M), "How to reproduce is not one command"
    named = set()
    for m in re.finditer(r"bash scripts/bench\.sh(?: \d+)?((?: [a-z0-9]+)+)", doc):
        named.update(m.group(1).split())
    assert named == set(_sections())


def test_an_unknown_section_is_refused_before_anything_runs():
    r = _run("bash", "scripts/bench.sh", "1", "no-such-section")
    assert r.returncode == 2
    assert "unknown section" in r.stderr
