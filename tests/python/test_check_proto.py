"""scripts/check-proto.sh, the API contract's guard, proved on planted
changes: in a throw-away git repository holding a copy of proto/, buf.yaml
and the script, a breaking change fails the check unless a commit of the
change carries a `Breaking-API:` trailer (also when a merge brings it in),
a lint error fails it whatever the trailer, and a shallow clone or a
missing buf fails it with the fix rather than skipping.

Runs the pinned buf of tools/buf (scripts/setup.sh installs it); without
it these tests fail, never skip. Needs no server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "tools/buf/node_modules/.bin/buf"
SIGNER = "proto/signet/v1/signer.proto"
COMMON = "proto/signet/v1/common.proto"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def _buf() -> str:
    assert BUF.exists(), f"buf is missing ({BUF}): run 'npm ci --prefix tools/buf --ignore-scripts' (scripts/setup.sh does)"
    return str(BUF)


class Repo:
    """A git repository with the project's proto/, buf.yaml and script."""

    def __init__(self, path: Path):
        self.path = path

    def git(self, *args: str) -> str:
        r = subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True,
                           env={**os.environ, **GIT_ENV}, timeout=60)
        assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
        return r.stdout

    def edit(self, rel: str, old: str, new: str) -> None:
        f = self.path / rel
        text = f.read_text()
        assert old in text, f"{old!r} is not in {rel}"
        f.write_text(text.replace(old, new, 1))

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def check(self, *args: str, buf: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **GIT_ENV, "BUF": buf or _buf()}
        return subprocess.run(["bash", "scripts/check-proto.sh", *args], cwd=self.path,
                              capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def repo(tmp_path) -> Repo:
    r = Repo(tmp_path / "repo")
    (r.path / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/check-proto.sh", r.path / "scripts")
    shutil.copy(ROOT / "buf.yaml", r.path)
    shutil.copytree(ROOT / "proto", r.path / "proto")
    r.git("init", "-q", "-b", "main")
    r.commit("the API as it is")
    return r


def output(r: subprocess.CompletedProcess) -> str:
    return r.stdout + r.stderr


def rename_a_field(repo: Repo) -> None:
    repo.edit(SIGNER, "  string key_version_id = 3;\n  // The key's algorithm.", "  string kid = 3;\n  // The key's algorithm.")


def remove_an_rpc(repo: Repo) -> None:
    repo.edit(SIGNER, "  rpc GetJwks(GetJwksRequest) returns (GetJwksResponse);\n", "")


def test_the_checked_in_proto_passes_lint_and_an_addition_passes_breaking(repo):
    repo.edit(SIGNER, "message GetJwksRequest {\n  // The key's name.\n  string key = 1;\n",
              "message GetJwksRequest {\n  // The key's name.\n  string key = 1;\n  // A new field.\n  bool pretty = 2;\n")
    repo.commit("GetJwks: an optional field")
    r = repo.check()
    assert r.returncode == 0, output(r)
    assert "check-proto: ok" in r.stdout


@pytest.mark.parametrize("change", [rename_a_field, remove_an_rpc], ids=["renamed field", "removed RPC"])
def test_a_breaking_change_fails_without_the_trailer(repo, change):
    change(repo)
    repo.commit("an innocent-looking change")
    r = repo.check()
    assert r.returncode == 1, output(r)
    assert "breaks generated clients" in r.stderr
    assert "Breaking-API:" in r.stderr, "the failure does not say how to mark a deliberate break"
    assert "signer.proto" in r.stdout, "buf's findings are not shown"


def test_a_breaking_change_with_the_trailer_passes_and_prints_its_reason(repo):
    rename_a_field(repo)
    repo.commit("Sign: kid instead of key_version_id\n\nBreaking-API: no client is released; kid is the JOSE name")
    r = repo.check()
    assert r.returncode == 0, output(r)
    assert 'changed name from "key_version_id" to "kid"' in r.stdout, "the breaks are not reported"
    assert "Breaking-API: no client is released; kid is the JOSE name" in r.stdout
    assert "deliberate" in r.stdout


def test_the_trailer_counts_only_as_a_trailer_and_only_with_a_reason(repo):
    rename_a_field(repo)
    # In the body, not the closing trailer block, and then with no reason.
    repo.commit("rename\n\nBreaking-API: said mid-message\n\nand then more prose")
    assert repo.check().returncode == 1
    repo.git("commit", "-q", "--amend", "-m", "rename\n\nBreaking-API:")
    assert repo.check().returncode == 1


def test_the_trailer_of_an_older_commit_does_not_cover_a_new_break(repo):
    repo.edit(SIGNER, "  string key_version_id = 3;\n  // The key's algorithm.", "  string kid = 3;\n  // The key's algorithm.")
    repo.commit("first break\n\nBreaking-API: deliberate")
    remove_an_rpc(repo)
    repo.commit("second break, unannounced")
    r = repo.check()
    assert r.returncode == 1, output(r)


def _branch_with(repo: Repo, message: str) -> None:
    repo.git("checkout", "-q", "-b", "topic")
    remove_an_rpc(repo)
    repo.commit(message)
    (repo.path / "NOTES").write_text("a later commit that does not touch proto/\n")
    repo.commit("notes")
    repo.git("checkout", "-q", "main")
    (repo.path / "OTHER").write_text("main moved on meanwhile\n")
    repo.commit("unrelated work on main")
    repo.git("merge", "-q", "--no-ff", "--no-edit", "topic")


def test_a_merge_passes_on_the_trailer_of_the_branch_commit_that_breaks(repo):
    _branch_with(repo, "drop GetJwks\n\nBreaking-API: JWKS moves to HTTP")
    assert "Breaking-API" not in repo.git("log", "-1", "--format=%B")
    r = repo.check()
    assert r.returncode == 0, output(r)
    assert "Breaking-API: JWKS moves to HTTP" in r.stdout
    # The next commit on main compares with the merge: nothing breaks.
    (repo.path / "MORE").write_text("later\n")
    repo.commit("after the merge")
    r = repo.check()
    assert r.returncode == 0 and "deliberate" not in r.stdout, output(r)


def test_a_merge_of_an_unannounced_break_fails(repo):
    _branch_with(repo, "drop GetJwks")
    r = repo.check()
    assert r.returncode == 1, output(r)
    assert "breaks generated clients" in r.stderr


def test_against_a_named_revision_covers_the_whole_branch(repo):
    repo.git("checkout", "-q", "-b", "topic")
    remove_an_rpc(repo)
    repo.commit("drop GetJwks")
    (repo.path / "NOTES").write_text("x\n")
    repo.commit("notes")
    # HEAD^1 already lacks the RPC: the default check sees no break ...
    assert repo.check().returncode == 0
    # ... and against main it does.
    r = repo.check("--against", "main")
    assert r.returncode == 1, output(r)


def test_a_lint_error_fails_even_with_the_trailer(repo):
    repo.edit(COMMON, "  PROTECTION_LEVEL_HSM = 2;\n", "  PROTECTION_LEVEL_HSM = 2;\n  // A new level.\n  CLOUD_KMS = 3;\n")
    repo.commit("a new protection level\n\nBreaking-API: not a break, a lint error")
    r = repo.check()
    assert r.returncode == 1, output(r)
    assert 'Enum value name "CLOUD_KMS" should be prefixed with "PROTECTION_LEVEL_"' in r.stdout
    assert "buf lint found the problems above" in r.stderr


def test_a_second_service_without_suffix_fails_lint(repo):
    # buf.yaml's one exception covers Signer and KeyAdmin, not a new file.
    (repo.path / "proto/signet/v1/audit.proto").write_text(
        'syntax = "proto3";\n\npackage signet.v1;\n\n// Audit.\nservice Audit {\n'
        "  // Tail.\n  rpc Tail(TailRequest) returns (TailResponse);\n}\n\n"
        "// Input.\nmessage TailRequest {}\n\n// Output.\nmessage TailResponse {}\n"
    )
    repo.commit("an audit service")
    r = repo.check()
    assert r.returncode == 1, output(r)
    assert 'Service name "Audit" should be suffixed with "Service"' in r.stdout


def test_a_shallow_clone_fails_with_the_fix(repo, tmp_path):
    rename_a_field(repo)
    repo.commit("a change")
    shallow = Repo(tmp_path / "shallow")
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(shallow.path)],
                   check=True, capture_output=True, env={**os.environ, **GIT_ENV}, timeout=60)
    r = shallow.check()
    assert r.returncode == 1, output(r)
    assert "shallow" in r.stderr and "git fetch --deepen=1" in r.stderr
    shallow.git("fetch", "-q", "--deepen=1")
    r = shallow.check()
    assert r.returncode == 1 and "breaks generated clients" in r.stderr, output(r)


def test_a_missing_buf_fails_with_the_install_command(repo, tmp_path):
    r = repo.check(buf=str(tmp_path / "no-buf"))
    assert r.returncode == 1
    assert "buf is missing" in r.stderr and "npm ci --prefix tools/buf" in r.stderr


def test_the_pinned_buf_is_the_one_installed():
    pkg = (ROOT / "tools/buf/package.json").read_text()
    lock = (ROOT / "tools/buf/package-lock.json").read_text()
    r = subprocess.run([_buf(), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    version = r.stdout.strip()
    assert f'"@bufbuild/buf": "{version}"' in pkg, "package.json does not pin the installed buf exactly"
    assert f'"node_modules/@bufbuild/buf": {{\n      "version": "{version}"' in lock


def test_the_script_passes_shellcheck():
    assert shutil.which("shellcheck"), "shellcheck is not installed: apt-get install -y shellcheck"
    r = subprocess.run(["shellcheck", "scripts/check-proto.sh", "scripts/setup.sh", "scripts/test.sh"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
