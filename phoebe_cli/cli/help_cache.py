"""``phoebe --help`` without importing Typer: the help Typer printed last time, byte for byte.

Importing Typer (and the Click it carries) costs most of a ``--help``. The top-level help only
changes with phoebe's commands, Typer itself, and how the output is shown (a terminal or a pipe,
its width, colour settings), so the bytes Typer wrote are kept under
``$XDG_CACHE_HOME/phoebe/help``, keyed by all of these, and written again as they are. On a miss
Typer prints as always, and what it printed is recorded.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HELP_ARGS = (["--help"], ["-h"])
# Everything Rich and Typer read from the environment to decide how help looks.
_ENVIRONMENT = (
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "COLORTERM",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "_TYPER_FORCE_DISABLE_TERMINAL",
    "TYPER_STANDARD_TRACEBACK",
    "LANG",
    "LC_ALL",
    "PYTHONIOENCODING",
)


def _cache_file(args: Sequence[str]) -> Path | None:
    """Where the help for this exact way of showing it is kept; None when it cannot be keyed."""
    import importlib.util

    from phoebe_cli import __version__

    hasher = hashlib.sha256(f"help/{__version__}/{' '.join(args)}/".encode())
    cli = Path(__file__).resolve().parent
    for source in sorted(cli.glob("*.py")):  # the commands, their options and help texts
        stat = source.stat()
        hasher.update(f"{source.name}/{stat.st_size}/{stat.st_mtime_ns}/".encode())
    for package in ("typer", "rich"):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        stat = os.stat(spec.origin)
        hasher.update(f"{package}/{spec.origin}/{stat.st_mtime_ns}/".encode())
    for name in _ENVIRONMENT:
        hasher.update(f"{name}={os.environ.get(name)}/".encode())
    try:
        tty = os.isatty(sys.stdout.fileno())
        size = os.get_terminal_size(sys.stdout.fileno()) if tty else None
    except (OSError, ValueError, AttributeError):
        return None  # not a real file: nothing to key by
    hasher.update(f"tty={tty}/size={size}/encoding={sys.stdout.encoding}".encode())
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phoebe" / "help" / hasher.hexdigest()


def remembered(args: Sequence[str]) -> bool:
    """Write the remembered help for ``args``, if there is one; True when it was written."""
    if list(args) not in HELP_ARGS:
        return False
    try:
        path = _cache_file(args)
        data = path.read_bytes() if path is not None else None
    except OSError:
        return False
    if data is None:
        return False
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return True


class _Recorder(io.TextIOBase):
    """sys.stdout as it is (a terminal stays a terminal for Rich), with what passes through kept."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.kept: list[bytes] = []

    def write(self, text: str | bytes) -> int:
        if isinstance(text, bytes):  # Click may write bytes
            self.kept.append(text)
            self.real.flush()
            return int(self.real.buffer.write(text))
        self.kept.append(text.encode(self.real.encoding or "utf-8", errors="replace"))
        return int(self.real.write(text))

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return bool(self.real.isatty())

    def fileno(self) -> int:
        return int(self.real.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(self.real.encoding)


def recording(args: Sequence[str], show: Callable[[], int]) -> int:
    """Run ``show`` (Typer printing the help) and keep what it wrote, when it succeeds."""
    if list(args) not in HELP_ARGS:
        return show()
    try:
        path = _cache_file(args)
    except OSError:
        path = None
    if path is None:
        return show()
    real = sys.stdout
    recorder = _Recorder(real)
    sys.stdout = recorder
    try:
        code = show()
    finally:
        sys.stdout = real
    if code == 0:
        _keep(path, b"".join(recorder.kept))
    return code


def _keep(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(path)
    except OSError:
        pass  # not kept: the next --help is only as slow as this one
