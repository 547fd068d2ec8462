"""The one output path: data to stdout, progress and diagnostics to stderr.

Rich consoles are made lazily, so commands that print JSON (and ``--help``) never import Rich's
rendering machinery. Colour follows ``--no-color``, ``NO_COLOR`` (https://no-color.org) and
whether the stream is a terminal; when stdout is not a terminal, output is plain text and never
cut or wrapped, whatever ``COLUMNS`` says (a piped line keeps its failure reason whole). On a
terminal, the renderers fold long reasons at its width.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

# Not a terminal: wider than any line, so that piped output is never wrapped or cut.
PIPE_WIDTH = 1_000_000


def color_allowed(no_color_flag: bool) -> bool:
    return not no_color_flag and not os.environ.get("NO_COLOR")


class Terminal:
    """Where a command's output goes. ``write`` and ``show`` are stdout; the rest is stderr."""

    def __init__(
        self,
        *,
        no_color: bool = False,
        verbose: int = 0,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.color = color_allowed(no_color)
        self.verbose = verbose
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def stdout_is_tty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_is_tty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def width(self) -> int:
        return self.out_console().width

    def out_console(self) -> Console:
        if self._out is None:
            self._out = _make_console(self.stdout, self.color)
        return self._out

    def err_console(self) -> Console:
        if self._err is None:
            self._err = _make_console(self.stderr, self.color)
        return self._err

    # stdout: data
    def write(self, text: str) -> None:
        """Raw text (JSON, YAML, plain lines) to stdout, exactly as given."""
        self.stdout.write(text)
        if text and not text.endswith("\n"):
            self.stdout.write("\n")
        self.stdout.flush()

    def show(self, renderable: RenderableType) -> None:
        """A Rich renderable to stdout. Not on a terminal it becomes plain text: no styles, no
        wrapping, no padding at line ends."""
        console = self.out_console()
        if self.stdout_is_tty:
            console.print(renderable)
            return
        from rich.text import Text

        if isinstance(renderable, Text) and "\n" not in renderable.plain:
            self.write(renderable.plain.rstrip())  # one plain line: no need to lay it out
            return
        with console.capture() as capture:
            console.print(renderable)
        lines = capture.get().splitlines()
        self.write("".join(line.rstrip() + "\n" for line in lines))

    @contextmanager
    def live(self, render: Callable[[], RenderableType]) -> Iterator[None]:
        """A display on stdout (a terminal) that redraws ``render()`` a few times a second and
        leaves its last frame on screen."""
        from rich.live import Live

        with Live(
            render(),
            console=self.out_console(),
            refresh_per_second=8,
            get_renderable=render,
            redirect_stdout=False,
            redirect_stderr=False,
        ):
            yield

    # stderr: progress and diagnostics
    def note(self, message: str) -> None:
        self._stderr_line(message, style=None)

    def warn(self, message: str) -> None:
        self._stderr_line(f"warning: {message}", style="yellow")

    def error(self, message: str, detail: str | None = None) -> None:
        self._stderr_line(f"phoebe: error: {message}", style="red")
        if detail and self.verbose:
            self._stderr_line(detail, style="dim")

    def debug(self, message: str) -> None:
        if self.verbose:
            self._stderr_line(message, style="dim")

    def _stderr_line(self, text: str, style: str | None) -> None:
        # Plain writes keep error paths free of Rich; colour only on a terminal that allows it.
        if style and self.color and self.stderr_is_tty:
            codes = {"red": "31", "yellow": "33", "dim": "2"}
            text = f"\x1b[{codes[style]}m{text}\x1b[0m"
        self.stderr.write(text + "\n")
        self.stderr.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _make_console(stream: TextIO, color: bool) -> Console:
    from rich.console import Console

    tty = _isatty(stream)
    return Console(
        file=stream,
        no_color=not color,
        color_system="auto" if color and tty else None,
        force_terminal=tty if tty else False,
        highlight=False,
        emoji=False,
        width=_terminal_width(stream) if tty else PIPE_WIDTH,
        soft_wrap=not tty,
    )


def _terminal_width(stream: TextIO) -> int | None:
    """None (Rich reads ``COLUMNS``) when ``COLUMNS`` is a width; else — unset, ``0``, ``abc`` —
    the terminal's own, so that a bad ``COLUMNS`` never leaves a line with no room at all."""
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        return None
    try:
        return max(os.get_terminal_size(stream.fileno()).columns, 20)
    except (OSError, ValueError, AttributeError):
        return 80
