"""Running a use case: the terminal, the cluster session and the event loop for one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from phoebe_cli.cli.options import GlobalOptions
from phoebe_cli.console import Terminal

if TYPE_CHECKING:
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
        async with open_session(session_options) as session:
            return await usecase(session)

    return asyncio.run(run())
