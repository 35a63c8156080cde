"""Interop tests: signet's gRPC API against Python's cryptography, hmac,
PyJWT and the openssl CLI. Run with tests/python/run.sh."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from conftest import find_secret, remember_secret, remember_secret_text
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
    name: str
    kind: str  # hmac | pkcs1 | pss | ecdsa | ed25519
    hash: str | None  # hashlib name
    size: int | None  # RSA modulus bits, EC curve bits
    jwa: str | None  # JWS "alg"

    @property
    def value(self) -> int:
        return Alg.Value(self.name)

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


def test_algorithm_table_covers_the_enum():
    enum_names = {n for n in Alg.keys() if n != "ALGORITHM_UNSPECIFIED"}
    assert enum_names == set(BY_NAME), "the Algorithm enum and this test's table differ"


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
    resp = client.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=key, version=version, format=signer_pb2.PEM))
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
# One generated key per algorithm on the demo server, created once.


@pytest.fixture(scope="session")
def keys(server):
    created = {}
    for info in ALGS:
        key = server.admin.CreateKey(
            key_admin_pb2.CreateKeyRequest(name=info.key_name, algorithm=info.value, labels={"suite": "python"})
        )
        created[info.name] = key
    return created


@pytest.mark.parametrize("info", ALGS, ids=ids(ALGS))
def test_create_key_shape(server, keys, info):
    key = keys[info.name]
    assert key.name == info.key_name
    assert key.algorithm == info.value
    assert key.protection_level == common_pb2.SOFTWARE
    assert dict(key.labels) == {"suite": "python"}
    assert key.active_version == 1
    assert not key.verify_only
    assert key.create_time.seconds > 0
    assert len(key.versions) == 1
    v1 = key.versions[0]
    assert (v1.version, v1.state, v1.key_version_id) == (1, State.ACTIVE, f"{info.key_name}:v1")
    assert not v1.public_key_only
    assert v1.activate_time.seconds > 0
    # GetKey answers the same key.
    got = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=info.key_name))
    assert got.name == key.name and got.algorithm == key.algorithm
    assert [(v.version, v.state) for v in got.versions] == [(1, State.ACTIVE)]


def test_create_existing_name_is_already_exists(server, keys):
    rpc_error(
        Code.ALREADY_EXISTS,
        server.admin.CreateKey,
        key_admin_pb2.CreateKeyRequest(name=ALGS[0].key_name, algorithm=ALGS[0].value),
    )


# --------------------------------------------------------------------------
# Asymmetric signatures checked by cryptography, openssl and Verify.


@pytest.mark.parametrize("info", ASYM, ids=ids(ASYM))
def test_sign_verifies_with_cryptography(server, keys, info):
    resp = sign(server, info.key_name, MSG)
    assert resp.version == 1
    assert resp.key_version_id == f"{info.key_name}:v1"
    assert resp.algorithm == info.value
    pem_resp, pub = get_pem(server, info.key_name)
    assert pem_resp.version == 1 and pem_resp.state == State.ACTIVE
    assert pem_resp.algorithm == info.value
    assert pem_resp.key_version_id == f"{info.key_name}:v1"
    if info.kind in ("pkcs1", "pss"):
        assert isinstance(pub, rsa.RSAPublicKey)
        assert pub.key_size == info.size
        assert len(resp.signature) == info.size // 8
    elif info.kind == "ecdsa":
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        assert pub.curve.key_size == info.size
    else:
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        assert len(resp.signature) == 64
    crypto_verify(info, pub, resp.signature, MSG)
    with pytest.raises(InvalidSignature):
        crypto_verify(info, pub, resp.signature, MSG + b"!")
    with pytest.raises(InvalidSignature):
        crypto_verify(info, pub, tamper(resp.signature), MSG)
    # The empty message is a message too.
    empty = sign(server, info.key_name, b"")
    crypto_verify(info, pub, empty.signature, b"")


@pytest.mark.parametrize("info", ASYM, ids=ids(ASYM))
def test_sign_verifies_with_openssl(server, keys, info, tmp_path):
    resp = sign(server, info.key_name, MSG)
    pem = get_pem(server, info.key_name)[0].public_key
    ok = openssl_verify(info, tmp_path / "ok", pem, resp.signature, MSG)
    assert ok.returncode == 0, f"openssl refused a signet signature:\n{ok.stdout}{ok.stderr}"
    assert "Verified" in ok.stdout or "Verified" in ok.stderr
    bad = openssl_verify(info, tmp_path / "bad", pem, resp.signature, MSG + b"!")
    assert bad.returncode != 0, "openssl accepted a signature over another message"


@pytest.mark.parametrize("info", ASYM, ids=ids(ASYM))
def test_verify_rpc(server, keys, info):
    resp = sign(server, info.key_name, MSG)
    ok = verify(server, info.key_name, resp.signature, MSG)
    assert ok.valid and ok.version == 1 and ok.key_version_id == f"{info.key_name}:v1"
    ok1 = verify(server, info.key_name, resp.signature, MSG, version=1)
    assert ok1.valid and ok1.version == 1
    bad_msg = verify(server, info.key_name, resp.signature, MSG + b"!")
    assert not bad_msg.valid and bad_msg.version == 0 and bad_msg.key_version_id == ""
    bad_sig = verify(server, info.key_name, tamper(resp.signature), MSG)
    assert not bad_sig.valid
    # Garbage of any length is an invalid signature, not an error.
    assert not verify(server, info.key_name, b"\x00" * 7, MSG).valid
    assert not verify(server, info.key_name, b"", MSG).valid


@pytest.mark.parametrize("info", [BY_NAME["ECDSA_P256_SHA256"], BY_NAME["ECDSA_P384_SHA384"]], ids=["P256", "P384"])
def test_ecdsa_raw_and_der_formats(server, keys, info, tmp_path):
    width = (info.size + 7) // 8
    pub = get_pem(server, info.key_name)[1]
    der = sign(server, info.key_name, MSG, fmt=common_pb2.SIGNATURE_FORMAT_DER)
    assert der.signature[0] == 0x30, "a DER ECDSA-Sig-Value starts with a SEQUENCE"
    utils.decode_dss_signature(der.signature)
    crypto_verify(info, pub, der.signature, MSG)
    raw = sign(server, info.key_name, MSG, fmt=common_pb2.SIGNATURE_FORMAT_RAW)
    assert len(raw.signature) == 2 * width
    crypto_verify(info, pub, raw_to_der(raw.signature), MSG)
    # The raw form converted to DER also passes openssl.
    pem = get_pem(server, info.key_name)[0].public_key
    res = openssl_verify(info, tmp_path, pem, raw_to_der(raw.signature), MSG)
    assert res.returncode == 0, res.stdout + res.stderr
    # Verify takes each form when told which.
    assert verify(server, info.key_name, raw.signature, MSG, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid
    assert verify(server, info.key_name, der.signature, MSG, fmt=common_pb2.SIGNATURE_FORMAT_DER).valid
    assert verify(server, info.key_name, der.signature, MSG).valid
    # Python-made raw signatures verify too.
    r, s = utils.decode_dss_signature(der.signature)
    py_raw = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    assert verify(server, info.key_name, py_raw, MSG, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid
    assert not verify(server, info.key_name, tamper(raw.signature), MSG, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid


# The group orders from SEC 2 (independent of signet's own table).
CURVE_ORDER = {
    256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    384: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


@pytest.mark.parametrize("info", [BY_NAME["ECDSA_P256_SHA256"], BY_NAME["ECDSA_P384_SHA384"]], ids=["P256", "P384"])
def test_ecdsa_signatures_are_low_s(server, keys, info):
    """signet emits only (r, s) with s <= n/2, in both encodings, so it never
    hands out the two spellings of one signature; each verifies with pyca."""
    width = (info.size + 7) // 8
    n = CURVE_ORDER[info.size]
    pub = get_pem(server, info.key_name)[1]
    for i in range(24):
        msg = MSG + bytes([i])
        r, s = utils.decode_dss_signature(sign(server, info.key_name, msg).signature)
        assert 0 < s <= n // 2, f"high S from DER signature {i}"
        raw = sign(server, info.key_name, msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW).signature
        s_raw = int.from_bytes(raw[width:], "big")
        assert 0 < s_raw <= n // 2, f"high S from raw signature {i}"
        crypto_verify(info, pub, raw_to_der(raw), msg)
        # The high-S twin still verifies (as OpenSSL's would): signet accepts
        # what others make, and keys replays on content, not on these bytes.
        twin = utils.encode_dss_signature(r, n - s)
        crypto_verify(info, pub, twin, msg)
        assert verify(server, info.key_name, twin, msg).valid


@pytest.mark.parametrize("info", WITH_DIGEST, ids=ids(WITH_DIGEST))
def test_digest_signing(server, keys, info):
    digest = hashlib.new(info.hash, MSG).digest()
    resp = sign(server, info.key_name, digest=digest)
    assert resp.version == 1
    pub = get_pem(server, info.key_name)[1]
    # A digest signature is an ordinary signature over the message...
    crypto_verify(info, pub, resp.signature, MSG)
    # ...and over the digest, prehashed.
    if info.kind == "pkcs1":
        pub.verify(resp.signature, digest, padding.PKCS1v15(), utils.Prehashed(info.hash_obj()))
        # PKCS#1 v1.5 is deterministic: the same bytes as signing the message.
        assert resp.signature == sign(server, info.key_name, MSG).signature
    elif info.kind == "pss":
        pub.verify(
            resp.signature,
            digest,
            padding.PSS(mgf=padding.MGF1(info.hash_obj()), salt_length=info.digest_len),
            utils.Prehashed(info.hash_obj()),
        )
    else:
        pub.verify(resp.signature, digest, ec.ECDSA(utils.Prehashed(info.hash_obj())))
    # Verify by digest and by message.
    assert verify(server, info.key_name, resp.signature, digest=digest).valid
    assert verify(server, info.key_name, resp.signature, MSG).valid
    assert not verify(server, info.key_name, resp.signature, digest=tamper(digest)).valid
    # A message signature verifies by digest.
    by_msg = sign(server, info.key_name, MSG)
    assert verify(server, info.key_name, by_msg.signature, digest=digest).valid


@pytest.mark.parametrize("info", WITH_DIGEST, ids=ids(WITH_DIGEST))
def test_wrong_digest_length_is_invalid_argument(server, keys, info):
    for n in (0, info.digest_len - 1, info.digest_len + 1, 20):
        rpc_error(Code.INVALID_ARGUMENT, sign, server, info.key_name, digest=b"\x11" * n)
    rpc_error(Code.INVALID_ARGUMENT, verify, server, info.key_name, b"\x00" * 64, digest=b"\x11" * (info.digest_len - 1))


@pytest.mark.parametrize("info", [BY_NAME["ED25519"], *HMACS], ids=["ED25519", *ids(HMACS)])
def test_digest_refused_for_ed25519_and_hmac(server, keys, info):
    digest = hashlib.sha256(MSG).digest()
    rpc_error(Code.INVALID_ARGUMENT, sign, server, info.key_name, digest=digest)
    rpc_error(Code.INVALID_ARGUMENT, verify, server, info.key_name, b"\x00" * 64, digest=digest)


def test_signature_strictness(server):
    """ECDSA high-S is accepted (as OpenSSL does); malformed encodings and
    malleated Ed25519 signatures are not."""
    msg = b"strict"
    p256_n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    priv = ec.generate_private_key(ec.SECP256R1())
    server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(
            name="strict-ec",
            algorithm=Alg.ECDSA_P256_SHA256,
            material=priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        )
    )
    sig = priv.sign(msg, ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(sig)
    for s_form in (s, p256_n - s):
        assert verify(server, "strict-ec", utils.encode_dss_signature(r, s_form), msg).valid
    assert not verify(server, "strict-ec", sig + b"\x00", msg).valid, "DER with trailing bytes"
    assert not verify(server, "strict-ec", utils.encode_dss_signature(r + p256_n, s), msg).valid, "r >= n"
    assert not verify(server, "strict-ec", utils.encode_dss_signature(0, s), msg).valid, "r = 0"
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verify(server, "strict-ec", raw, msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid
    assert not verify(server, "strict-ec", raw[:-1], msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid
    assert not verify(server, "strict-ec", b"\x00" + raw, msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid
    assert not verify(server, "strict-ec", sig, msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid

    ed = ed25519.Ed25519PrivateKey.generate()
    server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(
            name="strict-ed",
            algorithm=Alg.ED25519,
            material=ed.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        )
    )
    es = ed.sign(msg)
    assert verify(server, "strict-ed", es, msg).valid
    order = 2**252 + 27742317777372353535851937790883648493
    malleated = es[:32] + (int.from_bytes(es[32:], "little") + order).to_bytes(32, "little")
    assert not verify(server, "strict-ed", malleated, msg).valid, "Ed25519 with S >= L must not verify (RFC 8032)"

    # RSA: the signature is exactly the modulus length (RFC 8017 8.2.2).
    rsa_priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(
            name="strict-rsa",
            algorithm=Alg.RSA_PKCS1_2048_SHA256,
            material=rsa_priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        )
    )
    for i in range(2000):
        m = b"m%d" % i
        rs = rsa_priv.sign(m, padding.PKCS1v15(), hashes.SHA256())
        if rs[0] == 0:
            assert verify(server, "strict-rsa", rs, m).valid
            assert not verify(server, "strict-rsa", rs[1:], m).valid
            break
    assert verify(server, "strict-rsa", rsa_priv.sign(msg, padding.PKCS1v15(), hashes.SHA256()), msg).valid


def test_ed25519_is_deterministic_pure_eddsa(server, keys):
    info = BY_NAME["ED25519"]
    a = sign(server, info.key_name, MSG).signature
    b = sign(server, info.key_name, MSG).signature
    assert a == b
    pub = get_pem(server, info.key_name)[1]
    pub.verify(a, MSG)
    # Pure Ed25519: not a signature over the SHA-512 of the message.
    with pytest.raises(InvalidSignature):
        pub.verify(a, hashlib.sha512(MSG).digest())


# --------------------------------------------------------------------------
# Public key formats.


@pytest.mark.parametrize("info", ASYM, ids=ids(ASYM))
def test_public_key_formats_agree(server, keys, info):
    name = info.key_name
    pem_resp, pub = get_pem(server, name)
    assert pem_resp.format == signer_pb2.PEM
    assert pem_resp.public_key.startswith(b"-----BEGIN PUBLIC KEY-----")
    spki_der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    # Unspecified format means PEM.
    default = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name))
    assert default.format == signer_pb2.PEM
    assert default.public_key == pem_resp.public_key

    # DER is the PEM's body, byte for byte.
    der = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.DER))
    assert der.format == signer_pb2.DER
    assert der.public_key == spki_der
    body = b"".join(line for line in pem_resp.public_key.strip().splitlines() if not line.startswith(b"-----"))
    assert base64.b64decode(body) == der.public_key
    assert serialization.load_der_public_key(der.public_key) == pub

    # PKCS#1 for RSA only.
    if info.kind in ("pkcs1", "pss"):
        p1 = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.PEM_PKCS1))
        assert p1.format == signer_pb2.PEM_PKCS1
        assert p1.public_key.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
        p1_key = serialization.load_pem_public_key(p1.public_key)
        assert p1_key.public_numbers() == pub.public_numbers()
        assert p1.public_key == pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    else:
        rpc_error(
            Code.INVALID_ARGUMENT,
            server.signer.GetPublicKey,
            signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.PEM_PKCS1),
        )

    # JWK numbers are the key's.
    jwk_resp = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.JWK))
    assert jwk_resp.format == signer_pb2.JWK
    jwk = json.loads(jwk_resp.public_key)
    assert jwk["kid"] == f"{name}:v1"
    assert jwk["alg"] == info.jwa
    assert jwk["use"] == "sig"
    for private_member in ("d", "p", "q", "dp", "dq", "qi", "k"):
        assert private_member not in jwk
    if info.kind in ("pkcs1", "pss"):
        nums = pub.public_numbers()
        assert jwk["kty"] == "RSA"
        assert b64u_int(jwk["n"]) == nums.n
        assert b64u_int(jwk["e"]) == nums.e
        assert not jwk["n"].startswith("AA"), "JWK n must have no leading zero octet (RFC 7518 6.3.1.1)"
    elif info.kind == "ecdsa":
        nums = pub.public_numbers()
        width = (info.size + 7) // 8
        assert jwk["kty"] == "EC"
        assert jwk["crv"] == {256: "P-256", 384: "P-384"}[info.size]
        assert len(b64u_decode(jwk["x"])) == width and len(b64u_decode(jwk["y"])) == width
        assert b64u_int(jwk["x"]) == nums.x
        assert b64u_int(jwk["y"]) == nums.y
    else:
        assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert b64u_decode(jwk["x"]) == raw
    # The JWK loads in PyJWT and is the same key.
    pyjwk = jwt.PyJWK.from_json(jwk_resp.public_key.decode())
    assert pyjwk.key_id == f"{name}:v1"
    assert pyjwk.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == spki_der

    # The JWKS has the same JWK.
    jwks = json.loads(server.signer.GetJwks(signer_pb2.GetJwksRequest(key=name)).jwks)
    assert [k["kid"] for k in jwks["keys"]] == [f"{name}:v1"]
    assert jwks["keys"][0] == jwk


@pytest.mark.parametrize("info", HMACS, ids=ids(HMACS))
def test_hmac_has_no_public_key(server, keys, info):
    for fmt in (signer_pb2.PEM, signer_pb2.DER, signer_pb2.JWK):
        rpc_error(
            Code.INVALID_ARGUMENT,
            server.signer.GetPublicKey,
            signer_pb2.GetPublicKeyRequest(key=info.key_name, format=fmt),
        )


# --------------------------------------------------------------------------
# HMAC.


@pytest.mark.parametrize("info", HMACS, ids=ids(HMACS))
def test_hmac_generated_key_signs_and_verifies(server, keys, info):
    resp = sign(server, info.key_name, MSG)
    assert resp.version == 1 and resp.algorithm == info.value
    assert len(resp.signature) == info.digest_len
    assert sign(server, info.key_name, MSG).signature == resp.signature, "HMAC is deterministic"
    assert verify(server, info.key_name, resp.signature, MSG).valid
    assert not verify(server, info.key_name, resp.signature, MSG + b"!").valid
    assert not verify(server, info.key_name, tamper(resp.signature), MSG).valid
    assert not verify(server, info.key_name, resp.signature[:-1], MSG).valid


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


@pytest.mark.parametrize("info,size", [(BY_NAME["HMAC_SHA256"], 32), (BY_NAME["HMAC_SHA384"], 48), (BY_NAME["HMAC_SHA512"], 64)], ids=["SHA256-32", "SHA384-48", "SHA512-64"])
def test_hmac_import_matches_python_hmac(server, info, size):
    secret = secrets.token_bytes(size)
    remember_secret(server, secret)
    name = f"hm-import-{size}"
    key = server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=secret))
    assert key.algorithm == info.value and key.active_version == 1
    assert [(v.version, v.state) for v in key.versions] == [(1, State.ACTIVE)]
    assert not key.verify_only
    assert_secret_absent(key.SerializeToString(), secret, "ImportKey's response")

    for msg in (MSG, b"", os.urandom(4096)):
        resp = sign(server, name, msg)
        assert resp.signature == hmac.new(secret, msg, info.hash).digest()
        assert resp.key_version_id == f"{name}:v1"
        # A Python-made tag verifies; a tag under another secret does not.
        assert verify(server, name, hmac.new(secret, msg, info.hash).digest(), msg).valid
        assert not verify(server, name, hmac.new(secret[::-1], msg, info.hash).digest(), msg).valid

    # No response carries the secret.
    got = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    assert_secret_absent(got.SerializeToString(), secret, "GetKey")
    listed, blob = all_listed_keys(server)
    assert name in [k.name for k in listed]
    assert_secret_absent(blob, secret, "ListKeys")
    _, blob2 = all_listed_keys(server, page_size=1)
    assert_secret_absent(blob2, secret, "ListKeys (page_size=1)")
    for fmt in (signer_pb2.PEM, signer_pb2.JWK):
        err = rpc_error(Code.INVALID_ARGUMENT, server.signer.GetPublicKey, signer_pb2.GetPublicKeyRequest(key=name, format=fmt))
        assert find_secret(err.details() or "", [secret.hex(), base64.b64encode(secret).decode()]) is None
    err = rpc_error(Code.INVALID_ARGUMENT, server.signer.GetJwks, signer_pb2.GetJwksRequest(key=name))
    assert find_secret(err.details() or "", [secret.hex(), base64.b64encode(secret).decode()]) is None
    # Taking the name again is refused without echoing the material.
    err = rpc_error(
        Code.ALREADY_EXISTS,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=secret),
    )
    assert find_secret(err.details() or "", [secret.hex(), base64.b64encode(secret).decode()]) is None


@pytest.mark.parametrize("size,ok", [(15, False), (16, True), (128, True), (129, False), (0, False)])
def test_hmac_import_secret_sizes(server, size, ok):
    secret = secrets.token_bytes(size)
    if size:
        remember_secret(server, secret)
    name = f"hm-size-{size}"
    req = key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.HMAC_SHA256, material=secret)
    if ok:
        server.admin.ImportKey(req)
        assert sign(server, name, MSG).signature == hmac.new(secret, MSG, "sha256").digest()
    else:
        rpc_error(Code.INVALID_ARGUMENT, server.admin.ImportKey, req)
        rpc_error(Code.NOT_FOUND, server.admin.GetKey, key_admin_pb2.GetKeyRequest(name=name))


def test_hmac_import_as_new_version_and_promote(server):
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    remember_secret(server, old)
    remember_secret(server, new)
    name = "hm-rotate"
    server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.HMAC_SHA256, material=old))
    key = server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.HMAC_SHA256, material=new, as_new_version=True)
    )
    assert [(v.version, v.state) for v in key.versions] == [(1, State.ACTIVE), (2, State.PENDING)]
    assert key.active_version == 1
    # The PENDING version neither signs nor is used by default.
    assert sign(server, name, MSG).signature == hmac.new(old, MSG, "sha256").digest()
    rpc_error(Code.FAILED_PRECONDITION, sign, server, name, MSG, version=2)
    # A tag of the PENDING secret does not verify yet.
    assert not verify(server, name, hmac.new(new, MSG, "sha256").digest(), MSG).valid
    key = server.admin.PromoteKeyVersion(key_admin_pb2.PromoteKeyVersionRequest(name=name, version=2))
    assert versions_by_number(key)[1].state == State.RETIRING
    assert versions_by_number(key)[2].state == State.ACTIVE
    resp = sign(server, name, MSG)
    assert (resp.version, resp.signature) == (2, hmac.new(new, MSG, "sha256").digest())
    # The old secret's tag still verifies, as version 1.
    v = verify(server, name, hmac.new(old, MSG, "sha256").digest(), MSG)
    assert v.valid and v.version == 1 and v.key_version_id == f"{name}:v1"
    # Importing with another algorithm than the key's is refused.
    rpc_error(
        Code.INVALID_ARGUMENT,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.HMAC_SHA512, material=secrets.token_bytes(64), as_new_version=True),
    )


# --------------------------------------------------------------------------
# Importing keys made by Python.


def _py_private_key(info: AlgInfo):
    if info.kind in ("pkcs1", "pss"):
        return rsa.generate_private_key(public_exponent=65537, key_size=info.size)
    if info.kind == "ecdsa":
        return ec.generate_private_key({256: ec.SECP256R1, 384: ec.SECP384R1}[info.size]())
    return ed25519.Ed25519PrivateKey.generate()


def _py_sign(info: AlgInfo, priv, message: bytes) -> bytes:
    if info.kind == "pkcs1":
        return priv.sign(message, padding.PKCS1v15(), info.hash_obj())
    if info.kind == "pss":
        return priv.sign(message, padding.PSS(mgf=padding.MGF1(info.hash_obj()), salt_length=info.digest_len), info.hash_obj())
    if info.kind == "ecdsa":
        return priv.sign(message, ec.ECDSA(info.hash_obj()))
    return priv.sign(message)


IMPORTABLE = [BY_NAME[n] for n in ("RSA_PKCS1_2048_SHA256", "RSA_PSS_2048_SHA256", "ECDSA_P256_SHA256", "ECDSA_P384_SHA384", "ED25519")]


@pytest.mark.parametrize("encoding", ["pem", "der"])
@pytest.mark.parametrize("info", IMPORTABLE, ids=ids(IMPORTABLE))
def test_import_private_key_pkcs8(server, info, encoding):
    priv = _py_private_key(info)
    der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    remember_secret(server, der)
    for line in pem.decode().splitlines()[1:-1]:
        remember_secret_text(server, line)
    name = f"py-priv-{encoding}-{info.key_name[3:]}"
    key = server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=pem if encoding == "pem" else der)
    )
    assert key.active_version == 1 and not key.verify_only and not key.versions[0].public_key_only
    assert der not in key.SerializeToString()
    # signet's public key is Python's.
    _, pub = get_pem(server, name)
    assert pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == priv.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # signet signs with it; Python verifies; signet verifies Python's signatures.
    resp = sign(server, name, MSG)
    crypto_verify(info, priv.public_key(), resp.signature, MSG)
    assert verify(server, name, _py_sign(info, priv, MSG), MSG).valid


def test_import_key_of_wrong_size_or_curve_is_invalid_argument(server):
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa3072 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    ed = ed25519.Ed25519PrivateKey.generate()
    cases = [
        ("bad-curve", Alg.ECDSA_P256_SHA256, p384),
        ("bad-size", Alg.RSA_PKCS1_2048_SHA256, rsa3072),
        ("bad-kind", Alg.ECDSA_P256_SHA256, ed),
        ("bad-kind2", Alg.ED25519, p384),
    ]
    for name, alg, priv in cases:
        pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        remember_secret(server, priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        rpc_error(Code.INVALID_ARGUMENT, server.admin.ImportKey, key_admin_pb2.ImportKeyRequest(name=name, algorithm=alg, material=pem))
        pub_pem = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        rpc_error(Code.INVALID_ARGUMENT, server.admin.ImportKey, key_admin_pb2.ImportKeyRequest(name=name, algorithm=alg, material=pub_pem))


def _public_materials(info: AlgInfo, pub) -> dict[str, bytes]:
    out = {
        "spki-pem": pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "spki-der": pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    if info.kind in ("pkcs1", "pss"):
        out["pkcs1-pem"] = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        jwk = {"kty": "RSA", "n": b64u(pub.public_numbers().n.to_bytes((pub.key_size + 7) // 8, "big")), "e": b64u(b"\x01\x00\x01")}
    elif info.kind == "ecdsa":
        width = (info.size + 7) // 8
        nums = pub.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": {256: "P-256", 384: "P-384"}[info.size],
            "x": b64u(nums.x.to_bytes(width, "big")),
            "y": b64u(nums.y.to_bytes(width, "big")),
        }
    else:
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))}
    out["jwk"] = json.dumps(jwk).encode()
    return out


@pytest.mark.parametrize("info", IMPORTABLE, ids=ids(IMPORTABLE))
def test_import_public_key_is_verify_only(server, info):
    priv = _py_private_key(info)
    pub = priv.public_key()
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    py_sig = _py_sign(info, priv, MSG)
    for form, material in _public_materials(info, pub).items():
        name = f"py-pub-{form}-{info.key_name[3:]}"
        key = server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=material))
        assert key.verify_only, form
        assert key.versions[0].public_key_only, form
        assert key.versions[0].state == State.ACTIVE, form
        # Verify-only keys verify...
        v = verify(server, name, py_sig, MSG)
        assert v.valid and v.version == 1, form
        assert not verify(server, name, py_sig, MSG + b"!").valid, form
        # ...export the same public key...
        _, got = get_pem(server, name)
        assert got.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki, form
        # ...and never sign.
        rpc_error(Code.FAILED_PRECONDITION, sign, server, name, MSG)
        if info.kind != "ed25519":
            rpc_error(Code.FAILED_PRECONDITION, sign, server, name, digest=hashlib.new(info.hash, MSG).digest())
        # Nor rotate into a signing key, nor take private material as a new version.
        rpc_error(Code.FAILED_PRECONDITION, server.admin.RotateKey, key_admin_pb2.RotateKeyRequest(name=name))
        rpc_error(Code.FAILED_PRECONDITION, server.admin.RotateKey, key_admin_pb2.RotateKeyRequest(name=name, promote=True))
        other = _py_private_key(info)
        pk8 = other.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        remember_secret(server, pk8)
        rpc_error(
            Code.INVALID_ARGUMENT,
            server.admin.ImportKey,
            key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=pk8, as_new_version=True),
        )
        assert [v.version for v in server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name)).versions] == [1]
    # A public key is refused as a new version of a key that signs.
    signing = f"py-pub-mix-{info.key_name[3:]}"
    server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=signing, algorithm=info.value))
    rpc_error(
        Code.INVALID_ARGUMENT,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=signing, algorithm=info.value, material=_public_materials(info, pub)["spki-pem"], as_new_version=True),
    )


def test_garbage_import_is_invalid_argument(server):
    garbage = [
        (Alg.RSA_PKCS1_2048_SHA256, b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"),
        (Alg.ECDSA_P256_SHA256, b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
        (Alg.ED25519, b"not a key at all"),
        (Alg.ECDSA_P256_SHA256, b'{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}'),
        (Alg.RSA_PSS_2048_SHA256, b"\x30\x03\x02\x01\x00"),
        (Alg.ED25519, b""),
        (Alg.ALGORITHM_UNSPECIFIED, secrets.token_bytes(32)),
    ]
    # Private keys in forms other than unencrypted PKCS#8 are refused too.
    priv = ec.generate_private_key(ec.SECP256R1())
    rsa_priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    remember_secret(server, priv.private_numbers().private_value.to_bytes(32, "big"))
    nums = priv.private_numbers()
    private_jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64u(nums.public_numbers.x.to_bytes(32, "big")),
        "y": b64u(nums.public_numbers.y.to_bytes(32, "big")),
        "d": b64u(nums.private_value.to_bytes(32, "big")),
    }
    garbage += [
        (Alg.ECDSA_P256_SHA256, priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())),
        (Alg.RSA_PKCS1_2048_SHA256, rsa_priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())),
        (Alg.ECDSA_P256_SHA256, priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))),
        (Alg.ECDSA_P256_SHA256, json.dumps(private_jwk).encode()),
        # A point that is not on the curve.
        (Alg.ECDSA_P256_SHA256, json.dumps({"kty": "EC", "crv": "P-256", "x": b64u((1).to_bytes(32, "big")), "y": b64u((2).to_bytes(32, "big"))}).encode()),
        # 32 raw bytes are no Ed25519 or ECDSA key.
        (Alg.ED25519, secrets.token_bytes(32)),
        (Alg.ECDSA_P256_SHA256, secrets.token_bytes(32)),
    ]
    for i, (alg, material) in enumerate(garbage):
        name = f"garbage-{i}"
        if len(material) >= 16 and not material.startswith(b"-----BEGIN PUBLIC"):
            remember_secret(server, material)
        err = rpc_error(Code.INVALID_ARGUMENT, server.admin.ImportKey, key_admin_pb2.ImportKeyRequest(name=name, algorithm=alg, material=material))
        assert find_secret(err.details() or "", [material.hex()[:32], base64.b64encode(material).decode()[:32]]) is None, "the error echoes the material"
        if b'"d"' in material:
            assert private_jwk["d"] not in (err.details() or "")
        rpc_error(Code.NOT_FOUND, server.admin.GetKey, key_admin_pb2.GetKeyRequest(name=name))


# --------------------------------------------------------------------------
# JWS with PyJWT, keys from GetJwks.

JWS_CASES = [
    ("ES256", "ECDSA_P256_SHA256"),
    ("ES384", "ECDSA_P384_SHA384"),
    ("RS256", "RSA_PKCS1_2048_SHA256"),
    ("PS256", "RSA_PSS_2048_SHA256"),
    ("EdDSA", "ED25519"),
]


@pytest.mark.parametrize("jwa,alg_name", JWS_CASES, ids=[c[0] for c in JWS_CASES])
def test_jws_verifies_with_pyjwt_and_jwks(server, keys, jwa, alg_name):
    info = BY_NAME[alg_name]
    name = info.key_name
    kid = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name)).key_version_id
    assert kid == f"{name}:v1"
    header = {"alg": jwa, "kid": kid, "typ": "JWT"}
    claims = {"sub": "payment-42", "amount": 1000, "currency": "EUR", "iat": int(time.time())}
    signing_input = (
        b64u(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64u(json.dumps(claims, separators=(",", ":")).encode())
    )
    resp = sign(server, name, signing_input.encode(), fmt=common_pb2.SIGNATURE_FORMAT_RAW)
    assert resp.key_version_id == kid
    token = signing_input + "." + b64u(resp.signature)

    jwks = server.signer.GetJwks(signer_pb2.GetJwksRequest(key=name)).jwks
    keyset = jwt.PyJWKSet.from_json(jwks)
    assert jwt.get_unverified_header(token)["kid"] == kid
    matching = [k for k in keyset.keys if k.key_id == kid]
    assert len(matching) == 1, f"no JWK with kid {kid} in {jwks}"
    assert keyset[kid].algorithm_name == jwa
    decoded = jwt.decode(token, key=matching[0], algorithms=[jwa])
    assert decoded == claims

    # A tampered payload fails.
    forged_claims = dict(claims, amount=1)
    forged = (
        signing_input.split(".")[0]
        + "."
        + b64u(json.dumps(forged_claims, separators=(",", ":")).encode())
        + "."
        + b64u(resp.signature)
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key=matching[0], algorithms=[jwa])
    # signet's own Verify agrees with PyJWT.
    assert verify(server, name, resp.signature, signing_input.encode(), fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid


def test_jws_made_by_pyjwt_verifies_in_signet(server):
    """The other direction: PyJWT signs with a key imported into signet."""
    priv = ec.generate_private_key(ec.SECP256R1())
    remember_secret(server, priv.private_numbers().private_value.to_bytes(32, "big"))
    name = "py-jws-es256"
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ECDSA_P256_SHA256, material=pem))
    token = jwt.encode({"sub": "x"}, priv, algorithm="ES256", headers={"kid": f"{name}:v1"})
    signing_input, sig = token.rsplit(".", 1)
    v = verify(server, name, b64u_decode(sig), signing_input.encode(), fmt=common_pb2.SIGNATURE_FORMAT_RAW)
    assert v.valid and v.key_version_id == f"{name}:v1"


# --------------------------------------------------------------------------
# The rotation walk, on the server with a 2-second default grace period.


def test_rotation_walk(grace_server):
    c = grace_server
    name = "walk-ec"
    info = BY_NAME["ECDSA_P256_SHA256"]
    c.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=info.value))
    s1 = sign(c, name, MSG)
    assert (s1.version, s1.key_version_id) == (1, f"{name}:v1")
    _, pub1 = get_pem(c, name)

    # Rotate without promotion: v2 is PENDING, published, and signs nothing.
    rot = c.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name, promote=False))
    assert rot.version.version == 2 and rot.version.state == State.PENDING
    assert rot.version.key_version_id == f"{name}:v2"
    assert rot.key.active_version == 1
    assert [(v.version, v.state) for v in rot.key.versions] == [(1, State.ACTIVE), (2, State.PENDING)]
    s = sign(c, name, MSG)
    assert s.version == 1
    crypto_verify(info, pub1, s.signature, MSG)
    rpc_error(Code.FAILED_PRECONDITION, sign, c, name, MSG, version=2)
    rpc_error(Code.NOT_FOUND, sign, c, name, MSG, version=3)
    pending_pem, pub2 = get_pem(c, name, version=2)
    assert pending_pem.state == State.PENDING and pending_pem.version == 2
    assert pub2 != pub1
    jwks = json.loads(c.signer.GetJwks(signer_pb2.GetJwksRequest(key=name)).jwks)
    assert [k["kid"] for k in jwks["keys"]] == [f"{name}:v2", f"{name}:v1"], "JWKS: PENDING and ACTIVE, newest first"
    # PENDING verifies nothing: the v2 key has not signed anything yet anyway,
    # and naming it is refused.
    rpc_error(Code.FAILED_PRECONDITION, verify, c, name, s1.signature, MSG, version=2)

    # Promote v2 (grace: the server's 2 s default).
    promoted = c.admin.PromoteKeyVersion(key_admin_pb2.PromoteKeyVersionRequest(name=name, version=2))
    t_promote = time.monotonic()
    vs = versions_by_number(promoted)
    assert promoted.active_version == 2
    assert vs[1].state == State.RETIRING and vs[2].state == State.ACTIVE
    grace = ts(vs[1].verify_until) - ts(vs[2].activate_time)
    assert 1.5 <= grace <= 2.5, f"verify_until is {grace:.3f}s after the promotion, expected 2s"
    s2 = sign(c, name, MSG)
    assert (s2.version, s2.key_version_id) == (2, f"{name}:v2")
    crypto_verify(info, pub2, s2.signature, MSG)
    with pytest.raises(InvalidSignature):
        crypto_verify(info, pub1, s2.signature, MSG)
    # A RETIRING version does not sign.
    rpc_error(Code.FAILED_PRECONDITION, sign, c, name, MSG, version=1)

    # During the grace period the v1 signature still verifies, as v1.
    v = verify(c, name, s1.signature, MSG)
    assert v.valid and v.version == 1 and v.key_version_id == f"{name}:v1"
    v = verify(c, name, s1.signature, MSG, version=1)
    assert v.valid and v.version == 1
    assert not verify(c, name, s1.signature, MSG, version=2).valid
    v = verify(c, name, s2.signature, MSG)
    assert v.valid and v.version == 2
    assert time.monotonic() - t_promote < 1.5, "the grace-period checks took too long to be meaningful"

    # After the grace period v1 is DISABLED on its own and verifies nothing.
    time.sleep(max(0.0, t_promote + 3.0 - time.monotonic()))
    v = verify(c, name, s1.signature, MSG)
    assert not v.valid and v.version == 0 and v.key_version_id == ""
    rpc_error(Code.FAILED_PRECONDITION, verify, c, name, s1.signature, MSG, version=1)
    key = c.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    vs = versions_by_number(key)
    assert vs[1].state == State.DISABLED, f"v1 is {State.Name(vs[1].state)} after its grace period"
    assert vs[1].disable_time.seconds > 0
    assert vs[2].state == State.ACTIVE and key.active_version == 2
    jwks = json.loads(c.signer.GetJwks(signer_pb2.GetJwksRequest(key=name)).jwks)
    assert [k["kid"] for k in jwks["keys"]] == [f"{name}:v2"], "a DISABLED version is not published"
    assert verify(c, name, s2.signature, MSG).valid

    # The ACTIVE version cannot be disabled.
    rpc_error(Code.FAILED_PRECONDITION, c.admin.DisableKeyVersion, key_admin_pb2.DisableKeyVersionRequest(name=name, version=2))
    # Only PENDING versions are promoted.
    rpc_error(Code.FAILED_PRECONDITION, c.admin.PromoteKeyVersion, key_admin_pb2.PromoteKeyVersionRequest(name=name, version=1))
    rpc_error(Code.NOT_FOUND, c.admin.PromoteKeyVersion, key_admin_pb2.PromoteKeyVersionRequest(name=name, version=9))

    # Enable brings v1 back to RETIRING for a grace period: it verifies again.
    key = c.admin.EnableKeyVersion(
        key_admin_pb2.EnableKeyVersionRequest(name=name, version=1, grace_period=duration_pb2.Duration(seconds=60))
    )
    assert versions_by_number(key)[1].state == State.RETIRING
    v = verify(c, name, s1.signature, MSG)
    assert v.valid and v.version == 1
    # Disable it by hand, then schedule its destruction and restore it.
    key = c.admin.DisableKeyVersion(key_admin_pb2.DisableKeyVersionRequest(name=name, version=1))
    assert versions_by_number(key)[1].state == State.DISABLED
    assert not verify(c, name, s1.signature, MSG).valid
    key = c.admin.DestroyKeyVersion(key_admin_pb2.DestroyKeyVersionRequest(name=name, version=1))
    v1 = versions_by_number(key)[1]
    assert v1.state == State.DESTROY_SCHEDULED and v1.destroy_time.seconds > time.time()
    rpc_error(Code.FAILED_PRECONDITION, c.admin.EnableKeyVersion, key_admin_pb2.EnableKeyVersionRequest(name=name, version=1))
    key = c.admin.RestoreKeyVersion(key_admin_pb2.RestoreKeyVersionRequest(name=name, version=1))
    assert versions_by_number(key)[1].state == State.DISABLED
    # The ACTIVE version cannot be destroyed either.
    rpc_error(Code.FAILED_PRECONDITION, c.admin.DestroyKeyVersion, key_admin_pb2.DestroyKeyVersionRequest(name=name, version=2))


def test_rotation_policy(server):
    """A rotation policy creates, promotes and retires versions on its own.
    Transitions happen on the server's ticks (keys.tick_interval, 1 s by
    default here), so their times are allowed that much lateness."""
    tick = 1.0
    name = "policy-ed"
    D = duration_pb2.Duration
    policy = common_pb2.RotationPolicy(rotation_period=D(seconds=2), pending_period=D(seconds=1), grace_period=D(seconds=1))
    key = server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=Alg.ED25519, rotation_policy=policy))
    assert key.rotation_policy == policy
    v1 = key.versions[0]
    assert abs(ts(key.next_rotation_time) - (ts(v1.activate_time) + 1.0)) < 0.05, "next_rotation_time: when v2 is created PENDING"
    s1 = sign(server, name, MSG)
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        key = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
        vs = versions_by_number(key)
        snapshot = tuple((v, vs[v].state) for v in sorted(vs))
        if not seen or seen[-1] != snapshot:
            seen.append(snapshot)
            if 2 in vs and vs[2].state == State.PENDING:
                jwks = json.loads(server.signer.GetJwks(signer_pb2.GetJwksRequest(key=name)).jwks)
                assert [k["kid"] for k in jwks["keys"]] == [f"{name}:v2", f"{name}:v1"]
                assert sign(server, name, MSG).version == 1
        if 2 in vs and vs[2].state == State.ACTIVE and vs[1].state == State.DISABLED:
            break
        time.sleep(0.1)
    assert seen[-1][:2] == ((1, State.DISABLED), (2, State.ACTIVE)), f"states seen: {seen}"
    assert ((1, State.ACTIVE), (2, State.PENDING)) in [snap[:2] for snap in seen], f"v2 was never seen PENDING: {seen}"
    v1, v2 = vs[1], vs[2]
    period = ts(v2.activate_time) - ts(v1.activate_time)
    assert 2.0 - 0.05 <= period <= 2.0 + tick + 0.25, f"v2 became ACTIVE {period:.3f}s after v1 (rotation_period 2s)"
    pending = ts(v2.activate_time) - ts(v2.create_time)
    assert 1.0 - 0.05 <= pending <= 1.0 + tick + 0.25, f"v2 was PENDING for {pending:.3f}s (pending_period 1s)"
    assert abs(ts(v1.disable_time) - (ts(v2.activate_time) + 1.0)) < 0.05, "v1 retires after the policy's 1s grace"
    resp = sign(server, name, MSG)
    assert resp.version >= 2
    assert not verify(server, name, s1.signature, MSG).valid


def test_rotate_with_promote_and_explicit_grace(grace_server):
    c = grace_server
    name = "walk-ed"
    c.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=Alg.ED25519))
    s1 = sign(c, name, MSG)
    rot = c.admin.RotateKey(
        key_admin_pb2.RotateKeyRequest(name=name, promote=True, grace_period=duration_pb2.Duration(seconds=60))
    )
    assert rot.version.version == 2 and rot.version.state == State.ACTIVE
    vs = versions_by_number(rot.key)
    assert vs[1].state == State.RETIRING
    grace = ts(vs[1].verify_until) - ts(vs[2].activate_time)
    assert 59 <= grace <= 61, f"explicit 60 s grace gave {grace:.3f}s"
    assert sign(c, name, MSG).version == 2
    # 60 s outlives the server's 2 s default.
    time.sleep(2.5)
    v = verify(c, name, s1.signature, MSG)
    assert v.valid and v.version == 1
    # A grace period under 1 s is refused.
    rpc_error(
        Code.INVALID_ARGUMENT,
        c.admin.RotateKey,
        key_admin_pb2.RotateKeyRequest(name=name, promote=True, grace_period=duration_pb2.Duration(nanos=500_000_000)),
    )


# --------------------------------------------------------------------------
# Bad input.


def test_unknown_key_is_not_found(server):
    k = "no-such-key"
    rpc_error(Code.NOT_FOUND, sign, server, k, MSG)
    rpc_error(Code.NOT_FOUND, verify, server, k, b"\x00" * 64, MSG)
    rpc_error(Code.NOT_FOUND, server.signer.GetPublicKey, signer_pb2.GetPublicKeyRequest(key=k))
    rpc_error(Code.NOT_FOUND, server.signer.GetJwks, signer_pb2.GetJwksRequest(key=k))
    rpc_error(Code.NOT_FOUND, server.admin.GetKey, key_admin_pb2.GetKeyRequest(name=k))
    rpc_error(Code.NOT_FOUND, server.admin.RotateKey, key_admin_pb2.RotateKeyRequest(name=k))
    rpc_error(Code.NOT_FOUND, server.admin.DisableKeyVersion, key_admin_pb2.DisableKeyVersionRequest(name=k, version=1))
    rpc_error(
        Code.NOT_FOUND,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=k, algorithm=Alg.HMAC_SHA256, material=b"\x01" * 32, as_new_version=True),
    )


def test_unknown_version_is_not_found(server):
    rpc_error(Code.NOT_FOUND, sign, server, "demo-ecdsa", MSG, version=99)
    rpc_error(Code.NOT_FOUND, verify, server, "demo-ecdsa", b"\x00" * 64, MSG, version=99)
    rpc_error(Code.NOT_FOUND, server.signer.GetPublicKey, signer_pb2.GetPublicKeyRequest(key="demo-ecdsa", version=99))


def test_oversize_message_is_invalid_argument(server):
    at_limit = b"\xab" * MAX_MESSAGE_BYTES
    resp = sign(server, "demo-ed25519", at_limit)
    _, pub = get_pem(server, "demo-ed25519")
    pub.verify(resp.signature, at_limit)
    assert verify(server, "demo-ed25519", resp.signature, at_limit).valid
    over = at_limit + b"\xab"
    for key in ("demo-ed25519", "demo-ecdsa", "demo-rsa", "demo-hmac"):
        rpc_error(Code.INVALID_ARGUMENT, sign, server, key, over)
        rpc_error(Code.INVALID_ARGUMENT, verify, server, key, resp.signature, over)
    # Far larger still: refused, and the server lives on.
    try:
        sign(server, "demo-ed25519", b"\x00" * (4 * MAX_MESSAGE_BYTES))
        raise AssertionError("a 4 MiB message was signed")
    except grpc.RpcError as err:
        # Past the transport limit tonic refuses it before any handler;
        # signet answers INVALID_ARGUMENT with its own text and a request id.
        assert err.code() == Code.INVALID_ARGUMENT, err.code()
        assert "too large" in (err.details() or "")
        assert "decoded message length" not in (err.details() or "")
        assert any(k == "x-request-id" for k, _ in err.trailing_metadata() or ())
    assert sign(server, "demo-ed25519", MSG).version == 1


def test_sign_without_input_is_invalid_argument(server):
    # Neither message nor digest set: an empty message is a valid input in
    # proto3 only when set explicitly; an unset oneof is malformed.
    rpc_error(Code.INVALID_ARGUMENT, server.signer.Sign, signer_pb2.SignRequest(key="demo-ecdsa"))
    rpc_error(Code.INVALID_ARGUMENT, server.signer.Verify, signer_pb2.VerifyRequest(key="demo-ecdsa", signature=b"\x00"))


@pytest.mark.parametrize("bad", ["Bad Name", "", "a" * 65, "-lead", ".lead", "UPPER", "spa ce", "sla/sh", "uni\u00e9", "colon:v1"])
def test_invalid_names_are_invalid_argument(server, bad):
    rpc_error(Code.INVALID_ARGUMENT, server.admin.CreateKey, key_admin_pb2.CreateKeyRequest(name=bad, algorithm=Alg.ED25519))
    rpc_error(
        Code.INVALID_ARGUMENT,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=bad, algorithm=Alg.HMAC_SHA256, material=b"\x02" * 32),
    )


@pytest.mark.parametrize("good", ["a" * 64, "0", "a.b_c-d", "9lives"])
def test_valid_names_are_accepted(server, good):
    key = server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=good, algorithm=Alg.ED25519))
    assert key.name == good
    assert sign(server, good, MSG).key_version_id == f"{good}:v1"


def test_unspecified_algorithm_is_invalid_argument(server):
    rpc_error(Code.INVALID_ARGUMENT, server.admin.CreateKey, key_admin_pb2.CreateKeyRequest(name="no-alg"))
    rpc_error(Code.INVALID_ARGUMENT, server.admin.CreateKey, key_admin_pb2.CreateKeyRequest(name="bad-alg", algorithm=999))


@pytest.mark.parametrize("promote", [False, True], ids=["pending", "promote"])
def test_concurrent_rotations(server, promote):
    name = f"race-{'promote' if promote else 'pending'}"
    server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=Alg.ECDSA_P256_SHA256))
    n = 8
    barrier = threading.Barrier(n)

    def rotate(_):
        barrier.wait(10)
        return server.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name, promote=promote), timeout=60)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(rotate, range(n)))
    made = sorted(r.version.version for r in results)
    assert made == list(range(2, n + 2)), f"versions created: {made}"
    key = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    states = {v.version: v.state for v in key.versions}
    assert sorted(states) == list(range(1, n + 2))
    active = [v for v, s in states.items() if s == State.ACTIVE]
    assert len(active) == 1, f"ACTIVE versions: {active}"
    assert key.active_version == active[0]
    if promote:
        assert all(s == State.RETIRING for v, s in states.items() if v != active[0])
    else:
        assert active == [1]
        assert all(s == State.PENDING for v, s in states.items() if v != 1)
    # The server still answers, signing with the ACTIVE version.
    resp = sign(server, name, MSG)
    assert resp.version == active[0]
    _, pub = get_pem(server, name)
    crypto_verify(BY_NAME["ECDSA_P256_SHA256"], pub, resp.signature, MSG)
    assert server.health.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING


def test_concurrent_promotions(server):
    """Promoting eight PENDING versions at once leaves exactly one ACTIVE;
    promoting one version eight times at once succeeds exactly once."""
    name = "race-promote-many"
    server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=Alg.ED25519))
    for _ in range(8):
        server.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name))
    barrier = threading.Barrier(8)

    def promote(version):
        barrier.wait(10)
        return server.admin.PromoteKeyVersion(key_admin_pb2.PromoteKeyVersionRequest(name=name, version=version), timeout=60)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(promote, range(2, 10)))
    key = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    states = {v.version: v.state for v in key.versions}
    active = [v for v, st in states.items() if st == State.ACTIVE]
    assert len(active) == 1 and key.active_version == active[0], states
    assert all(st == State.RETIRING for v, st in states.items() if v != active[0]), states
    assert sign(server, name, MSG).version == active[0]

    name = "race-promote-one"
    server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=Alg.ED25519))
    server.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name))
    barrier = threading.Barrier(8)

    def promote_two(_):
        barrier.wait(10)
        try:
            server.admin.PromoteKeyVersion(key_admin_pb2.PromoteKeyVersionRequest(name=name, version=2), timeout=60)
            return Code.OK
        except grpc.RpcError as err:
            return err.code()

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(promote_two, range(8)))
    assert codes.count(Code.OK) == 1, codes
    assert codes.count(Code.FAILED_PRECONDITION) == 7, codes
    key = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    assert [(v.version, v.state) for v in key.versions] == [(1, State.RETIRING), (2, State.ACTIVE)]


def test_concurrent_signing(server, keys):
    """Parallel Sign calls on several algorithms all produce valid signatures."""
    infos = [BY_NAME[n] for n in ("ECDSA_P256_SHA256", "ED25519", "RSA_PSS_2048_SHA256", "HMAC_SHA256")]
    jobs = [(info, os.urandom(64)) for info in infos for _ in range(16)]

    def run(job):
        info, msg = job
        return info, msg, sign(server, info.key_name, msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, jobs))
    for info, msg, resp in results:
        assert verify(server, info.key_name, resp.signature, msg, fmt=common_pb2.SIGNATURE_FORMAT_RAW).valid


# --------------------------------------------------------------------------
# Demo keys, listing, metadata.


def test_demo_keys(server):
    expected = {
        "demo-hmac": Alg.HMAC_SHA256,
        "demo-rsa": Alg.RSA_PKCS1_2048_SHA256,
        "demo-ecdsa": Alg.ECDSA_P256_SHA256,
        "demo-ed25519": Alg.ED25519,
    }
    for name, alg in expected.items():
        key = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
        assert key.algorithm == alg and key.active_version >= 1
        resp = sign(server, name, MSG)
        assert verify(server, name, resp.signature, MSG).valid
        if alg != Alg.HMAC_SHA256:
            crypto_verify(next(a for a in ALGS if a.value == alg), get_pem(server, name)[1], resp.signature, MSG)


def test_list_keys_pages(server, keys):
    full, _ = all_listed_keys(server, page_size=1000)
    names = [k.name for k in full]
    assert names == sorted(names), "ListKeys is in name order"
    assert len(set(names)) == len(names)
    for info in ALGS:
        assert info.key_name in names
    for demo in ("demo-hmac", "demo-rsa", "demo-ecdsa", "demo-ed25519"):
        assert demo in names
    paged, _ = all_listed_keys(server, page_size=3)
    assert [k.name for k in paged] == names
    first = server.admin.ListKeys(key_admin_pb2.ListKeysRequest(page_size=3))
    assert len(first.keys) == 3 and first.next_page_token
    rpc_error(Code.INVALID_ARGUMENT, server.admin.ListKeys, key_admin_pb2.ListKeysRequest(page_token="not-a-token!"))
    rpc_error(Code.INVALID_ARGUMENT, server.admin.ListKeys, key_admin_pb2.ListKeysRequest(page_size=1001))


def test_request_id_metadata(server):
    _, call = server.signer.Sign.with_call(signer_pb2.SignRequest(key="demo-ecdsa", message=MSG))
    md = dict(call.initial_metadata()) | dict(call.trailing_metadata())
    assert md.get("x-request-id"), f"no x-request-id in {md}"
    err = rpc_error(Code.NOT_FOUND, sign, server, "no-such-key", MSG)
    md = dict(err.initial_metadata() or ()) | dict(err.trailing_metadata() or ())
    assert md.get("x-request-id"), f"no x-request-id on an error: {md}"


def test_http_signing_unknown_profile(server):
    # The demo configuration has no profiles: any name is NOT_FOUND.
    for call, req in (
        (server.signer.SignHttpRequest, signer_pb2.SignHttpRequestRequest(profile="no-such-profile", method="POST", url="https://example.test/")),
        (server.signer.VerifyHttpRequest, signer_pb2.VerifyHttpRequestRequest(profile="no-such-profile", method="POST", url="https://example.test/")),
    ):
        with pytest.raises(grpc.RpcError) as excinfo:
            call(req)
        assert excinfo.value.code() == Code.NOT_FOUND, excinfo.value.code()


# --------------------------------------------------------------------------
# Health and reflection.


def test_health(server):
    for service in ("", "signet.v1.Signer", "signet.v1.KeyAdmin"):
        resp = server.health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, service
    rpc_error(Code.NOT_FOUND, server.health.Check, health_pb2.HealthCheckRequest(service="no.such.Service"))


def rpc_table() -> dict[str, set[str]]:
    """The methods of each service, as src/rpcs.rs declares them."""
    import re

    text = (Path(__file__).resolve().parents[2] / "src" / "rpcs.rs").read_text()
    rows = re.findall(r'^\s*[A-Z_]+ = "([\w.]+)" / "(\w+)", \w+, \w+;$', text, re.M)
    table: dict[str, set[str]] = {}
    for service, method in rows:
        table.setdefault(service, set()).add(method)
    assert table, "no rows found in src/rpcs.rs"
    return table


def test_reflection_lists_services(server):
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    responses = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    assert len(responses) == 1
    listed = {s.name for s in responses[0].list_services_response.service}
    for svc in ("signet.v1.Signer", "signet.v1.KeyAdmin", "grpc.health.v1.Health"):
        assert svc in listed, f"{svc} not in {sorted(listed)}"

    db = ProtoReflectionDescriptorDatabase(server.channel)
    assert {"signet.v1.Signer", "signet.v1.KeyAdmin"} <= set(db.get_services())
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(db)
    table = rpc_table()
    assert set(table) == {"signet.v1.Signer", "signet.v1.KeyAdmin"}
    for name, methods in table.items():
        served = pool.FindServiceByName(name)
        assert {m.name for m in served.methods} == methods, name
    sign_req = pool.FindMessageTypeByName("signet.v1.SignRequest")
    assert sign_req.fields_by_name["digest"].number == signer_pb2.SignRequest.DESCRIPTOR.fields_by_name["digest"].number


# --------------------------------------------------------------------------
# Last: no secret in either server's log (the fixtures check again after
# shutdown, with the shutdown lines included).


def test_zz_no_secret_in_server_logs(server, grace_server):
    for client in (server, grace_server):
        assert client.server.lines, "no server log was captured"
        log = client.server.stderr()
        assert "signet listening" in log
        hit = find_secret(log, client.secret_texts)
        assert hit is None, f"a secret reached the server log: {hit[:24]}..."
    assert len(server.secret_texts) > 20, "the suite handed the server fewer secrets than expected"
