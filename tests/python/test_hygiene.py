"""Error paths carry no secret: every refusal below is fed secret material
(a private key, an HMAC secret, a token) in the request that fails, and
neither the error the caller gets, nor the server log, nor the audit trail
(both swept at teardown by conftest) may show it."""

from __future__ import annotations

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import remember_secret, remember_secret_text
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

SECRET = b"hygiene-hmac-secret-0123456789abcdef"
TOKEN = "sgt_hygiene-token-that-must-never-show-0123456789"


def _pem_key():
    k = ec.generate_private_key(ec.SECP256R1())
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    der = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, der


def _failing_calls(client, pem: bytes):
    """(name, call) pairs that must all fail."""
    a, s = client.admin, client.signer
    truncated = pem[: len(pem) // 2]
    return [
        ("RSA algorithm, EC key", lambda: a.ImportKey(key_admin_pb2.ImportKeyRequest(
            name="hyg-1", algorithm=common_pb2.ALGORITHM_RSA_PKCS1_2048_SHA256, material=pem))),
        ("truncated PEM", lambda: a.ImportKey(key_admin_pb2.ImportKeyRequest(
            name="hyg-2", algorithm=common_pb2.ALGORITHM_ECDSA_P256_SHA256, material=truncated))),
        ("secret as a public key", lambda: a.ImportKey(key_admin_pb2.ImportKeyRequest(
            name="hyg-3", algorithm=common_pb2.ALGORITHM_ED25519, material=SECRET))),
        ("short HMAC secret", lambda: a.ImportKey(key_admin_pb2.ImportKeyRequest(
            name="hyg-4", algorithm=common_pb2.ALGORITHM_HMAC_SHA256, material=SECRET[:5]))),
        ("bad key name", lambda: a.ImportKey(key_admin_pb2.ImportKeyRequest(
            name="Bad Name " + SECRET.decode(), algorithm=common_pb2.ALGORITHM_HMAC_SHA256, material=SECRET))),
        ("unknown key", lambda: s.Sign(signer_pb2.SignRequest(key="hyg-none", message=SECRET))),
        ("wrong digest length", lambda: s.Sign(signer_pb2.SignRequest(key="demo-ecdsa", digest=SECRET))),
        ("unknown profile", lambda: s.SignHttpRequest(signer_pb2.SignHttpRequestRequest(
            profile="hyg-none", method="POST", url="/", body=SECRET))),
        ("a token where none is configured", lambda: s.Sign(
            signer_pb2.SignRequest(key="hyg-none", message=b"x"),
            metadata=[("authorization", "Bearer " + TOKEN)])),
    ]


def test_errors_never_echo_secret_input(server):
    pem, der = _pem_key()
    remember_secret(server, SECRET)
    remember_secret(server, der)
    for line in pem.decode().splitlines()[1:-1]:
        remember_secret_text(server, line)
    remember_secret_text(server, TOKEN)
    for name, call in _failing_calls(server, pem):
        with pytest.raises(grpc.RpcError) as e:
            call()
        details = e.value.details() or ""
        assert e.value.code() != grpc.StatusCode.OK
        for form in server.secret_texts:
            assert form not in details, f"{name}: the error shows a secret"
        # Every error names its request id, for the operator's log.
        md = dict(e.value.trailing_metadata() or ())
        assert "x-request-id" in md, name
        assert e.value.code() != grpc.StatusCode.INTERNAL, f"{name}: {details}"
