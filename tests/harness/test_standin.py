"""The controller stand-in answers reconcile requests on the real API server as told."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.support import manifests
from tests.support.fluxstatus import REQUESTED_AT
from tests.support.standin import FluxStandIn, Outcome

pytestmark = pytest.mark.cluster

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")


def wait_for(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def request(cluster: Cluster, obj: dict, token: str) -> None:
    cluster.api.merge_patch(obj, {"metadata": {"annotations": {REQUESTED_AT: token}}}, manager="flux-client-side-apply")


def conditions(obj: dict) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"]) for c in (obj.get("status") or {}).get("conditions", [])
    }


def handled(cluster: Cluster, namespace: str, name: str, token: str) -> dict | None:
    obj = cluster.api.get(*KS, namespace, name)
    return obj if (obj.get("status") or {}).get("lastHandledReconcileAt") == token else None


def test_succeed_fail_never_and_dependencies(cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    objs = {
        name: api.create(manifests.kustomization(name, namespace, depends_on=deps))
        for name, deps in (("ok", None), ("broken", None), ("silent", None), ("child", ["ok"]))
    }
    with FluxStandIn(api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "ok", Outcome.succeed(revision="main@sha1:" + "a" * 40))
        standin.expect(
            "Kustomization", namespace, "broken", Outcome.fail("ArtifactFailed", "kustomization path not found")
        )
        standin.expect("Kustomization", namespace, "silent", Outcome.never())
        standin.expect("Kustomization", namespace, "child", Outcome.after_dependencies())

        request(cluster, objs["child"], "t1")
        child = wait_for(lambda: handled(cluster, namespace, "child", "t1"))
        assert conditions(child)["Ready"] == (
            "False",
            "DependencyNotReady",
            f"dependency '{namespace}/ok' is not ready",
        )

        for name in ("ok", "broken", "silent"):
            request(cluster, objs[name], "t1")
        ok = wait_for(lambda: handled(cluster, namespace, "ok", "t1"))
        assert conditions(ok)["Ready"] == ("True", "ReconciliationSucceeded", "Applied revision: main@sha1:" + "a" * 40)
        assert ok["status"]["lastAppliedRevision"] == "main@sha1:" + "a" * 40
        assert ok["status"]["observedGeneration"] == ok["metadata"]["generation"]

        broken = wait_for(lambda: handled(cluster, namespace, "broken", "t1"))
        assert conditions(broken)["Ready"] == ("False", "ArtifactFailed", "kustomization path not found")
        assert conditions(broken)["Reconciling"][:2] == ("True", "ProgressingWithRetry")
        assert broken["status"]["observedGeneration"] == -1
        assert broken["status"]["conditions"][0]["observedGeneration"] == broken["metadata"]["generation"]

        # the dependant becomes ready once its dependency is
        wait_for(lambda: conditions(api.get(*KS, namespace, "child")).get("Ready", ("",))[0] == "True")
        time.sleep(0.3)
        assert "lastHandledReconcileAt" not in (api.get(*KS, namespace, "silent").get("status") or {})
        assert standin.tokens_for("Kustomization", namespace, "ok") == ["t1"]


def test_delay_and_objects_outside_its_namespaces(cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    obj = api.create(manifests.kustomization("late", namespace))
    with FluxStandIn(api, namespaces={"elsewhere"}, default=Outcome.succeed()) as standin:
        request(cluster, obj, "t1")
        time.sleep(0.5)
        assert handled(cluster, namespace, "late", "t1") is None  # not its namespace, no expectation
        standin.expect("Kustomization", namespace, "late", Outcome.succeed(delay=0.5))
        request(cluster, obj, "t2")
        started = time.monotonic()
        wait_for(lambda: handled(cluster, namespace, "late", "t2"))
        assert time.monotonic() - started >= 0.45


def test_helm_release_force_and_external_secret(cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    release = api.create(manifests.helm_release("web", namespace))
    secret = api.create(manifests.external_secret("creds", namespace))
    with FluxStandIn(api, namespaces={namespace}, default=Outcome.succeed()):
        api.merge_patch(
            release,
            {"metadata": {"annotations": {REQUESTED_AT: "t1", "reconcile.fluxcd.io/forceAt": "t1"}}},
            manager="flux-client-side-apply",
        )
        api.merge_patch(secret, {"metadata": {"annotations": {"force-sync": "1700000000"}}})
        hr = wait_for(
            lambda: (
                (o := api.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", namespace, "web"))
                .get("status", {})
                .get("lastHandledReconcileAt")
                == "t1"
                and o
            )
        )
        assert hr["status"]["lastHandledForceAt"] == "t1"
        assert "lastHandledResetAt" not in hr["status"]
        assert hr["status"]["history"][0]["chartVersion"] == "3.7.3"
        assert conditions(hr)["Ready"] == (
            "True",
            "InstallSucceeded",
            f"Helm install succeeded for release {namespace}/web.v1 with chart app-template@3.7.3",
        )
        es = wait_for(
            lambda: (
                (o := api.get("external-secrets.io/v1", "ExternalSecret", namespace, "creds"))
                .get("status", {})
                .get("conditions")
                and o
            )
        )
        assert conditions(es)["Ready"] == ("True", "SecretSynced", "secret synced")
