"""The key registry and the database in the Helm chart (see
helm_helpers.py): which store `[registry] store` names (automatic: it
follows the database, never the pod count), the `[postgres]` section and
its URL from a Secret mounted read-only as a file, TLS to the database
(the CA bundle and a client certificate mounted read-only, rendered as
`ca_file` and the client files), several pods refused
without a database, the PostgreSQL replay store, the NetworkPolicy rule,
NOTES.txt, and the values reaching the fields signet checks."""

from __future__ import annotations

import helm_python as helm
import pytest
import yaml

from helm_helpers import (
    MEMORY_SINGLE_POD,
    PKCS11,
    POSTGRES,
    POSTGRES_PASSWORD,
    SEVERAL_PODS_NEED_POSTGRES,
    CHART,
    check_config,
    env_of,
    hsm_values,
    merged,
    mount_at,
    one,
    render,
    render_raw,
    signet_container,
    signet_toml,
    volume,
)

URL_FILE = "/etc/signet/postgres/url"
CA_FILE = "/etc/signet/postgres-tls/ca.crt"
PG_TLS_DIR = "/etc/signet/postgres-tls"


def notes(values: dict | None) -> str:
    return render_raw(values)[f"{CHART.name}/templates/NOTES.txt"]


# --- which store --------------------------------------------------------------


STORES = [
    ("defaults (memory)", {}, "token"),
    ("pkcs11, one pod, no database", PKCS11, "token"),
    ("pkcs11 with a database", merged(PKCS11, POSTGRES), "postgres"),
    ("pkcs11 with a database, three pods", merged(PKCS11, merged(POSTGRES, {"replicaCount": 3})), "postgres"),
    ("pkcs11 with a database, autoscaling", merged(PKCS11, merged(POSTGRES, {"autoscaling": {"enabled": True}})), "postgres"),
    ("database staged, registry kept on the token", merged(PKCS11, merged(POSTGRES, {"registry": {"store": "token"}})), "token"),
    ("explicit postgres", merged(PKCS11, merged(POSTGRES, {"registry": {"store": "postgres"}})), "postgres"),
    ("memory with a database for the replay store", merged(POSTGRES, {"postgres": {"replayStore": True}}), "token"),
]


@pytest.mark.parametrize("values,store", [(v, s) for _, v, s in STORES], ids=[n for n, _, _ in STORES])
def test_registry_store(values, store):
    conf = signet_toml(render(values))
    assert conf["registry"] == {"store": store, "max_staleness": "60s"}
    # [postgres] is there whenever a database is named, used or not (so that
    # `signet registry migrate` can run in a pod still on the token).
    assert ("postgres" in conf) == bool(values.get("postgres", {}).get("existingSecret"))


def test_store_follows_the_database_not_the_pod_count():
    """Scaling must never switch stores: the other one holds no records."""
    for count in (1, 2, 5):
        conf = signet_toml(render(merged(PKCS11, merged(POSTGRES, {"replicaCount": count}))))
        assert conf["registry"]["store"] == "postgres", count
    on_token = merged(PKCS11, {"registry": {"store": "token", "allowTokenWithReplicas": True}})
    for count in (1, 3):
        assert signet_toml(render(merged(on_token, {"replicaCount": count})))["registry"]["store"] == "token"


# --- [postgres] and the URL -----------------------------------------------------


def test_hsm_example_registry_in_postgres(hsm_docs):
    conf = signet_toml(hsm_docs)
    assert conf["registry"] == {"store": "postgres", "max_staleness": "60s"}
    assert conf["postgres"] == {
        "url_file": URL_FILE,
        "schema": "signet",
        "pool_size": 8,
        "connect_timeout": "5s",
        "statement_timeout": "5s",
        "heartbeat": "1s",
        "resync_interval": "30s",
        # TLS to the database, verified against the CA bundle.
        "ca_file": CA_FILE,
    }
    # Neither the URL nor a variable holding it: the file only.
    assert "url_env" not in conf["postgres"] and "url" not in conf["postgres"]
    # Redis stays the replay store there.
    assert conf["http"]["replay_store"] == "redis"


def test_url_secret_mounted_read_only_as_the_url_file(hsm_docs):
    c = signet_container(hsm_docs)
    m = mount_at(c, URL_FILE)
    assert m == {"name": "postgres", "mountPath": "/etc/signet/postgres", "readOnly": True}
    assert "subPath" not in m, "a subPath mount would never see a rotated password"
    secret = volume(hsm_docs, "postgres")["secret"]
    assert secret == {"secretName": "signet-postgres", "defaultMode": 0o440, "items": [{"key": "url", "path": "url"}]}


def test_url_secret_key_is_configurable():
    docs = render(merged(PKCS11, {"postgres": {"existingSecret": "db", "existingSecretKey": "dsn"}}))
    assert volume(docs, "postgres")["secret"]["items"] == [{"key": "dsn", "path": "url"}]
    assert signet_toml(docs)["postgres"]["url_file"] == URL_FILE


def test_no_database_no_mount(default_docs):
    c = signet_container(default_docs)
    assert not [m for m in c["volumeMounts"] if m["mountPath"].startswith("/etc/signet/postgres")]
    assert "postgres" not in {v["name"] for v in one(default_docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert "postgres" not in signet_toml(default_docs)


def test_the_password_never_reaches_a_manifest(hsm_docs):
    """The chart takes no database URL or password in its values (the schema
    refuses one), and what it renders names the Secret only: no URL in the
    ConfigMap, the environment, the arguments or anywhere else."""
    for key in ("url", "password"):
        with pytest.raises(helm.HelmValuesError):
            render(merged(PKCS11, {"postgres": {"existingSecret": "db", key: f"postgres://signet:{POSTGRES_PASSWORD}@db/signet"}}))
    for doc in hsm_docs:
        dumped = yaml.safe_dump(doc)
        assert "postgres://" not in dumped, f"{doc['kind']} holds a database URL"
    c = signet_container(hsm_docs)
    assert not [e for e in env_of(c).values() if "signet-postgres" in yaml.safe_dump(e)]
    assert not [a for a in c["args"] if "postgres" in a]
    # The Secret is referenced by one volume, nothing else.
    refs = [v for v in one(hsm_docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if "signet-postgres" in yaml.safe_dump(v)]
    assert [v["name"] for v in refs] == ["postgres"]


def test_tuning_values_reach_postgres_fields():
    values = merged(PKCS11, merged(POSTGRES, {
        "registry": {"maxStaleness": "5m"},
        "postgres": {"schema": "signet_eu", "poolSize": 32, "connectTimeout": "2s", "statementTimeout": "800ms",
                     "heartbeat": "250ms", "resyncInterval": "2m"},
    }))
    conf = signet_toml(render(values))
    assert conf["registry"]["max_staleness"] == "5m"
    assert conf["postgres"] == {
        "url_file": URL_FILE, "schema": "signet_eu", "pool_size": 32, "connect_timeout": "2s",
        "statement_timeout": "800ms", "heartbeat": "250ms", "resync_interval": "2m",
    }


@pytest.mark.parametrize("values,field", [
    ({"registry": {"maxStaleness": "2d"}}, "registry.max_staleness"),
    ({"registry": {"maxStaleness": "500ms"}}, "registry.max_staleness"),
    ({"postgres": {"statementTimeout": "10m"}}, "postgres.statement_timeout"),
    ({"postgres": {"connectTimeout": "50ms"}}, "postgres.connect_timeout"),
    ({"postgres": {"heartbeat": "2m"}}, "postgres.heartbeat"),
    ({"postgres": {"resyncInterval": "2d"}}, "postgres.resync_interval"),
], ids=["staleness above 1d", "staleness below 1s", "statement timeout", "connect timeout", "heartbeat", "resync"])
def test_signet_checks_the_ranges_of_rendered_values(values, field, tmp_path):
    """The chart leaves the ranges to signet: `signet check-config` on the
    rendered file refuses a value outside its range, naming the field."""
    docs = render(merged(PKCS11, merged(POSTGRES, values)))
    result = check_config(one(docs, "ConfigMap")["data"]["signet.toml"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert field in result.stderr


def test_network_policy_opens_the_database(hsm_docs, default_docs):
    rules = one(hsm_docs, "NetworkPolicy")["spec"]["egress"]
    pg = [r for r in rules if {p["port"] for p in r.get("ports", [])} == {5432}]
    assert len(pg) == 1
    assert pg[0]["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "databases"}}}]
    # Any destination when "to" is empty; nothing without a database.
    rules = one(render(merged(PKCS11, POSTGRES)), "NetworkPolicy")["spec"]["egress"]
    assert [r for r in rules if r.get("ports") == [{"port": 5432, "protocol": "TCP"}] and "to" not in r]
    assert not [r for r in one(default_docs, "NetworkPolicy")["spec"]["egress"] if {p["port"] for p in r.get("ports", [])} == {5432}]


# --- TLS to the database ---------------------------------------------------------


def pg_tls(**tls) -> dict:
    return merged(PKCS11, merged(POSTGRES, {"postgres": {"tls": tls}}))


def test_hsm_example_verifies_the_database_against_a_ca_config_map(hsm_docs):
    c = signet_container(hsm_docs)
    m = mount_at(c, CA_FILE)
    assert m == {"name": "postgres-tls", "mountPath": PG_TLS_DIR, "readOnly": True}
    assert "subPath" not in m, "a subPath mount would never see a renewed bundle"
    assert volume(hsm_docs, "postgres-tls")["projected"] == {
        "defaultMode": 0o440,
        "sources": [{"configMap": {"name": "database-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}],
    }


def test_a_ca_secret_becomes_ca_file_and_nothing_else():
    docs = render(pg_tls(caSecret="db-ca", caKey="bundle.pem"))
    conf = signet_toml(docs)["postgres"]
    assert conf["ca_file"] == CA_FILE
    assert "client_cert_file" not in conf and "client_key_file" not in conf
    assert mount_at(signet_container(docs), CA_FILE)["name"] == "postgres-tls"
    assert volume(docs, "postgres-tls")["projected"]["sources"] == [
        {"secret": {"name": "db-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}]}},
    ]
    assert 'Secret "db-ca" (bundle.pem: the CA bundle' in notes(pg_tls(caSecret="db-ca", caKey="bundle.pem"))


def test_a_client_certificate_secret_becomes_the_client_files(tmp_path):
    values = pg_tls(caConfigMap="database-ca", clientSecret="signet-db-client")
    docs = render(values)
    conf = signet_toml(docs)["postgres"]
    assert conf["ca_file"] == CA_FILE
    assert conf["client_cert_file"] == f"{PG_TLS_DIR}/tls.crt"
    assert conf["client_key_file"] == f"{PG_TLS_DIR}/tls.key"
    c = signet_container(docs)
    for f in (CA_FILE, conf["client_cert_file"], conf["client_key_file"]):
        assert mount_at(c, f) == {"name": "postgres-tls", "mountPath": PG_TLS_DIR, "readOnly": True}
    assert volume(docs, "postgres-tls")["projected"] == {
        "defaultMode": 0o440,
        "sources": [
            {"configMap": {"name": "database-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"secret": {"name": "signet-db-client",
                        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}},
        ],
    }
    text = notes(values)
    assert 'ConfigMap "database-ca"' in text and 'Secret "signet-db-client" (tls.crt, tls.key' in text
    # signet takes what the chart renders (the files are read by serve only).
    result = check_config(one(docs, "ConfigMap")["data"]["signet.toml"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_without_a_ca_plaintext_and_notes_say_so():
    docs = render(merged(PKCS11, POSTGRES))
    assert "ca_file" not in signet_toml(docs)["postgres"]
    assert "postgres-tls" not in {v["name"] for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert not [m for m in signet_container(docs)["volumeMounts"] if m["mountPath"] == PG_TLS_DIR]
    assert "The connection to PostgreSQL is plaintext" in notes(merged(PKCS11, POSTGRES))
    assert "The connection to PostgreSQL is plaintext" not in notes(hsm_values())


# --- the replay store --------------------------------------------------------------


def test_replay_store_in_postgres():
    docs = render(merged(PKCS11, merged(POSTGRES, {"replicaCount": 2, "postgres": {"replayStore": True},
                                                   "profiles": [{"name": "p", "key": "k"}]})))
    conf = signet_toml(docs)
    assert conf["http"]["replay_store"] == "postgres"
    assert "redis_url_env" not in conf["http"]
    assert "SIGNET_REDIS_URL" not in env_of(signet_container(docs))
    text = notes(merged(PKCS11, merged(POSTGRES, {"replicaCount": 2, "postgres": {"replayStore": True},
                                                  "profiles": [{"name": "p", "key": "k"}]})))
    # No warning but the bootstrap admin's, which the defaults turn on.
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert warnings and all(w.startswith("WARNING: the bootstrap admin is on") for w in warnings)


def test_notes_warn_about_a_per_pod_replay_store():
    values = merged(PKCS11, merged(POSTGRES, {"replicaCount": 2, "profiles": [{"name": "p", "key": "k"}]}))
    text = notes(values)
    assert "in-memory replay store" in text and "postgres.replayStore" in text


# --- NOTES.txt ------------------------------------------------------------------


def test_notes_name_the_registry_and_its_secret(hsm_docs):
    text = notes(yaml.safe_load((CHART / "examples" / "hsm-redis.yaml").read_text()))
    assert 'Secret "signet-postgres" (url: the PostgreSQL URL)' in text
    assert 'Key registry: in PostgreSQL, schema "signet".' in text
    assert "WARNING" not in text
    assert "Key registry: on the HSM token." in notes(PKCS11)


def test_notes_warn_when_several_pods_keep_the_token():
    text = notes(merged(PKCS11, {"replicaCount": 2, "registry": {"store": "token", "allowTokenWithReplicas": True}}))
    assert "WARNING: several replicas with the key registry on the token" in text
    assert "Moving the registry to PostgreSQL" in text


# --- refusals ------------------------------------------------------------------


SEVERAL_PODS = [
    ("two pods", merged(PKCS11, {"replicaCount": 2})),
    ("autoscaling", merged(PKCS11, {"autoscaling": {"enabled": True}})),
    ("explicit token, not opted in", merged(PKCS11, {"replicaCount": 3, "registry": {"store": "token"}})),
    ("opted in, but store left automatic", merged(PKCS11, {"replicaCount": 2, "registry": {"allowTokenWithReplicas": True}})),
]


@pytest.mark.parametrize("values", [v for _, v in SEVERAL_PODS], ids=[n for n, _ in SEVERAL_PODS])
def test_several_pods_without_a_database_are_refused(values):
    with pytest.raises(helm.HelmRenderError) as e:
        render(values)
    message = str(e.value)
    assert SEVERAL_PODS_NEED_POSTGRES in message
    # It says what to do: the Secret, the runbook, or the explicit opt-in.
    for hint in ("postgres.existingSecret", "Moving the registry to PostgreSQL",
                 "registry.store: token and registry.allowTokenWithReplicas: true"):
        assert hint in message


def test_the_memory_backend_is_still_refused_first():
    """Several pods on the memory backend fail for the backend, not for the
    database (which would not help)."""
    with pytest.raises(helm.HelmRenderError) as e:
        render(merged(POSTGRES, {"replicaCount": 2}))
    assert MEMORY_SINGLE_POD in str(e.value)


BAD_FOR_TEMPLATES = [
    ("postgres store without a database", merged(PKCS11, {"registry": {"store": "postgres"}}),
     'registry.store "postgres" needs postgres.existingSecret'),
    ("postgres store on the memory backend", merged(POSTGRES, {"registry": {"store": "postgres"}}),
     'registry.store "postgres" needs backend.type "pkcs11"'),
    ("replay store without a database", {"postgres": {"replayStore": True}}, "postgres.replayStore needs postgres.existingSecret"),
    ("two replay stores", merged(POSTGRES, {"postgres": {"replayStore": True}, "redis": {"enabled": True, "existingSecret": "r"}}),
     "postgres.replayStore and redis.enabled"),
    ("two CA bundles", pg_tls(caSecret="a", caConfigMap="b"), "postgres.tls: set at most one of caSecret and caConfigMap"),
    ("a CA without a database", merged(PKCS11, {"postgres": {"tls": {"caSecret": "a"}}}),
     "postgres.tls needs postgres.existingSecret"),
    ("a client certificate without a CA", pg_tls(clientSecret="c"),
     "postgres.tls.clientSecret needs postgres.tls.caSecret or postgres.tls.caConfigMap"),
]


@pytest.mark.parametrize("values,message", [(v, m) for _, v, m in BAD_FOR_TEMPLATES], ids=[n for n, _, _ in BAD_FOR_TEMPLATES])
def test_template_checks_refuse(values, message):
    with pytest.raises(helm.HelmRenderError) as e:
        render(values)
    assert message in str(e.value)


BAD_FOR_SCHEMA = [
    ("unknown store", {"registry": {"store": "redis"}}),
    ("schema pg_", {"postgres": {"schema": "pg_signet"}}),
    ("schema upper case", {"postgres": {"schema": "Signet"}}),
    ("schema starting with a digit", {"postgres": {"schema": "1signet"}}),
    ("schema too long", {"postgres": {"schema": "s" * 64}}),
    ("schema empty", {"postgres": {"schema": ""}}),
    ("schema with a quote", {"postgres": {"schema": 'a"b'}}),
    ("pool of 0", {"postgres": {"poolSize": 0}}),
    ("pool of 257", {"postgres": {"poolSize": 257}}),
    ("empty secret key", {"postgres": {"existingSecretKey": ""}}),
    ("staleness without unit", {"registry": {"maxStaleness": "60"}}),
    ("unknown registry key", {"registry": {"maxStaleneess": "60s"}}),
    ("unknown postgres egress key", {"networkPolicy": {"egress": {"postgres": {"cidrs": []}}}}),
    ("unknown postgres.tls key", {"postgres": {"tls": {"sslmode": "require"}}}),
    ("empty CA key", {"postgres": {"tls": {"caKey": ""}}}),
]


@pytest.mark.parametrize("values", [v for _, v in BAD_FOR_SCHEMA], ids=[n for n, _ in BAD_FOR_SCHEMA])
def test_values_schema_refuses(values):
    with pytest.raises(helm.HelmValuesError):
        render(values)


def test_longest_schema_name_is_accepted(tmp_path):
    docs = render(merged(PKCS11, merged(POSTGRES, {"postgres": {"schema": "_" + "s" * 62}})))
    result = check_config(one(docs, "ConfigMap")["data"]["signet.toml"], tmp_path)
    assert result.returncode == 0, result.stderr
