"""Shared by the Helm chart tests (test_helm_*.py): the chart, the release
it is rendered as, values used by several files, and helpers that render
it offline with Helm's own Go library (helm-python-sdk embeds it: no helm
binary, no cluster) and pick the rendered objects apart. The fixtures
``default_docs``, ``hsm_docs`` (module-scoped) and ``case`` are in
conftest.py."""

from __future__ import annotations

import copy
import subprocess
import tomllib
from pathlib import Path

import helm_python as helm
import yaml

from conftest import HELM_CASES, signet_bin


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
# The database for the key registry: a Secret holding its URL (several
# pods need it).
POSTGRES = {"postgres": {"existingSecret": "signet-postgres"}}
POSTGRES_PASSWORD = "pg-pw-5d8a02e7c19b"
SEVERAL_PODS_NEED_POSTGRES = "need the key registry in PostgreSQL"


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


# The two installs the ``case`` fixture covers: the chart's defaults and
# examples/hsm-redis.yaml.
CASES = HELM_CASES
