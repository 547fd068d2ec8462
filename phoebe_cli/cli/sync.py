"""``phoebe sync``: ask Flux to reconcile, in bulk, and wait for the result."""

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from phoebe_cli.cli.options import GlobalOptions, cluster_command, parse_duration
from phoebe_cli.cli.runtime import kind_and_names, namespace_of, run_on_cluster, terminal_for
from phoebe_cli.errors import ExitCode

if TYPE_CHECKING:
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.sync import SyncItem, SyncOptions, SyncResult

HELP = (
    "Ask Flux to reconcile objects now, in bulk, and wait for the result.\n\n"
    "KIND is git (GitRepository), oci (OCIRepository), helmrepo, chart (HelmChart), bucket, "
    "ks (Kustomization), hr (HelmRelease), es (ExternalSecret), or all (every kind with a "
    "reconcile loop); long names work too (gitrepo, kustomization, helmrelease ...).\n\n"
    "Without NAMEs every object of the kind in the namespace is synced. The namespace is -n, "
    "else the kubeconfig context's namespace, else flux-system (as kubectl and flux do); -A "
    "means every namespace. A NAME may be NAMESPACE/NAME; KIND/NAME (ks/apps, ks/flux-system/apps) works too.\n\n"
    "Every selected object is patched at once with one token "
    "(reconcile.fluxcd.io/requestedAt), then phoebe watches until each is done, failed or "
    "timed out. Suspended objects are skipped (an error when named).\n\n"
    "Exit 0 when all are done, 1 when any failed, 6 when any timed out, 130 on Ctrl-C "
    "(twice to quit at once)."
)


class SyncOutput(StrEnum):
    TEXT = "text"
    JSON = "json"


KIND_NAMES = ["git", "oci", "helmrepo", "chart", "bucket", "ks", "hr", "es", "all"]


def _complete_kind(incomplete: str) -> list[str]:
    return [k for k in KIND_NAMES if k.startswith(incomplete)]


def register(app: typer.Typer) -> None:
    @app.command("sync", help=HELP)
    @cluster_command(namespaced=True)
    def sync_command(
        kind: Annotated[str, typer.Argument(metavar="KIND", help="What to sync.", autocompletion=_complete_kind)],
        names: Annotated[list[str] | None, typer.Argument(metavar="[NAME]...", help="Only these objects.")] = None,
        *,
        selector: Annotated[
            str | None, typer.Option("--selector", "-l", metavar="SELECTOR", help="Label selector, as kubectl.")
        ] = None,
        failed: Annotated[bool, typer.Option("--failed", help="Only objects that are not Ready.")] = False,
        with_source: Annotated[
            bool, typer.Option("--with-source", help="First sync the sources they read from, and wait for them.")
        ] = False,
        force: Annotated[bool, typer.Option("--force", help="HelmReleases: force a one-off upgrade.")] = False,
        reset: Annotated[
            bool, typer.Option("--reset", help="HelmReleases: reset the failure counts (retries).")
        ] = False,
        wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the controllers' answers.")] = True,
        timeout: Annotated[
            str, typer.Option("--timeout", metavar="DURATION", help="How long to wait in all (90s, 5m, 1h).")
        ] = "5m",
        cascade: Annotated[
            bool,
            typer.Option(
                "--cascade", help="Sources: also wait until the Kustomizations reading them apply the new revision."
            ),
        ] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be synced; change nothing.")] = False,
        output: Annotated[
            SyncOutput, typer.Option("--output", "-o", metavar="text|json", help="Output format.")
        ] = SyncOutput.TEXT,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.flux.selectors import check_selector
        from phoebe_cli.usecases.sync import SyncOptions

        namespace = namespace_of(options)
        chosen, given = kind_and_names(kind, names or ())
        check_selector(selector)  # a bad -l is a usage error before any request
        sync_options = SyncOptions(
            kind=chosen or "",
            names=given,
            namespace=namespace,
            all_namespaces=options.all_namespaces,
            label_selector=selector,
            failed_only=failed,
            with_source=with_source,
            force=force,
            reset=reset,
            wait=wait,
            timeout=parse_duration(timeout),
            cascade=cascade,
            dry_run=dry_run,
        )
        return _run_sync(options, sync_options, output)

    for mode_name, help_text in (("suspend", SUSPEND_HELP), ("resume", RESUME_HELP)):
        _register_toggle(app, mode_name, help_text)


SUSPEND_HELP = (
    "Suspend objects: set spec.suspend so that Flux stops reconciling them.\n\n"
    "Name the objects, or use --all for every object of the kind in the namespace (-A: everywhere). "
    "Objects already suspended are reported, not patched. ExternalSecrets cannot be suspended."
)
RESUME_HELP = (
    "Resume suspended objects: clear spec.suspend and ask Flux to reconcile them now, in one patch, "
    "then wait for the result as `phoebe sync` does (--no-wait to return at once).\n\n"
    "Name the objects, or use --all for every object of the kind in the namespace (-A: everywhere)."
)


def _register_toggle(app: typer.Typer, name: str, help_text: str) -> None:
    waits = name == "resume"

    @app.command(name, help=help_text)
    @cluster_command(namespaced=True)
    def toggle_command(
        kind: Annotated[str, typer.Argument(metavar="KIND", help="What to act on.", autocompletion=_complete_kind)],
        names: Annotated[list[str] | None, typer.Argument(metavar="[NAME]...", help="These objects.")] = None,
        *,
        every: Annotated[bool, typer.Option("--all", help="Every object of KIND in the namespace.")] = False,
        selector: Annotated[
            str | None, typer.Option("--selector", "-l", metavar="SELECTOR", help="Label selector, as kubectl.")
        ] = None,
        wait: Annotated[
            bool, typer.Option("--wait/--no-wait", help="resume: wait for the controllers' answers.", hidden=not waits)
        ] = True,
        timeout: Annotated[
            str, typer.Option("--timeout", metavar="DURATION", help="How long to wait in all.", hidden=not waits)
        ] = "5m",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
        output: Annotated[
            SyncOutput, typer.Option("--output", "-o", metavar="text|json", help="Output format.")
        ] = SyncOutput.TEXT,
        options: GlobalOptions,
    ) -> int:
        from phoebe_cli.flux.selectors import check_selector
        from phoebe_cli.usecases.sync import Mode, SyncOptions

        namespace = namespace_of(options)
        chosen, given = kind_and_names(kind, names or ())
        check_selector(selector)  # a bad -l is a usage error before any request
        names = list(given)
        if not names and not every and not selector:
            raise typer.BadParameter(f"name the objects to {name}, or use --all (or -l SELECTOR)", param_hint="NAME")
        if names and every:
            raise typer.BadParameter("use NAMEs or --all, not both", param_hint="'--all'")
        sync_options = SyncOptions(
            kind=chosen or "",
            mode=Mode(name),
            names=given,
            namespace=namespace,
            all_namespaces=options.all_namespaces,
            label_selector=selector,
            wait=wait and waits,
            timeout=parse_duration(timeout),
            dry_run=dry_run,
        )
        return _run_sync(options, sync_options, output, done_word="suspended" if name == "suspend" else "resumed")


def _run_sync(options: GlobalOptions, sync_options: "SyncOptions", output: SyncOutput, done_word: str = "done") -> int:
    import time

    from phoebe_cli.render import sync as view
    from phoebe_cli.usecases.sync import SyncRun

    terminal = terminal_for(options)
    live = output is SyncOutput.TEXT and terminal.stdout_is_tty and not sync_options.dry_run
    items: list[SyncItem] = []
    printed: set[object] = set()
    started = time.monotonic()

    class Listener:
        def planned(self, planned: "Sequence[SyncItem]") -> None:
            items[:] = planned
            if output is SyncOutput.TEXT and not live and not sync_options.dry_run:
                for item in planned:
                    self.updated(item)

        def updated(self, item: "SyncItem") -> None:
            if output is SyncOutput.TEXT and not live and item.final and item.ref not in printed:
                printed.add(item.ref)
                terminal.show(view.item_line(item, done_word=done_word))

    listener = Listener()

    async def use(session: "Session") -> "SyncResult":
        run = SyncRun(session, sync_options, listener)
        if not live:
            return await run.run()
        with terminal.live(lambda: view.live_view(items, time.monotonic() - started, terminal.width, done_word)):
            return await run.run()

    result = run_on_cluster(options, use)

    if output is SyncOutput.JSON:
        from phoebe_cli.render.documents import DataFormat, serialize

        terminal.write(serialize(view.sync_document(result), DataFormat.JSON))
    elif sync_options.dry_run:
        for item in result.items:
            terminal.show(view.dry_run_line(item, verb=sync_options.mode.value))
        terminal.show(view.summary(result, done_word=done_word, verb=sync_options.mode.value))
    else:
        for item in result.items:  # interrupted or --no-wait: what was not printed yet
            if not live and item.ref not in printed and (item.final or not sync_options.wait or result.interrupted):
                terminal.show(view.item_line(item, waited=result.waited, done_word=done_word))
        terminal.show(view.summary(result, done_word=done_word, verb=sync_options.mode.value))
    if result.interrupted:
        return ExitCode.INTERRUPTED
    if result.failed:
        return ExitCode.NOT_HEALTHY
    if result.timed_out:
        return ExitCode.TIMED_OUT
    return ExitCode.OK
