"""Interop: importing keys made by Python: HMAC secrets (checked against
Python's hmac, sizes, as a new version), private keys in PKCS#8, public
keys as verify-only keys, and refused material (wrong size or curve,
garbage), with no response or error echoing a secret. Run with
tests/python/run.sh."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from conftest import find_secret, remember_secret, remember_secret_text
from interop_helpers import (
    BY_NAME,
    MSG,
    Alg,
    AlgInfo,
    Code,
    State,
    all_listed_keys,
    assert_secret_absent,
    b64u,
    crypto_verify,
    get_pem,
    ids,
    rpc_error,
    sign,
    verify,
    versions_by_number,
)
from signet.v1 import key_admin_pb2, signer_pb2


# --------------------------------------------------------------------------
# HMAC secrets made by Python.


@pytest.mark.parametrize("info,size", [(BY_NAME["HMAC_SHA256"], 32), (BY_NAME["HMAC_SHA384"], 48), (BY_NAME["HMAC_SHA512"], 64)], ids=["SHA256-32", "SHA384-48", "SHA512-64"])
def test_hmac_import_matches_python_hmac(server, info, size):
    secret = secrets.token_bytes(size)
    remember_secret(server, secret)
    name = f"hm-import-{size}"
    resp = server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=secret))
    key = resp.key
    assert key.algorithm == info.value and key.active_version == 1
    assert [(v.version, v.state) for v in key.versions] == [(1, State.KEY_VERSION_STATE_ACTIVE)]
    assert not key.verify_only
    assert_secret_absent(resp.SerializeToString(), secret, "ImportKey's response")

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
    for fmt in (signer_pb2.PUBLIC_KEY_FORMAT_PEM, signer_pb2.PUBLIC_KEY_FORMAT_JWK):
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
    req = key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ALGORITHM_HMAC_SHA256, material=secret)
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
    server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ALGORITHM_HMAC_SHA256, material=old))
    key = server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ALGORITHM_HMAC_SHA256, material=new, as_new_version=True)
    ).key
    assert [(v.version, v.state) for v in key.versions] == [(1, State.KEY_VERSION_STATE_ACTIVE), (2, State.KEY_VERSION_STATE_PENDING)]
    assert key.active_version == 1
    # The PENDING version neither signs nor is used by default.
    assert sign(server, name, MSG).signature == hmac.new(old, MSG, "sha256").digest()
    rpc_error(Code.FAILED_PRECONDITION, sign, server, name, MSG, version=2)
    # A tag of the PENDING secret does not verify yet.
    assert not verify(server, name, hmac.new(new, MSG, "sha256").digest(), MSG).valid
    key = server.admin.PromoteKeyVersion(key_admin_pb2.PromoteKeyVersionRequest(name=name, version=2)).key
    assert versions_by_number(key)[1].state == State.KEY_VERSION_STATE_RETIRING
    assert versions_by_number(key)[2].state == State.KEY_VERSION_STATE_ACTIVE
    resp = sign(server, name, MSG)
    assert (resp.version, resp.signature) == (2, hmac.new(new, MSG, "sha256").digest())
    # The old secret's tag still verifies, as version 1.
    v = verify(server, name, hmac.new(old, MSG, "sha256").digest(), MSG)
    assert v.valid and v.version == 1 and v.key_version_id == f"{name}:v1"
    # Importing with another algorithm than the key's is refused.
    rpc_error(
        Code.INVALID_ARGUMENT,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ALGORITHM_HMAC_SHA512, material=secrets.token_bytes(64), as_new_version=True),
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
    resp = server.admin.ImportKey(
        key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=pem if encoding == "pem" else der)
    )
    key = resp.key
    assert key.active_version == 1 and not key.verify_only and not key.versions[0].public_key_only
    assert der not in resp.SerializeToString()
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
        ("bad-curve", Alg.ALGORITHM_ECDSA_P256_SHA256, p384),
        ("bad-size", Alg.ALGORITHM_RSA_PKCS1_2048_SHA256, rsa3072),
        ("bad-kind", Alg.ALGORITHM_ECDSA_P256_SHA256, ed),
        ("bad-kind2", Alg.ALGORITHM_ED25519, p384),
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
        key = server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=material)).key
        assert key.verify_only, form
        assert key.versions[0].public_key_only, form
        assert key.versions[0].state == State.KEY_VERSION_STATE_ACTIVE, form
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
        assert [v.version for v in server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name)).key.versions] == [1]
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
        (Alg.ALGORITHM_RSA_PKCS1_2048_SHA256, b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"),
        (Alg.ALGORITHM_ECDSA_P256_SHA256, b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
        (Alg.ALGORITHM_ED25519, b"not a key at all"),
        (Alg.ALGORITHM_ECDSA_P256_SHA256, b'{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}'),
        (Alg.ALGORITHM_RSA_PSS_2048_SHA256, b"\x30\x03\x02\x01\x00"),
        (Alg.ALGORITHM_ED25519, b""),
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
        (Alg.ALGORITHM_ECDSA_P256_SHA256, priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())),
        (Alg.ALGORITHM_RSA_PKCS1_2048_SHA256, rsa_priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())),
        (Alg.ALGORITHM_ECDSA_P256_SHA256, priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))),
        (Alg.ALGORITHM_ECDSA_P256_SHA256, json.dumps(private_jwk).encode()),
        # A point that is not on the curve.
        (Alg.ALGORITHM_ECDSA_P256_SHA256, json.dumps({"kty": "EC", "crv": "P-256", "x": b64u((1).to_bytes(32, "big")), "y": b64u((2).to_bytes(32, "big"))}).encode()),
        # 32 raw bytes are no Ed25519 or ECDSA key.
        (Alg.ALGORITHM_ED25519, secrets.token_bytes(32)),
        (Alg.ALGORITHM_ECDSA_P256_SHA256, secrets.token_bytes(32)),
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
