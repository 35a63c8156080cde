"""scripts/fuzz.sh catches what it is there to catch: a crash planted in
the canonical_json target (SIGNET_FUZZ_PLANT=1, on input that starts with
the plant's prefix; compiled only into fuzz builds) fails the run and names
the input, and the same input without the plant passes. scripts/test.sh
has built the targets and run each one for its bounded time before these
tests (docs/fuzzing.md); nothing here is skipped when cargo-fuzz is
missing: scripts/setup.sh installs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "scripts/fuzz.sh"
PREFIX = b"SIGNET-PLANTED-CRASH"


def _fuzz(tmp_path: Path, *args: str, plant: bool) -> subprocess.CompletedProcess:
    seeds = tmp_path / "seeds"
    seeds.mkdir(exist_ok=True)
    (seeds / "planted").write_bytes(PREFIX + b' {"x": 1}')
    env = dict(os.environ, SIGNET_FUZZ_SEEDS=str(seeds), SIGNET_FUZZ_WORK=str(tmp_path / "work"))
    env.pop("SIGNET_FUZZ_PLANT", None)
    if plant:
        env["SIGNET_FUZZ_PLANT"] = "1"
    return subprocess.run(["bash", SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


def test_the_script_parses_and_passes_shellcheck():
    assert subprocess.run(["bash", "-n", SCRIPT], cwd=ROOT).returncode == 0
    assert shutil.which("shellcheck"), "shellcheck is not installed: apt-get install -y shellcheck"
    r = subprocess.run(["shellcheck", "-x", SCRIPT], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_target_has_seeds_and_a_source():
    targets = subprocess.run(["bash", SCRIPT, "--list"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert set(targets) >= {"template", "canonical_json", "import", "config", "webhook_headers"}
    for t in targets:
        assert (ROOT / "fuzz/fuzz_targets" / f"{t}.rs").is_file(), t
        seeds = list((ROOT / "fuzz/corpus" / t).iterdir())
        assert seeds, f"{t} has no seed corpus"
        assert sum(f.stat().st_size for f in seeds) < 64 * 1024, f"{t}'s seeds are not small"


def test_an_unknown_target_is_refused():
    r = subprocess.run(["bash", SCRIPT, "1", "no-such-target"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown target no-such-target" in r.stderr


def test_a_planted_crash_fails_the_run_and_names_the_input(tmp_path):
    r = _fuzz(tmp_path, "20", "canonical_json", plant=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "canonical_json FAILED" in r.stderr
    assert "planted crash (SIGNET_FUZZ_PLANT=1)" in r.stderr
    m = re.search(r"failing input (fuzz/artifacts/canonical_json/crash-[0-9a-f]+)", r.stderr)
    assert m, r.stderr
    kept = ROOT / m.group(1)
    try:
        assert kept.read_bytes().startswith(PREFIX)
        # The input is in the log too, for a CI run whose files are gone.
        assert re.search(r"its base64: \S+", r.stderr)
    finally:
        kept.unlink()


def test_without_the_plant_the_same_input_passes(tmp_path):
    seeds = ROOT / "fuzz/corpus/canonical_json"
    before = sorted(p.name for p in seeds.iterdir())
    r = _fuzz(tmp_path, "3", "canonical_json", plant=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing found" in r.stdout
    # The run used a scratch copy of the corpus, never the repository's.
    assert (tmp_path / "work/corpus/canonical_json/planted").is_file()
    assert sorted(p.name for p in seeds.iterdir()) == before
