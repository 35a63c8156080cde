"""Fixtures for the Python interop tests: a real signet server on 127.0.0.1:0.

tests/python/run.sh sets SIGNET_BIN and generates the stubs into gen/. Two
servers are started lazily, once per session:

- ``server``: ``signet serve --listen 127.0.0.1:0`` (built-in demo
  configuration: in-memory backend, demo keys);
- ``grace_server``: ``signet serve --config FILE`` with
  ``keys.default_grace_period = "2s"`` and ``keys.tick_interval = "60s"``:
  no tick falls inside a test, so grace expiry is seen exactly as Sign,
  Verify and GetKey compute it at the current time, not as a tick wrote it.

Each one's stderr is drained by a thread into a list (and a file under
pytest's temporary directory) so tests can check that no secret ever reaches
the log. Teardown sends SIGTERM and asserts a clean exit (status 0).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GEN = HERE / "gen"
if not (GEN / "signet" / "v1").is_dir():
    raise RuntimeError(f"{GEN} has no generated stubs: run tests/python/run.sh")
sys.path.insert(0, str(GEN))

from signet.v1 import cipher_pb2_grpc, key_admin_pb2_grpc, signer_pb2_grpc  # noqa: E402
from grpc_health.v1 import health_pb2_grpc  # noqa: E402

LISTEN_RE = re.compile(r"signet listening address=(127\.0\.0\.1:(\d+))")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Debug level for signet's own targets: refused requests are logged with
# their error detail, which the no-secret-in-the-log checks then cover too.
LOG_FILTER = "signet=debug,info"


def signet_bin() -> str:
    path = os.environ.get("SIGNET_BIN")
    if not path:
        candidate = ROOT / "target" / "debug" / "signet"
        if candidate.is_file():
            path = str(candidate)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("SIGNET_BIN is not set and target/debug/signet is missing: run tests/python/run.sh")
    return path


class SignetServer:
    """A signet process whose stderr is drained in a thread."""

    def __init__(self, args: list[str], log_path: Path, extra_env: dict[str, str] | None = None):
        self.args = [signet_bin(), "serve", *args]
        self.log_path = log_path
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self.address: str | None = None
        self.port: int | None = None
        env = dict(os.environ)
        env["RUST_LOG"] = LOG_FILTER
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            # The audit trail (JSON lines on stdout by default), kept for
            # the secret sweep at teardown.
            stdout=open(log_path.with_name("audit.jsonl"), "wb"),
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(ROOT),
        )
        self._log = open(log_path, "w", encoding="utf-8")
        self._reader = threading.Thread(target=self._drain, name="signet-stderr", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(
                    f"signet exited with status {self.proc.returncode} before listening:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"signet did not log its address within {START_TIMEOUT}s:\n{self.stderr()}")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            with self._lock:
                self.lines.append(line)
            self._log.write(line)
            self._log.flush()
            if self.address is None:
                m = LISTEN_RE.search(ANSI_RE.sub("", line))
                if m:
                    self.address = m.group(1)
                    self.port = int(m.group(2))
                    self._listening.set()
        self._log.close()

    def stderr(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def audit(self) -> str:
        """The audit lines written so far."""
        return self.log_path.with_name("audit.jsonl").read_text(errors="replace")

    def audit_with(self, needle: str, within: float = 10.0) -> str:
        """The audit lines once one holds `needle`: the trail is written by
        a thread of its own, which under load lingers a few milliseconds
        before it writes (docs/benchmarks.md); fails after `within` s."""
        deadline = time.monotonic() + within
        while True:
            text = self.audit()
            if needle in text or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"signet did not stop within {STOP_TIMEOUT}s of SIGTERM")
        self._reader.join(10)
        return self.proc.returncode


@dataclass
class Client:
    """Channel and stubs for one server."""

    server: SignetServer
    channel: grpc.Channel
    signer: signer_pb2_grpc.SignerStub
    admin: key_admin_pb2_grpc.KeyAdminStub
    health: health_pb2_grpc.HealthStub
    cipher: cipher_pb2_grpc.CipherServiceStub
    # Every secret handed to this server, as the texts to look for in its log.
    secret_texts: list[str] = field(default_factory=list, repr=False)

    @property
    def address(self) -> str:
        assert self.server.address
        return self.server.address


# Everything secret handed to any server in this session, in every textual
# form a log line could carry it, for the final log check.
ALL_SECRET_TEXTS: list[str] = []


def secret_forms(secret: bytes) -> list[str]:
    """The textual forms a leaked secret could take in a log line."""
    import base64

    forms = [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        # A Debug-printed byte slice: [1, 2, 3, ...]; eight bytes are enough.
        ", ".join(str(b) for b in secret[:8]),
    ]
    try:
        text = secret.decode("ascii")
        if text.isprintable():
            forms.append(text)
    except UnicodeDecodeError:
        pass
    return forms


def find_secret(text: str, secret_texts: list[str]) -> str | None:
    """The first secret form found in text, or None."""
    for form in secret_texts:
        if form and form in text:
            return form
    return None


def assert_no_secret_in(text: str, secret_texts: list[str]) -> None:
    hit = find_secret(text, secret_texts)
    assert hit is None, f"a secret appears in the server log (as {hit[:24]}...)"


def remember_secret(client: "Client", secret: bytes) -> None:
    """Record raw secret bytes (HMAC secret, private scalar, PKCS#8 DER)."""
    forms = secret_forms(secret)
    client.secret_texts.extend(forms)
    ALL_SECRET_TEXTS.extend(forms)


def remember_secret_text(client: "Client", text: str) -> None:
    """Record a secret string verbatim (e.g. a line of a private key PEM)."""
    client.secret_texts.append(text)
    ALL_SECRET_TEXTS.append(text)


def _client(server: SignetServer) -> tuple[Client, grpc.Channel]:
    channel = grpc.insecure_channel(
        server.address,
        options=[
            ("grpc.max_send_message_length", 8 * 1024 * 1024),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ],
    )
    grpc.channel_ready_future(channel).result(timeout=10)
    return (
        Client(
            server=server,
            channel=channel,
            signer=signer_pb2_grpc.SignerStub(channel),
            admin=key_admin_pb2_grpc.KeyAdminStub(channel),
            health=health_pb2_grpc.HealthStub(channel),
            cipher=cipher_pb2_grpc.CipherServiceStub(channel),
        ),
        channel,
    )


def _serve(tmp_path_factory, name: str, args: list[str], extra_env=None, secrets_=()):
    logdir = tmp_path_factory.mktemp(name)
    server = SignetServer(args, logdir / "stderr.log", extra_env)
    client, channel = _client(server)
    for text in secrets_:
        client.secret_texts.append(text)
        ALL_SECRET_TEXTS.append(text)
    try:
        yield client
    finally:
        channel.close()
        status = server.stop()
        log = server.stderr()
        assert status == 0, f"signet exited with status {status} after SIGTERM:\n{log[-4000:]}"
        assert "signet stopped" in log, f"no 'signet stopped' line after SIGTERM:\n{log[-4000:]}"
        assert_no_secret_in(log, client.secret_texts)
        # Every audit record is one JSON object, and none carries a secret.
        trail = server.audit()
        for line in trail.splitlines():
            json.loads(line)
        assert_no_secret_in(trail, client.secret_texts)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """signet with the built-in demo configuration."""
    yield from _serve(tmp_path_factory, "demo", ["--listen", "127.0.0.1:0"])


@pytest.fixture(scope="session")
def grace_server(tmp_path_factory):
    """signet from a config file: 2 s default grace period, 60 s tick."""
    confdir = tmp_path_factory.mktemp("grace-config")
    config = confdir / "signet.toml"
    config.write_text(
        "[server]\n"
        'listen = "127.0.0.1:0"\nplaintext = true\n'
        "[keys]\n"
        'default_grace_period = "2s"\n'
        'tick_interval = "60s"\n'
    )
    yield from _serve(tmp_path_factory, "grace", ["--config", str(config)])


@pytest.fixture(scope="session")
def keys(server):
    """One generated key per algorithm of the interop table
    (interop_helpers.ALGS) on the demo server, created once."""
    from interop_helpers import ALGS
    from signet.v1 import key_admin_pb2

    created = {}
    for info in ALGS:
        key = server.admin.CreateKey(
            key_admin_pb2.CreateKeyRequest(name=info.key_name, algorithm=info.value, labels={"suite": "python"})
        ).key
        created[info.name] = key
    return created



@pytest.fixture(scope="session")
def hsm_server(tmp_path_factory):
    """signet on a fresh SoftHSM2 token made by softhsm/make-token.sh (the
    PKCS#11 backend). SoftHSM2 missing is a failure, not a skip."""
    tokdir = tmp_path_factory.mktemp("softhsm")
    out = subprocess.run(
        ["bash", str(ROOT / "softhsm" / "make-token.sh"), str(tokdir / "token"), "py-interop"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"softhsm/make-token.sh failed (is softhsm2 installed?):\n{out.stderr}"
    info = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    config = Path(info["config"])
    config.write_text(config.read_text().replace("[server]\nplaintext = true", "[server]\nlisten = \"127.0.0.1:0\"\nplaintext = true"))
    pin = Path(info["pin_file"]).read_text().strip()
    so_pin = (Path(info["pin_file"]).parent / "so.pin").read_text().strip()
    yield from _serve(
        tmp_path_factory,
        "hsm",
        ["--config", str(config)],
        extra_env={"SOFTHSM2_CONF": info["SOFTHSM2_CONF"]},
        secrets_=[pin, so_pin],
    )


# Secrets of the HTTP profile tests: what the platforms hand out.
STRIPE_SECRET = "whsec_" + "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SW_SECRET_B64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GITHUB_SECRET = "It's a Secret to Everybody"
SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789ab"
BOXO_SECRET = "boxo-shared-secret-0123456789abcdef"

HTTP_PROFILES = """
[[profiles]]
name = "stripe"
preset = "stripe"
key = "stripe-hook"

[[profiles]]
name = "sw"
preset = "standard-webhooks"
key = "sw-hook"

[[profiles]]
name = "slack"
preset = "slack"
key = "slack-hook"

[[profiles]]
name = "github"
preset = "github"
key = "github-hook"

[[profiles]]
name = "shopify"
preset = "shopify"
key = "shopify-hook"

[[profiles]]
name = "boxo"
preset = "boxo"
key = "boxo-hook"
client_id = "merchant-app-7"
json_sort_keys = true
json_spaces = true
"""


@pytest.fixture(scope="session")
def http_server(tmp_path_factory):
    """signet with the preset profiles and their HMAC keys imported."""
    import base64

    from signet.v1 import common_pb2, key_admin_pb2

    confdir = tmp_path_factory.mktemp("http-config")
    config = confdir / "signet.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:0"\nplaintext = true\n' + HTTP_PROFILES)
    secrets_ = [
        ("stripe-hook", STRIPE_SECRET.encode()),
        # As Standard Webhooks hands it out: signet decodes it on import,
        # because the key belongs to a standard-webhooks profile.
        ("sw-hook", ("whsec_" + SW_SECRET_B64).encode()),
        ("slack-hook", SLACK_SECRET.encode()),
        ("github-hook", GITHUB_SECRET.encode()),
        ("shopify-hook", SHOPIFY_SECRET.encode()),
        ("boxo-hook", BOXO_SECRET.encode()),
    ]
    gen = _serve(tmp_path_factory, "http", ["--config", str(config)])
    client = next(gen)
    remember_secret(client, base64.b64decode(SW_SECRET_B64))
    for name, secret in secrets_:
        remember_secret(client, secret)
        client.admin.ImportKey(
            key_admin_pb2.ImportKeyRequest(name=name, algorithm=common_pb2.ALGORITHM_HMAC_SHA256, material=secret)
        )
    yield client
    try:
        next(gen)
    except StopIteration:
        pass


# The Helm chart tests (test_helm_*.py, helpers in helm_helpers.py): the
# chart's defaults and examples/hsm-redis.yaml, each rendered once per
# module that asks for it. helm_helpers is imported only when a Helm test
# runs.
HELM_CASES = ["default", "hsm-redis"]


@pytest.fixture(scope="module")
def default_docs() -> list[dict]:
    from helm_helpers import render

    return render()


@pytest.fixture(scope="module")
def hsm_docs() -> list[dict]:
    from helm_helpers import hsm_values, render

    return render(hsm_values())


@pytest.fixture(params=HELM_CASES)
def case(request, default_docs, hsm_docs):
    return request.param, (default_docs if request.param == "default" else hsm_docs)
