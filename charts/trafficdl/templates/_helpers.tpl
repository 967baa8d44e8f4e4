{{/*
Shared names, labels and image references. Kept here so every component's
templates agree on them (the operator's own label keys live in its contract
module; these are only the chart's recommended Kubernetes labels).
*/}}

{{- define "trafficdl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "trafficdl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "trafficdl.operatorName" -}}
{{- printf "%s-operator" (include "trafficdl.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The metrics Service: "<operatorName>-metrics", still a valid 63-char DNS label. */}}
{{- define "trafficdl.metricsServiceName" -}}
{{- printf "%s-metrics" (include "trafficdl.operatorName" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "trafficdl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "trafficdl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trafficdl
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "trafficdl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trafficdl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "trafficdl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "trafficdl.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest]; the tag defaults to appVersion. Call with (list $image $). */}}
{{- define "trafficdl.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- $ref := printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- if $image.digest -}}
{{- $ref = printf "%s@%s" $ref $image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Namespaces watched when not cluster-wide: the list given, else the release namespace. */}}
{{- define "trafficdl.watchNamespaces" -}}
{{- if .Values.operator.watch.namespaces -}}
{{- join "," .Values.operator.watch.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
Arguments of the operator process: watch scope, liveness endpoint, log level.
`--standalone`: one replica (Recreate) needs no kopf peering objects, and so
no RBAC for them.
*/}}
{{- define "trafficdl.operatorArgs" -}}
- --standalone
- --liveness=http://$(POD_IP):{{ .Values.operator.health.port }}/healthz
{{- if .Values.operator.watch.allNamespaces }}
- --all-namespaces
{{- else }}
{{- range (splitList "," (include "trafficdl.watchNamespaces" .)) }}
- --namespace={{ . }}
{{- end }}
{{- end }}
{{- if ne .Values.operator.logLevel "info" }}
- --{{ .Values.operator.logLevel }}
{{- end }}
{{- end -}}
