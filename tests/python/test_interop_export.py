"""Wrapped export of shared secrets, checked by implementations nobody here
wrote, on both backends: a key created exportable is exported wrapped to an
RSA key made by Python's cryptography, unwraps there (OAEP +
aes_key_unwrap_with_padding) and with the openssl CLI to a secret whose
HMACs equal signet's and whose AES-GCM reads signet's ciphertexts. Nothing
else is exportable, and every refusal has its code. On SoftHSM2,
pkcs11-tool shows the exportable key sensitive but extractable, and every
other key never extractable."""

from __future__ import annotations

import hmac
import re
import subprocess
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from conftest import remember_secret
from signet.v1 import cipher_pb2, common_pb2, key_admin_pb2, signer_pb2
from test_interop_byok import _token_env

AES = common_pb2.ALGORITHM_AES_256_GCM
HMAC = common_pb2.ALGORITHM_HMAC_SHA256
HMAC512 = common_pb2.ALGORITHM_HMAC_SHA512
TAGS = {"server": "mem", "hsm_server": "hsm"}
SHA256 = "RSA_OAEP_3072_SHA256_AES_256"
SHA1 = "RSA_OAEP_3072_SHA1_AES_256"
# What each backend wraps with when the caller names no scheme: SoftHSM2
# 2.6 does RSA-OAEP with SHA-1 only (docs/byok.md).
BEST = {"mem": SHA256, "hsm": SHA1}


@pytest.fixture(params=list(TAGS))
def srv(request):
    client = request.getfixturevalue(request.param)
    client.tag = TAGS[request.param]
    return client


@pytest.fixture(scope="module")
def recipient():
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def pem(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def create(srv, name, alg, exportable=True):
    return srv.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=alg, exportable=exportable)).key


def export(srv, name, to: bytes, version=0, scheme=""):
    return srv.admin.ExportKey(key_admin_pb2.ExportKeyRequest(
        name=name, version=version, wrapping_public_key=to, wrapping_scheme=scheme))


def py_unwrap(private, wrapped: bytes, scheme: str) -> bytes:
    h = hashes.SHA1() if scheme == SHA1 else hashes.SHA256()
    n = private.key_size // 8
    eph = private.decrypt(wrapped[:n], padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
    return aes_key_unwrap_with_padding(eph, wrapped[n:])


def openssl_unwrap(private, wrapped: bytes, scheme: str, tmp: Path) -> bytes:
    md = "sha1" if scheme == SHA1 else "sha256"
    n = private.key_size // 8
    (tmp / "priv.pem").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp / "eph.enc").write_bytes(wrapped[:n])
    (tmp / "key.kwp").write_bytes(wrapped[n:])
    run = lambda *a: subprocess.run(a, cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run("openssl", "pkeyutl", "-decrypt", "-inkey", "priv.pem", "-in", "eph.enc", "-out", "eph",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}", "-pkeyopt", f"rsa_mgf1_md:{md}")
    eph = (tmp / "eph").read_bytes()
    run("openssl", "enc", "-d", "-id-aes256-wrap-pad", "-K", eph.hex(), "-iv", "A65959A6",
        "-in", "key.kwp", "-out", "key")
    return (tmp / "key").read_bytes()


def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()


@pytest.mark.parametrize("unwrapper", ["pyca", "openssl"])
@pytest.mark.parametrize("alg", [HMAC, HMAC512])
def test_an_exported_hmac_secret_macs_as_signet_does(srv, recipient, unwrapper, alg, tmp_path):
    name = f"exp-mac-{srv.tag}-{unwrapper}-{alg}"
    key = create(srv, name, alg)
    assert key.exportable
    r = export(srv, name, pem(recipient))
    assert r.key_version_id == f"{name}:v1" and r.version == 1 and r.algorithm == alg
    assert r.wrapping_scheme == BEST[srv.tag]
    spki = recipient.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert r.wrapping_key_sha256 == hashes_hex(spki)
    if unwrapper == "pyca":
        secret = py_unwrap(recipient, r.wrapped_material, r.wrapping_scheme)
    else:
        secret = openssl_unwrap(recipient, r.wrapped_material, r.wrapping_scheme, tmp_path)
    remember_secret(srv, secret)
    assert len(secret) == (32 if alg == HMAC else 64)
    digest = "sha256" if alg == HMAC else "sha512"
    for body in [b"", b"webhook body", bytes(range(256)) * 4]:
        got = srv.signer.Sign(signer_pb2.SignRequest(key=name, message=body)).signature
        assert got == hmac.new(secret, body, digest).digest()


def hashes_hex(data: bytes) -> str:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize().hex()


def test_an_exported_aes_key_reads_signets_ciphertexts_and_each_version_is_its_own(srv, recipient):
    name = f"exp-aes-{srv.tag}"
    create(srv, name, AES)
    keys = {}
    for v in (1, 2):
        if v == 2:
            srv.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name, promote=True))
        r = export(srv, name, pem(recipient))
        assert r.version == v
        keys[v] = py_unwrap(recipient, r.wrapped_material, r.wrapping_scheme)
        remember_secret(srv, keys[v])
        c = srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=b"pan 4111", associated_data=b"r")).ciphertext
        assert c[1:5] == v.to_bytes(4, "big")
        aad_v = bytes([1]) + v.to_bytes(4, "big") + bytes([len(name)]) + name.encode() + b"r"
        assert AESGCM(keys[v]).decrypt(c[5:17], c[17:], aad_v) == b"pan 4111"
    assert keys[1] != keys[2]
    # The RETIRING version by number still exports, and is still v1's key.
    r = export(srv, name, pem(recipient), version=1)
    assert py_unwrap(recipient, r.wrapped_material, r.wrapping_scheme) == keys[1]


def test_schemes_and_recipient_sizes(srv):
    name = f"exp-sizes-{srv.tag}"
    create(srv, name, HMAC)
    sig = srv.signer.Sign(signer_pb2.SignRequest(key=name, message=b"m")).signature
    for bits in (2048, 4096):
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for scheme in ["", SHA1, SHA256]:
            if srv.tag == "hsm" and scheme == SHA256:
                c, msg = code_of(lambda: export(srv, name, der, scheme=scheme))
                assert c == grpc.StatusCode.FAILED_PRECONDITION and SHA256 in msg, msg
                continue
            r = export(srv, name, der, scheme=scheme)
            assert r.wrapping_scheme == (scheme or BEST[srv.tag])
            assert len(r.wrapped_material) == bits // 8 + 40
            secret = py_unwrap(private, r.wrapped_material, r.wrapping_scheme)
            assert hmac.new(secret, b"m", "sha256").digest() == sig


def test_nothing_else_is_exportable(srv, recipient):
    t = srv.tag
    to = pem(recipient)
    # Asymmetric keys never are.
    for alg in [common_pb2.ALGORITHM_ECDSA_P256_SHA256, common_pb2.ALGORITHM_ED25519]:
        c, msg = code_of(lambda: create(srv, f"exp-asym-{t}-{alg}", alg))
        assert c == grpc.StatusCode.INVALID_ARGUMENT and "never exportable" in msg, msg
        c, _ = code_of(lambda: srv.admin.GetKey(key_admin_pb2.GetKeyRequest(name=f"exp-asym-{t}-{alg}")))
        assert c == grpc.StatusCode.NOT_FOUND
    ec_name = f"exp-ec-{t}"
    create(srv, ec_name, common_pb2.ALGORITHM_ECDSA_P256_SHA256, exportable=False)
    plain = f"exp-plain-{t}"
    create(srv, plain, HMAC, exportable=False)
    for name in [ec_name, plain]:
        c, msg = code_of(lambda: export(srv, name, to))
        assert c == grpc.StatusCode.FAILED_PRECONDITION and "not created exportable" in msg, msg
    # An exportable key takes no imported version (its versions are made
    # by signet), and its disabled versions are not handed out.
    name = f"exp-life-{t}"
    create(srv, name, HMAC)
    c, msg = code_of(lambda: srv.admin.ImportKey(key_admin_pb2.ImportKeyRequest(
        name=name, algorithm=HMAC, material=b"k" * 32, as_new_version=True)))
    assert c == grpc.StatusCode.FAILED_PRECONDITION, msg
    srv.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name, promote=True))
    srv.admin.DisableKeyVersion(key_admin_pb2.DisableKeyVersionRequest(name=name, version=1))
    c, msg = code_of(lambda: export(srv, name, to, version=1))
    assert c == grpc.StatusCode.FAILED_PRECONDITION and "DISABLED" in msg, msg
    c, _ = code_of(lambda: export(srv, name, to, version=9))
    assert c == grpc.StatusCode.NOT_FOUND
    c, _ = code_of(lambda: export(srv, f"exp-none-{t}", to))
    assert c == grpc.StatusCode.NOT_FOUND
    # Bad recipients and schemes.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_pub = pem(ec.generate_private_key(ec.SECP256R1()))
    cert_like = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    for bad in [b"", b"garbage", pem(weak), ec_pub, cert_like, to[:-40]]:
        c, msg = code_of(lambda: export(srv, name, bad))
        assert c == grpc.StatusCode.INVALID_ARGUMENT and "RSA public key" in msg, (bad[:30], msg)
    c, msg = code_of(lambda: export(srv, name, to, scheme="RSA_OAEP_4096_SHA512"))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "unknown wrapping_scheme" in msg, msg
    c, msg = code_of(lambda: export(srv, name, to, scheme="\x00\xff" * 40))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "\x00" not in msg, msg


def test_on_the_token_the_exportable_key_is_sensitive_but_extractable(hsm_server, recipient):
    create(hsm_server, "exp-attrs", HMAC)
    create(hsm_server, "exp-attrs-aes", AES)
    create(hsm_server, "exp-attrs-not", HMAC, exportable=False)
    env, module, pin = _token_env(hsm_server)
    out = subprocess.run(["pkcs11-tool", "--module", module, "--login", "--pin", pin, "--list-objects", "--type", "secrkey"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    blocks = {}
    for b in out.stdout.split("Secret Key Object")[1:]:
        # Labels are NAME:vN:<random suffix>.
        m = re.search(r"label:\s*(\S+:v\d+):[0-9a-f]+", b)
        if m:
            blocks[m.group(1)] = b
    assert {"exp-attrs:v1", "exp-attrs-aes:v1", "exp-attrs-not:v1"} <= set(blocks), out.stdout
    for name in ["exp-attrs:v1", "exp-attrs-aes:v1"]:
        access = re.search(r"Access:\s*(.*)", blocks[name]).group(1)
        assert "sensitive" in access and "extractable" in access, access
        assert "never extractable" not in access, access
    access = re.search(r"Access:\s*(.*)", blocks["exp-attrs-not:v1"]).group(1)
    assert "never extractable" in access, access
    assert "extractable" not in access.replace("never extractable", ""), access
