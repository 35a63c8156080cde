"""The Helm chart in helm/signet, rendered offline (see helm_helpers.py):
`helm lint` is clean; every rendered object validates against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail),
for the defaults, the HSM example and a set of variants; the objects
rendered, gRPC probes on the admin port, drain_delay + shutdown_timeout
within the grace period, a single pod with the memory backend, the
NetworkPolicy and NOTES.txt."""

from __future__ import annotations

import copy
import json

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from helm_helpers import (
    ADMIN_PORT,
    CASES,
    CHART,
    GRPC_PORT,
    KUBE_VERSION,
    KUBE_VERSIONS,
    NAMESPACE,
    OLDEST_KUBE_VERSION,
    PKCS11,
    POSTGRES,
    RELEASE,
    assert_config_accepted,
    hsm_values,
    merged,
    of_kind,
    one,
    pod_spec,
    render,
    render_raw,
    signet_container,
    signet_toml,
)


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
        "PodDisruptionBudget", "Secret", "Secret", "Service", "ServiceAccount",
    ])
    # The tokens file and the bootstrap admin's token.
    assert sorted(s["metadata"]["name"] for s in of_kind(default_docs, "Secret")) == [
        f"{RELEASE}-bootstrap-token", f"{RELEASE}-tokens"]
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


# --- variants ----------------------------------------------------------------


VARIANTS = [
    ("no pdb", {"podDisruptionBudget": {"enabled": False}}),
    ("pdb percentage", {"podDisruptionBudget": {"maxUnavailable": "50%"}}),
    ("pkcs11, fixed replicas, pdb minAvailable percentage", merged(PKCS11, merged(POSTGRES, {
        "replicaCount": 3, "podDisruptionBudget": {"minAvailable": "50%"},
    }))),
    ("pkcs11, autoscaling, no drain delay", merged(PKCS11, merged(POSTGRES, {
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4},
        "server": {"drainDelay": "0s"}, "terminationGracePeriodSeconds": 31,
    }))),
    ("pkcs11, one pod, registry in PostgreSQL", merged(PKCS11, POSTGRES)),
    ("pkcs11, one pod, database staged, registry on the token", merged(PKCS11, merged(POSTGRES, {"registry": {"store": "token"}}))),
    ("pkcs11, several pods on the token, opted in", merged(PKCS11, {
        "replicaCount": 2, "registry": {"store": "token", "allowTokenWithReplicas": True},
    })),
    ("memory, replay store in PostgreSQL", merged(POSTGRES, {"postgres": {"replayStore": True, "schema": "signet_replay"}})),
    ("pkcs11, registry and replay store in PostgreSQL, tuned", merged(PKCS11, merged(POSTGRES, {
        "replicaCount": 2,
        "registry": {"maxStaleness": "2m"},
        "postgres": {"replayStore": True, "poolSize": 16, "connectTimeout": "2s", "statementTimeout": "1500ms",
                     "heartbeat": "500ms", "resyncInterval": "1m"},
    }))),
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
    fixed = render(merged(PKCS11, merged(POSTGRES, {"replicaCount": 3})))
    assert not of_kind(fixed, "HorizontalPodAutoscaler")
    assert one(fixed, "Deployment")["spec"]["replicas"] == 3


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


# --- NOTES.txt -----------------------------------------------------------------


def test_notes_warn_about_the_memory_backend():
    notes = render_raw()[f"{CHART.name}/templates/NOTES.txt"]
    assert "signet-tls" in notes and "memory" in notes
    notes = render_raw(hsm_values())[f"{CHART.name}/templates/NOTES.txt"]
    assert "WARNING" not in notes and "signet-hsm-pin" in notes
