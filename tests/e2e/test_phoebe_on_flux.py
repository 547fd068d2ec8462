"""phoebe against the real source-controller, kustomize-controller and helm-controller."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import PhoebeRunner
from tests.e2e.conftest import HR, FluxEnv, sync_cascade

pytestmark = pytest.mark.e2e


def test_check_sees_the_real_controllers(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("check", "-o", "json", kubeconfig=flux_env.kubeconfig)
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["fluxVersion"] == "v2.9.5"
    assert {c["name"] for c in doc["controllers"]} == {"source-controller", "kustomize-controller", "helm-controller"}


def test_sync_ks_waits_for_the_real_controller(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("sync", "ks", "-A", "--timeout", "2m", "-o", "json", kubeconfig=flux_env.kubeconfig)

    assert result.code == 1, result.stdout
    items = {f"{i['namespace']}/{i['name']}": i for i in json.loads(result.stdout)["items"]}
    failing = items["rook-ceph/rook-ceph-cluster"]
    assert failing["result"] == "failed"
    assert "spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive" in failing["message"]
    blocked = items["media/sonarr"]
    assert (blocked["result"], blocked["reason"]) == ("failed", "DependencyNotReady")
    assert items["media/plex"]["result"] == "skipped"
    done = [i for i in items.values() if i["result"] == "done"]
    assert len(done) == len(items) - 3
    assert all(i["revision"].startswith("main@sha1:") for i in done)


def test_sync_hr_force_upgrades_for_real(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    before = flux_env.api.get(*HR, "default", "homepage")["status"]["history"][0]["version"]

    result = phoebe("sync", "hr", "homepage", "-n", "default", "--force", "-o", "json", kubeconfig=flux_env.kubeconfig)

    assert result.code == 0, result.stdout
    token = json.loads(result.stdout)["token"]
    release = flux_env.api.get(*HR, "default", "homepage")
    assert release["status"]["lastHandledReconcileAt"] == token
    assert release["status"]["lastHandledForceAt"] == token
    assert release["status"]["history"][0]["version"] == before + 1  # a forced upgrade: a new revision
    ready = next(c for c in release["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "UpgradeSucceeded")


def test_sync_git_cascade_after_a_push(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    values = flux_env.git_dir / "kubernetes/apps/kube-system/reloader/app/helmrelease.yaml"
    values.write_text(values.read_text() + f"\n# pushed at {time.time_ns()}\n")

    result, items = sync_cascade(phoebe, flux_env)

    source = items["flux-system/flux-system"]
    assert (source["phase"], source["result"]) == ("target", "done")
    new = source["revision"]
    reloader = items["kube-system/reloader"]
    assert (reloader["phase"], reloader["result"], reloader["revision"]) == ("cascade", "done", new)
    assert items["rook-ceph/rook-ceph-cluster"]["result"] == "failed"
    assert items["media/plex"]["result"] == "skipped"
    assert result.code == 1  # the failing app failed on the new revision too
    assert (
        flux_env.api.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kube-system", "reloader")["status"][
            "lastAppliedRevision"
        ]
        == new
    )


def test_status_tree_after_real_reconciles(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("status", "-o", "json", kubeconfig=flux_env.kubeconfig)
    assert result.code == 1
    doc = json.loads(result.stdout)
    objects = {f"{o['kind']}/{o['namespace']}/{o['name']}": o for o in doc["objects"]}
    failing = objects["Kustomization/rook-ceph/rook-ceph-cluster"]
    assert failing["state"] == "failed"
    assert "spec.ports[0].port: Invalid value: 99999" in failing["message"]
    blocked = objects["Kustomization/media/sonarr"]
    assert blocked["blockedBy"]["chain"] == [
        {"kind": "Kustomization", "namespace": "rook-ceph", "name": "rook-ceph-cluster"}
    ]
    assert "99999" in blocked["blockedBy"]["cause"]
    assert objects["Kustomization/media/plex"]["state"] == "suspended"
    # the real inventories make the tree: cluster-apps applied sonarr; radarr applied its release
    edges = {(e["parent"]["name"], e["child"]["kind"], e["child"]["name"]) for e in doc["tree"]["edges"]}
    assert ("cluster-apps", "Kustomization", "sonarr") in edges
    assert [r["name"] for r in doc["tree"]["roots"]] == ["cluster-apps", "cluster-meta"]
    text = phoebe("status", "--failed", kubeconfig=flux_env.kubeconfig)
    assert any("blocked by rook-ceph/rook-ceph-cluster ←" in line for line in text.lines)


def test_events_of_the_failing_app(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe(
        "events", "ks/rook-ceph/rook-ceph-cluster", "--warnings", "-o", "json", kubeconfig=flux_env.kubeconfig
    )
    assert result.code == 0
    events = json.loads(result.stdout)["events"]
    assert events and events[-1]["source"] == "kustomize-controller"
    assert "99999" in events[-1]["message"]


def test_logs_of_the_failing_app(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe("logs", "ks/rook-ceph/rook-ceph-cluster", "--level", "error", kubeconfig=flux_env.kubeconfig)
    assert result.code == 0, result.stderr
    assert result.lines, "the real kustomize-controller logged no error for the failing app"
    assert " error kustomize ks/rook-ceph/rook-ceph-cluster  " in result.lines[0]
    # Transient errors (a request cut short under load) may come first: the dry-run failure must be there.
    assert any("spec.ports[0].port: Invalid value: 99999" in line for line in result.lines), result.lines
    merged = phoebe("logs", "--tail", "50", "-o", "json", kubeconfig=flux_env.kubeconfig)
    records = [json.loads(line) for line in merged.lines]
    assert {r["deployment"] for r in records} == {"kustomize-controller", "helm-controller", "source-controller"}
    stamps = [r["ts"] for r in records]
    assert stamps == sorted(stamps)
