"""`phoebe explain` against the real API server, with the statuses the controllers write (the
stand-in's shapes), applied objects with real status subresources, events, and RBAC users."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.api import Api
from tests.conftest import Cluster, PhoebeRunner
from tests.integration.test_events import event
from tests.integration.test_impersonation import FLUX_GROUPS, bind, certificate_user, kubeconfig
from tests.support import fluxstatus, manifests

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
REVISION = "main@sha1:" + "1" * 40
INSTALL_FAILED = "Helm install failed for release {ns}/web with chart app-template@3.7.3: context deadline exceeded"


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")


def ks(api: Api, name: str, namespace: str, status: str = "ready", **kwargs: Any) -> Obj:
    obj = api.create(manifests.kustomization(name, namespace, source_namespace=namespace, **kwargs))
    if status == "ready":
        api.patch_status(obj, fluxstatus.ready_status(obj, revision=REVISION))
    elif status == "failed":
        api.patch_status(
            obj,
            fluxstatus.failed_status(
                obj, reason="ReconciliationFailed", message="Deployment/db dry-run failed: spec.replicas: Invalid value"
            ),
        )
    elif status.startswith("blocked:"):
        api.patch_status(obj, fluxstatus.dependency_not_ready_status(obj, status.removeprefix("blocked:")))
    return obj


def git(api: Api, namespace: str) -> Obj:
    obj = api.create(manifests.git_repository("flux-system", namespace))
    api.patch_status(obj, fluxstatus.ready_status(obj, revision=REVISION))
    return obj


def test_a_blocked_kustomization_names_the_root_cause_and_what_to_do(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str
) -> None:
    api = cluster.api
    git(api, namespace)
    ks(api, "database", namespace, "failed")
    ks(api, "backend", namespace, f"blocked:{namespace}/database", depends_on=["database"])
    frontend = ks(api, "frontend", namespace, f"blocked:{namespace}/backend", depends_on=["backend"])
    api.create(event(frontend, "a", "Normal", "DependencyNotReady", "dependency not ready", "2026-11-26T10:00:00Z"))

    result = phoebe("explain", f"ks/{namespace}/frontend", kubeconfig=cluster.kubeconfig)
    assert result.code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Kustomization {namespace}/frontend"
    assert lines[1].startswith("✗ not ready for ")
    assert lines[1].endswith(
        f": blocked by Kustomization {namespace}/backend ← Kustomization {namespace}/database — "
        "ReconciliationFailed: Deployment/db dry-run failed: spec.replicas: Invalid value"
    )
    steps = lines[lines.index("What to do next") + 1 :]
    assert [line.split("  ")[1] for line in steps] == [
        f"phoebe explain ks {namespace}/database",
        f"phoebe sync ks {namespace}/database",
    ]

    doc = json.loads(
        phoebe("explain", "ks", "frontend", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig).stdout
    )
    assert doc["kind"] == "Explanation"
    assert doc["verdict"]["cause"] == {
        "kind": "Kustomization",
        "namespace": namespace,
        "name": "database",
        "reason": "ReconciliationFailed",
        "message": "Deployment/db dry-run failed: spec.replicas: Invalid value",
    }
    assert [(c["relation"], c["object"]["name"], c["state"]) for c in doc["chain"]] == [
        ("dependsOn", "backend", "failed"),
        ("blocked by", "database", "failed"),
        ("source", "flux-system", "ready"),
    ]
    assert [e["reason"] for e in doc["events"]["items"]] == ["DependencyNotReady"]
    assert doc["logs"]["unavailable"] == "no Pods for kustomize-controller in flux-system"
    assert doc["source"]["revision"] == REVISION

    markdown = phoebe("explain", f"ks/{namespace}/frontend", "-o", "markdown", kubeconfig=cluster.kubeconfig)
    assert markdown.code == 1
    assert markdown.stdout.startswith(f"### Kustomization `{namespace}/frontend`\n\n**✗ not ready for ")
    assert f"- `phoebe explain ks {namespace}/database`: the root cause is Kustomization {namespace}/database\n" in (
        markdown.stdout
    )
    assert f"| blocked by | `Kustomization {namespace}/database` | failed: ReconciliationFailed: " in markdown.stdout


def release_with_exhausted_retries(api: Api, namespace: str) -> Obj:
    repo = api.create(manifests.helm_repository("charts", namespace))
    api.patch_status(repo, fluxstatus.ready_status(repo))
    release = manifests.helm_release("web", namespace, repository="charts")
    release["spec"]["install"] = {"remediation": {"retries": 1}}
    release = api.create(release)
    message = INSTALL_FAILED.format(ns=namespace)
    status = fluxstatus.failed_status(release, reason="InstallFailed", message=message, retrying=False)
    status["conditions"] += [
        fluxstatus.condition(release, "Stalled", "True", "RetriesExceeded", "Failed to install after 2 attempt(s)"),
        fluxstatus.condition(release, "Released", "False", "InstallFailed", message),
    ]
    status.update(installFailures=2, failures=2, lastAttemptedReleaseAction="install", lastAttemptedRevision="3.7.3")
    status["history"] = [
        {
            "name": "web",
            "namespace": namespace,
            "chartName": "app-template",
            "chartVersion": "3.7.3",
            "appVersion": "3.7.3",
            "version": 2,
            "status": "failed",
            "digest": "sha256:" + "d" * 64,
            "configDigest": "sha256:" + "e" * 64,
            "firstDeployed": "2026-11-26T10:00:00Z",
            "lastDeployed": "2026-11-26T10:05:00Z",
            "testHooks": {"web-test-connection": {"phase": "Failed"}},
        }
    ]
    return api.patch_status(release, status)


def crash_looping_workload(api: Api, namespace: str) -> None:
    """A Deployment labelled as helm-controller labels a release's objects, not available, and
    its Pod in CrashLoopBackOff (status written through the real status subresources)."""
    api.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}})
    labels = {"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": namespace}
    deployment = api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "example/web:1"}]},
                },
            },
        }
    )
    api.patch_status(
        deployment,
        {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "unavailableReplicas": 1,
            "availableReplicas": 0,
        },
    )
    pod = api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-5d8c-x7k2p", "namespace": namespace, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "example/web:1"}]},
        }
    )
    api.patch_status(
        pod,
        {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "example/web:1",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 6,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                    "lastState": {
                        "terminated": {
                            "reason": "OOMKilled",
                            "exitCode": 137,
                            "startedAt": "2026-11-26T10:00:00Z",
                            "finishedAt": "2026-11-26T10:00:05Z",
                        }
                    },
                }
            ],
        },
    )


def test_a_release_whose_retries_are_exhausted(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    release = release_with_exhausted_retries(api, namespace)
    crash_looping_workload(api, namespace)
    api.create(
        event(
            release,
            "f",
            "Warning",
            "InstallFailed",
            "install failed",
            "2026-11-26T10:05:00Z",
            component="helm-controller",
        )
    )

    result = phoebe("explain", f"hr/{namespace}/web", kubeconfig=cluster.kubeconfig)
    assert result.code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("✗ not ready for ")
    assert lines[1].endswith(": RetriesExceeded: Failed to install after 2 attempt(s)")
    assert "  install failures 2 (retries 1), upgrade failures 0 (retries 0, remediation rollback), failures 2" in lines
    assert (
        "  next: nothing: the install failed 2 time(s) and no retries remain; it acts again when the spec or "
        "values change, when the failure counts are reset (resetAt) or when an action is forced (forceAt)"
    ) in lines
    steps = [line.split("  ")[1] for line in lines[lines.index("What to do next") + 1 :]]
    assert steps[0] == f"phoebe sync hr {namespace}/web --reset"
    assert steps[1] == f"kubectl -n {namespace} logs pod/web-5d8c-x7k2p --previous"

    doc = json.loads(phoebe("explain", f"hr/{namespace}/web", "-o", "json", kubeconfig=cluster.kubeconfig).stdout)
    release_doc = doc["release"]
    assert (release_doc["installFailures"], release_doc["installRetries"], release_doc["retriesExhausted"]) == (
        2,
        1,
        True,
    )
    assert release_doc["history"][0]["tests"] == [{"name": "web-test-connection", "phase": "Failed"}]
    assert [(c["relation"], c["object"]["kind"], c["state"], c["note"]) for c in doc["chain"]] == [
        ("chart", "HelmChart", None, "not found"),
        ("chart source", "HelmRepository", "ready", None),
    ]
    applied = doc["applied"]
    assert (applied["from"], applied["checked"], applied["allowed"]) == ("release labels", 1, True)
    [problem] = applied["items"]
    assert (problem["kind"], problem["name"], problem["health"], problem["message"]) == (
        "Deployment",
        "web",
        "InProgress",
        "Available: 0/1",
    )
    assert problem["containers"] == [
        {
            "pod": "web-5d8c-x7k2p",
            "container": "app",
            "waiting": "CrashLoopBackOff",
            "message": "back-off 5m0s",
            "restarts": 6,
            "lastTerminationReason": "OOMKilled",
            "lastExitCode": 137,
        }
    ]
    assert [(e["reason"], e["object"]["kind"]) for e in doc["events"]["items"]] == [("InstallFailed", "HelmRelease")]


def test_a_suspended_kustomization_and_its_inventory(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    git(api, namespace)
    obj = ks(api, "apps", namespace, "ready", suspend=True)
    job = api.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate", "namespace": namespace},
            "spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "example/m:1"}]}}
            },
        }
    )
    api.patch_status(
        job,
        {
            "failed": 3,
            "startTime": "2026-11-26T10:00:00Z",
            "conditions": [
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": "2026-11-26T10:01:00Z",
                },
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": "2026-11-26T10:01:00Z",
                },
            ],
        },
    )
    entries = [
        {"id": f"{namespace}_migrate_batch_Job", "v": "v1"},
        {"id": f"{namespace}_data__PersistentVolumeClaim", "v": "v1"},
        {"id": f"{namespace}_settings__ConfigMap", "v": "v1"},
    ]
    api.patch_status(obj, {"inventory": {"entries": entries}})

    result = phoebe("explain", f"ks/{namespace}/apps", kubeconfig=cluster.kubeconfig)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "⏸ suspended: Flux does not reconcile it until it is resumed"
    applied = lines[lines.index("Applied objects that are not healthy") + 1 : lines.index("Recent events") - 1]
    assert [line.split()[:2] for line in applied] == [
        [f"Job/{namespace}/migrate", "Failed"],
        [f"PersistentVolumeClaim/{namespace}/data", "NotFound"],
    ]
    steps = [line.split("  ")[1] for line in lines[lines.index("What to do next") + 1 :]]
    assert steps[0] == f"phoebe resume ks {namespace}/apps"


def test_sections_the_user_may_not_read_say_so(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    api = cluster.api
    git(api, namespace)
    ks(api, "database", namespace, "failed")
    ks(api, "app", namespace, f"blocked:{namespace}/database", depends_on=["database"])
    release_with_exhausted_retries(api, namespace)
    crash_looping_workload(api, namespace)
    user = f"flux-reader-{namespace}"
    bind(
        cluster,
        "flux-reader",
        user,
        [{"apiGroups": FLUX_GROUPS, "resources": ["*"], "verbs": ["get", "list"]}],
        namespace,
    )
    reader = kubeconfig(cluster, tmp_path / "reader", certificate_user(cluster, user))

    result = phoebe("explain", f"hr/{namespace}/web", kubeconfig=reader)
    assert result.code == 1, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[1].endswith(": RetriesExceeded: Failed to install after 2 attempt(s)")
    after = {
        title: lines[lines.index(title) + 1]
        for title in (
            "Applied objects that are not healthy",
            "Recent events",
            "helm-controller log (warnings and errors)",
        )
    }
    assert after == {
        "Applied objects that are not healthy": (
            f"  not allowed: cannot read deployments in {namespace}, statefulsets in {namespace}, daemonsets in "
            f"{namespace}, replicasets in {namespace}, jobs in {namespace}, persistentvolumeclaims in {namespace}"
        ),
        "Recent events": f"  not allowed: cannot read events in {namespace}",
        "helm-controller log (warnings and errors)": "  not allowed: cannot read the helm-controller's log",
    }
    assert f"phoebe sync hr {namespace}/web --reset" in result.stdout

    doc = json.loads(phoebe("explain", f"ks/{namespace}/app", "-o", "json", kubeconfig=reader).stdout)
    assert doc["verdict"]["cause"]["name"] == "database"
    assert (doc["events"]["allowed"], doc["logs"]["allowed"]) == (False, False)
    assert doc["events"]["notAllowed"] == [f"events in {namespace}"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("explain", "nope/x"), 2, "phoebe: error: unknown kind 'nope' in 'nope/x'"),
        (
            ("explain", "ks"),
            2,
            "phoebe: error: name the object to explain: ks/NAME or ks/NAMESPACE/NAME (e.g. hr/media/sonarr)",
        ),
        (("explain", "ks/{ns}/missing"), 5, "phoebe: error: Kustomization not found: {ns}/missing"),
        (("explain", "hr", "missing", "-n", "{ns}"), 5, "phoebe: error: HelmRelease not found: {ns}/missing"),
        (("explain", "ks/no-such-namespace-x/app"), 5, "phoebe: error: namespace no-such-namespace-x not found"),
        (
            ("explain", "ks/a", "-A"),
            2,
            "phoebe: error: explain takes one object: name its namespace (KIND/NAMESPACE/NAME or -n), not -A",
        ),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, args: tuple[str, ...], code: int, message: str
) -> None:
    result = phoebe(*(a.format(ns=namespace) for a in args), kubeconfig=cluster.kubeconfig)
    assert (result.code, result.stdout) == (code, "")
    assert result.stderr == message.format(ns=namespace) + "\n"


def test_a_user_who_may_not_read_the_object_gets_exit_4(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    ks(cluster.api, "app", namespace, "ready")
    nobody = kubeconfig(cluster, tmp_path / "nobody", certificate_user(cluster, f"nobody-{namespace}"))
    result = phoebe("explain", f"ks/{namespace}/app", kubeconfig=nobody)
    assert (result.code, result.stdout) == (4, "")
    assert result.stderr == (
        "phoebe: error: forbidden: kustomizations.kustomize.toolkit.fluxcd.io is forbidden: "
        f'User "nobody-{namespace}" cannot list resource "kustomizations" in API group '
        f'"kustomize.toolkit.fluxcd.io" in the namespace "{namespace}"\n'
    )


def test_every_suggested_command_is_one_phoebe_accepts(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """Each suggested sync/resume runs (as a dry run: nothing changes) without a usage error;
    each suggested explain explains."""
    api = cluster.api
    git(api, namespace)
    ks(api, "database", namespace, "failed")
    ks(api, "app", namespace, f"blocked:{namespace}/database", depends_on=["database"])
    ks(api, "paused", namespace, "ready", suspend=True)
    release_with_exhausted_retries(api, namespace)
    suggested: set[str] = set()
    for target in (f"ks/{namespace}/app", f"ks/{namespace}/database", f"ks/{namespace}/paused", f"hr/{namespace}/web"):
        doc = json.loads(phoebe("explain", target, "-o", "json", kubeconfig=cluster.kubeconfig).stdout)
        suggested.update(step["command"] for step in doc["nextSteps"] if step["command"].startswith("phoebe "))
    assert {
        f"phoebe sync hr {namespace}/web --reset",
        f"phoebe resume ks {namespace}/paused",
        f"phoebe explain ks {namespace}/database",
        f"phoebe sync ks {namespace}/database",
        f"phoebe logs ks/{namespace}/database --level error",
    } <= suggested
    for command in sorted(suggested):
        args = command.split()[1:]
        if args[0] in ("sync", "resume"):
            args += ["--dry-run"]
        result = phoebe(*args, kubeconfig=cluster.kubeconfig)
        assert result.code in (0, 1, 5), f"{command}: {result.code} {result.stderr}"
        assert result.code != 5 or "no Pods for" in result.stderr, f"{command}: {result.stderr}"
