"""Shared by the interop tests (test_interop_*.py, test_pkcs11.py): the
algorithm table, the message signed throughout, and helpers that call
signet's gRPC API or check its output with Python's cryptography and the
openssl CLI. The one fixture they share, ``keys`` (one generated key per
algorithm on the demo server, session-scoped), is in conftest.py."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

Code = grpc.StatusCode
Alg = common_pb2.Algorithm
State = common_pb2.KeyVersionState

MSG = b"amount=1000&currency=EUR&merchant=m-42\n\x00\xff binary tail"
MAX_MESSAGE_BYTES = 1048576


# --------------------------------------------------------------------------
# Algorithm table: every value of the Algorithm enum but UNSPECIFIED.


@dataclass(frozen=True)
class AlgInfo:
    name: str  # as the configuration and the CLI write it: the proto value without ALGORITHM_
    kind: str  # hmac | pkcs1 | pss | ecdsa | ed25519
    hash: str | None  # hashlib name
    size: int | None  # RSA modulus bits, EC curve bits
    jwa: str | None  # JWS "alg"

    @property
    def value(self) -> int:
        return Alg.Value("ALGORITHM_" + self.name)

    @property
    def asymmetric(self) -> bool:
        return self.kind != "hmac"

    def hash_obj(self) -> hashes.HashAlgorithm:
        return {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[self.hash]()

    @property
    def digest_len(self) -> int:
        return hashlib.new(self.hash).digest_size

    @property
    def key_name(self) -> str:
        return "ix-" + self.name.lower().replace("_", "-")


ALGS = [
    AlgInfo("HMAC_SHA256", "hmac", "sha256", None, "HS256"),
    AlgInfo("HMAC_SHA384", "hmac", "sha384", None, "HS384"),
    AlgInfo("HMAC_SHA512", "hmac", "sha512", None, "HS512"),
    AlgInfo("RSA_PKCS1_2048_SHA256", "pkcs1", "sha256", 2048, "RS256"),
    AlgInfo("RSA_PKCS1_3072_SHA256", "pkcs1", "sha256", 3072, "RS256"),
    AlgInfo("RSA_PKCS1_4096_SHA256", "pkcs1", "sha256", 4096, "RS256"),
    AlgInfo("RSA_PKCS1_4096_SHA512", "pkcs1", "sha512", 4096, "RS512"),
    AlgInfo("RSA_PSS_2048_SHA256", "pss", "sha256", 2048, "PS256"),
    AlgInfo("RSA_PSS_3072_SHA256", "pss", "sha256", 3072, "PS256"),
    AlgInfo("RSA_PSS_4096_SHA256", "pss", "sha256", 4096, "PS256"),
    AlgInfo("RSA_PSS_4096_SHA512", "pss", "sha512", 4096, "PS512"),
    AlgInfo("RSA_PSS_2048_SHA512", "pss", "sha512", 2048, "PS512"),
    AlgInfo("ECDSA_P256_SHA256", "ecdsa", "sha256", 256, "ES256"),
    AlgInfo("ECDSA_P384_SHA384", "ecdsa", "sha384", 384, "ES384"),
    AlgInfo("ED25519", "ed25519", None, None, "EdDSA"),
]
BY_NAME = {a.name: a for a in ALGS}
ASYM = [a for a in ALGS if a.asymmetric]
HMACS = [a for a in ALGS if not a.asymmetric]
RSAS = [a for a in ALGS if a.kind in ("pkcs1", "pss")]
WITH_DIGEST = [a for a in ASYM if a.kind != "ed25519"]


def ids(algs):
    return [a.name for a in algs]


# --------------------------------------------------------------------------
# Helpers.


def rpc_error(code: grpc.StatusCode, fn, *args, **kwargs) -> grpc.RpcError:
    """Call fn and assert it fails with code."""
    with pytest.raises(grpc.RpcError) as excinfo:
        fn(*args, **kwargs)
    err = excinfo.value
    assert err.code() == code, f"expected {code.name}, got {err.code().name}: {err.details()}"
    return err


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u_int(text: str) -> int:
    return int.from_bytes(b64u_decode(text), "big")


def get_pem(client, key: str, version: int = 0):
    resp = client.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=key, version=version, format=signer_pb2.PUBLIC_KEY_FORMAT_PEM))
    return resp, serialization.load_pem_public_key(resp.public_key)


def crypto_verify(info: AlgInfo, pub, signature: bytes, message: bytes) -> None:
    """Verify with cryptography; raises InvalidSignature."""
    if info.kind == "pkcs1":
        pub.verify(signature, message, padding.PKCS1v15(), info.hash_obj())
    elif info.kind == "pss":
        pub.verify(
            signature,
            message,
            padding.PSS(mgf=padding.MGF1(info.hash_obj()), salt_length=info.hash_obj().digest_size),
            info.hash_obj(),
        )
    elif info.kind == "ecdsa":
        pub.verify(signature, message, ec.ECDSA(info.hash_obj()))
    elif info.kind == "ed25519":
        pub.verify(signature, message)
    else:
        raise AssertionError(info.kind)


def raw_to_der(raw: bytes) -> bytes:
    half = len(raw) // 2
    return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def openssl_verify(info: AlgInfo, tmp: Path, pem: bytes, signature: bytes, message: bytes) -> subprocess.CompletedProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "pub.pem").write_bytes(pem)
    (tmp / "sig").write_bytes(signature)
    (tmp / "msg").write_bytes(message)
    if info.kind == "ed25519":
        cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"]
    else:
        cmd = ["openssl", "dgst", f"-{info.hash}"]
        if info.kind == "pss":
            cmd += [
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                f"rsa_pss_saltlen:{info.digest_len}",
                "-sigopt",
                f"rsa_mgf1_md:{info.hash}",
            ]
        cmd += ["-verify", "pub.pem", "-signature", "sig", "msg"]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=60)


def sign(client, key: str, message: bytes | None = None, digest: bytes | None = None, version: int = 0, fmt=0):
    req = signer_pb2.SignRequest(key=key, version=version, signature_format=fmt)
    if digest is not None:
        req.digest = digest
    else:
        req.message = message
    return client.signer.Sign(req)


def verify(client, key: str, signature: bytes, message: bytes | None = None, digest: bytes | None = None, version: int = 0, fmt=0):
    req = signer_pb2.VerifyRequest(key=key, version=version, signature=signature, signature_format=fmt)
    if digest is not None:
        req.digest = digest
    else:
        req.message = message
    return client.signer.Verify(req)


def tamper(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


def versions_by_number(key) -> dict:
    return {v.version: v for v in key.versions}


def ts(t) -> float:
    return t.seconds + t.nanos / 1e9


# --------------------------------------------------------------------------
# Listing, and checking what a response carries.


def all_listed_keys(client, page_size: int = 0) -> tuple[list, bytes]:
    """Every key through ListKeys, and the serialized bytes of every page."""
    keys, blob, token = [], b"", ""
    for _ in range(1000):
        page = client.admin.ListKeys(key_admin_pb2.ListKeysRequest(page_size=page_size, page_token=token))
        keys.extend(page.keys)
        blob += page.SerializeToString()
        token = page.next_page_token
        if not token:
            return keys, blob
    raise AssertionError("ListKeys never ended")


def assert_secret_absent(blob: bytes, secret: bytes, what: str) -> None:
    assert secret not in blob, f"{what} carries the raw secret"
    text = blob.decode("latin-1")
    for form in (secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode(), b64u(secret)):
        assert form not in text, f"{what} carries the secret encoded ({form[:12]}...)"
