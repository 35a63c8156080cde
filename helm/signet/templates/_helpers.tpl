{{/*
Names and labels.
*/}}
{{- define "signet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "signet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "signet.labels" -}}
helm.sh/chart: {{ include "signet.chart" . }}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "signet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "signet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "signet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Secret names: the user's existing Secret, or the one this chart creates.
*/}}
{{- define "signet.pinSecretName" -}}
{{- default (printf "%s-pin" (include "signet.fullname" .)) .Values.pkcs11.existingSecret }}
{{- end }}

{{- define "signet.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "signet.fullname" .)) .Values.auth.tokensExistingSecret }}
{{- end }}

{{- define "signet.redisSecretName" -}}
{{- default (printf "%s-redis" (include "signet.fullname" .)) .Values.redis.existingSecret }}
{{- end }}

{{/*
Where the key registry is kept: registry.store, or when it is empty,
"postgres" for a PKCS#11 backend with a database (postgres.existingSecret),
else "token". The automatic choice follows the database, not the number of
pods: scaling must never switch stores, since the other store does not hold
the records.
*/}}
{{- define "signet.registryStore" -}}
{{- if .Values.registry.store -}}
{{- .Values.registry.store -}}
{{- else if and (eq .Values.backend.type "pkcs11") .Values.postgres.existingSecret -}}
postgres
{{- else -}}
token
{{- end -}}
{{- end }}

{{/*
"true" when more than one pod may run (a fixed count above 1, or an HPA).
*/}}
{{- define "signet.severalPods" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end -}}
{{- end }}

{{/*
The replay store: "redis", "postgres" or "memory".
*/}}
{{- define "signet.replayStore" -}}
{{- if .Values.redis.enabled -}}
redis
{{- else if .Values.postgres.replayStore -}}
postgres
{{- else -}}
memory
{{- end -}}
{{- end }}

{{/*
Fixed paths and ports (docs: helm/signet/README.md).
*/}}
{{/*
Whether TLS to the database is on: a CA bundle is named.
*/}}
{{- define "signet.postgresTls" -}}
{{- if and .Values.postgres.existingSecret (or .Values.postgres.tls.caSecret .Values.postgres.tls.caConfigMap) }}true{{- end }}
{{- end }}

{{- define "signet.grpcPort" -}}50051{{- end }}
{{- define "signet.adminPort" -}}9090{{- end }}

{{/*
A value as TOML: strings, numbers and booleans through toJson (JSON's string
escapes are a subset of TOML's basic-string escapes), lists as TOML arrays,
maps as inline tables. Nulls cannot be written in TOML and fail the render.
*/}}
{{- define "signet.tomlValue" -}}
{{- $v := . -}}
{{- if kindIs "map" $v -}}
{ {{- $first := true -}}
{{- range $k, $x := $v -}}
{{- if not $first }}, {{ end -}}
{{- $first = false -}}
{{- include "signet.tomlKey" $k }} = {{ include "signet.tomlValue" $x -}}
{{- end -}} }
{{- else if kindIs "slice" $v -}}
[{{- range $i, $x := $v -}}
{{- if $i }}, {{ end -}}
{{- include "signet.tomlValue" $x -}}
{{- end -}}]
{{- else if kindIs "invalid" $v -}}
{{- fail "signet.toml: a null value cannot be written to TOML; remove the key instead" -}}
{{- else if kindIs "float64" $v -}}
{{- if eq $v (floor $v) -}}{{- int64 $v -}}{{- else -}}{{- toJson $v -}}{{- end -}}
{{- else -}}
{{- toJson $v -}}
{{- end -}}
{{- end -}}

{{- define "signet.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/*
The key = value lines of a map, one per line, "name" first.
*/}}
{{- define "signet.tomlLines" -}}
{{- if hasKey . "name" }}
name = {{ include "signet.tomlValue" .name }}
{{- end }}
{{- range $k, $v := omit . "name" }}
{{ include "signet.tomlKey" $k }} = {{ include "signet.tomlValue" $v }}
{{- end }}
{{- end -}}

{{/*
Whole seconds (rounded up) of a duration written as a number and one unit:
ms, s, m or h (values.schema.json admits only that form).
*/}}
{{- define "signet.durationSeconds" -}}
{{- $d := toString . -}}
{{- if not (regexMatch "^[0-9]+(ms|s|m|h)$" $d) -}}
{{- fail (printf "%q is not a duration of the form 5s, 500ms, 2m or 1h" $d) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+" $d | int64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $d) $d -}}
{{- if eq $unit "ms" -}}{{ div (add $n 999) 1000 }}
{{- else if eq $unit "s" -}}{{ $n }}
{{- else if eq $unit "m" -}}{{ mul $n 60 }}
{{- else -}}{{ mul $n 3600 }}
{{- end -}}
{{- end -}}

{{/*
The PodDisruptionBudget must let at least one pod be evicted at the smallest
replica count (replicaCount, or autoscaling.minReplicas), or node drains
hang. Percentages are rounded up, as Kubernetes does.
*/}}
{{- define "signet.validatePdb" -}}
{{- $pdb := .Values.podDisruptionBudget -}}
{{- if $pdb.enabled -}}
{{- $n := int (ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled) -}}
{{- $allowed := 0 -}}
{{- if not (kindIs "invalid" $pdb.minAvailable) -}}
{{- $min := 0 -}}
{{- $v := toString $pdb.minAvailable -}}
{{- if hasSuffix "%" $v -}}
{{- $min = div (add (mul (int (trimSuffix "%" $v)) $n) 99) 100 -}}
{{- else -}}
{{- $min = int $v -}}
{{- end -}}
{{- $allowed = sub $n $min -}}
{{- else -}}
{{- $v := toString $pdb.maxUnavailable -}}
{{- if hasSuffix "%" $v -}}
{{- $allowed = div (add (mul (int (trimSuffix "%" $v)) $n) 99) 100 -}}
{{- else -}}
{{- $allowed = int $v -}}
{{- end -}}
{{- end -}}
{{- if lt (int $allowed) 1 -}}
{{- fail (printf "podDisruptionBudget allows no eviction with %d replica(s) (replicaCount, or autoscaling.minReplicas): node drains would hang. Use maxUnavailable: 1, a lower minAvailable, or more replicas" $n) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checks the values cannot express in values.schema.json. Included by the
ConfigMap, so every render runs them.
*/}}
{{- define "signet.validate" -}}
{{- if not .Values.server.tls.existingSecret }}
{{- fail "server.tls.existingSecret is required: signet refuses to listen on 0.0.0.0 without TLS (create a Secret with tls.crt and tls.key)" }}
{{- end }}
{{- include "signet.validateAuth" . }}
{{- if and (eq .Values.backend.type "memory") (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "backend.type \"memory\" runs a single pod only: keys live in each pod's memory, so every replica would have different keys. Set replicaCount: 1 and autoscaling.enabled: false, or use backend.type \"pkcs11\" (an HSM shared by all replicas)" }}
{{- end }}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- $drain := int (include "signet.durationSeconds" .Values.server.drainDelay) }}
{{- $needed := add $drain (int .Values.server.shutdownTimeoutSeconds) }}
{{- if le $grace $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed server.drainDelay + server.shutdownTimeoutSeconds (%d s)" $grace $needed) }}
{{- end }}
{{- include "signet.validatePdb" . }}
{{- if eq .Values.backend.type "pkcs11" }}
{{- if not .Values.pkcs11.modulePath }}
{{- fail "pkcs11.modulePath is required with backend.type pkcs11" }}
{{- end }}
{{- if eq (empty .Values.pkcs11.tokenLabel) (empty .Values.pkcs11.tokenSerial) }}
{{- fail "pkcs11: set exactly one of tokenLabel and tokenSerial" }}
{{- end }}
{{- if eq (empty .Values.pkcs11.pin) (empty .Values.pkcs11.existingSecret) }}
{{- fail "pkcs11: set exactly one of existingSecret (preferred) and pin" }}
{{- end }}
{{- if and .Values.pkcs11.destroyOrphans (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "pkcs11.destroyOrphans must be false when several pods share the token (autoscaling or replicaCount > 1)" }}
{{- end }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- if eq (empty .Values.redis.url) (empty .Values.redis.existingSecret) }}
{{- fail "redis: set exactly one of existingSecret (preferred) and url" }}
{{- end }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
{{- include "signet.validateDatabase" . }}
{{- end }}

{{/*
The key registry and the database (docs/operations.md, "The multi-replica
model"): several pods agree on keys only through PostgreSQL.
*/}}
{{- define "signet.validateDatabase" -}}
{{- $store := include "signet.registryStore" . -}}
{{- $db := not (empty .Values.postgres.existingSecret) -}}
{{- if eq $store "postgres" }}
{{- if ne .Values.backend.type "pkcs11" }}
{{- fail "registry.store \"postgres\" needs backend.type \"pkcs11\": the keys every pod opens must be on a shared HSM (in-memory keys die with their pod)" }}
{{- end }}
{{- if not $db }}
{{- fail "registry.store \"postgres\" needs postgres.existingSecret: a Secret holding the database URL (postgres://user:password@host:port/database) under postgres.existingSecretKey" }}
{{- end }}
{{- end }}
{{- if and .Values.postgres.replayStore (not $db) }}
{{- fail "postgres.replayStore needs postgres.existingSecret: a Secret holding the database URL" }}
{{- end }}
{{- $pgTls := .Values.postgres.tls }}
{{- if and $pgTls.caSecret $pgTls.caConfigMap }}
{{- fail "postgres.tls: set at most one of caSecret and caConfigMap (the CA bundle of the database server's certificate)" }}
{{- end }}
{{- if and (or $pgTls.caSecret $pgTls.caConfigMap $pgTls.clientSecret) (not $db) }}
{{- fail "postgres.tls needs postgres.existingSecret: TLS to which database? (a Secret holding the database URL)" }}
{{- end }}
{{- if and $pgTls.clientSecret (not (or $pgTls.caSecret $pgTls.caConfigMap)) }}
{{- fail "postgres.tls.clientSecret needs postgres.tls.caSecret or postgres.tls.caConfigMap: a client certificate is offered over TLS only, and TLS needs the CA bundle of the database server's certificate" }}
{{- end }}
{{- if and .Values.postgres.replayStore .Values.redis.enabled }}
{{- fail "postgres.replayStore and redis.enabled both choose the replay store: set one of them" }}
{{- end }}
{{- if and (include "signet.severalPods" .) (eq $store "token") (not (and (eq .Values.registry.store "token") .Values.registry.allowTokenWithReplicas)) }}
{{- fail "several pods (replicaCount > 1 or autoscaling.enabled) need the key registry in PostgreSQL, or they cannot agree on keys: set postgres.existingSecret to a Secret holding the database URL (registry.store then becomes \"postgres\"; an existing registry is moved first: docs/operations.md, \"Moving the registry to PostgreSQL\"), or run one pod. To keep the registry on the token with several pods anyway (polled every tick, with write races), set registry.store: token and registry.allowTokenWithReplicas: true" }}
{{- end }}
{{- end }}
