"""``phoebe logs``: the Flux controllers' logs, parsed, filtered, merged and followed."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import GlobalOptions, cluster_command, parse_duration
from phoebe_cli.cli.runtime import kind_and_names, namespace_of, run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.flux.logs import LogLine
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.logs import LogsOptions, LogsResult

HELP = (
    "The Flux controllers' logs, parsed, filtered and merged in time order: what did Flux say "
    "about this object?\n\n"
    "OBJECT is KIND, KIND/NAME or KIND/NAMESPACE/NAME (ks/apps, hr/media/sonarr), or KIND NAME; a kind alone "
    "reads only the controller that reconciles it. -n keeps lines about objects in that namespace "
    "(default: all). --level is a minimum: error shows errors, info (default) info and errors, "
    "debug everything. --since/--since-time/--tail go to the API server (--tail per Pod). "
    "-f follows every controller at once, also across Pod restarts, until Ctrl-C.\n\n"
    "The controllers are the Deployments labelled app.kubernetes.io/part-of=flux in the Flux "
    "namespace (and flux-operator's), container manager."
)


class LogsOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    RAW = "raw"


class LogLevel(StrEnum):
    ERROR = "error"
    INFO = "info"
    DEBUG = "debug"


def register(app: typer.Typer) -> None:
    @app.command("logs", help=HELP)
    @cluster_command(namespaced=True)
    def logs_command(
        target: Annotated[
            str | None, typer.Argument(metavar="[KIND[/NAME]]", help="KIND, KIND/NAME or KIND/NAMESPACE/NAME.")
        ] = None,
        name: Annotated[
            str | None, typer.Argument(metavar="[NAME]", help="NAME or NAMESPACE/NAME (after KIND).")
        ] = None,
        *,
        controller: Annotated[
            list[str] | None,
            typer.Option("--controller", "-c", metavar="NAME", help="Only this controller (repeat for more)."),
        ] = None,
        level: Annotated[
            LogLevel, typer.Option("--level", metavar="error|info|debug", help="The lowest level shown.")
        ] = LogLevel.INFO,
        since: Annotated[str | None, typer.Option("--since", metavar="DURATION", help="Lines newer than this.")] = None,
        since_time: Annotated[
            str | None, typer.Option("--since-time", metavar="RFC3339", help="Lines after this time.")
        ] = None,
        tail: Annotated[
            int | None, typer.Option("--tail", min=0, metavar="N", help="The last N lines of each Pod.")
        ] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
        grep: Annotated[str | None, typer.Option("--grep", metavar="TEXT", help="Only lines containing TEXT.")] = None,
        output: Annotated[
            LogsOutput, typer.Option("--output", "-o", metavar="text|json|raw", help="Output format.")
        ] = LogsOutput.TEXT,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.flux.logs import parse_object
        from phoebe_cli.usecases.logs import LogsOptions

        if since and since_time:
            raise typer.BadParameter("use --since or --since-time, not both", param_hint="'--since'")
        if since_time:
            _check_time(since_time)
        namespace = namespace_of(options)
        kind, names = kind_and_names(target, () if name is None else (name,))
        if len(names) > 1:
            raise typer.BadParameter(f"one object at a time, not {kind}/{names[0]} and {names[1]}", param_hint="NAME")
        target = None if kind is None else "/".join((kind, *names))
        parse_object(target)  # a bad OBJECT is a usage error before any request
        logs_options = LogsOptions(
            object=target,
            namespace=namespace,
            controllers=tuple(controller or ()),
            level=level.value,
            since_seconds=max(1, round(parse_duration(since))) if since else None,
            since_time=since_time,
            tail=tail,
            follow=follow,
            grep=grep,
        )
        if follow:
            return _follow(options, logs_options, output)
        return _read(options, logs_options, output)


def _check_time(value: str) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an RFC 3339 time (2026-11-26T10:00:00Z)") from None


def _printer(options: GlobalOptions, output: LogsOutput, controllers: list[str]):  # type: ignore[no-untyped-def]
    from phoebe_cli.render.logs import TextLayout, json_line

    terminal = terminal_for(options)
    layout = TextLayout(controllers)
    if output is LogsOutput.JSON:
        return terminal, json_line
    if output is LogsOutput.RAW:
        return terminal, lambda line: line.raw
    if terminal.stdout_is_tty:
        return terminal, layout.styled
    return terminal, layout.plain


def _read(options: GlobalOptions, logs_options: "LogsOptions", output: LogsOutput) -> int:
    from phoebe_cli.usecases.logs import read_logs

    async def use(session: "Session") -> "LogsResult":
        return await read_logs(session, logs_options)

    result = run_on_cluster(options, use)
    controllers = sorted({p.controller for p in result.pods})
    terminal, render = _printer(options, output, controllers)
    for reason in result.skipped:
        terminal.warn(reason)
    if terminal.stdout_is_tty and output is LogsOutput.TEXT:
        for line in result.lines:
            terminal.show(render(line))
    elif result.lines:
        terminal.write("\n".join(render(line) for line in result.lines))
    return ExitCode.OK


def _follow(options: GlobalOptions, logs_options: "LogsOptions", output: LogsOutput) -> int:
    from phoebe_cli.usecases.logs import follow_logs

    controllers = ["source-controller", "kustomize-controller", "helm-controller"]
    terminal, render = _printer(options, output, controllers)
    styled = terminal.stdout_is_tty and output is LogsOutput.TEXT

    def emit(line: "LogLine") -> None:
        if styled:
            terminal.show(render(line))
        else:
            terminal.write(render(line))

    async def use(session: "Session") -> None:
        await follow_logs(session, logs_options, emit)

    run_on_cluster(options, use)
    return ExitCode.OK
