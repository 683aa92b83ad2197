{{/* The chart's name, or nameOverride. */}}
{{- define "botsecret-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for every object it creates: the release name alone when it already
contains the chart's name, else "<release>-<chart>". Cluster-scoped objects carry it too, so two
releases never collide.
*/}}
{{- define "botsecret-operator.fullname" -}}
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

{{/* name-version for the helm.sh/chart label. */}}
{{- define "botsecret-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels of every object. */}}
{{- define "botsecret-operator.labels" -}}
helm.sh/chart: {{ include "botsecret-operator.chart" . }}
{{ include "botsecret-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the operator's Pods. */}}
{{- define "botsecret-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "botsecret-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount: serviceAccount.name, else the full name (whether or not the chart creates it). */}}
{{- define "botsecret-operator.serviceAccountName" -}}
{{- default (include "botsecret-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}
