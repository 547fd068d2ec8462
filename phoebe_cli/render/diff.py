"""``phoebe diff`` output: the terminal view, the ``DiffReport`` document and a pull-request
comment in Markdown. Secret values never reach here: the model carries only which keys changed."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from phoebe_cli.flux.diff import (
    CHANGED,
    CREATED,
    DELETED,
    SECRET_ADDED,
    SECRET_CHANGED,
    SECRET_REMOVED,
    SECRET_UNKNOWN,
    SKIPPED,
    SUSPENDED_ON_CLUSTER,
    UNCHANGED,
    DiffReport,
    KustomizationDiff,
    ObjectDiff,
    ObjectFailure,
    ReleaseDiff,
    join_path,
)
from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document

GITHUB_COMMENT_LIMIT = 65536  # characters in one issue or pull-request comment

MARKS: dict[str, tuple[str, str]] = {
    CREATED: ("+", symbols.STYLE_OK),
    CHANGED: ("~", symbols.STYLE_PENDING),
    DELETED: ("-", "red"),
    SKIPPED: (symbols.ABSENT, symbols.STYLE_ABSENT),
}
SUMMARY_ORDER = (CHANGED, CREATED, DELETED, SKIPPED, UNCHANGED)
STYLE_ADDED = "green"
STYLE_REMOVED = "red"
STYLE_HUNK = "cyan"
STYLE_HEADING = "bold"
INDENT = "  "


# --- words shared by the views --------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _side(report: DiffReport, build_state: str) -> str:
    return report.base if build_state == "base-only" else report.head


def _shown(kustomization: KustomizationDiff) -> bool:
    return (
        bool(kustomization.objects)
        or bool(kustomization.releases)
        or bool(kustomization.build_state)
        or kustomization.failing
        or bool(kustomization.suspended)
    )


def _changes(n: int) -> str:
    return _plural(n, "change")


def not_applied_text(kustomization: KustomizationDiff) -> str:
    """What a failed dry-run holds back, in words."""
    held = f"{_changes(kustomization.not_applied)} not applied" if kustomization.not_applied else "nothing applied"
    return f"{held}: kustomize-controller stops at a failed dry-run and prunes nothing"


def suspended_text(kustomization: KustomizationDiff) -> str:
    """Where a Kustomization is suspended and what that means for the comparison."""
    where = "on the cluster" if kustomization.suspended == SUSPENDED_ON_CLUSTER else "in the checkout"
    if not kustomization.compared:
        return f"suspended {where}: not compared; --include-suspended compares it"
    return f"suspended {where}: Flux applies none of this until it is resumed"


def _state_note(kustomization: KustomizationDiff, report: DiffReport) -> str:
    """What the heading says after a Kustomization's name, "" when nothing."""
    notes = []
    if kustomization.build_state:
        notes.append(f"built only at {_side(report, kustomization.build_state)}")
    if kustomization.failing:
        notes.append("failing")
    if kustomization.suspended:
        notes.append(suspended_text(kustomization))
    return "; ".join(notes)


def summary_line(report: DiffReport) -> str:
    """The closing line: '3 changed, 1 created, 1 deleted, 12 unchanged in 2 Kustomizations', or
    'no differences' (with what was compared, when anything was); then the Kustomizations built
    at one side only, failing, or suspended and not compared."""
    counts = report.counts
    parts = [f"{counts[kind]} {kind}" for kind in SUMMARY_ORDER if counts.get(kind)]
    compared = len(report.kustomizations) - report.not_compared
    text = f"{', '.join(parts)} in {_plural(compared, 'Kustomization')}" if parts else ""
    extras = []
    one_sided = sum(1 for k in report.kustomizations if k.build_state)
    if one_sided:
        extras.append(f"{_plural(one_sided, 'Kustomization')} built at one side only")
    if report.failing:
        held = sum(k.not_applied for k in report.kustomizations)
        extras.append(f"{_plural(report.failing, 'Kustomization')} failing ({_changes(held)} not applied)")
    releases_failing = sum(1 for k in report.kustomizations for r in k.releases if r.failing)
    if releases_failing:
        extras.append(f"{_plural(releases_failing, 'HelmRelease')} failing (a dry-run of its objects fails)")
    drifted = sum(len(r.live) for k in report.kustomizations for r in k.releases)
    if drifted:
        extras.append(f"{_plural(drifted, 'live object')} put back by an upgrade")
    if report.not_compared:
        extras.append(f"{_plural(report.not_compared, 'Kustomization')} suspended, not compared")
    text = "; ".join([text, *extras] if text else extras)
    if not report.differs:
        return f"no differences: {text}" if text else "no differences"
    return text


def _kustomization_counts(kustomization: KustomizationDiff, report: DiffReport) -> str:
    counts = kustomization.counts
    parts = [f"{counts[kind]} {kind}" for kind in SUMMARY_ORDER if kind != UNCHANGED and counts.get(kind)]
    note = _state_note(kustomization, report)
    if note:
        parts.append(note)
    return ", ".join(parts)


def failure_reason(failure: ObjectFailure) -> str:
    """A failure's message without the object's name it starts with (shown beside it)."""
    for subject in (failure.key.subject, failure.key.qualified_subject):
        if failure.message.startswith(subject + " "):
            return failure.message.removeprefix(subject + " ")
    return failure.message


def _secret_changes(diff: ObjectDiff) -> list[tuple[str, str]]:
    """(path, state) for each Secret key that was added, removed or changed, in key order."""
    return [
        (join_path("data", key), state)
        for key, state in diff.secret_keys.items()
        if state in (SECRET_ADDED, SECRET_REMOVED, SECRET_CHANGED)
    ]


def _unknown_note(diff: ObjectDiff) -> str:
    unknown = sum(1 for state in diff.secret_keys.values() if state == SECRET_UNKNOWN)
    if not unknown:
        return ""
    return f"{_plural(unknown, 'key')} not compared: values unknown (SOPS-encrypted or masked)"


def warning_lines(report: DiffReport) -> list[str]:
    """Every warning once (the report's, then each Kustomization's), for the CLI to print on stderr."""
    seen: dict[str, None] = {}
    for line in report.warnings:
        seen.setdefault(line, None)
    for kustomization in report.kustomizations:
        for line in kustomization.warnings:
            seen.setdefault(line, None)
    return list(seen)


# --- terminal -------------------------------------------------------------------------------------
def _diff_style(line: str) -> str:
    if line.startswith("@@"):
        return STYLE_HUNK
    if line.startswith("+"):
        return STYLE_ADDED
    if line.startswith("-"):
        return STYLE_REMOVED
    if line.startswith("... truncated"):
        return symbols.STYLE_ABSENT
    return ""


class _Lines:
    """A Text built line by line, styled only when colour is wanted."""

    def __init__(self, color: bool) -> None:
        self.text = Text()
        self.color = color
        self.count = 0

    def line(self, *parts: str | tuple[str, str]) -> None:
        if self.count:
            self.text.append("\n")
        self.count += 1
        self.extend(*parts)

    def extend(self, *parts: str | tuple[str, str]) -> None:
        for part in parts:
            if isinstance(part, tuple):
                content, style = part
                self.text.append(content, style=style if self.color and style else None)
            else:
                self.text.append(part)


def diff_view(report: DiffReport, *, color: bool) -> RenderableType:
    """The report for a terminal (or plain text when ``color`` is False)."""
    out = _Lines(color)
    out.line((f"{report.base} → {report.head}", STYLE_HEADING))
    for kustomization in report.kustomizations:
        if not _shown(kustomization):
            continue
        out.line("")
        heading: list[str | tuple[str, str]] = [(str(kustomization.ref), STYLE_HEADING)]
        note = _state_note(kustomization, report)
        if note:
            style = symbols.STYLE_FAILED if kustomization.failing else symbols.STYLE_PENDING
            heading.append((f"  ({note})", style))
        out.line(*heading)
        for failure in kustomization.failures:
            out.line(INDENT, (f"{symbols.FAILED} failed", symbols.STYLE_FAILED), "   ", failure.subject)
            out.extend((f"  ({failure_reason(failure)})", symbols.STYLE_FAILED))
        if kustomization.failing:
            out.line(INDENT, (f"{symbols.FAILED} {not_applied_text(kustomization)}", symbols.STYLE_FAILED))
        for diff in kustomization.objects:
            _terminal_object(diff, out)
        for release in kustomization.releases:
            _terminal_release(release, out)
    out.line("")
    out.line((summary_line(report), STYLE_HEADING if report.differs else symbols.STYLE_OK))
    return out.text


def release_heading(release: ReleaseDiff) -> str:
    """'HelmRelease/ns/name rendered (chart web 1.0.0 → web 1.1.0)', with its note."""
    before, after = release.charts
    chart = before if before == after else f"{before or symbols.ABSENT} → {after or symbols.ABSENT}"
    words = [f"chart {chart}"] if chart.strip() else []
    if release.note:
        words.append(release.note)
    suffix = f" ({'; '.join(words)})" if words else ""
    return f"HelmRelease/{release.ref.namespace}/{release.ref.name} rendered{suffix}"


LIVE_HEADING = "live objects changed on the cluster, put back by the upgrade (server-side apply dry-run):"


def _terminal_release(release: ReleaseDiff, out: _Lines) -> None:
    out.line(INDENT, (release_heading(release), STYLE_HEADING if release.compared else symbols.STYLE_PENDING))
    for failure in release.failures:
        out.line(INDENT * 2, (f"{symbols.FAILED} failed", symbols.STYLE_FAILED), "   ", failure.subject)
        out.extend((f"  ({failure_reason(failure)})", symbols.STYLE_FAILED))
    for diff in release.objects:
        _terminal_object(diff, out, INDENT * 2)
    if release.live:
        out.line(INDENT * 2, (LIVE_HEADING, STYLE_HEADING))
        for diff in release.live:
            _terminal_object(diff, out, INDENT * 3)


def _terminal_object(diff: ObjectDiff, out: _Lines, indent: str = INDENT) -> None:
    mark, style = MARKS.get(diff.change, ("?", ""))
    out.line(indent, (f"{mark} {diff.change}", style), "  ", diff.subject)
    if diff.reason:
        out.extend((f"  ({diff.reason})", symbols.STYLE_ABSENT))
    if diff.change != CHANGED:
        return
    body = indent + INDENT * 2
    for path, state in _secret_changes(diff):
        text = f"{path}: {state}" if state == SECRET_REMOVED else f"{path}: {state} (***)"
        out.line(body, (text, {SECRET_ADDED: STYLE_ADDED, SECRET_REMOVED: STYLE_REMOVED}.get(state, "")))
    note = _unknown_note(diff)
    if note:
        out.line(body, (note, symbols.STYLE_ABSENT))
    for line in diff.unified.splitlines():
        if line.startswith(("--- ", "+++ ")):
            continue  # the object line names the object, the first line the sides
        out.line(body, (line, _diff_style(line)))


# --- document -------------------------------------------------------------------------------------
def _json_value(value: Any) -> Any:
    """Field values as JSON has them (dates and other YAML scalars become strings)."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _object_document(diff: ObjectDiff) -> dict[str, Any]:
    return {
        "apiVersion": diff.key.api_version,
        "kind": diff.key.kind,
        "namespace": diff.key.namespace or None,
        "name": diff.key.name,
        "change": diff.change,
        "reason": diff.reason or None,
        "fields": [
            {"path": f.path, "op": f.op, "before": _json_value(f.before), "after": _json_value(f.after)}
            for f in diff.fields
        ],
        "secretKeys": dict(diff.secret_keys),
        "diff": diff.unified or None,
        "truncated": diff.truncated,
    }


def _failure_document(failure: ObjectFailure) -> dict[str, Any]:
    return {
        "apiVersion": failure.key.api_version,
        "kind": failure.key.kind,
        "namespace": failure.key.namespace or None,
        "name": failure.key.name,
        "message": failure.message,
    }


def _kustomization_document(k: KustomizationDiff, *, cluster: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": k.ref.kind,
        "namespace": k.ref.namespace,
        "name": k.ref.name,
        "buildState": k.build_state or None,
    }
    if cluster:  # what only the cluster can say: suspended, and whether the apply fails
        doc.update(
            {
                "suspended": k.suspended or None,
                "compared": k.compared,
                "failing": k.failing,
                "failures": [_failure_document(f) for f in k.failures],
                "notApplied": k.not_applied,
            }
        )
    doc.update(
        {
            "unchanged": k.unchanged,
            "warnings": list(k.warnings),
            "objects": [_object_document(o) for o in k.objects],
            "helmReleases": [_release_document(r) for r in k.releases],
        }
    )
    return doc


def _release_document(release: ReleaseDiff) -> dict[str, Any]:
    return {
        "namespace": release.ref.namespace,
        "name": release.ref.name,
        "chartBefore": release.charts[0] or None,
        "chartAfter": release.charts[1] or None,
        "compared": release.compared,
        "note": release.note or None,
        "unchanged": release.unchanged,
        "objects": [_object_document(o) for o in release.objects],
        "live": [_object_document(o) for o in release.live],
        "failures": [_failure_document(f) for f in release.failures],
    }


def diff_document(report: DiffReport) -> dict[str, Any]:
    """The ``-o json|yaml`` shape, pinned by tests/unit/test_render_diff.py."""
    return document(
        "DiffReport",
        {
            "mode": report.mode,
            "base": report.base,
            "head": report.head,
            "differs": report.differs,
            "counts": report.counts,
            "warnings": warning_lines(report),
            "kustomizations": [
                _kustomization_document(k, cluster=report.mode == "cluster") for k in report.kustomizations
            ],
        },
    )


# --- Markdown -------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _quote(lines: list[str]) -> str:
    out = []
    for line in lines:
        for i, part in enumerate(line.splitlines() or [""]):
            out.append(f"> **warning:** {part}" if i == 0 else f"> {part}")
    return "\n".join(out) + "\n\n" if out else ""


def _code(text: str) -> str:
    return f"`{text}`"


def _diff_block(text: str) -> str:
    fence = _fence(text)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}diff\n{body}{fence}\n\n"


def _object_markdown(diff: ObjectDiff) -> tuple[str, str]:
    """The object's heading (with its secret keys) and its diff text ("" when none)."""
    mark, _ = MARKS.get(diff.change, ("?", ""))
    heading = f"**{mark} {diff.change}** {_code(diff.subject)}"
    if diff.reason:
        heading += f" ({diff.reason})"
    heading += "\n\n"
    items = [f"- {_code(path)}: {state}\n" for path, state in _secret_changes(diff)]
    note = _unknown_note(diff)
    if note:
        items.append(f"- _{note}_\n")
    if items:
        heading += "".join(items) + "\n"
    return heading, diff.unified


def _cut_diff(text: str, room: int) -> str:
    """As many whole lines of ``text`` as fit in ``room`` characters, and a line saying so."""
    kept: list[str] = []
    size = 0
    lines = text.splitlines(keepends=True)
    for line in lines:
        if size + len(line) > room:
            break
        kept.append(line)
        size += len(line)
    rest = len(text) - size
    return "".join(kept) + f"... truncated ({rest} more characters)\n"


def _table(report: DiffReport, shown: list[KustomizationDiff], room: int) -> tuple[str, int]:
    """The counts per Kustomization, as many rows as fit in ``room`` characters; how many did not."""
    rows = []
    for k in shown:
        counts = k.counts
        name = f"{k.ref.namespace}/{k.ref.name}"
        note = _state_note(k, report)
        if note:
            name += f" ({note})"
        cells = [_cell(name), *(str(counts[kind]) for kind in (CREATED, CHANGED, DELETED, SKIPPED))]
        rows.append("| " + " | ".join(cells) + " |\n")
    head = "| Kustomization | created | changed | deleted | skipped |\n| --- | ---: | ---: | ---: | ---: |\n"
    more = "| … {} more | | | | |\n"
    while rows and len(head) + sum(map(len, rows)) + len(more) + 10 > room:
        rows.pop()
    left_out = len(shown) - len(rows)
    if left_out:
        rows.append(more.format(left_out))
    return head + "".join(rows), left_out


def _opening(report: DiffReport, k: KustomizationDiff) -> str:
    summary = f"Kustomization {k.ref.namespace}/{k.ref.name} — {_kustomization_counts(k, report)}"
    text = f"<details><summary>{html.escape(summary)}</summary>\n\n" + _quote(list(k.warnings))
    if k.failing:
        text += "".join(f"**✗ failed** {_code(f.subject)}: {_inline(failure_reason(f))}\n\n" for f in k.failures)
        text += f"_{not_applied_text(k).capitalize()}._\n\n"
    for release in k.releases:
        if not release.objects and not release.live:
            text += f"_{_inline_plain(release_heading(release))}._\n\n"
        text += "".join(f"**✗ failed** {_code(f.subject)}: {_inline(failure_reason(f))}\n\n" for f in release.failures)
    if k.build_state and not k.objects:
        text += f"_Built only at {_side(report, k.build_state)}: no objects compared._\n\n"
    if k.suspended and not k.compared:
        text += f"_{suspended_text(k).capitalize()}._\n\n"
    return text


def _inline(text: str) -> str:
    """Server text as Markdown shows it literally: one line, in a code span."""
    one_line = " ".join(text.split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", one_line)), default=0) + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def _entries(k: KustomizationDiff) -> list[tuple[str, ObjectDiff]]:
    """The objects of a Kustomization's section, each with what comes before it: nothing, or the
    heading of the HelmRelease whose render it belongs to (before its first object)."""
    entries = [("", diff) for diff in k.objects]
    for release in k.releases:
        heading = f"#### {_inline_plain(release_heading(release))}\n\n"
        for index, diff in enumerate(release.objects):
            entries.append((heading if index == 0 else "", diff))
        live_heading = f"#### {_inline_plain(release_heading(release))}: {LIVE_HEADING.removesuffix(':')}\n\n"
        for index, diff in enumerate(release.live):
            entries.append((live_heading if index == 0 else "", diff))
    return entries


def _inline_plain(text: str) -> str:
    return html.escape(text, quote=False)


def _sections(report: DiffReport, shown: list[KustomizationDiff], room: int) -> tuple[str, int, bool]:
    """Each Kustomization in a collapsed section, objects while they fit in ``room`` characters
    (a HelmRelease's rendered objects under its own heading): the text, how many objects were
    left out, and whether the output was cut."""
    closing = "</details>\n\n"
    out = ""
    for position, k in enumerate(shown):
        section = _opening(report, k)
        entries = _entries(k)
        if len(out) + len(section) + len(closing) > room:
            return out, sum(len(_entries(rest)) for rest in shown[position:]), True
        for index, (before, diff) in enumerate(entries):
            heading, text = _object_markdown(diff)
            heading = before + heading
            block = heading + (_diff_block(text) if text else "")
            left = room - len(out) - len(section) - len(closing)
            if len(block) <= left:
                section += block
                continue
            partial = heading + _diff_block(_cut_diff(text, left - len(heading) - 80)) if text else ""
            shown_partly = bool(partial) and left - len(heading) > 280 and len(partial) <= left
            if shown_partly:
                section += partial
            hidden = len(entries) - index - shown_partly
            hidden += sum(len(_entries(rest)) for rest in shown[position + 1 :])
            return out + section + closing, hidden, True
        out += section + closing
    return out, 0, False


def diff_markdown(report: DiffReport, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """A pull-request comment: title, a table of counts, then each Kustomization's objects in a
    collapsed section. Kept within ``limit`` characters: what does not fit is left out, and the
    comment ends saying so."""
    title = f"## phoebe diff: {report.base} → {report.head}\n\n"
    shown = [k for k in report.kustomizations if _shown(k)]
    ks_warnings = {w for k in shown for w in k.warnings}
    loose = [w for w in warning_lines(report) if w not in ks_warnings]
    if not report.differs:
        suspended = [k for k in report.kustomizations if k.suspended and not k.compared]
        notes = "".join(
            f"- Kustomization {_code(f'{k.ref.namespace}/{k.ref.name}')}: {suspended_text(k)}\n" for k in suspended
        )
        return title + "No differences.\n\n" + (notes + "\n" if notes else "") + _quote(loose)
    budget = limit - 300  # room for the closing note
    after_table = f"\n{summary_line(report)}\n\n" + _quote(loose)
    table, rows_left_out = _table(report, shown, budget - len(title) - len(after_table))
    out = title + table + after_table
    graph = _graph_section(report, budget - len(out))
    out += graph
    sections, hidden, cut = _sections(report, shown, budget - len(out))
    out += sections
    if cut or rows_left_out:
        what = f"{_plural(hidden, 'more object')} not shown" if hidden else "some of the diff not shown"
        out += (
            f"_Truncated: {what}; a comment holds at most {limit} characters. Run `phoebe diff` to see everything._\n"
        )
    return out


def _graph_section(report: DiffReport, room: int) -> str:
    """The mermaid graph of the Kustomizations and HelmReleases that change (and the blocked-by
    chains leading from them), collapsed; GitHub and Forgejo draw it. Left out when it would take
    more than half the room left, or is beyond what mermaid draws."""
    touched = [ref for ref in report.touched if ref in report.flux_objects]
    if not touched:
        return ""
    from phoebe_cli.render.graph import mermaid_block, mermaid_too_big

    block = mermaid_block(report.flux_objects, touched)
    if mermaid_too_big(block) is not None:
        return ""
    section = f"<details><summary>Graph of what changes</summary>\n\n{block}\n</details>\n\n"
    return section if len(section) <= room // 2 else ""


# --- diff images ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRow:
    """One container whose image the change moves, in the Kustomization that applies it."""

    kustomization: str  # namespace/name
    workload: str  # Kind/namespace/name
    change: str  # the workload's: created, changed, deleted
    container: str  # "app", "migrate (init)"
    before: str | None
    after: str | None


def image_rows(report: DiffReport) -> list[ImageRow]:
    """Every image the report moves, Kustomization by Kustomization, object by object (the
    objects its HelmReleases render included)."""
    return [
        ImageRow(f"{k.ref.namespace}/{k.ref.name}", diff.subject, diff.change, image.label, image.before, image.after)
        for k in report.kustomizations
        for diff in [*k.objects, *(d for r in k.releases for d in r.objects)]
        if diff.change in (CREATED, CHANGED, DELETED)
        for image in diff.images
    ]


def images_differ(report: DiffReport) -> bool:
    return bool(image_rows(report))


def _image_text(image: str | None) -> str:
    return image if image is not None else symbols.ABSENT


def images_summary(report: DiffReport) -> str:
    rows = image_rows(report)
    if not rows:
        return "no image changes"
    workloads = len({(r.kustomization, r.workload) for r in rows})
    return f"{_plural(len(rows), 'image change')} in {_plural(workloads, 'workload')}"


def images_view(report: DiffReport, *, color: bool) -> RenderableType:
    """The image changes as a table (plain text when ``color`` is False): one row per container."""
    from rich.console import Group
    from rich.table import Table

    rows = image_rows(report)
    parts: list[RenderableType] = [Text(f"{report.base} → {report.head}", style=STYLE_HEADING if color else "")]
    if rows:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold" if color else "")
        for column in ("KUSTOMIZATION", "WORKLOAD", "CONTAINER", "BEFORE", "AFTER"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                row.kustomization,
                row.workload,
                row.container,
                Text(_image_text(row.before), style=STYLE_REMOVED if color and row.before else ""),
                Text(_image_text(row.after), style=STYLE_ADDED if color and row.after else ""),
            )
        parts.append(table)
    parts.append(Text(images_summary(report), style=(STYLE_HEADING if rows else symbols.STYLE_OK) if color else ""))
    return Group(*parts)


def images_document(report: DiffReport) -> dict[str, Any]:
    """The ``diff images -o json|yaml`` shape, pinned by tests/unit/test_render_diff.py."""
    return document(
        "ImageDiff",
        {
            "mode": report.mode,
            "base": report.base,
            "head": report.head,
            "differs": images_differ(report),
            "warnings": warning_lines(report),
            "images": [
                {
                    "kustomization": row.kustomization,
                    "workload": row.workload,
                    "change": row.change,
                    "container": row.container,
                    "before": row.before,
                    "after": row.after,
                }
                for row in image_rows(report)
            ],
        },
    )


def images_markdown(report: DiffReport) -> str:
    """A pull-request comment: the image changes as one table (short enough for any comment)."""
    title = f"## phoebe diff images: {report.base} → {report.head}\n\n"
    rows = image_rows(report)
    if not rows:
        return title + "No image changes.\n\n" + _quote(warning_lines(report))
    lines = ["| Kustomization | Workload | Container | Before | After |\n", "| --- | --- | --- | --- | --- |\n"]
    for row in rows:
        cells = [
            _cell(row.kustomization),
            _code(_cell(row.workload)),
            _cell(row.container),
            _code(_cell(row.before)) if row.before else symbols.ABSENT,
            _code(_cell(row.after)) if row.after else symbols.ABSENT,
        ]
        lines.append("| " + " | ".join(cells) + " |\n")
    return title + "".join(lines) + f"\n{images_summary(report)}\n\n" + _quote(warning_lines(report))
