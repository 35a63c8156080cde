"""The PKCS#11 backend (SoftHSM2) checked by independent implementations:
keys created through signet on the token sign what Python's cryptography
and the openssl CLI verify; imported HMAC secrets of every allowed length
give exactly Python's hmac (signet zero-pads short secrets for the token,
which RFC 2104 makes the same MAC); imported private keys sign as the
keys they are."""

from __future__ import annotations

import hmac
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from conftest import remember_secret
from interop_helpers import ALGS, ASYM, BY_NAME, MSG, crypto_verify, get_pem, ids, openssl_verify, sign, verify
from signet.v1 import common_pb2, key_admin_pb2

HSM = common_pb2.PROTECTION_LEVEL_HSM


@pytest.mark.parametrize("info", ALGS, ids=ids(ALGS))
def test_every_algorithm_on_the_token(hsm_server, info, tmp_path):
    name = "hsm-" + info.key_name
    key = hsm_server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=info.value)).key
    assert key.protection_level == HSM
    resp = sign(hsm_server, name, MSG)
    assert resp.key_version_id == f"{name}:v1"
    assert verify(hsm_server, name, resp.signature, MSG).valid
    assert not verify(hsm_server, name, resp.signature, MSG + b"!").valid
    if not info.asymmetric:
        return
    pem_resp, pub = get_pem(hsm_server, name)
    crypto_verify(info, pub, resp.signature, MSG)
    ok = openssl_verify(info, tmp_path / "ok", pem_resp.public_key, resp.signature, MSG)
    assert ok.returncode == 0, f"openssl refused a signature made on the token:\n{ok.stdout}{ok.stderr}"


@pytest.mark.parametrize("alg", ["HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"])
@pytest.mark.parametrize("size", [16, 20, 32, 47, 48, 64, 100, 128])
def test_imported_hmac_secret_matches_python_hmac(hsm_server, alg, size):
    info = BY_NAME[alg]
    secret = secrets.token_bytes(size)
    remember_secret(hsm_server, secret)
    name = f"hsm-imp-{alg.lower().replace('_', '-')}-{size}"
    hsm_server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=secret))
    for msg in (MSG, b""):
        want = hmac.new(secret, msg, info.hash).digest()
        assert sign(hsm_server, name, msg).signature == want
        assert verify(hsm_server, name, want, msg).valid


def _private(kind: str, size: int):
    if kind in ("pkcs1", "pss"):
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1() if size == 256 else ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


IMPORTS = [BY_NAME[n] for n in ("RSA_PKCS1_2048_SHA256", "RSA_PSS_2048_SHA256", "ECDSA_P256_SHA256", "ECDSA_P384_SHA384", "ED25519")]


@pytest.mark.parametrize("info", IMPORTS, ids=ids(IMPORTS))
def test_imported_private_key_signs_on_the_token(hsm_server, info):
    key = _private(info.kind, info.size)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    remember_secret(hsm_server, der)
    name = "hsm-imp-" + info.key_name
    got = hsm_server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=info.value, material=der)).key
    assert got.protection_level == HSM and not got.verify_only
    resp = sign(hsm_server, name, MSG)
    # The signature verifies under the caller's own public key: the token
    # holds that very key.
    crypto_verify(info, key.public_key(), resp.signature, MSG)
    _, exported = get_pem(hsm_server, name)
    assert exported.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
