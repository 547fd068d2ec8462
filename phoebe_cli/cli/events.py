"""``phoebe events``: recent Kubernetes events for Flux objects."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import GlobalOptions, cluster_command
from phoebe_cli.cli.runtime import run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.events import EventsReport

HELP = (
    "Recent Kubernetes events for a Flux object and its source (for a HelmRelease also its "
    "HelmChart's repository), newest last, warnings highlighted.\n\n"
    "OBJECT is KIND/NAME (namespace: -n, else the context's, else flux-system) or "
    "KIND/NAMESPACE/NAME, e.g. ks/apps or hr/media/sonarr. Without OBJECT: every event about a "
    "Flux object, in -n NAMESPACE or in all namespaces."
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
            str | None, typer.Argument(metavar="[OBJECT]", help="KIND/NAME or KIND/NAMESPACE/NAME.")
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

        event_options = EventsOptions(
            target=target,
            namespace=None if options.all_namespaces else options.namespace,
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
