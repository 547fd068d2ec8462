"""``phoebe status --repo --compare`` against the real API server: the checkout beside what the
cluster holds, object by object (statuses written as the controllers write them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cluster, PhoebeRunner
from tests.repo.conftest import RepoWriter, config_map, head_of, kustomization_yaml
from tests.support import fluxstatus, manifests

pytestmark = [pytest.mark.repo, pytest.mark.cluster]


def _ks(name: str, namespace: str, path: str) -> str:
    return f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: {namespace}
spec:
  interval: 1h
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: home-ops
"""


def _release(namespace: str, version: str) -> str:
    return f"""apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: {namespace}
spec:
  interval: 1h
  chart:
    spec:
      chart: app-template
      version: {version}
      sourceRef:
        kind: HelmRepository
        name: bjw-s
"""


def _checkout(write_repo: RepoWriter, namespace: str) -> Path:
    apps = ["web", "db", "cache"]
    return write_repo(
        {
            "kubernetes/flux/cluster.yaml": (
                manifests_yaml(manifests.git_repository("home-ops", namespace))
                + "---\n"
                + _ks("apps", namespace, "./kubernetes/apps")
            ),
            "kubernetes/apps/kustomization.yaml": kustomization_yaml(*(f"{a}.yaml" for a in apps)),
            **{f"kubernetes/apps/{a}.yaml": _ks(a, namespace, f"./kubernetes/{a}") for a in apps},
            "kubernetes/web/release.yaml": _release(namespace, "4.0.0"),
            "kubernetes/db/cm.yaml": config_map("db", namespace, {"a": "b"}),
            "kubernetes/cache/cm.yaml": config_map("cache", namespace, {"a": "b"}),
        }
    )


def manifests_yaml(obj: dict[str, object]) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False)


def test_compare_says_what_is_missing_orphaned_behind_failing_and_in_sync(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = _checkout(write_repo, namespace)
    head = head_of(root)
    api = cluster.api

    def put(obj: dict[str, object], status: dict[str, object]) -> None:
        api.patch_status(api.create(obj), status)

    source = manifests.git_repository("home-ops", namespace)
    put(source, fluxstatus.ready_status(source, revision=f"main@sha1:{head}"))
    at_head = f"main@sha1:{head}"
    for name, revision in (("apps", at_head), ("web", "main@sha1:" + "0" * 40)):
        ks = manifests.kustomization(name, namespace, source=("GitRepository", "home-ops"))
        put(ks, fluxstatus.ready_status(ks, revision=revision))
    db = manifests.kustomization("db", namespace, source=("GitRepository", "home-ops"))
    created = api.create(db)
    failing = fluxstatus.failed_status(created, reason="BuildFailed", message="kustomize build failed")
    failing["lastAttemptedRevision"] = failing["lastAppliedRevision"] = at_head
    api.patch_status(created, failing)
    old = manifests.kustomization("old", namespace, source=("GitRepository", "home-ops"))
    put(old, fluxstatus.ready_status(old, revision=at_head))
    release = manifests.helm_release("web", namespace, version="3.7.3")
    put(release, fluxstatus.ready_status(release))

    result = phoebe("status", "--repo", str(root), "--compare", "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"checkout {root} at main@sha1:{head}"
    rows = [line.split(None, 6) for line in lines[2:-1]]
    short = head[:8]
    assert [row[:6] for row in rows] == [
        ["✗", "missing", namespace, "Kustomization", "cache", short],
        ["✗", "failing", namespace, "Kustomization", "db", short],
        ["…", "behind", namespace, "HelmRelease", "web", "4.0.0"],
        ["…", "behind", namespace, "Kustomization", "web", short],
        ["?", "orphan", namespace, "Kustomization", "old", f"main@sha1:{head}"],
        ["✓", "in-sync", namespace, "GitRepository", "home-ops", f"main@sha1:{head}"],
        ["✓", "in-sync", namespace, "Kustomization", "apps", short],
    ]
    assert lines[-1] == "1 missing, 1 failing, 2 behind, 1 orphan, 2 in-sync"

    document = json.loads(
        phoebe(
            "status", "--repo", str(root), "--compare", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig
        ).stdout
    )
    assert document["kind"] == "CompareReport"
    assert document["inSync"] is False
    assert document["summary"] == {"missing": 1, "failing": 1, "behind": 2, "orphan": 1, "in-sync": 2}
    web = next(o for o in document["objects"] if o["kind"] == "HelmRelease")
    assert (web["checkout"], web["cluster"], web["state"]) == ("4.0.0", "3.7.3", "behind")


def test_compare_in_sync_exits_0_and_writes_nothing(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": manifests_yaml(manifests.git_repository("home-ops", namespace))
            + "---\n"
            + _ks("apps", namespace, "./kubernetes/apps"),
            "kubernetes/apps/cm.yaml": config_map("x", namespace, {"a": "b"}),
        }
    )
    head = head_of(root)
    api = cluster.api
    source = api.create(manifests.git_repository("home-ops", namespace))
    source = api.patch_status(source, fluxstatus.ready_status(source, revision=f"main@sha1:{head}"))
    ks = api.create(manifests.kustomization("apps", namespace, source=("GitRepository", "home-ops")))
    ks = api.patch_status(ks, fluxstatus.ready_status(ks, revision=f"main@sha1:{head}"))
    before = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in (source, ks)}

    result = phoebe("status", "--repo", str(root), "--compare", "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "2 in-sync"
    after = {
        name: api.get(api_version, kind, namespace, name)["metadata"]["resourceVersion"]
        for name, api_version, kind in (
            ("home-ops", "source.toolkit.fluxcd.io/v1", "GitRepository"),
            ("apps", "kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
        )
    }
    assert after == before


def test_compare_needs_a_cluster(write_repo: RepoWriter, phoebe: PhoebeRunner, tmp_path: Path) -> None:
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": manifests_yaml(manifests.git_repository("home-ops", "x"))
            + "---\n"
            + _ks("apps", "x", "./kubernetes/apps"),
            "kubernetes/apps/cm.yaml": config_map("x", "x", {"a": "b"}),
        }
    )
    missing = tmp_path / "no-kubeconfig"

    result = phoebe("status", "--repo", str(root), "--compare", kubeconfig=missing)

    assert result.code == 2
    assert result.stderr.startswith("phoebe: error: ")
    assert result.stderr.count("\n") == 1
