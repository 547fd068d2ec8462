"""``phoebe validate``: what would make Flux fail, found in the checkout before it is pushed."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import (
    AllowRemoteOption,
    ClusterOption,
    GlobalOptions,
    NoCacheOption,
    PathOption,
    SourceOption,
    local_command,
)
from phoebe_cli.cli.runtime import terminal_for
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.repo.model import RepoModel

HELP = (
    "Check the checkout the way Flux will read it, offline: every Flux Kustomization from the "
    "roots down (the Kustomizations and sources no other Kustomization applies: flux bootstrap's "
    "clusters/NAME/flux-system, kubernetes/flux/, a FluxInstance's sync ...), built with kustomize "
    "as kustomize-controller builds it (source ignore rules and postBuild substitution included), "
    "and every YAML file parsed as Go parses it.\n\n"
    "Errors are what makes Flux fail: YAML Go rejects, a path that is not there, a build that "
    "fails, a dependsOn or source declared nowhere, a dependency cycle. Warnings are what Flux "
    'accepts: ${VARS} nobody sets (Flux writes ""), an object applied by two Kustomizations, '
    "remote bases not built offline, a source that is another repository (map it with --source).\n\n"
    "Exit 0 when there are no errors (with --strict: no warnings either), 1 when there are. "
    "-o github prints GitHub Actions annotations on the files; -o markdown a report for a pull request, "
    "with the graph of the Kustomizations and HelmReleases it checked (mermaid)."
)


class ValidateOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"
    GITHUB = "github"
    MARKDOWN = "markdown"


def register(app: typer.Typer) -> None:
    @app.command("validate", help=HELP)
    @local_command()
    def validate_command(
        path: Annotated[
            str | None,
            typer.Argument(
                metavar="[PATH]", help="The checkout (default: the Git repository around the current directory)."
            ),
        ] = None,
        *,
        output: Annotated[
            ValidateOutput,
            typer.Option("--output", "-o", metavar="text|json|yaml|github|markdown", help="Output format."),
        ] = ValidateOutput.TEXT,
        root_file: Annotated[
            list[str] | None,
            typer.Option(
                "--root-file",
                "--root",
                metavar="FILE",
                help="Read the root Kustomizations from this file (repeatable).",
            ),
        ] = None,
        cluster: ClusterOption = None,
        path_filter: PathOption = None,
        source: SourceOption = None,
        no_cache: NoCacheOption = False,
        allow_remote: AllowRemoteOption = False,
        strict: Annotated[
            bool,
            typer.Option(
                "--strict", help="Stricter than Flux: unset variables and overlaps are errors, warnings fail."
            ),
        ] = False,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.render import repo as view
        from phoebe_cli.usecases.repo import RepoOptions, validate

        terminal = terminal_for(options)
        result = validate(
            RepoOptions(
                path=path or "",
                roots=tuple(root_file or ()),
                sources=tuple(source or ()),
                use_cache=not no_cache,
                allow_remote=allow_remote,
                cluster=cluster,
                narrow=path_filter,
            ),
            strict=strict,
        )
        model = result.model
        summary = (
            f"{_count(len(model.kustomizations), 'Kustomization')}, {_count(len(model.objects), 'Flux object')}: "
            f"{_count(result.errors, 'error')}, {_count(result.warnings, 'warning')} "
            f"({_count(model.kustomize_runs, 'kustomize run')}, {result.seconds:.1f}s)"
        )
        if output is ValidateOutput.TEXT:
            terminal.show(view.findings_view(result.findings, summary))
        elif output is ValidateOutput.MARKDOWN:
            from phoebe_cli.render.graph import mermaid_too_big

            graph = _graph(result.model, path_filter)
            terminal.write(view.findings_markdown(result.findings, summary, graph))
            too_big = mermaid_too_big(graph)
            if too_big:
                terminal.warn(too_big)
        elif output is ValidateOutput.GITHUB:
            if result.findings:
                terminal.write(view.github_lines(result.findings))
            terminal.note(summary)
        else:
            from phoebe_cli.render.documents import DataFormat, serialize

            document = view.findings_document(result.findings, len(model.kustomizations), model.kustomize_runs)
            terminal.write(serialize(document, DataFormat(output.value)))
        failed = result.errors or (strict and result.warnings)
        return ExitCode.NOT_HEALTHY if failed else ExitCode.OK


def _graph(model: "RepoModel", narrow: str | None) -> str:
    """The mermaid block of what validate checked (with --path: what is under it)."""
    from phoebe_cli.render.graph import mermaid_block
    from phoebe_cli.usecases.repo import declared_snapshot, narrowed

    objects = declared_snapshot(model).objects
    return mermaid_block(objects, narrowed(model, narrow) if narrow else None)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
