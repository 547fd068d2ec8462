"""``phoebe explain`` output: the text view (Rich), the JSON document (docs/commands/explain.md)
and Markdown to paste into an issue. Data in, renderable or text out; nothing printed here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from phoebe_cli.flux.explain import ChainLink, ReleaseView, SourceView, subject
from phoebe_cli.flux.health import Health
from phoebe_cli.flux.objects import ObjectRef, State, short_revision
from phoebe_cli.render import symbols
from phoebe_cli.render.documents import document
from phoebe_cli.render.events import events_table
from phoebe_cli.render.logs import LEVEL_STYLES, TextLayout
from phoebe_cli.render.status import MARKS, age, one_line
from phoebe_cli.usecases.events import Event
from phoebe_cli.usecases.explain import AppliedSection, ExplainReport, Section

HEALTH_STYLES = {
    Health.FAILED: symbols.STYLE_FAILED,
    Health.NOT_FOUND: symbols.STYLE_FAILED,
    Health.IN_PROGRESS: symbols.STYLE_PENDING,
    Health.TERMINATING: symbols.STYLE_PENDING,
    Health.CURRENT: symbols.STYLE_OK,
}


# --- words shared by every format ----------------------------------------------------------------
def verdict_text(report: ExplainReport) -> str:
    """``not ready for 5m: blocked by …`` — the verdict line with how long it has been so."""
    verdict = report.verdict
    line = verdict.line
    # Flux records no time of suspension: the Ready condition's age would mislead there.
    since = age(verdict.since, report.generated) if verdict.state is not State.SUSPENDED else ""
    if since:
        head, colon, rest = line.partition(":")
        line = f"{head} for {since}{colon}{rest}"
    return line


def _link_status(link: ChainLink) -> str:
    if link.state is None:
        return link.note
    if link.state is State.READY:
        return "ready"
    text = link.state.value
    if link.reason:
        text += f": {link.reason}"
    if link.message and link.state is not State.SUSPENDED:
        text += f": {link.message}"
    return text


def _denied_text(section: Section[Any]) -> str:
    return "not allowed: cannot read " + ", ".join(section.denied)


def _generation(report: ExplainReport, observed: int | None) -> str:
    generation = report.object.generation
    if observed is None:
        return f"-/{generation}"
    return f"{observed}/{generation}"


def _source_rows(source: SourceView, now: datetime) -> list[tuple[str, str]]:
    rows = [
        ("revision", source.revision or "-"),
        ("digest", source.digest or "-"),
        ("fetched", f"{age(source.fetched, now)} ago" if source.fetched and age(source.fetched, now) else "-"),
    ]
    if source.last_applied is not None or source.last_attempted is not None:
        mark = " (current)" if source.applied_current else (" (behind the source)" if source.revision else "")
        rows.append(("last applied", (source.last_applied or "-") + (mark if source.last_applied else "")))
        rows.append(("last attempted", source.last_attempted or "-"))
    return rows


def _failure_counts(release: ReleaseView) -> str:
    def retries(n: int) -> str:
        return "for ever" if n < 0 else str(n)

    return (
        f"install failures {release.install_failures} (retries {retries(release.install_retries)}), "
        f"upgrade failures {release.upgrade_failures} (retries {retries(release.upgrade_retries)}, "
        f"remediation {release.upgrade_strategy}), failures {release.failures}"
    )


def _none_applied(applied: AppliedSection) -> str:
    if applied.checked == 0 and applied.origin == "inventory":
        return "nothing applied yet (no inventory)"
    return f"none ({applied.checked} checked, from the {applied.origin})"


def _tests(tests: Sequence[Any]) -> str:
    return ", ".join(f"{t.name}: {t.phase or '?'}" for t in tests) or "-"


def _event_object(event: Event) -> str:
    return f"{event.object.kind}/{event.object.namespace}/{event.object.name}"


def _log_text(line: Any) -> str:
    text = line.message or line.raw
    if line.error:
        text += f": {one_line(line.error)}"
    return one_line(text)


# --- text ------------------------------------------------------------------------------------------
def _heading(text: str) -> Text:
    return Text(text, style="bold")


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns[:-1]:
        table.add_column(column, no_wrap=True)
    table.add_column(columns[-1], overflow="fold")
    return table


def _indent(renderable: RenderableType) -> RenderableType:
    from rich.padding import Padding

    return Padding(renderable, (0, 0, 0, 2))


def _note(text: str, style: str = "dim") -> RenderableType:
    return _indent(Text(text, style=style))


def explain_view(report: ExplainReport) -> RenderableType:
    obj = report.object
    verdict = report.verdict
    mark, style = MARKS[verdict.state]
    parts: list[RenderableType] = [
        Text.assemble((f"{obj.kind.kind} {obj.namespace}/{obj.name}", "bold")),
        Text.assemble((mark, style), " ", (verdict_text(report), style if verdict.state is not State.READY else "")),
    ]
    sections = [
        ("Chain", _chain_view(report)),
        ("Conditions", _conditions_view(report)),
        (f"Source: {subject(report.source.ref)}" if report.source else "", _source_view(report)),
        ("Applied objects that are not healthy", _applied_view(report.applied) if report.applied.origin else None),
        ("Release", _release_view(report)),
        ("Recent events", _events_view(report.events, report.generated)),
        (f"{obj.kind.controller.value} log (warnings and errors)", _logs_view(report.logs)),
        ("What to do next", _steps_view(report)),
    ]
    for title, body in sections:
        if body is not None:
            parts += [Text(), _heading(title), _indent(body)]
    return Group(*parts)


def _chain_view(report: ExplainReport) -> RenderableType:
    if not report.chain:
        return Text("no dependencies, no source", style="dim")
    chain = _table("RELATION", "OBJECT", "STATUS")
    chain.show_header = False
    for link in report.chain:
        link_mark, link_style = MARKS[link.state] if link.state is not None else ("?", symbols.STYLE_PENDING)
        chain.add_row(link.relation, Text.assemble((link_mark, link_style), " ", subject(link.ref)), _link_status(link))
    return chain


def _conditions_view(report: ExplainReport) -> RenderableType:
    if not report.conditions:
        return Text("none yet: the controller has not reconciled it", style="dim")
    conditions = _table("TYPE", "STATUS", "REASON", "GENERATION", "CHANGED", "MESSAGE")
    for cond in report.conditions:
        good = cond.is_true != (cond.type in ("Stalled", "Reconciling"))
        cond_style = "" if good else symbols.STYLE_PENDING if cond.status == "Unknown" else symbols.STYLE_FAILED
        conditions.add_row(
            cond.type,
            Text(cond.status, style=cond_style),
            cond.reason,
            _generation(report, cond.observed_generation),
            age(cond.last_transition, report.generated),
            one_line(cond.message),
        )
    return conditions


def _source_view(report: ExplainReport) -> RenderableType | None:
    if report.source is None:
        return None
    rows = _table("FIELD", "VALUE")
    rows.show_header = False
    for name, value in _source_rows(report.source, report.generated):
        rows.add_row(name, value)
    return rows


def _release_view(report: ExplainReport) -> RenderableType | None:
    release = report.release
    if release is None:
        return None
    parts: list[RenderableType] = []
    if release.history:
        history = _table("REVISION", "CHART", "VERSION", "APP", "STATUS", "DEPLOYED", "DIGEST", "TESTS")
        for entry in release.history:
            history.add_row(
                str(entry.version),
                entry.chart_name,
                entry.chart_version,
                entry.app_version,
                Text(entry.status, style=symbols.STYLE_FAILED if entry.status == "failed" else ""),
                age(entry.last_deployed, report.generated),
                short_revision(entry.digest),
                _tests(entry.tests),
            )
        parts.append(history)
    else:
        parts.append(Text("no release in its history yet", style="dim"))
    parts.append(Text(_failure_counts(release)))
    parts.append(Text.assemble(("next: ", "bold"), release.next_step))
    return Group(*parts)


def _steps_view(report: ExplainReport) -> RenderableType:
    if not report.next_steps:
        return Text("nothing: it is ready", style="dim")
    steps = _table("COMMAND", "WHY")
    steps.show_header = False
    for step in report.next_steps:
        steps.add_row(Text(step.command, style="cyan"), step.why)
    return steps


def _applied_view(applied: AppliedSection) -> RenderableType:
    section = applied.problems
    rows: list[RenderableType] = []
    if section.not_allowed:
        return Text(_denied_text(section), style=symbols.STYLE_PENDING)
    if section.items:
        table = _table("OBJECT", "HEALTH", "WHY")
        table.show_header = False
        for problem in section.items:
            style = HEALTH_STYLES.get(problem.health.status, "")
            why = problem.health.message or problem.health.reason
            table.add_row(problem.key.subject, Text(problem.health.status.value, style=style), why)
            for container in problem.containers:
                table.add_row("", "", Text(container.describe(), style=symbols.STYLE_FAILED))
        rows.append(table)
    else:
        rows.append(Text(_none_applied(applied), style="dim"))
    if section.denied:
        rows.append(Text(_denied_text(section), style=symbols.STYLE_PENDING))
    return Group(*rows)


def _events_view(section: Section[Event], now: datetime) -> RenderableType:
    if section.not_allowed:
        return Text(_denied_text(section), style=symbols.STYLE_PENDING)
    rows: list[RenderableType] = []
    if section.omitted:
        rows.append(Text(f"({section.omitted} older events not shown)", style="dim"))
    if section.items:
        table = events_table(section.items, now)
        rows.append(table)
    else:
        rows.append(Text("none (the API server keeps events for an hour by default)", style="dim"))
    if section.denied:
        rows.append(Text(_denied_text(section), style=symbols.STYLE_PENDING))
    return Group(*rows)


def _logs_view(section: Section[Any]) -> RenderableType:
    if section.not_allowed:
        return Text(_denied_text(section), style=symbols.STYLE_PENDING)
    if section.unavailable:
        return Text(f"unavailable: {section.unavailable}", style=symbols.STYLE_PENDING)
    if not section.items:
        return Text("no warnings or errors about it in the log", style="dim")
    layout = TextLayout([line.controller for line in section.items])
    lines: list[RenderableType] = []
    if section.omitted:
        lines.append(Text(f"({section.omitted} earlier lines not shown)", style="dim"))
    for line in section.items:
        text = Text(layout.plain(line), no_wrap=False)
        text.stylize(LEVEL_STYLES.get(line.level, ""), 13, 18)
        lines.append(text)
    return Group(*lines)


# --- JSON ------------------------------------------------------------------------------------------
def _ref(ref: ObjectRef | None) -> dict[str, str] | None:
    if ref is None:
        return None
    return {"kind": ref.kind, "namespace": ref.namespace, "name": ref.name}


def _section(section: Section[Any], items: list[Any]) -> dict[str, Any]:
    return {
        "allowed": not section.not_allowed,
        "notAllowed": list(section.denied),
        "unavailable": section.unavailable,
        "omitted": section.omitted,
        "items": items,
    }


def explain_document(report: ExplainReport) -> dict[str, Any]:
    obj = report.object
    verdict = report.verdict
    source = report.source
    release = report.release
    applied = report.applied
    body: dict[str, Any] = {
        "object": {**(_ref(obj.ref) or {}), "generation": obj.generation, "suspended": obj.suspended},
        "verdict": {
            "ready": verdict.ready,
            "state": verdict.state.value,
            "since": verdict.since,
            "line": verdict.line,
            "cause": None
            if verdict.cause is None
            else {**(_ref(verdict.cause) or {}), "reason": verdict.reason, "message": verdict.message},
            "blockedBy": [_ref(ref) for ref in verdict.blocked_by],
            "problem": verdict.problem.value if verdict.problem is not None else None,
        },
        "chain": [
            {
                "relation": link.relation,
                "object": _ref(link.ref),
                "state": link.state.value if link.state is not None else None,
                "reason": link.reason,
                "message": link.message,
                "note": link.note or None,
            }
            for link in report.chain
        ],
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "observedGeneration": c.observed_generation,
                "lastTransitionTime": c.last_transition,
            }
            for c in report.conditions
        ],
        "source": None
        if source is None
        else {
            "object": _ref(source.ref),
            "state": source.state.value if source.state is not None else None,
            "revision": source.revision,
            "digest": source.digest,
            "lastFetched": source.fetched,
            "lastAppliedRevision": source.last_applied,
            "lastAttemptedRevision": source.last_attempted,
            "appliedCurrent": source.applied_current,
        },
        "applied": None
        if not applied.origin
        else {
            "from": applied.origin,
            "checked": applied.checked,
            **_section(
                applied.problems,
                [
                    {
                        "apiVersion": p.key.api_version,
                        "kind": p.key.kind,
                        "namespace": p.key.namespace,
                        "name": p.key.name,
                        "health": p.health.status.value,
                        "reason": p.health.reason,
                        "message": p.health.message,
                        "containers": [
                            {
                                "pod": c.pod,
                                "container": c.container,
                                "waiting": c.waiting,
                                "message": c.message,
                                "restarts": c.restarts,
                                "lastTerminationReason": c.last_reason or None,
                                "lastExitCode": c.last_exit_code,
                            }
                            for c in p.containers
                        ],
                    }
                    for p in applied.problems.items
                ],
            ),
        },
        "release": None
        if release is None
        else {
            "history": [
                {
                    "version": h.version,
                    "chartName": h.chart_name,
                    "chartVersion": h.chart_version,
                    "appVersion": h.app_version,
                    "status": h.status,
                    "digest": h.digest,
                    "configDigest": h.config_digest,
                    "firstDeployed": h.first_deployed,
                    "lastDeployed": h.last_deployed,
                    "tests": [{"name": t.name, "phase": t.phase} for t in h.tests],
                }
                for h in release.history
            ],
            "installFailures": release.install_failures,
            "upgradeFailures": release.upgrade_failures,
            "failures": release.failures,
            "installRetries": release.install_retries,
            "upgradeRetries": release.upgrade_retries,
            "upgradeRemediation": release.upgrade_strategy,
            "lastAttemptedReleaseAction": release.last_action,
            "retriesExhausted": release.retries_exhausted,
            "nextStep": release.next_step,
        },
        "events": _section(
            report.events,
            [
                {
                    "type": e.type,
                    "reason": e.reason,
                    "message": e.message,
                    "object": _ref(e.object),
                    "count": e.count,
                    "lastSeen": e.last_seen,
                    "source": e.source or None,
                }
                for e in report.events.items
            ],
        ),
        "logs": _section(
            report.logs,
            [
                {
                    "ts": line.stamp,
                    "level": line.level,
                    "controller": line.controller,
                    "message": line.message,
                    "error": line.error,
                }
                for line in report.logs.items
            ],
        ),
        "nextSteps": [{"command": s.command, "why": s.why} for s in report.next_steps],
    }
    return document("Explanation", body)


# --- Markdown --------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ") or " "


def _code(text: str) -> str:
    ticks = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(out) + "\n"


def _md_denied(section: Section[Any]) -> str:
    return f"_{_denied_text(section)}_\n"


def explain_markdown(report: ExplainReport) -> str:
    obj = report.object
    mark = MARKS[report.verdict.state][0]
    out = [f"### {obj.kind.kind} `{obj.namespace}/{obj.name}`\n", f"**{mark} {_cell(verdict_text(report))}**\n"]
    out += _md_chain(report) + _md_conditions(report) + _md_source(report) + _md_applied(report.applied)
    out += _md_release(report) + _md_events(report.events)
    out += _md_logs(report) + _md_steps(report)
    return "\n".join(out)


def _md_chain(report: ExplainReport) -> list[str]:
    if not report.chain:
        return ["#### Chain\n", "No dependencies, no source.\n"]
    rows = [[link.relation, _code(subject(link.ref)), _link_status(link)] for link in report.chain]
    return ["#### Chain\n", _md_table(["relation", "object", "status"], rows)]


def _md_conditions(report: ExplainReport) -> list[str]:
    if not report.conditions:
        return ["#### Conditions\n", "None yet: the controller has not reconciled it.\n"]
    rows = [
        [
            c.type,
            c.status,
            c.reason,
            _generation(report, c.observed_generation),
            c.last_transition or "",
            one_line(c.message),
        ]
        for c in report.conditions
    ]
    return [
        "#### Conditions\n",
        _md_table(["type", "status", "reason", "generation", "last transition", "message"], rows),
    ]


def _md_source(report: ExplainReport) -> list[str]:
    if report.source is None:
        return []
    rows = [[name, value] for name, value in _source_rows(report.source, report.generated)]
    return [f"#### Source: {_code(subject(report.source.ref))}\n", _md_table(["field", "value"], rows)]


def _md_applied(applied: AppliedSection) -> list[str]:
    if not applied.origin:
        return []
    out = ["#### Applied objects that are not healthy\n"]
    section = applied.problems
    if section.not_allowed:
        return [*out, _md_denied(section)]
    if section.items:
        rows = []
        for p in section.items:
            why = p.health.message or p.health.reason
            if p.containers:
                why += "; " + "; ".join(c.describe() for c in p.containers)
            rows.append([_code(p.key.subject), p.health.status.value, why])
        out.append(_md_table(["object", "health", "why"], rows))
    else:
        out.append(f"{_none_applied(applied).capitalize()}.\n")
    if section.denied:
        out.append(_md_denied(section))
    return out


def _md_release(report: ExplainReport) -> list[str]:
    release = report.release
    if release is None:
        return []
    out = ["#### Release\n"]
    if release.history:
        rows = [
            [
                str(h.version),
                h.chart_name,
                h.chart_version,
                h.app_version,
                h.status,
                h.last_deployed or "",
                _code(short_revision(h.digest)) if h.digest else "",
                _tests(h.tests),
            ]
            for h in release.history
        ]
        out.append(_md_table(["revision", "chart", "version", "app", "status", "deployed", "digest", "tests"], rows))
    else:
        out.append("No release in its history yet.\n")
    out.append(f"{_failure_counts(release)}.\n\n**Next:** {_cell(release.next_step)}\n")
    return out


def _md_events(events: Section[Event]) -> list[str]:
    out = ["#### Recent events\n"]
    if events.not_allowed:
        return [*out, _md_denied(events)]
    if not events.items:
        return [*out, "None.\n"]
    rows = [[e.last_seen or "", e.type, e.reason, _code(_event_object(e)), one_line(e.message)] for e in events.items]
    out.append(_md_table(["last seen", "type", "reason", "object", "message"], rows))
    if events.denied:
        out.append(_md_denied(events))
    return out


def _md_logs(report: ExplainReport) -> list[str]:
    out = [f"#### {report.object.kind.controller.value} log (warnings and errors)\n"]
    logs = report.logs
    if logs.not_allowed:
        return [*out, _md_denied(logs)]
    if logs.unavailable:
        return [*out, f"_unavailable: {_cell(logs.unavailable)}_\n"]
    if not logs.items:
        return [*out, "No warnings or errors about it in the log.\n"]
    body = "\n".join(f"{line.stamp} {line.level} {_log_text(line)}" for line in logs.items)
    fence = "````" if "```" in body else "```"
    return [*out, f"{fence}text\n{body}\n{fence}\n"]


def _md_steps(report: ExplainReport) -> list[str]:
    if not report.next_steps:
        return ["#### What to do next\n", "Nothing: it is ready.\n"]
    return ["#### What to do next\n", "".join(f"- {_code(s.command)}: {_cell(s.why)}\n" for s in report.next_steps)]
