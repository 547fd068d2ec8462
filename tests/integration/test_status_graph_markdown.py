"""`phoebe validate -o markdown`: the findings and the graph of what was checked, for a pull
request; the graph block parses as mermaid."""

from __future__ import annotations

import re

from tests.conftest import PhoebeRunner
from tests.repo.conftest import RepoWriter, flux_ks, write_repo
from tests.repo.test_status_repo import _repo as checkout_with_apps
from tests.support import mermaid as mermaid_parser

__all__ = ["write_repo"]  # the checkout fixture, shared with tests/repo


def _checkout(write_repo: RepoWriter, apps: dict[str, str]) -> str:
    return str(checkout_with_apps(write_repo, apps))


def _timeless(text: str) -> str:
    return re.sub(r"\d+\.\ds\)", "<s>)", text)


def test_findings_and_graph(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _checkout(
        write_repo,
        {
            "web": flux_ks("web", "./apps/web", "default", extra="dependsOn:\n  - name: db\n  - name: ghost"),
            "db": flux_ks("db", "./apps/db | x", "default"),
        },
    )

    result = phoebe("validate", root, "-o", "markdown")

    assert result.code == 1
    assert result.stderr == ""
    text = _timeless(result.stdout)
    head, fence = text.split("```mermaid\n")
    graph, tail = fence.split("```\n")
    assert head.splitlines()[:3] == [
        "## phoebe validate",
        "",
        "❌ 3 Kustomizations, 4 Flux objects: 2 errors, 0 warnings (2 kustomize runs, <s>)",
    ]
    # a pipe in a message does not break the table
    assert head.splitlines()[4:-3] == [
        "| Severity | Code | Where | Message |",
        "| --- | --- | --- | --- |",
        "| error | dependency | `kubernetes/apps/ks.yaml:1` | Kustomization/default/web depends on "
        "Kustomization/default/ghost, which no Kustomization declares |",
        "| error | path | `kubernetes/apps/ks.yaml:18` | Kustomization/default/db: kustomization path not found: "
        "./apps/db \\| x |",
    ]
    assert head.splitlines()[-2:] == ["### Kustomizations and HelmReleases", ""]
    assert graph.splitlines() == [
        "flowchart LR",
        '  ks__default__db["Kustomization/default/db<br/>failing"]:::failing',
        '  ks__default__ghost["Kustomization/default/ghost<br/>missing, root cause"]:::missing',
        '  ks__default__web["Kustomization/default/web<br/>blocked"]:::blocked',
        '  ks__flux_2dsystem__cluster_2dapps["Kustomization/flux-system/cluster-apps"]:::ready',
        '  ks__default__web -.->|"dependsOn"| ks__default__db',
        '  ks__default__web ==>|"dependsOn"| ks__default__ghost',
        "  ks__flux_2dsystem__cluster_2dapps --> ks__default__db",
        "  ks__flux_2dsystem__cluster_2dapps --> ks__default__web",
        "  classDef ready fill:#d4edda,stroke:#28a745,color:#000",
        "  classDef failing fill:#f8d7da,stroke:#d73a49,color:#000",
        "  classDef blocked fill:#ffe5cc,stroke:#e36209,color:#000",
        "  classDef missing fill:#ffffff,stroke:#6a737d,color:#000,stroke-dasharray:4 3",
        "  classDef cause stroke-width:4px,stroke:#d73a49",
        "  class ks__default__ghost cause",
        "  linkStyle 1 stroke:#d73a49,stroke-width:3px",
    ]
    assert tail == ""
    parsed = mermaid_parser.parse(graph)
    assert parsed.ok, parsed.error


def test_a_clean_checkout(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _checkout(write_repo, {"web": flux_ks("web", "./apps/web", "default")})

    result = phoebe("validate", root, "-o", "markdown", "--path", "apps/web")

    assert result.code == 0, result.stdout
    lines = _timeless(result.stdout).splitlines()
    assert lines[2] == "✅ 2 Kustomizations, 3 Flux objects: 0 errors, 0 warnings (2 kustomize runs, <s>)"
    assert "| Severity |" not in result.stdout
    # --path: only what is under it is drawn
    assert lines[-5:] == [
        "```mermaid",
        "flowchart LR",
        '  ks__default__web["Kustomization/default/web"]:::ready',
        "  classDef ready fill:#d4edda,stroke:#28a745,color:#000",
        "```",
    ]
