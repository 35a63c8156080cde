"""`signet dev-certs` and the CLI's transport messages, from outside:
the certificates are checked with OpenSSL, the server they configure is
called by Python's gRPC (its own TLS stack) and by `openssl s_client`, and
every transport mistake a newcomer makes gets a message that names it and
its fix (docs/security.md, "TLS in one command")."""

from __future__ import annotations

import datetime
import os
import re
import stat
import subprocess

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SignetServer, signet_bin
from signet.v1 import key_admin_pb2, key_admin_pb2_grpc

FILES = ["ca.crt", "server.crt", "server.key", "client.crt", "client.key", "signet-tls.toml"]


def cli(*args, timeout=60):
    return subprocess.run([signet_bin(), *args], capture_output=True, text=True, timeout=timeout)


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("dev-certs") / "tls"
    r = cli("dev-certs", str(d), "--client-identity", "spiffe://python.test/admin")
    assert r.returncode == 0, r.stderr
    return d, r.stdout


@pytest.fixture(scope="module")
def tls_server(certs, tmp_path_factory):
    d, _ = certs
    server = SignetServer(["--config", str(d / "signet-tls.toml"), "--listen", "127.0.0.1:0"],
                          tmp_path_factory.mktemp("dev-certs-log") / "stderr.log")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.stderr()[-4000:]


def test_files_and_modes(certs):
    d, out = certs
    assert sorted(os.listdir(d)) == sorted(FILES)
    for key in ["server.key", "client.key"]:
        assert stat.S_IMODE(os.stat(d / key).st_mode) == 0o600, key
    # It says how to serve and how to call.
    assert f"signet serve --config {d}/signet-tls.toml" in out
    assert f"--ca-file {d}/ca.crt --cert-file {d}/client.crt --key-file {d}/client.key" in out
    # The CA's private key is written nowhere.
    for f in FILES:
        text = (d / f).read_text()
        if f.endswith(".key"):
            assert text.count("PRIVATE KEY-----") == 2


def test_openssl_accepts_the_chain_and_the_extensions(certs):
    d, _ = certs
    assert "server.crt: OK" in openssl("verify", "-CAfile", str(d / "ca.crt"), "-purpose", "sslserver", str(d / "server.crt"))
    assert "client.crt: OK" in openssl("verify", "-CAfile", str(d / "ca.crt"), "-purpose", "sslclient", str(d / "client.crt"))
    ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    srv = x509.load_pem_x509_certificate((d / "server.crt").read_bytes())
    assert not srv.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    cl = x509.load_pem_x509_certificate((d / "client.crt").read_bytes())
    csan = cl.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert csan.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://python.test/admin"]
    # The private keys match their certificates.
    for name in ["server", "client"]:
        key = serialization.load_pem_private_key((d / f"{name}.key").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((d / f"{name}.crt").read_bytes())
        assert key.public_key() == cert.public_key()


def test_existing_files_are_kept_unless_forced(certs, tmp_path):
    d, _ = certs
    before = (d / "ca.crt").read_bytes()
    r = cli("dev-certs", str(d))
    assert r.returncode == 2 and "--force" in r.stderr
    assert (d / "ca.crt").read_bytes() == before
    other = tmp_path / "x"
    assert cli("dev-certs", str(other)).returncode == 0
    first = (other / "ca.crt").read_bytes()
    assert cli("dev-certs", str(other), "--force").returncode == 0
    assert (other / "ca.crt").read_bytes() != first
    assert cli("dev-certs", str(tmp_path / "y"), "--server-name", "not a name").returncode == 2


def test_the_config_serves_mutual_tls_to_independent_clients(certs, tls_server):
    d, out = certs
    port = tls_server.port
    # Python's gRPC (BoringSSL), with the client certificate.
    creds = grpc.ssl_channel_credentials(
        root_certificates=(d / "ca.crt").read_bytes(),
        private_key=(d / "client.key").read_bytes(),
        certificate_chain=(d / "client.crt").read_bytes())
    with grpc.secure_channel(f"localhost:{port}", creds) as ch:
        keys = key_admin_pb2_grpc.KeyAdminStub(ch).ListKeys(key_admin_pb2.ListKeysRequest(), timeout=10)
        assert "demo-ecdsa" in [k.name for k in keys.keys]
    # OpenSSL's client verifies the server against the CA by name and IP.
    for host in ["localhost", "127.0.0.1"]:
        r = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(d / "ca.crt"),
             "-verify_hostname" if host == "localhost" else "-verify_ip", host,
             "-cert", str(d / "client.crt"), "-key", str(d / "client.key"),
             "-alpn", "h2", "-verify_return_error", "-brief"],
            input="", capture_output=True, text=True, timeout=30)
        assert "Verification: OK" in r.stderr, r.stderr
    # The command it printed, as printed (on the test's port).
    call = re.search(r"^  signet (--endpoint .*)$", out, re.M).group(1).replace(":50051", f":{port}")
    r = cli(*call.split())
    assert r.returncode == 0, r.stderr
    assert "demo-hmac" in r.stdout


def _ca_as_server_cert(d):
    """A self-signed CA certificate served as the server's (the classic
    first attempt), with its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    (d / "self.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "self.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def test_transport_mistakes_are_named_with_their_fix(certs, tls_server, server, tmp_path):
    d, _ = certs
    tls = f"127.0.0.1:{tls_server.port}"
    plain = server.address
    ca = ["--ca-file", str(d / "ca.crt")]
    mine = ca + ["--cert-file", str(d / "client.crt"), "--key-file", str(d / "client.key")]

    def fails(args, code, *want):
        r = cli(*args)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        for w in want:
            assert w in r.stderr, (args, w, r.stderr)
        assert "InvalidContentType" not in r.stderr and "CANCELLED" not in r.stderr, r.stderr
        return r.stderr

    # No scheme at all.
    fails(["--endpoint", tls, "keys", "list"], 2, "has no scheme", f"http://{tls}", f"https://{tls}")
    # Plaintext to the TLS server, for a connection and for a call.
    fails(["--endpoint", f"http://{tls}", "keys", "list"], 1, "UNAVAILABLE", f"use https://{tls}")
    # TLS to the plaintext demo server.
    fails(["--endpoint", f"https://{plain}", *mine, "keys", "list"], 1, "answered in plaintext", f"http://{plain}")
    # Mutual TLS without a client certificate: UNAVAILABLE, as documented.
    fails(["--endpoint", f"https://localhost:{tls_server.port}", *ca, "keys", "list"], 1,
          "UNAVAILABLE", "requires a client certificate", "--cert-file")
    # A client certificate from another CA.
    other = tmp_path / "other"
    assert cli("dev-certs", str(other)).returncode == 0
    fails(["--endpoint", f"https://localhost:{tls_server.port}", *ca, "--cert-file", str(other / "client.crt"),
           "--key-file", str(other / "client.key"), "keys", "list"], 1, "UNAVAILABLE", "refused this client certificate")
    # A server certificate from a CA the client was not given.
    fails(["--endpoint", f"https://localhost:{tls_server.port}", "--ca-file", str(other / "ca.crt"), "keys", "list"],
          1, "not signed by a CA this client trusts", "--ca-file")

    # A certificate without the dialled name, and a CA served as a leaf.
    named = tmp_path / "named"
    assert cli("dev-certs", str(named), "--server-name", "localhost").returncode == 0
    _ca_as_server_cert(tmp_path)
    for cfg, cert, key in [("named.toml", named / "server.crt", named / "server.key"),
                           ("self.toml", tmp_path / "self.crt", tmp_path / "self.key")]:
        (tmp_path / cfg).write_text(
            f'[server]\nlisten = "127.0.0.1:0"\n[server.tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n'
            '[[auth.identities]]\nname = "nobody"\n')
    s1 = SignetServer(["--config", str(tmp_path / "named.toml")], tmp_path / "named.log")
    s2 = SignetServer(["--config", str(tmp_path / "self.toml")], tmp_path / "self.log")
    try:
        fails(["--endpoint", f"https://127.0.0.1:{s1.port}", "--ca-file", str(named / "ca.crt"), "keys", "list"], 1,
              'does not name "127.0.0.1"', "IP SAN", "--server-name 127.0.0.1")
        fails(["--endpoint", f"https://localhost:{s2.port}", "--ca-file", str(tmp_path / "self.crt"), "keys", "list"],
              1, "is a CA certificate", "CA:FALSE", "signet dev-certs")
    finally:
        assert s1.stop() == 0 and s2.stop() == 0


def test_bench_against_no_server_stops_at_once(tmp_path):
    # Nothing listens on this port: the run ends with the reason instead of
    # failing for the whole minute it was asked to measure.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("bench", "--endpoint", f"http://127.0.0.1:{port}", "--key", "demo-hmac", "--duration", "60s", timeout=30)
    assert r.returncode == 1, r
    assert "cannot connect" in r.stderr and "Connection refused" in r.stderr, r.stderr
    assert "req/s" not in r.stdout
