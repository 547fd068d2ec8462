"""``phoebe events`` output."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document
from phoebe_cli.render.status import age, one_line
from phoebe_cli.usecases.events import Event, EventsReport


def events_view(report: EventsReport, now: datetime | None = None) -> RenderableType:
    now = now or datetime.now(UTC)
    if not report.events:
        return Text("no events (the API server keeps them for an hour by default)", style="dim")
    parts: list[RenderableType] = []
    if report.omitted:
        parts.append(Text(f"({report.omitted} older events not shown; --limit to see more)", style="dim"))
    parts.append(events_table(report.events, now))
    return Group(*parts)


def events_table(events: Sequence[Event], now: datetime) -> Table:
    """AGE, TYPE, REASON, OBJECT, MESSAGE; warnings highlighted (explain shows it too)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("AGE", "TYPE", "REASON", "OBJECT"):
        table.add_column(column, no_wrap=True)
    table.add_column("MESSAGE", overflow="fold")
    for event in events:
        style = symbols.STYLE_FAILED if event.warning else ""
        message = one_line(event.message) + (f" (x{event.count})" if event.count > 1 else "")
        table.add_row(
            age(event.last_seen, now),
            Text(event.type, style=style),
            Text(event.reason, style=style),
            f"{event.object.kind}/{event.object.namespace}/{event.object.name}",
            Text(message, style=style),
        )
    return table


def events_document(report: EventsReport) -> dict[str, Any]:
    return document(
        "EventList",
        {
            "objects": [{"kind": r.kind, "namespace": r.namespace, "name": r.name} for r in report.subjects],
            "omitted": report.omitted,
            "events": [
                {
                    "type": e.type,
                    "reason": e.reason,
                    "message": e.message,
                    "object": {"kind": e.object.kind, "namespace": e.object.namespace, "name": e.object.name},
                    "count": e.count,
                    "lastSeen": e.last_seen,
                    "source": e.source or None,
                }
                for e in report.events
            ],
        },
    )
