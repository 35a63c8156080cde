"""HTTP request signing and webhook verification by profile, checked by
the platforms' own libraries in both directions (Stripe, Standard
Webhooks, Slack), by GitHub's documented example, and by plain hmac for
Shopify and the Boxo-style default."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import pytest
import stripe
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook

from conftest import BOXO_SECRET, GITHUB_SECRET, SHOPIFY_SECRET, SLACK_SECRET, STRIPE_SECRET, SW_SECRET_B64
from signet.v1 import signer_pb2

R = signer_pb2.VerifyFailureReason
BODY = b'{"id": "evt_1", "object": "event", "amount": 1.50, "note": "caf\\u00e9 \xe2\x82\xac"}'


def sign(client, profile, body=BODY, url="https://merchant.example/hooks?x=1", method="POST", nonce=""):
    return client.signer.SignHttpRequest(
        signer_pb2.SignHttpRequestRequest(profile=profile, method=method, url=url, body=body, nonce=nonce)
    )


def verify(client, profile, headers, body=BODY, url="https://merchant.example/hooks?x=1", method="POST", ip=""):
    return client.signer.VerifyHttpRequest(
        signer_pb2.VerifyHttpRequestRequest(
            profile=profile,
            method=method,
            url=url,
            body=body,
            headers=[signer_pb2.HttpHeader(name=k, value=v) for k, v in headers.items()],
            source_ip=ip,
        )
    )


def headers_of(resp):
    return {h.name: h.value for h in resp.headers}


# -- Stripe ---------------------------------------------------------------


def test_stripe_library_verifies_signet(http_server):
    out = sign(http_server, "stripe")
    h = headers_of(out)
    assert list(h) == ["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(BODY.decode(), h["Stripe-Signature"], STRIPE_SECRET, tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY.decode() + " ", h["Stripe-Signature"], STRIPE_SECRET, tolerance=300)


def test_signet_verifies_stripe_library(http_server):
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET)
    v = verify(http_server, "stripe", {"Stripe-Signature": header})
    assert v.valid, R.Name(v.reason)
    assert v.key_version_id == "stripe-hook:v1"
    again = verify(http_server, "stripe", {"Stripe-Signature": header})
    assert not again.valid and again.reason == R.VERIFY_FAILURE_REASON_REPLAYED
    stale = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, timestamp=int(time.time()) - 600)
    v = verify(http_server, "stripe", {"Stripe-Signature": stale})
    assert v.reason == R.VERIFY_FAILURE_REASON_TIMESTAMP_OUT_OF_WINDOW
    forged = stripe.WebhookSignature.generate_signature_header(BODY.decode(), "whsec_other")
    assert verify(http_server, "stripe", {"stripe-signature": forged}).reason == R.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH


# -- Standard Webhooks ------------------------------------------------------


def test_standard_webhooks_library_verifies_signet(http_server):
    out = sign(http_server, "sw", nonce="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    h = headers_of(out)
    assert set(h) == {"webhook-signature", "webhook-timestamp", "webhook-id"}
    assert h["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    wh = Webhook("whsec_" + SW_SECRET_B64)
    assert wh.verify(BODY, h) == json.loads(BODY)
    generated = headers_of(sign(http_server, "sw"))
    assert generated["webhook-id"].startswith("msg_")
    wh.verify(BODY, generated)


def test_signet_verifies_standard_webhooks_library(http_server):
    wh = Webhook("whsec_" + SW_SECRET_B64)
    now = datetime.now(tz=timezone.utc)
    sig = wh.sign("msg_lib_1", now, BODY.decode())
    headers = {"webhook-id": "msg_lib_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": sig}
    v = verify(http_server, "sw", headers)
    assert v.valid, R.Name(v.reason)
    assert verify(http_server, "sw", headers).reason == R.VERIFY_FAILURE_REASON_REPLAYED
    del headers["webhook-id"]
    assert verify(http_server, "sw", headers).reason == R.VERIFY_FAILURE_REASON_MISSING_HEADER


# -- Slack ------------------------------------------------------------------


def test_slack_library_verifies_signet(http_server):
    h = headers_of(sign(http_server, "slack"))
    verifier = SignatureVerifier(SLACK_SECRET)
    assert verifier.is_valid(BODY, h["X-Slack-Request-Timestamp"], h["X-Slack-Signature"])
    assert not verifier.is_valid(BODY + b"x", h["X-Slack-Request-Timestamp"], h["X-Slack-Signature"])


def test_signet_verifies_slack_library(http_server):
    ts = str(int(time.time()))
    sig = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=ts, body=BODY)
    v = verify(http_server, "slack", {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
    assert v.valid, R.Name(v.reason)
    assert v.timestamp == ts


# -- GitHub and Shopify -------------------------------------------------------


def test_github_documented_example():
    # docs.github.com "Validating webhook deliveries": this secret and
    # payload give this signature.
    want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert "sha256=" + hmac.new(GITHUB_SECRET.encode(), b"Hello, World!", hashlib.sha256).hexdigest() == want


def test_github_matches_the_documented_example(http_server):
    out = sign(http_server, "github", body=b"Hello, World!")
    h = headers_of(out)
    assert h["X-Hub-Signature-256"] == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert h["X-GitHub-Delivery"]
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    headers = {"X-Hub-Signature-256": h["X-Hub-Signature-256"], "X-GitHub-Delivery": delivery}
    assert verify(http_server, "github", headers, body=b"Hello, World!").valid
    assert verify(http_server, "github", headers, body=b"Hello, World!").reason == R.VERIFY_FAILURE_REASON_REPLAYED


def test_shopify(http_server):
    h = headers_of(sign(http_server, "shopify"))
    want = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert h["X-Shopify-Hmac-Sha256"] == want
    theirs = {"X-Shopify-Hmac-Sha256": want, "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
    assert verify(http_server, "shopify", theirs).valid


# -- Boxo-style default: canonical JSON as Python writes it -----------------


@pytest.mark.parametrize(
    "body",
    [
        {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}},
        {"unicode": "caf\u00e9 \u20ac \U0001f600", "ctl": "tab\tnl\ncr\r\x01", "quote": '"\\/'},
        [],
        {"nested": {"k2": {"k1": [{"b": 1, "a": 2}]}}},
    ],
)
def test_boxo_canonical_json_matches_python(http_server, body):
    raw = json.dumps(body, indent=3).encode()  # whitespace the canonical form drops
    out = sign(http_server, "boxo", body=raw, url="/v1/payments", method="post")
    canon = json.dumps(body, separators=(", ", ": "), sort_keys=True, ensure_ascii=True)
    t = out.timestamp
    assert out.string_to_sign == f"{t}merchant-app-7POST/v1/payments{canon}"
    h = headers_of(out)
    want = base64.b64encode(hmac.new(BOXO_SECRET.encode(), out.string_to_sign.encode(), hashlib.sha256).digest()).decode()
    assert h == {"X-Signature": want, "X-Timestamp": t, "X-Client-Id": "merchant-app-7"}
    assert verify(http_server, "boxo", h, body=raw, url="/v1/payments", method="post").valid


def test_unknown_profile_is_not_found(http_server):
    import grpc

    with pytest.raises(grpc.RpcError) as e:
        sign(http_server, "nope")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_http_profiles(http_server):
    resp = http_server.signer.ListHttpProfiles(signer_pb2.ListHttpProfilesRequest())
    by_name = {p.name: dict(p.settings) for p in resp.profiles}
    assert sorted(by_name) == ["boxo", "github", "shopify", "slack", "stripe", "sw"]
    assert by_name["stripe"]["headers.signature"] == "Stripe-Signature"
    assert by_name["stripe"]["signature_template"] == "t={timestamp},v1={signature}"
    assert by_name["boxo"]["json_sort_keys"] == "true"
    assert by_name["sw"]["preset"] == "standard-webhooks"
    # Profiles carry no secret material.
    text = str(resp)
    for secret in ("whsec_", "It's a Secret", "shpss_", "boxo-shared-secret"):
        assert secret not in text
