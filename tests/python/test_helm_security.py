"""The security settings of the Helm chart (see helm_helpers.py): pod
security (non-root, read-only root filesystem, no capabilities, no service
account token), and secrets (PIN, Redis password, tokens, client CA) only
in Secrets."""

from __future__ import annotations

import base64
import tomllib

import kubernetes_validate
import yaml

from helm_helpers import (
    KUBE_VERSION,
    PIN,
    REDIS_PASSWORD,
    RELEASE,
    TOKEN_SHA,
    env_of,
    hsm_values,
    merged,
    mount_at,
    of_kind,
    one,
    pod_spec,
    render,
    signet_container,
    signet_toml,
    volume,
)


# --- the pod's security --------------------------------------------------------


def test_pod_security(case):
    _, docs = case
    spec = pod_spec(docs)
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532 and psc["fsGroup"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    c = signet_container(docs)
    csc = c["securityContext"]
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["runAsNonRoot"] is True
    assert csc.get("privileged", False) is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
    # The only writable place: an emptyDir at /tmp. Everything else read-only.
    tmp = mount_at(c, "/tmp")
    assert tmp["mountPath"] == "/tmp" and "emptyDir" in volume(docs, tmp["name"])
    for m in c["volumeMounts"]:
        if m is not tmp:
            assert m.get("readOnly") is True, f"{m['mountPath']} is writable"
    res = c["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"]
    assert res["limits"]["cpu"] and res["limits"]["memory"]


# --- secrets -------------------------------------------------------------------


def test_secrets_from_values_stay_in_secrets():
    """A PIN and a Redis password given in the values (discouraged) land in
    Secrets only: never in the ConfigMap, the Deployment or anything else."""
    values = merged(hsm_values(), {
        "pkcs11": {"existingSecret": "", "pin": PIN},
        "redis": {"existingSecret": "", "url": f"rediss://:{REDIS_PASSWORD}@redis.payments:6379/0"},
    })
    docs = render(values)
    secrets = of_kind(docs, "Secret")
    pin_secret = [s for s in secrets if s["metadata"]["name"] == f"{RELEASE}-pin"]
    assert len(pin_secret) == 1
    assert base64.b64decode(pin_secret[0]["data"]["pin"]).decode() == PIN
    redis_secret = [s for s in secrets if s["metadata"]["name"] == f"{RELEASE}-redis"]
    assert REDIS_PASSWORD in base64.b64decode(redis_secret[0]["data"]["url"]).decode()
    for secret_text in (PIN, REDIS_PASSWORD):
        forms = {secret_text, base64.b64encode(secret_text.encode()).decode()}
        for doc in docs:
            if doc["kind"] == "Secret":
                continue
            dumped = yaml.safe_dump(doc)
            for form in forms:
                assert form not in dumped, f"{doc['kind']} holds a secret"
    cm = one(docs, "ConfigMap")["data"]["signet.toml"]
    assert PIN not in cm and "pin = " not in cm
    c = signet_container(docs)
    assert volume(docs, mount_at(c, "/etc/signet/pin/pin")["name"])["secret"]["secretName"] == f"{RELEASE}-pin"
    assert env_of(c)["SIGNET_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{RELEASE}-redis", "key": "url"}


def test_tokens_file_secret():
    def tokens_toml(docs):
        s = [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == f"{RELEASE}-tokens"]
        assert len(s) == 1
        return tomllib.loads(base64.b64decode(s[0]["data"]["tokens.toml"]).decode())

    identities = [{"name": n, "grants": [{"operations": ["sign"], "keys": ["*"]}]} for n in ("payments-api", "batch")]
    no_bootstrap = {"auth": {"bootstrap": {"enabled": False}, "identities": identities}}
    assert tokens_toml(render(no_bootstrap)) == {"tokens": []}
    entries = [
        {"identity": "payments-api", "sha256": TOKEN_SHA, "expires": "2027-06-30T00:00:00Z"},
        {"identity": "batch", "sha256": "0" * 64},
    ]
    assert tokens_toml(render(merged(no_bootstrap, {"auth": {"tokens": entries}}))) == {"tokens": entries}
    # With the bootstrap admin (the default), its hash comes first.
    with_bootstrap = tokens_toml(render({"auth": {"identities": identities, "tokens": entries}}))["tokens"]
    assert [t["identity"] for t in with_bootstrap] == ["bootstrap-admin", "payments-api", "batch"]
    assert with_bootstrap[1:] == entries
    docs = render(merged(no_bootstrap, {"auth": {"tokensExistingSecret": "my-tokens", "tokensExistingSecretKey": "t.toml"}}))
    assert not [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == f"{RELEASE}-tokens"]
    vol = volume(docs, mount_at(signet_container(docs), "/etc/signet/tokens/tokens.toml")["name"])
    assert vol["secret"]["secretName"] == "my-tokens"
    assert vol["secret"]["items"] == [{"key": "t.toml", "path": "tokens.toml"}]
    # Hashes are not secrets, but they are kept out of the ConfigMap too.
    docs = render({"auth": {"identities": identities, "tokens": entries}})
    config = one(docs, "ConfigMap")["data"]["signet.toml"]
    assert TOKEN_SHA not in config
    assert tokens_toml(docs)["tokens"][0]["sha256"] not in config


def test_client_ca_from_its_own_secret():
    docs = render({"server": {"tls": {"clientAuth": {"enabled": True, "required": False, "existingSecret": "clients-ca", "key": "bundle.pem"}}}})
    conf = signet_toml(docs)
    assert conf["server"]["tls"]["require_client_cert"] is False
    sources = volume(docs, "tls")["projected"]["sources"]
    assert sources[1]["secret"] == {"name": "clients-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}]}
    assert [i["path"] for i in sources[0]["secret"]["items"]] == ["tls.crt", "tls.key"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
