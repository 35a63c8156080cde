"""A second implementation of docs/http-signing.md, written in
Python from the spec's text alone, to check signet's bytes against.

It shares no code with signet: the canonical JSON writer rides on Python's
own parser (numbers kept as written through parse_int/parse_float), and
the signatures come from `hmac` and `cryptography`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

FIELD_ORDER = ["signature", "timestamp", "nonce", "identity", "client_id", "merchant_id"]
DEFAULT_HEADERS = {"signature": "X-Signature", "timestamp": "X-Timestamp", "client_id": "X-Client-Id"}
UNIT = {"seconds": 1, "milliseconds": 1_000, "microseconds": 1_000_000, "nanoseconds": 1_000_000_000}


@dataclass
class Profile:
    """A profile's fields, with the spec's defaults."""

    name: str
    key: str
    algorithm: str = "HMAC_SHA256"
    client_id: str | None = None
    merchant_id: str | None = None
    identity: str | None = None
    timespec: str = "seconds"
    use_nonce: bool = False
    nonce_length: int = 32
    headers: dict = field(default_factory=lambda: dict(DEFAULT_HEADERS))
    payload_template: str = "{timestamp}{client_id}{request_method}{url}{payload}"
    signature_template: str = "{signature}"
    request_data_encoding: str = "json"
    json_spaces: bool = False
    json_sort_keys: bool = False
    json_ascii: bool = True
    signature_payload_encoding: str = "utf8"
    signature_encoding: str = "base64"
    ecdsa_format: str = "der"
    url_form: str = "as_given"
    tolerance_seconds: int = 300
    allowed_source_ips: list = field(default_factory=list)

    def toml(self) -> str:
        """The [[profiles]] table signet reads."""
        out = ["[[profiles]]"]
        for k, v in self.__dict__.items():
            if k == "algorithm" or v is None:
                continue
            if k == "headers":
                v = "{ " + ", ".join(f"{f} = {json.dumps(h)}" for f, h in v.items()) + " }"
            elif isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, (str, list)):
                v = json.dumps(v)
            out.append(f"{k} = {v}")
        return "\n".join(out) + "\n"


# -- canonical JSON ----------------------------------------------------------


class Number(str):
    """A JSON number, kept as its literal text."""


class BadJson(ValueError):
    pass


def _pairs(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise BadJson(f"duplicate key {k!r}")
        seen.add(k)
    return pairs  # a list of pairs: input order is kept


def _no_constant(name):
    raise BadJson(name)


class _Obj(list):
    """A JSON object: its members as (key, value) pairs, in input order."""


def parse_json(body: bytes):
    text = body.decode("utf-8")  # strict: invalid UTF-8 raises
    if text.startswith("\ufeff"):
        raise BadJson("BOM")
    return json.loads(
        text,
        parse_int=Number,
        parse_float=Number,
        parse_constant=_no_constant,
        object_pairs_hook=lambda pairs: _Obj(_pairs(pairs)),
    )


_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(s: str, ascii_only: bool) -> str:
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif cp < 0x20:
            out.append(f"\\u{cp:04x}")
        elif cp > 0x7F and ascii_only:
            if cp > 0xFFFF:
                v = cp - 0x10000
                out.append(f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04x}")
            else:
                out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical(body: bytes, spaces: bool, sort_keys: bool, ascii_only: bool) -> str:
    """The spec's `json` body encoding."""
    if body == b"":
        return ""
    item_sep, key_sep = (", ", ": ") if spaces else (",", ":")

    def walk(v) -> str:
        if isinstance(v, _Obj):
            members = sorted(v, key=lambda kv: kv[0]) if sort_keys else list(v)
            return "{" + item_sep.join(_quote(k, ascii_only) + key_sep + walk(x) for k, x in members) + "}"
        if isinstance(v, list):
            return "[" + item_sep.join(walk(x) for x in v) + "]"
        if isinstance(v, Number):
            return str(v)
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if isinstance(v, str):
            for ch in v:
                if 0xD800 <= ord(ch) <= 0xDFFF:
                    raise BadJson("lone surrogate")  # signet's documented choice
            return _quote(v, ascii_only)
        raise AssertionError(v)

    return walk(parse_json(body))


# -- the pipeline ----------------------------------------------------------


def render(template: str, values: dict) -> str:
    out, i = [], 0
    while i < len(template):
        if template.startswith("{{", i):
            out.append("{")
            i += 2
        elif template.startswith("}}", i):
            out.append("}")
            i += 2
        elif template[i] == "{":
            j = template.index("}", i)
            out.append(values[template[i + 1 : j]])
            i = j + 1
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


def url_form(url: str, form: str) -> str:
    if form == "as_given":
        return url
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", url)
    rest = (url[m.end() :] if m else url).split("#", 1)[0]
    path, has_query, query = rest.partition("?")
    path = path or "/"
    if form == "path_and_query" and has_query:
        return path + "?" + query
    return path


def payload(p: Profile, body: bytes) -> str:
    enc = p.request_data_encoding
    if enc == "raw":
        return body.decode("utf-8")
    if enc == "json":
        return canonical(body, p.json_spaces, p.json_sort_keys, p.json_ascii)
    if enc == "base64":
        return base64.b64encode(body).decode()
    return body.hex()


def placeholders(p: Profile, t: str, n: str, method: str, url: str) -> dict:
    """Step 6's values, but for {payload} (and {signature})."""
    return {
        "timestamp": t,
        "nonce": n,
        "identity": p.identity or "",
        "client_id": p.client_id or "",
        "merchant_id": p.merchant_id or "",
        "request_method": method.upper(),
        "url": url_form(url, p.url_form),
    }


def string_to_sign(p: Profile, t: str, n: str, method: str, url: str, body: bytes) -> str:
    return render(p.payload_template, {**placeholders(p, t, n, method, url), "payload": payload(p, body)})


def bytes_signed(p: Profile, s: str) -> bytes:
    raw = s.encode("utf-8")
    if p.signature_payload_encoding == "base64":
        return base64.b64encode(raw)
    if p.signature_payload_encoding == "hex":
        return raw.hex().encode()
    return raw


def encode_sig(p: Profile, sig: bytes) -> str:
    if p.signature_encoding == "base64":
        return base64.b64encode(sig).decode()
    if p.signature_encoding == "base64url":
        return base64.urlsafe_b64encode(sig).decode().rstrip("=")
    return sig.hex()


def decode_sig(p: Profile, e: str) -> bytes:
    if p.signature_encoding == "base64":
        return base64.b64decode(e, validate=True)
    if p.signature_encoding == "base64url":
        return base64.urlsafe_b64decode(e + "=" * (-len(e) % 4))
    return bytes.fromhex(e)


def _hash(alg: str):
    for name, h in (("SHA512", hashes.SHA512), ("SHA384", hashes.SHA384), ("SHA256", hashes.SHA256)):
        if alg.endswith(name):
            return h()
    raise AssertionError(alg)


def _hmac_hash(alg: str):
    return {"HMAC_SHA256": hashlib.sha256, "HMAC_SHA384": hashlib.sha384, "HMAC_SHA512": hashlib.sha512}[alg]


def raw_sign(p: Profile, key, data: bytes) -> bytes:
    """σ with `key`: an HMAC secret (bytes) or a cryptography private key."""
    alg = p.algorithm
    if alg.startswith("HMAC"):
        return hmac.new(key, data, _hmac_hash(alg)).digest()
    h = _hash(alg)
    if alg.startswith("RSA_PKCS1"):
        return key.sign(data, padding.PKCS1v15(), h)
    if alg.startswith("RSA_PSS"):
        return key.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    der = key.sign(data, ec.ECDSA(h))
    if p.ecdsa_format == "raw":
        r, s = decode_dss_signature(der)
        width = (key.curve.key_size + 7) // 8
        return r.to_bytes(width, "big") + s.to_bytes(width, "big")
    return der


def raw_verify(p: Profile, key, data: bytes, sig: bytes) -> bool:
    alg = p.algorithm
    if alg.startswith("HMAC"):
        return hmac.compare_digest(hmac.new(key, data, _hmac_hash(alg)).digest(), sig)
    pub = key.public_key()
    h = _hash(alg)
    try:
        if alg.startswith("RSA_PKCS1"):
            pub.verify(sig, data, padding.PKCS1v15(), h)
        elif alg.startswith("RSA_PSS"):
            pub.verify(sig, data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        else:
            if p.ecdsa_format == "raw":
                width = (pub.curve.key_size + 7) // 8
                if len(sig) != 2 * width:
                    return False
                sig = encode_dss_signature(int.from_bytes(sig[:width], "big"), int.from_bytes(sig[width:], "big"))
            pub.verify(sig, data, ec.ECDSA(h))
        return True
    except Exception:  # noqa: BLE001 - cryptography raises InvalidSignature
        return False


def now_t(p: Profile, offset_seconds: int = 0) -> str:
    return str(time.time_ns() * UNIT[p.timespec] // 1_000_000_000 + offset_seconds * UNIT[p.timespec])


def new_nonce(p: Profile) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(p.nonce_length))


def sign_request(p: Profile, key, method: str, url: str, body: bytes, t: str | None = None, n: str | None = None):
    """The spec's signing steps 1-10: (headers in order, S)."""
    t = t if t is not None else now_t(p)
    n = (n if n is not None else new_nonce(p)) if p.use_nonce else ""
    s = string_to_sign(p, t, n, method, url, body)
    e = encode_sig(p, raw_sign(p, key, bytes_signed(p, s)))
    values = {**placeholders(p, t, n, method, url), "payload": ""}
    headers = []
    for f in FIELD_ORDER:
        if f not in p.headers:
            continue
        if f == "signature":
            headers.append((p.headers[f], render(p.signature_template, {**values, "signature": e})))
        else:
            headers.append((p.headers[f], values[f]))
    return headers, s


def signature_from_header(p: Profile, value: str) -> str | None:
    """E out of a signature header value, by the template as an anchored
    pattern (verification step 2)."""
    pattern, i, t = [], 0, p.signature_template
    static = {"identity": p.identity, "client_id": p.client_id, "merchant_id": p.merchant_id}
    while i < len(t):
        if t.startswith("{{", i) or t.startswith("}}", i):
            pattern.append(re.escape(t[i]))
            i += 2
        elif t[i] == "{":
            j = t.index("}", i)
            name = t[i + 1 : j]
            if name == "signature":
                pattern.append(r"(?P<sig>[A-Za-z0-9+/=_-]+)")
            elif name == "timestamp":
                pattern.append(r"[0-9]+")
            elif name == "nonce":
                pattern.append(r"[A-Za-z0-9_.-]+")
            else:
                pattern.append(re.escape(static[name] or ""))
            i = j + 1
        else:
            pattern.append(re.escape(t[i]))
            i += 1
    m = re.fullmatch("".join(pattern), value.strip(" \t"))
    return m.group("sig") if m else None
