"""Wrapped import (BYOK) checked by implementations nobody here wrote, on
both backends: material wrapped by Python's cryptography (OAEP +
aes_key_wrap_with_padding) and by the openssl CLI imports, and the
imported keys act as themselves (AESGCM reads what signet encrypts, HMACs
equal Python's hmac, signatures verify with the original public key). On
SoftHSM2, pkcs11-tool shows the unwrapped key sensitive and not
extractable, and the key's bytes are nowhere in signet's process memory
(which holds SoftHSM2 too) after the import."""

from __future__ import annotations

import hmac
import os
import re
import subprocess
import tomllib
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from conftest import remember_secret
from signet.v1 import cipher_pb2, common_pb2, key_admin_pb2, signer_pb2

AES = common_pb2.ALGORITHM_AES_256_GCM
HMAC = common_pb2.ALGORITHM_HMAC_SHA256
TAGS = {"server": "mem", "hsm_server": "hsm"}


@pytest.fixture(params=list(TAGS))
def srv(request):
    client = request.getfixturevalue(request.param)
    client.tag = TAGS[request.param]
    return client


# The scheme each backend names: SoftHSM2 2.6 unwraps RSA-OAEP with SHA-1
# only (docs/byok.md, "The scheme").
SCHEMES = {"mem": "RSA_OAEP_3072_SHA256_AES_256", "hsm": "RSA_OAEP_3072_SHA1_AES_256"}


class Wrapping:
    """The import wrapping key as GetImportWrappingKey gives it."""

    def __init__(self, srv):
        r = srv.admin.GetImportWrappingKey(key_admin_pb2.GetImportWrappingKeyRequest())
        assert r.wrapping_scheme == SCHEMES[srv.tag]
        self.pem = r.public_key_pem
        self.pub = serialization.load_pem_public_key(r.public_key_pem.encode())
        assert self.pub.key_size == 3072
        self.oaep_md = "sha1" if "SHA1" in r.wrapping_scheme else "sha256"

    def wrap(self, material: bytes) -> bytes:
        h = hashes.SHA1() if self.oaep_md == "sha1" else hashes.SHA256()
        eph = os.urandom(32)
        oaep = padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)
        return self.pub.encrypt(eph, oaep) + aes_key_wrap_with_padding(eph, material)


def wrapping_key(srv):
    w = Wrapping(srv)
    return w, w.pem


def py_wrap(w: Wrapping, material: bytes) -> bytes:
    return w.wrap(material)


def openssl_wrap(w: Wrapping, material: bytes, tmp: Path) -> bytes:
    pem, md = w.pem, w.oaep_md
    eph = os.urandom(32)
    (tmp / "pub.pem").write_text(pem)
    (tmp / "eph").write_bytes(eph)
    (tmp / "key").write_bytes(material)
    run = lambda *a: subprocess.run(a, cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem", "-in", "eph", "-out", "eph.enc",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}", "-pkeyopt", f"rsa_mgf1_md:{md}")
    run("openssl", "enc", "-id-aes256-wrap-pad", "-K", eph.hex(), "-iv", "A65959A6", "-in", "key", "-out", "key.kwp")
    return (tmp / "eph.enc").read_bytes() + (tmp / "key.kwp").read_bytes()


def import_wrapped(srv, name, alg, wrapped):
    return srv.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=alg, wrapped_material=wrapped)).key


def aad(name: str, associated: bytes = b"") -> bytes:
    return b"\x01\x00\x00\x00\x01" + bytes([len(name)]) + name.encode() + associated


@pytest.mark.parametrize("wrapper", ["pyca", "openssl"])
def test_wrapped_aes_and_hmac_keys_act_as_themselves(srv, wrapper, tmp_path):
    pub, pem = wrapping_key(srv)
    wrap = (lambda m: py_wrap(pub, m)) if wrapper == "pyca" else (lambda m: openssl_wrap(pub, m, tmp_path))
    aes_key, mac_key = os.urandom(32), os.urandom(32)
    remember_secret(srv, aes_key)
    remember_secret(srv, mac_key)
    name = f"byok-aes-{srv.tag}-{wrapper}"
    key = import_wrapped(srv, name, AES, wrap(aes_key))
    assert key.versions[0].key_version_id == f"{name}:v1"
    c = srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=b"pan", associated_data=b"r")).ciphertext
    assert AESGCM(aes_key).decrypt(c[5:17], c[17:], aad(name, b"r")) == b"pan"

    mac = f"byok-mac-{srv.tag}-{wrapper}"
    import_wrapped(srv, mac, HMAC, wrap(mac_key))
    got = srv.signer.Sign(signer_pb2.SignRequest(key=mac, message=b"webhook body")).signature
    assert got == hmac.new(mac_key, b"webhook body", "sha256").digest()


def _pkcs8(private) -> bytes:
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def _spki(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# Private keys by algorithm, and whether the public key goes with the
# wrapping: RSA's is read from the token, EC's and Ed25519's must be sent
# (docs/byok.md, "Private keys").
PRIVATE = [
    ("ec", common_pb2.ALGORITHM_ECDSA_P256_SHA256, lambda: ec.generate_private_key(ec.SECP256R1()), True,
     lambda pub, sig: pub.verify(sig, b"m", ec.ECDSA(hashes.SHA256()))),
    ("rsa", common_pb2.ALGORITHM_RSA_PSS_2048_SHA256, lambda: rsa.generate_private_key(65537, 2048), False,
     lambda pub, sig: pub.verify(sig, b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())),
    ("ed", common_pb2.ALGORITHM_ED25519, ed25519.Ed25519PrivateKey.generate, True,
     lambda pub, sig: pub.verify(sig, b"m")),
]


@pytest.mark.parametrize("kind,alg,make,with_public,check", PRIVATE, ids=[p[0] for p in PRIVATE])
def test_wrapped_private_keys_sign_as_themselves(srv, kind, alg, make, with_public, check):
    pub, _ = wrapping_key(srv)
    private = make()
    der = _pkcs8(private)
    remember_secret(srv, der)
    name = f"byok-{kind}-{srv.tag}"
    req = key_admin_pb2.ImportKeyRequest(name=name, algorithm=alg, wrapped_material=py_wrap(pub, der),
                                         public_key=_spki(private) if with_public else b"")
    if srv.tag == "hsm" and kind == "ed":
        # SoftHSM2 2.6 unwraps no Ed25519 key (docs/byok.md, "Limits").
        with pytest.raises(grpc.RpcError) as e:
            srv.admin.ImportKey(req)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            srv.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        return
    key = srv.admin.ImportKey(req).key
    assert not key.verify_only
    sig = srv.signer.Sign(signer_pb2.SignRequest(key=name, message=b"m")).signature
    check(private.public_key(), sig)
    got = srv.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=name)).public_key
    assert got == _spki(private)


def test_a_wrapped_private_key_with_the_wrong_public_key_is_refused(srv):
    pub, _ = wrapping_key(srv)
    alg = common_pb2.ALGORITHM_ECDSA_P256_SHA256
    private, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    wrapped = py_wrap(pub, _pkcs8(private))
    name = f"byok-pair-{srv.tag}"
    cases = [_spki(other), b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
             _spki(ec.generate_private_key(ec.SECP384R1()))]
    if srv.tag == "hsm":
        cases.append(b"")  # the token cannot derive it
    for public in cases:
        with pytest.raises(grpc.RpcError) as e:
            srv.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=alg, wrapped_material=wrapped,
                                                               public_key=public))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        srv.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # A public key goes with wrapped material only.
    with pytest.raises(grpc.RpcError) as e:
        srv.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=AES, material=os.urandom(32),
                                                           public_key=_spki(other)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_wrappings_are_refused_and_nothing_is_stored(srv):
    pub, _ = wrapping_key(srv)
    good = py_wrap(pub, os.urandom(32))
    name = f"byok-bad-{srv.tag}"
    for bad in [good[:-8], good[:384], bytes(good[:10]), good[:-1] + bytes([good[-1] ^ 1]),
                bytes([good[0] ^ 1]) + good[1:], py_wrap(pub, os.urandom(31))]:
        with pytest.raises(grpc.RpcError) as e:
            import_wrapped(srv, name, AES, bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        srv.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    both = key_admin_pb2.ImportKeyRequest(name=name, algorithm=AES, material=os.urandom(32), wrapped_material=good)
    with pytest.raises(grpc.RpcError) as e:
        srv.admin.ImportKey(both)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _token_env(hsm_server) -> tuple[dict, str, str]:
    args = hsm_server.server.args
    config = tomllib.loads(Path(args[args.index("--config") + 1]).read_text())
    p = config["backend"]
    environ = Path(f"/proc/{hsm_server.server.proc.pid}/environ").read_bytes().split(b"\0")
    env = dict(os.environ)
    for kv in environ:
        if kv.startswith(b"SOFTHSM2_CONF="):
            env["SOFTHSM2_CONF"] = kv.split(b"=", 1)[1].decode()
    return env, p["module"], Path(p["pin_file"]).read_text().strip()


def _memory_holds(pid: int, needle: bytes) -> bool:
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or not m.group(3).startswith("rw"):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    found = True
            except (OSError, ValueError, OverflowError):
                continue
    return found


def test_on_the_token_the_key_is_never_in_signets_memory(hsm_server):
    hsm_server.tag = "hsm"
    pub, _ = wrapping_key(hsm_server)
    secret = os.urandom(32)
    remember_secret(hsm_server, secret)
    name = "byok-mem"
    import_wrapped(hsm_server, name, AES, py_wrap(pub, secret))
    for _ in range(20):
        hsm_server.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=b"x" * 64))
    pid = hsm_server.server.proc.pid
    assert not _memory_holds(pid, secret), "the unwrapped key's bytes are in signet's process memory"
    # The scan finds what is there: a wrapping key's public modulus.
    modulus = pub.pub.public_numbers().n.to_bytes(384, "big")
    assert _memory_holds(pid, modulus)

    env, module, pin = _token_env(hsm_server)
    out = subprocess.run(["pkcs11-tool", "--module", module, "--login", "--pin", pin, "--list-objects", "--type", "secrkey"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    block = out.stdout.split("Secret Key Object")
    ours = [b for b in block if f'label:      {name}:v1' in b or f"{name}:v1" in b]
    assert ours, out.stdout
    access = re.search(r"Access:\s*(.*)", ours[0]).group(1)
    assert "sensitive" in access, access
    assert "extractable" not in access.replace("never extractable", ""), access
    assert re.search(r"Usage:\s*encrypt, decrypt\s*$", ours[0], re.M), ours[0]


def test_on_the_token_a_wrapped_private_key_is_sensitive_and_not_extractable(hsm_server):
    # No process-memory scan here, unlike the AES key's: SoftHSM2 is a
    # library inside signet's process, and it decodes the unwrapped PKCS#8
    # in its own heap, where the scan finds the scalar. On a hardware
    # token that decoding happens in the HSM (docs/byok.md, "Limits").
    hsm_server.tag = "hsm"
    pub, _ = wrapping_key(hsm_server)
    private = ec.generate_private_key(ec.SECP256R1())
    remember_secret(hsm_server, _pkcs8(private))
    name = "byok-ec-mem"
    req = key_admin_pb2.ImportKeyRequest(name=name, algorithm=common_pb2.ALGORITHM_ECDSA_P256_SHA256,
                                         wrapped_material=py_wrap(pub, _pkcs8(private)), public_key=_spki(private))
    hsm_server.admin.ImportKey(req)
    sig = hsm_server.signer.Sign(signer_pb2.SignRequest(key=name, message=b"m")).signature
    private.public_key().verify(sig, b"m", ec.ECDSA(hashes.SHA256()))

    env, module, pin = _token_env(hsm_server)
    out = subprocess.run(["pkcs11-tool", "--module", module, "--login", "--pin", pin, "--list-objects", "--type", "privkey"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ours = [b for b in out.stdout.split("Private Key Object") if f"{name}:v1" in b]
    assert ours, out.stdout
    access = re.search(r"Access:\s*(.*)", ours[0]).group(1)
    assert "sensitive" in access, access
    assert "extractable" not in access.replace("never extractable", ""), access
