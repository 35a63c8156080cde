"""Retries the standard way: grpcio, loading examples/grpc-service-config.json
as it is, retries a rate-limited `Sign` after the server's
`grpc-retry-pushback-ms` and succeeds; without the config the same call
fails RESOURCE_EXHAUSTED (docs/security.md, "Retries: a service config to load as is")."""

from __future__ import annotations

import hashlib
import json
import time

import grpc
import pytest

from conftest import ROOT, SignetServer
from signet.v1 import signer_pb2, signer_pb2_grpc

TOKEN = "sgt_python-retry-test-token-0123456789abcdefghijklm"
CONFIG = ROOT / "examples" / "grpc-service-config.json"


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """One identity allowed one call per second (burst 1)."""
    d = tmp_path_factory.mktemp("retries")
    config = d / "signet.toml"
    config.write_text(f"""
[server]
listen = "127.0.0.1:0"
plaintext = true
[backend]
demo_keys = true
[[auth.identities]]
name = "payments"
rate_per_second = 1
burst = 1
[[auth.identities.grants]]
operations = ["sign"]
keys = ["demo-*"]
[[auth.tokens]]
identity = "payments"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
""")
    server = SignetServer(["--config", str(config)], d / "stderr.log")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.stderr()[-4000:]


def _sign(channel, **kw):
    stub = signer_pb2_grpc.SignerStub(channel)
    return stub.Sign.with_call(
        signer_pb2.SignRequest(key="demo-hmac", message=b"retry me"),
        metadata=[("authorization", f"Bearer {TOKEN}")], timeout=20, **kw)


def test_the_service_config_names_only_repeatable_rpcs():
    cfg = json.loads(CONFIG.read_text())
    names = {(n["service"], n["method"]) for m in cfg["methodConfig"] for n in m["name"]}
    assert ("signet.v1.Signer", "Sign") in names
    # A repeated VerifyHttpRequest would find its own first attempt in the
    # replay store; repeated admin changes are not the same change.
    for unsafe in ["VerifyHttpRequest"]:
        assert ("signet.v1.Signer", unsafe) not in names
    for admin in ["CreateKey", "ImportKey", "RotateKey", "PromoteKeyVersion", "DisableKeyVersion",
                  "EnableKeyVersion", "DestroyKeyVersion", "RestoreKeyVersion"]:
        assert ("signet.v1.KeyAdmin", admin) not in names
    policy = cfg["methodConfig"][0]["retryPolicy"]
    assert set(policy["retryableStatusCodes"]) == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


def test_a_shed_call_carries_the_pushback_and_fails_without_retries(limited):
    with grpc.insecure_channel(limited.address, options=[("grpc.enable_retries", 0)]) as ch:
        _sign(ch)
        with pytest.raises(grpc.RpcError) as e:
            _sign(ch)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        md = dict(e.value.trailing_metadata() or ())
        pushback = int(md["grpc-retry-pushback-ms"])
        assert pushback == int(md["retry-after-ms"])
        assert 1 <= pushback <= 1000


def _refused(server) -> int:
    trail = [json.loads(line) for line in server.audit().splitlines() if line.strip()]
    return sum(1 for r in trail if r.get("code") == "RESOURCE_EXHAUSTED")


def test_grpcio_with_the_documented_config_retries_after_the_pushback(limited):
    options = [("grpc.service_config", CONFIG.read_text()), ("grpc.enable_retries", 1)]
    with grpc.insecure_channel(limited.address, options=options) as ch:
        _sign(ch)
        before = _refused(limited)
        # The bucket is empty now: the next attempt is refused with a
        # pushback of up to a second, and grpcio's retry after it succeeds.
        # Its backoff alone (0.1 s, then 0.2 s, 0.4 s) would spend the four
        # attempts before the bucket refills, so success shows the pushback
        # was honoured.
        resp, _ = _sign(ch)
        assert resp.key_version_id == "demo-hmac:v1"
    # The server refused an attempt of that call (audited; the trail is
    # written in batches, so give it a moment), then signed.
    deadline = time.monotonic() + 10
    while _refused(limited) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _refused(limited) > before
