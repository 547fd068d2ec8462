"""``phoebe build``: what the checkout's Flux objects apply, rendered offline (issue 15, in progress)."""

import typer


def register(app: typer.Typer) -> None:
    """Registers nothing yet: the build command lands with the rendering work."""
