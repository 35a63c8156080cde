"""Standard Webhooks v1a (Ed25519), checked against the definition in
the Standard Webhooks specification (sign `{msg_id}.{timestamp}.{payload}` with
ed25519, send `v1a,` + base64; keys as `whsk_` and `whpk_` + base64),
implemented here with pyca `cryptography` alone (the `standardwebhooks`
library speaks only v1): signet's signatures verify under the whpk_ key,
pyca's verify in signet, and the v1 entries an HMAC sender adds are
ignored by an Ed25519 receiver."""

from __future__ import annotations

import base64
import subprocess
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import _serve, remember_secret, remember_secret_text, signet_bin
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

R = signer_pb2.VerifyFailureReason
BODY = b'{"type":"payment.succeeded","data":{"id":"pay_1","amount":"12.50"}}'
CONFIG = """[server]
listen = "127.0.0.1:0"
plaintext = true

[[profiles]]
name = "out"
preset = "standard-webhooks"
key = "sw-ed"

[[profiles]]
name = "in"
preset = "standard-webhooks"
verify_key = "partner-pub"
"""


def raw_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def v1a(tmp_path_factory):
    """signet with an outbound Ed25519 profile (its key imported as whsk_)
    and an inbound one (the partner's key imported as whpk_)."""
    config = tmp_path_factory.mktemp("v1a-config") / "signet.toml"
    config.write_text(CONFIG)
    gen = _serve(tmp_path_factory, "v1a", ["--config", str(config)])
    client = next(gen)
    ours = ed25519.Ed25519PrivateKey.generate()
    seed = ours.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    whsk = "whsk_" + base64.b64encode(seed + raw_public(ours)).decode()
    remember_secret(client, seed)
    remember_secret_text(client, whsk)
    client.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name="sw-ed", algorithm=common_pb2.ALGORITHM_ED25519, material=whsk.encode())
    )
    partner = ed25519.Ed25519PrivateKey.generate()
    whpk = "whpk_" + base64.b64encode(raw_public(partner)).decode()
    client.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name="partner-pub", algorithm=common_pb2.ALGORITHM_ED25519, material=whpk.encode())
    )
    client.ours, client.partner = ours, partner
    yield client
    try:
        next(gen)
    except StopIteration:
        pass


def verify(client, headers, body=BODY):
    return client.signer.VerifyHttpRequest(
        signer_pb2.VerifyHttpRequestRequest(
            profile="in",
            method="POST",
            url="https://merchant.example/hooks",
            body=body,
            headers=[signer_pb2.HttpHeader(name=k, value=v) for k, v in headers.items()],
        )
    )


def test_spec_verifies_signets_v1a(v1a):
    out = v1a.signer.SignHttpRequest(
        signer_pb2.SignHttpRequestRequest(profile="out", method="POST", url="https://partner.example/hooks", body=BODY)
    )
    h = {x.name: x.value for x in out.headers}
    assert h["webhook-signature"].startswith("v1a,")
    signed = f'{h["webhook-id"]}.{h["webhook-timestamp"]}.'.encode() + BODY
    sig = base64.b64decode(h["webhook-signature"][len("v1a,"):], validate=True)
    pub = ed25519.Ed25519PublicKey.from_public_bytes(raw_public(v1a.ours))
    pub.verify(sig, signed)
    # Ed25519 is deterministic: the same bytes pyca's key makes.
    assert sig == v1a.ours.sign(signed)
    with pytest.raises(InvalidSignature):
        pub.verify(sig, signed + b" ")


def test_signet_verifies_the_specs_v1a(v1a):
    ts = str(int(time.time()))
    sig = v1a.partner.sign(f"msg_v1a_1.{ts}.".encode() + BODY)
    entry = "v1a," + base64.b64encode(sig).decode()
    # An HMAC entry beside it (a sender in the middle of switching schemes)
    # is not this receiver's and is ignored.
    headers = {"webhook-id": "msg_v1a_1", "webhook-timestamp": ts, "webhook-signature": "v1,c2lnbmF0dXJl " + entry}
    v = verify(v1a, headers)
    assert v.valid, R.Name(v.reason)
    assert v.key_version_id == "partner-pub:v1"
    assert verify(v1a, headers).reason == R.VERIFY_FAILURE_REASON_REPLAYED
    other = {**headers, "webhook-id": "msg_v1a_2"}
    assert verify(v1a, other).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    forged = ed25519.Ed25519PrivateKey.generate().sign(f"msg_v1a_3.{ts}.".encode() + BODY)
    bad = {"webhook-id": "msg_v1a_3", "webhook-timestamp": ts, "webhook-signature": "v1a," + base64.b64encode(forged).decode()}
    assert verify(v1a, bad).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    stale = str(int(time.time()) - 3600)
    old = v1a.partner.sign(f"msg_v1a_4.{stale}.".encode() + BODY)
    late = {"webhook-id": "msg_v1a_4", "webhook-timestamp": stale, "webhook-signature": "v1a," + base64.b64encode(old).decode()}
    assert verify(v1a, late).reason == R.VERIFY_FAILURE_REASON_TIMESTAMP_OUT_OF_WINDOW


def test_public_key_prints_whpk(v1a):
    out = subprocess.run(
        [signet_bin(), "--endpoint", f"http://{v1a.address}", "public-key", "--key", "partner-pub", "--format", "whpk"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "whpk_" + base64.b64encode(raw_public(v1a.partner)).decode()


def test_bad_whsk_and_whpk_are_refused_and_store_nothing(v1a):
    import grpc

    for name, text in [("sw-ed", "whsk_" + base64.b64encode(b"\x01" * 31).decode()), ("partner-pub", "whpk_!!")]:
        with pytest.raises(grpc.RpcError) as e:
            v1a.admin.ImportKey(
                key_admin_pb2.ImportKeyRequest(
                    name=name, algorithm=common_pb2.ALGORITHM_ED25519, material=text.encode(), as_new_version=True
                )
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert text not in e.value.details()
        key = v1a.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name)).key
        assert len(key.versions) == 1
