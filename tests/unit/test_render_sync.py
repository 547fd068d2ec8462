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
    item("slow", Verdict.TIMED_OUT, reason="Timeout", message="timed out after 5m", seconds=300.0),
    item("repo", Verdict.DONE, kind=kinds.GIT_REPOSITORY, revision=REV, phase=Phase.SOURCE, seconds=0.4),
]


def test_lines() -> None:
    assert [render(item_line(i), width=200) for i in ITEMS] == [
        "✓ Kustomization/apps/web  done  main@sha1:1a2b3c4d  (1.2s)",
        "✗ Kustomization/apps/db  failed  HealthCheckFailed: timeout waiting for: [Deployment/apps/db]  (1.2s)",
        "– Kustomization/apps/cache  skipped  suspended",
        "⌛ Kustomization/apps/slow  timed out  timed out after 5m  (300.0s)",
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
                "seconds": 1.25,
            },
        ],
    }
