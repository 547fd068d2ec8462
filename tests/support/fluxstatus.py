"""Status documents shaped like the ones Flux's controllers write (pure functions).

Shapes follow what the real controllers were seen to write (../shared/DESIGN.md): Ready with
its reason and message and the condition's own observedGeneration, Reconciling
ProgressingWithRetry on a failing Kustomization, lastHandledReconcileAt equal to the token.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

KUSTOMIZATION = "Kustomization"
HELM_RELEASE = "HelmRelease"
EXTERNAL_SECRET = "ExternalSecret"
SOURCE_KINDS = ("GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket")

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
FORCE_SYNC = "force-sync"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fake_sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()  # a made-up Git commit id


def default_revision(obj: Obj) -> str:
    kind = obj["kind"]
    name = obj["metadata"]["name"]
    if kind == "OCIRepository":
        digest = hashlib.sha256(name.encode()).hexdigest()
        tag = ((obj.get("spec") or {}).get("ref") or {}).get("tag", "latest")
        return f"{tag}@sha256:{digest}"
    if kind == "HelmChart":
        return str((obj.get("spec") or {}).get("version") or "1.0.0").lstrip("~^>=<* ") or "1.0.0"
    if kind == "HelmRepository":
        return "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return f"main@sha1:{fake_sha('phoebe-sample')}"


def condition(obj: Obj, type_: str, status: str, reason: str, message: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
        "observedGeneration": obj["metadata"].get("generation", 1),
    }


def requested_token(obj: Obj) -> str | None:
    return ((obj["metadata"].get("annotations")) or {}).get(REQUESTED_AT)


def _handled(obj: Obj, token: str | None) -> Obj:
    status: Obj = {}
    if token is not None:
        status["lastHandledReconcileAt"] = token
    annotations = obj["metadata"].get("annotations") or {}
    if obj["kind"] == HELM_RELEASE and token is not None:
        if annotations.get(FORCE_AT) == token:
            status["lastHandledForceAt"] = token
        if annotations.get(RESET_AT) == token:
            status["lastHandledResetAt"] = token
    return status


def ready_status(
    obj: Obj,
    *,
    token: str | None = None,
    revision: str | None = None,
    message: str | None = None,
    chart: tuple[str, str] | None = None,
) -> Obj:
    """What a successful reconcile leaves behind, per kind. ``chart`` is a HelmRelease's
    (chart name, version); by default read from chart.spec."""
    kind = obj["kind"]
    generation = obj["metadata"].get("generation", 1)
    revision = revision or default_revision(obj)
    status = _handled(obj, token)
    status["observedGeneration"] = generation
    if kind == KUSTOMIZATION:
        status["lastAppliedRevision"] = revision
        status["lastAttemptedRevision"] = revision
        ready = condition(obj, "Ready", "True", "ReconciliationSucceeded", message or f"Applied revision: {revision}")
        status["conditions"] = [ready]
    elif kind == HELM_RELEASE:
        chart_name, version = chart or _chart_of(obj)
        namespace = obj["metadata"]["namespace"]
        name = obj["metadata"]["name"]
        release_version = _release_version(obj) + 1
        action = "install" if release_version == 1 else "upgrade"
        text = message or (
            f"Helm {action} succeeded for release {namespace}/{name}.v{release_version} "
            f"with chart {chart_name}@{version}"
        )
        status["conditions"] = [condition(obj, "Ready", "True", f"{action.capitalize()}Succeeded", text)]
        status["history"] = [
            {
                "name": name,
                "namespace": namespace,
                "chartName": chart_name,
                "chartVersion": version,
                "appVersion": version,
                "configDigest": "sha256:" + hashlib.sha256(name.encode()).hexdigest(),
                "digest": "sha256:" + hashlib.sha256(f"{name}{release_version}".encode()).hexdigest(),
                "firstDeployed": now(),
                "lastDeployed": now(),
                "status": "deployed",
                "version": release_version,
            },
            *((obj.get("status") or {}).get("history") or [])[:4],
        ]
        status["lastAttemptedRevision"] = version
        status["lastAttemptedGeneration"] = generation
    elif kind == EXTERNAL_SECRET:
        status.pop("lastHandledReconcileAt", None)
        status["refreshTime"] = now()
        status["syncedResourceVersion"] = f"{generation}-{fake_sha(obj['metadata']['name'])[:8]}"
        status["conditions"] = [condition(obj, "Ready", "True", "SecretSynced", message or "secret synced")]
    else:  # sources
        status["artifact"] = {
            "revision": revision,
            "digest": "sha256:" + hashlib.sha256(revision.encode()).hexdigest(),
            "path": f"{kind.lower()}/{obj['metadata']['namespace']}/{obj['metadata']['name']}/artifact.tar.gz",
            "url": f"http://source-controller.flux-system.svc/{kind.lower()}/artifact.tar.gz",
            "size": 1024,
            "lastUpdateTime": now(),
        }
        status["conditions"] = [
            condition(obj, "Ready", "True", "Succeeded", message or f"stored artifact for revision '{revision}'"),
            condition(obj, "ArtifactInStorage", "True", "Succeeded", f"stored artifact for revision '{revision}'"),
        ]
        if kind == "HelmChart":
            status["observedChartName"] = (obj.get("spec") or {}).get("chart")
    return status


def failed_status(
    obj: Obj,
    *,
    reason: str,
    message: str,
    token: str | None = None,
    stalled: bool = False,
    retrying: bool = True,
) -> Obj:
    """A failed reconcile. A failing Kustomization keeps Reconciling=True ProgressingWithRetry and
    its status.observedGeneration at -1, as the real kustomize-controller did."""
    status = _handled(obj, token)
    conditions = [condition(obj, "Ready", "False", reason, message)]
    if stalled:
        conditions.append(condition(obj, "Stalled", "True", reason, message))
    elif retrying and obj["kind"] in (KUSTOMIZATION, HELM_RELEASE):
        conditions.append(
            condition(obj, "Reconciling", "True", "ProgressingWithRetry", f"Detecting drift for revision; {message}")
        )
    status["conditions"] = conditions
    if obj["kind"] == KUSTOMIZATION:
        status["observedGeneration"] = (obj.get("status") or {}).get("observedGeneration", -1)
    return status


def dependency_not_ready_status(obj: Obj, dependency: str, token: str | None = None) -> Obj:
    status = _handled(obj, token)
    status["conditions"] = [
        condition(obj, "Ready", "False", "DependencyNotReady", f"dependency '{dependency}' is not ready")
    ]
    if obj["kind"] == KUSTOMIZATION:
        status["observedGeneration"] = (obj.get("status") or {}).get("observedGeneration", -1)
    return status


def progressing_status(obj: Obj, *, token: str | None = None, message: str = "Reconciliation in progress") -> Obj:
    status = _handled(obj, token) if token else {}
    status["conditions"] = [
        condition(obj, "Ready", "Unknown", "Progressing", message),
        condition(obj, "Reconciling", "True", "Progressing", message),
    ]
    return status


def _chart_of(obj: Obj) -> tuple[str, str]:
    spec = obj.get("spec") or {}
    chart = (spec.get("chart") or {}).get("spec") or {}
    if chart.get("chart"):
        return str(chart["chart"]), str(chart.get("version") or "1.0.0").lstrip("v~^>=<* ") or "1.0.0"
    ref = spec.get("chartRef") or {}
    return str(ref.get("name", "chart")), "1.0.0"


def _release_version(obj: Obj) -> int:
    history = (obj.get("status") or {}).get("history") or []
    return int(history[0].get("version", 0)) if history else 0
