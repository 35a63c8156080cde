"""A Python gRPC client over mutual TLS and with a bearer token: what a
payment back-end in another language does. Certificates are made here
with `cryptography`; the server refuses a client without one, and the
token never shows in the log or the audit trail (conftest sweeps both)."""

from __future__ import annotations

import datetime
import hashlib

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SignetServer, assert_no_secret_in
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2, signer_pb2_grpc

TOKEN = "sgt_python-tls-test-token-0123456789abcdefghijklmn"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject_cn, issuer_key, issuer_cn, key, sans=(), ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("python test CA", ca_key, "python test CA", ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("localhost", ca_key, "python test CA", srv_key, sans=[x509.DNSName("localhost")])
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _cert("payments", ca_key, "python test CA", cli_key,
                sans=[x509.UniformResourceIdentifier("spiffe://python.test/payments")])
    for name, obj in [("ca.crt", ca), ("srv.crt", srv), ("srv.key", srv_key)]:
        (d / name).write_bytes(_pem(obj))
    config = d / "signet.toml"
    config.write_text(f"""
[server]
listen = "127.0.0.1:0"
[server.tls]
cert_file = "{d / 'srv.crt'}"
key_file = "{d / 'srv.key'}"
client_ca_file = "{d / 'ca.crt'}"
[[auth.identities]]
name = "spiffe://python.test/payments"
[[auth.identities.grants]]
operations = ["sign", "admin.create"]
keys = ["py-*"]
[[auth.tokens]]
identity = "spiffe://python.test/payments"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
""")
    logdir = tmp_path_factory.mktemp("tls-log")
    server = SignetServer(["--config", str(config)], logdir / "stderr.log")
    secrets_ = [TOKEN, _pem(cli_key).decode().splitlines()[1]]
    try:
        yield server, _pem(ca), _pem(cli), _pem(cli_key)
    finally:
        assert server.stop() == 0, server.stderr()[-4000:]
        # Neither the token nor the client's key in the log or the trail.
        assert_no_secret_in(server.stderr(), secrets_)
        assert_no_secret_in(server.audit(), secrets_)


def _stub(address, ca, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    ch = grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    return ch, signer_pb2_grpc.SignerStub(ch)


def test_mutual_tls_and_tokens_from_python(tls):
    server, ca, cert, key = tls
    addr = server.address
    ch, signer = _stub(addr, ca, cert, key)
    admin = __import__("signet.v1.key_admin_pb2_grpc", fromlist=["x"]).KeyAdminStub(ch)
    admin.CreateKey(key_admin_pb2.CreateKeyRequest(name="py-ec", algorithm=common_pb2.ALGORITHM_ECDSA_P256_SHA256))
    r = signer.Sign(signer_pb2.SignRequest(key="py-ec", message=b"from python over mTLS"))
    assert r.key_version_id == "py-ec:v1"
    # A key outside the grant: PERMISSION_DENIED.
    with pytest.raises(grpc.RpcError) as e:
        signer.Sign(signer_pb2.SignRequest(key="demo-rsa", message=b"x"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The same identity by token, on the same certificate-authenticated
    # channel; a wrong token is UNAUTHENTICATED even with a good certificate.
    r = signer.Sign(signer_pb2.SignRequest(key="py-ec", message=b"x"), metadata=[("authorization", "Bearer " + TOKEN)])
    assert r.key_version_id == "py-ec:v1"
    with pytest.raises(grpc.RpcError) as e:
        signer.Sign(signer_pb2.SignRequest(key="py-ec", message=b"x"), metadata=[("authorization", "Bearer sgt_wrong")])
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ch.close()
    # No client certificate: the handshake is refused, no call goes through.
    ch2, bare = _stub(addr, ca)
    with pytest.raises(grpc.RpcError) as e:
        bare.Sign(signer_pb2.SignRequest(key="py-ec", message=b"x"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    ch2.close()
    # And a plaintext client gets nothing either.
    plain = signer_pb2_grpc.SignerStub(grpc.insecure_channel(addr))
    with pytest.raises(grpc.RpcError):
        plain.Sign(signer_pb2.SignRequest(key="py-ec", message=b"x"), timeout=5)
    assert '"outcome":"refused"' in server.audit_with('"outcome":"refused"')
