"""``phoebe diff``: what a change will do — the checkout against the cluster, or one Git ref
against another offline."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import (
    AllowRemoteOption,
    ClusterOption,
    GlobalOptions,
    NoCacheOption,
    RootFileOption,
    SourceOption,
    cluster_command,
)
from phoebe_cli.cli.runtime import run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.console import Terminal
    from phoebe_cli.flux.diff import DiffReport
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.diff import DiffOptions

HELP = (
    "What a change will do.\n\n"
    "Against the cluster (default): each Flux Kustomization is built from the checkout as "
    "kustomize-controller builds it (substituteFrom read from the cluster), every object is "
    "server-side applied with dryRun=All as the controller applies it, and the result is "
    "compared with the live object: created, changed (field by field), deleted (pruned from the "
    "inventory), skipped. Nothing is written to the cluster.\n\n"
    "With --base REF, offline: the checkout at REF against --head (default: the working tree), "
    "object by object per Kustomization (reordering is never a change) — the pull-request diff. "
    "-o markdown prints a pull-request comment.\n\n"
    "HelmReleases are also rendered from their charts (helm template, as helm-controller renders "
    "them) and compared object by object: with --base, only those whose inputs changed, at both "
    "refs; against the cluster, with the manifest Helm last deployed (its storage Secret): what "
    "the next upgrade changes, and the fields edited on live objects it puts back (a server-side "
    "apply dry-run). --no-render compares their spec and values only.\n\n"
    "Secret values are never shown: only which keys were added, removed or changed.\n\n"
    "Against the cluster, as kustomize-controller: a Kustomization whose dry-run fails on an "
    "object is failing (the controller applies none of that stage or later, and prunes nothing); "
    "a suspended one is not compared unless --include-suspended.\n\n"
    "phoebe diff images [NAME...]: only the container images each change moves (workloads: "
    "Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods; init containers too), old and "
    "new, as a table, -o json|yaml or -o markdown; both modes. A Kustomization named images is "
    "'phoebe diff ks images'.\n\n"
    "Exit 0 when there are no differences, 1 when there are (a failing Kustomization is one; "
    "with images: an image that changes)."
)


class DiffOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"
    MARKDOWN = "markdown"


KIND_WORDS = ("ks", "kustomization", "kustomizations")
IMAGES_WORD = "images"  # phoebe diff images [NAME...]: the image view of the same comparison


def register(app: typer.Typer) -> None:
    @app.command("diff", help=HELP)
    @cluster_command(namespaced=True)
    def diff_command(
        names: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[images|ks] [NAME...]",
                help="Only these Flux Kustomizations (NAME or NAMESPACE/NAME); 'images' first: only image changes.",
            ),
        ] = None,
        *,
        repo: Annotated[
            str | None,
            typer.Option("--repo", metavar="PATH", help="The checkout (default: the Git repository around here)."),
        ] = None,
        base: Annotated[
            str | None, typer.Option("--base", metavar="REF", help="Offline: compare the checkout at REF ...")
        ] = None,
        head: Annotated[
            str | None,
            typer.Option("--head", metavar="REF", help="... with the checkout at REF (default: the working tree)."),
        ] = None,
        path: Annotated[
            str | None,
            typer.Option("--path", metavar="DIR", help="Only Kustomizations whose spec.path is DIR or below it."),
        ] = None,
        recursive: Annotated[
            bool, typer.Option("--recursive", "-r", help="With NAMEs: also the Kustomizations below them.")
        ] = False,
        strip_attrs: Annotated[
            str | None,
            typer.Option(
                "--strip-attrs",
                metavar="KEYS",
                help="Comma-separated label/annotation keys left out of the comparison (replaces the "
                "default: helm.sh/chart, checksum/config, app.kubernetes.io/version ...; '' for none).",
            ),
        ] = None,
        limit_bytes: Annotated[
            int | None,
            typer.Option("--limit-bytes", min=1, metavar="N", help="Cut each object's diff after N bytes."),
        ] = None,
        output: Annotated[
            DiffOutput, typer.Option("--output", "-o", metavar="text|json|yaml|markdown", help="Output format.")
        ] = DiffOutput.TEXT,
        strict: Annotated[
            bool, typer.Option("--strict", help="A Kustomization that cannot be built is a difference (exit 1).")
        ] = False,
        no_render: Annotated[
            bool,
            typer.Option(
                "--no-render",
                help="Compare HelmReleases as their spec and merged values only, without rendering their charts.",
            ),
        ] = False,
        kube_version: Annotated[
            str | None,
            typer.Option("--kube-version", metavar="VERSION", help="helm template --kube-version for renders."),
        ] = None,
        include_suspended: Annotated[
            bool,
            typer.Option(
                "--include-suspended",
                help="Against the cluster: also compare suspended Kustomizations (their differences count).",
            ),
        ] = False,
        root_file: RootFileOption = None,
        cluster: ClusterOption = None,
        source: SourceOption = None,
        no_cache: NoCacheOption = False,
        allow_remote: AllowRemoteOption = False,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.flux.diff import DEFAULT_STRIP_ATTRS
        from phoebe_cli.usecases.diff import DiffOptions
        from phoebe_cli.usecases.repo import RepoOptions

        if options.namespace and options.all_namespaces:
            raise typer.BadParameter("use -n NAMESPACE or -A, not both", param_hint="'--all-namespaces'")
        if head and not base:
            raise typer.BadParameter("--head goes with --base", param_hint="'--head'")
        if include_suspended and base:
            raise typer.BadParameter(
                "--include-suspended is for the comparison against the cluster, not --base",
                param_hint="'--include-suspended'",
            )
        selected = list(names or [])
        images = bool(selected) and selected[0] == IMAGES_WORD
        if images:
            selected = selected[1:]
        if selected and selected[0].lower() in KIND_WORDS:
            selected = selected[1:]
        attrs = (
            DEFAULT_STRIP_ATTRS
            if strip_attrs is None
            else tuple(a.strip() for a in strip_attrs.split(",") if a.strip())
        )
        diff_options = DiffOptions(
            repo=RepoOptions(
                path=repo or "",
                path_option="--repo",
                roots=tuple(root_file or ()),
                sources=tuple(source or ()),
                use_cache=not no_cache,
                allow_remote=allow_remote,
                cluster=cluster,
            ),
            base=base,
            head=head,
            names=tuple(selected),
            namespace=None if options.all_namespaces else options.namespace,
            path=path,
            recursive=recursive,
            strip_attrs=attrs,
            limit_bytes=limit_bytes,
            include_suspended=include_suspended,
            render=not no_render,
            kube_version=kube_version,
        )
        terminal = terminal_for(options)
        if base:
            from phoebe_cli.usecases.diff import diff_refs

            report, runs, renders = diff_refs(diff_options)
            if options.verbose:
                terminal.debug(f"{runs} kustomize runs, {renders} HelmRelease renders")
        else:
            report = _against_cluster(options, diff_options)
        _render(terminal, report, output, images=images)
        for line in _warnings(report):
            terminal.warn(line)
        if images:
            from phoebe_cli.render.diff import images_differ

            return ExitCode.NOT_HEALTHY if images_differ(report) or report.failing else ExitCode.OK
        unbuildable = bool(report.warnings) or any(k.warnings for k in report.kustomizations)
        differs = report.differs or (strict and unbuildable)
        return ExitCode.NOT_HEALTHY if differs else ExitCode.OK


def _against_cluster(options: GlobalOptions, diff_options: "DiffOptions") -> "DiffReport":
    from phoebe_cli.usecases.diff import diff_cluster

    async def use(session: "Session") -> "DiffReport":
        return await diff_cluster(session, diff_options)

    return run_on_cluster(options, use)


def _warnings(report: "DiffReport") -> list[str]:
    from phoebe_cli.render.diff import warning_lines

    return warning_lines(report)


def _render(terminal: "Terminal", report: "DiffReport", output: DiffOutput, *, images: bool) -> None:
    from phoebe_cli.render import diff as view

    if output is DiffOutput.TEXT:
        terminal.show((view.images_view if images else view.diff_view)(report, color=terminal.color))
    elif output is DiffOutput.MARKDOWN:
        terminal.write((view.images_markdown if images else view.diff_markdown)(report))
    else:
        from phoebe_cli.render.documents import DataFormat, serialize

        document = (view.images_document if images else view.diff_document)(report)
        terminal.write(serialize(document, DataFormat(output.value)))
