"""The documentation works when followed: every ```sh block of README.md,
docs/*.md and docs/presets/*.md runs, and every ```toml block that is a
whole configuration passes `signet check-config`.

How a page runs (docs_runner.py does it):

- Its ```sh blocks run in order in one bash session (`set -euo pipefail`),
  in a fresh directory that stands for the repository root: it holds
  symlinks to the repository's proto/, softhsm/, examples/ and helm/ and
  nothing else, so whatever a page writes lands there. Each block starts
  in that directory (a `cd` lasts to the end of its block, as the docs'
  commands are written to be run from the repository root); variables,
  exports and background processes last to the end of the page, when
  every process the page started gets SIGTERM (SIGKILL, and a failure,
  15 s later). `mktemp` writes under the page's directory (TMPDIR).
- `signet` on the PATH is $SIGNET_BIN. A signet server for the page runs
  as "the service running in another terminal" of the docs: the demo
  configuration (`signet serve`, no --config), or the page's own
  configuration when a ```toml block carries `serve NAME` (below), on a
  free loopback port that SIGNET_ENDPOINT names. Its log must not hold
  the page's secrets.
- The only rewrites of a page's text: `cargo run --release -- ` becomes
  `signet `, `./target/release/signet` becomes `signet`, and every
  `127.0.0.1:PORT` is mapped to a free port (the same one throughout the
  page; 50051, the CLI's default endpoint, to the page's server). So a
  page that starts a server of its own (`... serve --listen
  127.0.0.1:50052 &`) gets a port of its own.
- What a page expects the reader to bring (a platform's secret in a
  variable, a file made by a tool the test does not run) is in INPUTS
  below, page by page.
- A command that shows a failure ends in `|| test $? = N` in the doc
  itself: the runner has no exit-status convention of its own.
- A `#=> TEXT` comment (at the end of a command, or on a line of its own
  after it) is output: TEXT must appear in the block's output (stdout and
  stderr together, background processes included), each after the
  previous one.

Markers: an HTML comment on the line right before a fence,

    <!-- docs-test: not run: REASON -->    an sh block that cannot run here
    <!-- docs-test: not checked: REASON --> a toml block that is not a whole config
    <!-- docs-test: serve NAME -->          a toml block: checked, written to NAME in
                                            the page's directory, and the page's
                                            server runs on it
    <!-- docs-test: run with CMD -->        a non-sh block run as `CMD <<EOF`,
                                            in its place in the session

A marker without its reason, a marker of the wrong kind for its fence, or
one that is not right before a fence fails test_markers. Other fences
(text, yaml, json, sql) are neither run nor checked.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import docs_runner as dr
from conftest import ROOT, SignetServer, assert_no_secret_in, secret_forms, signet_bin

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "presets").glob("*.md"))]
PAGE_TIMEOUT = 150.0
# What the page directory links to, from the repository.
LINKED = ["proto", "softhsm", "examples", "helm"]


def _configmap() -> str:
    """The chart's ConfigMap as `helm template ... --show-only
    templates/configmap.yaml` prints it, rendered by Helm's own library
    (there is no helm binary here) with the chart's production-like
    example values (examples/hsm-redis.yaml)."""
    from helm_helpers import hsm_values, render_raw

    rendered = render_raw(hsm_values())
    (path,) = [p for p in rendered if p.endswith("templates/configmap.yaml")]
    return f"---\n# Source: {path}\n{rendered[path]}"


# Per page: variables the reader sets (their platform's secret), files they
# have, and the tools the page needs (tool -> Debian package).
OPENSSL = {"openssl": "openssl"}
INPUTS: dict[str, dict] = {
    "README.md": {"tools": {**OPENSSL, "python3": "python3-venv", "softhsm2-util": "softhsm2", "pkcs11-tool": "opensc"}},
    "docs/operations.md": {"files": {"configmap.yaml": _configmap}, "tools": {"yq": "yq"}},
    "docs/presets/boxo.md": {"env": {"ACQUIRER_SECRET": "acquirer-secret-6c1f0e9a2b7d4853"}},
    # GitHub's documented example secret.
    "docs/presets/github.md": {"env": {"GITHUB_WEBHOOK_SECRET": "It's a Secret to Everybody"}, "tools": OPENSSL},
    "docs/presets/shopify.md": {"env": {"SHOPIFY_CLIENT_SECRET": "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"}, "tools": OPENSSL},
    "docs/presets/slack.md": {"env": {"SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5"}, "tools": OPENSSL},
    "docs/presets/standard-webhooks.md": {
        "env": {"WEBHOOK_SECRET": "whsec_" + base64.b64encode(bytes(range(7, 31))).decode()},
        "tools": OPENSSL,
    },
    "docs/presets/stripe.md": {"env": {"STRIPE_ENDPOINT_SECRET": "whsec_3kPZ1oW8qN2vR5tY7uX0aB4cD6eF9gH1"}, "tools": OPENSSL},
}


def _parse(path: Path):
    return dr.parse_page(path, ROOT)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


RUN_PAGES = [p for p in PAGES if any(b.runs for b in _parse(p)[0])]
CONFIG_BLOCKS = [b for p in PAGES for b in _parse(p)[0] if b.checked_config]


def test_markers():
    """Every marker is understood, has its reason, fits its fence and
    stands right before one."""
    problems = [problem for p in PAGES for problem in _parse(p)[1]]
    assert problems == [], "\n".join(problems)


def test_pages_are_found():
    """The runner sees the pages and their blocks (a broken glob or fence
    pattern would make every other test here pass vacuously)."""
    rels = [_rel(p) for p in PAGES]
    for page in ["README.md", "docs/operations.md", "docs/security.md", "docs/presets/stripe.md"]:
        assert page in rels
    readme, _ = _parse(ROOT / "README.md")
    assert sum(b.runs for b in readme) >= 3
    assert set(INPUTS) <= set(rels), "INPUTS names a page that does not exist"
    assert len(CONFIG_BLOCKS) >= 6


@pytest.mark.parametrize("block", CONFIG_BLOCKS, ids=[b.where for b in CONFIG_BLOCKS])
def test_config_block_passes_check_config(block, tmp_path):
    path = tmp_path / "signet.toml"
    path.write_text(block.text)
    result = subprocess.run(
        [signet_bin(), "check-config", str(path)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, (
        f"signet check-config refused the configuration at {block.where} (mark a fragment "
        f"'<!-- docs-test: not checked: WHY -->'):\n{result.stderr}\n{block.text}"
    )


def _page_home(tmp_path: Path) -> Path:
    home = tmp_path / "root"
    (home / "tmp").mkdir(parents=True)
    for name in LINKED:
        (home / name).symlink_to(ROOT / name)
    return home


def _page_env(home: Path, bindir: Path, server: SignetServer, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNET_", "SOFTHSM2_", "RUST_LOG", "OTEL_"))}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["SIGNET_ENDPOINT"] = f"http://{server.address}"
    env["TMPDIR"] = str(home / "tmp")
    env.update(extra)
    return env


@pytest.mark.parametrize("page", RUN_PAGES, ids=[_rel(p) for p in RUN_PAGES])
def test_page_runs(page, tmp_path):
    rel = _rel(page)
    blocks, problems = _parse(page)
    assert problems == [], "\n".join(problems)
    inputs = INPUTS.get(rel, {})
    for tool, package in {"bash": "bash", **inputs.get("tools", {})}.items():
        if shutil.which(tool) is None:
            pytest.fail(f"{rel} needs {tool}, which is not installed (apt-get install {package})")

    home = _page_home(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "signet").symlink_to(signet_bin())
    for name, make in inputs.get("files", {}).items():
        (home / name).write_text(make())
    serve = [b for b in blocks if b.marker and b.marker.kind == "serve"]
    args = []
    if serve:
        (home / serve[0].marker.arg).write_text(serve[0].text)
        args = ["--config", str(home / serve[0].marker.arg)]
    (tmp_path / "server").mkdir()
    server = SignetServer([*args, "--listen", "127.0.0.1:0"], tmp_path / "server" / "stderr.log")
    try:
        script = dr.page_script(blocks, dr.port_map(blocks, server.port))
        run = dr.run_script(script, home, _page_env(home, bindir, server, inputs.get("env", {})), PAGE_TIMEOUT)
    finally:
        status = server.stop()
    problems = dr.page_problems(blocks, run)
    assert problems == [], f"{rel}: " + "\n".join(problems) + "\n--- output (last 6000 characters) ---\n" + run.output[-6000:]
    assert status == 0, f"the page's signet server exited with status {status}:\n{server.stderr()[-3000:]}"
    secrets = []
    for value in inputs.get("env", {}).values():
        secrets += secret_forms(value.encode())
        if value.startswith("whsec_"):  # Standard Webhooks' HMAC key is the decoded part
            secrets += secret_forms(base64.b64decode(value.removeprefix("whsec_")))
    assert_no_secret_in(server.stderr() + server.audit(), secrets)


# The runner itself: each of these would pass vacuously if it were broken.


def _self_page(tmp_path: Path, text: str) -> tuple[list[dr.Block], list[str]]:
    page = tmp_path / "page.md"
    page.write_text(text)
    return dr.parse_page(page, tmp_path)


def _self_run(tmp_path: Path, text: str, timeout: float = 30.0) -> list[str]:
    blocks, problems = _self_page(tmp_path, text)
    assert problems == []
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path))
    run = dr.run_script(dr.page_script(blocks, dr.port_map(blocks, 1)), home, env, timeout)
    return dr.page_problems(blocks, run)


def test_runner_fails_on_a_failing_block(tmp_path):
    problems = _self_run(tmp_path, "```sh\ntrue\n```\n\ntext\n\n```sh\necho one\nfalse\necho never\n```\n")
    assert problems == ["failed at page.md:9 (exit status 1)"]


def test_runner_skips_only_marked_blocks_and_keeps_the_session(tmp_path):
    text = (
        "<!-- docs-test: not run: needs a cluster -->\n```sh\nfalse\n```\n"
        "```sh\nexport X=1\ncd /\n```\n"
        "```sh\ntest \"$X\" = 1 && test -e page-home-marker\n```\n"
    )
    blocks, _ = _self_page(tmp_path, text)
    assert [b.runs for b in blocks] == [False, True, True]
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "page-home-marker").touch()
    run = dr.run_script(dr.page_script(blocks, {}), tmp_path / "home", dict(os.environ), 30)
    assert dr.page_problems(blocks, run) == []


def test_runner_checks_expected_output_in_order(tmp_path):
    ok = "```sh\necho valid; echo invalid   #=> valid\n#=> invalid\n```\n"
    (tmp_path / "ok").mkdir()
    assert _self_run(tmp_path / "ok", ok) == []
    wrong = "```sh\necho invalid; echo valid   #=> valid\n#=> invalid\n```\n"
    (tmp_path / "wrong").mkdir()
    (problem,) = _self_run(tmp_path / "wrong", wrong)
    assert "expected 'invalid'" in problem


def test_runner_refuses_bad_markers(tmp_path):
    _, problems = _self_page(
        tmp_path,
        "<!-- docs-test: not run: -->\n```sh\nfalse\n```\n"
        "<!-- docs-test: not checked: a fragment -->\n```sh\ntrue\n```\n"
        "<!-- docs-test: skip -->\n```sh\ntrue\n```\n"
        "<!-- docs-test: not run: far from its fence -->\n\n```sh\ntrue\n```\n",
    )
    assert len(problems) == 4, problems
    assert "without a reason" in problems[0]
    assert "does not apply" in problems[1]
    assert "unknown" in problems[2]
    assert "not on the line before a fence" in problems[3]


def test_runner_stops_what_a_page_left_running(tmp_path):
    pidfile = tmp_path / "pid"
    assert _self_run(tmp_path, f"```sh\nsleep 300 &\necho $! > {pidfile}\n```\n") == []
    assert dr.process_state(int(pidfile.read_text())) in (None, "Z")


def test_runner_rewrites_and_maps_ports():
    blocks = [dr.Block("p.md", 1, "sh", "./target/release/signet x --endpoint http://127.0.0.1:50051\n"
                       "cargo run --release -- serve --listen 127.0.0.1:50052 &\n")]
    ports = dr.port_map(blocks, 4242)
    assert ports[50051] == 4242 and ports[50052] not in (50052, 4242)
    text = dr.rewrite(blocks[0].text, ports)
    assert text == (f"signet x --endpoint http://127.0.0.1:4242\nsignet serve --listen 127.0.0.1:{ports[50052]} &\n")
