{{/* Names: <release>-eddy unless the release is named eddy already. */}}
{{- define "eddy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "eddy.broker" -}}{{ include "eddy.fullname" . }}-broker{{- end -}}
{{- define "eddy.brokerHeadless" -}}{{ include "eddy.fullname" . }}-broker-headless{{- end -}}
{{- define "eddy.controlPlane" -}}{{ include "eddy.fullname" . }}-control-plane{{- end -}}

{{- define "eddy.secret" -}}
{{- if .Values.secrets.create -}}{{ include "eddy.fullname" . }}{{- else -}}{{ required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret }}{{- end -}}
{{- end -}}

{{- define "eddy.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "eddy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* eddy.selector: the labels selecting one component's pods. */}}
{{- define "eddy.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "eddy.publicURL" -}}
{{- .Values.controlPlane.publicURL | default (printf "http://%s.%s.svc:%v" (include "eddy.controlPlane" .) .Release.Namespace .Values.controlPlane.apiPort) -}}
{{- end -}}

{{/* eddy.databaseEnv: the database URL from the Secret, never in args. */}}
{{- define "eddy.databaseEnv" -}}
- name: EDDY_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "eddy.secret" . }}
      key: database-url
{{- end -}}

{{/* eddy.probes: liveness and readiness on the metrics port. */}}
{{- define "eddy.probes" -}}
livenessProbe:
  httpGet:
    path: /livez
    port: metrics
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
startupProbe:
  httpGet:
    path: /livez
    port: metrics
  periodSeconds: 2
  failureThreshold: 60
{{- end -}}

{{/* eddy.objectStoreEnv: the S3 settings; credentials from the Secret if given. */}}
{{- define "eddy.objectStoreEnv" -}}
- name: EDDY_OBJSTORE
  value: s3
- name: EDDY_S3_BUCKET
  value: {{ required "objectStore.bucket is required" .Values.objectStore.bucket | quote }}
{{- with .Values.objectStore.region }}
- name: EDDY_S3_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.objectStore.endpoint }}
- name: EDDY_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: EDDY_S3_PATH_STYLE
  value: {{ .Values.objectStore.pathStyle | quote }}
- name: EDDY_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "eddy.secret" . }}
      key: s3-access-key
      optional: true
- name: EDDY_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "eddy.secret" . }}
      key: s3-secret-key
      optional: true
{{- end -}}
