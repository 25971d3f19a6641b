{{/* Chart name. */}}
{{- define "spooky.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: RELEASE-spooky, or RELEASE when it already contains the chart name. */}}
{{- define "spooky.fullname" -}}
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

{{- define "spooky.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spooky.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spooky.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "spooky.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: ingress-controller
{{- end }}

{{- define "spooky.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "spooky.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the default certificate. */}}
{{- define "spooky.tlsSecretName" -}}
{{- default (printf "%s-default-tls" (include "spooky.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/* The controller name Spooky's ingress controller answers to in IngressClass spec.controller. */}}
{{- define "spooky.controllerName" -}}
spooky.dev/ingress-controller
{{- end }}

{{/* The lowest port the container listens on (for net.ipv4.ip_unprivileged_port_start). */}}
{{- define "spooky.lowestPort" -}}
{{- $ports := list (int .Values.containerPorts.https) (int .Values.containerPorts.admin) }}
{{- if .Values.httpRedirect.enabled }}{{ $ports = append $ports (int .Values.containerPorts.http) }}{{ end }}
{{- $min := 65536 }}
{{- range $ports }}{{ if lt . $min }}{{ $min = . }}{{ end }}{{ end }}
{{- $min }}
{{- end }}

{{/* Seconds the kubelet waits after the preStop hook started before it kills the container. */}}
{{- define "spooky.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add (int .Values.preStopSleepSeconds) (div (add (int .Values.config.drainTimeoutMs) 999) 1000) 10 }}
{{- end }}
{{- end }}

{{/* What the controller reads in a namespace, and the one thing it writes (Ingress status). */}}
{{- define "spooky.namespacedRules" -}}
- apiGroups: [""]
  resources: [services, secrets]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses/status]
  verbs: [update, patch]
{{- end }}
