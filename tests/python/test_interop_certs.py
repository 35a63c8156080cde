"""Certificates for key versions, checked by implementations nobody here
wrote, on both backends: signet's CSRs pass `openssl req -verify` and parse
in Python's cryptography with the subject asked for (organizationIdentifier
included) and the version's public key; a CA made by cryptography issues a
chain from the request, signet attaches it, hands it back (GetCertificateChain,
`openssl verify` accepts it), publishes it in JWKS (x5c, x5t#S256), and
refuses every chain that could not be right with INVALID_ARGUMENT, keeping
the one stored. The CLI does the same round."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import signet_bin
from interop_helpers import rpc_error
from signet.v1 import common_pb2, key_admin_pb2, signer_pb2

TAGS = {"server": "mem", "hsm_server": "hsm"}
ALGS = {
    "p256": common_pb2.ALGORITHM_ECDSA_P256_SHA256,
    "p384": common_pb2.ALGORITHM_ECDSA_P384_SHA384,
    "rsa": common_pb2.ALGORITHM_RSA_PKCS1_2048_SHA256,
    "ed": common_pb2.ALGORITHM_ED25519,
}
ORG_ID = "PSDDE-BAFIN-123456"
NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(params=list(TAGS))
def srv(request):
    client = request.getfixturevalue(request.param)
    client.tag = TAGS[request.param]
    return client


def create(srv, name, alg):
    srv.admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=name, algorithm=alg))


def subject_pb():
    a = key_admin_pb2.NameAttribute
    return [a(type="C", value="DE"), a(type="O", value="Zahlung GmbH"),
            a(type="organizationIdentifier", value=ORG_ID), a(type="CN", value="Zahlung QSeal")]


def make_csr(srv, name, version=0):
    return srv.admin.CreateCertificateRequest(key_admin_pb2.CreateCertificateRequestRequest(
        name=name, version=version, subject=subject_pb(), dns_names=["tpp.example.com"],
        uris=["https://tpp.example.com/"], emails=["ops@example.com"]))


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test QTSP"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    """A root and an intermediate made by cryptography."""

    def __init__(self, label: str = "Test", intermediate_is_ca: bool = True):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._cert(name(f"{label} Root"), self.root_key.public_key(), name(f"{label} Root"),
                               self.root_key, ca=True)
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        self.inter = self._cert(name(f"{label} QSeal CA"), self.inter_key.public_key(), self.root.subject,
                                self.root_key, ca=intermediate_is_ca)

    @staticmethod
    def _cert(subject, public, issuer, key, ca=False, not_after=None, ku=None, serial=None, sans=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
             .serial_number(serial or x509.random_serial_number())
             .not_valid_before(NOW - dt.timedelta(days=1))
             .not_valid_after(not_after or NOW + dt.timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ku:
            b = b.add_extension(ku, critical=True)
        if sans:
            b = b.add_extension(sans, critical=False)
        return b.sign(key, hashes.SHA256())

    def issue(self, csr: x509.CertificateSigningRequest, not_after=None, signs=True):
        ku = x509.KeyUsage(digital_signature=signs, content_commitment=signs, key_encipherment=False,
                           data_encipherment=False, key_agreement=not signs, key_cert_sign=False, crl_sign=False,
                           encipher_only=False, decipher_only=False)
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return self._cert(csr.subject, csr.public_key(), self.inter.subject, self.inter_key, not_after=not_after,
                          ku=ku, serial=0x1F2E3D4C5B6A79, sans=sans)


def pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(c) -> bytes:
    return c.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("alg", list(ALGS))
def test_csr_verifies_and_carries_what_was_asked(srv, alg, tmp_path):
    key = f"cert-{srv.tag}-{alg}"
    create(srv, key, ALGS[alg])
    r = make_csr(srv, key)
    assert r.key_version_id == f"{key}:v1" and r.version == 1
    (tmp_path / "req.pem").write_text(r.csr_pem)
    out = subprocess.run(["openssl", "req", "-verify", "-noout", "-in", "req.pem"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr, out.stderr
    csr = x509.load_pem_x509_csr(r.csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.public_bytes(serialization.Encoding.DER) == r.csr_der
    got = srv.signer.GetPublicKey(signer_pb2.GetPublicKeyRequest(key=key)).public_key
    want = serialization.load_pem_public_key(got).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert csr.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo) == want
    attrs = [(a.oid, a.value) for a in csr.subject]
    assert attrs == [(NameOID.COUNTRY_NAME, "DE"), (NameOID.ORGANIZATION_NAME, "Zahlung GmbH"),
                     (NameOID.ORGANIZATION_IDENTIFIER, ORG_ID), (NameOID.COMMON_NAME, "Zahlung QSeal")]
    # X.520: countryName is a PrintableString.
    assert csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0]._type == x509.name._ASN1Type.PrintableString
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["tpp.example.com"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["https://tpp.example.com/"]
    assert sans.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]


def test_chain_is_attached_returned_verified_and_published(srv, tmp_path):
    key = f"cert-{srv.tag}-chain"
    create(srv, key, ALGS["p256"])
    ca = CA()
    leaf = ca.issue(x509.load_pem_x509_csr(make_csr(srv, key).csr_pem.encode()))
    r = srv.admin.ImportCertificateChain(key_admin_pb2.ImportCertificateChainRequest(
        name=key, chain=pem(leaf, ca.inter, ca.root)))
    assert (r.key_version_id, r.version, r.certificates) == (f"{key}:v1", 1, 3)
    assert r.not_after.seconds == int(leaf.not_valid_after_utc.timestamp())

    c = srv.signer.GetCertificateChain(signer_pb2.GetCertificateChainRequest(key=key))
    assert list(c.certificates) == [der(leaf), der(ca.inter), der(ca.root)]
    assert c.chain_pem.encode() == pem(leaf, ca.inter, ca.root)
    assert c.serial == "1F2E3D4C5B6A79" == format(leaf.serial_number, "X")
    assert c.issuer == ca.inter.subject.rfc4514_string() == "CN=Test QSeal CA,O=Test QTSP,C=DE"
    (tmp_path / "root.pem").write_bytes(pem(ca.root))
    (tmp_path / "inter.pem").write_bytes(pem(ca.inter))
    (tmp_path / "leaf.pem").write_bytes(c.chain_pem.encode().split(b"-----END CERTIFICATE-----")[0]
                                        + b"-----END CERTIFICATE-----\n")
    out = subprocess.run(["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "leaf.pem: OK" in out.stdout, out.stdout + out.stderr

    jwk = json.loads(srv.signer.GetJwks(signer_pb2.GetJwksRequest(key=key)).jwks)["keys"][0]
    assert [base64.b64decode(x) for x in jwk["x5c"]] == [der(leaf), der(ca.inter), der(ca.root)]
    thumb = base64.urlsafe_b64encode(hashlib.sha256(der(leaf)).digest()).rstrip(b"=").decode()
    assert jwk["x5t#S256"] == thumb
    # The leaf's key is the JWK's key (RFC 7517 §4.7).
    x = base64.urlsafe_b64decode(jwk["x"] + "==")
    assert leaf.public_key().public_numbers().x == int.from_bytes(x, "big")


def test_chains_that_cannot_be_right_are_refused(srv):
    key = f"cert-{srv.tag}-refuse"
    other = f"cert-{srv.tag}-other"
    create(srv, key, ALGS["p256"])
    create(srv, other, ALGS["p256"])
    csr = x509.load_pem_x509_csr(make_csr(srv, key).csr_pem.encode())
    ca, stranger = CA(), CA("Stranger")
    good = ca.issue(csr)
    srv.admin.ImportCertificateChain(key_admin_pb2.ImportCertificateChainRequest(name=key, chain=pem(good, ca.inter)))
    not_ca = CA("Flat", intermediate_is_ca=False)
    cases = {
        "another key's leaf": pem(ca.issue(x509.load_pem_x509_csr(make_csr(srv, other).csr_pem.encode())), ca.inter),
        "a broken link": pem(good, stranger.inter),
        "an issuer that is no CA": pem(not_ca.issue(csr), not_ca.inter),
        "an expired leaf": pem(ca.issue(csr, not_after=NOW - dt.timedelta(hours=1)), ca.inter),
        "a leaf that may not sign": pem(ca.issue(csr, signs=False), ca.inter),
        "not a certificate": b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "garbage": b"\x30\x82\x01\x00junk",
    }
    for what, chain in cases.items():
        err = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, srv.admin.ImportCertificateChain,
                        key_admin_pb2.ImportCertificateChainRequest(name=key, chain=chain))
        assert dict(err.trailing_metadata()).get("x-request-id"), what
        kept = srv.signer.GetCertificateChain(signer_pb2.GetCertificateChainRequest(key=key))
        assert kept.certificates[0] == der(good), f"{what} replaced the stored chain"
    rpc_error(grpc.StatusCode.NOT_FOUND, srv.signer.GetCertificateChain,
              signer_pb2.GetCertificateChainRequest(key=other))
    rpc_error(grpc.StatusCode.NOT_FOUND, srv.admin.CreateCertificateRequest,
              key_admin_pb2.CreateCertificateRequestRequest(name="cert-nobody", subject=subject_pb()))
    bad = key_admin_pb2.CreateCertificateRequestRequest(
        name=key, subject=[key_admin_pb2.NameAttribute(type="C", value="Germany")])
    err = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, srv.admin.CreateCertificateRequest, bad)
    assert "two-letter" in err.details()
    mac = f"cert-{srv.tag}-mac"
    create(srv, mac, common_pb2.ALGORITHM_HMAC_SHA256)
    rpc_error(grpc.StatusCode.INVALID_ARGUMENT, srv.admin.CreateCertificateRequest,
              key_admin_pb2.CreateCertificateRequestRequest(name=mac, subject=subject_pb()))


def cli(srv, *args, stdin=None):
    return subprocess.run([signet_bin(), "--endpoint", f"http://{srv.address}", *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_cli_round(server, tmp_path):
    key = "cert-cli"
    create(server, key, ALGS["p384"])
    out = cli(server, "keys", "csr", key, "--subject", "C=DE", "--subject", "O=Zahlung GmbH",
              "--subject", f"organizationIdentifier={ORG_ID}", "--subject", "CN=Zahlung QSeal",
              "--dns", "tpp.example.com", "--out", str(tmp_path / "req.pem"))
    assert out.returncode == 0, out.stderr
    assert f"{key}:v1" in out.stderr
    csr = x509.load_pem_x509_csr((tmp_path / "req.pem").read_bytes())
    assert csr.is_signature_valid
    ca = CA()
    (tmp_path / "chain.pem").write_bytes(pem(ca.issue(csr), ca.inter))
    out = cli(server, "--json", "keys", "import-chain", key, "--file", str(tmp_path / "chain.pem"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["certificates"] == 2
    out = cli(server, "keys", "chain", key)
    assert out.returncode == 0, out.stderr
    assert out.stdout.encode() == (tmp_path / "chain.pem").read_bytes()
    out = cli(server, "keys", "csr", key, "--subject", "no-equals-sign")
    assert out.returncode != 0 and "TYPE=VALUE" in out.stderr
