"""``phoebe explain``: one Flux object's whole story (issue 16, in progress)."""

import typer


def register(app: typer.Typer) -> None:
    """Registers nothing yet: the explain command lands with its use case and renderer."""
