"""Interop: signing and verifying with every algorithm of the table,
checked by Python's cryptography, hmac and the openssl CLI and by signet's
own Verify; ECDSA encodings, digest signing, signature strictness, Ed25519,
HMAC, and signing in parallel. Run with tests/python/run.sh."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from interop_helpers import (
    ASYM,
    BY_NAME,
    HMACS,
    MSG,
    WITH_DIGEST,
    Alg,
    Code,
    State,
    crypto_verify,
    get_pem,
    ids,
    openssl_verify,
    raw_to_der,
    rpc_error,
    sign,
    tamper,
    verify,
)
from signet.v1 import common_pb2, key_admin_pb2


def test_algorithm_table_covers_the_enum():
    enum_names = [n for n in Alg.keys() if n != "ALGORITHM_UNSPECIFIED"]
    assert all(n.startswith("ALGORITHM_") for n in enum_names), enum_names
    short = {n.removeprefix("ALGORITHM_") for n in enum_names}
    # Every signing algorithm is in this test's table; the one that
    # encrypts has test_interop_cipher.py and test_interop_byok.py.
    assert short - {"AES_256_GCM"} == set(BY_NAME), "the Algorithm enum and this test's table differ"
    assert "AES_256_GCM" in short


# --------------------------------------------------------------------------
# Asymmetric signatures checked by cryptography, openssl and Verify.


@pytest.mark.parametrize("info", ASYM, ids=ids(ASYM))
def test_sign_verifies_with_cryptography(server, keys, info):
    resp = sign(server, info.key_name, MSG)
    assert resp.version == 1
    assert resp.key_version_id == f"{info.key_name}:v1"
    assert resp.algorithm == info.value
    pem_resp, pub = get_pem(server, info.key_name)
    assert pem_resp.version == 1 and pem_resp.state == State.KEY_VERSION_STATE_ACTIVE
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
            algorithm=Alg.ALGORITHM_ECDSA_P256_SHA256,
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
            algorithm=Alg.ALGORITHM_ED25519,
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
            algorithm=Alg.ALGORITHM_RSA_PKCS1_2048_SHA256,
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


# --------------------------------------------------------------------------
# Signing in parallel.


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
