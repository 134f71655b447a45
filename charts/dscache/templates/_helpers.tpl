{{/* Chart name, overridable. */}}
{{- define "dscache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects (also the kopf peering name). */}}
{{- define "dscache.fullname" -}}
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

{{- define "dscache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dscache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dscache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels; callers add app.kubernetes.io/component. */}}
{{- define "dscache.labels" -}}
helm.sh/chart: {{ include "dscache.chart" . }}
{{ include "dscache.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dscache
{{- end }}

{{- define "dscache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dscache.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dscache.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- /* The init-container image: the `prepare` target of the same Dockerfile and version. */ -}}
{{- define "dscache.prepareImage" -}}
{{- if .Values.image.prepareDigest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.prepareDigest }}
{{- else if .Values.image.digest }}
{{- include "dscache.image" . }}
{{- else }}
{{- $tag := default (printf "%s-prepare" (default .Chart.AppVersion .Values.image.tag)) .Values.image.prepareTag }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "dscache.webhookService" -}}
{{- printf "%s-webhook" (include "dscache.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dscache.certSecret" -}}
{{- printf "%s-webhook-tls" (include "dscache.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Webhooks never apply to kube-system or the release namespace (the operator must start without itself). */}}
{{- define "dscache.webhookNamespaceSelector" -}}
{{- $extra := .Values.webhook.namespaceSelector }}
{{- if $extra.matchLabels }}
matchLabels:
  {{- toYaml $extra.matchLabels | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: [kube-system, {{ .Release.Namespace | quote }}]
{{- with $extra.matchExpressions }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* RBAC rules the operator uses in a namespace it watches (derived from dscache_operator; a test checks). */}}
{{- define "dscache.namespacedRules" -}}
- apiGroups: [dscache.io]
  resources: [datasetcaches]
  verbs: [get, list, watch, patch]
- apiGroups: [dscache.io]
  resources: [datasetcaches/status]
  verbs: [get, patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [create]
# patch: a binding's subjects follow spec.install.serviceAccountName
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* kopf finds the resources it serves by listing and watching CRDs. */}}
{{- define "dscache.crdRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}

{{- define "dscache.peeringRule" -}}
- apiGroups: [kopf.dev]
  resources: [{{ . }}]
  verbs: [get, list, watch, create, patch]
{{- end }}
