"""scripts/bench.sh, the one command that reproduces docs/benchmarks.md,
stays runnable: its scripts parse, every section it lists has its code and
its table renderer and is named in the doc, and the doc names no section
the script lacks. Nothing here runs a benchmark or times anything."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["scripts/bench.sh", "scripts/bench-lib.sh", "scripts/bench-pkcs11.sh", "scripts/bench-registry.sh",
           "scripts/profile-callgrind.sh", "scripts/bench-ab.sh"]


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


def test_against_the_target_is_computed_from_the_floor_of_the_same_run(tmp_path):
    # A `signet --json bench --floor` report: signet's fields plus "limit".
    limit = {
        "cpus": 2, "floor_requests_per_second": 30000.0, "floor_server_cpu_us_per_request": 20.0,
        "floor_client_cpu_us_per_request": 15.0, "signing_cpu_us_per_op": 5.0,
        "limit_requests_per_second": 50000.0, "signet_requests_per_second": 40000.0, "share_percent": 80.0,
        "signet_server_cpu_us_per_request": 27.0, "signet_overhead_cpu_us_per_request": 22.0,
        "overhead_ratio": 1.1, "target_share_percent": 90.0, "target_overhead_ratio": 1.15,
    }
    report = {"requests_per_second": 40000.0, "server_cpu_us_per_request": 27.0, "limit": limit}
    (tmp_path / "on-demo-hmac.json").write_text(json.dumps(report), encoding="utf-8")
    r = _run(sys.executable, "scripts/bench-tables.py", "grpc", str(tmp_path))
    assert r.returncode == 0, r.stderr
    target = r.stdout.split("Against the target", 1)[1]
    row = next(line for line in target.splitlines() if line.startswith("| HMAC-SHA256 |"))
    assert row == ("| HMAC-SHA256 | 30,000 | 20.0 + 15.0 µs | 5.0 µs | 2 / 40.0 µs = 50,000/s | 40,000 "
                   "| **80 %** (not met) | 22.0 µs | **1.10×** (met) |"), row
    # No fixed round trip from another day is left in the renderer.
    assert "75" not in target.split("\n\n", 1)[0]
    ecdsa = next(line for line in target.splitlines() if line.startswith("| ECDSA P-256 |"))
    assert ecdsa.count("n/a") == 8, ecdsa


def test_a_negative_overhead_is_no_reading_rather_than_met(tmp_path):
    # RSA can sign slower beside the RPC stack than alone by more than the
    # RPC costs: server CPU minus the lone signature is then below zero,
    # which says nothing about the RPC and must not pass as "met".
    limit = {
        "cpus": 2, "floor_requests_per_second": 30000.0, "floor_server_cpu_us_per_request": 40.0,
        "floor_client_cpu_us_per_request": 37.0, "signing_cpu_us_per_op": 968.0,
        "limit_requests_per_second": 1914.0, "signet_requests_per_second": 1880.0, "share_percent": 98.0,
        "signet_server_cpu_us_per_request": 949.0, "signet_overhead_cpu_us_per_request": -19.0,
        "overhead_ratio": -0.48, "target_share_percent": 90.0, "target_overhead_ratio": 1.15,
    }
    report = {"requests_per_second": 1880.0, "server_cpu_us_per_request": 949.0, "limit": limit}
    (tmp_path / "on-demo-rsa.json").write_text(json.dumps(report), encoding="utf-8")
    (tmp_path / "c8-demo-rsa.json").write_text(json.dumps(report), encoding="utf-8")
    r = _run(sys.executable, "scripts/bench-tables.py", "grpc", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| RSA-2048 |")]
    assert len(rows) == 2, rows
    for row in rows:
        assert "**-0.48×** (no reading" in row, row
        assert "×** (met)" not in row, row


def test_one_and_eight_in_flight_are_judged_on_their_own_floor_and_p99(tmp_path):
    # `c1-KEY` / `c8-KEY` are `--floor` runs at 1 and 8 in flight: the
    # ratio is the run's own, and at one in flight p99 is set against the
    # floor's p99 plus the signature's.
    def report(ratio: float, p99: float) -> dict:
        return {"requests_per_second": 5000.0, "server_cpu_us_per_request": 40.0,
                "latency_us": {"p50": 150.0, "p99": p99},
                "floor": {"latency_us": {"p50": 100.0, "p99": 200.0}},
                "signing": {"latency_us": {"p50": 1.0, "p99": 10.0}},
                "limit": {"floor_server_cpu_us_per_request": 25.0, "overhead_ratio": ratio,
                          "signet_overhead_cpu_us_per_request": 25.0 * ratio}}
    (tmp_path / "c1-demo-hmac.json").write_text(json.dumps(report(1.2, 252.0)), encoding="utf-8")
    (tmp_path / "c8-demo-hmac.json").write_text(json.dumps(report(1.1, 999.0)), encoding="utf-8")
    r = _run(sys.executable, "scripts/bench-tables.py", "grpc", str(tmp_path))
    assert r.returncode == 0, r.stderr
    part = r.stdout.split("At 1 and 8 calls in flight", 1)[1]
    rows = [line for line in part.splitlines() if line.startswith("| HMAC-SHA256 |")]
    assert rows == [
        "| HMAC-SHA256 | 1 | 5,000 | 25.0 µs | 30.0 µs | **1.20×** (not met) "
        "| 252 µs against 200 + 10.0 µs: **1.20×** (met) |",
        "| HMAC-SHA256 | 8 | 5,000 | 25.0 µs | 27.5 µs | **1.10×** (met) |  |",
    ], rows


def test_two_builds_are_compared_by_their_medians_round_by_round(tmp_path):
    ab = tmp_path / "ab"
    ab.mkdir()
    cpu = {"a": [40.0, 30.0, 50.0], "b": [20.0, 36.0, 24.0]}
    for side, values in cpu.items():
        for r, v in enumerate(values, 1):
            (ab / f"{r}.64x4.demo-hmac.{side}.json").write_text(
                json.dumps({"server_cpu_us_per_request": v, "requests_per_second": 1000 * r}))
    r = _run(sys.executable, "scripts/bench-tables.py", "ab", str(tmp_path))
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("| demo-hmac"))
    # Figures in round order; medians 40 and 24: -40 %.
    assert "| 40.0, 30.0, 50.0 µs | 20.0, 36.0, 24.0 µs | 40.0 → 24.0 µs (-40%) |" in row, row
    assert "1,000 / 2,000 / 3,000 → 1,000 / 2,000 / 3,000" in row, row


def test_an_ab_run_needs_two_builds():
    r = _run("bash", "scripts/bench-ab.sh", "/bin/true")
    assert r.returncode == 2
    assert "usage" in r.stderr


def test_callgrind_kinds_subtract_the_floor_per_function_and_leave_sha_out():
    import collections
    import importlib.util
    spec = importlib.util.spec_from_file_location("callgrind_kinds", ROOT / "scripts/callgrind-kinds.py")
    kinds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kinds)
    floor = collections.Counter({"h2::hpack::encoder::encode_str": 100.0, "__memcpy_avx_unaligned_erms": 50.0})
    signet = collections.Counter({
        "h2::hpack::encoder::encode_str": 900.0,
        "__memcpy_avx_unaligned_erms": 80.0,
        "serde_json::ser::format_escaped_str_contents": 3000.0,
        "sha2::sha256::compress256": 99999.0,
        "something::unknown": 7.0,
    })
    sums, other = kinds.by_kind(floor, signet)
    by_prefix = {kind.split(":")[0]: total for kind, total in sums.items()}
    assert by_prefix["HPACK strings"] == 800.0
    assert by_prefix["memory"] == 30.0
    assert by_prefix["audit JSON"] == 3000.0
    assert other == 7.0
    assert sum(sums.values()) + other == 3837.0
