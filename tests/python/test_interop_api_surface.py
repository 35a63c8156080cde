"""Interop: the API surface: bad input (unknown keys and versions, limits
and oversize messages, names, algorithms), the demo keys, listing, request
ids, health and reflection. Run with tests/python/run.sh."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from interop_helpers import (
    ALGS,
    MAX_MESSAGE_BYTES,
    MSG,
    Alg,
    Code,
    all_listed_keys,
    crypto_verify,
    get_pem,
    rpc_error,
    sign,
    verify,
)
from signet.v1 import key_admin_pb2, signer_pb2


# --------------------------------------------------------------------------
# Bad input.


def test_unknown_key_is_not_found(server):
    k = "no-such-key"
    rpc_error(Code.NOT_FOUND, sign, server, k, MSG)
    rpc_error(Code.NOT_FOUND, verify, server, k, b"\x00" * 64, MSG)
    rpc_error(Code.NOT_FOUND, server.signer.GetPublicKey, signer_pb2.GetPublicKeyRequest(key=k))
    rpc_error(Code.NOT_FOUND, server.signer.GetJwks, signer_pb2.GetJwksRequest(key=k))
    rpc_error(Code.NOT_FOUND, server.admin.GetKey, key_admin_pb2.GetKeyRequest(name=k))
    rpc_error(Code.NOT_FOUND, server.admin.RotateKey, key_admin_pb2.RotateKeyRequest(name=k))
    rpc_error(Code.NOT_FOUND, server.admin.DisableKeyVersion, key_admin_pb2.DisableKeyVersionRequest(name=k, version=1))
    rpc_error(
        Code.NOT_FOUND,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=k, algorithm=Alg.ALGORITHM_HMAC_SHA256, material=b"\x01" * 32, as_new_version=True),
    )


def test_unknown_version_is_not_found(server):
    rpc_error(Code.NOT_FOUND, sign, server, "demo-ecdsa", MSG, version=99)
    rpc_error(Code.NOT_FOUND, verify, server, "demo-ecdsa", b"\x00" * 64, MSG, version=99)
    rpc_error(Code.NOT_FOUND, server.signer.GetPublicKey, signer_pb2.GetPublicKeyRequest(key="demo-ecdsa", version=99))


def test_oversize_message_is_invalid_argument(server):
    at_limit = b"\xab" * MAX_MESSAGE_BYTES
    resp = sign(server, "demo-ed25519", at_limit)
    _, pub = get_pem(server, "demo-ed25519")
    pub.verify(resp.signature, at_limit)
    assert verify(server, "demo-ed25519", resp.signature, at_limit).valid
    over = at_limit + b"\xab"
    for key in ("demo-ed25519", "demo-ecdsa", "demo-rsa", "demo-hmac"):
        rpc_error(Code.INVALID_ARGUMENT, sign, server, key, over)
        rpc_error(Code.INVALID_ARGUMENT, verify, server, key, resp.signature, over)
    # Far larger still: refused, and the server lives on.
    try:
        sign(server, "demo-ed25519", b"\x00" * (6 * MAX_MESSAGE_BYTES))
        raise AssertionError("a 6 MiB message was signed")
    except grpc.RpcError as err:
        # Past the transport limit (room for the largest batch, 4 MiB, and
        # its framing) tonic refuses it before any handler;
        # signet answers INVALID_ARGUMENT with its own text and a request id.
        assert err.code() == Code.INVALID_ARGUMENT, err.code()
        assert "too large" in (err.details() or "")
        assert "decoded message length" not in (err.details() or "")
        assert any(k == "x-request-id" for k, _ in err.trailing_metadata() or ())
    assert sign(server, "demo-ed25519", MSG).version == 1


def test_sign_without_input_is_invalid_argument(server):
    # Neither message nor digest set: an empty message is a valid input in
    # proto3 only when set explicitly; an unset oneof is malformed.
    rpc_error(Code.INVALID_ARGUMENT, server.signer.Sign, signer_pb2.SignRequest(key="demo-ecdsa"))
    rpc_error(Code.INVALID_ARGUMENT, server.signer.Verify, signer_pb2.VerifyRequest(key="demo-ecdsa", signature=b"\x00"))


@pytest.mark.parametrize("bad", ["Bad Name", "", "a" * 65, "-lead", ".lead", "UPPER", "spa ce", "sla/sh", "uni\u00e9", "colon:v1"])
def test_invalid_names_are_invalid_argument(server, bad):
    rpc_error(Code.INVALID_ARGUMENT, server.admin.CreateKey, key_admin_pb2.CreateKeyRequest(name=bad, algorithm=Alg.ALGORITHM_ED25519))
    rpc_error(
        Code.INVALID_ARGUMENT,
        server.admin.ImportKey,
        key_admin_pb2.ImportKeyRequest(name=bad, algorithm=Alg.ALGORITHM_HMAC_SHA256, material=b"\x02" * 32),
    )


@pytest.mark.parametrize("good", ["a" * 64, "0", "a.b_c-d", "9lives"])
def test_valid_names_are_accepted(server, good):
    key = server.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=good, algorithm=Alg.ALGORITHM_ED25519)).key
    assert key.name == good
    assert sign(server, good, MSG).key_version_id == f"{good}:v1"


def test_unspecified_algorithm_is_invalid_argument(server):
    rpc_error(Code.INVALID_ARGUMENT, server.admin.CreateKey, key_admin_pb2.CreateKeyRequest(name="no-alg"))
    rpc_error(Code.INVALID_ARGUMENT, server.admin.CreateKey, key_admin_pb2.CreateKeyRequest(name="bad-alg", algorithm=999))


# --------------------------------------------------------------------------
# Demo keys, listing, metadata.


def test_demo_keys(server):
    expected = {
        "demo-hmac": Alg.ALGORITHM_HMAC_SHA256,
        "demo-rsa": Alg.ALGORITHM_RSA_PKCS1_2048_SHA256,
        "demo-ecdsa": Alg.ALGORITHM_ECDSA_P256_SHA256,
        "demo-ed25519": Alg.ALGORITHM_ED25519,
    }
    for name, alg in expected.items():
        key = server.admin.GetKey(key_admin_pb2.GetKeyRequest(name=name)).key
        assert key.algorithm == alg and key.active_version >= 1
        resp = sign(server, name, MSG)
        assert verify(server, name, resp.signature, MSG).valid
        if alg != Alg.ALGORITHM_HMAC_SHA256:
            crypto_verify(next(a for a in ALGS if a.value == alg), get_pem(server, name)[1], resp.signature, MSG)


def test_list_keys_pages(server, keys):
    full, _ = all_listed_keys(server, page_size=1000)
    names = [k.name for k in full]
    assert names == sorted(names), "ListKeys is in name order"
    assert len(set(names)) == len(names)
    for info in ALGS:
        assert info.key_name in names
    for demo in ("demo-hmac", "demo-rsa", "demo-ecdsa", "demo-ed25519"):
        assert demo in names
    paged, _ = all_listed_keys(server, page_size=3)
    assert [k.name for k in paged] == names
    first = server.admin.ListKeys(key_admin_pb2.ListKeysRequest(page_size=3))
    assert len(first.keys) == 3 and first.next_page_token
    rpc_error(Code.INVALID_ARGUMENT, server.admin.ListKeys, key_admin_pb2.ListKeysRequest(page_token="not-a-token!"))
    rpc_error(Code.INVALID_ARGUMENT, server.admin.ListKeys, key_admin_pb2.ListKeysRequest(page_size=1001))


def test_request_id_metadata(server):
    _, call = server.signer.Sign.with_call(signer_pb2.SignRequest(key="demo-ecdsa", message=MSG))
    md = dict(call.initial_metadata()) | dict(call.trailing_metadata())
    assert md.get("x-request-id"), f"no x-request-id in {md}"
    err = rpc_error(Code.NOT_FOUND, sign, server, "no-such-key", MSG)
    md = dict(err.initial_metadata() or ()) | dict(err.trailing_metadata() or ())
    assert md.get("x-request-id"), f"no x-request-id on an error: {md}"


def test_http_signing_unknown_profile(server):
    # The demo configuration has one profile, stripe: any other name is
    # NOT_FOUND.
    for call, req in (
        (server.signer.SignHttpRequest, signer_pb2.SignHttpRequestRequest(profile="no-such-profile", method="POST", url="https://example.test/")),
        (server.signer.VerifyHttpRequest, signer_pb2.VerifyHttpRequestRequest(profile="no-such-profile", method="POST", url="https://example.test/")),
    ):
        with pytest.raises(grpc.RpcError) as excinfo:
            call(req)
        assert excinfo.value.code() == Code.NOT_FOUND, excinfo.value.code()


def test_the_demo_configuration_has_a_working_stripe_profile(server):
    # The README's `signet http sign -p stripe` runs against the demo
    # server: its stripe profile signs with demo-hmac (Stripe's library
    # itself is checked against known secrets in test_http.py).
    url = "https://merchant.example/hooks"
    body = b'{"id":"evt_demo","type":"payment_intent.succeeded"}'
    out = server.signer.SignHttpRequest(
        signer_pb2.SignHttpRequestRequest(profile="stripe", method="POST", url=url, body=body))
    assert out.key_version_id == "demo-hmac:v1"
    assert out.string_to_sign == f"{out.timestamp}.{body.decode()}"
    (header,) = [h for h in out.headers if h.name == "Stripe-Signature"]
    assert re.fullmatch(rf"t={out.timestamp},v1=[0-9a-f]{{64}}", header.value), header.value

    def verify(b):
        return server.signer.VerifyHttpRequest(signer_pb2.VerifyHttpRequestRequest(
            profile="stripe", method="POST", url=url, body=b, headers=[header]))

    assert verify(body + b" ").reason == signer_pb2.VERIFY_FAILURE_REASON_SIGNATURE_MISMATCH
    v = verify(body)
    assert v.valid and v.key_version_id == "demo-hmac:v1"
    assert verify(body).reason == signer_pb2.VERIFY_FAILURE_REASON_REPLAYED


# --------------------------------------------------------------------------
# Health and reflection.


def test_health(server):
    for service in ("", "signet.v1.Signer", "signet.v1.KeyAdmin", "signet.v1.CipherService"):
        resp = server.health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, service
    rpc_error(Code.NOT_FOUND, server.health.Check, health_pb2.HealthCheckRequest(service="no.such.Service"))


def rpc_table() -> dict[str, set[str]]:
    """The methods of each service, as src/rpcs.rs declares them."""
    import re

    text = (Path(__file__).resolve().parents[2] / "src" / "rpcs.rs").read_text()
    rows = re.findall(r'^\s*[A-Z_]+ = "([\w.]+)" / "(\w+)", \w+, \w+;$', text, re.M)
    table: dict[str, set[str]] = {}
    for service, method in rows:
        table.setdefault(service, set()).add(method)
    assert table, "no rows found in src/rpcs.rs"
    return table


def test_reflection_lists_services(server):
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    responses = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    assert len(responses) == 1
    listed = {s.name for s in responses[0].list_services_response.service}
    for svc in ("signet.v1.Signer", "signet.v1.KeyAdmin", "signet.v1.CipherService", "grpc.health.v1.Health"):
        assert svc in listed, f"{svc} not in {sorted(listed)}"

    db = ProtoReflectionDescriptorDatabase(server.channel)
    assert {"signet.v1.Signer", "signet.v1.KeyAdmin", "signet.v1.CipherService"} <= set(db.get_services())
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(db)
    table = rpc_table()
    assert set(table) == {"signet.v1.Signer", "signet.v1.KeyAdmin", "signet.v1.CipherService"}
    for name, methods in table.items():
        served = pool.FindServiceByName(name)
        assert {m.name for m in served.methods} == methods, name
        # One request and one response message of its own per RPC (buf.yaml).
        for m in served.methods:
            assert (m.input_type.name, m.output_type.name) == (f"{m.name}Request", f"{m.name}Response"), m.full_name
    sign_req = pool.FindMessageTypeByName("signet.v1.SignRequest")
    assert sign_req.fields_by_name["digest"].number == signer_pb2.SignRequest.DESCRIPTOR.fields_by_name["digest"].number
