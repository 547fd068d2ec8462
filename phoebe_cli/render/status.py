"""``phoebe status`` output: the tree, the table, the header, the document."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from phoebe_cli.flux.kinds import HELM_RELEASE, KUSTOMIZATION, plural
from phoebe_cli.flux.objects import FluxObject, ObjectRef, State, short_revision
from phoebe_cli.flux.tree import Blocked, BlockProblem, Counts
from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document
from phoebe_cli.usecases.status import ClustersReport, StatusReport

MARKS: dict[State, tuple[str, str]] = {
    State.READY: (symbols.OK, symbols.STYLE_OK),
    State.FAILED: (symbols.FAILED, symbols.STYLE_FAILED),
    State.PROGRESSING: (symbols.PENDING, symbols.STYLE_PENDING),
    State.SUSPENDED: (symbols.SUSPENDED, "blue"),
    State.UNKNOWN: ("?", symbols.STYLE_ABSENT),
}
STATE_ORDER = (State.READY, State.FAILED, State.PROGRESSING, State.SUSPENDED, State.UNKNOWN)


def age(since: str | None, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    if not since:
        return ""
    try:
        then = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _transition(obj: FluxObject) -> str | None:
    ready = obj.ready
    return ready.last_transition if ready is not None else obj.created


def one_line(text: str) -> str:
    return " ".join(text.split())


def _name(ref: ObjectRef) -> str:
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


def _short(ref: ObjectRef, relative_to: str) -> str:
    return ref.name if ref.namespace == relative_to else f"{ref.namespace}/{ref.name}"


def blocked_text(blocked: Blocked, report: StatusReport) -> str:
    """sonarr ← blocked by rook-ceph/rook-ceph-cluster ← ReconciliationFailed: ..."""
    own = blocked.chain[0]
    # a step of another kind (the source an object waits on) says its kind
    steps = [
        f"blocked by {'' if ref.kind == own.kind else ref.kind + ' '}{_short(ref, own.namespace)}"
        for ref in blocked.chain[1:]
    ]
    text = " ← ".join(steps)
    if blocked.problem is BlockProblem.CYCLE:
        return f"{text} ← dependency cycle"
    if blocked.problem is BlockProblem.MISSING:
        return f"{text} ← not found"
    cause = report.objects.get(blocked.cause)
    if cause is not None:
        reason = cause.reason or cause.state.value
        message = one_line(cause.message)
        text += f" ← {reason}: {message}" if message else f" ← {reason}"
    return text


def problem_text(obj: FluxObject, report: StatusReport) -> str:
    """Why an object is not ready, on one line."""
    blocked = report.blocked.get(obj.ref)
    if blocked is not None:
        return blocked_text(blocked, report)
    if obj.state is State.SUSPENDED:
        return "suspended"
    message = one_line(obj.message)
    if obj.reason and message:
        return f"{obj.reason}: {message}"
    return message or obj.reason


def _source_note(obj: FluxObject, report: StatusReport, parent: FluxObject | None) -> Text | None:
    """The source beside a node: always for a HelmRelease (its chart's source), and for a
    Kustomization when it differs from its parent's (most read the same GitRepository)."""
    ref = obj.source_ref
    if ref is None:
        return None
    if obj.kind is KUSTOMIZATION and parent is not None and parent.source_ref == ref:
        return None
    source = report.objects.get(ref)
    if obj.kind is HELM_RELEASE and source is None and report.declared and obj.chart_source_ref is not None:
        # A checkout never declares HelmCharts (helm-controller makes them): show the chart's
        # source, as the cluster view does once the chart is ready.
        ref = obj.chart_source_ref
        source = report.objects.get(ref)
    elif obj.kind is HELM_RELEASE and source is not None and source.source_ref is not None:
        source_ref = source.source_ref  # HelmChart -> its HelmRepository: what a person recognises
        shown = report.objects.get(source_ref)
        if shown is not None and (source.state is State.READY):
            ref, source = source_ref, shown
    note = Text(f"← {_name(ref)}", style="dim")
    if source is None:
        note.append(" (not found)", style=symbols.STYLE_PENDING)
    elif source.state is not State.READY:
        mark, style = MARKS[source.state]
        note.append(f" {mark} {problem_text(source, report) or source.state.value}", style=style)
    return note


def node_label(obj: FluxObject, report: StatusReport, parent: FluxObject | None = None) -> Text:
    mark, style = MARKS[obj.state]
    label = Text.assemble((mark, style), " ", _name(obj.ref))
    revision = short_revision(obj.revision)
    if revision and obj.state in (State.READY, State.SUSPENDED, State.PROGRESSING):
        label.append(f"  {revision}", style="cyan")
    when = age(_transition(obj), report.generated)
    if when:
        label.append(f"  {when}", style="dim")
    if obj.state is not State.READY:
        problem = problem_text(obj, report)
        if problem:
            label.append(f"  {problem}", style=style if obj.state is State.FAILED else "")
    note = _source_note(obj, report, parent)
    if note is not None:
        label.append("  ")
        label.append_text(note)
    return label


def waiting_view() -> RenderableType:
    return Text("listing...", style="dim")


def header(report: StatusReport) -> RenderableType:
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("context", report.context + (f", Flux {report.flux_version}" if report.flux_version else ""))
    for ref, revision in report.git_revisions[:3]:
        lines.add_row("source", f"{_name(ref)} {short_revision(revision)}")
    for kind, states in sorted(report.counts.by_kind.items()):
        total = sum(states.values())
        parts = [
            Text(f"{states[s]} {s.value}", style=MARKS[s][1] if s is not State.READY else "")
            for s in STATE_ORDER
            if states.get(s)
        ]
        # "2 ready" when all are in one state, else "31: 28 ready, 2 failed, 1 suspended"
        line = Text(f"{total}: ", style="bold") if len(parts) > 1 else Text("")
        line.append_text(Text(", ").join(parts))
        lines.add_row(kind if total == 1 else plural(kind), line)
    if report.forbidden_namespaces:
        lines.add_row("forbidden", f"{len(report.forbidden_namespaces)} namespaces not readable")
    return lines


def tree_view(report: StatusReport, *, with_header: bool) -> RenderableType:
    parts: list[RenderableType] = []
    if with_header:
        parts.extend([header(report), Text("")])
    forest = RichTree("", hide_root=True, guide_style="dim")
    objects = report.objects

    def add(branch: RichTree, ref: ObjectRef, parent: FluxObject | None, depth: int) -> None:
        obj = objects[ref]
        node = branch.add(node_label(obj, report, parent))
        if report.depth is not None and depth >= report.depth:
            hidden = [k for k in report.tree.children.get(ref, ()) if report.visible(k)]
            if hidden:
                node.add(Text(f"… {len(hidden)} more", style="dim"))
            return
        for child in report.tree.children.get(ref, ()):
            if report.visible(child):
                add(node, child, obj, depth + 1)

    for root in report.tree.roots:
        if report.visible(root):
            add(forest, root, None, 0)
    unattached = [ref for ref in report.tree.unattached if ref in set(report.selected)]
    if unattached:
        branch = forest.add(Text("unattached (applied by no Kustomization)", style="bold dim"))
        for ref in unattached:
            branch.add(node_label(objects[ref], report))
    if not report.selected:
        parts.append(Text("nothing matched", style="dim"))
    else:
        parts.append(forest)
    return Group(*parts)


MIN_REASON = 24  # cells: below this the reason goes on the lines under its row
REASON_INDENT = 4


class FoldedRows:
    """Rows of aligned columns ending in a reason that is never cut (the most important column).

    On a terminal too narrow for a row, the reason wraps inside its column when that leaves it
    at least MIN_REASON cells, else it continues on the lines below the row, indented. Not on a
    terminal (phoebe's console is then wider than any line) every row is one line. Rich's Table
    measures every cell, which is slow for hundreds of rows; this measures each cell once.
    """

    def __init__(
        self, rows: Sequence[tuple[Sequence[Text], Text]], headers: Sequence[str] | None = None, *, gap: int = 2
    ) -> None:
        self.rows = rows
        self.headers = headers
        self.gap = gap

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = options.max_width
        count = max((len(cells) for cells, _ in self.rows), default=len(self.headers or ()) - 1)
        widths = [0] * count
        if self.headers:
            for i, header in enumerate(self.headers[:count]):
                widths[i] = len(header)
        for cells, _ in self.rows:
            for i, cell in enumerate(cells):
                widths[i] = max(widths[i], cell.cell_len)
        pad = " " * self.gap
        prefix = sum(widths) + self.gap * count
        room = width - prefix
        longest = max((reason.cell_len for _, reason in self.rows), default=0)
        below = longest > room and room < MIN_REASON  # too narrow: reasons go under their rows
        if self.headers:
            head = Text(style="bold")
            for header, size in zip(self.headers[:count], widths, strict=False):
                head.append(header.ljust(size) + pad)
            if not below:
                head.append(self.headers[count])
            head.rstrip()
            yield head
        for cells, reason in self.rows:
            line = Text()
            for cell, size in zip(cells, widths, strict=False):
                line.append_text(cell)
                line.append(" " * (size - cell.cell_len) + pad)
            if reason.cell_len <= room or not reason.plain:
                line.append_text(reason)
                line.rstrip()
                yield line
            elif not below:
                first, *rest = reason.wrap(console, room, overflow="fold")
                line.append_text(first)
                line.rstrip()
                yield line
                for piece in rest:
                    yield Text(" " * prefix) + piece
            else:
                line.rstrip()
                yield line
                for piece in reason.wrap(console, max(1, width - REASON_INDENT), overflow="fold"):
                    yield Text(" " * REASON_INDENT) + piece


def columns(headers: list[str], rows: list[list[Text]], *, gap: int = 2) -> RenderableType:
    """Rows aligned in columns; the last one is the reason, folded, never cut (FoldedRows)."""
    return FoldedRows([(row[:-1], row[-1]) for row in rows], headers, gap=gap)


def table_view(report: StatusReport, *, with_header: bool) -> RenderableType:
    headers = ["NAMESPACE", "KIND", "NAME", "READY", "SUSPENDED", "REVISION", "AGE", "MESSAGE"]
    rows: list[tuple[list[Text], Text]] = []
    for ref in report.selected:
        obj = report.objects[ref]
        mark, style = MARKS[obj.state]
        ready = obj.ready
        message = problem_text(obj, report) if obj.state is not State.READY else one_line(obj.message)
        rows.append(
            (
                [
                    Text(obj.namespace),
                    Text(obj.kind.kind),
                    Text(obj.name),
                    Text(f"{mark} {ready.status if ready else '-'}", style=style),
                    Text("yes" if obj.suspended else "no"),
                    Text(short_revision(obj.revision)),
                    Text(age(_transition(obj), report.generated)),
                ],
                Text(message, style=style if obj.state is State.FAILED else ""),
            )
        )
    parts: list[RenderableType] = []
    if with_header:
        parts.extend([header(report), Text("")])
    parts.append(FoldedRows(rows, headers) if report.selected else Text("nothing matched", style="dim"))
    return Group(*parts)


def graph_text(report: StatusReport, language: str) -> str:
    """The Kustomization and HelmRelease graph of what the report shows (the selection, the
    Kustomizations that applied it, and the blocked-by chains that lead from it) in ``mermaid``
    or ``dot``; ``svg`` gets the DOT source, for Graphviz to draw."""
    from phoebe_cli.flux.graph import build_graph
    from phoebe_cli.render import graph

    drawn = build_graph(report.objects, report.blocked, report.shown)
    title = f"phoebe status: {'checkout ' if report.declared else 'context '}{report.context}"
    if language == "mermaid":
        return graph.mermaid(drawn, title=title)
    return graph.dot(drawn, title=title)


def _state_counts(counts: Counts) -> Text:
    parts = [
        Text(f"{counts.total(s)} {s.value}", style=MARKS[s][1] if s is not State.READY else "")
        for s in STATE_ORDER
        if counts.total(s)
    ]
    return Text(", ").join(parts) if parts else Text("nothing matched", style="dim")


def clusters_summary(report: ClustersReport) -> RenderableType:
    """The combined summary under the sections: clusters by verdict, objects by state."""
    read = [c for c in report.clusters if c.report is not None]
    healthy = sum(1 for c in read if c.report is not None and c.report.healthy)
    verdicts = [f"{healthy} healthy"]
    if len(read) - healthy:
        verdicts.append(f"{len(read) - healthy} not healthy")
    if report.unread:
        verdicts.append(f"{len(report.unread)} not read")
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("clusters", f"{len(report.clusters)}: " + ", ".join(verdicts))
    lines.add_row("objects", _state_counts(report.counts))
    return lines


def clusters_view(report: ClustersReport, *, table: bool, with_header: bool) -> RenderableType:
    """One section per cluster (its tree or table, or why it could not be read), then the
    combined summary."""
    parts: list[RenderableType] = []
    for cluster in report.clusters:
        parts.append(Text(f"== {cluster.context} ==", style="bold"))
        if cluster.report is None:
            assert cluster.error is not None
            parts.append(Text.assemble((symbols.FAILED, symbols.STYLE_FAILED), " ", (str(cluster.error), "red")))
        elif table:
            parts.append(table_view(cluster.report, with_header=with_header))
        else:
            parts.append(tree_view(cluster.report, with_header=with_header))
        parts.append(Text(""))
    parts.append(clusters_summary(report))
    return Group(*parts)


def clusters_document(report: ClustersReport) -> dict[str, Any]:
    """The ``-o json|yaml`` shape with several contexts: each context's StatusReport (as one
    cluster gives it), or its error; pinned by tests/integration/test_multicluster.py and
    documented in docs/commands/status.md."""
    from phoebe_cli.errors import exit_code_for

    contexts: dict[str, Any] = {}
    for cluster in report.clusters:
        if cluster.report is not None:
            contexts[cluster.context] = status_document(cluster.report)
        else:
            assert cluster.error is not None
            contexts[cluster.context] = {
                "error": {
                    "reason": type(cluster.error).__name__,
                    "message": str(cluster.error),
                    "exitCode": int(exit_code_for(cluster.error)),
                }
            }
    read = [c.report for c in report.clusters if c.report is not None]
    counts = report.counts
    return document(
        "MultiClusterStatusReport",
        {
            "healthy": report.healthy,
            "summary": {
                "clusters": len(report.clusters),
                "healthy": sum(1 for r in read if r.healthy),
                "notHealthy": sum(1 for r in read if not r.healthy),
                "notRead": len(report.unread),
                "total": counts.total(),
                **{s.value: counts.total(s) for s in STATE_ORDER},
            },
            "contexts": contexts,
        },
    )


def _ref_doc(ref: ObjectRef) -> dict[str, str]:
    return {"kind": ref.kind, "namespace": ref.namespace, "name": ref.name}


def status_document(report: StatusReport) -> dict[str, Any]:
    """The ``-o json|yaml`` shape; pinned by tests/unit/test_render_status.py and documented in
    docs/commands/status.md."""
    selected = set(report.selected)
    objects = []
    for ref in report.selected:
        obj = report.objects[ref]
        ready = obj.ready
        blocked = report.blocked.get(ref)
        objects.append(
            {
                **_ref_doc(ref),
                "state": obj.state.value,
                "ready": ready.status if ready else None,
                "reason": obj.reason or None,
                "message": obj.message or None,
                "suspended": obj.suspended,
                "revision": obj.revision,
                "lastTransitionTime": _transition(obj),
                "source": _ref_doc(obj.source_ref) if obj.source_ref else None,
                "dependsOn": [_ref_doc(d) for d in obj.depends_on],
                "blockedBy": None
                if blocked is None
                else {
                    "chain": [_ref_doc(r) for r in blocked.chain[1:]],
                    "problem": blocked.problem.value if blocked.problem else None,
                    "cause": blocked_text(blocked, report),
                },
            }
        )
    counts = {
        kind: {s.value: n for s, n in sorted(states.items(), key=lambda item: STATE_ORDER.index(item[0]))}
        for kind, states in sorted(report.counts.by_kind.items())
    }
    return document(
        "StatusReport",
        {
            "context": report.context,
            "fluxVersion": report.flux_version,
            "healthy": report.healthy,
            "summary": {
                "total": len(report.selected),
                **{s.value: report.counts.total(s) for s in STATE_ORDER},
            },
            "counts": counts,
            "sources": [{**_ref_doc(ref), "revision": rev} for ref, rev in report.git_revisions],
            "objects": objects,
            "tree": {
                "roots": [_ref_doc(r) for r in report.tree.roots if report.visible(r)],
                "edges": [
                    {"parent": _ref_doc(p), "child": _ref_doc(c)}
                    for p, c in report.tree.edges()
                    if report.visible(p) and report.visible(c)
                ],
                "unattached": [_ref_doc(r) for r in report.tree.unattached if r in selected],
            },
            "forbiddenNamespaces": list(report.forbidden_namespaces),
        },
    )
