"""``phoebe explain``: one Flux object's whole story."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import GlobalOptions, cluster_command
from phoebe_cli.cli.runtime import kind_and_names, namespace_of, run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.explain import ExplainReport

HELP = (
    "Why a Flux object is (not) ready, in one view: the verdict and its root cause, the chain "
    "it hangs on (dependsOn, source, chart), its conditions, its source against what it applied, "
    "applied objects that are not healthy, a HelmRelease's history and what helm-controller does "
    "next, recent events, the controller's warnings and errors about it, and what to do next.\n\n"
    "OBJECT is KIND/NAME or KIND/NAMESPACE/NAME (or KIND NAME with -n), e.g. hr/media/sonarr or "
    "ks apps -n flux-system; the namespace defaults to the context's, else flux-system.\n\n"
    "Exit 0 when it is ready (or suspended), 1 when it is not."
)


class ExplainOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def register(app: typer.Typer) -> None:
    @app.command("explain", help=HELP)
    @cluster_command(namespaced=True)
    def explain_command(
        target: Annotated[str, typer.Argument(metavar="KIND[/NAME]", help="KIND/NAME or KIND/NAMESPACE/NAME.")],
        name: Annotated[
            str | None, typer.Argument(metavar="[NAME]", help="NAME or NAMESPACE/NAME (after KIND).")
        ] = None,
        *,
        output: Annotated[
            ExplainOutput, typer.Option("--output", "-o", metavar="text|json|markdown", help="Output format.")
        ] = ExplainOutput.TEXT,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.usecases.explain import ExplainOptions, explain, parse_explain_target

        if options.all_namespaces:
            raise UsageError("explain takes one object: name its namespace (KIND/NAMESPACE/NAME or -n), not -A")
        namespace = namespace_of(options)
        kind, names = kind_and_names(target, () if name is None else (name,))
        if len(names) > 1:
            raise typer.BadParameter(f"one object at a time, not {kind}/{names[0]} and {names[1]}", param_hint="NAME")
        from phoebe_cli.flux.kinds import kind_named

        if kind_named(target.partition("/")[0]) is None and "/" not in target:
            raise UsageError(f"unknown kind {target!r} (use ks, hr, git, oci, helmrepo, chart, bucket or es)")
        wanted = "/".join((kind or target, *names))
        parse_explain_target(wanted, namespace or "default")  # a bad OBJECT is a usage error before any request
        explain_options = ExplainOptions(target=wanted, namespace=namespace)

        async def use(session: "Session") -> "ExplainReport":
            return await explain(session, explain_options)

        report = run_on_cluster(options, use)
        terminal = terminal_for(options)
        if output is ExplainOutput.TEXT:
            from phoebe_cli.render.explain import explain_view

            terminal.show(explain_view(report))
        elif output is ExplainOutput.JSON:
            from phoebe_cli.render.documents import DataFormat, serialize
            from phoebe_cli.render.explain import explain_document

            terminal.write(serialize(explain_document(report), DataFormat.JSON))
        else:
            from phoebe_cli.render.explain import explain_markdown

            terminal.write(explain_markdown(report))
        return ExitCode.OK if report.healthy else ExitCode.NOT_HEALTHY
