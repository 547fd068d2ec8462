"""sync output: lines, live view and summary with width and colour pinned; the JSON shape."""

from __future__ import annotations

import io

from rich.console import Console

from phoebe_cli.flux import kinds
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.flux.reconcile import Verdict
from phoebe_cli.render.sync import item_line, live_view, summary, sync_document
from phoebe_cli.usecases.sync import Phase, SyncItem, SyncResult

REV = "main@sha1:" + "1a2b3c4d" * 5


def render(renderable: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


def item(
    name: str,
    verdict: Verdict,
    *,
    kind: kinds.FluxKind = kinds.KUSTOMIZATION,
    reason: str = "",
    message: str = "",
    revision: str | None = None,
    phase: Phase = Phase.TARGET,
    patched: bool = True,
    seconds: float | None = 1.25,
) -> SyncItem:
    entry = SyncItem(
        kind,
        ObjectRef(kind.kind, "apps", name),
        phase,
        verdict=verdict,
        reason=reason,
        message=message,
        revision=revision,
        patched=patched,
        started=10.0,
    )
    entry.finished = None if seconds is None else 10.0 + seconds
    return entry


ITEMS = [
    item("web", Verdict.DONE, revision=REV, message=f"Applied revision: {REV}"),
    item("db", Verdict.FAILED, reason="HealthCheckFailed", message="timeout waiting for:\n[Deployment/apps/db]"),
    item("cache", Verdict.SKIPPED, reason="Suspended", message="suspended", patched=False, seconds=0.0),
    item("slow", Verdict.TIMED_OUT, reason="Timeout", message="no answer within 5m", seconds=300.0),
    item("repo", Verdict.DONE, kind=kinds.GIT_REPOSITORY, revision=REV, phase=Phase.SOURCE, seconds=0.4),
]


def test_lines() -> None:
    assert [render(item_line(i), width=200) for i in ITEMS] == [
        "✓ Kustomization/apps/web  done  main@sha1:1a2b3c4d  (1.2s)",
        "✗ Kustomization/apps/db  failed  HealthCheckFailed: timeout waiting for: [Deployment/apps/db]  (1.2s)",
        "– Kustomization/apps/cache  skipped  suspended",
        "⌛ Kustomization/apps/slow  timed out  no answer within 5m  (300.0s)",
        "✓ GitRepository/apps/repo  done  main@sha1:1a2b3c4d  (0.4s)  [source]",
    ]


def test_requested_without_waiting() -> None:
    waiting = item("web", Verdict.WAITING, seconds=None)
    assert render(item_line(waiting, waited=False)) == "→ Kustomization/apps/web  requested"


def test_live_view_orders_sources_first_and_counts_waiting() -> None:
    waiting = item("queued", Verdict.WAITING, seconds=None)
    text = render(live_view([*ITEMS, waiting], elapsed=3.0, width=100))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["✓", "GitRepository/apps/repo", "done"]
    assert lines[1].split()[:3] == ["–", "Kustomization/apps/cache", "skipped"]
    assert lines[-1] == "1 waiting, 3.0s"
    assert all(len(line) <= 100 for line in lines)


def test_summary() -> None:
    result = SyncResult("t", tuple(ITEMS), dry_run=False, waited=True, seconds=4.2)
    assert render(summary(result)) == (
        "✗ 1 GitRepository, 4 Kustomizations: 2 done, 1 failed, 1 timed out, 1 skipped in 4.2s"
    )
    empty = SyncResult("t", (), dry_run=False, waited=True, seconds=0.1)
    assert render(summary(empty)) == "nothing to sync: no object matched"


def test_document_shape_is_pinned() -> None:
    result = SyncResult("2026-11-26T16:41:00.118456499Z", tuple(ITEMS[:2]), dry_run=False, waited=True, seconds=1.5)
    assert sync_document(result) == {
        "apiVersion": "phoebe.dev/v1",
        "kind": "SyncResult",
        "token": "2026-11-26T16:41:00.118456499Z",
        "dryRun": False,
        "waited": True,
        "interrupted": False,
        "seconds": 1.5,
        "summary": {"done": 1, "failed": 1},
        "items": [
            {
                "kind": "Kustomization",
                "namespace": "apps",
                "name": "db",
                "phase": "target",
                "result": "failed",
                "reason": "HealthCheckFailed",
                "message": "timeout waiting for:\n[Deployment/apps/db]",
                "revision": None,
                "patched": True,
                "maybePatched": False,
                "seconds": 1.25,
            },
            {
                "kind": "Kustomization",
                "namespace": "apps",
                "name": "web",
                "phase": "target",
                "result": "done",
                "reason": None,
                "message": f"Applied revision: {REV}",
                "revision": REV,
                "patched": True,
                "maybePatched": False,
                "seconds": 1.25,
            },
        ],
    }


def test_summary_uses_the_kinds_plurals() -> None:
    items = [
        item(f"r{i}", Verdict.DONE, kind=kind, revision=REV)
        for i, kind in enumerate([kinds.HELM_REPOSITORY, kinds.HELM_REPOSITORY, kinds.OCI_REPOSITORY])
    ]
    result = SyncResult("t", tuple(items), dry_run=False, waited=True, seconds=1.0)
    assert render(summary(result)) == "✓ 2 HelmRepositories, 1 OCIRepository: 3 done in 1.0s"


def test_dry_run_summary_counts_what_would_sync_of_what_was_selected() -> None:
    """D9: 'would sync 96 of 11 ExternalSecrets, 1 GitRepository…' — the count was of objects,
    the total of the first kind only."""
    would = [item(f"es{i}", Verdict.WAITING, kind=kinds.EXTERNAL_SECRET, patched=False) for i in range(3)]
    oci = item("charts", Verdict.SKIPPED, kind=kinds.HELM_REPOSITORY, reason="NotReconcilable", patched=False)
    git = item("flux-system", Verdict.WAITING, kind=kinds.GIT_REPOSITORY, patched=False)

    def dry(*entries: SyncItem) -> str:
        return render(summary(SyncResult("t", entries, dry_run=True, waited=True, seconds=0.1)), width=300)

    assert dry(*would, oci, git) == (
        "dry run: would sync 4 of 5 objects (3 ExternalSecrets, 1 GitRepository, 1 HelmRepository); nothing was changed"
    )
    assert dry(*would) == "dry run: would sync 3 ExternalSecrets; nothing was changed"
    assert dry(oci, item("b", Verdict.WAITING, kind=kinds.HELM_REPOSITORY, patched=False)) == (
        "dry run: would sync 1 of 2 HelmRepositories; nothing was changed"
    )


def test_interrupted_summary_says_so_and_what_was_patched() -> None:
    """D3: after Ctrl-C the text ended '✓ 31 Kustomizations: 30 waiting', a green tick, no word of
    the interruption, nor of what was patched."""
    done = item("web", Verdict.DONE, revision=REV)
    waiting = item("db", Verdict.WAITING, seconds=None)
    maybe = item("cache", Verdict.WAITING, patched=False, seconds=None)
    maybe.maybe_patched = True
    never = item("queue", Verdict.WAITING, patched=False, seconds=None)
    for entry in (waiting, maybe, never):
        entry.interrupted = True
    result = SyncResult("t", (done, waiting, maybe, never), dry_run=False, waited=True, seconds=2.5, interrupted=True)
    assert render(summary(result)) == (
        "✗ 4 Kustomizations: 1 done, 1 waiting, 1 may be patched, 1 not patched; interrupted after 2.5s"
    )
    assert [render(item_line(i), width=200).split("  ")[:2] for i in (waiting, maybe, never)] == [
        ["… Kustomization/apps/db", "waiting"],
        ["? Kustomization/apps/cache", "may be patched"],
        ["· Kustomization/apps/queue", "not patched"],
    ]
    nothing = SyncResult("t", (), dry_run=False, waited=True, seconds=0.2, interrupted=True)
    assert render(summary(nothing)) == "✗ interrupted: nothing was patched"


def test_live_view_folds_the_reason_at_80_columns() -> None:
    """D2: on an 80-column terminal the live view ended 'DependencyNotReady:…'."""
    message = "dependency 'rook-ceph/rook-ceph-cluster' is not ready (dependency Kustomization/rook-ceph/x failed)"
    blocked = item("sonarr", Verdict.FAILED, reason="DependencyNotReady", message=message)
    text = render(live_view([blocked], elapsed=1.0, width=80), width=80)
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert " ".join(text.split()).endswith(
        "DependencyNotReady: dependency 'rook-ceph/rook-ceph-cluster' is not ready "
        "(dependency Kustomization/rook-ceph/x failed)"
    )
    assert len(text.splitlines()) > 1
