"""``phoebe check``: is Flux installed, which kinds are served, are the controllers ready."""

from enum import StrEnum
from typing import Annotated

import typer

from phoebe_cli.cli.options import GlobalOptions, cluster_command
from phoebe_cli.cli.runtime import run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode

HELP = (
    "Check the cluster: server version, the Flux kinds it serves, and the Flux controllers.\n\n"
    "Lists every Flux kind with the versions the server serves (most preferred first) and "
    "whether each controller Deployment is ready. Exit 0 when Flux is installed and healthy, "
    "1 when installed but not healthy, 5 when Flux is not installed."
)


class CheckOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


def register(app: typer.Typer) -> None:
    @app.command("check", help=HELP)
    @cluster_command()
    def check_command(
        *,
        output: Annotated[
            CheckOutput, typer.Option("--output", "-o", metavar="text|json|yaml", help="Output format.")
        ] = CheckOutput.TEXT,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.flux.installation import InstallState
        from phoebe_cli.usecases.check import check_installation

        terminal = terminal_for(options)
        report = run_on_cluster(options, check_installation)
        if output is CheckOutput.TEXT:
            from phoebe_cli.render.check import check_view

            terminal.show(check_view(report))
        else:
            from phoebe_cli.render.check import check_document
            from phoebe_cli.render.documents import DataFormat, serialize

            terminal.write(serialize(check_document(report), DataFormat(output.value)))
        if report.state is InstallState.NOT_INSTALLED:
            if output is not CheckOutput.TEXT:
                terminal.error("Flux is not installed: no Flux CRDs are served by this cluster")
            return ExitCode.NOT_FOUND
        if report.state is InstallState.UNHEALTHY:
            return ExitCode.NOT_HEALTHY
        return ExitCode.OK
