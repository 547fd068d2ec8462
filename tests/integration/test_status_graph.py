"""`phoebe status -o mermaid|dot|svg` against the real API server (the sample repository's
scenario statuses) and on a checkout (--repo): what is drawn, that it parses, and the errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cluster, PhoebeRunner
from tests.repo.conftest import RepoWriter, flux_ks, write_repo
from tests.repo.test_status_repo import _repo as checkout_with_apps
from tests.support import mermaid as mermaid_parser

__all__ = ["write_repo"]  # the checkout fixture, shared with tests/repo

FAILED_GRAPH = """\
flowchart LR
  %% phoebe status: context phoebe-local
  ks__flux_2dsystem__cluster_2dapps["Kustomization/flux-system/cluster-apps"]:::ready
  ks__media__sonarr["Kustomization/media/sonarr<br/>blocked"]:::blocked
  ks__rook_2dceph__rook_2dceph_2dcluster["Kustomization/rook-ceph/rook-ceph-cluster<br/>failing, root cause"]:::failing
  ks__flux_2dsystem__cluster_2dapps --> ks__media__sonarr
  ks__flux_2dsystem__cluster_2dapps --> ks__rook_2dceph__rook_2dceph_2dcluster
  ks__media__sonarr ==>|"dependsOn"| ks__rook_2dceph__rook_2dceph_2dcluster
  classDef ready fill:#d4edda,stroke:#28a745,color:#000
  classDef failing fill:#f8d7da,stroke:#d73a49,color:#000
  classDef blocked fill:#ffe5cc,stroke:#e36209,color:#000
  classDef cause stroke-width:4px,stroke:#d73a49
  class ks__rook_2dceph__rook_2dceph_2dcluster cause
  linkStyle 2 stroke:#d73a49,stroke-width:3px
"""


@pytest.mark.cluster
def test_failed_draws_the_failing_part_and_what_leads_to_it(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    result = phoebe("status", "--failed", "-o", "mermaid", kubeconfig=sample_cluster.kubeconfig)

    assert (result.code, result.stderr) == (1, "")
    assert result.stdout == FAILED_GRAPH
    parsed = mermaid_parser.parse(result.stdout)
    assert parsed.ok, parsed.error


@pytest.mark.cluster
def test_the_whole_graph_in_mermaid_and_dot(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    drawn = phoebe("status", "-o", "mermaid", kubeconfig=sample_cluster.kubeconfig)
    again = phoebe("status", "-o", "mermaid", kubeconfig=sample_cluster.kubeconfig)
    graph = phoebe("status", "-o", "dot", kubeconfig=sample_cluster.kubeconfig)

    assert drawn.code == 1 and drawn.stdout == again.stdout  # deterministic
    lines = drawn.lines
    assert '  ks__media__plex["Kustomization/media/plex<br/>suspended"]:::suspended' in lines
    assert "  ks__media__plex --> hr__media__plex" in lines  # applied by, from the inventory
    assert (  # dependsOn
        '  ks__database__cloudnative_2dpg_2dcluster -.->|"dependsOn"| ks__database__cloudnative_2dpg' in lines
    )
    assert not any("GitRepository" in line or "HelmChart" in line for line in lines)  # only ks and hr
    assert mermaid_parser.parse(drawn.stdout).ok
    assert graph.code == 1 and graph.stdout.startswith("digraph flux {\n")
    done = subprocess.run(["dot", "-Tsvg"], input=graph.stdout, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.cluster
def test_svg_through_graphviz(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    assert shutil.which("dot"), "Graphviz is needed here (.ci/run installs Debian's graphviz)"
    result = phoebe("status", "--failed", "-o", "svg", kubeconfig=sample_cluster.kubeconfig)

    assert (result.code, result.stderr) == (1, "")
    assert "<svg" in result.stdout and "failing, root cause" in result.stdout  # the root cause node, drawn


@pytest.mark.cluster
def test_svg_without_graphviz_is_one_line_and_exit_5(sample_cluster: Cluster, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "phoebe_cli", "status", "-o", "svg", "--kubeconfig", str(sample_cluster.kubeconfig)],
        capture_output=True,
        text=True,
        env={"PATH": str(empty), "HOME": str(tmp_path)},
        check=False,
    )

    assert done.returncode == 5
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "phoebe: error: -o svg needs Graphviz's dot, which is not on PATH: install the graphviz package "
        "(apt install graphviz, brew install graphviz), or use -o dot or -o mermaid"
    ]


def test_graph_outputs_do_not_go_with_watch(phoebe: PhoebeRunner) -> None:
    result = phoebe("status", "--watch", "-o", "mermaid")
    assert result.code == 2
    assert "-o mermaid draws once; it does not go with --watch" in result.stderr


def test_the_checkouts_graph_marks_a_cycle(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    apps = {
        "a": flux_ks("a", "./apps/a", "default", extra="dependsOn:\n  - name: b"),
        "b": flux_ks("b", "./apps/b", "default", extra="dependsOn:\n  - name: a"),
        "fine": flux_ks("fine", "./apps/fine", "default"),
    }
    root = checkout_with_apps(write_repo, apps)

    result = phoebe("status", "--repo", str(root), "-o", "mermaid")

    assert result.code == 1, result.stderr
    lines = result.lines
    assert lines[1].startswith("  %% phoebe status: checkout ")
    assert '  ks__default__a["Kustomization/default/a<br/>blocked, in a dependency cycle"]:::blocked' in lines
    assert '  ks__default__fine["Kustomization/default/fine"]:::ready' in lines
    assert '  ks__default__a -.->|"dependsOn (cycle)"| ks__default__b' in lines
    assert '  ks__default__b -.->|"dependsOn (cycle)"| ks__default__a' in lines
    assert "  ks__flux_2dsystem__cluster_2dapps --> ks__default__a" in lines  # applied by, from the repo model
    assert "  %% dependency cycle: Kustomization/default/a Kustomization/default/b" in lines
    assert "  class ks__default__a,ks__default__b cycle" in lines
    assert mermaid_parser.parse(result.stdout).ok
