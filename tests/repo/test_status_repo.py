"""`phoebe status --repo` drawn as the cluster view is: a HelmRelease shows its chart's source,
and a dependsOn cycle (or a dependency declared nowhere) is blocked, as validate says."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PhoebeRunner
from tests.repo.conftest import FIXTURE_REPO, GIT_REPOSITORY, RepoWriter, config_map, flux_ks, kustomization_yaml

CM = config_map("cm", "default", {"a": "b"})


def _repo(write_repo: RepoWriter, apps: dict[str, str]) -> Path:
    files = {
        "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("cluster-apps", "./kubernetes/apps"),
        "kubernetes/apps/kustomization.yaml": kustomization_yaml("ks.yaml"),
        "kubernetes/apps/ks.yaml": "---\n".join(apps.values()),
    }
    files.update({f"apps/{name}/cm.yaml": CM for name in apps})
    return write_repo(files)


def test_a_helm_release_shows_its_charts_repository(phoebe: PhoebeRunner) -> None:
    """D6: the checkout's view showed '← HelmChart/… (not found)' for every chart (a checkout
    declares none: helm-controller makes them); the cluster view shows the HelmRepository."""
    result = phoebe("status", "--repo", str(FIXTURE_REPO), "hr", "-n", "network")

    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "HelmRelease/network/" in line]
    assert any(line.endswith("← HelmRepository/flux-system/ingress-nginx") for line in lines), lines
    assert "HelmChart" not in result.stdout
    assert "(not found)" not in result.stdout


def test_a_dependency_cycle_is_blocked_and_exits_1(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """D6: a dependsOn cycle showed every object ✓ and exited 0, while validate reported it."""
    root = _repo(
        write_repo,
        {
            "a": flux_ks("a", "./apps/a", "default", extra="dependsOn:\n  - name: b"),
            "b": flux_ks("b", "./apps/b", "default", extra="dependsOn:\n  - name: a"),
            "after": flux_ks("after", "./apps/after", "default", extra="dependsOn:\n  - name: a"),
            "lost": flux_ks("lost", "./apps/lost", "default", extra="dependsOn:\n  - name: ghost"),
            "fine": flux_ks("fine", "./apps/fine", "default"),
        },
    )

    validate = phoebe("validate", str(root))
    tree = phoebe("status", "--repo", str(root))
    document = phoebe("status", "--repo", str(root), "-o", "json")

    assert validate.code == 1 and "dependency cycle: default/a → default/b → default/a" in validate.stdout
    assert tree.code == 1, tree.stdout
    lines = {line.split()[2]: line for line in tree.stdout.splitlines() if "Kustomization/default/" in line}
    # as the cluster view draws a cycle the controller reports (tests/integration/test_status.py)
    assert lines["Kustomization/default/a"].endswith("blocked by b ← blocked by a ← dependency cycle")
    assert lines["Kustomization/default/b"].endswith("blocked by a ← blocked by b ← dependency cycle")
    assert lines["Kustomization/default/after"].endswith(
        "blocked by a ← blocked by b ← blocked by a ← dependency cycle"
    )
    assert lines["Kustomization/default/lost"].endswith("blocked by ghost ← not found")
    assert lines["Kustomization/default/fine"].split()[1] == "✓"
    assert all(lines[name].split()[1] == "✗" for name in lines if not name.endswith("/fine"))
    states = {
        o["name"]: (o["state"], (o["blockedBy"] or {}).get("problem")) for o in json.loads(document.stdout)["objects"]
    }
    assert states["a"] == ("failed", "cycle")
    assert states["lost"] == ("failed", "missing")
    assert states["fine"] == ("ready", None)
    assert json.loads(document.stdout)["healthy"] is False


def test_a_dependency_whose_build_fails_blocks_its_dependents(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """Flux keeps a Kustomization DependencyNotReady while its dependency never becomes Ready: the
    checkout's view showed the dependents ready behind a build that fails."""
    root = _repo(
        write_repo,
        {
            "broken": flux_ks("broken", "./apps/nowhere", "default"),  # the path does not exist
            "app": flux_ks("app", "./apps/app", "default", extra="dependsOn:\n  - name: broken"),
            "late": flux_ks("late", "./apps/late", "default", extra="dependsOn:\n  - name: app"),
            "fine": flux_ks("fine", "./apps/fine", "default"),
        },
    )

    tree = phoebe("status", "--repo", str(root))
    document = json.loads(phoebe("status", "--repo", str(root), "-o", "json").stdout)

    assert tree.code == 1, tree.stdout
    lines = {line.split()[2]: line for line in tree.stdout.splitlines() if "Kustomization/default/" in line}
    assert lines["Kustomization/default/fine"].split()[1] == "✓"
    for name in ("broken", "app", "late"):
        assert lines[f"Kustomization/default/{name}"].split()[1] == "✗", lines
    cause = "BuildFailed: kustomization path not found: ./apps/nowhere"
    assert lines["Kustomization/default/app"].endswith(f"blocked by broken ← {cause}")
    assert lines["Kustomization/default/late"].endswith(f"blocked by app ← blocked by broken ← {cause}")
    chains = {
        o["name"]: ([c["name"] for c in (o["blockedBy"] or {}).get("chain", [])], o["reason"])
        for o in document["objects"]
        if o["namespace"] == "default"
    }
    assert chains == {
        "app": (["broken"], "DependencyNotReady"),
        "broken": ([], "BuildFailed"),
        "fine": ([], "Built"),
        "late": (["app", "broken"], "DependencyNotReady"),
    }
