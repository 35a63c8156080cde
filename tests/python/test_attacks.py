"""Regression tests for what an outside attack found, from a client that is
not signet's own: raw gRPC bytes, weak public keys that Python builds and
derives independently, and JWK secrets."""

from __future__ import annotations

import base64
import json
import secrets
import time

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import remember_secret
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

Alg = common_pb2.Algorithm
Code = grpc.StatusCode


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def metadata(call_or_err) -> dict:
    md = {}
    for source in (call_or_err.initial_metadata(), call_or_err.trailing_metadata()):
        for k, v in source or ():
            md[k] = v
    return md


# ---- malformed bodies: INVALID_ARGUMENT, signet's text, a request id ----

RAW_BODIES = [
    b"\x0a\x02\xff\xfe",  # SignRequest.key = two bytes that are not UTF-8
    b"\x0a\x05",  # a length past the end
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a varint over 64 bits
    b"\x0b",  # a group start (wire type 3) that never ends
]


@pytest.mark.parametrize("body", RAW_BODIES, ids=[b.hex() for b in RAW_BODIES])
def test_malformed_body_is_invalid_argument_with_request_id(server, body):
    call = server.channel.unary_unary(
        "/signet.v1.Signer/Sign",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as e:
        call(body, timeout=10)
    err = e.value
    assert err.code() == Code.INVALID_ARGUMENT, err
    assert "x-request-id" in metadata(err)
    text = err.details() or ""
    for library_word in ("Protobuf", "SignRequest", "UTF-8", "decode Protobuf"):
        assert library_word not in text, text
    assert "malformed request" in text
    # Logged and audited like any other refusal, under the same request id.
    rid = metadata(err)["x-request-id"]
    deadline = time.monotonic() + 10
    record = None
    while record is None and time.monotonic() < deadline:
        for line in server.server.audit().splitlines():
            r = json.loads(line)
            if r.get("request_id") == rid:
                record = r
        time.sleep(0.05)
    assert record is not None, "no audit record for the malformed call"
    assert record["code"] == "INVALID_ARGUMENT"
    assert record["rpc"] == "signet.v1.Signer/Sign"
    assert rid in server.server.stderr()


def test_unknown_method_has_request_id(server):
    call = server.channel.unary_unary(
        "/signet.v1.Signer/NoSuchMethod",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=10)
    assert e.value.code() == Code.UNIMPLEMENTED
    assert "x-request-id" in metadata(e.value)


def test_health_answers_carry_a_request_id(server):
    from grpc_health.v1 import health_pb2

    _, call = server.health.Check.with_call(health_pb2.HealthCheckRequest(service=""))
    assert "x-request-id" in metadata(call)


# ---- weak public keys ----

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def _mul(k, pt):
    r = (0, 1)
    while k:
        if k & 1:
            r = _add(r, pt)
        pt = _add(pt, pt)
        k >>= 1
    return r


def _sqrt(a):
    a %= P
    x = pow(a, (P + 3) // 8, P)
    if (x * x - a) % P:
        x = x * SQRT_M1 % P
    return x if (x * x - a) % P == 0 else None


def _x_for(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = _sqrt(x2)
    if x is None or (x == 0 and sign):
        return None
    return x if (x & 1) == sign else P - x


def small_order_encodings() -> list[bytes]:
    """Every encoding of a point whose order divides 8, derived with
    RFC 8032's formulas: y of the order-8 points solves d·y⁴ + 2y² − 1 = 0."""
    ys = {0, 1, P - 1}
    s = _sqrt(1 + D)
    for root in (s, P - s):
        y2 = (root - 1) * pow(D, P - 2, P) % P
        y = _sqrt(y2)
        if y is not None:
            ys |= {y, P - y}
    out = []
    for y in ys:
        for sign in (0, 1):
            x = _x_for(y, sign)
            if x is not None and _mul(8, (x, y)) == (0, 1):
                out.append((y | (sign << 255)).to_bytes(32, "little"))
    return out


def test_small_order_ed25519_keys_are_refused(server):
    encodings = small_order_encodings()
    assert len(encodings) == 8, "the 8-torsion has eight points"
    # Non-canonical spellings (y >= p) of 0 and 1 as well.
    encodings += [(P + 0).to_bytes(32, "little"), (P + 1).to_bytes(32, "little")]
    for i, x in enumerate(encodings):
        jwk = json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64u(x)}).encode()
        spki = bytes.fromhex("302a300506032b6570032100") + x
        for form, material in (("jwk", jwk), ("spki", spki)):
            name = f"weak-ed-{i}-{form}"
            with pytest.raises(grpc.RpcError) as e:
                server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ALGORITHM_ED25519, material=material))
            assert e.value.code() == Code.INVALID_ARGUMENT, (x.hex(), e.value)
            assert "small order" in e.value.details()
    # The forgery it would allow: the identity as key, R = identity, S = 0.
    identity = (1).to_bytes(32, "little")
    forged = identity + bytes(32)
    with pytest.raises(grpc.RpcError):
        server.admin.ImportKey(
            key_admin_pb2.ImportKeyRequest(
                name="weak-ed-forge",
                algorithm=Alg.ALGORITHM_ED25519,
                material=json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64u(identity)}).encode(),
            )
        )
    with pytest.raises(grpc.RpcError) as e:
        server.signer.Verify(signer_pb2.VerifyRequest(key="weak-ed-forge", message=b"pay 1000", signature=forged))
    assert e.value.code() == Code.NOT_FOUND


@pytest.mark.parametrize("e", [3, 17, 65535 - 2])
def test_small_rsa_exponents_are_refused(server, e):
    if e in (3,):
        priv = rsa.generate_private_key(public_exponent=e, key_size=2048)
        pk8 = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        remember_secret(server, pk8)
        with pytest.raises(grpc.RpcError) as err:
            server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=f"weak-rsa-priv-{e}", algorithm=Alg.ALGORITHM_RSA_PKCS1_2048_SHA256, material=pk8))
        assert err.value.code() == Code.INVALID_ARGUMENT
        assert "exponent" in err.value.details()
        n = priv.public_key().public_numbers().n
    else:
        n = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers().n
    pub = rsa.RSAPublicNumbers(e, n).public_key()
    spki = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(grpc.RpcError) as err:
        server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=f"weak-rsa-pub-{e}", algorithm=Alg.ALGORITHM_RSA_PKCS1_2048_SHA256, material=spki))
    assert err.value.code() == Code.INVALID_ARGUMENT
    assert "exponent" in err.value.details()


# ---- an oct JWK is an HMAC secret, not its JSON text ----


def test_oct_jwk_imports_as_its_secret(server):
    import hashlib
    import hmac as py_hmac

    secret = secrets.token_bytes(32)
    remember_secret(server, secret)
    jwk = json.dumps({"kty": "oct", "k": b64u(secret), "alg": "HS256"}).encode()
    remember_secret(server, jwk)
    server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name="jwk-oct", algorithm=Alg.ALGORITHM_HMAC_SHA256, material=jwk))
    msg = b"amount=1000"
    got = server.signer.Sign(signer_pb2.SignRequest(key="jwk-oct", message=msg)).signature
    assert got == py_hmac.new(secret, msg, hashlib.sha256).digest()
    with pytest.raises(grpc.RpcError) as e:
        server.admin.ImportKey(
            key_admin_pb2.ImportKeyRequest(
                name="jwk-ec-as-hmac",
                algorithm=Alg.ALGORITHM_HMAC_SHA256,
                material=json.dumps({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}).encode(),
            )
        )
    assert e.value.code() == Code.INVALID_ARGUMENT
    assert "is not a secret key" in e.value.details()


# ---- the CLI's --json covers errors too ----


def test_cli_json_errors_are_json(server):
    import subprocess

    from conftest import signet_bin

    def run(*args):
        return subprocess.run(
            [signet_bin(), "--json", "--endpoint", f"http://{server.address}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    r = run("keys", "get", "no-such-key")
    assert r.returncode == 1, r.stderr
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "NOT_FOUND"
    assert err["exit_code"] == 1
    assert len(err["request_id"]) == 32
    assert r.stdout == ""
    r = run("keys", "get")
    assert r.returncode == 2
    err = json.loads(r.stderr)["error"]
    assert err["exit_code"] == 2 and "required" in err["message"]
