"""RFC 9421 profiles checked by the PyPI library http-message-signatures
(pyauth; nobody here wrote it), both ways, for every algorithm RFC 9421
registers and a spread of component sets: what signet signs, the library
verifies with signet's public key (or the shared secret); what the library
signs with the same key, signet verifies. Content-Digest is RFC 9530's,
computed by the library on one side and by signet on the other."""

from __future__ import annotations

import datetime
import secrets as pysecrets

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from conftest import _serve, remember_secret
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

R = signer_pb2.VerifyFailureReason
A = common_pb2

# name: (signet algorithm, library algorithm, private key maker)
ALGS = {
    "hmac": (A.ALGORITHM_HMAC_SHA256, algorithms.HMAC_SHA256, lambda: pysecrets.token_bytes(64)),
    "ed25519": (A.ALGORITHM_ED25519, algorithms.ED25519, ed25519.Ed25519PrivateKey.generate),
    "p256": (A.ALGORITHM_ECDSA_P256_SHA256, algorithms.ECDSA_P256_SHA256, lambda: ec.generate_private_key(ec.SECP256R1())),
    "p384": (A.ALGORITHM_ECDSA_P384_SHA384, algorithms.ECDSA_P384_SHA384, lambda: ec.generate_private_key(ec.SECP384R1())),
    "pss": (
        A.ALGORITHM_RSA_PSS_2048_SHA512,
        algorithms.RSA_PSS_SHA512,
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ),
    "pkcs1": (
        A.ALGORITHM_RSA_PKCS1_2048_SHA256,
        algorithms.RSA_V1_5_SHA256,
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ),
}

# Component sets, each a profile per algorithm.
SETS = {
    "basic": ["@method", "@authority", "@target-uri"],
    "parts": ["@method", "@scheme", "@path", "@query", "@request-target", "content-type", "content-digest"],
    "fields": ['"@query-param";name="id"', "date", '"x-dict";key="b"', '"content-digest";sf', '"x-bin";bs'],
}

URL = "https://api.bank.example:8443/v1/payments?id=p%20x&amp=1&note=caf%C3%A9"
BODY = b'{"amount": "12.50", "currency": "EUR", "creditor": "caf\xc3\xa9"}'
HEADERS = {
    "Content-Type": "application/json",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "X-Dict": "a=1, b=(2 3);p, c",
    "X-Bin": "raw value, with a comma",
}


def _toml_list(items):
    return "[" + ", ".join("'" + i + "'" for i in items) + "]"


def _config() -> str:
    out = ['[server]\nlisten = "127.0.0.1:0"\nplaintext = true\n']
    for alg in ALGS:
        for set_name, comps in SETS.items():
            out.append(
                f'[[profiles]]\nname = "r-{alg}-{set_name}"\nscheme = "rfc9421"\nkey = "r-{alg}"\n'
                f"[profiles.rfc9421]\ncomponents = {_toml_list(comps)}\nsend_alg = true\n"
            )
    return "\n".join(out)


@pytest.fixture(scope="module")
def rfc(tmp_path_factory):
    """signet with an RFC 9421 profile per algorithm and component set, and
    one key per algorithm, made here by pyca and imported."""
    confdir = tmp_path_factory.mktemp("rfc9421-config")
    config = confdir / "signet.toml"
    config.write_text(_config())
    gen = _serve(tmp_path_factory, "rfc9421", ["--config", str(config)])
    client = next(gen)
    client.keys = {}
    for alg, (signet_alg, _, make) in ALGS.items():
        key = make()
        if isinstance(key, bytes):
            material = key
        else:
            material = key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        remember_secret(client, material)
        client.admin.ImportKey(key_admin_pb2.ImportKeyRequest(name=f"r-{alg}", algorithm=signet_alg, material=material))
        client.keys[alg] = key
    yield client
    try:
        next(gen)
    except StopIteration:
        pass


class Keys(HTTPSignatureKeyResolver):
    """The library's view of one key: signet's version id names it."""

    def __init__(self, alg, key):
        self.kid = f"r-{alg}:v1"
        self.key = key

    def resolve_public_key(self, key_id):
        assert key_id == self.kid
        return self.key if isinstance(self.key, bytes) else self.key.public_key()

    def resolve_private_key(self, key_id):
        assert key_id == self.kid
        return self.key


def prepared(body=BODY, url=URL):
    return requests.Request("POST", url, data=body, headers=dict(HEADERS)).prepare()


def sign_with_signet(client, profile, req):
    out = client.signer.SignHttpRequest(
        signer_pb2.SignHttpRequestRequest(
            profile=profile,
            method=req.method,
            url=req.url,
            body=req.body or b"",
            headers=[signer_pb2.HttpHeader(name=k, value=v) for k, v in req.headers.items()],
        )
    )
    return {h.name: h.value for h in out.headers}, out


def verify_with_signet(client, profile, req, body=None):
    return client.signer.VerifyHttpRequest(
        signer_pb2.VerifyHttpRequestRequest(
            profile=profile,
            method=req.method,
            url=req.url,
            body=req.body if body is None else body,
            headers=[signer_pb2.HttpHeader(name=k, value=v) for k, v in req.headers.items()],
        )
    )


CASES = [(a, s) for a in ALGS for s in SETS]


@pytest.mark.parametrize("alg,set_name", CASES)
def test_library_verifies_signet(rfc, alg, set_name):
    req = prepared()
    added, out = sign_with_signet(rfc, f"r-{alg}-{set_name}", req)
    assert set(added) <= {"Content-Digest", "Signature-Input", "Signature"}
    assert out.key_version_id == f"r-{alg}:v1"
    req.headers.update(added)
    verifier = HTTPMessageVerifier(signature_algorithm=ALGS[alg][1], key_resolver=Keys(alg, rfc.keys[alg]))
    has_digest = any("content-digest" in c for c in SETS[set_name])
    results = verifier.verify(
        req,
        max_age=datetime.timedelta(minutes=5),
        require_components=SETS[set_name],
        body=BODY if has_digest else None,
    )
    assert len(results) == 1
    # The base signet reported is the one the library rebuilt, line by line.
    rebuilt = "\n".join(f"{k}: {v}" for k, v in results[0].covered_components.items())
    assert out.string_to_sign == rebuilt
    assert results[0].label == "sig1"
    assert results[0].parameters["alg"] == ALGS[alg][1].algorithm_id
    # Tampering with what is covered breaks it for the library too.
    if has_digest:
        with pytest.raises(InvalidSignature):
            verifier.verify(req, max_age=datetime.timedelta(minutes=5), body=BODY + b" ")
    req.headers["Signature-Input"] = req.headers["Signature-Input"].replace(f"r-{alg}:v1", f"r-{alg}:v2")
    with pytest.raises(Exception):
        verifier.verify(req, max_age=datetime.timedelta(minutes=5))


@pytest.mark.parametrize("alg,set_name", CASES)
def test_signet_verifies_library(rfc, alg, set_name):
    req = prepared()
    signer = HTTPMessageSigner(signature_algorithm=ALGS[alg][1], key_resolver=Keys(alg, rfc.keys[alg]))
    has_digest = any("content-digest" in c for c in SETS[set_name])
    signer.sign(
        req,
        key_id=f"r-{alg}:v1",
        label="lib",
        covered_component_ids=SETS[set_name],
        include_alg=True,
        nonce=pysecrets.token_urlsafe(16),
        body=BODY if has_digest else None,
    )
    profile = f"r-{alg}-{set_name}"
    if has_digest:
        tampered = verify_with_signet(rfc, profile, req, body=BODY + b" ")
        assert tampered.reason == R.VERIFY_FAILURE_REASON_DIGEST_MISMATCH
    v = verify_with_signet(rfc, profile, req)
    assert v.valid, R.Name(v.reason)
    assert v.key_version_id == f"r-{alg}:v1"
    again = verify_with_signet(rfc, profile, req)
    assert again.reason == R.VERIFY_FAILURE_REASON_REPLAYED
    # Another URL: the signature does not cover it.
    other = prepared(url=URL.replace("id=p%20x", "id=p%20y"))
    other.headers.update({k: req.headers[k] for k in ("Signature-Input", "Signature") if k in req.headers})
    if "Content-Digest" in req.headers:
        other.headers["Content-Digest"] = req.headers["Content-Digest"]
    assert verify_with_signet(rfc, profile, other).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH


def test_library_alg_claim_that_is_not_the_keys_is_refused(rfc):
    """The algorithm comes from the key: a signature whose alg names another
    algorithm is refused before any signature check."""
    req = prepared()
    signer = HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=Keys("hmac", rfc.keys["hmac"]))
    signer.sign(req, key_id="r-hmac:v1", label="lib", covered_component_ids=SETS["basic"], include_alg=True)
    req.headers["Signature-Input"] = req.headers["Signature-Input"].replace('alg="hmac-sha256"', 'alg="ed25519"')
    v = verify_with_signet(rfc, "r-hmac-basic", req)
    assert v.reason == R.VERIFY_FAILURE_REASON_ALGORITHM_MISMATCH
