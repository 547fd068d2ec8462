"""``phoebe sync`` output: the live view, one line per finished object, the summary, the document."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from phoebe_cli.flux.kinds import counted
from phoebe_cli.flux.objects import short_revision
from phoebe_cli.flux.reconcile import Verdict
from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document
from phoebe_cli.render.status import FoldedRows
from phoebe_cli.usecases.sync import Phase, SyncItem, SyncResult

_MARKS: dict[Verdict, tuple[str, str]] = {
    Verdict.WAITING: (symbols.PENDING, symbols.STYLE_PENDING),
    Verdict.BLOCKED: ("⧗", symbols.STYLE_PENDING),
    Verdict.DONE: (symbols.OK, symbols.STYLE_OK),
    Verdict.FAILED: (symbols.FAILED, symbols.STYLE_FAILED),
    Verdict.DELETED: (symbols.FAILED, symbols.STYLE_FAILED),
    Verdict.TIMED_OUT: ("⌛", symbols.STYLE_FAILED),
    Verdict.SKIPPED: ("–", symbols.STYLE_ABSENT),
}
_WORDS: dict[Verdict, str] = {
    Verdict.WAITING: "waiting",
    Verdict.BLOCKED: "blocked",
    Verdict.DONE: "done",
    Verdict.FAILED: "failed",
    Verdict.DELETED: "deleted",
    Verdict.TIMED_OUT: "timed out",
    Verdict.SKIPPED: "skipped",
}


# Where an unfinished object stands after Ctrl-C.
_INTERRUPTED: dict[str, tuple[str, str, str]] = {
    "patched": (symbols.PENDING, symbols.STYLE_PENDING, "waiting"),
    "maybe": ("?", symbols.STYLE_PENDING, "may be patched"),
    "not": (symbols.ABSENT, symbols.STYLE_ABSENT, "not patched"),
}


def _patch_state(item: SyncItem) -> str:
    return "patched" if item.patched else "maybe" if item.maybe_patched else "not"


def _mark_word(item: SyncItem, done_word: str, waited: bool = True) -> tuple[str, str, str]:
    if item.interrupted and not item.final:
        return _INTERRUPTED[_patch_state(item)]
    mark, style = _MARKS[item.verdict]
    if item.verdict is Verdict.WAITING and item.patched and not waited:
        return "→", "cyan", "requested"
    return mark, style, done_word if item.verdict is Verdict.DONE else _WORDS[item.verdict]


def _name(item: SyncItem) -> str:
    return f"{item.kind.kind}/{item.ref.namespace}/{item.ref.name}"


def _detail(item: SyncItem, waited: bool = True) -> str:
    if item.interrupted and not item.final:
        return " ".join(item.message.split())
    if item.verdict is Verdict.DONE and item.reason == "Suspended":
        return ""
    if item.verdict is Verdict.DONE:
        revision = short_revision(item.revision)
        return f"{revision}" if revision else item.message
    if item.verdict is Verdict.WAITING:
        if not item.patched:
            return ""
        return "waiting for the controller" if waited else ""
    text = item.message
    if item.reason and item.reason not in ("Suspended", "NotReconcilable", "Timeout", "Deleted") and text:
        text = f"{item.reason}: {text}"
    return " ".join(text.split())  # one line


def _seconds(item: SyncItem) -> str:
    return f"{item.seconds:.1f}s" if item.seconds is not None and item.patched else ""


def item_line(item: SyncItem, waited: bool = True, done_word: str = "done") -> Text:
    """One finished object, for output that is not a terminal (and the end of the live view)."""
    mark, style, word = _mark_word(item, done_word, waited)
    line = Text.assemble((mark, style), " ", _name(item), "  ", (word, style))
    detail = _detail(item, waited)
    if detail:
        line.append(f"  {detail}")
    seconds = _seconds(item)
    if seconds:
        line.append(f"  ({seconds})", style="dim")
    if item.phase is not Phase.TARGET:
        line.append(f"  [{item.phase.value}]", style="dim")
    return line


def live_view(
    items: Sequence[SyncItem], elapsed: float, width: int | None = None, done_word: str = "done"
) -> RenderableType:
    """Every object of the run and where it stands, for the live display on a terminal. The
    reason (the most important column) wraps, never cut, however narrow the terminal."""
    rows: list[tuple[list[Text], Text]] = []
    for item in sorted(items, key=_order):
        mark, style, word = _mark_word(item, done_word)
        rows.append(
            (
                [
                    Text(mark, style=style),
                    Text(_name(item)),
                    Text(word, style=style),
                    Text(_seconds(item), style="dim"),
                ],
                Text(_detail(item), style="dim" if item.verdict is Verdict.SKIPPED else ""),
            )
        )
    pending = sum(1 for i in items if not i.final and not i.interrupted)
    footer = Text(f"{pending} waiting, {elapsed:.1f}s", style="dim") if pending else Text("")
    return Group(FoldedRows(rows, gap=1), footer)


def _order(item: SyncItem) -> tuple[int, str, str, str]:
    phase = {Phase.SOURCE: 0, Phase.TARGET: 1, Phase.CASCADE: 2}[item.phase]
    return (phase, item.kind.kind, item.ref.namespace, item.ref.name)


def _kinds(items: Sequence[SyncItem]) -> str:
    kinds = Counter(item.kind.kind for item in items)
    return ", ".join(counted(n, k) for k, n in sorted(kinds.items()))


def summary(result: SyncResult, done_word: str = "done", verb: str = "sync") -> Text:
    counts = Counter(item.verdict for item in result.items if item.final or not result.interrupted)
    if not result.items:
        if result.interrupted:
            return Text.assemble((symbols.FAILED, symbols.STYLE_FAILED), " interrupted: nothing was patched")
        return Text(f"nothing to {verb}: no object matched", style="dim")
    what = _kinds(result.items)
    if result.dry_run:
        would = [i for i in result.items if i.verdict is Verdict.WAITING]
        if len(would) == len(result.items):
            return Text(f"dry run: would {verb} {what}; nothing was changed")
        kinds = {i.kind.kind for i in result.items}
        total = what if len(kinds) == 1 else f"{len(result.items)} objects ({what})"
        return Text(f"dry run: would {verb} {len(would)} of {total}; nothing was changed")
    parts = []
    for verdict in (
        Verdict.DONE,
        Verdict.FAILED,
        Verdict.DELETED,
        Verdict.TIMED_OUT,
        Verdict.BLOCKED,
        Verdict.WAITING,
        Verdict.SKIPPED,
    ):
        if counts.get(verdict):
            word = "requested" if verdict is Verdict.WAITING and not result.waited else _WORDS[verdict]
            word = done_word if verdict is Verdict.DONE else word
            parts.append(f"{counts[verdict]} {word}")
    if result.interrupted:
        states = Counter(_patch_state(i) for i in result.items if not i.final)
        for state in ("patched", "maybe", "not"):
            if states.get(state):
                parts.append(f"{states[state]} {_INTERRUPTED[state][2]}")
    bad = result.failed or result.timed_out or result.interrupted
    mark, style = (symbols.FAILED, symbols.STYLE_FAILED) if bad else (symbols.OK, symbols.STYLE_OK)
    if result.interrupted:
        return Text.assemble(
            (mark, style), f" {what}: {', '.join(parts)}; ", ("interrupted", style), f" after {result.seconds:.1f}s"
        )
    line = Text.assemble((mark, style), f" {what}: {', '.join(parts)} in {result.seconds:.1f}s")
    if result.unread_sources:
        unread = ", ".join(str(ref) for ref in result.unread_sources)
        line.append(f"; --cascade: no Kustomization reads {unread}", style="dim")
    return line


def dry_run_line(item: SyncItem, verb: str = "sync") -> Text:
    if item.verdict is Verdict.WAITING:
        return Text.assemble(("→", "cyan"), f" {_name(item)}  would {verb}")
    return item_line(item)


def sync_document(result: SyncResult) -> dict[str, Any]:
    """The ``-o json`` shape, pinned by tests/unit/test_render_sync.py."""
    return document(
        "SyncResult",
        {
            "token": result.token,
            "dryRun": result.dry_run,
            "waited": result.waited,
            "interrupted": result.interrupted,
            "seconds": round(result.seconds, 3),
            "summary": {v.value: result.count(v) for v in Verdict if result.count(v)},
            **({"cascade": {"unreadSources": [str(ref) for ref in result.unread_sources]}} if result.cascade else {}),
            "items": [
                {
                    "kind": item.kind.kind,
                    "namespace": item.ref.namespace,
                    "name": item.ref.name,
                    "phase": item.phase.value,
                    "result": item.verdict.value,
                    "reason": item.reason or None,
                    "message": item.message or None,
                    "revision": item.revision,
                    "patched": item.patched,
                    "maybePatched": item.maybe_patched,
                    "seconds": None if item.seconds is None else round(item.seconds, 3),
                }
                for item in sorted(result.items, key=_order)
            ],
        },
    )
