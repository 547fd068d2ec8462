"""Builders for Flux objects (and the odd core object) as tests want them: short to call,
complete enough that the real CRD schemas accept them."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

SOURCE_V1 = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_V1 = "kustomize.toolkit.fluxcd.io/v1"
HELM_V2 = "helm.toolkit.fluxcd.io/v2"
EXTERNAL_SECRETS_V1 = "external-secrets.io/v1"


def _meta(name: str, namespace: str, labels: dict[str, str] | None, annotations: dict[str, str] | None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def git_repository(
    name: str,
    namespace: str,
    *,
    url: str = "ssh://git@github.com/example/home-ops",
    branch: str = "main",
    suspend: bool = False,
    labels: dict[str, str] | None = None,
    api_version: str = SOURCE_V1,
) -> Obj:
    spec: Obj = {"interval": "1h", "url": url, "ref": {"branch": branch}}
    if suspend:
        spec["suspend"] = True
    return {
        "apiVersion": api_version,
        "kind": "GitRepository",
        "metadata": _meta(name, namespace, labels, None),
        "spec": spec,
    }


def oci_repository(
    name: str,
    namespace: str,
    *,
    url: str = "oci://ghcr.io/example/manifests",
    tag: str = "1.0.0",
    labels: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {"interval": "1h", "url": url, "ref": {"tag": tag}}
    return {
        "apiVersion": SOURCE_V1,
        "kind": "OCIRepository",
        "metadata": _meta(name, namespace, labels, None),
        "spec": spec,
    }


def helm_repository(
    name: str,
    namespace: str,
    *,
    url: str = "https://charts.example.com",
    oci: bool = False,
    labels: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {"interval": "1h", "url": url}
    if oci:
        spec["type"] = "oci"
        spec["url"] = url if url.startswith("oci://") else "oci://ghcr.io/example/charts"
    return {
        "apiVersion": SOURCE_V1,
        "kind": "HelmRepository",
        "metadata": _meta(name, namespace, labels, None),
        "spec": spec,
    }


def kustomization(
    name: str,
    namespace: str,
    *,
    source: tuple[str, str] = ("GitRepository", "flux-system"),
    source_namespace: str | None = None,
    path: str = "./",
    depends_on: list[str] | None = None,
    suspend: bool = False,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    api_version: str = KUSTOMIZE_V1,
) -> Obj:
    """``depends_on`` entries are ``name`` or ``namespace/name``."""
    source_ref: Obj = {"kind": source[0], "name": source[1]}
    if source_namespace:
        source_ref["namespace"] = source_namespace
    spec: Obj = {"interval": "1h", "path": path, "prune": True, "sourceRef": source_ref}
    if depends_on:
        spec["dependsOn"] = [
            {"name": d.split("/", 1)[1], "namespace": d.split("/", 1)[0]} if "/" in d else {"name": d}
            for d in depends_on
        ]
    if suspend:
        spec["suspend"] = True
    return {
        "apiVersion": api_version,
        "kind": "Kustomization",
        "metadata": _meta(name, namespace, labels, annotations),
        "spec": spec,
    }


def helm_release(
    name: str,
    namespace: str,
    *,
    chart: str = "app-template",
    version: str = "3.7.3",
    repository: str = "bjw-s",
    repository_namespace: str | None = None,
    chart_ref: str | None = None,
    depends_on: list[str] | None = None,
    suspend: bool = False,
    labels: dict[str, str] | None = None,
    values: Obj | None = None,
    api_version: str = HELM_V2,
) -> Obj:
    spec: Obj = {"interval": "1h"}
    if chart_ref:
        spec["chartRef"] = {"kind": "OCIRepository", "name": chart_ref}
    else:
        source: Obj = {"kind": "HelmRepository", "name": repository}
        if repository_namespace:
            source["namespace"] = repository_namespace
        spec["chart"] = {"spec": {"chart": chart, "version": version, "sourceRef": source}}
    if depends_on:
        spec["dependsOn"] = [{"name": d} for d in depends_on]
    if suspend:
        spec["suspend"] = True
    if values:
        spec["values"] = values
    return {
        "apiVersion": api_version,
        "kind": "HelmRelease",
        "metadata": _meta(name, namespace, labels, None),
        "spec": spec,
    }


def external_secret(
    name: str,
    namespace: str,
    *,
    store: str = "onepassword",
    key: str = "app",
    labels: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": store},
        "target": {"name": f"{name}-secret"},
        "dataFrom": [{"extract": {"key": key}}],
    }
    return {
        "apiVersion": EXTERNAL_SECRETS_V1,
        "kind": "ExternalSecret",
        "metadata": _meta(name, namespace, labels, None),
        "spec": spec,
    }


def flux_controller_deployment(
    name: str,
    namespace: str = "flux-system",
    *,
    version: str = "v2.6.4",
    image_tag: str = "v1.9.6",
    replicas: int = 1,
) -> Obj:
    """A Flux controller Deployment as `flux install` labels it (no Pods ever run here)."""
    labels = {
        "app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/component": name,
        "app.kubernetes.io/instance": namespace,
        "app.kubernetes.io/version": version,
        "control-plane": "controller",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "manager", "image": f"ghcr.io/fluxcd/{name}:{image_tag}"}]},
            },
        },
    }


def deployment_ready_status(deployment: Obj, ready: bool = True) -> Obj:
    replicas = deployment["spec"].get("replicas", 1)
    ready_count = replicas if ready else 0
    return {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready_count,
        "availableReplicas": ready_count,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ready else "False",
                "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if ready
                else "Deployment does not have minimum availability.",
            }
        ],
    }
