"""`phoebe status --context a --context b` and `--all-contexts` against TWO real API servers in
one kubeconfig (the shared cluster and the sample repository's), plus a context whose server is
not listening (nothing answers on its port): one section per cluster, the combined summary,
the exit codes, the JSON shape keyed by context."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import free_port, kubeconfig_document
from tests.conftest import Cluster, PhoebeRunner
from tests.support import fluxstatus, manifests

pytestmark = pytest.mark.cluster


def _kubeconfig(directory: Path, entries: dict[str, tuple[str, Path, str]]) -> Path:
    """One kubeconfig with a context per (server, CA file, token); the first is current."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for name, (server, ca_file, token) in entries.items():
        one = kubeconfig_document(server, ca_file, token, context=name, user=name)
        for section in ("clusters", "users", "contexts"):
            merged[section].extend(one[section])
    merged["current-context"] = next(iter(entries))
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(merged))
    return path


@pytest.fixture
def kubeconfig(cluster: Cluster, sample_cluster: Cluster, tmp_path: Path) -> Path:
    return _kubeconfig(
        tmp_path,
        {
            "home": (cluster.plane.server, cluster.plane.ca_file, cluster.plane.admin_token),
            "lab": (sample_cluster.plane.server, sample_cluster.plane.ca_file, sample_cluster.plane.admin_token),
            "gone": (f"https://127.0.0.1:{free_port()}", cluster.plane.ca_file, "t"),
        },
    )


@pytest.fixture
def label(cluster: Cluster, namespace: str) -> str:
    """A label only this test's ready Kustomization carries, on the shared cluster; the sample
    cluster has nothing with it (nothing matched there: healthy)."""
    value = secrets.token_hex(4)
    obj = cluster.api.create(manifests.kustomization("web", namespace, labels={"multi": value}))
    cluster.api.patch_status(obj, fluxstatus.ready_status(obj))
    return f"multi={value}"


def test_two_clusters_one_section_each_and_a_summary(phoebe: PhoebeRunner, kubeconfig: Path, label: str) -> None:
    result = phoebe("status", "--context", "home", "--context", "lab", "-l", label, kubeconfig=kubeconfig)

    assert (result.code, result.stderr) == (0, "")
    lines = result.lines
    assert lines[0] == "== home =="
    assert re.fullmatch(r"✓ Kustomization/t-[a-z0-9-]+/web  main@sha1:[0-9a-f]{8}  \d+s  ← .*", lines[1]), lines
    assert lines[2:] == [
        "",
        "== lab ==",
        "nothing matched",
        "",
        "clusters  2: 2 healthy",
        "objects   1 ready",
    ]


def test_one_unhealthy_cluster_exits_1(phoebe: PhoebeRunner, kubeconfig: Path) -> None:
    result = phoebe(
        "status", "ks", "--context", "lab", "--context", "home", "-n", "media", "-o", "table", kubeconfig=kubeconfig
    )

    assert result.code == 1
    lines = result.lines
    assert lines[0] == "== lab =="
    assert lines[1].split()[:3] == ["NAMESPACE", "KIND", "NAME"]
    assert any(line.startswith("media      Kustomization  sonarr") for line in lines)
    home = lines.index("== home ==")
    # the shared cluster has no namespace media: that section says so, the other is still shown
    assert lines[home + 1] == "✗ namespace media not found"
    assert lines[-2].startswith("clusters  2: 0 healthy, 1 not healthy, 1 not read")


def test_an_unreachable_cluster_does_not_hide_the_others(phoebe: PhoebeRunner, kubeconfig: Path, label: str) -> None:
    result = phoebe(
        "status", "--context", "gone", "--context", "home", "-l", label, "--request-timeout", "5", kubeconfig=kubeconfig
    )

    assert result.code == 1  # one cluster not read: not healthy, but not exit 3
    lines = result.lines
    assert lines[0] == "== gone =="
    assert re.fullmatch(r"✗ cannot reach the cluster at https://127\.0\.0\.1:\d+: connection refused", lines[1])
    assert "== home ==" in lines
    assert any("Kustomization/" in line and "/web" in line for line in lines)
    assert lines[-2:] == ["clusters  2: 1 healthy, 1 not read", "objects   1 ready"]


def test_exit_3_only_when_every_cluster_is_unreachable(phoebe: PhoebeRunner, tmp_path: Path, cluster: Cluster) -> None:
    kubeconfig = _kubeconfig(
        tmp_path,
        {
            "a": (f"https://127.0.0.1:{free_port()}", cluster.plane.ca_file, "t"),
            "b": (f"https://127.0.0.1:{free_port()}", cluster.plane.ca_file, "t"),
        },
    )

    result = phoebe("status", "--all-contexts", kubeconfig=kubeconfig)

    assert result.code == 3
    assert [line for line in result.lines if line.startswith("==")] == ["== a ==", "== b =="]
    assert result.lines[-2] == "clusters  2: 0 healthy, 2 not read"


def test_json_keyed_by_context(phoebe: PhoebeRunner, kubeconfig: Path, label: str) -> None:
    result = phoebe("status", "--all-contexts", "-l", label, "-o", "json", kubeconfig=kubeconfig)

    assert result.code == 1
    document = json.loads(result.stdout)
    assert document["apiVersion"] == "phoebe.dev/v1"
    assert document["kind"] == "MultiClusterStatusReport"
    assert document["healthy"] is False
    assert list(document["contexts"]) == ["home", "lab", "gone"]  # the kubeconfig's order
    assert document["summary"] == {
        "clusters": 3,
        "healthy": 2,
        "notHealthy": 0,
        "notRead": 1,
        "total": 1,
        "ready": 1,
        "failed": 0,
        "progressing": 0,
        "suspended": 0,
        "unknown": 0,
    }
    home = document["contexts"]["home"]
    assert home["kind"] == "StatusReport" and home["context"] == "home" and home["healthy"] is True
    assert [o["name"] for o in home["objects"]] == ["web"]
    assert document["contexts"]["lab"]["objects"] == []
    gone = document["contexts"]["gone"]["error"]
    assert gone["reason"] == "ClusterUnreachable" and gone["exitCode"] == 3 and "127.0.0.1" in gone["message"]


def test_an_unknown_context_among_several_is_one_line_and_exit_2(phoebe: PhoebeRunner, kubeconfig: Path) -> None:
    result = phoebe("status", "--context", "home", "--context", "nope", kubeconfig=kubeconfig)

    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "phoebe: error: context 'nope' not found in the kubeconfig (contexts: home, lab, gone)"
    ]


def test_usage_errors_with_several_contexts(phoebe: PhoebeRunner, kubeconfig: Path) -> None:
    both = phoebe("status", "--context", "home", "--all-contexts", kubeconfig=kubeconfig)
    graph = phoebe("status", "--context", "home", "--context", "lab", "-o", "mermaid", kubeconfig=kubeconfig)
    watch = phoebe("status", "--all-contexts", "--watch", kubeconfig=kubeconfig)

    assert both.code == graph.code == watch.code == 2
    assert "use --all-contexts or --context, not both" in both.stderr
    assert "-o mermaid looks at one cluster; use one --context" in graph.stderr
    assert "--watch looks at one cluster; use one --context" in watch.stderr


def test_one_context_and_other_commands_keep_a_single_context(phoebe: PhoebeRunner, kubeconfig: Path) -> None:
    single = phoebe("status", "--context", "lab", "ks", "-n", "media", "-o", "json", kubeconfig=kubeconfig)
    root = phoebe("--context", "lab", "status", "ks", "-n", "media", "-o", "json", kubeconfig=kubeconfig)
    same_twice = phoebe(
        "status", "--context", "lab", "--context", "lab", "ks", "-n", "media", "-o", "json", kubeconfig=kubeconfig
    )
    check = phoebe("check", "--context", "gone", "--request-timeout", "5", kubeconfig=kubeconfig)

    assert single.code == root.code == same_twice.code == 1
    assert json.loads(single.stdout)["kind"] == json.loads(same_twice.stdout)["kind"] == "StatusReport"
    assert json.loads(single.stdout)["context"] == json.loads(root.stdout)["context"] == "lab"
    assert check.code == 3


def test_a_stopped_api_server_among_two(phoebe: PhoebeRunner, sample_cluster: Cluster, tmp_path: Path) -> None:
    """Two real API servers; the second is stopped between two runs: its section says so, the
    other is shown as before, and the exit code is 1, not 3."""
    from tests.cluster.api import Api
    from tests.cluster.controlplane import ControlPlane, new_workdir
    from tests.cluster.crds import install_crds
    from tests.support.flux_install import install_ready_controllers

    plane = ControlPlane(new_workdir("phoebe-multi-")).start()
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        try:
            install_crds(api, "newest")
            install_ready_controllers(api)
        finally:
            api.close()
        kubeconfig = _kubeconfig(
            tmp_path,
            {
                "lab": (sample_cluster.plane.server, sample_cluster.plane.ca_file, sample_cluster.plane.admin_token),
                "spare": (plane.server, plane.ca_file, plane.admin_token),
            },
        )
        args = ("status", "--all-contexts", "ks", "-n", "media", "-o", "table")

        running = phoebe(*args, kubeconfig=kubeconfig)
        plane.stop()
        stopped = phoebe(*args, "--request-timeout", "5", kubeconfig=kubeconfig)
    finally:
        plane.remove()

    assert running.code == stopped.code == 1  # lab's sonarr is blocked
    assert running.lines[-2] == "clusters  2: 0 healthy, 1 not healthy, 1 not read"  # spare: no namespace media
    spare = stopped.lines.index("== spare ==")
    assert re.fullmatch(
        rf"✗ cannot reach the cluster at {re.escape(plane.server)}: connection refused", stopped.lines[spare + 1]
    )

    def rows(result: Any) -> list[list[str]]:  # the lab section without the ages
        return [line.split()[:5] for line in result.lines[: result.lines.index("== spare ==")]]

    assert rows(stopped) == rows(running)  # the running cluster, shown as before
    assert ["media", "Kustomization", "sonarr", "✗", "False"] in rows(stopped)
    assert stopped.lines[-2] == "clusters  2: 0 healthy, 1 not healthy, 1 not read"
