{{/*
The bootstrap token Secret as it is in the cluster, as JSON ("{}" when it
does not exist, and always under `helm template`, `helm lint` and a
client-side --dry-run, where Helm's lookup reaches no cluster). The one
call to the cluster in the chart, alone in this file so that the tests can
stand in for a cluster by replacing it.
*/}}
{{- define "signet.bootstrapSecretInCluster" -}}
{{- lookup "v1" "Secret" .Release.Namespace (include "signet.bootstrapSecretName" .) | toJson -}}
{{- end -}}
