"""Interop: public keys in every format signet exports (PEM, DER, PKCS#1,
JWK, JWKS) against Python's cryptography and PyJWT, and JWS tokens
verified with PyJWT from the JWKS (and made by PyJWT, verified by signet).
Run with tests/python/run.sh."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import remember_secret
from interop_helpers import (
    ASYM,
    BY_NAME,
    HMACS,
    Alg,
    Code,
    b64u,
    b64u_decode,
    b64u_int,
    get_pem,
    ids,
    rpc_error,
    sign,
    verify,
)
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2


# --------------------------------------------------------------------------
# Public key formats.


@pytest.mark.parametrize("info", ASYM, ids=ids(ASYM))
def test_public_key_formats_agree(server, keys, info):
    name = info.key_name
    pem_resp, pub = get_pem(server, name)
    assert pem_resp.format == signer_pb2.PUBLIC_KEY_FORMAT_PEM
    assert pem_resp.public_key.startswith(b"-----BEGIN PUBLIC KEY-----")
    spki_der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    # Unspecified format means PEM.
    default = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name))
    assert default.format == signer_pb2.PUBLIC_KEY_FORMAT_PEM
    assert default.public_key == pem_resp.public_key

    # DER is the PEM's body, byte for byte.
    der = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.PUBLIC_KEY_FORMAT_DER))
    assert der.format == signer_pb2.PUBLIC_KEY_FORMAT_DER
    assert der.public_key == spki_der
    body = b"".join(line for line in pem_resp.public_key.strip().splitlines() if not line.startswith(b"-----"))
    assert base64.b64decode(body) == der.public_key
    assert serialization.load_der_public_key(der.public_key) == pub

    # PKCS#1 for RSA only.
    if info.kind in ("pkcs1", "pss"):
        p1 = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.PUBLIC_KEY_FORMAT_PEM_PKCS1))
        assert p1.format == signer_pb2.PUBLIC_KEY_FORMAT_PEM_PKCS1
        assert p1.public_key.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
        p1_key = serialization.load_pem_public_key(p1.public_key)
        assert p1_key.public_numbers() == pub.public_numbers()
        assert p1.public_key == pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    else:
        rpc_error(
            Code.INVALID_ARGUMENT,
            server.signer.GetPublicKey,
            signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.PUBLIC_KEY_FORMAT_PEM_PKCS1),
        )

    # JWK numbers are the key's.
    jwk_resp = server.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name, format=signer_pb2.PUBLIC_KEY_FORMAT_JWK))
    assert jwk_resp.format == signer_pb2.PUBLIC_KEY_FORMAT_JWK
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
    for fmt in (signer_pb2.PUBLIC_KEY_FORMAT_PEM, signer_pb2.PUBLIC_KEY_FORMAT_DER, signer_pb2.PUBLIC_KEY_FORMAT_JWK):
        rpc_error(
            Code.INVALID_ARGUMENT,
            server.signer.GetPublicKey,
            signer_pb2.GetPublicKeyRequest(key=info.key_name, format=fmt),
        )


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
    server.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=Alg.ALGORITHM_ECDSA_P256_SHA256, material=pem))
    token = jwt.encode({"sub": "x"}, priv, algorithm="ES256", headers={"kid": f"{name}:v1"})
    signing_input, sig = token.rsplit(".", 1)
    v = verify(server, name, b64u_decode(sig), signing_input.encode(), fmt=common_pb2.SIGNATURE_FORMAT_RAW)
    assert v.valid and v.key_version_id == f"{name}:v1"
