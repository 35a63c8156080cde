"""The signet.toml the Helm chart renders (see helm_helpers.py): the real
binary accepts it (`signet check-config`, $SIGNET_BIN, see
conftest.signet_bin: it checks the file without reading the TLS, PIN or
tokens files it names); a change rolls the pods; TLS, identities and the
admin listener; every file it names is mounted; strings survive quoting;
the HSM example's PKCS#11 module (mounted read-only), Redis URL (from a
secretKeyRef) and telemetry."""

from __future__ import annotations

from helm_helpers import (
    ADMIN_PORT,
    TOKEN_SHA,
    assert_config_accepted,
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


# --- the real binary ---------------------------------------------------------


def test_signet_check_config_accepts_rendered_config(case, tmp_path):
    """The rendered signet.toml passes `signet check-config` (exit 0)."""
    _, docs = case
    assert_config_accepted(docs, tmp_path)


def test_config_checksum_rolls_pods():
    def annotations(values):
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]

    # Without a cluster every render draws a new bootstrap token, so the
    # secrets checksum is compared with the bootstrap admin off (a render
    # against a cluster that keeps the token is stable:
    # test_helm_bootstrap.py).
    base_values = {"auth": {"bootstrap": {"enabled": False}, "identities": [
        {"name": "a", "grants": [{"operations": ["sign"], "keys": ["*"]}]}]}}
    base = annotations(base_values)
    assert base == annotations(base_values)
    assert annotations(None)["checksum/config"] == annotations(None)["checksum/config"]
    assert annotations(merged(base_values, {"log": {"level": "debug"}}))["checksum/config"] != base["checksum/config"]
    tokens = merged(base_values, {"auth": {"tokens": [{"identity": "a", "sha256": TOKEN_SHA}]}})
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
        # The only identity is the bootstrap admin (test_helm_bootstrap.py).
        assert [i["name"] for i in ids] == ["bootstrap-admin"]
        assert ids[0]["grants"] == [{"operations": ["admin.*"], "keys": ["*"]}]
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
    if "postgres" in conf:
        files += [conf["postgres"][k] for k in ("url_file", "ca_file", "client_cert_file", "client_key_file")
                  if k in conf["postgres"]]
    for f in files:
        m = mount_at(c, f)
        assert m["readOnly"] is True
        vol = volume(docs, m["name"])
        rel = f[len(m["mountPath"].rstrip("/")) + 1:]
        if "secret" in vol:
            assert rel in [i["path"] for i in vol["secret"]["items"]], f
        elif "projected" in vol:
            paths = [i["path"] for s in vol["projected"]["sources"]
                     for i in (s.get("secret") or s["configMap"])["items"]]
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


def test_an_rfc9421_profile_renders_as_its_table_and_signet_accepts_it(tmp_path):
    """scheme and [profiles.rfc9421] (docs/presets/rfc9421.md) pass through
    the chart: component identifiers keep their quotes, the key id table its
    keys, and the binary accepts the result."""
    rfc = {
        "components": ["@method", "@target-uri", '"@query-param";name="id"', "content-digest"],
        "keyids": {"bank-key-2026": "bank-pub:v1"},
        "send_alg": True,
    }
    values = {"profiles": [{"name": "psd2-in", "scheme": "rfc9421", "verify_key": "bank-pub", "rfc9421": rfc}]}
    docs = render(values)
    conf = signet_toml(docs)
    assert conf["profiles"][0]["scheme"] == "rfc9421"
    assert conf["profiles"][0]["rfc9421"] == rfc
    assert_config_accepted(docs, tmp_path)


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


def test_keys_cross_the_wire_only_wrapped_by_default(case):
    """The chart refuses secret key material in the clear (docs/byok.md)
    and keeps the NIST bound on encryptions, in a form the binary reads."""
    _, docs = case
    keys = signet_toml(docs)["keys"]
    assert keys["refuse_plaintext_import"] is True
    assert keys["max_encryptions_per_version"] == 2**32
    off = signet_toml(render({"keys": {"refusePlaintextImport": False, "maxEncryptionsPerVersion": 1000}}))["keys"]
    assert off["refuse_plaintext_import"] is False and off["max_encryptions_per_version"] == 1000
