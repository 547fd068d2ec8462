"""The ``phoebe`` Typer app: the root options and the commands.

Command modules import only light things at module level; each command imports what it needs
(``kubernetes``, ``httpx``, Rich) when it runs, so ``phoebe --help`` stays fast.
"""

from typing import Annotated

import typer

from phoebe_cli import __version__
from phoebe_cli.cli import build, check, diff, events, explain, logs, status, sync, validate
from phoebe_cli.cli.options import (
    AsGroupOption,
    AsOption,
    AsUidOption,
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
        add_completion=False,  # our own options below, which take the shell
    )
    from typer._completion_classes import completion_init

    completion_init()  # the completion classes that answer the shell (what add_completion did)

    @app.callback()
    def root(
        ctx: typer.Context,
        kubeconfig: KubeconfigOption = None,
        context: ContextOption = None,
        flux_namespace: FluxNamespaceOption = None,
        request_timeout: RequestTimeoutOption = None,
        impersonate_user: AsOption = None,
        impersonate_groups: AsGroupOption = None,
        impersonate_uid: AsUidOption = None,
        no_color: NoColorOption = False,
        verbose: VerboseOption = 0,
        version: Annotated[
            bool,
            typer.Option("--version", help="Print phoebe's version and exit.", callback=_show_version, is_eager=True),
        ] = False,
        install_completion: InstallCompletionOption = None,
        show_completion: ShowCompletionOption = None,
    ) -> None:
        ctx.obj = root_options(
            kubeconfig,
            context,
            flux_namespace,
            request_timeout,
            no_color,
            verbose,
            impersonate_user,
            impersonate_groups,
            impersonate_uid,
        )

    check.register(app)
    sync.register(app)
    status.register(app)
    events.register(app)
    logs.register(app)
    validate.register(app)
    diff.register(app)
    build.register(app)
    explain.register(app)
    return app


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _shell(value: str) -> str:
    """The shell named, or the current one ("" : detect it, as Typer does)."""
    from typer._completion_shared import _get_shell_name

    shell = value or _get_shell_name() or ""
    if shell not in SHELLS:
        from phoebe_cli.errors import UsageError

        detected = "" if value else " (could not detect the current shell)"
        raise UsageError(f"no completion for shell {shell!r}{detected}: use one of {', '.join(SHELLS)}")
    return shell


def _show_completion(ctx: typer.Context, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import get_completion_script

    prog_name = ctx.find_root().info_name or "phoebe"
    complete_var = "_{}_COMPLETE".format(prog_name.replace("-", "_").upper())
    typer.echo(get_completion_script(prog_name=prog_name, complete_var=complete_var, shell=_shell(value)))
    raise typer.Exit(0)


def _install_completion(ctx: typer.Context, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import install

    shell, path = install(shell=_shell(value))
    typer.echo(f"{shell} completion installed in {path}; it takes effect in a new shell")
    raise typer.Exit(0)


# Typer's own completion options, when they detect the shell, take no value: the word after them
# is ignored (`--show-completion fish` printed bash's script). These take the shell; alone, they
# detect it (cli.main gives them an empty value, as it does for --repo).
InstallCompletionOption = Annotated[
    str | None,
    typer.Option(
        "--install-completion",
        metavar="[SHELL]",
        help="Install completion for SHELL (bash, zsh, fish, powershell; default: the current shell).",
        callback=_install_completion,
        is_eager=True,
        expose_value=False,
        show_default=False,
    ),
]
ShowCompletionOption = Annotated[
    str | None,
    typer.Option(
        "--show-completion",
        metavar="[SHELL]",
        help="Print the completion script for SHELL (bash, zsh, fish, powershell; default: the current shell).",
        callback=_show_completion,
        is_eager=True,
        expose_value=False,
        show_default=False,
    ),
]
