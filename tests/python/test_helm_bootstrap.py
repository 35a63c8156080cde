"""The chart's defaults install a signet someone can call (see
helm_helpers.py): the bootstrap admin (auth.bootstrap) is an identity with
admin grants and a token; the token is random, lives only in its own
Secret, is kept when the cluster already holds it (`helm upgrade`), and
hashes to what the tokens file says, exactly as signet computes it: the
rendered signet.toml and tokens file, run by the real binary on loopback,
let the first command NOTES.txt prints through and nothing more. NOTES.txt
warns while the bootstrap admin is on and whenever nobody can get in; the
template checks refuse bootstrap values signet or the chart cannot honour."""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import grpc
import helm_python as helm
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SignetServer, assert_no_secret_in, signet_bin
from helm_helpers import (
    CHART,
    NAMESPACE,
    RELEASE,
    TOKEN_SHA,
    merged,
    of_kind,
    one,
    render,
    render_raw,
    signet_toml,
)
from signet.v1 import common_pb2, key_admin_pb2, key_admin_pb2_grpc, signer_pb2, signer_pb2_grpc

BOOTSTRAP_SECRET = f"{RELEASE}-bootstrap-token"
TOKENS_SECRET = f"{RELEASE}-tokens"
# What `signet token new` makes (src/cli/token.rs): sgt_ and 43 base64url
# characters, 256 bits.
TOKEN_FORM = re.compile(r"^sgt_[A-Za-z0-9_-]{43}$")
ADMIN_OPS = {"admin.read", "admin.create", "admin.import", "admin.rotate", "admin.promote",
             "admin.disable", "admin.enable", "admin.destroy", "admin.restore"}
NOBODY = "WARNING: nobody can call this signet"
BOOTSTRAP_ON = "WARNING: the bootstrap admin is on"
GRANT = [{"operations": ["sign"], "keys": ["*"]}]
NO_BOOTSTRAP = {"auth": {"bootstrap": {"enabled": False}, "identities": [{"name": "payments-api", "grants": GRANT}]}}


# --- helpers -------------------------------------------------------------------


def secret_text(docs: list[dict], name: str, key: str) -> str:
    found = [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == name]
    assert len(found) == 1, f"no Secret {name}"
    return base64.b64decode(found[0]["data"][key]).decode()


def bootstrap_token(docs: list[dict]) -> str:
    return secret_text(docs, BOOTSTRAP_SECRET, "token")


def tokens_file(docs: list[dict]) -> str:
    return secret_text(docs, TOKENS_SECRET, "tokens.toml")


def file_tokens(docs: list[dict]) -> list[dict]:
    return tomllib.loads(tokens_file(docs)).get("tokens", [])


def notes(values: dict | None = None) -> str:
    return render_raw(values)[f"{CHART.name}/templates/NOTES.txt"]


def expand(operations: list[str]) -> set[str]:
    ops = set()
    for o in operations:
        ops |= ADMIN_OPS if o == "admin.*" else {o}
    return ops


def render_in_cluster(tmp_path: Path, token: str, values: dict | None = None) -> list[dict]:
    """The chart rendered as `helm upgrade` does against a cluster whose
    bootstrap Secret holds token: a copy of the chart whose one lookup
    (templates/_lookup.tpl) answers with that Secret."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    lookup = copy / "templates" / "_lookup.tpl"
    real = lookup.read_text()
    # The stand-in replaces the real call, for the Secret the chart names.
    assert 'lookup "v1" "Secret" .Release.Namespace (include "signet.bootstrapSecretName" .)' in real
    encoded = base64.b64encode(token.encode()).decode()
    lookup.write_text(
        '{{- define "signet.bootstrapSecretInCluster" -}}'
        f'{{{{- if eq (include "signet.bootstrapSecretName" .) "{BOOTSTRAP_SECRET}" -}}}}'
        f'{{"data": {{"token": "{encoded}"}}}}'
        "{{- else -}}{}{{- end -}}{{- end -}}\n"
    )
    docs = []
    with helm.Chart.load(copy) as chart:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
    for path, text in sorted(out.items()):
        if not path.endswith("NOTES.txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def make_tls(directory: Path) -> None:
    """ca.crt, and tls.crt/tls.key for localhost signed by it."""
    def cert(cn, key, issuer_key, issuer_cn, ca, sans=()):
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("helm bootstrap test CA", ca_key, ca_key, "helm bootstrap test CA", True)
    srv = cert("localhost", srv_key, ca_key, "helm bootstrap test CA", False, [x509.DNSName("localhost")])
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.crt").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(srv_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def on_loopback(config: str, directory: Path) -> str:
    """The rendered signet.toml with what only the pod has swapped for this
    machine: the listeners on 127.0.0.1 (any port), the TLS files and the
    tokens file in directory, text logs (the harness reads the address
    from them). Identities, grants and everything else stay as rendered."""
    swaps = [
        ('listen = "0.0.0.0:50051"', 'listen = "127.0.0.1:0"'),
        ('listen = "0.0.0.0:9090"', 'listen = "127.0.0.1:0"'),
        ('"/etc/signet/tls/tls.crt"', f'"{directory / "tls.crt"}"'),
        ('"/etc/signet/tls/tls.key"', f'"{directory / "tls.key"}"'),
        ('"/etc/signet/tokens/tokens.toml"', f'"{directory / "tokens.toml"}"'),
        ('format = "json"', 'format = "text"'),
    ]
    for old, new in swaps:
        assert config.count(old) == 1, f"{old} is not in the rendered signet.toml once"
        config = config.replace(old, new)
    return config


def serve_rendered(docs: list[dict], directory: Path) -> SignetServer:
    """signet serve on the rendered signet.toml and tokens file."""
    make_tls(directory)
    (directory / "tokens.toml").write_text(tokens_file(docs))
    config = directory / "signet.toml"
    config.write_text(on_loopback(one(docs, "ConfigMap")["data"]["signet.toml"], directory))
    return SignetServer(["--config", str(config)], directory / "stderr.log")


def stop_clean(server: SignetServer, secrets_: list[str]) -> None:
    assert server.stop() == 0, server.stderr()[-4000:]
    assert_no_secret_in(server.stderr(), secrets_)
    assert_no_secret_in(server.audit(), secrets_)


def channel(server: SignetServer, directory: Path) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(root_certificates=(directory / "ca.crt").read_bytes())
    return grpc.secure_channel(f"localhost:{server.port}", creds)


# --- the defaults: an admin with a token ------------------------------------------


def test_defaults_give_an_admin_identity_a_token(default_docs):
    """Some identity of the rendered defaults can authenticate (a token in
    the tokens file for it) and holds admin grants on every key, and none of
    signing; it may connect from loopback only (a port-forward)."""
    identities = {i["name"]: i for i in signet_toml(default_docs)["auth"]["identities"]}
    with_token = [t for t in file_tokens(default_docs) if t["identity"] in identities]
    assert with_token, "no identity of the defaults has a token"
    admins = [t["identity"] for t in with_token
              if any(ADMIN_OPS <= expand(g["operations"]) and g.get("keys") == ["*"]
                     for g in identities[t["identity"]]["grants"])]
    assert admins == ["bootstrap-admin"]
    admin = identities["bootstrap-admin"]
    ops = set().union(*(expand(g["operations"]) for g in admin["grants"]))
    assert ops == ADMIN_OPS, "the bootstrap admin should hold key administration only"
    assert admin["allow_from"] == ["127.0.0.0/8", "::1/128"]
    assert "expires" not in with_token[0]


def test_the_hash_is_signets_hash_of_the_token(default_docs):
    """The tokens file holds SHA-256 (hex) of the whole token string, the
    hash signet computes for a presented token (src/auth/policy/tokens.rs),
    and the token has the form of `signet token new`."""
    token = bootstrap_token(default_docs)
    assert TOKEN_FORM.match(token)
    entry = [t for t in file_tokens(default_docs) if t["identity"] == "bootstrap-admin"]
    assert entry == [{"identity": "bootstrap-admin", "sha256": hashlib.sha256(token.encode()).hexdigest()}]


def test_the_token_is_only_in_its_secret():
    """Neither the token nor its hash is in the ConfigMap, the Deployment
    or NOTES.txt, and the tokens file has the hash only; the pods do not
    mount the token's Secret."""
    raw = render_raw()
    docs = [d for path, text in sorted(raw.items()) if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    token = bootstrap_token(docs)
    sha = hashlib.sha256(token.encode()).hexdigest()
    forms = [token, base64.b64encode(token.encode()).decode(), token[4:]]
    for doc in docs:
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == BOOTSTRAP_SECRET:
            continue
        dumped = yaml.safe_dump(doc)
        assert not any(f in dumped for f in forms), f"{doc['kind']} {doc['metadata']['name']} holds the token"
    assert not any(f in tokens_file(docs) for f in forms)
    assert sha in tokens_file(docs)
    assert sha not in one(docs, "ConfigMap")["data"]["signet.toml"]
    assert BOOTSTRAP_SECRET not in yaml.safe_dump(one(docs, "Deployment"))
    # NOTES.txt is shown on every install and upgrade (and in CI logs): the
    # way to read the token, never the token.
    text = raw[f"{CHART.name}/templates/NOTES.txt"]
    assert BOOTSTRAP_SECRET in text
    assert not any(f in text for f in forms + [sha])


def test_without_a_cluster_every_render_draws_a_new_token():
    """No token is baked into the chart: two renders, two tokens (and each
    tokens file follows its own)."""
    a, b = render(), render()
    assert bootstrap_token(a) != bootstrap_token(b)
    for docs in (a, b):
        assert file_tokens(docs)[0]["sha256"] == hashlib.sha256(bootstrap_token(docs).encode()).hexdigest()


def test_an_upgrade_keeps_the_token_the_cluster_holds(tmp_path):
    """Against a cluster that holds the bootstrap Secret, the chart keeps
    its token: the same Secret, the same hash, the same pod checksums on
    every render (an upgrade neither rotates the token nor rolls the pods)."""
    token = "sgt_" + base64.urlsafe_b64encode(hashlib.sha256(b"an earlier install").digest()).decode().rstrip("=")
    assert TOKEN_FORM.match(token)
    first = render_in_cluster(tmp_path / "1", token)
    second = render_in_cluster(tmp_path / "2", token)
    assert bootstrap_token(first) == bootstrap_token(second) == token
    assert file_tokens(first)[0]["sha256"] == hashlib.sha256(token.encode()).hexdigest()

    def annotations(docs):
        return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]

    assert annotations(first) == annotations(second)


def test_a_secret_not_holding_a_token_of_signets_form_is_replaced(tmp_path):
    """A bootstrap Secret whose token is not of `signet token new`'s form
    (edited by hand, too short to be safe) gets a new random token."""
    docs = render_in_cluster(tmp_path, "sgt_short")
    token = bootstrap_token(docs)
    assert token != "sgt_short" and TOKEN_FORM.match(token)
    assert file_tokens(docs)[0]["sha256"] == hashlib.sha256(token.encode()).hexdigest()


# --- the real binary: the first command goes through ------------------------------


def first_command(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("signet --endpoint")]
    assert len(lines) == 1, text
    return shlex.split(lines[0])


def test_the_first_command_of_the_notes_works_on_the_rendered_config(tmp_path):
    """signet serve on the rendered defaults (listeners moved to loopback,
    a throw-away certificate for localhost): the `signet ... keys list`
    NOTES.txt prints, run as printed with the token from the Secret and the
    CA in ca.crt, succeeds; the bootstrap admin can create a key, cannot
    sign with it, and a wrong or missing token is UNAUTHENTICATED."""
    raw = render_raw()
    docs = [d for path, text in sorted(raw.items()) if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    token = bootstrap_token(docs)
    (tmp_path / "token").write_text(token)
    server = serve_rendered(docs, tmp_path)
    try:
        argv = first_command(raw[f"{CHART.name}/templates/NOTES.txt"])
        assert argv[:3] == ["signet", "--endpoint", "https://localhost:50051"]
        argv = [signet_bin(), "--endpoint", f"https://localhost:{server.port}", *argv[3:]]
        env = {"PATH": "/usr/bin:/bin"}
        ran = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        create = [*argv[:-2], "keys", "create", "first-key", "--algorithm", "ED25519"]
        ran = subprocess.run(create, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        ran = subprocess.run([*argv, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0 and "first-key" in ran.stdout, ran.stderr

        ch = channel(server, tmp_path)
        auth = [("authorization", "Bearer " + token)]
        admin, signer = key_admin_pb2_grpc.KeyAdminStub(ch), signer_pb2_grpc.SignerStub(ch)
        assert [k.name for k in admin.ListKeys(key_admin_pb2.ListKeysRequest(), metadata=auth).keys] == ["first-key"]
        with pytest.raises(grpc.RpcError) as e:
            signer.Sign(signer_pb2.SignRequest(key="first-key", message=b"x"), metadata=auth)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        for bad in ([("authorization", "Bearer " + token[:-1] + ("A" if token[-1] != "A" else "B"))], []):
            with pytest.raises(grpc.RpcError) as e:
                admin.ListKeys(key_admin_pb2.ListKeysRequest(), metadata=bad)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ch.close()
    finally:
        stop_clean(server, [token, token[4:]])


def test_the_bootstrap_admin_is_held_to_its_source_addresses(tmp_path):
    """allow_from is enforced on the bootstrap admin: with
    auth.bootstrap.allowFrom not covering loopback, the same token from
    127.0.0.1 is PERMISSION_DENIED (so the loopback default is what keeps it
    to port-forwards)."""
    docs = render({"auth": {"bootstrap": {"allowFrom": ["10.0.0.0/8"]}}})
    token = bootstrap_token(docs)
    server = serve_rendered(docs, tmp_path)
    try:
        ch = channel(server, tmp_path)
        admin = key_admin_pb2_grpc.KeyAdminStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            admin.CreateKey(key_admin_pb2.CreateKeyRequest(name="k", algorithm=common_pb2.ALGORITHM_ED25519),
                            metadata=[("authorization", "Bearer " + token)])
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        ch.close()
    finally:
        stop_clean(server, [token, token[4:]])


def test_the_quickstart_signing_client_signs_what_the_bootstrap_admin_creates(tmp_path):
    """The README's quickstart, step 5: a client identity with a token from
    `signet token new` in auth.tokens, next to the bootstrap admin. The
    admin creates a key, the client signs with it; neither can do the
    other's part."""
    made = subprocess.run([signet_bin(), "token", "new", "--identity", "demo-client", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    client = yaml.safe_load(made.stdout)
    docs = render({"auth": {
        "identities": [{"name": "demo-client", "grants": [{"operations": ["sign", "verify", "public_key"], "keys": ["demo-*"]}]}],
        "tokens": [{"identity": "demo-client", "sha256": client["sha256"]}]}})
    admin_token = bootstrap_token(docs)
    server = serve_rendered(docs, tmp_path)
    try:
        ch = channel(server, tmp_path)
        admin, signer = key_admin_pb2_grpc.KeyAdminStub(ch), signer_pb2_grpc.SignerStub(ch)
        as_admin, as_client = [("authorization", "Bearer " + admin_token)], [("authorization", "Bearer " + client["token"])]
        admin.CreateKey(key_admin_pb2.CreateKeyRequest(name="demo-ed25519", algorithm=common_pb2.ALGORITHM_ED25519), metadata=as_admin)
        signed = signer.Sign(signer_pb2.SignRequest(key="demo-ed25519", message=b"hello"), metadata=as_client)
        assert signed.key_version_id == "demo-ed25519:v1" and len(signed.signature) == 64
        for call, who in [(lambda m: signer.Sign(signer_pb2.SignRequest(key="demo-ed25519", message=b"x"), metadata=m), as_admin),
                          (lambda m: admin.RotateKey(key_admin_pb2.RotateKeyRequest(name="demo-ed25519"), metadata=m), as_client)]:
            with pytest.raises(grpc.RpcError) as e:
                call(who)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        ch.close()
    finally:
        stop_clean(server, [admin_token, admin_token[4:], client["token"], client["token"][4:]])


# --- NOTES.txt ---------------------------------------------------------------------


def test_notes_print_the_first_command_and_warn_about_the_bootstrap_admin():
    text = notes()
    ns = NAMESPACE
    assert (f"(umask 077; kubectl -n {ns} get secret {BOOTSTRAP_SECRET} -o jsonpath='{{.data.token}}'"
            " | base64 -d > token)") in text
    assert f"kubectl -n {ns} get secret signet-tls -o jsonpath='{{.data.ca\\.crt}}' | base64 -d > ca.crt" in text
    assert f"kubectl -n {ns} port-forward service/{RELEASE} 50051:50051 &" in text
    assert first_command(text) == ["signet", "--endpoint", "https://localhost:50051", "--ca-file", "ca.crt",
                                   "--token-file", "token", "keys", "list"]
    assert BOOTSTRAP_ON in text and NOBODY not in text
    assert "auth.bootstrap.enabled: false" in text
    # Names follow the values.
    other = notes({"fullnameOverride": "signer", "service": {"grpcPort": 8443},
                   "server": {"tls": {"existingSecret": "my-tls"}}})
    assert "get secret signer-bootstrap-token" in other and "get secret my-tls" in other
    assert "port-forward service/signer 50051:8443 &" in other


def test_notes_add_a_client_certificate_when_one_is_required():
    argv = first_command(notes({"server": {"tls": {"clientAuth": {"enabled": True}}}}))
    assert argv[argv.index("--cert-file") + 1] == "client.crt" and argv[argv.index("--key-file") + 1] == "client.key"
    argv = first_command(notes({"server": {"tls": {"clientAuth": {"enabled": True, "required": False}}}}))
    assert "--cert-file" not in argv


def test_no_first_command_and_no_bootstrap_warning_when_it_is_off():
    text = notes(merged(NO_BOOTSTRAP, {"auth": {"tokens": [{"identity": "payments-api", "sha256": TOKEN_SHA}]}}))
    assert "signet --endpoint" not in text and BOOTSTRAP_ON not in text and NOBODY not in text


PAST = "2020-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"
NOBODY_CASES = [
    ("an identity without a token, client certificates off", NO_BOOTSTRAP),
    ("a token for an identity, expired", merged(NO_BOOTSTRAP, {"auth": {"tokens": [
        {"identity": "payments-api", "sha256": TOKEN_SHA, "expires": PAST}]}})),
    ("the bootstrap admin only, expired", {"auth": {"bootstrap": {"expires": PAST}}}),
]
SOMEBODY_CASES = [
    ("the defaults", None),
    ("the bootstrap admin, expiring later", {"auth": {"bootstrap": {"expires": FUTURE}}}),
    ("a token for an identity", merged(NO_BOOTSTRAP, {"auth": {"tokens": [
        {"identity": "payments-api", "sha256": TOKEN_SHA, "expires": FUTURE}]}})),
    ("client certificates", merged(NO_BOOTSTRAP, {"server": {"tls": {"clientAuth": {"enabled": True}}}})),
    ("tokens from an existing Secret", merged(NO_BOOTSTRAP, {"auth": {"tokensExistingSecret": "my-tokens"}})),
]


@pytest.mark.parametrize("values", [v for _, v in NOBODY_CASES], ids=[n for n, _ in NOBODY_CASES])
def test_notes_warn_when_nobody_can_get_in(values):
    text = notes(values)
    assert NOBODY in text
    assert "signet token new --identity NAME" in text


@pytest.mark.parametrize("values", [v for _, v in SOMEBODY_CASES], ids=[n for n, _ in SOMEBODY_CASES])
def test_notes_do_not_warn_when_someone_can(values):
    assert NOBODY not in notes(values)


def test_the_bootstrap_expiry_reaches_the_tokens_file(default_docs):
    docs = render({"auth": {"bootstrap": {"expires": FUTURE}}})
    assert file_tokens(docs)[0]["expires"] == FUTURE
    # The hash is never listed twice, and the defaults have no expiry.
    assert len(file_tokens(default_docs)) == 1 and "expires" not in file_tokens(default_docs)[0]


# --- refusals ------------------------------------------------------------------------


BAD_FOR_TEMPLATES = [
    ("bootstrap with an existing tokens Secret", {"auth": {"tokensExistingSecret": "my-tokens"}},
     "auth.bootstrap.enabled needs the tokens file the chart writes"),
    ("bootstrap name taken", {"auth": {"identities": [{"name": "bootstrap-admin", "grants": GRANT}]}},
     'auth.bootstrap.identity "bootstrap-admin" is also in auth.identities'),
    ("token for no identity", {"auth": {"tokens": [{"identity": "nobody", "sha256": TOKEN_SHA}]}},
     'auth.tokens[0].identity "nobody" is not an identity'),
    ("token for no identity, no bootstrap", merged(NO_BOOTSTRAP, {"auth": {"tokens": [
        {"identity": "payments-api", "sha256": TOKEN_SHA}, {"identity": "bootstrap-admin", "sha256": "0" * 64}]}}),
     'auth.tokens[1].identity "bootstrap-admin" is not an identity'),
]


@pytest.mark.parametrize("values,message", [(v, m) for _, v, m in BAD_FOR_TEMPLATES],
                         ids=[n for n, _, _ in BAD_FOR_TEMPLATES])
def test_template_checks_refuse(values, message):
    with pytest.raises(helm.HelmRenderError) as e:
        render(values)
    assert message in str(e.value)


BAD_FOR_SCHEMA = [
    ("anonymous", {"auth": {"bootstrap": {"identity": "anonymous"}}}),
    ("empty name", {"auth": {"bootstrap": {"identity": ""}}}),
    ("no grants", {"auth": {"bootstrap": {"grants": []}}}),
    ("unknown operation", {"auth": {"bootstrap": {"grants": [{"operations": ["root"], "keys": ["*"]}]}}}),
    ("expiry not RFC 3339", {"auth": {"bootstrap": {"expires": "next week"}}}),
    ("unknown key", {"auth": {"bootstrap": {"token": "sgt_mine"}}}),
]


@pytest.mark.parametrize("values", [v for _, v in BAD_FOR_SCHEMA], ids=[n for n, _ in BAD_FOR_SCHEMA])
def test_values_schema_refuses(values):
    with pytest.raises(helm.HelmValuesError) as e:
        render(values)
    assert "schema" in str(e.value)
