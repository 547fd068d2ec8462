"""Typer wiring: parse, build options, call a use case, hand the result to a renderer."""
