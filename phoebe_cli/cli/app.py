"""The ``phoebe`` Typer app: the root options and the commands.

Command modules import only light things at module level; each command imports what it needs
(``kubernetes``, ``httpx``, Rich) when it runs, so ``phoebe --help`` stays fast.
"""

from typing import Annotated

import typer

from phoebe_cli import __version__
from phoebe_cli.cli import check, diff, events, logs, status, sync, validate
from phoebe_cli.cli.options import (
    ContextOption,
    FluxNamespaceOption,
    KubeconfigOption,
    NoColorOption,
    RequestTimeoutOption,
    VerboseOption,
    root_options,
)

HELP = (
    "phoebe runs a Flux-managed Kubernetes cluster from the terminal.\n\n"
    "Exit codes: 0 ok, 1 not healthy or failed, 2 usage, 3 cannot reach or authenticate, "
    "4 forbidden, 5 not found, 6 timed out, 130 interrupted."
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"phoebe {__version__}")
        raise typer.Exit(0)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="phoebe",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
    )

    @app.callback()
    def root(
        ctx: typer.Context,
        kubeconfig: KubeconfigOption = None,
        context: ContextOption = None,
        flux_namespace: FluxNamespaceOption = None,
        request_timeout: RequestTimeoutOption = None,
        no_color: NoColorOption = False,
        verbose: VerboseOption = 0,
        version: Annotated[
            bool,
            typer.Option("--version", help="Print phoebe's version and exit.", callback=_show_version, is_eager=True),
        ] = False,
    ) -> None:
        ctx.obj = root_options(kubeconfig, context, flux_namespace, request_timeout, no_color, verbose)

    check.register(app)
    sync.register(app)
    status.register(app)
    events.register(app)
    logs.register(app)
    validate.register(app)
    diff.register(app)
    return app
