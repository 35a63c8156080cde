{{/*
signet.toml, rendered from the values. Holds no secret: the PIN, the Redis
and PostgreSQL URLs and the token hashes come from Secrets (files and a
variable).
*/}}
{{- define "signet.toml" -}}
# Rendered by the {{ include "signet.chart" . }} Helm chart from its values.
# Change the values, not this file.

[server]
listen = "0.0.0.0:{{ include "signet.grpcPort" . }}"
max_message_bytes = {{ include "signet.tomlValue" .Values.server.maxMessageBytes }}
drain_delay = {{ include "signet.tomlValue" .Values.server.drainDelay }}
shutdown_timeout = "{{ int .Values.server.shutdownTimeoutSeconds }}s"
max_concurrent_streams = {{ include "signet.tomlValue" .Values.server.maxConcurrentStreams }}

[server.tls]
cert_file = "/etc/signet/tls/tls.crt"
key_file = "/etc/signet/tls/tls.key"
{{- if .Values.server.tls.clientAuth.enabled }}
client_ca_file = "/etc/signet/tls/ca.crt"
require_client_cert = {{ .Values.server.tls.clientAuth.required }}
{{- end }}
min_version = {{ include "signet.tomlValue" .Values.server.tls.minVersion }}
reload_interval = {{ include "signet.tomlValue" .Values.server.tls.reloadInterval }}
handshake_timeout = {{ include "signet.tomlValue" .Values.server.tls.handshakeTimeout }}

[admin]
listen = "0.0.0.0:{{ include "signet.adminPort" . }}"

[telemetry]
service_name = {{ include "signet.tomlValue" .Values.telemetry.serviceName }}

[backend]
type = {{ include "signet.tomlValue" .Values.backend.type }}
{{- if eq .Values.backend.type "pkcs11" }}
module = {{ include "signet.tomlValue" .Values.pkcs11.modulePath }}
{{- if .Values.pkcs11.tokenLabel }}
token_label = {{ include "signet.tomlValue" .Values.pkcs11.tokenLabel }}
{{- else }}
token_serial = {{ include "signet.tomlValue" .Values.pkcs11.tokenSerial }}
{{- end }}
pin_file = "/etc/signet/pin/pin"
max_sessions = {{ include "signet.tomlValue" .Values.pkcs11.maxSessions }}
session_wait = {{ include "signet.tomlValue" .Values.pkcs11.sessionWait }}
threads = {{ include "signet.tomlValue" .Values.pkcs11.threads }}
destroy_orphans = {{ .Values.pkcs11.destroyOrphans }}
{{- else }}
demo_keys = {{ .Values.backend.demoKeys }}
{{- end }}

[keys]
default_grace_period = {{ include "signet.tomlValue" .Values.keys.defaultGracePeriod }}
destroy_delay = {{ include "signet.tomlValue" .Values.keys.destroyDelay }}
tick_interval = {{ include "signet.tomlValue" .Values.keys.tickInterval }}
max_encryptions_per_version = {{ int64 .Values.keys.maxEncryptionsPerVersion }}
refuse_plaintext_import = {{ .Values.keys.refusePlaintextImport }}

[registry]
store = {{ include "signet.tomlValue" (include "signet.registryStore" .) }}
max_staleness = {{ include "signet.tomlValue" .Values.registry.maxStaleness }}
{{- if .Values.postgres.existingSecret }}

[postgres]
url_file = "/etc/signet/postgres/url"
schema = {{ include "signet.tomlValue" .Values.postgres.schema }}
pool_size = {{ include "signet.tomlValue" .Values.postgres.poolSize }}
connect_timeout = {{ include "signet.tomlValue" .Values.postgres.connectTimeout }}
statement_timeout = {{ include "signet.tomlValue" .Values.postgres.statementTimeout }}
heartbeat = {{ include "signet.tomlValue" .Values.postgres.heartbeat }}
resync_interval = {{ include "signet.tomlValue" .Values.postgres.resyncInterval }}
{{- if include "signet.postgresTls" . }}
ca_file = "/etc/signet/postgres-tls/ca.crt"
{{- if .Values.postgres.tls.clientSecret }}
client_cert_file = "/etc/signet/postgres-tls/tls.crt"
client_key_file = "/etc/signet/postgres-tls/tls.key"
{{- end }}
{{- end }}
{{- end }}

[log]
level = {{ include "signet.tomlValue" .Values.log.level }}
format = {{ include "signet.tomlValue" .Values.log.format }}

[http]
replay_store = {{ include "signet.tomlValue" (include "signet.replayStore" .) }}
{{- if .Values.redis.enabled }}
redis_url_env = "SIGNET_REDIS_URL"
{{- end }}
replay_capacity = {{ include "signet.tomlValue" .Values.http.replayCapacity }}
{{- range .Values.profiles }}

[[profiles]]
{{- include "signet.tomlLines" . }}
{{- end }}

[auth]
trusted_proxies = {{ include "signet.tomlValue" .Values.auth.trustedProxies }}
tokens_file = "/etc/signet/tokens/tokens.toml"
{{- range .Values.auth.identities }}

[[auth.identities]]
{{- include "signet.tomlLines" . }}
{{- end }}
{{- if .Values.auth.bootstrap.enabled }}

# The bootstrap admin (auth.bootstrap): its token is in the Secret
# {{ include "signet.bootstrapSecretName" . }}, its hash in the tokens file.
# Turn it off once your own admins have identities.
[[auth.identities]]
{{- include "signet.tomlLines" (include "signet.bootstrapIdentity" . | fromJson) }}
{{- end }}

[limits]
max_in_flight = {{ include "signet.tomlValue" .Values.limits.maxInFlight }}
max_http_body_bytes = {{ include "signet.tomlValue" .Values.limits.maxHttpBodyBytes }}
max_http_headers = {{ include "signet.tomlValue" .Values.limits.maxHttpHeaders }}
max_http_header_bytes = {{ include "signet.tomlValue" .Values.limits.maxHttpHeaderBytes }}
max_url_bytes = {{ include "signet.tomlValue" .Values.limits.maxUrlBytes }}
max_template_bytes = {{ include "signet.tomlValue" .Values.limits.maxTemplateBytes }}
max_batch_items = {{ include "signet.tomlValue" .Values.limits.maxBatchItems }}
max_batch_bytes = {{ include "signet.tomlValue" .Values.limits.maxBatchBytes }}
{{- range .Values.limits.keys }}

[[limits.keys]]
{{- include "signet.tomlLines" . }}
{{- end }}

[audit]
output = "stdout"
{{- end }}

{{/*
tokens.toml for [auth] tokens_file: SHA-256 hashes of bearer tokens, never
the tokens themselves: the bootstrap admin's (auth.bootstrap) and those of
auth.tokens. Without tokens, an empty list.
*/}}
{{- define "signet.tokensToml" -}}
# Bearer token hashes for signet ([auth] tokens_file), from the Helm values.
{{- $b := .Values.auth.bootstrap }}
{{- if $b.enabled }}

# The bootstrap admin's token, kept in the Secret {{ include "signet.bootstrapSecretName" . }}.
[[tokens]]
identity = {{ include "signet.tomlValue" $b.identity }}
sha256 = {{ include "signet.bootstrapToken" . | sha256sum | quote }}
{{- with $b.expires }}
expires = {{ include "signet.tomlValue" . }}
{{- end }}
{{- end }}
{{- range .Values.auth.tokens }}

[[tokens]]
{{- include "signet.tomlLines" . }}
{{- end }}
{{- if not (or $b.enabled .Values.auth.tokens) }}
tokens = []
{{- end }}
{{ end }}
