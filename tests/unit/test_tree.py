"""The inventory tree, blocked-by chains, dependencies that can never be met, and label selectors
(pure; more selector cases in test_selectors.py)."""

from __future__ import annotations

from typing import Any

import pytest

from phoebe_cli.errors import UsageError
from phoebe_cli.flux import kinds
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.flux.selectors import parse_selector
from phoebe_cli.flux.tree import BlockProblem, blocked_by, build_tree, count, unsatisfiable


def ks(
    name: str,
    namespace: str = "apps",
    *,
    children: list[str] = (),
    depends: list[str] = (),
    ready: str | None = "True",
    reason: str = "ReconciliationSucceeded",
    message: str = "",
    suspend: bool = False,
) -> FluxObject:
    entries = []
    for child in children:
        kind, ns, child_name = child.split("/")
        group = {
            "Kustomization": "kustomize.toolkit.fluxcd.io",
            "HelmRelease": "helm.toolkit.fluxcd.io",
            "ConfigMap": "",
        }[kind]
        entries.append({"id": f"{ns}_{child_name}_{group}_{kind}", "v": "v1"})
    status: dict[str, Any] = {"inventory": {"entries": entries}}
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "reason": reason, "message": message, "observedGeneration": 1}
        ]
    spec: dict[str, Any] = {"sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}
    if depends:
        spec["dependsOn"] = [
            {"name": d.split("/")[-1], **({"namespace": d.split("/")[0]} if "/" in d else {})} for d in depends
        ]
    if suspend:
        spec["suspend"] = True
    return FluxObject.from_api(
        kinds.KUSTOMIZATION,
        {"metadata": {"name": name, "namespace": namespace, "generation": 1}, "spec": spec, "status": status},
    )


def hr(name: str, namespace: str = "apps") -> FluxObject:
    return FluxObject.from_api(
        kinds.HELM_RELEASE,
        {
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {
                "chart": {
                    "spec": {
                        "chart": "c",
                        "sourceRef": {"kind": "HelmRepository", "name": "repo", "namespace": "flux-system"},
                    }
                }
            },
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "R", "message": "", "observedGeneration": 1}
                ]
            },
        },
    )


def source(kind: kinds.FluxKind, name: str, namespace: str = "flux-system", **spec: Any) -> FluxObject:
    return FluxObject.from_api(
        kind, {"metadata": {"name": name, "namespace": namespace, "generation": 1}, "spec": spec, "status": {}}
    )


def index(*objects: FluxObject) -> dict[ObjectRef, FluxObject]:
    return {o.ref: o for o in objects}


def ref(kind: str, namespace: str, name: str) -> ObjectRef:
    return ObjectRef(kind, namespace, name)


def test_roots_children_and_unattached() -> None:
    objects = index(
        ks("root", "flux-system", children=["Kustomization/apps/a", "Kustomization/apps/b", "ConfigMap/apps/x"]),
        ks("a", children=["HelmRelease/apps/web"]),
        ks("b"),
        hr("web"),
        hr("stray"),
        source(kinds.HELM_CHART, "apps-web", sourceRef={"kind": "HelmRepository", "name": "repo"}),
        source(kinds.HELM_REPOSITORY, "repo"),
        source(kinds.GIT_REPOSITORY, "flux-system"),
        source(kinds.GIT_REPOSITORY, "unused"),
    )
    tree = build_tree(objects)
    assert tree.roots == (ref("Kustomization", "flux-system", "root"),)
    assert tree.children[ref("Kustomization", "flux-system", "root")] == (
        ref("Kustomization", "apps", "a"),
        ref("Kustomization", "apps", "b"),
    )
    assert tree.children[ref("Kustomization", "apps", "a")] == (ref("HelmRelease", "apps", "web"),)
    assert tree.parents[ref("HelmRelease", "apps", "web")] == ref("Kustomization", "apps", "a")
    # the chart, its repository and the GitRepository are attached as sources beside objects
    assert tree.unattached == (ref("HelmRelease", "apps", "stray"), ref("GitRepository", "flux-system", "unused"))
    assert tree.sources[ref("HelmRelease", "apps", "web")] == ref("HelmChart", "flux-system", "apps-web")


def test_inventory_cycles_do_not_loop() -> None:
    objects = index(ks("a", children=["Kustomization/apps/b"]), ks("b", children=["Kustomization/apps/a"]))
    tree = build_tree(objects, roots=[ref("Kustomization", "apps", "a")])
    assert tree.children == {ref("Kustomization", "apps", "a"): (ref("Kustomization", "apps", "b"),)}
    assert tree.unattached == ()


def test_blocked_chain_to_the_root_cause() -> None:
    ceph = ks("ceph", "rook", ready="False", reason="HealthCheckFailed", message="timeout")
    cluster = ks(
        "cluster",
        "rook",
        depends=["ceph"],
        ready="False",
        reason="DependencyNotReady",
        message="dependency 'rook/ceph' is not ready",
    )
    sonarr = ks(
        "sonarr",
        "media",
        depends=["volsync", "rook/cluster"],
        ready="False",
        reason="DependencyNotReady",
        message="dependency 'rook/cluster' is not ready",
    )
    volsync = ks("volsync", "media")
    objects = index(ceph, cluster, sonarr, volsync)
    blocked = blocked_by(sonarr, objects)
    assert blocked is not None
    assert blocked.chain == (sonarr.ref, cluster.ref, ceph.ref)
    assert blocked.problem is None
    assert blocked_by(ceph, objects) is None  # failing for its own reason
    assert blocked_by(volsync, objects) is None


def test_blocked_by_a_dependency_that_is_not_ready_without_the_reason() -> None:
    # the controller has not yet said DependencyNotReady, but the dependency is failing
    db = ks("db", ready="False", reason="BuildFailed")
    app = ks("app", depends=["db"], ready="Unknown", reason="Progressing")
    assert blocked_by(app, index(db, app)).chain == (app.ref, db.ref)  # type: ignore[union-attr]


def test_cycles_and_missing_dependencies() -> None:
    a = ks("a", depends=["b"], ready="False", reason="DependencyNotReady")
    b = ks("b", depends=["a"], ready="False", reason="DependencyNotReady")
    c = ks("c", depends=["ghost"], ready="False", reason="DependencyNotReady")
    objects = index(a, b, c)
    cycle = blocked_by(a, objects)
    assert cycle is not None and cycle.problem is BlockProblem.CYCLE
    assert cycle.chain == (a.ref, b.ref, a.ref)
    missing = blocked_by(c, objects)
    assert missing is not None and missing.problem is BlockProblem.MISSING
    assert missing.cause == ref("Kustomization", "apps", "ghost")


def test_suspended_dependencies_do_not_block() -> None:
    paused = ks("paused", suspend=True, ready=None)
    app = ks("app", depends=["paused"], ready="False", reason="ArtifactFailed")
    assert blocked_by(app, index(paused, app)) is None


def test_counts() -> None:
    counts = count([ks("a"), ks("b", ready="False"), hr("c")])
    assert counts.total() == 3
    assert counts.by_kind["Kustomization"] == {kinds_state("ready"): 1, kinds_state("failed"): 1}


def kinds_state(value: str):  # type: ignore[no-untyped-def]
    from phoebe_cli.flux.objects import State

    return State(value)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("tier in (front, back)", {"tier": "back"}, True),
        ("tier notin (front,back)", {"tier": "back"}, False),
        ("tier notin (front,back)", {}, True),
        ("app.kubernetes.io/name", {"app.kubernetes.io/name": "x"}, True),
        ("!legacy", {"legacy": "true"}, False),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector)(labels) is matches


@pytest.mark.parametrize("selector", ["a in (b", "=x", "a b"])
def test_bad_selectors(selector: str) -> None:
    with pytest.raises(UsageError):
        parse_selector(selector)


def test_unsatisfiable_dependencies() -> None:
    """A cycle, a dependency that is not there, and what depends on either: Flux keeps them
    DependencyNotReady for ever (status --repo shows them blocked, as validate reports them)."""
    objects = index(
        ks("a", depends=["b"]),
        ks("b", depends=["c"]),
        ks("c", depends=["a"]),
        ks("self", depends=["self"]),
        ks("lost", depends=["ghost"]),
        ks("after", depends=["b"]),
        ks("fine", depends=["ok"]),
        ks("ok"),
    )
    found = unsatisfiable(objects)
    assert found == {
        ref("Kustomization", "apps", "a"): "dependency cycle: apps/a → apps/b → apps/c → apps/a",
        ref("Kustomization", "apps", "b"): "dependency cycle: apps/a → apps/b → apps/c → apps/a",
        ref("Kustomization", "apps", "c"): "dependency cycle: apps/a → apps/b → apps/c → apps/a",
        ref("Kustomization", "apps", "self"): "dependency cycle: apps/self → apps/self",
        ref("Kustomization", "apps", "lost"): "dependency 'apps/ghost' not found",
        ref("Kustomization", "apps", "after"): "dependency 'apps/b' is not ready",
    }


def git(name: str, ready: str | None, reason: str = "GitOperationFailed") -> FluxObject:
    status: dict[str, Any] = {}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": reason, "message": "connection refused"}]
    return FluxObject.from_api(
        kinds.GIT_REPOSITORY,
        {"metadata": {"name": name, "namespace": "flux-system", "generation": 1}, "spec": {}, "status": status},
    )


@pytest.mark.parametrize(
    ("app_ready", "source_ready", "blocked"),
    [
        ("False", "False", True),  # no artifact to apply: the Kustomization waits on its source
        ("True", "False", False),  # still applying the last artifact: ready, not blocked
        ("False", None, False),  # a source with no status yet is no cause
        ("False", "True", False),  # failing for its own reason
    ],
)
def test_blocked_by_a_failing_source(app_ready: str, source_ready: str | None, blocked: bool) -> None:
    from phoebe_cli.flux.tree import blocked_by_or_source

    app = ks("app", ready=app_ready, reason="ArtifactFailed" if app_ready == "False" else "ReconciliationSucceeded")
    source = git("flux-system", source_ready)
    objects = {app.ref: app, source.ref: source}
    found = blocked_by_or_source(app, objects)
    assert (found.chain if found else None) == ((app.ref, source.ref) if blocked else None)
    assert blocked_by(app, objects) is None  # the dependsOn chain alone knows nothing of sources
