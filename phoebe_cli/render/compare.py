"""Output for `status --repo --compare`: the checkout beside the cluster."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document
from phoebe_cli.render.status import columns
from phoebe_cli.usecases.repo import Agreement, CompareReport

AGREEMENT_STYLES = {
    Agreement.IN_SYNC: (symbols.OK, symbols.STYLE_OK),
    Agreement.MISSING: (symbols.FAILED, symbols.STYLE_FAILED),
    Agreement.ORPHAN: ("?", symbols.STYLE_PENDING),
    Agreement.BEHIND: (symbols.PENDING, symbols.STYLE_PENDING),
    Agreement.FAILING: (symbols.FAILED, symbols.STYLE_FAILED),
}
ORDER = [Agreement.MISSING, Agreement.FAILING, Agreement.BEHIND, Agreement.ORPHAN, Agreement.IN_SYNC]


def compare_view(report: CompareReport) -> RenderableType:
    headers = ["STATE", "NAMESPACE", "KIND", "NAME", "CHECKOUT", "CLUSTER", "MESSAGE"]
    rows = []
    for row in sorted(report.rows, key=lambda r: (ORDER.index(r.agreement), r.ref.kind, r.ref.namespace, r.ref.name)):
        mark, style = AGREEMENT_STYLES[row.agreement]
        rows.append(
            [
                Text(f"{mark} {row.agreement}", style=style),
                Text(row.ref.namespace),
                Text(row.ref.kind),
                Text(row.ref.name),
                Text(row.declared),
                Text(row.live),
                Text(" ".join(row.message.split())),
            ]
        )
    counts = Counter(row.agreement for row in report.rows)
    summary = ", ".join(f"{counts[a]} {a}" for a in ORDER if counts.get(a))
    head = Text(f"checkout {report.checkout}" + (f" at {report.revision}" if report.revision else ""), style="dim")
    return Group(head, columns(headers, rows) if rows else Text("nothing declared", style="dim"), Text(summary))


def compare_document(report: CompareReport) -> dict[str, Any]:
    return document(
        "CompareReport",
        {
            "checkout": report.checkout,
            "revision": report.revision,
            "context": report.context,
            "inSync": report.in_sync,
            "summary": dict(Counter(row.agreement for row in report.rows)),
            "objects": [
                {
                    "kind": row.ref.kind,
                    "namespace": row.ref.namespace,
                    "name": row.ref.name,
                    "state": row.agreement,
                    "checkout": row.declared or None,
                    "cluster": row.live or None,
                    "message": row.message or None,
                }
                for row in report.rows
            ],
        },
    )
