"""The CipherService checked by implementations nobody here wrote, on both
backends: Python's cryptography (AESGCM) reads and writes signet's
ciphertext format byte for byte (docs/encryption.md, "The ciphertext") with
an imported key, data keys from GenerateDataKey work in AESGCM, and the JWE
output decrypts with jwcrypto and joserfc (and theirs with signet).
Refusals carry their documented codes and the request id."""

from __future__ import annotations

import json
import os
import struct

import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwe as rfc_jwe
from joserfc.jwk import OctKey
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk

from conftest import remember_secret
from signet.v1 import cipher_pb2, common_pb2, key_admin_pb2, signer_pb2

AES = common_pb2.ALGORITHM_AES_256_GCM
JWE = cipher_pb2.CIPHERTEXT_FORMAT_JWE_COMPACT


TAGS = {"server": "mem", "hsm_server": "hsm"}


@pytest.fixture(params=list(TAGS))
def srv(request):
    """Each test runs on the memory backend and on SoftHSM2; `tag` keeps
    the key names of the two apart."""
    client = request.getfixturevalue(request.param)
    client.tag = TAGS[request.param]
    return client


def _import(srv, name: str) -> bytes:
    """A fresh 32-byte key, imported under `name` (once per server)."""
    key = os.urandom(32)
    remember_secret(srv, key)
    srv.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=name, algorithm=AES, material=key))
    return key


def _aad(name: str, version: int, associated: bytes) -> bytes:
    """The associated data docs/encryption.md specifies."""
    return b"\x01" + struct.pack(">I", version) + bytes([len(name)]) + name.encode() + associated


def _refused(call, code):
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code() == code, e.value.details()
    ids = [v for k, v in (e.value.trailing_metadata() or ()) if k == "x-request-id"]
    assert ids and ids[0], "no x-request-id on a refusal"
    return e.value.details()


def test_signets_format_is_aes_gcm_as_specified(srv):
    name = f"fmt-{srv.tag}"
    key = _import(srv, name)
    msg, ad = b"4111 1111 1111 1111", b"cards/42"
    r, call = srv.cipher.Encrypt.with_call(cipher_pb2.EncryptRequest(key=name, plaintext=msg, associated_data=ad))
    assert dict(call.initial_metadata()).get("x-request-id")
    c = r.ciphertext
    assert (r.version, r.key_version_id) == (1, f"{name}:v1")
    assert len(c) == len(msg) + 33
    assert c[0] == 1 and struct.unpack(">I", c[1:5])[0] == 1
    assert AESGCM(key).decrypt(c[5:17], c[17:], _aad(name, 1, ad)) == msg
    # What Python makes in the same format, signet decrypts.
    nonce = os.urandom(12)
    mine = c[:5] + nonce + AESGCM(key).encrypt(nonce, b"from python", _aad(name, 1, b"x"))
    d = srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=mine, associated_data=b"x"))
    assert (d.plaintext, d.version, d.key_version_id) == (b"from python", 1, f"{name}:v1")


def test_data_keys_work_in_aesgcm(srv):
    name = f"dk-{srv.tag}"
    srv.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=AES))
    dk = srv.cipher.GenerateDataKey(cipher_pb2.GenerateDataKeyRequest(key=name, associated_data=b"doc/7"))
    assert len(dk.plaintext) == 32 and dk.version == 1
    nonce = os.urandom(12)
    blob = AESGCM(dk.plaintext).encrypt(nonce, b"a large document", b"doc/7")
    back = srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=dk.ciphertext, associated_data=b"doc/7"))
    assert back.plaintext == dk.plaintext
    assert AESGCM(back.plaintext).decrypt(nonce, blob, b"doc/7") == b"a large document"
    only = srv.cipher.GenerateDataKeyWithoutPlaintext(cipher_pb2.GenerateDataKeyWithoutPlaintextRequest(key=name))
    assert not hasattr(only, "plaintext")
    k = srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=only.ciphertext)).plaintext
    assert len(k) == 32 and k != dk.plaintext
    # A data key signet did not see encrypt anything signet then decrypts.
    msg = srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=k)).ciphertext
    assert srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=msg)).plaintext == k


def test_jwe_output_decrypts_with_two_jose_libraries_and_back(srv):
    name = f"jwe-{srv.tag}"
    key = _import(srv, name)
    token = srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=b'{"pan":"4111"}', format=JWE)).ciphertext
    text = token.decode()
    jwk = jc_jwk.JWK(kty="oct", k=jc_jwk.base64url_encode(key))
    got = jc_jwe.JWE()
    got.deserialize(text, key=jwk)
    assert got.payload == b'{"pan":"4111"}'
    assert json.loads(got.objects["protected"]) == {"alg": "dir", "enc": "A256GCM", "kid": f"{name}:v1"}
    obj = rfc_jwe.decrypt_compact(text, OctKey.import_key(key))
    assert obj.plaintext == b'{"pan":"4111"}' and obj.protected["kid"] == f"{name}:v1"
    # A partner's JWE, made by each library, signet decrypts.
    header = {"alg": "dir", "enc": "A256GCM", "kid": f"{name}:v1"}
    theirs = jc_jwe.JWE(b"from jwcrypto", json.dumps(header))
    theirs.add_recipient(jwk)
    for t in [theirs.serialize(compact=True), rfc_jwe.encrypt_compact(header, b"from joserfc", OctKey.import_key(key))]:
        d = srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=t.encode()))
        assert d.plaintext.startswith(b"from ") and d.version == 1
    # No associated data in a compact JWE.
    _refused(lambda: srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=b"m", associated_data=b"x", format=JWE)),
             grpc.StatusCode.INVALID_ARGUMENT)
    # A kid naming another key, or zip, is refused.
    other = rfc_jwe.encrypt_compact({**header, "kid": "someone-else:v1"}, b"m", OctKey.import_key(key))
    _refused(lambda: srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=other.encode())), grpc.StatusCode.INVALID_ARGUMENT)


def test_refusals_and_their_codes(srv):
    name = f"ref-{srv.tag}"
    srv.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=AES))
    srv.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=f"{name}-b", algorithm=AES))
    srv.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=f"{name}-mac", algorithm=common_pb2.ALGORITHM_HMAC_SHA256))
    c = srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=name, plaintext=b"secret", associated_data=b"a")).ciphertext
    bad = grpc.StatusCode.INVALID_ARGUMENT

    def dec(ct, ad=b"a", key=name):
        return lambda: srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=key, ciphertext=ct, associated_data=ad))

    flipped = bytearray(c)
    flipped[-1] ^= 1
    said = {
        _refused(dec(bytes(flipped)), bad),
        _refused(dec(c, b"b"), bad),
        _refused(dec(c, key=f"{name}-b"), bad),
    }
    assert len(said) == 1, f"one answer whatever the cause: {said}"
    assert "secret" not in said.pop()
    assert "truncated" in _refused(dec(c[:20]), bad)
    assert "format" in _refused(dec(b"\x02" + c[1:]), bad)
    assert "AES_256_GCM" in _refused(lambda: srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key=f"{name}-mac", plaintext=b"m")), bad)
    _refused(lambda: srv.signer.Sign(signer_pb2.SignRequest(key=name, message=b"m")), bad)
    _refused(lambda: srv.cipher.Encrypt(cipher_pb2.EncryptRequest(key="no-such-key", plaintext=b"m")), grpc.StatusCode.NOT_FOUND)
    # Rotation: the old version still decrypts, ReEncrypt moves forward,
    # and once disabled the old version refuses.
    srv.admin.RotateKey(key_admin_pb2.RotateKeyRequest(name=name, promote=True))
    assert srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=c, associated_data=b"a")).version == 1
    moved = srv.cipher.ReEncrypt(cipher_pb2.ReEncryptRequest(key=name, ciphertext=c, associated_data=b"a"))
    assert (moved.version, moved.source_version) == (2, 1)
    srv.admin.DisableKeyVersion(key_admin_pb2.DisableKeyVersionRequest(name=name, version=1))
    assert "DISABLED" in _refused(dec(c), grpc.StatusCode.FAILED_PRECONDITION)
    assert srv.cipher.Decrypt(cipher_pb2.DecryptRequest(key=name, ciphertext=moved.ciphertext, associated_data=b"a")).plaintext == b"secret"
