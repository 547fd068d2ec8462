"""Running a use case: the terminal, the cluster session and the event loop for one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from phoebe_cli.cli.options import GlobalOptions
from phoebe_cli.console import Terminal
from phoebe_cli.errors import Interrupted, PhoebeError, UsageError

if TYPE_CHECKING:
    import asyncio

    from phoebe_cli.kube.session import Session, SessionOptions

T = TypeVar("T")


def terminal_for(options: GlobalOptions) -> Terminal:
    return Terminal(no_color=options.no_color, verbose=options.verbose)


def namespace_of(options: GlobalOptions) -> str | None:
    """The namespace -n names (None: all, or not given), checked before any request: -n with -A,
    an empty -n and a name no namespace can have are usage errors."""
    import typer

    from phoebe_cli.flux.selectors import namespace_problem

    if options.namespace is None:
        return None
    if options.all_namespaces:
        raise typer.BadParameter("use -n NAMESPACE or -A, not both", param_hint="'--all-namespaces'")
    why = namespace_problem(options.namespace)
    if why is not None:
        hint = " (-A means all namespaces)" if not options.namespace else ""
        raise typer.BadParameter(f"{why}{hint}", param_hint="'-n'")
    return options.namespace


def kind_and_names(kind: str | None, names: Sequence[str] = ()) -> tuple[str | None, tuple[str, ...]]:
    """``KIND NAME...`` or ``KIND/NAME...`` (``KIND/NAMESPACE/NAME``) as one KIND and its names
    (``NAME`` or ``NAMESPACE/NAME``), every name checked. Both forms work in every command."""
    from phoebe_cli.flux.kinds import kind_named
    from phoebe_cli.flux.selectors import split_name

    if kind is None:
        return None, ()
    if "/" not in kind:
        for name in names:
            split_name(name)
        return kind, tuple(names)
    first, _, rest = kind.partition("/")
    wanted = kind_named(first)
    if wanted is None:
        raise UsageError(f"unknown kind {first!r} in {kind!r}")
    found = [rest]
    for name in names:
        other, slash, rest = name.partition("/")
        if not slash or kind_named(other) is not wanted:
            raise UsageError(f"{name!r}: after {kind!r}, name each object as {first}/NAME (or use KIND NAME...)")
        found.append(rest)
    for name in found:
        split_name(name, forms="KIND/NAME or KIND/NAMESPACE/NAME")
    return first, tuple(found)


def _session_options(options: GlobalOptions, context: str | None) -> SessionOptions:
    from phoebe_cli.kube.config import ImpersonationFlags
    from phoebe_cli.kube.session import SessionOptions

    flags = ImpersonationFlags(options.impersonate_user, options.impersonate_uid, options.impersonate_groups)
    return SessionOptions(
        kubeconfig=options.kubeconfig,
        context=context,
        flux_namespace=options.flux_namespace,
        request_timeout=options.request_timeout,
        impersonate=flags if flags != ImpersonationFlags() else None,
    )


def contexts_to_read(options: GlobalOptions, all_contexts: bool) -> list[str]:
    """The contexts of a command that reads several clusters: every context of the kubeconfig
    (``--all-contexts``, in its order) or the --context values, each checked before any request
    (an unknown one is a usage error, exit 2, as a single unknown --context is)."""
    from phoebe_cli.errors import KubeconfigError
    from phoebe_cli.kube.kubeconfig import check_contexts, context_names

    if all_contexts:
        names = context_names(options.kubeconfig)
        if not names:
            raise KubeconfigError("--all-contexts: the kubeconfig defines no context")
        return names
    check_contexts(options.kubeconfig, options.contexts)
    return list(options.contexts)


def run_on_clusters(
    options: GlobalOptions, contexts: Sequence[str], usecase: Callable[[Session], Awaitable[T]]
) -> list[tuple[str, T | PhoebeError]]:
    """Run ``usecase`` on every context at once (one session each, all in one event loop), in
    the order given. A cluster that fails (unreachable, forbidden, a broken kubeconfig entry)
    gives its error in its place and does not stop the others; Ctrl-C stops them all."""
    import asyncio

    from phoebe_cli.kube.session import open_session

    async def one(context: str) -> T | PhoebeError:
        try:
            async with open_session(_session_options(options, context)) as session:
                return await usecase(session)
        except Interrupted:
            raise
        except PhoebeError as error:
            return error

    async def run() -> list[tuple[str, T | PhoebeError]]:
        stop = _InterruptHandler(asyncio.current_task())
        try:
            results = await asyncio.gather(*(one(context) for context in contexts))
        finally:
            stop.remove()
        return list(zip(contexts, results, strict=True))

    try:
        return asyncio.run(run())
    except asyncio.CancelledError as exc:
        raise Interrupted() from exc


def run_on_cluster(options: GlobalOptions, usecase: Callable[[Session], Awaitable[T]]) -> T:
    """Open one session (one client, connections reused) and run ``usecase`` on it."""
    from phoebe_cli.kube.session import open_session

    session_options = _session_options(options, options.context)

    import asyncio

    async def run() -> T:
        stop = _InterruptHandler(asyncio.current_task())
        started = loop_time = asyncio.get_running_loop().time()
        try:
            async with open_session(session_options) as session:
                try:
                    return await usecase(session)
                finally:
                    if options.verbose >= 2:
                        loop_time = asyncio.get_running_loop().time()
                        terminal_for(options).debug(
                            f"{session.kube.requests_sent} requests to {session.access.server} "
                            f"in {loop_time - started:.3f}s"
                        )
        finally:
            stop.remove()

    try:
        return asyncio.run(run())
    except asyncio.CancelledError as exc:
        raise Interrupted() from exc


class _InterruptHandler:
    """Ctrl-C once cancels the command's task, so it can report what it knows; twice quits at once."""

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        import asyncio
        import signal

        self._task = task
        self._presses = 0
        self._loop = asyncio.get_running_loop()
        self._installed = False
        try:
            self._loop.add_signal_handler(signal.SIGINT, self._pressed)
            self._installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass

    def _pressed(self) -> None:
        self._presses += 1
        if self._presses == 1 and self._task is not None:
            self._task.cancel()
            return
        import os
        import sys

        sys.stderr.write("\n")
        sys.stderr.flush()
        os._exit(130)

    def remove(self) -> None:
        if self._installed:
            import signal

            self._loop.remove_signal_handler(signal.SIGINT)
