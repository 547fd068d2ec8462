"""``phoebe status``: what is ready, what is not and why, as a tree, a table or a document."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import (
    AllowRemoteOption,
    ClusterOption,
    GlobalOptions,
    NoCacheOption,
    PathOption,
    RootFileOption,
    SourceOption,
    cluster_command,
    parse_duration,
)
from phoebe_cli.cli.runtime import (
    contexts_to_read,
    kind_and_names,
    namespace_of,
    run_on_cluster,
    run_on_clusters,
    terminal_for,
)
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.console import Terminal
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.repo import RepoOptions
    from phoebe_cli.usecases.status import StatusOptions, StatusReport

HELP = (
    "What is ready, what is not, and why: every Flux object as a tree (the Kustomizations that "
    "applied it above it), a table, or JSON/YAML.\n\n"
    "The tree starts at the root Kustomizations (applied by no other) and goes down their "
    "inventories to the HelmReleases, each with its source beside it; objects applied by no "
    "Kustomization are listed as unattached. An object blocked by a dependency shows the chain to "
    "the object that is failing for its own reason.\n\n"
    "phoebe status looks at the whole cluster; KIND, NAME, -n, -l, --failed and --suspended "
    "narrow what is shown (the tree keeps the parents of what matches).\n\n"
    "Exit 0 when everything shown is ready (suspended counts as ready unless --strict), 1 when "
    "anything is failing or progressing: a CI gate. --watch keeps the view current from watches "
    "until Ctrl-C, or with --until-ready until everything is ready (exit 0) or --timeout (exit 6).\n\n"
    "-o mermaid, -o dot and -o svg (Graphviz) draw the Kustomization and HelmRelease graph: "
    "applies and dependsOn edges, nodes by state, blocked-by chains and cycles marked.\n\n"
    "--context NAME more than once, or --all-contexts, reads several clusters at once: a section "
    "each and a combined summary; exit 1 if any is not healthy or not read, 3 only when none answers.\n\n"
    "--repo [PATH] shows the checkout's desired state instead, offline (--compare: beside the "
    "cluster); --root-file, --source, --no-cache and --allow-remote go with it."
)


class StatusOutput(StrEnum):
    TREE = "tree"
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    MERMAID = "mermaid"
    DOT = "dot"
    SVG = "svg"


GRAPH_OUTPUTS = (StatusOutput.MERMAID, StatusOutput.DOT, StatusOutput.SVG)


def register(app: typer.Typer) -> None:
    @app.command("status", help=HELP)
    @cluster_command(namespaced=True, several_contexts=True)
    def status_command(
        kind: Annotated[
            str | None,
            typer.Argument(
                metavar="[KIND]", help="Only this kind (ks, hr, git, oci, helmrepo, chart, es); KIND/NAME works too."
            ),
        ] = None,
        name: Annotated[
            str | None, typer.Argument(metavar="[NAME]", help="Only this object (or NAMESPACE/NAME).")
        ] = None,
        *,
        selector: Annotated[
            str | None, typer.Option("--selector", "-l", metavar="SELECTOR", help="Label selector, as kubectl.")
        ] = None,
        failed: Annotated[bool, typer.Option("--failed", help="Only what is failing, progressing or unknown.")] = False,
        suspended: Annotated[bool, typer.Option("--suspended", help="Only what is suspended.")] = False,
        output: Annotated[
            StatusOutput,
            typer.Option(
                "--output",
                "-o",
                metavar="tree|table|json|yaml|mermaid|dot|svg",
                help="Output format; mermaid, dot and svg draw the Kustomization and HelmRelease graph.",
            ),
        ] = StatusOutput.TREE,
        root: Annotated[
            str | None, typer.Option("--root", metavar="NAME", help="Start the tree at this Kustomization.")
        ] = None,
        depth: Annotated[
            int | None, typer.Option("--depth", min=0, metavar="N", help="Levels below the roots.")
        ] = None,
        strict: Annotated[bool, typer.Option("--strict", help="Suspended objects count as not ready.")] = False,
        watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep the view current (watches).")] = False,
        until_ready: Annotated[
            bool, typer.Option("--until-ready", help="With --watch: stop when everything is ready.")
        ] = False,
        timeout: Annotated[
            str | None, typer.Option("--timeout", metavar="DURATION", help="With --watch: give up after this.")
        ] = None,
        repo: Annotated[
            str | None,
            typer.Option(
                "--repo",
                metavar="[PATH]",
                help="The checkout's desired state instead of the cluster's (offline); PATH defaults to "
                "the Git repository around the current directory.",
            ),
        ] = None,
        compare: Annotated[
            bool,
            typer.Option("--compare", help="With --repo: the checkout beside the cluster, object by object."),
        ] = False,
        all_contexts: Annotated[
            bool,
            typer.Option("--all-contexts", help="Every context of the kubeconfig: one section per cluster."),
        ] = False,
        root_file: RootFileOption = None,
        cluster: ClusterOption = None,
        path: PathOption = None,
        source: SourceOption = None,
        no_cache: NoCacheOption = False,
        allow_remote: AllowRemoteOption = False,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.usecases.status import StatusOptions, check_options

        namespace = namespace_of(options)
        kind, names = kind_and_names(kind, () if name is None else (name,))
        if len(names) > 1:
            raise typer.BadParameter(f"one object at a time, not {kind}/{names[0]} and {names[1]}", param_hint="NAME")
        name = names[0] if names else None
        if (until_ready or timeout) and not watch:
            raise typer.BadParameter("--until-ready and --timeout go with --watch", param_hint="'--watch'")
        repo_only = [
            flag
            for flag, given in (
                ("--compare", compare),
                ("--root-file", bool(root_file)),
                ("--cluster", cluster is not None),
                ("--path", path is not None),
                ("--source", bool(source)),
                ("--no-cache", no_cache),
                ("--allow-remote", allow_remote),
            )
            if given
        ]
        if repo is None and repo_only:
            raise typer.BadParameter(f"{repo_only[0]} goes with --repo", param_hint="'--repo'")
        if watch and output in GRAPH_OUTPUTS:
            raise typer.BadParameter(
                f"-o {output.value} draws once; it does not go with --watch", param_hint="'--watch'"
            )
        if compare and output in GRAPH_OUTPUTS:
            raise typer.BadParameter(f"-o {output.value} does not go with --compare", param_hint="'--compare'")
        if repo is not None and watch:
            raise typer.BadParameter("--watch looks at the cluster; it does not go with --repo", param_hint="'--watch'")
        status_options = StatusOptions(
            kind=kind,
            name=name,
            namespace=namespace,
            label_selector=selector,
            failed=failed,
            suspended=suspended,
            root=root,
            depth=depth,
            strict=strict,
        )
        check_options(status_options)  # a bad KIND, NAME or -l is a usage error before anything is read
        if all_contexts and (options.contexts or options.context):
            raise typer.BadParameter("use --all-contexts or --context, not both", param_hint="'--all-contexts'")
        if all_contexts or options.contexts:
            several = [
                flag
                for flag, given in (
                    ("--watch", watch),
                    ("--repo", repo is not None),
                    (f"-o {output.value}", output in GRAPH_OUTPUTS),
                )
                if given
            ]
            if several:
                raise typer.BadParameter(
                    f"{several[0]} looks at one cluster; use one --context", param_hint="'--context'"
                )
            return _several(options, status_options, output, all_contexts)
        if repo is not None:
            from phoebe_cli.usecases.repo import RepoOptions

            repo_options = RepoOptions(
                path=repo,
                path_option="--repo",
                roots=tuple(root_file or ()),
                sources=tuple(source or ()),
                use_cache=not no_cache,
                allow_remote=allow_remote,
                cluster=cluster,
                narrow=path,
            )
            if compare:
                return _compare(options, status_options, repo_options, output)
            return _checkout(options, status_options, repo_options, output)
        seconds = parse_duration(timeout) if timeout else None
        if watch:
            return _watch(options, status_options, output, until_ready, seconds)
        return _once(options, status_options, output)


def _render(terminal: "Terminal", report: "StatusReport", output: StatusOutput) -> None:
    from phoebe_cli.render import status as view

    if output in GRAPH_OUTPUTS:
        text = view.graph_text(report, output.value)
        terminal.write(text if output is not StatusOutput.SVG else _svg(text))
        if output is StatusOutput.MERMAID:
            from phoebe_cli.render.graph import mermaid_too_big

            too_big = mermaid_too_big(text)
            if too_big:
                terminal.warn(too_big)
    elif output is StatusOutput.TREE:
        terminal.show(view.tree_view(report, with_header=terminal.stdout_is_tty))
    elif output is StatusOutput.TABLE:
        terminal.show(view.table_view(report, with_header=terminal.stdout_is_tty))
    else:
        from phoebe_cli.render.documents import DataFormat, serialize

        terminal.write(serialize(view.status_document(report), DataFormat(output.value)))


def _svg(dot_source: str) -> str:
    from phoebe_cli.render.graph import svg

    return svg(dot_source)


def _once(options: GlobalOptions, status_options: "StatusOptions", output: StatusOutput) -> int:
    from phoebe_cli.usecases.status import status

    terminal = terminal_for(options)

    async def use(session: "Session") -> "StatusReport":
        return await status(session, status_options)

    report = run_on_cluster(options, use)
    _render(terminal, report, output)
    if report.forbidden_namespaces:
        terminal.warn(
            f"not allowed to read {len(report.forbidden_namespaces)} namespaces: "
            + ", ".join(report.forbidden_namespaces[:5])
            + (" ..." if len(report.forbidden_namespaces) > 5 else "")
        )
    return ExitCode.OK if report.healthy else ExitCode.NOT_HEALTHY


def _several(options: GlobalOptions, status_options: "StatusOptions", output: StatusOutput, all_contexts: bool) -> int:
    """Every cluster at once: one section each, then the combined summary. Exit 1 when any
    cluster is not healthy or could not be read; when none could be read, the exit code of the
    first cluster's error (3 when unreachable)."""
    from phoebe_cli.errors import exit_code_for
    from phoebe_cli.render import status as view
    from phoebe_cli.usecases.status import clusters_report, status

    contexts = contexts_to_read(options, all_contexts)
    terminal = terminal_for(options)

    async def use(session: "Session") -> "StatusReport":
        return await status(session, status_options)

    report = clusters_report(run_on_clusters(options, contexts, use))
    if output in (StatusOutput.JSON, StatusOutput.YAML):
        from phoebe_cli.render.documents import DataFormat, serialize

        terminal.write(serialize(view.clusters_document(report), DataFormat(output.value)))
    else:
        terminal.show(
            view.clusters_view(report, table=output is StatusOutput.TABLE, with_header=terminal.stdout_is_tty)
        )
    for cluster in report.clusters:
        if cluster.report is not None and cluster.report.forbidden_namespaces:
            denied = cluster.report.forbidden_namespaces
            terminal.warn(
                f"{cluster.context}: not allowed to read {len(denied)} namespaces: "
                + ", ".join(denied[:5])
                + (" ..." if len(denied) > 5 else "")
            )
    if len(report.unread) == len(report.clusters):
        first = report.clusters[0].error
        assert first is not None
        return exit_code_for(first)
    return ExitCode.OK if report.healthy else ExitCode.NOT_HEALTHY


def _checkout(
    options: GlobalOptions, status_options: "StatusOptions", repo_options: "RepoOptions", output: StatusOutput
) -> int:
    """The checkout's desired state, drawn as the cluster view is (no cluster needed)."""
    from phoebe_cli.usecases.repo import load, repo_report

    terminal = terminal_for(options)
    model = load(repo_options)
    if options.verbose:
        terminal.debug(
            f"{len(model.kustomizations)} Kustomizations, {model.kustomize_runs} kustomize runs, "
            f"{model.cached_builds} builds from the cache"
        )
    report = repo_report(model, status_options, repo_options.narrow)
    _render(terminal, report, output)
    return ExitCode.OK if report.healthy else ExitCode.NOT_HEALTHY


def _compare(
    options: GlobalOptions, status_options: "StatusOptions", repo_options: "RepoOptions", output: StatusOutput
) -> int:
    """The checkout beside the cluster: what is missing, orphaned, behind or failing."""
    from phoebe_cli.usecases.repo import CompareReport, compare_with_cluster

    terminal = terminal_for(options)

    async def use(session: "Session") -> CompareReport:
        return await compare_with_cluster(session, repo_options, status_options)

    report = run_on_cluster(options, use)
    from phoebe_cli.render import compare as view

    if output in (StatusOutput.JSON, StatusOutput.YAML):
        from phoebe_cli.render.documents import DataFormat, serialize

        terminal.write(serialize(view.compare_document(report), DataFormat(output.value)))
    else:
        terminal.show(view.compare_view(report))
    return ExitCode.OK if report.in_sync else ExitCode.NOT_HEALTHY


def _watch(
    options: GlobalOptions,
    status_options: "StatusOptions",
    output: StatusOutput,
    until_ready: bool,
    timeout: float | None,
) -> int:
    import time

    from phoebe_cli.render import status as view
    from phoebe_cli.usecases.status import watch_status

    terminal = terminal_for(options)
    live = terminal.stdout_is_tty and output in (StatusOutput.TREE, StatusOutput.TABLE)
    holder: dict[str, StatusReport] = {}
    previous: dict[object, object] = {}

    def draw() -> object:
        report = holder.get("report")
        if report is None:
            return view.waiting_view()
        if output is StatusOutput.TABLE:
            return view.table_view(report, with_header=True)
        return view.tree_view(report, with_header=True)

    class Listener:
        def report(self, report: "StatusReport") -> None:
            holder["report"] = report
            if live:
                return
            if output in (StatusOutput.JSON, StatusOutput.YAML):
                _render(terminal, report, output)
                return
            # Not a terminal: one line per change of state, with the time.
            stamp = time.strftime("%H:%M:%S")
            for ref in report.selected:
                obj = report.objects[ref]
                if previous.get(ref) != obj.state:
                    if ref in previous or not previous:
                        terminal.write(f"{stamp} {view.node_label(obj, report).plain}")
                    previous[ref] = obj.state

    async def use(session: "Session") -> "StatusReport":
        return await watch_status(session, status_options, Listener(), until_ready=until_ready, timeout=timeout)

    if live:
        with terminal.live(draw):  # type: ignore[arg-type]
            report = run_on_cluster(options, use)
    else:
        report = run_on_cluster(options, use)
    return ExitCode.OK if report.healthy else ExitCode.NOT_HEALTHY
