"""`phoebe events` against the real API server (events written as a controller's recorder would)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cluster, PhoebeRunner
from tests.support import manifests

pytestmark = pytest.mark.cluster


def event(
    obj: dict[str, Any],
    name: str,
    type_: str,
    reason: str,
    message: str,
    at: str,
    count: int = 1,
    component: str = "kustomize-controller",
) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{name}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "count": count,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "source": {"component": component},
    }


def test_events_of_a_release_and_its_sources(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    repo = api.create(manifests.helm_repository("charts", namespace))
    release = api.create(manifests.helm_release("web", namespace, repository="charts"))
    other = api.create(manifests.helm_release("other", namespace, repository="charts"))
    api.create(
        event(
            release,
            "a",
            "Normal",
            "InstallSucceeded",
            "Helm install succeeded",
            "2026-11-26T10:00:00Z",
            component="helm-controller",
        )
    )
    api.create(
        event(
            release,
            "b",
            "Warning",
            "UpgradeFailed",
            "Helm upgrade failed:\ntimed out",
            "2026-11-26T10:05:00Z",
            count=3,
            component="helm-controller",
        )
    )
    api.create(
        event(
            repo,
            "c",
            "Warning",
            "Failed",
            "failed to fetch index",
            "2026-11-26T10:02:00Z",
            component="source-controller",
        )
    )
    api.create(event(other, "d", "Normal", "InstallSucceeded", "not this one", "2026-11-26T10:03:00Z"))

    result = phoebe("events", f"hr/{namespace}/web", "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [e["reason"] for e in doc["events"]] == ["InstallSucceeded", "Failed", "UpgradeFailed"]  # newest last
    assert doc["events"][1]["object"] == {"kind": "HelmRepository", "namespace": namespace, "name": "charts"}
    assert doc["events"][2]["count"] == 3
    text = phoebe("events", "hr/web", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert text.lines[0].split() == ["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert text.lines[-1].split()[1:4] == ["Warning", "UpgradeFailed", f"HelmRelease/{namespace}/web"]
    assert text.lines[-1].endswith("Helm upgrade failed: timed out (x3)")

    warnings = phoebe("events", "-n", namespace, "--warnings", "-o", "json", kubeconfig=cluster.kubeconfig)
    assert [e["reason"] for e in json.loads(warnings.stdout)["events"]] == ["Failed", "UpgradeFailed"]
    limited = phoebe("events", "-n", namespace, "--limit", "1", kubeconfig=cluster.kubeconfig)
    assert limited.lines[0] == "(3 older events not shown; --limit to see more)"


def test_events_errors(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    missing = phoebe("events", f"ks/{namespace}/ghost", kubeconfig=cluster.kubeconfig)
    assert (missing.code, missing.stderr) == (5, f"phoebe: error: Kustomization not found: {namespace}/ghost\n")
    bad = phoebe("events", "nonsense", kubeconfig=cluster.kubeconfig)
    assert bad.code == 2
    assert bad.stderr.startswith("phoebe: error: unknown kind 'nonsense' (use KIND, KIND/NAME or KIND/NAMESPACE/NAME")
    empty = phoebe("events", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert (empty.code, empty.stdout) == (0, "no events (the API server keeps them for an hour by default)\n")


def test_kind_name_forms_and_a_kind_alone(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D11: events took only ks/NAME, while sync and status take KIND NAME: both work everywhere."""
    app = cluster.api.create(manifests.kustomization("app", namespace))
    release = cluster.api.create(manifests.helm_release("web", namespace))
    cluster.api.create(event(app, "a", "Normal", "ReconciliationSucceeded", "applied", "2026-11-26T10:00:00Z"))
    cluster.api.create(event(release, "b", "Normal", "InstallSucceeded", "installed", "2026-11-26T10:00:01Z"))

    def reasons(*args: str) -> list[str]:
        result = phoebe("events", *args, "-o", "json", kubeconfig=cluster.kubeconfig)
        assert result.code == 0, result.stderr
        return [e["reason"] for e in json.loads(result.stdout)["events"]]

    for args in (
        ["ks", "app", "-n", namespace],
        ["ks/app", "-n", namespace],
        ["ks", f"{namespace}/app"],
        [f"ks/{namespace}/app"],
        ["kustomization", "app", "-n", namespace],
    ):
        assert reasons(*args) == ["ReconciliationSucceeded"], args
    assert reasons("hr", "-n", namespace) == ["InstallSucceeded"]  # a kind alone: every event about that kind
    assert reasons("-n", namespace) == ["ReconciliationSucceeded", "InstallSucceeded"]


def test_a_namespace_that_does_not_exist_exits_5(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D1: `events -n typo` said "no events" and exited 0."""
    typo = f"{namespace}-typo"
    for args in (["-n", typo], ["ks", "-n", typo], ["ks", "app", "-n", typo], [f"ks/{typo}/app"]):
        result = phoebe("events", *args, kubeconfig=cluster.kubeconfig)
        assert (result.code, result.stdout, result.stderr) == (5, "", f"phoebe: error: namespace {typo} not found\n")
    empty = phoebe("events", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert empty.code == 0
