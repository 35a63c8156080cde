"""The supply-chain checks work (docs/supply-chain.md):

- scripts/check-deps.sh runs cargo-deny offline against the RustSec
  snapshot and deny.toml: signet's own tree passes, with a licence allow-list
  that names nothing the tree does not use; a throw-away project locked to a
  version with a known advisory fails, naming the advisory; a missing
  snapshot is an error, never a skip.
- scripts/sbom.sh writes a CycloneDX SBOM listing exactly the locked crates
  the signet binary is built from for this platform, each with its purl,
  licence and the checksum Cargo.lock pins.

Both need the pinned cargo-deny and cargo-cyclonedx (scripts/setup.sh
installs them); cargo-deny reaches crates.io for nothing but crates the
lock names that are not downloaded yet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["scripts/check-deps.sh", "scripts/sbom.sh"]
# smallvec 1.6.0: SmallVec::insert_many overflows its buffer (fixed in 1.6.1).
PLANTED = ("smallvec", "1.6.0", "RUSTSEC-2021-0003")
TIMEOUT = 900


def _run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _host() -> str:
    out = _run("rustc", "-vV").stdout
    return re.search(r"^host: (\S+)$", out, re.M).group(1)


def _lock() -> dict[tuple[str, str], dict]:
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text(encoding="utf-8"))
    return {(p["name"], p["version"]): p for p in lock["package"]}


# --- the scripts themselves


@pytest.mark.parametrize("script", SCRIPTS)
def test_supply_chain_script_parses(script):
    r = _run("bash", "-n", script)
    assert r.returncode == 0, r.stderr


def test_supply_chain_scripts_pass_shellcheck():
    assert shutil.which("shellcheck"), "shellcheck is not installed: apt-get install -y shellcheck"
    r = _run("shellcheck", *SCRIPTS, "scripts/setup.sh")
    assert r.returncode == 0, r.stdout + r.stderr


def test_tool_versions_are_pinned_alike_in_setup_and_scripts():
    setup = (ROOT / "scripts/setup.sh").read_text(encoding="utf-8")
    pinned = dict(re.findall(r"\b(cargo-deny|cargo-cyclonedx)@(\d+\.\d+\.\d+)\b", setup))
    assert set(pinned) == {"cargo-deny", "cargo-cyclonedx"}, pinned
    deps = (ROOT / "scripts/check-deps.sh").read_text(encoding="utf-8")
    sbom = (ROOT / "scripts/sbom.sh").read_text(encoding="utf-8")
    assert re.search(rf"^deny_version={re.escape(pinned['cargo-deny'])}\b", deps, re.M)
    assert re.search(rf"^cyclonedx_version={re.escape(pinned['cargo-cyclonedx'])}\b", sbom, re.M)


# --- scripts/check-deps.sh


def test_signets_tree_passes_every_check():
    r = _run("bash", "scripts/check-deps.sh")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-8000:]
    for check in ("advisories", "bans", "licenses", "sources"):
        assert re.search(rf"^\s*{check} ok:", out, re.M), f"no '{check} ok' in:\n{out[-4000:]}"
    # It says which snapshot it used.
    assert re.search(r"==> advisories: \d+ from the snapshot .* \(commit [0-9a-f]{12}, \d{4}-\d\d-\d\d", out), out[:2000]
    # The licence allow-list is what the tree needs, nothing more.
    assert "license-not-encountered" not in out, "deny.toml allows a licence no crate uses"


def _planted_project(tmp_path: Path) -> Path:
    name, version, _ = PLANTED
    project = tmp_path / "planted"
    (project / "src").mkdir(parents=True)
    (project / "src" / "lib.rs").write_text("")
    (project / "Cargo.toml").write_text(
        "[package]\n"
        'name = "planted"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n'
        'license = "Apache-2.0"\n\n'
        f'[dependencies]\n{name} = "={version}"\n\n'
        "[workspace]\n"
    )
    r = _run("cargo", "generate-lockfile", "--manifest-path", str(project / "Cargo.toml"))
    assert r.returncode == 0, r.stderr
    lock = tomllib.loads((project / "Cargo.lock").read_text())
    assert {(p["name"], p["version"]) for p in lock["package"]} >= {(name, version)}
    return project


def test_a_planted_vulnerable_version_fails_the_check(tmp_path):
    project = _planted_project(tmp_path)
    r = _run("bash", str(ROOT / "scripts/check-deps.sh"), str(project / "Cargo.toml"), cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-4000:]
    assert "error[vulnerability]" in out, out[-4000:]
    assert f"ID: {PLANTED[2]}" in out, out[-4000:]
    assert re.search(r"^\s*advisories FAILED:", out, re.M), out[-4000:]
    # The advisory alone fails it: the same project is fine otherwise.
    for check in ("bans", "licenses", "sources"):
        assert re.search(rf"^\s*{check} ok:", out, re.M), out[-4000:]


def test_a_missing_snapshot_is_an_error_not_a_skip(tmp_path):
    env = dict(os.environ, SIGNET_ADVISORY_DB=str(tmp_path / "no-such-db"))
    r = _run("bash", "scripts/check-deps.sh", env=env)
    assert r.returncode != 0
    assert f"no RustSec advisory database at {tmp_path / 'no-such-db'}" in r.stderr
    assert "cargo deny check" not in r.stdout


def test_a_snapshot_without_advisories_is_refused(tmp_path):
    (tmp_path / "db" / "crates").mkdir(parents=True)
    env = dict(os.environ, SIGNET_ADVISORY_DB=str(tmp_path / "db"))
    r = _run("bash", "scripts/check-deps.sh", env=env)
    assert r.returncode != 0
    assert "holds no RUSTSEC-*.md advisory" in r.stderr


def test_every_ignored_advisory_has_a_reason_and_is_documented():
    cfg = tomllib.loads((ROOT / "deny.toml").read_text(encoding="utf-8"))
    doc = (ROOT / "docs/supply-chain.md").read_text(encoding="utf-8")
    assert cfg["advisories"]["db-urls"] == ["https://github.com/rustsec/advisory-db"], (
        "check-deps.sh names the database folder after this URL's hash"
    )
    for entry in cfg["advisories"].get("ignore", []):
        assert isinstance(entry, dict) and re.fullmatch(r"RUSTSEC-\d{4}-\d{4}", entry.get("id", "")), entry
        assert len(entry.get("reason", "").split()) >= 5, f"{entry['id']}: say why signet is not affected"
        assert entry["id"] in doc, f"{entry['id']} is ignored in deny.toml but not listed in docs/supply-chain.md"


# --- scripts/sbom.sh


@pytest.fixture(scope="module")
def sbom(tmp_path_factory) -> dict:
    here = tmp_path_factory.mktemp("sbom")
    # A relative OUT is taken from where the script was started.
    r = _run("bash", str(ROOT / "scripts/sbom.sh"), "out/signet.cdx.json", cwd=here)
    assert r.returncode == 0, r.stdout + r.stderr
    path = here / "out" / "signet.cdx.json"
    assert path.is_file(), r.stdout + r.stderr
    assert not list(ROOT.glob(".signet-sbom-*")), "sbom.sh left its raw output beside Cargo.toml"
    return json.loads(path.read_text(encoding="utf-8"))


def _built_crates() -> set[tuple[str, str]]:
    """What cargo builds into signet for this platform (the feature resolver's view)."""
    r = _run("cargo", "tree", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}", "--target", _host())
    assert r.returncode == 0, r.stderr
    crates = set()
    for line in r.stdout.splitlines():
        name, version = line.split()[:2]
        crates.add((name, version.removeprefix("v")))
    crates.discard(("signet", "0.1.0"))
    return crates


def test_sbom_is_cyclonedx(sbom):
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"] == "1.5"
    assert isinstance(sbom["components"], list) and sbom["components"]
    top = sbom["metadata"]["component"]
    assert (top["name"], top["type"]) == ("signet", "application")
    assert {"name": "cdx:rustc:sbom:target:triple", "value": _host()} in sbom["metadata"]["properties"]
    refs = [c["bom-ref"] for c in sbom["components"]]
    assert len(refs) == len(set(refs)), "duplicate bom-ref"
    known = set(refs) | {top["bom-ref"]}
    for dep in sbom["dependencies"]:
        assert dep["ref"] in known, dep["ref"]
        assert set(dep.get("dependsOn", [])) <= known, dep["ref"]


def test_sbom_lists_exactly_the_locked_crates_the_binary_uses(sbom):
    listed = {(c["name"], c["version"]) for c in sbom["components"]}
    built = _built_crates()
    assert listed == built, f"only in the SBOM: {sorted(listed - built)}; only in cargo tree: {sorted(built - listed)}"
    lock = _lock()
    assert listed <= set(lock), f"not in Cargo.lock: {sorted(listed - set(lock))}"
    # Every direct dependency of the binary is there at its locked version...
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    names = {n for n, _ in listed}
    assert set(manifest["dependencies"]) <= names, set(manifest["dependencies"]) - names
    # ... and nothing only the tests or build.rs use.
    for only_dev_or_build in ("proptest", "tempfile", "protox", "tonic-prost-build", "prost-build", "cc", "cmake"):
        assert only_dev_or_build not in names, f"{only_dev_or_build} is not in the binary"


def test_every_sbom_component_has_purl_licence_and_locked_checksum(sbom):
    lock = _lock()
    for c in sbom["components"]:
        name, version = c["name"], c["version"]
        assert c["purl"] == f"pkg:cargo/{name}@{version}", c["purl"]
        assert c["scope"] == "required", name
        assert c.get("licenses") and all(lic.get("expression") for lic in c["licenses"]), f"{name}: no licence"
        checksum = lock[(name, version)].get("checksum")
        assert checksum, f"{name} {version} is not a crates.io package with a checksum"
        assert {"alg": "SHA-256", "content": checksum} in c["hashes"], f"{name}: hash differs from Cargo.lock"
