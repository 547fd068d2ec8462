"""``phoebe events``: recent Kubernetes events for Flux objects."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import GlobalOptions, cluster_command
from phoebe_cli.cli.runtime import kind_and_names, namespace_of, run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.events import EventsReport

HELP = (
    "Recent Kubernetes events for a Flux object and its source (for a HelmRelease also its "
    "HelmChart's repository), newest last, warnings highlighted.\n\n"
    "OBJECT is KIND NAME or KIND/NAME (namespace: -n, else the context's, else flux-system), or "
    "KIND NAMESPACE/NAME or KIND/NAMESPACE/NAME, e.g. ks apps, ks/apps or hr/media/sonarr. KIND alone: "
    "every event about objects of that kind. Without OBJECT: every event about a Flux object, in "
    "-n NAMESPACE or in all namespaces."
)


class EventsOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


def register(app: typer.Typer) -> None:
    @app.command("events", help=HELP)
    @cluster_command(namespaced=True)
    def events_command(
        target: Annotated[
            str | None, typer.Argument(metavar="[KIND[/NAME]]", help="KIND, KIND/NAME or KIND/NAMESPACE/NAME.")
        ] = None,
        name: Annotated[
            str | None, typer.Argument(metavar="[NAME]", help="NAME or NAMESPACE/NAME (after KIND).")
        ] = None,
        *,
        warnings: Annotated[bool, typer.Option("--warnings", help="Only Warning events.")] = False,
        limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="Show the newest N.")] = 50,
        output: Annotated[
            EventsOutput, typer.Option("--output", "-o", metavar="text|json|yaml", help="Output format.")
        ] = EventsOutput.TEXT,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.usecases.events import EventsOptions, events

        namespace = namespace_of(options)
        kind, names = kind_and_names(target, () if name is None else (name,))
        if len(names) > 1:
            raise typer.BadParameter(f"one object at a time, not {kind}/{names[0]} and {names[1]}", param_hint="NAME")
        event_options = EventsOptions(
            target=None if kind is None else "/".join((kind, *names)),
            namespace=namespace,
            limit=limit,
            warnings_only=warnings,
        )

        async def use(session: "Session") -> "EventsReport":
            return await events(session, event_options)

        report = run_on_cluster(options, use)
        terminal = terminal_for(options)
        if output is EventsOutput.TEXT:
            from phoebe_cli.render.events import events_view

            terminal.show(events_view(report))
        else:
            from phoebe_cli.render.documents import DataFormat, serialize
            from phoebe_cli.render.events import events_document

            terminal.write(serialize(events_document(report), DataFormat(output.value)))
        return ExitCode.OK
