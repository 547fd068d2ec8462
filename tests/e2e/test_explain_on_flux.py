"""`phoebe explain` on the real kustomize-controller and helm-controller: the sample's failing app,
the app blocked behind it, the suspended one, and a HelmRelease whose install retries are
exhausted (a post-renderer makes its ConfigMap invalid, so the API server refuses every install)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import PhoebeRunner
from tests.e2e.conftest import HR, FluxEnv

pytestmark = pytest.mark.e2e

SERVICE_ERROR = "spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive"


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "500")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.5)


def steps_of(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    return [line.split("  ")[1] for line in lines[lines.index("What to do next") + 1 :]]


def test_the_failing_app(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("explain", "ks/rook-ceph/rook-ceph-cluster", kubeconfig=flux_env.kubeconfig)
    assert result.code == 1, result.stderr
    verdict = result.stdout.splitlines()[1]
    assert verdict.startswith("✗ not ready for ")
    assert ": ReconciliationFailed: Service/rook-ceph/rook-ceph-mgr-dashboard-lb dry-run failed" in verdict
    assert verdict.endswith(SERVICE_ERROR)
    assert steps_of(result.stdout) == [
        "phoebe logs ks/rook-ceph/rook-ceph-cluster --level error",
        "phoebe sync ks rook-ceph/rook-ceph-cluster",
    ]

    def logged() -> dict[str, Any] | None:
        out = phoebe("explain", "ks/rook-ceph/rook-ceph-cluster", "-o", "json", kubeconfig=flux_env.kubeconfig)
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc if doc["logs"]["items"] else None

    doc = wait_for("the controller's error lines about it", logged, timeout=60)
    assert doc["verdict"]["cause"]["name"] == "rook-ceph-cluster"
    assert [(c["relation"], c["object"]["kind"], c["state"]) for c in doc["chain"]] == [
        ("dependsOn", "Kustomization", "ready"),
        ("source", "GitRepository", "ready"),
        ("applied by", "Kustomization", "ready"),
    ]
    lines = doc["logs"]["items"]
    assert {line["controller"] for line in lines} == {"kustomize-controller"}
    assert all(line["level"] == "error" for line in lines)
    assert any("99999" in (line["error"] or "") for line in lines)
    assert any(e["reason"] == "ReconciliationFailed" for e in doc["events"]["items"])


def test_the_app_blocked_behind_it(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("explain", "ks", "sonarr", "-n", "media", kubeconfig=flux_env.kubeconfig)
    assert result.code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Kustomization media/sonarr"
    assert lines[1].startswith("✗ not ready for ")
    assert ": blocked by Kustomization rook-ceph/rook-ceph-cluster — ReconciliationFailed: " in lines[1]
    assert lines[1].endswith(SERVICE_ERROR)
    chain = lines[lines.index("Chain") + 1 : lines.index("Conditions") - 1]
    assert chain[0].split()[:4] == ["dependsOn", "✗", "Kustomization", "rook-ceph/rook-ceph-cluster"]
    assert [line.split()[0] for line in chain[-2:]] == ["source", "applied"]
    assert steps_of(result.stdout) == [
        "phoebe explain ks rook-ceph/rook-ceph-cluster",
        "phoebe sync ks rook-ceph/rook-ceph-cluster",
    ]
    markdown = phoebe("explain", "ks/media/sonarr", "-o", "markdown", kubeconfig=flux_env.kubeconfig)
    assert "- `phoebe explain ks rook-ceph/rook-ceph-cluster`: the root cause is " in markdown.stdout


def test_the_suspended_app(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("explain", "ks/media/plex", kubeconfig=flux_env.kubeconfig)
    assert result.code == 0, result.stderr
    verdict = result.stdout.splitlines()[1]
    assert verdict.startswith("⏸ suspended")
    assert verdict.endswith("Flux does not reconcile it until it is resumed")
    assert steps_of(result.stdout)[0] == "phoebe resume ks media/plex"


@pytest.fixture
def exhausted_release(flux_env: FluxEnv) -> Iterator[str]:
    """A HelmRelease from the sample's app-template OCIRepository whose install the API server
    refuses every time (a label value no object may have), with one retry: after two failed
    installs helm-controller stalls with RetriesExceeded."""
    api = flux_env.api
    namespace = f"explain-{secrets.token_hex(3)}"
    api.ensure_namespace(namespace)
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "broken", "namespace": namespace},
        "spec": {
            "interval": "1h",
            "chartRef": {"kind": "OCIRepository", "name": "app-template", "namespace": "flux-system"},
            "install": {"disableWait": True, "remediation": {"retries": 1}},
            "values": {"greeting": "hello"},
            "postRenderers": [
                {
                    "kustomize": {
                        "patches": [
                            {
                                "target": {"kind": "ConfigMap"},
                                "patch": (
                                    "- op: add\n  path: /metadata/labels/broken\n  value: not a valid label value!\n"
                                ),
                            }
                        ]
                    }
                }
            ],
        },
    }
    created = api.create(release)
    try:
        yield namespace
    finally:
        api.delete(created)


def test_a_release_whose_retries_are_exhausted(phoebe: PhoebeRunner, flux_env: FluxEnv, exhausted_release: str) -> None:
    namespace = exhausted_release

    def stalled() -> bool:
        obj = flux_env.api.get(*HR, namespace, "broken")
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Stalled" and c["status"] == "True" for c in conditions)

    wait_for("helm-controller to give up after its retries", stalled)

    result = phoebe("explain", f"hr/{namespace}/broken", kubeconfig=flux_env.kubeconfig)
    assert result.code == 1, result.stderr
    verdict = result.stdout.splitlines()[1]
    assert verdict.startswith("✗ not ready for ")
    assert verdict.endswith(": RetriesExceeded: Failed to install after 2 attempt(s)")
    lines = result.stdout.splitlines()
    chain = lines[lines.index("Chain") + 1 : lines.index("Conditions") - 1]
    assert [line.split()[:4] for line in chain] == [["chart", "✓", "OCIRepository", "flux-system/app-template"]]
    assert steps_of(result.stdout)[0] == f"phoebe sync hr {namespace}/broken --reset"

    doc = json.loads(phoebe("explain", f"hr/{namespace}/broken", "-o", "json", kubeconfig=flux_env.kubeconfig).stdout)
    release = doc["release"]
    assert (release["installFailures"], release["installRetries"], release["retriesExhausted"]) == (2, 1, True)
    assert release["lastAttemptedReleaseAction"] == "install"
    assert release["nextStep"].startswith("nothing: the install failed 2 time(s) and no retries remain")
    assert doc["source"]["object"] == {"kind": "OCIRepository", "namespace": "flux-system", "name": "app-template"}
    assert any(e["reason"] == "InstallFailed" for e in doc["events"]["items"])


def test_a_ready_release_from_an_oci_chart(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    """helm-controller records the OCI chart's version with the digest as build metadata
    (3.7.3+097f9a906942): that is the source's revision applied, not a release behind it."""
    doc = json.loads(phoebe("explain", "hr/default/homepage", "-o", "json", kubeconfig=flux_env.kubeconfig).stdout)
    assert doc["verdict"]["ready"] is True
    source = doc["source"]
    assert source["object"] == {"kind": "OCIRepository", "namespace": "flux-system", "name": "app-template"}
    assert source["lastAppliedRevision"].startswith("3.7.3+")
    assert source["appliedCurrent"] is True
    assert doc["release"]["history"][0]["status"] == "deployed"
    assert [s["command"] for s in doc["nextSteps"]] == ["phoebe sync hr default/homepage --with-source"]
