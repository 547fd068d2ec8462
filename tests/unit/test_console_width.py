"""A terminal's width: COLUMNS when it is a width, else the terminal's own — a bad COLUMNS
(0, abc, -3) never leaves a line with no room at all (it printed nothing before)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios

import pytest

from phoebe_cli.console import _terminal_width


@pytest.mark.parametrize(("columns", "expected"), [("0", 100), ("abc", 100), ("-3", 100), ("", 100), ("50", None)])
def test_the_width_on_a_terminal(monkeypatch: pytest.MonkeyPatch, columns: str, expected: int | None) -> None:
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        monkeypatch.setenv("COLUMNS", columns)
        with os.fdopen(os.dup(follower), "w") as stream:
            assert _terminal_width(stream) == expected
    finally:
        os.close(leader)
        os.close(follower)
