"""status output with width and colour pinned, and the document shape."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from phoebe_cli.flux import kinds
from phoebe_cli.render.status import age, status_document, table_view, tree_view
from phoebe_cli.usecases.status import Snapshot, StatusOptions, build_report
from tests.unit.test_tree import hr, index, ks, source

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def render(renderable: object, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


def snapshot() -> Snapshot:
    objects = index(
        ks(
            "root",
            "flux-system",
            children=["Kustomization/rook/ceph", "Kustomization/media/sonarr", "Kustomization/apps/web"],
        ),
        ks("ceph", "rook", ready="False", reason="HealthCheckFailed", message="timeout waiting for:\n[Deployment]"),
        ks(
            "sonarr",
            "media",
            depends=["rook/ceph"],
            ready="False",
            reason="DependencyNotReady",
            message="dependency 'rook/ceph' is not ready",
        ),
        ks("web", children=["HelmRelease/apps/web"]),
        hr("web"),
        source(kinds.HELM_CHART, "apps-web", sourceRef={"kind": "HelmRepository", "name": "repo"}),
        source(kinds.HELM_REPOSITORY, "repo"),
    )
    return Snapshot(objects=objects, context="home", flux_version="v2.9.5")


def test_ages() -> None:
    assert age("2026-11-26T11:59:15Z", NOW) == "45s"
    assert age("2026-11-26T10:00:00Z", NOW) == "2h"
    assert age("2026-11-20T12:00:00Z", NOW) == "6d"
    assert age(None, NOW) == ""


def test_tree_text() -> None:
    report = build_report(snapshot(), StatusOptions(), now=NOW)
    assert render(tree_view(report, with_header=False)) == "\n".join(
        [
            "✓ Kustomization/flux-system/root  ← GitRepository/flux-system/flux-system (not found)",
            "├── ✓ Kustomization/apps/web",
            "│   └── ✓ HelmRelease/apps/web  ← HelmChart/flux-system/apps-web ? unknown",
            "├── ✗ Kustomization/media/sonarr  blocked by rook/ceph ← HealthCheckFailed: timeout waiting for: "
            "[Deployment]",
            "└── ✗ Kustomization/rook/ceph  HealthCheckFailed: timeout waiting for: [Deployment]",
        ]
    )
    assert report.healthy is False


def test_failed_tree_keeps_parents_only() -> None:
    report = build_report(snapshot(), StatusOptions(failed=True), now=NOW)
    text = render(tree_view(report, with_header=False))
    assert "web" not in text
    assert text.splitlines()[0].startswith("✓ Kustomization/flux-system/root")


def test_table_text() -> None:
    report = build_report(snapshot(), StatusOptions(kind="ks"), now=NOW)
    lines = render(table_view(report, with_header=False), width=200).splitlines()
    assert lines[0].split() == ["NAMESPACE", "KIND", "NAME", "READY", "SUSPENDED", "REVISION", "AGE", "MESSAGE"]
    assert [line.split()[2] for line in lines[1:]] == ["sonarr", "ceph", "web", "root"]
    assert lines[2].endswith("HealthCheckFailed: timeout waiting for: [Deployment]")


def test_document_shape_is_pinned() -> None:
    report = build_report(snapshot(), StatusOptions(name="media/sonarr"), now=NOW)
    assert status_document(report) == {
        "apiVersion": "phoebe.dev/v1",
        "kind": "StatusReport",
        "context": "home",
        "fluxVersion": "v2.9.5",
        "healthy": False,
        "summary": {"total": 1, "ready": 0, "failed": 1, "progressing": 0, "suspended": 0, "unknown": 0},
        "counts": {"Kustomization": {"failed": 1}},
        "sources": [],
        "objects": [
            {
                "kind": "Kustomization",
                "namespace": "media",
                "name": "sonarr",
                "state": "failed",
                "ready": "False",
                "reason": "DependencyNotReady",
                "message": "dependency 'rook/ceph' is not ready",
                "suspended": False,
                "revision": None,
                "lastTransitionTime": None,
                "source": {"kind": "GitRepository", "namespace": "flux-system", "name": "flux-system"},
                "dependsOn": [{"kind": "Kustomization", "namespace": "rook", "name": "ceph"}],
                "blockedBy": {
                    "chain": [{"kind": "Kustomization", "namespace": "rook", "name": "ceph"}],
                    "problem": None,
                    "cause": "blocked by rook/ceph ← HealthCheckFailed: timeout waiting for: [Deployment]",
                },
            }
        ],
        "tree": {
            "roots": [{"kind": "Kustomization", "namespace": "flux-system", "name": "root"}],
            "edges": [
                {
                    "parent": {"kind": "Kustomization", "namespace": "flux-system", "name": "root"},
                    "child": {"kind": "Kustomization", "namespace": "media", "name": "sonarr"},
                }
            ],
            "unattached": [],
        },
        "forbiddenNamespaces": [],
    }


LONG = (
    "Service/rook-ceph/rook-ceph-mgr-dashboard-lb dry-run failed (Invalid): Service "
    '"rook-ceph-mgr-dashboard-lb" is invalid: spec.ports[0].port: Invalid value: 99999'
)


def long_report():  # type: ignore[no-untyped-def]
    objects = index(
        ks("root", "flux-system", children=["Kustomization/rook-ceph/rook-ceph-cluster"]),
        ks("rook-ceph-cluster", "rook-ceph", ready="False", reason="ReconciliationFailed", message=LONG),
    )
    return build_report(Snapshot(objects=objects, context="home"), StatusOptions(kind="ks"), now=NOW)


def test_table_at_80_columns_folds_the_message_never_drops_it() -> None:
    """D2: at 80 columns the table cut MESSAGE to '…'."""
    text = render(table_view(long_report(), with_header=False), width=80)
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert f"ReconciliationFailed: {' '.join(LONG.split())}" in " ".join(text.split())


def test_table_on_a_wide_console_is_one_line_per_object() -> None:
    """Piped, phoebe's console is wider than any line: nothing is wrapped or cut."""
    lines = render(table_view(long_report(), with_header=False), width=1_000_000).splitlines()
    assert len(lines) == 3
    assert lines[1].endswith(f"ReconciliationFailed: {LONG}")


def test_header_counts_read_as_words() -> None:
    """D9: the header said 'HelmRelease 2 2 ready'."""
    objects = snapshot().objects
    report = build_report(Snapshot(objects=objects, context="home"), StatusOptions(), now=NOW)
    words = [" ".join(line.split()) for line in render(tree_view(report, with_header=True)).splitlines()]
    assert "Kustomizations 4: 2 ready, 2 failed" in words
    assert "HelmRelease 1 ready" in words
    assert "HelmRepository 1 unknown" in words


def test_checkout_view_shows_the_charts_source() -> None:
    """D6: a checkout declares no HelmCharts (helm-controller makes them); its view showed
    '← HelmChart/… (not found)' where the cluster view shows the HelmRepository."""
    repo = source(kinds.HELM_REPOSITORY, "repo")
    objects = index(ks("root", "flux-system", children=["HelmRelease/apps/web"]), hr("web"), repo)
    declared = build_report(Snapshot(objects=objects, context="repo", declared=True), StatusOptions(), now=NOW)
    assert "← HelmRepository/flux-system/repo" in render(tree_view(declared, with_header=False))
    assert "(not found)" not in render(tree_view(declared, with_header=False)).split("HelmRelease")[1]
    live = build_report(Snapshot(objects=objects, context="home"), StatusOptions(), now=NOW)
    assert "← HelmChart/flux-system/apps-web (not found)" in render(tree_view(live, with_header=False))


def test_several_clusters_sections_summary_and_document() -> None:
    from phoebe_cli.errors import ClusterUnreachable, Forbidden
    from phoebe_cli.render.status import clusters_document, clusters_view
    from phoebe_cli.usecases.status import clusters_report

    home = build_report(snapshot(), StatusOptions(kind="ks", failed=True), now=NOW)
    report = clusters_report(
        [
            ("home", home),
            ("lab", ClusterUnreachable("cannot reach the cluster at https://10.0.0.9:6443: connection refused")),
            ("ro", Forbidden("forbidden: cannot list kustomizations", code=403)),
        ]
    )

    text = render(clusters_view(report, table=False, with_header=False))
    assert text.splitlines() == [
        "== home ==",
        "✓ Kustomization/flux-system/root  ← GitRepository/flux-system/flux-system (not found)",
        "├── ✗ Kustomization/media/sonarr  blocked by rook/ceph ← HealthCheckFailed: timeout waiting for: [Deployment]",
        "└── ✗ Kustomization/rook/ceph  HealthCheckFailed: timeout waiting for: [Deployment]",
        "",
        "== lab ==",
        "✗ cannot reach the cluster at https://10.0.0.9:6443: connection refused",
        "",
        "== ro ==",
        "✗ forbidden: cannot list kustomizations",
        "",
        "clusters  3: 0 healthy, 1 not healthy, 2 not read",
        "objects   2 failed",
    ]
    document = clusters_document(report)
    assert document["kind"] == "MultiClusterStatusReport" and document["healthy"] is False
    assert document["summary"] == {
        "clusters": 3,
        "healthy": 0,
        "notHealthy": 1,
        "notRead": 2,
        "total": 2,
        "ready": 0,
        "failed": 2,
        "progressing": 0,
        "suspended": 0,
        "unknown": 0,
    }
    assert document["contexts"]["home"] == status_document(home)
    assert document["contexts"]["ro"] == {
        "error": {"reason": "Forbidden", "message": "forbidden: cannot list kustomizations", "exitCode": 4}
    }
    assert list(document["contexts"]) == ["home", "lab", "ro"]


def test_blocked_by_a_failed_source_names_its_kind() -> None:
    from phoebe_cli.render.status import blocked_text
    from tests.unit.test_tree import git

    app = ks("app", ready="False", reason="ArtifactFailed", message="Source artifact not found")
    failed = git("flux-system", "False")
    report = build_report(Snapshot(objects=index(app, failed)), StatusOptions(), now=NOW)

    assert blocked_text(report.blocked[app.ref], report) == (
        "blocked by GitRepository flux-system/flux-system ← GitOperationFailed: connection refused"
    )
