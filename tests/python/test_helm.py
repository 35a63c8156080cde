"""The Helm chart in helm/signet, rendered offline by Helm's own Go library
(helm-python-sdk embeds it: no helm binary, no cluster).

Checked: `helm lint` is clean; every rendered object validates against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail);
the rules the chart promises (pod security, gRPC probes on the admin port,
signet.toml with TLS, identities and the admin listener, secrets only in
Secrets, PKCS#11 module mounted read-only, Redis URL from a secretKeyRef,
drain_delay + shutdown_timeout within the grace period, a single pod with
the memory backend); that values.schema.json and the template checks refuse
bad values; and that the real binary accepts every rendered signet.toml
(`signet check-config`, $SIGNET_BIN, see conftest.signet_bin: it checks the
file without reading the TLS, PIN or tokens files it names).
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import tomllib
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from conftest import signet_bin

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "helm" / "signet"
HSM_EXAMPLE = CHART / "examples" / "hsm-redis.yaml"
RELEASE = "signet"
NAMESPACE = "payments"
# A recent Kubernetes whose schemas kubernetes-validate ships, and the
# oldest the chart supports (Chart.yaml kubeVersion: gRPC probes are GA).
KUBE_VERSION = "1.33.0"
OLDEST_KUBE_VERSION = "1.27.0"
KUBE_VERSIONS = [OLDEST_KUBE_VERSION, KUBE_VERSION]
GRPC_PORT = 50051
ADMIN_PORT = 9090

PIN = "PIN-4f1c9e27b6d05a83"
REDIS_PASSWORD = "redis-pw-9b3e71c40d2a"
TOKEN_SHA = "3f1c" + "ab" * 30

# The least a pkcs11 install needs (the memory backend runs one pod only).
PKCS11 = {
    "backend": {"type": "pkcs11"},
    "pkcs11": {"modulePath": "/opt/hsm/lib/libvendor.so", "tokenLabel": "t", "existingSecret": "p"},
}
MEMORY_SINGLE_POD = "every replica would have different keys"


def hsm_values() -> dict:
    return yaml.safe_load(HSM_EXAMPLE.read_text())


def merged(base: dict, override: dict) -> dict:
    """base with override merged in, recursively (maps only)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merged(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def render_raw(values: dict | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: dict | None = None) -> list[dict]:
    """The rendered objects (NOTES.txt left out)."""
    docs = []
    for path, text in sorted(render_raw(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(docs: list[dict]) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def signet_container(docs: list[dict]) -> dict:
    containers = pod_spec(docs)["containers"]
    assert [c["name"] for c in containers] == ["signet"]
    return containers[0]


def signet_toml(docs: list[dict]) -> dict:
    return tomllib.loads(one(docs, "ConfigMap")["data"]["signet.toml"])


def check_config(toml_text: str, directory: Path) -> subprocess.CompletedProcess:
    """`signet check-config` on toml_text, written to a file in directory."""
    path = directory / "signet.toml"
    path.write_text(toml_text)
    return subprocess.run(
        [signet_bin(), "check-config", str(path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def assert_config_accepted(docs: list[dict], directory: Path) -> None:
    text = one(docs, "ConfigMap")["data"]["signet.toml"]
    result = check_config(text, directory)
    assert result.returncode == 0, f"signet check-config refused the rendered signet.toml:\n{result.stderr}\n{text}"


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def mount_at(container: dict, path: str) -> dict:
    """The volumeMount whose mountPath is path or holds it."""
    best = None
    for m in container["volumeMounts"]:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    assert best is not None, f"nothing is mounted at {path}"
    return best


def volume(docs: list[dict], name: str) -> dict:
    vols = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert name in vols, f"no volume {name}"
    return vols[name]


@pytest.fixture(scope="module")
def default_docs() -> list[dict]:
    return render()


@pytest.fixture(scope="module")
def hsm_docs() -> list[dict]:
    return render(hsm_values())


CASES = ["default", "hsm-redis"]


@pytest.fixture(params=CASES)
def case(request, default_docs, hsm_docs):
    return request.param, (default_docs if request.param == "default" else hsm_docs)


# --- lint and Kubernetes schemas ------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_helm_lint_is_clean(name):
    values = None if name == "default" else hsm_values()
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v" + OLDEST_KUBE_VERSION)
    assert report["total_charts_linted"] == 1
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], json.dumps(report, indent=1)


def _check_service_monitor_by_hand(sm: dict, docs: list[dict]) -> None:
    """kubernetes-validate ships no schema for the Prometheus Operator's CRD."""
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(sm) == {"apiVersion", "kind", "metadata", "spec"}
    assert sm["metadata"]["name"]
    spec = sm["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    svc = one(docs, "Service")
    wanted = spec["selector"]["matchLabels"]
    assert wanted and wanted.items() <= svc["metadata"]["labels"].items(), "selects no Service of the chart"
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    assert spec["endpoints"], "no endpoint"
    for ep in spec["endpoints"]:
        assert set(ep) <= {"port", "path", "scheme", "interval", "scrapeTimeout"}
        assert ep["port"] == "admin" and ep["port"] in port_names
        assert ep["path"] == "/metrics" and ep["scheme"] == "http"
        for k in ("interval", "scrapeTimeout"):
            assert isinstance(ep[k], str) and ep[k][-1] in "smh"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_against_kubernetes(case, kube_version):
    _, docs = case
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, kube_version, strict=True)
            _check_service_monitor_by_hand(doc, docs)
            continue
        try:
            assert kubernetes_validate.validate(doc, kube_version, strict=True) == kube_version.rsplit(".", 1)[0]
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {e.message} at {list(e.path)}")


def test_the_validator_is_strict(default_docs):
    """An unknown field fails: the validation above is not vacuous."""
    dep = copy.deepcopy(one(default_docs, "Deployment"))
    kubernetes_validate.validate(dep, KUBE_VERSION, strict=True)
    dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["path"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBE_VERSION, strict=True)


def test_objects_rendered(default_docs, hsm_docs):
    kinds = sorted(d["kind"] for d in default_docs)
    assert kinds == sorted([
        "ConfigMap", "Deployment", "NetworkPolicy",
        "PodDisruptionBudget", "Secret", "Service", "ServiceAccount",
    ])
    assert of_kind(hsm_docs, "ServiceMonitor") and of_kind(hsm_docs, "HorizontalPodAutoscaler")
    for doc in default_docs + hsm_docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "signet"
        assert labels["app.kubernetes.io/instance"] == RELEASE


def test_service_monitor_only_when_enabled():
    assert not of_kind(render(), "ServiceMonitor")
    assert not of_kind(render({"serviceMonitor": {"enabled": False}}), "ServiceMonitor")
    assert len(of_kind(render({"serviceMonitor": {"enabled": True}}), "ServiceMonitor")) == 1
    assert not of_kind(render(merged(hsm_values(), {"serviceMonitor": {"enabled": False}})), "ServiceMonitor")


# --- the pod ---------------------------------------------------------------


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


def test_probes_ports_and_args(case):
    _, docs = case
    c = signet_container(docs)
    assert c["args"] == ["serve", "--config", "/etc/signet/signet.toml"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": GRPC_PORT, "admin": ADMIN_PORT}
    assert c["livenessProbe"]["grpc"] == {"port": ADMIN_PORT, "service": "liveness"}
    assert c["readinessProbe"]["grpc"]["port"] == ADMIN_PORT
    assert c["readinessProbe"]["grpc"].get("service", "") == ""
    assert c["startupProbe"]["grpc"]["port"] == ADMIN_PORT
    # signet.toml's listeners are the ports the probes and the Service use.
    conf = signet_toml(docs)
    assert conf["server"]["listen"] == f"0.0.0.0:{GRPC_PORT}"
    assert conf["admin"]["listen"] == f"0.0.0.0:{ADMIN_PORT}"
    svc = one(docs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {"grpc": "grpc", "admin": "admin"}


def test_oldest_kube_version_is_the_charts():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={OLDEST_KUBE_VERSION}-0"


def test_grace_period_exceeds_drain_delay_and_shutdown_timeout(case):
    """signet drains by itself ([server] drain_delay): no preStop hook, and
    the grace period covers drain_delay + shutdown_timeout."""
    _, docs = case
    conf = signet_toml(docs)
    timeout, drain = conf["server"]["shutdown_timeout"], conf["server"]["drain_delay"]
    assert timeout.endswith("s") and drain == "5s"
    assert pod_spec(docs)["terminationGracePeriodSeconds"] > int(timeout[:-1]) + int(drain[:-1])
    assert "lifecycle" not in signet_container(docs)


def test_drain_delay_units():
    assert signet_toml(render({"server": {"drainDelay": "0s"}}))["server"]["drain_delay"] == "0s"
    # 1500 ms counts as 2 s: 2 + 30 < 33.
    conf = signet_toml(render({"server": {"drainDelay": "1500ms"}, "terminationGracePeriodSeconds": 33}))
    assert conf["server"]["drain_delay"] == "1500ms"
    docs = render({"server": {"drainDelay": "1m"}, "terminationGracePeriodSeconds": 100})
    assert signet_toml(docs)["server"]["drain_delay"] == "1m"
    assert pod_spec(docs)["terminationGracePeriodSeconds"] == 100


# --- the real binary ---------------------------------------------------------


def test_signet_check_config_accepts_rendered_config(case, tmp_path):
    """The rendered signet.toml passes `signet check-config` (exit 0)."""
    _, docs = case
    assert_config_accepted(docs, tmp_path)


def test_config_checksum_rolls_pods():
    def annotations(values):
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]

    base = annotations(None)
    assert base == annotations(None)
    assert annotations({"log": {"level": "debug"}})["checksum/config"] != base["checksum/config"]
    tokens = {"auth": {"tokens": [{"identity": "a", "sha256": TOKEN_SHA}]}}
    assert annotations(tokens)["checksum/secrets"] != base["checksum/secrets"]


# --- signet.toml -------------------------------------------------------------


def test_signet_toml_parses_with_tls_identities_and_admin(case):
    name, docs = case
    conf = signet_toml(docs)
    tls = conf["server"]["tls"]
    assert tls["cert_file"] == "/etc/signet/tls/tls.crt"
    assert tls["key_file"] == "/etc/signet/tls/tls.key"
    assert "plaintext" not in conf["server"]
    ids = conf["auth"]["identities"]
    assert ids and all(i["name"] for i in ids)
    assert conf["admin"]["listen"] == f"0.0.0.0:{ADMIN_PORT}"
    assert conf["auth"]["tokens_file"] == "/etc/signet/tokens/tokens.toml"
    assert conf["audit"]["output"] == "stdout"
    assert conf["log"]["format"] == "json"
    assert conf["telemetry"]["service_name"] == "signet"
    assert isinstance(conf["http"]["replay_capacity"], int)
    if name == "default":
        assert conf["backend"] == {"type": "memory", "demo_keys": False}
        assert conf["http"]["replay_store"] == "memory"
        assert "client_ca_file" not in tls
        assert ids[0]["grants"][0]["operations"] == ["sign", "verify", "public_key"]
    else:
        assert tls["client_ca_file"] == "/etc/signet/tls/ca.crt"
        assert tls["require_client_cert"] is True
        assert tls["min_version"] == "1.3"
        assert [p["name"] for p in conf["profiles"]] == ["acquirer", "stripe"]
        assert conf["profiles"][0]["client_id"] == "merchant-42"
        assert ids[0]["allow_from"] == ["10.20.0.0/16"]
        assert ids[0]["rate_per_second"] == 500
        assert ids[0]["grants"][1] == {"operations": ["http_sign", "http_verify"], "profiles": ["acquirer", "stripe"]}
        assert conf["limits"]["keys"] == [{"key": "payments-rsa", "rate_per_second": 200, "burst": 400}]


def test_every_file_in_signet_toml_is_mounted(case):
    """Each path signet.toml names is on a read-only mount of the pod, and
    the TLS, PIN and token files are the keys the Secret volumes project."""
    _, docs = case
    conf = signet_toml(docs)
    c = signet_container(docs)
    files = [conf["server"]["tls"]["cert_file"], conf["server"]["tls"]["key_file"], conf["auth"]["tokens_file"]]
    files += [conf["server"]["tls"][k] for k in ("client_ca_file",) if k in conf["server"]["tls"]]
    if conf["backend"]["type"] == "pkcs11":
        files += [conf["backend"]["module"], conf["backend"]["pin_file"]]
    for f in files:
        m = mount_at(c, f)
        assert m["readOnly"] is True
        vol = volume(docs, m["name"])
        rel = f[len(m["mountPath"].rstrip("/")) + 1:]
        if "secret" in vol:
            assert rel in [i["path"] for i in vol["secret"]["items"]], f
        elif "projected" in vol:
            paths = [i["path"] for s in vol["projected"]["sources"] for i in s["secret"]["items"]]
            assert rel in paths, f
    config_mount = mount_at(c, "/etc/signet/signet.toml")
    assert config_mount["subPath"] == "signet.toml"
    assert volume(docs, config_mount["name"])["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]


def test_toml_strings_survive_quoting():
    """Identity names and profile fields reach signet.toml unchanged, even
    with quotes, backslashes, non-ASCII and HTML-ish characters."""
    odd = 'CN=a "quoted" \\ name, é <ops> & co\ttab'
    values = {
        "auth": {"identities": [{"name": odd, "grants": [{"operations": ["sign"], "keys": ["k-*"]}]}]},
        "profiles": [{"name": "p1", "key": "k1", "headers": {"signature": "X-Sig \"1\""}, "tolerance_seconds": 300}],
        "http": {"replayCapacity": 123456789},
    }
    conf = signet_toml(render(values))
    assert conf["auth"]["identities"][0]["name"] == odd
    assert conf["profiles"][0]["headers"] == {"signature": 'X-Sig "1"'}
    assert conf["profiles"][0]["tolerance_seconds"] == 300
    assert conf["http"]["replay_capacity"] == 123456789


# --- PKCS#11 and Redis (the HSM example) --------------------------------------


def test_hsm_example_backend_and_module_volume(hsm_docs):
    values = hsm_values()
    conf = signet_toml(hsm_docs)
    backend = conf["backend"]
    assert backend["type"] == "pkcs11"
    assert backend["module"] == values["pkcs11"]["modulePath"]
    assert backend["token_label"] == "payments-prod"
    assert backend["pin_file"] == "/etc/signet/pin/pin"
    assert backend["destroy_orphans"] is False
    c = signet_container(hsm_docs)
    m = mount_at(c, backend["module"])
    assert m["name"] == "pkcs11-module"
    assert m["mountPath"] == values["pkcs11"]["mountPath"]
    assert m["readOnly"] is True
    assert volume(hsm_docs, "pkcs11-module")["persistentVolumeClaim"] == {"claimName": "hsm-client", "readOnly": True}
    pin = volume(hsm_docs, mount_at(c, backend["pin_file"])["name"])["secret"]
    assert pin["secretName"] == "signet-hsm-pin" and pin["items"] == [{"key": "pin", "path": "pin"}]
    assert env_of(c)["VENDOR_PKCS11_CONF"]["value"] == "/opt/hsm/etc/client.conf"
    assert mount_at(c, "/etc/hsm-client/x")["readOnly"] is True
    # No PIN Secret is created when an existing one is named.
    assert not [s for s in of_kind(hsm_docs, "Secret") if "pin" in s.get("data", {})]


def test_hsm_example_redis_url_from_secret(hsm_docs):
    conf = signet_toml(hsm_docs)
    assert conf["http"]["replay_store"] == "redis"
    assert conf["http"]["redis_url_env"] == "SIGNET_REDIS_URL"
    assert "redis_url" not in conf["http"]
    env = env_of(signet_container(hsm_docs))["SIGNET_REDIS_URL"]
    assert "value" not in env
    assert env["valueFrom"] == {"secretKeyRef": {"name": "signet-redis", "key": "url"}}


def test_hsm_example_telemetry_and_network(hsm_docs):
    env = env_of(signet_container(hsm_docs))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability.svc:4317"
    np = one(hsm_docs, "NetworkPolicy")["spec"]
    egress_ports = {(p["port"], p["protocol"]) for rule in np["egress"] for p in rule.get("ports", [])}
    assert {(53, "UDP"), (6379, "TCP"), (4317, "TCP"), (1792, "TCP")} <= egress_ports
    hsm_rule = [r for r in np["egress"] if any("ipBlock" in t for t in r.get("to", []))]
    assert [t["ipBlock"]["cidr"] for t in hsm_rule[0]["to"]] == ["10.40.0.10/32", "10.40.0.11/32"]
    assert one(hsm_docs, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "selector": one(hsm_docs, "Deployment")["spec"]["selector"],
    }
    tsc = pod_spec(hsm_docs)["topologySpreadConstraints"][0]
    assert tsc["labelSelector"]["matchLabels"] == one(hsm_docs, "Deployment")["spec"]["selector"]["matchLabels"]


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

    assert tokens_toml(render()) == {"tokens": []}
    entries = [
        {"identity": "payments-api", "sha256": TOKEN_SHA, "expires": "2027-06-30T00:00:00Z"},
        {"identity": "batch", "sha256": "0" * 64},
    ]
    assert tokens_toml(render({"auth": {"tokens": entries}})) == {"tokens": entries}
    docs = render({"auth": {"tokensExistingSecret": "my-tokens", "tokensExistingSecretKey": "t.toml"}})
    assert not [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == f"{RELEASE}-tokens"]
    vol = volume(docs, mount_at(signet_container(docs), "/etc/signet/tokens/tokens.toml")["name"])
    assert vol["secret"]["secretName"] == "my-tokens"
    assert vol["secret"]["items"] == [{"key": "t.toml", "path": "tokens.toml"}]
    # Hashes are not secrets, but they are kept out of the ConfigMap too.
    assert TOKEN_SHA not in one(render({"auth": {"tokens": entries}}), "ConfigMap")["data"]["signet.toml"]


def test_client_ca_from_its_own_secret():
    docs = render({"server": {"tls": {"clientAuth": {"enabled": True, "required": False, "existingSecret": "clients-ca", "key": "bundle.pem"}}}})
    conf = signet_toml(docs)
    assert conf["server"]["tls"]["require_client_cert"] is False
    sources = volume(docs, "tls")["projected"]["sources"]
    assert sources[1]["secret"] == {"name": "clients-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}]}
    assert [i["path"] for i in sources[0]["secret"]["items"]] == ["tls.crt", "tls.key"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


VARIANTS = [
    ("no pdb", {"podDisruptionBudget": {"enabled": False}}),
    ("pdb percentage", {"podDisruptionBudget": {"maxUnavailable": "50%"}}),
    ("pkcs11, fixed replicas, pdb minAvailable percentage", merged(PKCS11, {
        "replicaCount": 3, "podDisruptionBudget": {"minAvailable": "50%"},
    })),
    ("pkcs11, autoscaling, no drain delay", merged(PKCS11, {
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4},
        "server": {"drainDelay": "0s"}, "terminationGracePeriodSeconds": 31,
    })),
    ("no network policy", {"networkPolicy": {"enabled": False}}),
    ("closed network policy", {"networkPolicy": {"grpcFrom": [], "adminFrom": [], "egress": {"dns": {"enabled": False}}}}),
    ("existing service account", {"serviceAccount": {"create": False, "name": "signet-sa"}}),
    ("pinned image", {"image": {"digest": "sha256:" + "ab" * 32}}),
    ("pkcs11 by serial, PIN from values", {
        "backend": {"type": "pkcs11"},
        "pkcs11": {"modulePath": "/usr/lib/softhsm/libsofthsm2.so", "tokenSerial": "0123456789abcdef", "pin": "1234",
                   "env": [{"name": "SOFTHSM2_CONF", "value": "/etc/softhsm/softhsm2.conf"}]},
        "autoscaling": {"enabled": False}, "replicaCount": 1,
    }),
    ("everything optional", {
        "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
        "extraVolumes": [{"name": "extra", "configMap": {"name": "x"}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/etc/extra", "readOnly": True}],
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [{"key": "hsm", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "signet"}}}}]}},
        "priorityClassName": "critical", "server": {"drainDelay": "10s"}, "terminationGracePeriodSeconds": 60,
        "podAnnotations": {"a": "b"}, "podLabels": {"signet-client": "false"}, "commonLabels": {"team": "payments"},
        "imagePullSecrets": [{"name": "regcred"}], "service": {"annotations": {"x": "y"}},
        "telemetry": {"otlpEndpoint": "http://collector:4317"}, "redis": {"enabled": True, "url": "redis://redis:6379/0"},
    }),
]


@pytest.mark.parametrize("values", [v for _, v in VARIANTS], ids=[n for n, _ in VARIANTS])
def test_variants_render_valid_objects(values, tmp_path):
    docs = render(values)
    for doc in docs:
        if doc["kind"] != "ServiceMonitor":
            for kube_version in KUBE_VERSIONS:
                kubernetes_validate.validate(doc, kube_version, strict=True)
    conf = signet_toml(docs)
    assert conf["server"]["tls"] and conf["auth"]["identities"]
    assert_config_accepted(docs, tmp_path)


# --- scaling and network defaults ----------------------------------------------


def test_scaling_defaults_to_one_pod(default_docs):
    """The memory backend (the default) cannot be replicated: one pod, no
    HPA, and a PDB that still lets a node drain evict it."""
    assert one(default_docs, "Deployment")["spec"]["replicas"] == 1
    assert not of_kind(default_docs, "HorizontalPodAutoscaler")
    assert one(default_docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_scaling_with_pkcs11(hsm_docs):
    hpa = one(hsm_docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] == 2 and hpa["maxReplicas"] >= 2
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": RELEASE}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in one(hsm_docs, "Deployment")["spec"], "the HPA owns the count"
    fixed = render(merged(PKCS11, {"replicaCount": 3}))
    assert not of_kind(fixed, "HorizontalPodAutoscaler")
    assert one(fixed, "Deployment")["spec"]["replicas"] == 3


@pytest.mark.parametrize("values", [
    {"replicaCount": 2},
    {"autoscaling": {"enabled": True}},
    {"backend": {"type": "memory"}, "replicaCount": 1, "autoscaling": {"enabled": True, "minReplicas": 1}},
], ids=["2 replicas", "autoscaling", "autoscaling from 1"])
def test_memory_backend_refuses_several_pods(values):
    with pytest.raises(helm.HelmRenderError) as e:
        render(values)
    assert MEMORY_SINGLE_POD in str(e.value)
    assert 'backend.type "memory"' in str(e.value)


def test_network_policy_defaults(default_docs):
    np = one(default_docs, "NetworkPolicy")["spec"]
    assert np["podSelector"] == one(default_docs, "Deployment")["spec"]["selector"]
    assert sorted(np["policyTypes"]) == ["Egress", "Ingress"]
    by_port = {r["ports"][0]["port"]: r["from"] for r in np["ingress"]}
    assert set(by_port) == {"grpc", "admin"}
    assert by_port["admin"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert by_port["grpc"], "no grpc peer: the rule would admit everyone"
    # Default egress: DNS only (memory backend, no Redis, no OTLP).
    assert [sorted((p["port"], p["protocol"]) for p in r["ports"]) for r in np["egress"]] == [[(53, "TCP"), (53, "UDP")]]
    closed = one(render({"networkPolicy": {"grpcFrom": [], "adminFrom": []}}), "NetworkPolicy")
    assert closed["spec"]["ingress"] == []


# --- refusals ------------------------------------------------------------------


BAD_FOR_SCHEMA = [
    ("replicaCount as a string", {"replicaCount": "two"}),
    ("preStopSleepSeconds is gone", {"preStopSleepSeconds": 5}),
    ("drain delay without unit", {"server": {"drainDelay": "5"}}),
    ("drain delay with two units", {"server": {"drainDelay": "1m30s"}}),
    ("unknown top-level key", {"replicas": 3}),
    ("unknown nested key", {"pkcs11": {"modulepath": "/x.so"}}),
    ("unknown backend", {"backend": {"type": "vault"}}),
    ("identity without name", {"auth": {"identities": [{"grants": []}]}}),
    ("unknown operation", {"auth": {"identities": [{"name": "a", "grants": [{"operations": ["delete-everything"]}]}]}}),
    ("token hash not hex", {"auth": {"tokens": [{"identity": "a", "sha256": "not-a-hash"}]}}),
    ("no identities", {"auth": {"identities": []}}),
    ("no TLS secret", {"server": {"tls": {"existingSecret": ""}}}),
    ("TLS version", {"server": {"tls": {"minVersion": "1.1"}}}),
    ("service type", {"service": {"type": "LoadBalancer"}}),
    ("volume with a name", {"pkcs11": {"volume": {"name": "x", "emptyDir": {}}}}),
    # signet refuses https:// OTLP endpoints at start-up (plaintext collector only).
    ("https OTLP endpoint", {"telemetry": {"otlpEndpoint": "https://collector:4317"}}),
]


@pytest.mark.parametrize("values", [v for _, v in BAD_FOR_SCHEMA], ids=[n for n, _ in BAD_FOR_SCHEMA])
def test_values_schema_refuses(values):
    with pytest.raises(helm.HelmValuesError) as e:
        render(values)
    assert "schema" in str(e.value)
    report = helm.lint(CHART, values, namespace=NAMESPACE)
    assert [m for m in report["messages"] if m["severity"] == 3], json.dumps(report)


BAD_FOR_TEMPLATES = [
    ("grace period", {"terminationGracePeriodSeconds": 30}, "must exceed server.drainDelay + server.shutdownTimeoutSeconds"),
    ("grace period with drain delay", {"terminationGracePeriodSeconds": 35}, "must exceed server.drainDelay + server.shutdownTimeoutSeconds (35 s)"),
    ("grace period with a long drain delay", {"server": {"drainDelay": "1m"}, "terminationGracePeriodSeconds": 60}, "(90 s)"),
    ("memory with 2 replicas", {"replicaCount": 2}, MEMORY_SINGLE_POD),
    ("memory with autoscaling", {"autoscaling": {"enabled": True}}, MEMORY_SINGLE_POD),
    ("pdb maxUnavailable 0", {"podDisruptionBudget": {"maxUnavailable": 0}}, "podDisruptionBudget allows no eviction with 1 replica"),
    ("pdb minAvailable 1 of 1", {"podDisruptionBudget": {"minAvailable": 1}}, "podDisruptionBudget allows no eviction"),
    ("pdb minAvailable 50% of 1", {"podDisruptionBudget": {"minAvailable": "50%"}}, "podDisruptionBudget allows no eviction"),
    ("pdb minAvailable at autoscaling minimum", merged(PKCS11, {"autoscaling": {"enabled": True, "minReplicas": 2}, "podDisruptionBudget": {"minAvailable": 2}}), "allows no eviction with 2 replica"),
    ("pkcs11 without module", {"backend": {"type": "pkcs11"}, "pkcs11": {"tokenLabel": "t", "existingSecret": "p"}}, "pkcs11.modulePath is required"),
    ("pkcs11 two PINs", {"backend": {"type": "pkcs11"}, "pkcs11": {"modulePath": "/m.so", "tokenLabel": "t", "existingSecret": "p", "pin": "1234"}}, "exactly one of existingSecret"),
    ("pkcs11 no token", {"backend": {"type": "pkcs11"}, "pkcs11": {"modulePath": "/m.so", "existingSecret": "p"}}, "exactly one of tokenLabel"),
    ("orphans with replicas", merged(PKCS11, {"replicaCount": 2, "pkcs11": {"destroyOrphans": True}}), "destroyOrphans"),
    ("orphans with autoscaling", merged(PKCS11, {"autoscaling": {"enabled": True}, "pkcs11": {"destroyOrphans": True}}), "destroyOrphans"),
    ("redis without url", {"redis": {"enabled": True}}, "redis: set exactly one"),
    ("min above max", merged(PKCS11, {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}), "minReplicas"),
]


@pytest.mark.parametrize("values,message", [(v, m) for _, v, m in BAD_FOR_TEMPLATES], ids=[n for n, _, _ in BAD_FOR_TEMPLATES])
def test_template_checks_refuse(values, message):
    with pytest.raises(helm.HelmRenderError) as e:
        render(values)
    assert message in str(e.value)


def test_notes_warn_about_the_memory_backend():
    notes = render_raw()[f"{CHART.name}/templates/NOTES.txt"]
    assert "signet-tls" in notes and "memory" in notes
    notes = render_raw(hsm_values())[f"{CHART.name}/templates/NOTES.txt"]
    assert "WARNING" not in notes and "signet-hsm-pin" in notes


def test_readme_documents_every_value():
    """helm/signet/README.md's table names every value of values.yaml (a
    map documented as a whole counts for its keys) and nothing else."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set()
    for line in (CHART / "README.md").read_text().split("## Values", 1)[1].splitlines():
        if line.startswith("| `"):
            documented.add(line.split("`")[1])

    def leaves(tree: dict, prefix: str = ""):
        for k, v in tree.items():
            path = prefix + k
            if isinstance(v, dict) and v and path not in documented:
                yield from leaves(v, path + ".")
            else:
                yield path

    paths = set(leaves(values))
    assert paths - documented == set(), "values missing from the README"
    assert documented - paths == set(), "README documents values that do not exist"
    # And the schema knows every one of them (it refuses unknown keys).
    schema = json.loads((CHART / "values.schema.json").read_text())

    def resolve(node: dict) -> dict:
        if "$ref" in node:
            return schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        return node

    for path in paths:
        node = schema
        for part in path.split("."):
            props = resolve(node).get("properties", {})
            assert part in props, f"values.schema.json does not describe {path}"
            node = props[part]
