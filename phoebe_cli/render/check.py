"""``phoebe check`` output: a readable report, or a JSON/YAML document."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from phoebe_cli.flux.installation import CheckReport, InstallState
from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document


def check_document(report: CheckReport) -> dict[str, Any]:
    """The ``-o json|yaml`` shape; pinned by tests/unit/test_render_check.py."""
    return document(
        "CheckReport",
        {
            "state": report.state.value,
            "context": report.context,
            "server": report.server,
            "serverVersion": report.server_version,
            "fluxNamespace": report.flux_namespace,
            "fluxVersion": report.flux_version,
            "kinds": [
                {
                    "kind": k.kind,
                    "group": k.group,
                    "installed": k.installed,
                    "servedVersions": list(k.versions),
                    "preferredVersion": k.preferred_version,
                }
                for k in report.kinds
            ],
            "controllers": [
                {
                    "name": c.name,
                    "namespace": c.namespace,
                    "ready": c.ready,
                    "replicas": c.replicas,
                    "readyReplicas": c.ready_replicas,
                    "image": c.image,
                    "version": c.version,
                    "message": c.message,
                }
                for c in report.controllers
            ],
            "problems": list(report.problems),
        },
    )


def _mark(ok: bool | None) -> Text:
    if ok is None:
        return Text(symbols.ABSENT, style=symbols.STYLE_ABSENT)
    if ok:
        return Text(symbols.OK, style=symbols.STYLE_OK)
    return Text(symbols.FAILED, style=symbols.STYLE_FAILED)


def check_view(report: CheckReport) -> RenderableType:
    """The human report: cluster, controllers, kinds, verdict."""
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    header.add_row("context", report.context)
    header.add_row("server", f"{report.server} (Kubernetes {report.server_version})")
    flux = report.flux_version or "version unknown"
    header.add_row("flux", f"{flux}, namespace {report.flux_namespace}")

    parts: list[RenderableType] = [header, Text("")]

    if report.state is not InstallState.NOT_INSTALLED:
        parts.append(Text("controllers", style="bold"))
        controllers = Table.grid(padding=(0, 2))
        for _ in range(4):
            controllers.add_column()
        for c in report.controllers:
            controllers.add_row(_mark(c.ready), c.name, c.message, c.version or "")
        if not report.controllers:
            controllers.add_row(_mark(False), "no controller Deployments found", "", "")
        parts.extend([controllers, Text("")])

    parts.append(Text("kinds", style="bold"))
    kinds = Table.grid(padding=(0, 2))
    for _ in range(4):
        kinds.add_column()
    for k in report.kinds:
        if k.installed:
            kinds.add_row(_mark(True), k.kind, k.group, ", ".join(k.versions))
        else:
            kinds.add_row(
                _mark(None),
                Text(k.kind, style="dim"),
                Text(k.group, style="dim"),
                Text("not installed", style="dim"),
            )
    parts.extend([kinds, Text("")])

    parts.append(verdict(report))
    return Group(*parts)


def verdict(report: CheckReport) -> Text:
    if report.state is InstallState.HEALTHY:
        return Text.assemble((symbols.OK, symbols.STYLE_OK), " Flux is installed and healthy")
    if report.state is InstallState.NOT_INSTALLED:
        return Text.assemble((symbols.FAILED, symbols.STYLE_FAILED), " Flux is not installed: no Flux CRDs are served")
    count = len(report.problems)
    text = Text.assemble(
        (symbols.FAILED, symbols.STYLE_FAILED),
        f" Flux is installed but not healthy ({count} problem{'s' if count != 1 else ''}):",
    )
    for problem in report.problems:
        text.append(f"\n  - {problem}")
    return text
