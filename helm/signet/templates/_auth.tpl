{{/*
The bootstrap admin (auth.bootstrap): an identity with admin grants whose
bearer token the chart makes and keeps in a Secret of its own, so that a
fresh install can be called at once. Only the token's SHA-256 goes into the
tokens file; the token is in that Secret only, for the operator.
*/}}
{{- define "signet.bootstrapSecretName" -}}
{{- printf "%s-bootstrap-token" (include "signet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The bootstrap token; called with the root context. The token already in the
cluster's Secret when it has signet's form (so `helm upgrade` keeps it, and
a token from `signet token new` put there by hand is kept too), else a new
one. Drawn once per render and remembered on the root context, so that the
Secret, the tokens file and the checksum annotation all see the same token.
sprig's randAlphaNum reads crypto/rand: 43 characters of 62 carry 256 bits,
the strength and shape of `signet token new` (sgt_ and 43 base64url
characters). signet hashes the whole string (SHA-256, hex).
*/}}
{{- define "signet.bootstrapToken" -}}
{{- if not (hasKey . "signetBootstrapToken") -}}
{{- $found := include "signet.bootstrapSecretInCluster" . | fromJson -}}
{{- $token := "" -}}
{{- with dig "data" "token" "" $found -}}
{{- $token = b64dec . -}}
{{- end -}}
{{- if not (regexMatch "^sgt_[A-Za-z0-9_-]{43}$" $token) -}}
{{- $token = printf "sgt_%s" (randAlphaNum 43) -}}
{{- end -}}
{{- $_ := set . "signetBootstrapToken" $token -}}
{{- end -}}
{{- index . "signetBootstrapToken" -}}
{{- end -}}

{{/*
The bootstrap identity as a [[auth.identities]] table (a map for
signet.tomlLines).
*/}}
{{- define "signet.bootstrapIdentity" -}}
{{- $b := .Values.auth.bootstrap -}}
{{- dict "name" $b.identity "allow_from" $b.allowFrom "grants" $b.grants | toJson -}}
{{- end -}}

{{/*
Whether an RFC 3339 time is still ahead (an unreadable one counts as ahead:
signet refuses it at start-up with its own message).
*/}}
{{- define "signet.notExpired" -}}
{{- $t := toDate "2006-01-02T15:04:05Z07:00" . -}}
{{- if or $t.IsZero ($t.After now) }}true{{ end -}}
{{- end -}}

{{/*
How a caller can authenticate to the rendered configuration, or "" when
nobody can: a bearer token (the bootstrap admin's, one of auth.tokens for a
configured identity and not expired, or an existing tokens Secret, whose
contents the chart cannot see), or a client certificate (client auth on and
at least one identity to name). NOTES.txt warns on "".
*/}}
{{- define "signet.wayIn" -}}
{{- $auth := .Values.auth -}}
{{- $names := list -}}
{{- range $auth.identities }}{{ $names = append $names .name }}{{ end -}}
{{- $ways := list -}}
{{- if $auth.bootstrap.enabled -}}
{{- if or (not $auth.bootstrap.expires) (include "signet.notExpired" $auth.bootstrap.expires) -}}
{{- $ways = append $ways "the bootstrap token" -}}
{{- end -}}
{{- end -}}
{{- if $auth.tokensExistingSecret -}}
{{- $ways = append $ways (printf "tokens in the Secret %q" $auth.tokensExistingSecret) -}}
{{- end -}}
{{- range $auth.tokens -}}
{{- if and (has .identity $names) (or (not .expires) (include "signet.notExpired" .expires)) -}}
{{- $ways = append $ways "auth.tokens" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.server.tls.clientAuth.enabled $names -}}
{{- $ways = append $ways "client certificates" -}}
{{- end -}}
{{- $ways | uniq | join ", " -}}
{{- end -}}

{{/*
The checks of auth.*: at least one identity, the bootstrap admin's name
free and its token in the chart's tokens file, and every token for an
identity (signet refuses a token for an unknown identity when it reads the
tokens file, which `signet check-config` does not).
*/}}
{{- define "signet.validateAuth" -}}
{{- $auth := .Values.auth -}}
{{- $b := $auth.bootstrap -}}
{{- if not (or $auth.identities $b.enabled) }}
{{- fail "auth.identities needs at least one identity (or auth.bootstrap.enabled: true): signet refuses to listen on 0.0.0.0 without [[auth.identities]]" }}
{{- end }}
{{- $names := list -}}
{{- range $auth.identities }}{{ $names = append $names .name }}{{ end -}}
{{- if $b.enabled }}
{{- if has $b.identity $names }}
{{- fail (printf "auth.bootstrap.identity %q is also in auth.identities: name the bootstrap admin differently, or set auth.bootstrap.enabled: false" $b.identity) }}
{{- end }}
{{- if $auth.tokensExistingSecret }}
{{- fail "auth.bootstrap.enabled needs the tokens file the chart writes, but auth.tokensExistingSecret names your own: set auth.bootstrap.enabled: false (and put your admin's token hash, from `signet token new`, in that Secret)" }}
{{- end }}
{{- $names = append $names $b.identity -}}
{{- end }}
{{- range $i, $t := $auth.tokens }}
{{- if not (has $t.identity $names) }}
{{- fail (printf "auth.tokens[%d].identity %q is not an identity of auth.identities%s: signet would refuse the tokens file at start-up" $i $t.identity (ternary " or auth.bootstrap" "" $b.enabled)) }}
{{- end }}
{{- end }}
{{- end -}}
