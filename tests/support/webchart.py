"""A small Helm chart for the HelmRelease diff tests, as files: a Deployment (``replicas``,
``image``), a Secret (``password``) and, in the version a test bumps to, a Service."""

from __future__ import annotations

CHART_YAML = "apiVersion: v2\nname: web\nversion: {version}\nappVersion: '{version}'\n"
VALUES = "replicas: 1\nimage: ghcr.io/example/web:1.0.0\npassword: unset\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: web
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: app
          image: "{{ .Values.image }}"
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}
stringData:
  password: {{ .Values.password | quote }}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: web
  ports:
    - port: 80
"""


def web_chart_files(where: str, version: str, *, service: bool) -> dict[str, str]:
    """The chart's files by path under ``where`` (e.g. "charts/web")."""
    files = {
        f"{where}/Chart.yaml": CHART_YAML.format(version=version),
        f"{where}/values.yaml": VALUES,
        f"{where}/templates/deployment.yaml": DEPLOYMENT,
        f"{where}/templates/secret.yaml": SECRET,
    }
    if service:
        files[f"{where}/templates/service.yaml"] = SERVICE
    return files
