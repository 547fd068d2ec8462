"""``phoebe explain``'s pure model: the verdict and its root cause, the chain, the source against
what was applied, a HelmRelease's retries and next step (helm-controller v1.6.4's rules), what
to do next, and the kstatus health of applied objects (cli-utils' rules, as kustomize-controller
uses them)."""

from __future__ import annotations

from typing import Any

import pytest

from phoebe_cli.flux import kinds
from phoebe_cli.flux.explain import (
    chain_links,
    next_steps,
    release_view,
    source_view,
    verdict,
)
from phoebe_cli.flux.health import Health, compute_health, container_problems, pod_selector
from phoebe_cli.flux.objects import FluxObject, ObjectRef, State
from tests.support import fluxstatus, manifests

Obj = dict[str, Any]


def flux(obj: Obj, status: Obj | None = None) -> FluxObject:
    kind = kinds.kind_named(obj["kind"])
    assert kind is not None
    obj["metadata"].setdefault("generation", 1)
    if status is not None:
        obj = {**obj, "status": status}
    return FluxObject.from_api(kind, obj)


def objects_of(*objs: FluxObject) -> dict[ObjectRef, FluxObject]:
    return {o.ref: o for o in objs}


def git(name: str = "flux-system", namespace: str = "flux-system", *, ready: bool = True) -> FluxObject:
    obj = manifests.git_repository(name, namespace)
    if ready:
        return flux(obj, fluxstatus.ready_status(obj, revision="main@sha1:" + "a" * 40))
    return flux(obj, fluxstatus.failed_status(obj, reason="GitOperationFailed", message="authentication required"))


def ready_ks(name: str, namespace: str = "apps", **kwargs: Any) -> FluxObject:
    obj = manifests.kustomization(name, namespace, source_namespace="flux-system", **kwargs)
    return flux(obj, fluxstatus.ready_status(obj, revision="main@sha1:" + "a" * 40))


def failing_ks(
    name: str, namespace: str = "apps", message: str = "kustomization path not found", **kwargs: Any
) -> FluxObject:
    obj = manifests.kustomization(name, namespace, source_namespace="flux-system", **kwargs)
    return flux(obj, fluxstatus.failed_status(obj, reason="ArtifactFailed", message=message))


def blocked_ks(name: str, dependency: str, namespace: str = "apps") -> FluxObject:
    obj = manifests.kustomization(name, namespace, source_namespace="flux-system", depends_on=[dependency])
    return flux(
        obj,
        fluxstatus.dependency_not_ready_status(obj, dependency if "/" in dependency else f"{namespace}/{dependency}"),
    )


# --- the verdict -----------------------------------------------------------------------------------
def test_a_ready_object_has_no_cause() -> None:
    app = ready_ks("app")
    found = verdict(app, objects_of(app, git()))
    assert found.state is State.READY
    assert found.cause is None
    assert found.line == f"ready: Applied revision: main@sha1:{'a' * 40}"


def test_the_root_cause_is_the_end_of_the_blocked_by_chain_with_its_own_reason() -> None:
    root = failing_ks("database", message="kustomization path not found: ./db")
    middle = blocked_ks("backend", "database")
    top = blocked_ks("frontend", "backend")
    found = verdict(top, objects_of(root, middle, top, git()))
    assert found.cause == root.ref
    assert found.blocked_by == (middle.ref, root.ref)
    assert found.reason == "ArtifactFailed"
    assert found.line == (
        "not ready: blocked by Kustomization apps/backend ← Kustomization apps/database — "
        "ArtifactFailed: kustomization path not found: ./db"
    )


def test_a_suspended_dependency_that_is_not_ready_is_the_cause() -> None:
    obj = manifests.kustomization("storage", "apps", suspend=True)
    storage = flux(obj)  # suspended before it ever reconciled: no status
    app = blocked_ks("app", "storage")
    found = verdict(app, objects_of(storage, app))
    assert found.cause == storage.ref
    assert (found.reason, found.blocked_by) == ("Suspended", (storage.ref,))
    steps = next_steps(app, found, objects_of(storage, app), parent=None, source=None, release=None)
    assert steps[0].command == "phoebe resume ks apps/storage"


def test_a_cycle_and_a_missing_dependency_are_named() -> None:
    a = blocked_ks("a", "b")
    b = blocked_ks("b", "a")
    assert verdict(a, objects_of(a, b)).reason == "DependencyCycle"
    lone = blocked_ks("lone", "ghost")
    found = verdict(lone, objects_of(lone))
    assert (found.reason, found.cause) == ("NotFound", ObjectRef("Kustomization", "apps", "ghost"))


def test_a_failing_source_is_the_cause_of_a_failing_object() -> None:
    source = git(ready=False)
    obj = manifests.kustomization("app", "apps", source_namespace="flux-system")
    app = flux(obj, fluxstatus.failed_status(obj, reason="ArtifactFailed", message="Source artifact not found"))
    found = verdict(app, objects_of(source, app))
    assert found.cause == source.ref
    assert found.line == (
        "not ready: its source GitRepository flux-system/flux-system is not ready — "
        "GitOperationFailed: authentication required"
    )
    steps = [s.command for s in next_steps(app, found, objects_of(source, app), parent=None, source=None, release=None)]
    assert steps == ["phoebe explain git flux-system/flux-system", "phoebe sync git flux-system/flux-system --cascade"]


def test_suspended_object_and_suspended_parent() -> None:
    obj = manifests.kustomization("app", "apps", source_namespace="flux-system", suspend=True)
    app = flux(obj, fluxstatus.ready_status(obj))
    found = verdict(app, objects_of(app))
    assert found.state is State.SUSPENDED
    assert found.line == "suspended: Flux does not reconcile it until it is resumed"
    parent_obj = manifests.kustomization("apps", "flux-system", suspend=True)
    parent = flux(parent_obj, fluxstatus.ready_status(parent_obj))
    child = ready_ks("child")
    objects = objects_of(app, parent, child, git())
    steps = next_steps(child, verdict(child, objects), objects, parent=parent.ref, source=None, release=None)
    assert steps[0].command == "phoebe resume ks flux-system/apps"
    assert "is suspended" in steps[0].why


# --- the chain and the source ------------------------------------------------------------------------
def test_chain_lists_dependencies_the_blocked_by_chain_source_and_parent() -> None:
    root = failing_ks("database")
    middle = blocked_ks("backend", "database")
    top = blocked_ks("frontend", "backend")
    parent = ready_ks("cluster-apps", "flux-system")
    objects = objects_of(root, middle, top, parent, git())
    links = chain_links(top, objects, parent=parent.ref, verdict_=verdict(top, objects), denied=frozenset())
    assert [(link.relation, link.ref.name, link.state) for link in links] == [
        ("dependsOn", "backend", State.FAILED),
        ("blocked by", "database", State.FAILED),
        ("source", "flux-system", State.READY),
        ("applied by", "cluster-apps", State.READY),
    ]


def test_chain_of_a_helm_release_names_its_chart_and_the_charts_source() -> None:
    release_obj = manifests.helm_release("web", "apps", repository="charts")
    release = flux(release_obj, fluxstatus.ready_status(release_obj))
    chart_obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "apps-web", "namespace": "apps"},
        "spec": {
            "chart": "app-template",
            "version": "3.7.3",
            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
        },
    }
    chart = flux(chart_obj, fluxstatus.ready_status(chart_obj))
    objects = objects_of(release, chart)
    links = chain_links(release, objects, parent=None, verdict_=verdict(release, objects), denied=frozenset())
    assert [(link.relation, str(link.ref), link.note) for link in links] == [
        ("chart", "HelmChart/apps/apps-web", ""),
        ("chart source", "HelmRepository/apps/charts", "not found"),
    ]
    view = source_view(release, objects)
    assert view is not None
    assert (view.revision, view.last_applied, view.applied_current) == ("3.7.3", "3.7.3", True)


def test_a_source_ahead_of_what_was_applied_suggests_a_cascading_sync() -> None:
    source = git()
    obj = manifests.kustomization("app", "apps", source_namespace="flux-system")
    app = flux(obj, fluxstatus.ready_status(obj, revision="main@sha1:" + "b" * 40))
    objects = objects_of(source, app)
    view = source_view(app, objects)
    assert view is not None and not view.applied_current
    steps = next_steps(app, verdict(app, objects), objects, parent=None, source=view, release=None)
    assert [(s.command, s.why) for s in steps] == [
        (
            "phoebe sync git flux-system/flux-system --cascade",
            f"it has not applied the source's revision main@sha1:{'a' * 40} yet",
        )
    ]


# --- a HelmRelease ---------------------------------------------------------------------------------
def failed_release(*, install_failures: int, retries: int, stalled: bool) -> FluxObject:
    obj = manifests.helm_release("web", "apps", repository="charts")
    obj["spec"]["install"] = {"remediation": {"retries": retries}}
    status = fluxstatus.failed_status(
        obj,
        reason="InstallFailed",
        message="Helm install failed for release apps/web with chart app-template@3.7.3: context deadline exceeded",
        retrying=False,
    )
    if stalled:
        status["conditions"].append(
            fluxstatus.condition(
                obj, "Stalled", "True", "RetriesExceeded", f"Failed to install after {install_failures} attempt(s)"
            )
        )
    status.update(installFailures=install_failures, failures=install_failures, lastAttemptedReleaseAction="install")
    status["history"] = [
        {
            "name": "web",
            "namespace": "apps",
            "chartName": "app-template",
            "chartVersion": "3.7.3",
            "appVersion": "3.7.3",
            "version": install_failures,
            "status": "failed",
            "digest": "sha256:" + "c" * 64,
            "testHooks": {"web-test": {"phase": "Failed"}},
        }
    ]
    return flux(obj, status)


def test_retries_exhausted_stop_helm_controller_and_suggest_a_reset() -> None:
    release = failed_release(install_failures=2, retries=1, stalled=True)
    objects = objects_of(release)
    view = release_view(release, objects)
    assert view is not None
    assert view.retries_exhausted
    assert (view.install_failures, view.install_retries, view.failures) == (2, 1, 2)
    assert view.history[0].tests[0].phase == "Failed"
    assert view.next_step.startswith("nothing: the install failed 2 time(s) and no retries remain")
    found = verdict(release, objects)
    assert found.reason == "RetriesExceeded"
    assert found.line == "not ready: RetriesExceeded: Failed to install after 2 attempt(s)"
    steps = next_steps(release, found, objects, parent=None, source=None, release=view)
    assert steps[0].command == "phoebe sync hr apps/web --reset"
    assert all("logs" not in s.command for s in steps)


def test_retries_exhausted_by_the_counts_alone() -> None:
    """helm-controller: RetriesExhausted is failures > retries (retries >= 0), before it marks Stalled."""
    release = failed_release(install_failures=1, retries=0, stalled=False)
    view = release_view(release, objects_of(release))
    assert view is not None and view.retries_exhausted


def test_a_failed_install_with_retries_left_is_retried_after_an_uninstall() -> None:
    release = failed_release(install_failures=1, retries=3, stalled=False)
    objects = objects_of(release)
    view = release_view(release, objects)
    assert view is not None and not view.retries_exhausted
    assert view.next_step == "uninstall the failed release and install again (failure 1 of 4 attempts)"
    steps = [
        s.command
        for s in next_steps(release, verdict(release, objects), objects, parent=None, source=None, release=view)
    ]
    assert steps == ["phoebe logs hr/apps/web --level error", "phoebe sync hr apps/web"]


def test_a_ready_release_upgrades_on_change() -> None:
    obj = manifests.helm_release("web", "apps")
    release = flux(obj, fluxstatus.ready_status(obj))
    view = release_view(release, objects_of(release))
    assert view is not None
    assert view.next_step == "upgrade when the chart or values change; look for drift every 1h"
    assert [h.status for h in view.history] == ["deployed"]


# --- kstatus health --------------------------------------------------------------------------------
def deployment(spec_replicas: int = 1, **status: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "generation": 2},
        "spec": {"replicas": spec_replicas, "selector": {"matchLabels": {"app": "web", "tier": "a"}}},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        ({}, Health.IN_PROGRESS, "Replicas: 0/1"),
        ({"replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}, Health.IN_PROGRESS, "Available: 0/1"),
        (
            {
                "replicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
                "readyReplicas": 1,
                "conditions": [
                    {"type": "Available", "status": "True"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            },
            Health.CURRENT,
            "Deployment is available. Replicas: 1",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "web-1" has timed out progressing.',
                    }
                ]
            },
            Health.FAILED,
            'ReplicaSet "web-1" has timed out progressing.',
        ),
    ],
)
def test_deployment_health(status: Obj, expected: Health, message: str) -> None:
    result = compute_health(deployment(**status))
    assert (result.status, result.message) == (expected, message)


def test_generation_not_observed_is_in_progress() -> None:
    obj = deployment()
    obj["status"]["observedGeneration"] = 1
    result = compute_health(obj)
    assert (result.status, result.message) == (
        Health.IN_PROGRESS,
        "Deployment generation is 2, but latest observed generation is 1",
    )


def test_job_pvc_and_generic_health() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "apps"},
        "spec": {"completions": 1},
        "status": {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
    }
    assert compute_health(job).status is Health.FAILED
    assert compute_health(job).message == "Job Failed. failed: 3/1 (BackoffLimitExceeded)"
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "status": {"phase": "Pending"},
    }
    assert (compute_health(pvc).status, compute_health(pvc).message) == (
        Health.IN_PROGRESS,
        "PVC is not Bound. phase: Pending",
    )
    custom = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "status": {"conditions": [{"type": "Stalled", "status": "True", "reason": "Broken", "message": "it broke"}]},
    }
    assert (compute_health(custom).status, compute_health(custom).message) == (Health.FAILED, "it broke")
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert compute_health(config).status is Health.CURRENT


def crashing_pod() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-7d9f-abcde", "namespace": "apps"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 7,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off 5m0s restarting failed container",
                        }
                    },
                    "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
                },
                {"name": "sidecar", "restartCount": 0, "state": {"running": {}}},
            ],
        },
    }


def test_a_crash_looping_pod_fails_with_its_last_termination() -> None:
    pod = crashing_pod()
    result = compute_health(pod)
    assert (result.status, result.reason, result.message) == (
        Health.FAILED,
        "ContainerCrashLooping",
        "Containers in CrashLoop state: app",
    )
    [problem] = container_problems(pod)
    assert (
        problem.describe() == "web-7d9f-abcde/app: CrashLoopBackOff; last termination: Error, exit code 1; 7 restarts"
    )


def test_pod_selector_of_a_workload() -> None:
    assert pod_selector(deployment()) == "app=web,tier=a"
    assert pod_selector({"spec": {"selector": {"matchExpressions": []}}}) is None


def test_a_revision_attempted_and_failed_is_the_objects_own_failure() -> None:
    """As the real kustomize-controller leaves it: lastAttemptedRevision is the source's, the
    apply failed; the steps are its log and a sync after fixing, not a source sync."""
    source = git()
    obj = manifests.kustomization("app", "apps", source_namespace="flux-system")
    status = fluxstatus.failed_status(obj, reason="ReconciliationFailed", message="dry-run failed")
    status.update(lastAppliedRevision="main@sha1:" + "b" * 40, lastAttemptedRevision="main@sha1:" + "a" * 40)
    app = flux(obj, status)
    objects = objects_of(source, app)
    view = source_view(app, objects)
    assert view is not None and view.attempted_current and not view.applied_current
    steps = next_steps(app, verdict(app, objects), objects, parent=None, source=view, release=None)
    assert [s.command for s in steps] == ["phoebe logs ks/apps/app --level error", "phoebe sync ks apps/app"]


def test_a_chart_from_an_oci_repository_is_applied_as_its_version_with_the_digest() -> None:
    """The real helm-controller v1.6.4 records chart app-template 3.7.3 from an OCIRepository at
    3.7.3@sha256:097f9a90… as chartVersion 3.7.3+097f9a906942."""
    digest = "097f9a9069420973ccb5384cb7937a15e48a95389f2c4e4ed8466a4c5d54632d"
    oci_obj = manifests.oci_repository("app-template", "flux-system")
    oci = flux(oci_obj, fluxstatus.ready_status(oci_obj, revision=f"3.7.3@sha256:{digest}"))
    obj = manifests.helm_release("homepage", "default", chart_ref="app-template")
    obj["spec"]["chartRef"]["namespace"] = "flux-system"
    release = flux(obj, fluxstatus.ready_status(obj, chart=("app-template", "3.7.3+097f9a906942")))
    objects = objects_of(oci, release)
    view = source_view(release, objects)
    assert view is not None and view.applied_current
    steps = next_steps(release, verdict(release, objects), objects, parent=None, source=view, release=None)
    assert [(s.command, s.why) for s in steps] == [
        (
            "phoebe sync hr default/homepage --with-source",
            "to fetch the source now and apply what changed, not at the next interval",
        )
    ]
    other = flux(obj, fluxstatus.ready_status(obj, chart=("app-template", "3.7.2+097f9a906942")))
    other_view = source_view(other, objects_of(oci, other))
    assert other_view is not None and not other_view.applied_current


def test_a_release_whose_chart_repository_fails_is_synced_with_its_sources() -> None:
    """phoebe sync refuses --cascade for a HelmRepository: a HelmRelease is synced --with-source."""
    repo_obj = manifests.helm_repository("charts", "apps")
    repo = flux(repo_obj, fluxstatus.failed_status(repo_obj, reason="IndexationFailed", message="404 Not Found"))
    chart_obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "apps-web", "namespace": "apps"},
        "spec": {"chart": "app-template", "sourceRef": {"kind": "HelmRepository", "name": "charts"}},
    }
    chart = flux(chart_obj, fluxstatus.failed_status(chart_obj, reason="ChartPullError", message="no index"))
    release_obj = manifests.helm_release("web", "apps", repository="charts")
    release = flux(release_obj, fluxstatus.failed_status(release_obj, reason="ArtifactFailed", message="no chart"))
    objects = objects_of(repo, chart, release)
    found = verdict(release, objects)
    assert (found.cause, found.reason) == (repo.ref, "IndexationFailed")
    steps = next_steps(release, found, objects, parent=None, source=source_view(release, objects), release=None)
    assert [s.command for s in steps] == [
        "phoebe explain helmrepo apps/charts",
        "phoebe sync hr apps/web --with-source",
    ]


@pytest.mark.parametrize(
    ("obj", "expected", "message"),
    [
        (
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {"replicas": 2},
                "status": {"replicas": 2, "readyReplicas": 1},
            },
            Health.IN_PROGRESS,
            "Ready: 1/2",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {"replicas": 1},
                "status": {
                    "replicas": 1,
                    "readyReplicas": 1,
                    "currentReplicas": 1,
                    "currentRevision": "a",
                    "updateRevision": "a",
                },
            },
            Health.CURRENT,
            "All replicas scheduled as expected. Replicas: 1",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "agent", "generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 3,
                    "currentNumberScheduled": 3,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 2,
                    "numberReady": 2,
                },
            },
            Health.IN_PROGRESS,
            "Available: 2/3",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "status": {
                    "phase": "Pending",
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/3 nodes are available",
                        }
                    ],
                },
            },
            Health.FAILED,
            "0/3 nodes are available",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "deletionTimestamp": "2026-11-26T10:00:00Z"},
            },
            Health.TERMINATING,
            "Resource scheduled for deletion",
        ),
    ],
)
def test_workload_health(obj: Obj, expected: Health, message: str) -> None:
    result = compute_health(obj)
    assert (result.status, result.message) == (expected, message)
