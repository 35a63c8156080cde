"""What the Helm chart refuses (see helm_helpers.py): values.schema.json
and the template checks refuse bad values (the memory backend on several
pods among them); and the chart's README, values.yaml and
values.schema.json describe the same values."""

from __future__ import annotations

import json

import helm_python as helm
import pytest
import yaml

from helm_helpers import CHART, MEMORY_SINGLE_POD, NAMESPACE, PKCS11, merged, render


# --- the memory backend runs one pod ---------------------------------------------


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
    # An empty auth.identities is the default now: the bootstrap admin is
    # the identity. Without it, there must be another.
    ("no identities", {"auth": {"identities": [], "bootstrap": {"enabled": False}}}, "auth.identities needs at least one identity"),
]


@pytest.mark.parametrize("values,message", [(v, m) for _, v, m in BAD_FOR_TEMPLATES], ids=[n for n, _, _ in BAD_FOR_TEMPLATES])
def test_template_checks_refuse(values, message):
    with pytest.raises(helm.HelmRenderError) as e:
        render(values)
    assert message in str(e.value)


# --- the values documented ------------------------------------------------------


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
