"""What a Flux object's status means: states, revisions, references, inventory."""

from __future__ import annotations

from typing import Any

import pytest

from phoebe_cli.flux import kinds
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.objects import FluxObject, ObjectRef, State


def cond(
    type_: str, status: str, reason: str = "R", message: str = "", generation: int | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        doc["observedGeneration"] = generation
    return doc


def obj(
    kind: kinds.FluxKind = kinds.KUSTOMIZATION,
    *,
    generation: int = 2,
    spec: dict | None = None,
    status: dict | None = None,
    namespace: str = "apps",
    name: str = "web",
) -> FluxObject:
    return FluxObject.from_api(
        kind,
        {
            "metadata": {"name": name, "namespace": namespace, "generation": generation},
            "spec": spec or {},
            "status": status or {},
        },
    )


@pytest.mark.parametrize(
    ("spec", "status", "state"),
    [
        ({}, {}, State.UNKNOWN),
        ({"suspend": True}, {"conditions": [cond("Ready", "False")]}, State.SUSPENDED),
        ({}, {"conditions": [cond("Ready", "True", generation=2)]}, State.READY),
        ({}, {"conditions": [cond("Ready", "True", generation=1)]}, State.PROGRESSING),
        ({}, {"observedGeneration": 2, "conditions": [cond("Ready", "True")]}, State.READY),
        ({}, {"observedGeneration": 1, "conditions": [cond("Ready", "True")]}, State.PROGRESSING),
        ({}, {"conditions": [cond("Ready", "Unknown", "Progressing")]}, State.PROGRESSING),
        ({}, {"conditions": [cond("Reconciling", "True", "Progressing")]}, State.PROGRESSING),
        ({}, {"conditions": [cond("Ready", "False", "ArtifactFailed")]}, State.FAILED),
        # a failing Kustomization retrying is a failure, not progress
        (
            {},
            {
                "observedGeneration": -1,
                "conditions": [
                    cond("Ready", "False", "ArtifactFailed", generation=2),
                    cond("Reconciling", "True", "ProgressingWithRetry"),
                ],
            },
            State.FAILED,
        ),
        ({}, {"conditions": [cond("Ready", "False"), cond("Reconciling", "True", "Progressing")]}, State.PROGRESSING),
        ({}, {"conditions": [cond("Ready", "True", generation=2), cond("Stalled", "True")]}, State.FAILED),
    ],
)
def test_states(spec: dict, status: dict, state: State) -> None:
    assert obj(spec=spec, status=status).state is state


def test_failing_kustomization_is_judged_by_its_condition_generation() -> None:
    failing = obj(status={"observedGeneration": -1, "conditions": [cond("Ready", "False", generation=2)]})
    assert failing.ready_is_current
    assert failing.observed_generation == -1


def test_message_and_reason() -> None:
    o = obj(status={"conditions": [cond("Ready", "False", "DependencyNotReady", "dependency 'a/b' is not ready")]})
    assert (o.reason, o.message) == ("DependencyNotReady", "dependency 'a/b' is not ready")
    assert obj().message == ""


def test_revisions_per_kind() -> None:
    assert obj(status={"lastAppliedRevision": "main@sha1:abc"}).revision == "main@sha1:abc"
    git = obj(kinds.GIT_REPOSITORY, status={"artifact": {"revision": "main@sha1:def"}})
    assert git.revision == "main@sha1:def"
    hr = obj(kinds.HELM_RELEASE, status={"history": [{"chartVersion": "1.2.3"}], "lastAttemptedRevision": "1.2.4"})
    assert hr.revision == "1.2.3"
    assert obj(kinds.HELM_RELEASE, status={"lastAttemptedRevision": "1.2.4"}).revision == "1.2.4"


def test_depends_on_defaults_to_own_namespace() -> None:
    o = obj(spec={"dependsOn": [{"name": "db"}, {"name": "ceph", "namespace": "rook"}]})
    assert o.depends_on == (ObjectRef("Kustomization", "apps", "db"), ObjectRef("Kustomization", "rook", "ceph"))


def test_source_refs() -> None:
    ks = obj(spec={"sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}})
    assert ks.source_ref == ObjectRef("GitRepository", "flux-system", "flux-system")
    hr = obj(
        kinds.HELM_RELEASE,
        spec={
            "chart": {
                "spec": {
                    "chart": "x",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"},
                }
            }
        },
    )
    assert hr.source_ref == ObjectRef("HelmChart", "flux-system", "apps-web")
    assert hr.chart_source_ref == ObjectRef("HelmRepository", "flux-system", "charts")
    oci = obj(kinds.HELM_RELEASE, spec={"chartRef": {"kind": "OCIRepository", "name": "app-template"}})
    assert oci.source_ref == ObjectRef("OCIRepository", "apps", "app-template")
    assert oci.chart_source_ref is None


def test_inventory_of_an_object() -> None:
    o = obj(
        status={
            "inventory": {
                "entries": [
                    {"id": "apps_web_apps_Deployment", "v": "v1"},
                    {"id": "bad"},  # left out, not an error
                    {"id": "_system__controller_rbac.authorization.k8s.io_ClusterRole", "v": "v1"},
                ]
            }
        }
    )
    assert o.inventory == (
        ObjectKey("apps/v1", "Deployment", "apps", "web"),
        ObjectKey("rbac.authorization.k8s.io/v1", "ClusterRole", None, "system:controller"),
    )
    assert [key.api_version for key in o.inventory] == ["apps/v1", "rbac.authorization.k8s.io/v1"]


def test_oci_helm_repository() -> None:
    assert obj(kinds.HELM_REPOSITORY, spec={"type": "oci"}).is_oci_helm_repository
    assert not obj(kinds.HELM_REPOSITORY, spec={}).is_oci_helm_repository


@pytest.mark.parametrize(
    ("revision", "short"),
    [
        ("main@sha1:" + "1a2b3c4d" * 5, "main@sha1:1a2b3c4d"),
        ("6.5.0@sha256:" + "ab" * 32, "6.5.0@sha256:abababab"),
        ("sha256:" + "cd" * 32, "sha256:cdcdcdcd"),
        ("1.2.3", "1.2.3"),
        (None, ""),
    ],
)
def test_short_revision(revision: str | None, short: str) -> None:
    from phoebe_cli.flux.objects import short_revision

    assert short_revision(revision) == short
