#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/
(docs/fuzzing.md): small, real inputs of each parser, made here.

    python3 scripts/fuzz-seeds.py        # rewrites fuzz/corpus/*/seed-*

Keys are generated afresh on every run: public keys, and throw-away
private keys (named throwaway-private-*) that sign nothing and guard
nothing. The webhook seeds carry real signatures, computed here with
Python's hmac from docs/http-signing.md, by the fixture key of
src/fuzz_entry/webhook.rs. Needs Python's cryptography package (in
tests/python/requirements.txt). Files that do not start with seed- (the
minimized finds of a long run) are left alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

# src/fuzz_entry/webhook.rs: the fixture key, the instant, the nonce.
SECRET = b"fuzz-webhook-secret-0123456789ab"
NOW = 1_800_000_000
# Algorithm::ALL's order (src/keys/algorithm.rs): the import selector byte.
ALG = {
    "HS256": 0, "HS384": 1, "HS512": 2, "RS2048": 3, "RS3072": 4, "RS4096": 5,
    "PS2048": 7, "ES256": 11, "ES384": 12, "Ed25519": 13,
}
WHSEC = 0x10  # selector bit: decode the HMAC material as a whsec_ secret


def write(target: str, name: str, data: bytes | str) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data.encode() if isinstance(data, str) else data)


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def templates() -> None:
    for i, t in enumerate([
        "{timestamp}{client_id}{request_method}{url}{payload}", "{signature}",
        "{timestamp}.{payload}", "t={timestamp},v1={signature}",
        "{nonce}.{timestamp}.{payload}", "v1,{signature}", "{payload}",
        "sha256={signature}", "v0:{timestamp}:{payload}", "v0={signature}",
        "{{literal}} {identity}/{merchant_id} }}{{", "", "{timestamp", "a}b", "{nope}",
        "{request_method} {url}\n{payload}é",
    ]):
        write("template", f"{i:02}", t)


def json_bodies() -> None:
    for i, body in enumerate([
        '{"id": "evt_1", "amount": 1.50, "note": "caf\\u00e9"}',
        '{"b":[1.0,1e3,-0,2E-7],"a":{"z":true,"y":null}}',
        '["q\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u0001 \\u001F é € 😀 \\ud83d\\ude00"]',
        '{"😀":1,"～":2,"a":3,"B":4,"":[{}, [], ""]}',
        ' \t\r\n[-0.0e+10, 123456789012345678901234567890, 0.5E-3] ',
        "[" * 40 + "]" * 40,
        '{"type":"payment.succeeded","data":{"object":{"id":"pi_1","amount":2000,'
        '"currency":"usd","metadata":{}}},"livemode":false}',
        '{"a":1,"a":2}', '[1,]', '"\\ud800"', "[01]", '{"a" 1}', "nul",
    ]):
        write("canonical_json", f"{i:02}", body)


def keys() -> None:
    pem = ser.Encoding.PEM
    der = ser.Encoding.DER
    pkcs8, spki, pkcs1 = ser.PrivateFormat.PKCS8, ser.PublicFormat.SubjectPublicKeyInfo, ser.PublicFormat.PKCS1
    none = ser.NoEncryption()

    def seed(name: str, alg: int, material: bytes) -> None:
        write("import", name, bytes([alg]) + material)

    secret = b"throwaway-hmac-secret-0123456789"
    seed("throwaway-hmac-raw", ALG["HS256"], secret)
    seed("throwaway-hmac-oct-jwk", ALG["HS384"], json.dumps(
        {"kty": "oct", "k": b64u(secret), "alg": "HS384", "use": "sig"}).encode())
    seed("throwaway-hmac-whsec", ALG["HS256"] | WHSEC, b"whsec_" + base64.b64encode(secret) + b"\n")
    seed("throwaway-hmac-whsec-bad", ALG["HS512"] | WHSEC, b"whsec_%%%")

    r = rsa.generate_private_key(65537, 2048)
    seed("throwaway-private-rsa2048-pkcs8.pem", ALG["RS2048"], r.private_bytes(pem, pkcs8, none))
    seed("throwaway-private-rsa2048-pkcs8.der", ALG["PS2048"], r.private_bytes(der, pkcs8, none))
    seed("throwaway-private-rsa2048-pkcs1.pem", ALG["RS2048"],
         r.private_bytes(pem, ser.PrivateFormat.TraditionalOpenSSL, none))
    pub = r.public_key()
    seed("public-rsa2048-spki.pem", ALG["RS2048"], pub.public_bytes(pem, spki))
    seed("public-rsa2048-pkcs1.pem", ALG["PS2048"], pub.public_bytes(pem, pkcs1))
    n = pub.public_numbers()
    seed("public-rsa2048.jwk", ALG["RS2048"], json.dumps({
        "kty": "RSA", "n": b64u(n.n.to_bytes(256, "big")), "e": b64u(n.e.to_bytes(3, "big")),
        "alg": "RS256", "use": "sig"}).encode())
    seed("public-rsa3072-spki.der", ALG["RS3072"],
         rsa.generate_private_key(65537, 3072).public_key().public_bytes(der, spki))
    seed("public-rsa4096-spki.der", ALG["RS4096"],
         rsa.generate_private_key(65537, 4096).public_key().public_bytes(der, spki))

    for curve, alg, size, crv in [(ec.SECP256R1(), "ES256", 32, "P-256"), (ec.SECP384R1(), "ES384", 48, "P-384")]:
        k = ec.generate_private_key(curve)
        tag = crv.lower().replace("-", "")
        seed(f"throwaway-private-{tag}-pkcs8.pem", ALG[alg], k.private_bytes(pem, pkcs8, none))
        seed(f"throwaway-private-{tag}-pkcs8.der", ALG[alg], k.private_bytes(der, pkcs8, none))
        seed(f"throwaway-private-{tag}-sec1.der", ALG[alg],
             k.private_bytes(der, ser.PrivateFormat.TraditionalOpenSSL, none))
        p = k.public_key()
        seed(f"public-{tag}-spki.der", ALG[alg], p.public_bytes(der, spki))
        nums = p.public_numbers()
        seed(f"public-{tag}.jwk", ALG[alg], json.dumps({
            "kty": "EC", "crv": crv, "x": b64u(nums.x.to_bytes(size, "big")),
            "y": b64u(nums.y.to_bytes(size, "big"))}).encode())

    e = ed25519.Ed25519PrivateKey.generate()
    seed("throwaway-private-ed25519-pkcs8.pem", ALG["Ed25519"], e.private_bytes(pem, pkcs8, none))
    seed("public-ed25519-spki.pem", ALG["Ed25519"], e.public_key().public_bytes(pem, spki))
    raw = e.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    seed("public-ed25519.jwk", ALG["Ed25519"], json.dumps(
        {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw), "alg": "EdDSA"}).encode())
    seed("encrypted-pem-label", ALG["ES256"], b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n")


def configs() -> None:
    for f in sorted((ROOT / "examples").glob("*.toml")):
        write("config", f.stem + ".toml", f.read_text())
    demo = re.search(r'const DEMO: &str = r#"(.*?)"#;', (ROOT / "src/config/mod.rs").read_text(), re.S)
    write("config", "demo.toml", demo.group(1))
    write("config", "tokens-file.toml", '[[tokens]]\nidentity = "ci"\nsha256 = "' + "ab" * 32
          + '"\nexpires = "2030-01-01T00:00:00Z"\n')
    write("config", "profiles.toml", """[server]
plaintext = true

[[profiles]]
name = "hooks.in"
preset = "standard-webhooks"
verify_key = "sw-secret"
tolerance_seconds = 60
allowed_source_ips = ["10.0.0.0/8", "2001:db8::/32"]

[[profiles]]
name = "custom"
key = "k"
use_nonce = true
headers = { signature = "X-Sig", timestamp = "X-Ts", nonce = "X-Nonce" }
signature_template = "ts={timestamp};n={nonce};s={signature}"
payload_template = "{nonce}|{timestamp}|{request_method} {url}|{payload}"
request_data_encoding = "json"
json_sort_keys = true
signature_encoding = "base64url"
url_form = "path_and_query"
""")


def mac(data: str) -> bytes:
    return hmac.new(SECRET, data.encode(), hashlib.sha256).digest()


def webhooks() -> None:
    raw = '{"type":"payment.succeeded","id":"evt_1"}'
    t = str(NOW)
    nonce = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    hexsig = lambda s: mac(s).hex()  # noqa: E731
    b64sig = lambda s: base64.b64encode(mac(s)).decode()  # noqa: E731
    boxo_s = f"{t}cli-9POST/v1/pay?x=1{raw}"  # canonical JSON of raw is raw
    cases = {
        "boxo": (0, f"X-Signature: {b64sig(boxo_s)}\nX-Timestamp: {t}\nX-Client-Id: cli-9"),
        "stripe": (1, f"Stripe-Signature: t={t},v1={hexsig(f'{t}.{raw}')},v0=ignored,v1={'0' * 64}"),
        "standard-webhooks": (2, f"webhook-id: {nonce}\nwebhook-timestamp: {t}\n"
                                 f"webhook-signature: v2,x v1,{b64sig(f'{nonce}.{t}.{raw}')}"),
        "github": (3, f"X-Hub-Signature-256: sha256={hexsig(raw)}\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab"),
        "slack": (4, f"X-Slack-Signature: v0={hexsig(f'v0:{t}:{raw}')}\nX-Slack-Request-Timestamp: {t}"),
        "shopify": (5, f"X-Shopify-Hmac-Sha256: {b64sig(raw)}\nX-Shopify-Webhook-Id: b54557e4"),
    }
    for name, (slot, headers) in cases.items():
        write("webhook_headers", name, f"{slot}POST /v1/pay?x=1\n{headers}\n\n{raw}")
    # Custom templates (slots 6 and 7), signed: hex, raw body, seconds.
    sig_t, pay_t = "ts={timestamp};n={nonce};s={signature}", "{nonce}|{timestamp}|{request_method} {url}|{payload}"
    n = "fuzz-nonce-0123456789"
    s = f"{n}|{t}|POST /hook|{raw}"
    write("webhook_headers", "custom-hex", f"6{sig_t}\n{pay_t}\nPOST /hook\nX-Signature: ts={t};n={n};s={hexsig(s)}\n"
          f"X-Timestamp: {t}\nX-Nonce: {n}\n\n{raw}")
    ms = str(NOW * 1000)
    s = f"{ms}id-1m-1cli-9{raw}"
    write("webhook_headers", "custom-json", f"7{{identity}}:{{signature}}\n{{timestamp}}{{identity}}{{merchant_id}}"
          f"{{client_id}}{{payload}}\nput https://x.example/a?b#c\nX-Signature: id-1:{b64u(mac(s))}\n"
          f"X-Timestamp: {ms}\nX-Nonce: n1\n\n{raw}")
    write("webhook_headers", "malformed", "1GET /\nStripe-Signature: t=1,v1=zz,t=2\n\n")
    write("webhook_headers", "duplicate", "3POST /\nX-Hub-Signature-256: sha256=00\nx-hub-signature-256: sha256=01\n\n{}")


def dictionaries() -> None:
    (ROOT / "fuzz" / "dict").mkdir(exist_ok=True)
    words = ['"{"', '"}"', '"["', '"]"', '":"', '","', '"true"', '"false"', '"null"', '"\\\\u"',
             '"\\\\ud83d\\\\ude00"', '"\\\\""', '"-0.5e+1"', '"\\\\n"']
    (ROOT / "fuzz/dict/json.dict").write_text("# JSON tokens (libFuzzer -dict)\n" + "\n".join(words) + "\n")
    keys = set()
    for f in (ROOT / "examples").glob("*.toml"):
        keys.update(re.findall(r"^#?\s*([a-z_]+)\s*=", f.read_text(), re.M))
        keys.update(re.findall(r"^#?\s*\[\[?([a-z_.]+)\]\]?", f.read_text(), re.M))
    toml = sorted(f'"{k}"' for k in keys) + ['"[["', '"]]"', '" = "', '"\\"\\"\\""', "\"'''\"", '"30s"', '"1h 30m"']
    (ROOT / "fuzz/dict/config.dict").write_text("# TOML tokens and signet's keys (libFuzzer -dict)\n" + "\n".join(toml) + "\n")


if __name__ == "__main__":
    for d in CORPUS.glob("*/seed-*"):
        d.unlink()
    templates()
    json_bodies()
    keys()
    configs()
    webhooks()
    dictionaries()
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    print(f"fuzz-seeds: {sum(1 for _ in CORPUS.rglob('seed-*'))} seeds, {total} bytes")
