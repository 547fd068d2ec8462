"""Output for `validate`: findings as lines, GitHub annotations or a document (no cluster view is
imported: validate starts fast)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document
from phoebe_cli.repo.validate import ERROR, Finding


def finding_line(finding: Finding) -> Text:
    style = symbols.STYLE_FAILED if finding.severity == ERROR else symbols.STYLE_PENDING
    text = Text()
    if finding.location:
        text.append(f"{finding.location}: ", style="bold")
    text.append(f"{finding.severity} [{finding.code}] ", style=style)
    text.append(finding.message)
    return text


def findings_view(found: list[Finding], summary: str) -> RenderableType:
    if not found:
        return Text.assemble((symbols.OK, symbols.STYLE_OK), f" {summary}")
    return Group(*(finding_line(f) for f in found), Text(summary))


def github_lines(found: list[Finding]) -> str:
    """GitHub Actions workflow commands: annotations on the pull request's files."""
    lines = []
    for finding in found:
        where = []
        if finding.file is not None:
            where.append(f"file={finding.file}")
            if finding.line:
                where.append(f"line={finding.line}")
        where.append(f"title=phoebe validate ({finding.code})")
        message = finding.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        lines.append(f"::{finding.severity} {','.join(where)}::{message}")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe in a markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def findings_markdown(found: list[Finding], summary: str, graph: str | None = None) -> str:
    """Findings as markdown for a pull request or an issue: a verdict line, a table of findings,
    and ``graph`` (a fenced mermaid block, see render.graph.mermaid_block) under it."""
    errors = sum(1 for f in found if f.severity == ERROR)
    verdict = "❌" if errors else ("⚠️" if found else "✅")
    lines = ["## phoebe validate", "", f"{verdict} {_cell(summary)}", ""]
    if found:
        lines += ["| Severity | Code | Where | Message |", "| --- | --- | --- | --- |"]
        for finding in found:
            where = f"`{_cell(finding.location)}`" if finding.location else ""
            lines.append(f"| {finding.severity} | {finding.code} | {where} | {_cell(finding.message)} |")
        lines.append("")
    if graph:
        lines += ["### Kustomizations and HelmReleases", "", graph.rstrip("\n"), ""]
    return "\n".join(lines)


def findings_document(found: list[Finding], kustomizations: int, runs: int) -> dict[str, Any]:
    return document(
        "ValidationReport",
        {
            "valid": not any(f.severity == ERROR for f in found),
            "kustomizations": kustomizations,
            "kustomizeRuns": runs,
            "findings": [
                {
                    "severity": f.severity,
                    "code": f.code,
                    "message": f.message,
                    "file": str(f.file) if f.file else None,
                    "line": f.line,
                    "object": None
                    if f.object is None
                    else {"kind": f.object.kind, "namespace": f.object.namespace, "name": f.object.name},
                }
                for f in found
            ],
        },
    )
