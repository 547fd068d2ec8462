"""``phoebe build``: what the checkout's Flux objects apply, rendered offline — Kustomizations as
kustomize-controller builds them, HelmReleases from their charts as helm-controller renders them."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import (
    AllowRemoteOption,
    ClusterOption,
    GlobalOptions,
    NamespaceOption,
    NoCacheOption,
    PathOption,
    RootFileOption,
    SourceOption,
    cluster_command,
)
from phoebe_cli.cli.runtime import terminal_for
from phoebe_cli.console import Terminal
from phoebe_cli.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from phoebe_cli.repo.model import RepoModel
    from phoebe_cli.usecases.build import BuildOptions, BuildResult

HELP = (
    "Print what the checkout applies, offline.\n\n"
    "phoebe build ks [NAME...]: the objects each Flux Kustomization applies, exactly as the repo "
    "model builds them (postBuild substitution, commonMetadata, SOPS values masked); --recursive "
    "adds the Kustomizations below the named ones.\n\n"
    "phoebe build hr [NAME...]: each HelmRelease rendered from its chart as helm-controller "
    "renders it (chart from its HelmRepository, OCIRepository, HelmChart or this checkout; "
    "values and valuesFrom; release name and namespace; CRDs per install.crds; postRenderers; "
    "Flux's labels) with `helm template`. Charts and renders are cached "
    "($XDG_CACHE_HOME/phoebe/charts).\n\n"
    "phoebe build all [NAME...]: the Kustomizations (all, or the named ones) and the HelmReleases "
    "they apply, rendered.\n\n"
    "Charts see the cluster of the kubeconfig's context when it answers, as helm-controller sees "
    "it: its Kubernetes version and served API versions; valuesFrom and chart credentials the "
    "checkout lacks (or holds SOPS-encrypted) are read there, in memory only. A cluster that does "
    "not answer is one warning (an error when --context or --kubeconfig named it); "
    "--no-cluster-read or --offline render without one.\n\n"
    "Output: a YAML stream (default) or -o json. Secret values are masked, wherever the chart "
    "put them. A HelmRelease whose chart cannot be fetched is partial, one whose templates fail is "
    "failed: one line each on stderr, the others still print. Exit 0 when everything built and "
    "rendered, 1 when something did not."
)

KINDS = {
    "ks": "ks",
    "kustomization": "ks",
    "kustomizations": "ks",
    "hr": "hr",
    "helmrelease": "hr",
    "helmreleases": "hr",
    "all": "all",
}


IMPLICIT_CLUSTER_TIMEOUT = 5.0  # seconds, for the kubeconfig's cluster when none was named


class BuildOutput(StrEnum):
    YAML = "yaml"
    JSON = "json"


def register(app: typer.Typer) -> None:
    @app.command("build", help=HELP)
    @cluster_command()
    def build_command(
        kind: Annotated[str, typer.Argument(metavar="ks|hr|all", help="What to build.")],
        names: Annotated[
            list[str] | None,
            typer.Argument(metavar="[NAME...]", help="Only these (NAME or NAMESPACE/NAME)."),
        ] = None,
        *,
        repo: Annotated[
            str | None,
            typer.Option("--repo", metavar="PATH", help="The checkout (default: the Git repository around here)."),
        ] = None,
        path_filter: PathOption = None,
        namespace: NamespaceOption = None,
        recursive: Annotated[
            bool, typer.Option("--recursive", "-r", help="ks: also the Kustomizations below the named ones.")
        ] = False,
        output: Annotated[
            BuildOutput, typer.Option("--output", "-o", metavar="yaml|json", help="Output format.")
        ] = BuildOutput.YAML,
        kube_version: Annotated[
            str | None,
            typer.Option(
                "--kube-version", metavar="VERSION", help="Kubernetes version charts see (helm's default: its own)."
            ),
        ] = None,
        api_versions: Annotated[
            list[str] | None,
            typer.Option("--api-versions", metavar="GROUP/VERSION", help="API versions charts see (repeatable)."),
        ] = None,
        offline: Annotated[
            bool,
            typer.Option("--offline", help="No network: charts only from the cache and the checkout; no cluster."),
        ] = False,
        no_cluster_read: Annotated[
            bool,
            typer.Option(
                "--no-cluster-read",
                help="Read nothing from a cluster: helm's default Kubernetes version, the checkout's Secrets.",
            ),
        ] = False,
        refresh: Annotated[
            bool, typer.Option("--refresh", help="Resolve chart tags and versions again (not the last answer).")
        ] = False,
        root_file: RootFileOption = None,
        cluster: ClusterOption = None,
        source: SourceOption = None,
        no_cache: NoCacheOption = False,
        allow_remote: AllowRemoteOption = False,
        options: GlobalOptions,
    ) -> int:
        from pathlib import Path

        from phoebe_cli.render import build as view
        from phoebe_cli.render.documents import DataFormat, serialize
        from phoebe_cli.usecases.build import BuildOptions, RenderOptions, build, needs_renders
        from phoebe_cli.usecases.repo import RepoOptions, load, model_options

        what = KINDS.get(kind.lower())
        if what is None:
            raise UsageError(f"phoebe build {kind}: say ks, hr or all")
        terminal = terminal_for(options)
        repo_options = RepoOptions(
            path=repo or "",
            path_option="--repo",
            roots=tuple(root_file or ()),
            sources=tuple(source or ()),
            use_cache=not no_cache,
            allow_remote=allow_remote,
            cluster=cluster,
        )
        chart_sources = {name: Path(p) for name, p in model_options(repo_options).sources.items()}
        model = load(repo_options)
        build_options = BuildOptions(
            what=what,
            names=tuple(names or ()),
            namespace=namespace,
            recursive=recursive,
            narrow=path_filter,
            render=RenderOptions(
                kube_version=kube_version,
                api_versions=tuple(api_versions or ()),
                sources=chart_sources,
                offline=offline,
                use_cache=not no_cache,
                refresh=refresh,
            ),
        )
        result = None
        if not (offline or no_cluster_read) and needs_renders(model, build_options):
            result = _build_on_cluster(options, model, build_options, terminal)
        if result is None:
            result = build(model, build_options)
        if output is BuildOutput.YAML:
            terminal.write(view.yaml_stream(result))
        else:
            terminal.write(serialize(view.build_document(result), DataFormat(output.value)))
        for level, line in view.problem_lines(result):
            if level == "error":
                terminal.note(f"error: {line}")
            else:
                terminal.warn(line)
        return ExitCode.NOT_HEALTHY if result.problems else ExitCode.OK


def _build_on_cluster(
    options: GlobalOptions, model: "RepoModel", build_options: "BuildOptions", terminal: Terminal
) -> "BuildResult | None":
    """The build with renders reading the kubeconfig's cluster, or None to build without one: no
    kubeconfig at all, or (a warning) a cluster that does not answer. A cluster the user named
    (--context, --kubeconfig, --as...) that does not answer is the error, as in every command."""
    import dataclasses

    from phoebe_cli.cli.runtime import run_on_cluster
    from phoebe_cli.errors import ClusterError, KubeconfigError
    from phoebe_cli.kube.config import cluster_configured
    from phoebe_cli.render.build import cluster_note
    from phoebe_cli.usecases.build import build_on_cluster

    named = bool(
        options.kubeconfig
        or options.context
        or options.impersonate_user
        or options.impersonate_uid
        or options.impersonate_groups
    )
    if not named and not cluster_configured():
        return None
    if not named and options.request_timeout is None:
        # a cluster nobody asked for must not hold a build up for long
        options = dataclasses.replace(options, request_timeout=IMPLICIT_CLUSTER_TIMEOUT)
    try:
        result = run_on_cluster(options, lambda session: build_on_cluster(session, model, build_options))
    except (ClusterError, KubeconfigError) as error:
        if named:
            raise
        terminal.warn(f"cluster not read ({error}); rendering with helm's defaults and the checkout's Secrets")
        return None
    if result.cluster is not None:
        terminal.note(cluster_note(result.cluster))
    return result
