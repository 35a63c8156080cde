"""signet's HTTP profiles against spec_ref.py, a second implementation of
docs/http-signing.md in Python: every option of the spec, both directions
(signet signs and the reference checks the bytes; the reference signs and
signet verifies), JSON bodies with unicode and number edge cases, and
every failure reason."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import spec_ref as ref
from conftest import _serve, remember_secret
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

R = signer_pb2.VerifyFailureReason
URL = "https://api.example:8443/v1/payments/pay_123?expand=customer&x=%2F#frag"

# Bodies every profile signs: JSON with unicode and number edge cases (so
# the raw, base64 and hex encodings get non-ASCII bytes too), and empty.
BODIES = [
    '{"amount": 1.50, "big": 123456789012345678901234567890, "exp": [1E400, -0, 0.5e-7, -12.0E+3],'
    ' "name": "Zo\u00eb \u20ac \U0001F600 \\u00e9\\ud83d\\ude00", "ctl": "a\\tb\\nc\\u0001\\u001f\\u007f \\/ \\" \\\\",'
    ' "nested": {"\u00e9": null, "e": true, "Z": false, "\U0001F600": [], "\uff5e": {}}}'.encode(),
    b"",
]

HMAC_SECRETS = {
    "HMAC_SHA256": b"spec-ref-hmac-256-secret-0123456789abcdef",
    "HMAC_SHA384": b"spec-ref-hmac-384-secret-0123456789abcdef-0123456789",
    "HMAC_SHA512": b"spec-ref-hmac-512-secret-0123456789abcdef-0123456789abcdef012345",
}


def P(name, **kw):
    kw.setdefault("client_id", "c-1")
    return ref.Profile(name=name, key=f"k-{name}", **kw)


PROFILES = [
    P("base"),
    P("ms", timespec="milliseconds"),
    P("us", timespec="microseconds"),
    P("ns", timespec="nanoseconds"),
    P(
        "nonce8",
        use_nonce=True,
        nonce_length=8,
        headers={"signature": "X-Sig", "timestamp": "X-Ts", "nonce": "X-Nonce"},
        payload_template="{timestamp}.{nonce}.{payload}",
    ),
    P(
        "nonce128",
        use_nonce=True,
        nonce_length=128,
        headers={"signature": "Signature"},
        payload_template="{nonce}:{timestamp}:{request_method}:{url}:{payload}",
        signature_template="ts={timestamp};n={nonce};sig={signature}",
    ),
    P(
        "ids",
        identity="payments-svc",
        merchant_id="m-77",
        headers={
            "signature": "X-Signature",
            "timestamp": "X-Timestamp",
            "identity": "X-Identity",
            "client_id": "X-Client-Id",
            "merchant_id": "X-Merchant-Id",
        },
        payload_template="{{v1}}|{identity}|{merchant_id}|{client_id}|{timestamp}|{request_method}|{url}|{payload}",
        signature_template="{{{signature}}}",
    ),
    P("raw", request_data_encoding="raw", payload_template="{timestamp}.{payload}",
      headers={"signature": "X-Signature", "timestamp": "X-Timestamp"}),
    P("b64body", request_data_encoding="base64"),
    P("hexbody", request_data_encoding="hex"),
    P("pretty", json_spaces=True, json_sort_keys=True),
    P("utf8json", json_ascii=False, json_sort_keys=True),
    P("spaces-only", json_spaces=True),
    P("spe-b64", signature_payload_encoding="base64", signature_encoding="hex"),
    P("spe-hex", signature_payload_encoding="hex", signature_encoding="base64url"),
    P("path", url_form="path"),
    P("pathq", url_form="path_and_query"),
    P("sha384", algorithm="HMAC_SHA384", signature_encoding="base64url"),
    P("sha512", algorithm="HMAC_SHA512", signature_encoding="hex"),
    P("rsa2", algorithm="RSA_PKCS1_2048_SHA256"),
    P("rsa-sha512", algorithm="RSA_PKCS1_4096_SHA512", signature_encoding="base64url"),
    P("pss", algorithm="RSA_PSS_2048_SHA256"),
    P("pss512", algorithm="RSA_PSS_4096_SHA512", signature_payload_encoding="hex"),
    P("p256-der", algorithm="ECDSA_P256_SHA256"),
    P("p256-raw", algorithm="ECDSA_P256_SHA256", ecdsa_format="raw", signature_encoding="base64url"),
    P("p384-raw", algorithm="ECDSA_P384_SHA384", ecdsa_format="raw", signature_encoding="hex"),
    P("p384-der", algorithm="ECDSA_P384_SHA384", url_form="path"),
    P("ips", tolerance_seconds=60, allowed_source_ips=["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]),
]
BY_NAME = {p.name: p for p in PROFILES}
DETERMINISTIC = ("HMAC", "RSA_PKCS1")


def _private_key(alg: str):
    if alg.startswith("HMAC"):
        return HMAC_SECRETS[alg]
    if alg.startswith("RSA"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(alg.split("_")[2]))
    return ec.generate_private_key(ec.SECP256R1() if "P256" in alg else ec.SECP384R1())


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """signet with every profile above; each profile's key imported from
    material the reference also holds."""
    confdir = tmp_path_factory.mktemp("spec-config")
    config = confdir / "signet.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:0"\nplaintext = true\n' + "\n".join(p.toml() for p in PROFILES))
    keys = {}
    gen = _serve(tmp_path_factory, "spec", ["--config", str(config)])
    client = next(gen)
    for p in PROFILES:
        key = _private_key(p.algorithm)
        if isinstance(key, bytes):
            material = key
            remember_secret(client, key)
        else:
            material = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        client.admin.ImportKey(
            key_admin_pb2.ImportKeyRequest(
                name=p.key, algorithm=common_pb2.Algorithm.Value("ALGORITHM_" + p.algorithm), material=material
            )
        )
        keys[p.name] = key
    client.keys = keys
    yield client
    try:
        next(gen)
    except StopIteration:
        pass


def sign(client, p, body, url=URL, method="post", nonce=""):
    return client.signer.SignHttpRequest(
        signer_pb2.SignHttpRequestRequest(profile=p.name, method=method, url=url, body=body, nonce=nonce)
    )


def verify(client, p, headers, body, url=URL, method="POST", ip=""):
    if p.allowed_source_ips and not ip:
        ip = "10.1.2.3"
    return client.signer.VerifyHttpRequest(
        signer_pb2.VerifyHttpRequestRequest(
            profile=p.name,
            method=method,
            url=url,
            body=body,
            headers=[signer_pb2.HttpHeader(name=k, value=v) for k, v in headers],
            source_ip=ip,
        )
    )


def fresh_body(body: bytes, i: int) -> bytes:
    """A variant of `body` (so replays do not collide across tests)."""
    if body == b"":
        return body
    return body[:-1] + f', "seq": {i}}}'.encode()


_seq = iter(range(10**9))


@pytest.mark.parametrize("name", [p.name for p in PROFILES])
@pytest.mark.parametrize("body_i", range(len(BODIES)))
def test_signet_signs_what_the_reference_computes(spec, name, body_i):
    p = BY_NAME[name]
    body = BODIES[body_i]
    out = sign(spec, p, body)
    # T: the current time in the profile's unit, as digits.
    assert re.fullmatch(r"[1-9][0-9]*", out.timestamp)
    assert abs(int(out.timestamp) - int(ref.now_t(p))) <= 5 * ref.UNIT[p.timespec]
    # N: nonce_length characters of [A-Za-z0-9], or none.
    if p.use_nonce:
        assert re.fullmatch(f"[A-Za-z0-9]{{{p.nonce_length}}}", out.nonce), out.nonce
    else:
        assert out.nonce == ""
    # S, byte for byte.
    s = ref.string_to_sign(p, out.timestamp, out.nonce, "post", URL, body)
    assert out.string_to_sign == s
    assert out.key_version_id == f"{p.key}:v1"
    # The headers: names and order from the spec; the signature checked by
    # the reference (and equal to its own where the algorithm is
    # deterministic).
    want, _ = ref.sign_request(p, spec.keys[name], "post", URL, body, t=out.timestamp, n=out.nonce)
    got = [(h.name, h.value) for h in out.headers]
    assert [n for n, _ in got] == [n for n, _ in want]
    assert got[1:] == want[1:]
    if p.algorithm.startswith(DETERMINISTIC):
        assert got[0] == want[0]
    e = ref.signature_from_header(p, got[0][1])
    assert e is not None, got[0][1]
    assert ref.raw_verify(p, spec.keys[name], ref.bytes_signed(p, s), ref.decode_sig(p, e))


@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_signet_verifies_what_the_reference_signs(spec, name):
    p = BY_NAME[name]
    for body in BODIES:
        body = fresh_body(body, next(_seq))
        headers, _ = ref.sign_request(p, spec.keys[name], "POST", URL, body)
        v = verify(spec, p, headers, body)
        assert v.valid, R.Name(v.reason)
        assert v.key_version_id == f"{p.key}:v1"
        # Replay: by nonce, or by the signature bytes.
        again = verify(spec, p, headers, body)
        assert not again.valid and again.reason == R.VERIFY_FAILURE_REASON_REPLAYED


@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_failure_reasons(spec, name):
    p = BY_NAME[name]
    key = spec.keys[name]
    body = fresh_body(BODIES[0], next(_seq))

    def signed(**kw):
        return ref.sign_request(p, key, "POST", URL, body, **kw)[0]

    # A header the profile needs (signature, timestamp, nonce) is missing,
    # or any mapped header is present twice. The static ones (identity,
    # client_id, merchant_id) are not needed: their values come from the
    # profile (docs/http-profiles.md, choices where the spec is silent).
    headers = signed()
    field_of = {h.lower(): f for f, h in p.headers.items()}
    for i in range(len(headers)):
        v = verify(spec, p, headers[:i] + headers[i + 1 :], body)
        if field_of[headers[i][0].lower()] in ("signature", "timestamp", "nonce"):
            assert v.reason == R.VERIFY_FAILURE_REASON_MISSING_HEADER, (headers[i], R.Name(v.reason))
        else:
            assert v.valid, (headers[i], R.Name(v.reason))
            body = fresh_body(BODIES[0], next(_seq))
            headers = signed()
    for i in range(len(headers)):
        v = verify(spec, p, headers + [(headers[i][0].upper(), headers[i][1])], body)
        assert v.reason == R.VERIFY_FAILURE_REASON_MALFORMED_HEADER, (headers[i], R.Name(v.reason))
    # A signature header that does not match the template.
    v = verify(spec, p, [(headers[0][0], "!" + headers[0][1])] + headers[1:], body)
    assert v.reason == R.VERIFY_FAILURE_REASON_MALFORMED_HEADER
    # Outside the window, either way.
    for offset in (-p.tolerance_seconds - 5, p.tolerance_seconds + 5):
        v = verify(spec, p, signed(t=ref.now_t(p, offset)), body)
        assert v.reason == R.VERIFY_FAILURE_REASON_TIMESTAMP_OUT_OF_WINDOW, R.Name(v.reason)
    # Tampered: another body, another method, another key.
    tampered = body.replace(b'"amount": 1.50', b'"amount": 1.51')
    assert verify(spec, p, headers, tampered).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    if "{request_method}" in p.payload_template:
        assert verify(spec, p, headers, body, method="PUT").reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    if "{url}" in p.payload_template:
        other = URL.replace("pay_123", "pay_124")
        assert verify(spec, p, headers, body, url=other).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    other_key = _private_key(p.algorithm) if not p.algorithm.startswith("HMAC") else b"another-secret-0123456789abcdef"
    forged = ref.sign_request(p, other_key, "POST", URL, body)[0]
    assert verify(spec, p, forged, body).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    # The genuine request still verifies: no failure above wrote to the
    # replay store.
    assert verify(spec, p, headers, body).valid
    # The body as it enters the payload: whitespace between JSON tokens.
    body = fresh_body(BODIES[0], next(_seq))
    headers = signed()
    v = verify(spec, p, headers, b"\n\t " + body[:1] + b"\n  " + body[1:] + b"\r\n")
    if p.request_data_encoding == "json":
        # Re-canonicalised: whitespace does not matter, a non-JSON body does.
        assert v.valid, R.Name(v.reason)
        assert verify(spec, p, signed(), b"{not json").reason == R.VERIFY_FAILURE_REASON_MALFORMED_BODY
    else:
        assert v.reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH


def test_source_addresses_fail_closed(spec):
    p = BY_NAME["ips"]
    for ip, ok in [
        ("10.255.0.1", True),
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("2001:db8:1::5", True),
        ("2001:db9::1", False),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped: the IPv4 address it carries
        ("::ffff:11.0.0.1", False),
        (" 10.0.0.1 ", True),
        ("not-an-ip", False),
        ("", False),
    ]:
        body = fresh_body(BODIES[0], next(_seq))
        headers, _ = ref.sign_request(p, spec.keys["ips"], "POST", URL, body)
        v = spec.signer.VerifyHttpRequest(
            signer_pb2.VerifyHttpRequestRequest(
                profile="ips",
                method="POST",
                url=URL,
                body=body,
                headers=[signer_pb2.HttpHeader(name=k, value=v) for k, v in headers],
                source_ip=ip,
            )
        )
        if ok:
            assert v.valid, (ip, R.Name(v.reason))
        else:
            assert v.reason == R.VERIFY_FAILURE_REASON_SOURCE_IP_NOT_ALLOWED, (ip, R.Name(v.reason))


# -- JSON bodies: the canonical form, edge by edge -------------------------

JSON_EDGES = [
    b"0",
    b"-0",
    b"-0.0e-0",
    b"1E+2",
    b"[1e400, -1e-400, 100000000000000000000000000001]",
    b'"\\u0000\\u001F\\u007f\\u0080\\u00ff\\u07ff\\u0800\\uFFFF"',
    b'"\\uD834\\uDD1E \xf0\x9d\x84\x9e"',
    b'"\xe2\x80\xa8\xe2\x80\xa9 \xef\xbb\xbf"',
    b'"\\/\\"\\\\\\b\\f\\n\\r\\t"',
    b'{"b": 1, "a": 2, "B": 3, "\\u00e9": 4, "e\\u0301": 5, "\\ud83d\\ude00": 6, "\\uff5e": 7, "": 8}',
    b'[{"z": {"y": {"x": [true, false, null]}}}, [], {}, [[]], ""]',
    b' \t\r\n{ "a" : [ 1 , 2 ] } \n',
]

JSON_BAD = [
    b'{"a": 1, "a": 2}',
    b'{"a": 1, "\\u0061": 2}',
    b"[1,]",
    b"[01]",
    b"[NaN]",
    b"[Infinity]",
    b"[1] [2]",
    b"\xef\xbb\xbf{}",
    b'"\xff"',
    b"'single'",
    b'{"a" 1}',
    b'"tab\there"',
]


@pytest.mark.parametrize("style", ["base", "pretty", "utf8json", "spaces-only"])
def test_json_edges_canonicalise_as_the_reference_does(spec, style):
    p = BY_NAME[style]
    for body in JSON_EDGES:
        out = sign(spec, p, body)
        want = ref.string_to_sign(p, out.timestamp, out.nonce, "POST", URL, body)
        assert out.string_to_sign == want, body
        # Fixed point: the canonical payload, signed again, is unchanged.
        canon = ref.payload(p, body).encode()
        assert ref.payload(p, canon) == canon.decode()
        again = sign(spec, p, canon)
        assert again.string_to_sign == ref.string_to_sign(p, again.timestamp, "", "POST", URL, canon)


@pytest.mark.parametrize("body", JSON_BAD)
def test_malformed_json_is_refused_both_ways(spec, body):
    p = BY_NAME["base"]
    with pytest.raises(ValueError):
        ref.payload(p, body)  # the reference refuses it too
    with pytest.raises(Exception) as e:
        sign(spec, p, body)
    assert e.value.code().name == "INVALID_ARGUMENT"
    headers, _ = ref.sign_request(p, spec.keys["base"], "POST", URL, b"{}")
    assert verify(spec, p, headers, body).reason == R.VERIFY_FAILURE_REASON_MALFORMED_BODY


def test_caller_nonces_and_their_alphabet(spec):
    p = BY_NAME["nonce128"]
    out = sign(spec, p, b"{}", nonce="evt_01HZX.9-ab")
    assert out.nonce == "evt_01HZX.9-ab"
    assert out.string_to_sign == ref.string_to_sign(p, out.timestamp, "evt_01HZX.9-ab", "POST", URL, b"{}")
    for bad in ["has space", "x" * 129, "é"]:
        with pytest.raises(Exception) as e:
            sign(spec, p, b"{}", nonce=bad)
        assert e.value.code().name == "INVALID_ARGUMENT"
    with pytest.raises(Exception) as e:
        sign(spec, BY_NAME["base"], b"{}", nonce="abc")
    assert e.value.code().name == "INVALID_ARGUMENT"


def test_url_forms_match_the_reference(spec):
    for name in ["path", "pathq"]:
        p = BY_NAME[name]
        for url in [
            "https://h.example/a/b?c=d#e",
            "https://h.example?c=d",
            "https://h.example",
            "/only/path?q=1&r=%20",
            "/",
            "https://user@h.example:8443/p%2Fq;x?y#z",
        ]:
            out = sign(spec, p, b"{}", url=url)
            assert out.string_to_sign == ref.string_to_sign(p, out.timestamp, "", "POST", url, b"{}"), url
