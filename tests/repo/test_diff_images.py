"""``phoebe diff images``: the container images a change moves, ref against ref (real kustomize)
and the checkout against the real API server (server-side-apply dry-runs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cluster, PhoebeRunner
from tests.repo.conftest import RepoWriter
from tests.support import fluxstatus, manifests

pytestmark = pytest.mark.repo

OWNER = "kustomize.toolkit.fluxcd.io"


def _deployment(image: str, init_image: str = "busybox:1.36") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "initContainers": [{"name": "migrate", "image": init_image}],
                    "containers": [{"name": "app", "image": image}],
                },
            },
        },
    }


def _cronjob(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "backup"},
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "backup", "image": image}]}
                    }
                }
            },
        },
    }


def _configmap(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": value}}


def _files(namespace: str, *objects: dict[str, Any]) -> dict[str, str]:
    ks = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": namespace},
        "spec": {
            "interval": "1h",
            "path": "./apps",
            "prune": True,
            "targetNamespace": namespace,
            "sourceRef": {"kind": "GitRepository", "name": "home-ops"},
        },
    }
    files = {f"apps/{o['kind'].lower()}.yaml": yaml.safe_dump(o, sort_keys=False) for o in objects}
    files["apps/kustomization.yaml"] = yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(name.removeprefix("apps/") for name in files),
        }
    )
    files["kubernetes/flux/cluster.yaml"] = "---\n".join(
        yaml.safe_dump(o, sort_keys=False) for o in (manifests.git_repository("home-ops", namespace), ks)
    )
    return files


def _commit(root: Path, files: dict[str, str]) -> str:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "change"], cwd=root, check=True)
    return _head(root)


def _head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True).stdout


def test_images_between_two_refs(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo(_files("apps", _deployment("ghcr.io/example/web:1.0.0"), _configmap("1")))
    base = _head(root)[:8]
    # the image bumped, an init image bumped, a CronJob added, a ConfigMap changed (no image)
    _commit(
        root,
        _files(
            "apps",
            _deployment("ghcr.io/example/web:1.1.0", "busybox:1.37"),
            _cronjob("ghcr.io/example/backup:2.0"),
            _configmap("2"),
        ),
    )

    result = phoebe("diff", "images", "--repo", str(root), "--base", "HEAD~1", "--head", "HEAD")

    assert result.code == 1, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"HEAD~1 ({base}) → HEAD (")
    assert [line.split() for line in lines[1:]] == [
        ["KUSTOMIZATION", "WORKLOAD", "CONTAINER", "BEFORE", "AFTER"],
        ["apps/apps", "CronJob/apps/backup", "backup", "·", "ghcr.io/example/backup:2.0"],
        ["apps/apps", "Deployment/apps/web", "migrate", "(init)", "busybox:1.36", "busybox:1.37"],
        ["apps/apps", "Deployment/apps/web", "app", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0"],
        ["3", "image", "changes", "in", "2", "workloads"],
    ]

    markdown = phoebe("diff", "images", "--repo", str(root), "--base", "HEAD~1", "--head", "HEAD", "-o", "markdown")
    assert markdown.code == 1
    row = "| apps/apps | `Deployment/apps/web` | app | `ghcr.io/example/web:1.0.0` | `ghcr.io/example/web:1.1.0` |"
    assert row in markdown.stdout.splitlines()

    # a Kustomization named by the word after "images", and nothing moved: exit 0
    same = phoebe("diff", "images", "apps/apps", "--repo", str(root), "--base", "HEAD", "-o", "json")
    assert same.code == 0, same.stderr
    doc = json.loads(same.stdout)
    assert (doc["kind"], doc["differs"], doc["images"]) == ("ImageDiff", False, [])

    # plain diff is untouched by the images view
    plain = phoebe("diff", "--repo", str(root), "--base", "HEAD~1", "--head", "HEAD")
    assert plain.code == 1 and "~ changed  ConfigMap/apps/settings" in plain.stdout


@pytest.mark.cluster
def test_images_against_the_cluster(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    live = _deployment("ghcr.io/example/web:1.0.0")
    live["metadata"] |= {"namespace": namespace, "labels": {f"{OWNER}/name": "apps", f"{OWNER}/namespace": namespace}}
    cluster.api.apply(live, manager="kustomize-controller")
    source = cluster.api.create(manifests.git_repository("home-ops", namespace))
    cluster.api.patch_status(source, fluxstatus.ready_status(source))
    ks = cluster.api.create(manifests.kustomization("apps", namespace, source=("GitRepository", "home-ops")))
    status = fluxstatus.ready_status(ks)
    status["inventory"] = {"entries": [{"id": f"{namespace}_web_apps_Deployment", "v": "v1"}]}
    cluster.api.patch_status(ks, status)
    root = write_repo(_files(namespace, _deployment("ghcr.io/example/web:1.2.0")))

    result = phoebe("diff", "images", "-o", "json", "--repo", str(root), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 1, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["mode"], doc["base"], doc["head"]) == ("cluster", "cluster", "checkout")
    assert doc["images"] == [
        {
            "kustomization": f"{namespace}/apps",
            "workload": f"Deployment/{namespace}/web",
            "change": "changed",
            "container": "app",
            "before": "ghcr.io/example/web:1.0.0",
            "after": "ghcr.io/example/web:1.2.0",
        }
    ]
    unchanged = cluster.api.get("apps/v1", "Deployment", namespace, "web")
    assert unchanged["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/web:1.0.0"
