"""Running a use case: the terminal, the cluster session and the event loop for one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from phoebe_cli.cli.options import GlobalOptions
from phoebe_cli.console import Terminal
from phoebe_cli.errors import Interrupted

if TYPE_CHECKING:
    import asyncio

    from phoebe_cli.kube.session import Session

T = TypeVar("T")


def terminal_for(options: GlobalOptions) -> Terminal:
    return Terminal(no_color=options.no_color, verbose=options.verbose)


def run_on_cluster(options: GlobalOptions, usecase: Callable[[Session], Awaitable[T]]) -> T:
    """Open one session (one client, connections reused) and run ``usecase`` on it."""
    from phoebe_cli.kube.session import SessionOptions, open_session

    session_options = SessionOptions(
        kubeconfig=options.kubeconfig,
        context=options.context,
        flux_namespace=options.flux_namespace,
        request_timeout=options.request_timeout,
    )

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
