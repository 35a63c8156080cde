"""SignBatch and VerifyBatch, checked from outside: every signature of a
batch verified by Python's cryptography and hmac, per-item errors beside
good items, the limits, the audit trail, both backends, and the CLI's
sign-batch / verify-batch. Run with tests/python/run.sh."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, utils

from conftest import remember_secret, signet_bin
from interop_helpers import ASYM, BY_NAME, MSG, Alg, Code, crypto_verify, get_pem, rpc_error
from signet.v1 import key_admin_pb2, signer_pb2


def _item(key: str, message: bytes | None = None, digest: bytes | None = None, version: int = 0):
    if digest is not None:
        return signer_pb2.SignRequest(key=key, digest=digest, version=version)
    return signer_pb2.SignRequest(key=key, message=message, version=version)


def _signed(result):
    assert result.WhichOneof("result") == "signed", result
    return result.signed


def _error(result):
    assert result.WhichOneof("result") == "error", result
    return result.error


@pytest.fixture(scope="module")
def hmac_key(server):
    secret = secrets.token_bytes(32)
    remember_secret(server, secret)
    server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name="batch-hmac", algorithm=Alg.ALGORITHM_HMAC_SHA256, material=secret)
    )
    return "batch-hmac", secret


def test_every_signature_of_a_mixed_batch_verifies_with_cryptography(server, keys, hmac_key):
    name, secret = hmac_key
    messages = [os.urandom(n) for n in (0, 1, 100, 1024)]
    items = [_item(info.key_name, m) for info in ASYM for m in messages]
    items += [_item(name, m) for m in messages]
    p256 = BY_NAME["ECDSA_P256_SHA256"]
    items.append(_item(p256.key_name, digest=hashlib.sha256(MSG).digest()))
    resp, call = server.signer.SignBatch.with_call(signer_pb2.SignBatchRequest(items=items))
    assert dict(call.initial_metadata()).get("x-request-id")
    assert len(resp.results) == len(items)
    i = 0
    for info in ASYM:
        _, pub = get_pem(server, info.key_name)
        for m in messages:
            s = _signed(resp.results[i])
            assert s.key_version_id == f"{info.key_name}:v1" and s.algorithm == info.value
            crypto_verify(info, pub, s.signature, m)
            i += 1
    for m in messages:
        s = _signed(resp.results[i])
        assert s.signature == hmac.new(secret, m, "sha256").digest()
        i += 1
    _, pub = get_pem(server, p256.key_name)
    pub.verify(_signed(resp.results[i]).signature, hashlib.sha256(MSG).digest(), ec.ECDSA(utils.Prehashed(ec.hashes.SHA256())))


def test_a_bad_item_fails_only_itself_with_the_single_calls_code(server, keys, hmac_key):
    name, secret = hmac_key
    items = [
        _item(name, b"one"),
        _item("no-such-key", b"two"),
        _item(name, b"three", version=9),
        _item(name, digest=b"\x00" * 32),
        _item("Bad Name", b"four"),
        signer_pb2.SignRequest(key=name),
        _item(name, b"five"),
    ]
    results = server.signer.SignBatch(signer_pb2.SignBatchRequest(items=items)).results
    assert _signed(results[0]).signature == hmac.new(secret, b"one", "sha256").digest()
    want = [Code.NOT_FOUND, Code.NOT_FOUND, Code.INVALID_ARGUMENT, Code.INVALID_ARGUMENT, Code.INVALID_ARGUMENT]
    for r, code in zip(results[1:6], want):
        e = _error(r)
        assert (e.code, e.code_name) == (code.value[0], code.name), e
        assert e.message and "panicked" not in e.message
    # The single call says the same.
    single = rpc_error(Code.NOT_FOUND, server.signer.Sign, items[1])
    assert _error(results[1]).message == single.details()
    assert _signed(results[6]).signature == hmac.new(secret, b"five", "sha256").digest()


def test_verify_batch_returns_a_verdict_per_item(server, keys, hmac_key):
    name, secret = hmac_key
    info = BY_NAME["ED25519"]
    good = server.signer.Sign(signer_pb2.SignRequest(key=info.key_name, message=MSG)).signature
    tag = hmac.new(secret, MSG, "sha256").digest()
    items = [
        signer_pb2.VerifyRequest(key=info.key_name, message=MSG, signature=good),
        signer_pb2.VerifyRequest(key=info.key_name, message=MSG + b"!", signature=good),
        signer_pb2.VerifyRequest(key=name, message=MSG, signature=tag),
        signer_pb2.VerifyRequest(key=name, message=MSG, signature=tag[:-1]),
        signer_pb2.VerifyRequest(key="no-such-key", message=MSG, signature=tag),
    ]
    results = server.signer.VerifyBatch(signer_pb2.VerifyBatchRequest(items=items)).results
    verdicts = [r.verified.valid if r.WhichOneof("result") == "verified" else r.error.code_name for r in results]
    assert verdicts == [True, False, True, False, "NOT_FOUND"]
    assert results[0].verified.key_version_id == f"{info.key_name}:v1"


def test_the_limits_refuse_the_whole_batch(server, hmac_key):
    name, _ = hmac_key
    too_many = [_item(name, b"x")] * 1001
    e = rpc_error(Code.INVALID_ARGUMENT, server.signer.SignBatch, signer_pb2.SignBatchRequest(items=too_many))
    assert e.details() == "batch has 1001 items; the limit is 1000"
    assert dict(e.trailing_metadata()).get("x-request-id")
    # 4 x 1 MiB messages and a small one: each within max_message_bytes,
    # together just past the 4 MiB batch bound (and within what the
    # transport decodes, so the handler names the bound).
    big = [_item(name, b"\x00" * (1024 * 1024))] * 4 + [_item(name, b"x")]
    e = rpc_error(Code.INVALID_ARGUMENT, server.signer.SignBatch, signer_pb2.SignBatchRequest(items=big))
    assert e.details() == f"batch carries {4 * (1024 * 1024 + len(name)) + len(name) + 1} bytes of names, inputs and signatures; the limit is 4194304"
    # Far past it, the transport refuses the call before it is decoded.
    huge = [_item(name, b"\x00" * (1024 * 1024))] * 6
    e = rpc_error(Code.INVALID_ARGUMENT, server.signer.SignBatch, signer_pb2.SignBatchRequest(items=huge))
    assert e.details() == "request message too large for this server"
    # An empty batch is an empty answer.
    assert len(server.signer.SignBatch(signer_pb2.SignBatchRequest()).results) == 0


def test_the_trail_lists_each_item_with_its_digest_and_code(server, hmac_key):
    name, _ = hmac_key
    marker = os.urandom(8).hex().encode()
    items = [_item(name, marker + b"-a"), _item("no-such-key", marker + b"-b")]
    _, call = server.signer.SignBatch.with_call(signer_pb2.SignBatchRequest(items=items))
    rid = dict(call.initial_metadata())["x-request-id"]
    text = server.server.audit_with(rid)
    record = next(r for r in map(json.loads, text.splitlines()) if r.get("request_id") == rid)
    assert record["rpc"] == "signet.v1.Signer/SignBatch" and record["code"] == "OK"
    assert [(i["key"], i["code"]) for i in record["items"]] == [(name, "OK"), ("no-such-key", "NOT_FOUND")]
    assert record["items"][0]["message_sha256"] == hashlib.sha256(marker + b"-a").hexdigest()
    assert record["items"][0]["version"] == 1
    assert marker.decode() not in json.dumps(record)


def test_batches_on_the_token_verify_with_cryptography(hsm_server):
    info = BY_NAME["ECDSA_P256_SHA256"]
    name = "hsm-batch-p256"
    hsm_server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=info.value))
    secret = secrets.token_bytes(32)
    remember_secret(hsm_server, secret)
    hsm_server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name="hsm-batch-hmac", algorithm=Alg.ALGORITHM_HMAC_SHA256, material=secret)
    )
    messages = [os.urandom(64) for _ in range(20)]
    items = [_item(name, m) for m in messages] + [_item("hsm-batch-hmac", m) for m in messages]
    results = hsm_server.signer.SignBatch(signer_pb2.SignBatchRequest(items=items)).results
    _, pub = get_pem(hsm_server, name)
    for r, m in zip(results[:20], messages):
        crypto_verify(info, pub, _signed(r).signature, m)
    for r, m in zip(results[20:], messages):
        assert _signed(r).signature == hmac.new(secret, m, "sha256").digest()


def _cli(server, *args, stdin: str):
    return subprocess.run(
        [signet_bin(), "--endpoint", f"http://{server.server.address}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_signs_and_verifies_a_file_of_messages(server, keys, hmac_key, tmp_path):
    name, secret = hmac_key
    info = BY_NAME["ECDSA_P256_SHA256"]
    lines = [json.dumps({"message": f"payout {i}"}) for i in range(2500)]
    lines.insert(3, "")
    lines.append(json.dumps({"key": info.key_name, "message_base64": "AAECAw=="}))
    lines.append(json.dumps({"key": "no-such-key", "message": "x"}))
    out = _cli(server, "sign-batch", "--key", name, "--batch-size", "1000", stdin="\n".join(lines) + "\n")
    assert out.returncode == 1, out.stderr
    assert "signed 2501 of 2502 lines; 1 failed" in out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == 2502
    assert results[3]["line"] == 5, "line numbers count the blank line"
    for i, r in enumerate(results[:2500]):
        assert r["key_version_id"] == f"{name}:v1"
        assert r["signature"] == hmac_b64(secret, f"payout {i}".encode())
    _, pub = get_pem(server, info.key_name)
    crypto_verify(info, pub, base64.b64decode(results[2500]["signature"]), b"\x00\x01\x02\x03")
    assert results[2501]["error"]["code"] == "NOT_FOUND"
    # verify-batch: all valid is exit 0; one wrong signature is exit 3.
    checks = [json.dumps({"message": f"payout {i}", "signature": results[i]["signature"]}) for i in range(10)]
    ok = _cli(server, "verify-batch", "--key", name, stdin="\n".join(checks))
    assert ok.returncode == 0, ok.stderr
    assert all(json.loads(line)["valid"] for line in ok.stdout.splitlines())
    checks[4] = json.dumps({"message": "payout 999", "signature": results[4]["signature"]})
    bad = _cli(server, "verify-batch", "--key", name, stdin="\n".join(checks))
    assert bad.returncode == 3, bad.stderr
    assert [json.loads(line)["valid"] for line in bad.stdout.splitlines()].count(False) == 1
    # A malformed line is a usage error naming the line; nothing is sent.
    wrong = _cli(server, "sign-batch", "--key", name, stdin='{"message":"a"}\n{"mesage":"b"}\n')
    assert wrong.returncode == 2 and "line 2" in wrong.stderr, wrong.stderr


def hmac_b64(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, "sha256").digest()).decode()
